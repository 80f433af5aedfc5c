using System.Text;
using System.Text.Json;
using Weft.Definitions;

namespace Weft.Engine.Tests;

/// <summary>
/// The JsonDocument-based <see cref="RawEventParser"/> as it was before the single-pass rewrite, kept
/// verbatim (JSON path only) as the reference of the differential property test.
/// </summary>
internal sealed class ReferenceRawEventParser
{
    private readonly CompiledSignal _signal;
    private readonly TimeProvider _time;
    private readonly RawEventParserOptions _options;
    private readonly Dictionary<string, EventTypeDefinition> _types;
    private readonly Dictionary<string, int> _columnIndex;

    public ReferenceRawEventParser(CompiledSignal signal, TimeProvider? time = null, RawEventParserOptions? options = null)
    {
        _signal = signal;
        _time = time ?? TimeProvider.System;
        _options = options ?? new RawEventParserOptions();
        _types = signal.Definition.EventTypes.ToDictionary(e => e.Name, StringComparer.Ordinal);
        _columnIndex = [];
        for (int i = 0; i < signal.RawSchema.Length; i++)
        {
            _columnIndex[signal.RawSchema[i].Name] = i;
        }
    }

    public ParseResult Parse(IEnumerable<RawRecord> records)
    {
        var schema = _signal.RawSchema;
        var columns = new List<object?>[schema.Length];
        for (int i = 0; i < columns.Length; i++)
        {
            columns[i] = [];
        }

        var deadLetters = new List<DeadLetter>();
        int skipped = 0;
        long now = Timestamps.ToMicros(_time.GetUtcNow());
        long maxFuture = now + (_options.MaxFutureSkew.Ticks / 10);
        var row = new object?[schema.Length];
        foreach (var record in records)
        {
            Array.Clear(row);
            var outcome = ParseOne(record, row, now, maxFuture, out var reason, out var identity);
            switch (outcome)
            {
                case Outcome.Ok:
                    for (int i = 0; i < row.Length; i++)
                    {
                        columns[i].Add(row[i]);
                    }

                    break;
                case Outcome.OtherType:
                    skipped++;
                    break;
                default:
                    deadLetters.Add(new DeadLetter(identity.EventId, identity.UserId, identity.EventType, "parse", reason!, record.Source, Payload(record.Json)));
                    break;
            }
        }

        var built = new Column[schema.Length];
        for (int i = 0; i < built.Length; i++)
        {
            built[i] = ColumnBuilder.Build(schema[i].Type, columns[i]);
        }

        return new ParseResult(new EventBatch(schema, built), deadLetters, skipped);
    }

    private string Payload(ReadOnlyMemory<byte> json)
    {
        var span = json.Span;
        return span.Length <= _options.MaxPayloadBytes ? Encoding.UTF8.GetString(span) : Encoding.UTF8.GetString(span[.._options.MaxPayloadBytes]) + "…";
    }

    private enum Outcome
    {
        Ok,
        OtherType,
        Bad,
    }

    /// <summary>
    /// A string escape decoding to a lone surrogate throws where it is read; the event is then read as if
    /// each such escape were U+FFFD, and had it been accepted it is a dead letter naming the escape.
    /// </summary>
    private Outcome ParseOne(RawRecord record, object?[] row, long now, long maxFuture, out string? reason, out (string? EventId, long? UserId, string? EventType) identity)
    {
        try
        {
            return ParseOneAsIs(record, row, now, maxFuture, out reason, out identity);
        }
        catch (InvalidOperationException)
        {
            Array.Clear(row);
            var repaired = record with { Json = LoneSurrogates.Replaced(record.Json.Span) };
            var outcome = ParseOneAsIs(repaired, row, now, maxFuture, out reason, out identity, record.Json);
            if (outcome != Outcome.Ok)
            {
                return outcome;
            }

            reason = LoneSurrogates.Reason(record.Json.Span);
            return Outcome.Bad;
        }
    }

    private Outcome ParseOneAsIs(RawRecord record, object?[] row, long now, long maxFuture, out string? reason, out (string? EventId, long? UserId, string? EventType) identity, ReadOnlyMemory<byte>? original = null)
    {
        identity = default;
        reason = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(record.Json);
        }
        catch (JsonException ex)
        {
            // The position counts from the record's start, over as many lines as it spans.
            int lineStart = 0;
            for (long line = 0; line < (ex.LineNumber ?? 0); line++)
            {
                lineStart = record.Json.Span[lineStart..].IndexOf((byte)'\n') + lineStart + 1;
            }

            reason = $"malformed JSON at byte {lineStart + (ex.BytePositionInLine ?? 0) + 1}";
            return Outcome.Bad;
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                reason = "not a JSON object";
                return Outcome.Bad;
            }

            // Column mapping applies per event type, so find the type first (it may itself be mapped).
            string? type = null;
            if (root.TryGetProperty(StandardColumns.EventType, out var t) && t.ValueKind == JsonValueKind.String)
            {
                type = t.GetString();
            }
            else
            {
                foreach (var et in _types.Values)
                {
                    foreach (var (raw, target) in et.ColumnMapping)
                    {
                        if (target == StandardColumns.EventType && root.TryGetProperty(raw, out var mt) && mt.ValueKind == JsonValueKind.String)
                        {
                            type = mt.GetString();
                        }
                    }
                }
            }

            identity.EventType = type;
            if (string.IsNullOrEmpty(type))
            {
                reason = "missing event_type";
                return Outcome.Bad;
            }

            if (!_types.TryGetValue(type, out var eventType))
            {
                return Outcome.OtherType;
            }

            row[_columnIndex[StandardColumns.EventType]] = type;
            foreach (var p in root.EnumerateObject())
            {
                string name = eventType.ColumnMapping.TryGetValue(p.Name, out var mapped) ? mapped : p.Name;
                if (name == StandardColumns.EventType || !_columnIndex.TryGetValue(name, out int index))
                {
                    continue; // attributes the signal does not declare are ignored
                }

                var field = _signal.RawSchema[index];
                if (p.Value.ValueKind == JsonValueKind.Null)
                {
                    if (name != StandardColumns.IngestTime)
                    {
                        row[index] = null; // a repeated name: the last value counts, null too (but a null ingest_time is "not supplied")
                    }

                    continue;
                }

                if (!RawEventParser.TryRead(p.Value, field.Type, out var value, dated: !StandardColumns.IsStandard(field.Name)))
                {
                    // Name the event in its dead letter when its identity was readable.
                    if (root.TryGetProperty(StandardColumns.EventId, out var idElement) && idElement.ValueKind == JsonValueKind.String)
                    {
                        identity.EventId = idElement.GetString();
                    }

                    if (root.TryGetProperty(StandardColumns.UserId, out var userElement) && userElement.ValueKind == JsonValueKind.Number && userElement.TryGetInt64(out long uid))
                    {
                        identity.UserId = uid;
                    }

                    reason = $"{(StandardColumns.IsStandard(name) ? "" : "attribute ")}'{name}' of {type}: expected {field.Type}, got {Describe(p.Value, record.Json, original)}";
                    return Outcome.Bad;
                }

                row[index] = value;
            }

            identity.EventId = row[_columnIndex[StandardColumns.EventId]] as string;
            identity.UserId = row[_columnIndex[StandardColumns.UserId]] as long?;
            if (string.IsNullOrEmpty(identity.EventId))
            {
                reason = "missing event_id";
                return Outcome.Bad;
            }

            if (identity.EventId.Contains('\0'))
            {
                reason = RawEventParser.NulEventIdReason;
                return Outcome.Bad;
            }

            if (System.Text.Encoding.UTF8.GetByteCount(identity.EventId) > RawEventParser.MaxEventIdBytes)
            {
                reason = RawEventParser.LongEventIdReason;
                return Outcome.Bad;
            }

            if (identity.UserId is null)
            {
                reason = "missing user_id";
                return Outcome.Bad;
            }

            if (row[_columnIndex[StandardColumns.EventTime]] is not long eventTime)
            {
                reason = "missing event_time";
                return Outcome.Bad;
            }

            if (eventTime > maxFuture)
            {
                reason = $"event_time {Timestamps.Format(eventTime)} is more than {Durations.Format(_options.MaxFutureSkew)} in the future";
                return Outcome.Bad;
            }

            if (eventTime < Timestamps.ToMicros(_options.MinEventTime))
            {
                reason = $"event_time {Timestamps.Format(eventTime)} is before {Timestamps.Format(Timestamps.ToMicros(_options.MinEventTime))}: epoch seconds or milliseconds where microseconds belong? (send µs since the epoch, or ISO-8601 text)";
                return Outcome.Bad;
            }

            ref object? ingest = ref row[_columnIndex[StandardColumns.IngestTime]];
            if (ingest is long ingestTime && (ingestTime > maxFuture || ingestTime < Timestamps.ToMicros(_options.MinEventTime)))
            {
                reason = ingestTime > maxFuture
                    ? $"ingest_time {Timestamps.Format(ingestTime)} is more than {Durations.Format(_options.MaxFutureSkew)} in the future"
                    : $"ingest_time {Timestamps.Format(ingestTime)} is before {Timestamps.Format(Timestamps.ToMicros(_options.MinEventTime))}: epoch seconds or milliseconds where microseconds belong? (send µs since the epoch, or ISO-8601 text)";
                return Outcome.Bad;
            }

            if (ingest is long suppliedIngest && eventTime - suppliedIngest > _options.MaxFutureSkew.Ticks / 10)
            {
                reason = $"event_time {Timestamps.Format(eventTime)} is more than {Durations.Format(_options.MaxFutureSkew)} after its ingest_time {Timestamps.Format(suppliedIngest)}";
                return Outcome.Bad;
            }

            ingest ??= now;

            foreach (var f in eventType.RawSchema)
            {
                if (!f.Nullable && row[_columnIndex[f.Name]] is null)
                {
                    reason = $"missing required attribute '{f.Name}' of {type}";
                    return Outcome.Bad;
                }
            }

            return Outcome.Ok;
        }
    }

    private static string Describe(JsonElement e, ReadOnlyMemory<byte> parsed, ReadOnlyMemory<byte>? original)
    {
        // A repaired event quotes its value as received: the repair keeps every byte offset.
        string raw = e.GetRawText();
        if (original is { } received)
        {
            int at = parsed.Span.IndexOf(Encoding.UTF8.GetBytes(raw));
            raw = Encoding.UTF8.GetString(received.Span.Slice(at, Encoding.UTF8.GetByteCount(raw)));
        }

        return raw.Length > 40 ? raw[..40] + "…" : raw;
    }

}
