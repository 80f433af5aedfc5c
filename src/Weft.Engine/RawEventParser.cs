using System.Globalization;
using System.Text;
using System.Text.Json;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>One raw event as delivered: UTF-8 JSON and where it came from (file:line, topic/partition@offset).</summary>
public readonly record struct RawRecord(ReadOnlyMemory<byte> Json, string Source);

public sealed record ParseResult(EventBatch Events, IReadOnlyList<DeadLetter> DeadLetters, int SkippedOtherTypes);

public sealed record RawEventParserOptions
{
    /// <summary>Events whose event_time is further ahead of the clock than this are rejected (default 1 day).</summary>
    public TimeSpan MaxFutureSkew { get; init; } = TimeSpan.FromDays(1);

    /// <summary>Bytes of a bad payload kept in its dead letter (default 4096).</summary>
    public int MaxPayloadBytes { get; init; } = 4096;
}

/// <summary>
/// Parses JSON events into a columnar batch with the signal's raw schema. A malformed event becomes a
/// dead letter naming the problem and where the event came from; parsing continues.
/// </summary>
public sealed class RawEventParser
{
    private readonly CompiledSignal _signal;
    private readonly TimeProvider _time;
    private readonly RawEventParserOptions _options;
    private readonly Dictionary<string, EventTypeDefinition> _types;
    private readonly Dictionary<string, int> _columnIndex;

    public RawEventParser(CompiledSignal signal, TimeProvider? time = null, RawEventParserOptions? options = null)
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

    /// <summary>
    /// The same checks for rows read from a raw table (Parquet/Delta archive) instead of JSON: rows of
    /// other event types are skipped; rows without event_id, user_id or event_time, missing a
    /// required attribute, or too far in the future are dead-lettered with <paramref name="source"/>
    /// and their row number; ingest_time defaults to now.
    /// </summary>
    public ParseResult ParseTable(EventBatch table, string source)
    {
        if (!table.TryGetColumn(StandardColumns.EventType, out var typeColumn) || typeColumn is not StringColumn types)
        {
            throw new ArgumentException($"{source}: raw table has no string column '{StandardColumns.EventType}'", nameof(table));
        }

        foreach (var f in _signal.RawSchema)
        {
            if (table.TryGetColumn(f.Name, out var c) && c.Type != f.Type)
            {
                throw new ArgumentException($"{source}: column '{f.Name}' is {c.Type} but the signal's raw schema says {f.Type}", nameof(table));
            }
        }

        long now = Timestamps.ToMicros(_time.GetUtcNow());
        long maxFuture = now + (_options.MaxFutureSkew.Ticks / 10);
        var projected = table.Project(NullableRawSchema());
        var ids = (StringColumn)projected[StandardColumns.EventId];
        var users = projected[StandardColumns.UserId];
        var times = (PrimitiveColumn<long>)projected[StandardColumns.EventTime];
        var keep = new List<int>(table.RowCount);
        var deadLetters = new List<DeadLetter>();
        int skipped = 0;
        for (int i = 0; i < table.RowCount; i++)
        {
            string? type = types.Values[i];
            if (type is null || !_types.TryGetValue(type, out var eventType))
            {
                skipped += type is null ? 0 : 1;
                if (type is null)
                {
                    deadLetters.Add(new DeadLetter(ids.Values[i], (long?)users.GetValue(i), null, "parse", "missing event_type", $"{source}#{i}"));
                }

                continue;
            }

            string? reason = ids.Values[i] is null or "" ? "missing event_id"
                : users.IsNull(i) ? "missing user_id"
                : times.IsNull(i) ? "missing event_time"
                : times.Values[i] > maxFuture ? $"event_time {Timestamps.Format(times.Values[i])} is more than {Durations.Format(_options.MaxFutureSkew)} in the future"
                : null;
            if (reason is null)
            {
                foreach (var f in eventType.RawSchema)
                {
                    if (!f.Nullable && projected[f.Name].IsNull(i))
                    {
                        reason = $"missing required attribute '{f.Name}' of {type}";
                        break;
                    }
                }
            }

            if (reason is not null)
            {
                deadLetters.Add(new DeadLetter(ids.Values[i], (long?)users.GetValue(i), type, "parse", reason, $"{source}#{i}"));
                continue;
            }

            keep.Add(i);
        }

        var rows = keep.ToArray();
        var columns = new Column[_signal.RawSchema.Length];
        for (int c = 0; c < columns.Length; c++)
        {
            columns[c] = projected.Columns[c].Gather(rows);
        }

        // Absent ingest times are set at ingest, as for JSON.
        var ingestValues = ((PrimitiveColumn<long>)columns[_columnIndex[StandardColumns.IngestTime]]).Values;
        var ingestNulls = columns[_columnIndex[StandardColumns.IngestTime]].Nulls;
        if (ingestNulls is not null)
        {
            for (int r = 0; r < ingestValues.Length; r++)
            {
                if (ingestNulls[r])
                {
                    ingestValues[r] = now;
                }
            }

            columns[_columnIndex[StandardColumns.IngestTime]] = new PrimitiveColumn<long>(WeftType.Timestamp, ingestValues);
        }

        return new ParseResult(new EventBatch(_signal.RawSchema, columns), deadLetters, skipped);
    }

    private System.Collections.Immutable.ImmutableArray<FieldDefinition> NullableRawSchema() =>
        [.. _signal.RawSchema.Select(f => f with { Nullable = true })];

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

    private Outcome ParseOne(RawRecord record, object?[] row, long now, long maxFuture, out string? reason, out (string? EventId, long? UserId, string? EventType) identity)
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
            reason = $"malformed JSON at byte {(ex.BytePositionInLine ?? 0) + 1}";
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
                    continue;
                }

                if (!TryRead(p.Value, field.Type, out var value))
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

                    reason = $"{(StandardColumns.IsStandard(name) ? "" : "attribute ")}'{name}' of {type}: expected {field.Type}, got {Describe(p.Value)}";
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

            ref object? ingest = ref row[_columnIndex[StandardColumns.IngestTime]];
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

    private static string Describe(JsonElement e)
    {
        string raw = e.GetRawText();
        return raw.Length > 40 ? raw[..40] + "…" : raw;
    }

    /// <summary>Reads a JSON value as a column value of <paramref name="type"/> (engine representation).</summary>
    public static bool TryRead(JsonElement e, WeftType type, out object? value)
    {
        value = null;
        if (type.IsList)
        {
            if (e.ValueKind != JsonValueKind.Array)
            {
                return false;
            }

            int n = e.GetArrayLength();
            var element = type.Element;
            Array array = type.Kind switch
            {
                ScalarKind.Bool => new bool[n],
                ScalarKind.Int32 => new int[n],
                ScalarKind.Int64 or ScalarKind.Timestamp => new long[n],
                ScalarKind.Float32 => new float[n],
                ScalarKind.Float64 => new double[n],
                _ => new string[n],
            };
            int i = 0;
            foreach (var item in e.EnumerateArray())
            {
                if (!TryRead(item, element, out var v) || v is null)
                {
                    return false;
                }

                switch (array)
                {
                    case int[] a: a[i] = (int)(long)v; break;
                    case float[] a: a[i] = (float)(double)v; break;
                    default: array.SetValue(v, i); break;
                }

                i++;
            }

            value = array;
            return true;
        }

        switch (type.Kind)
        {
            case ScalarKind.Bool when e.ValueKind is JsonValueKind.True or JsonValueKind.False:
                value = e.GetBoolean();
                return true;
            case ScalarKind.Int32 when e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i32):
                value = (long)i32;
                return true;
            case ScalarKind.Int64 when e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long i64):
                value = i64;
                return true;
            case ScalarKind.Int64 when e.ValueKind == JsonValueKind.String && long.TryParse(e.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long s64):
                value = s64;
                return true;
            case ScalarKind.Float32 or ScalarKind.Float64 when e.ValueKind == JsonValueKind.Number:
                value = e.GetDouble();
                return true;
            case ScalarKind.String when e.ValueKind == JsonValueKind.String:
                value = e.GetString();
                return true;
            case ScalarKind.Timestamp when e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long micros):
                value = micros;
                return true;
            case ScalarKind.Timestamp when e.ValueKind == JsonValueKind.String
                && DateTimeOffset.TryParse(e.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var ts):
                value = Timestamps.ToMicros(ts);
                return true;
            default:
                return false;
        }
    }
}
