using System.Buffers;
using System.Text.Json;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Serving.Sequences;

namespace Weft.Serving.Http;

/// <summary>What every sequence of one response shares: the cut and the stream's state when it was read.</summary>
internal readonly record struct ReadContext(SequenceCut Cut, TimeSpan Lookback, long? LagMs);

/// <summary>
/// Writes served sequences as columnar JSON (docs/serving.md): per projected column one array, elements
/// newest first; timestamps as ISO-8601 UTC strings with microseconds; lists as arrays; non-finite floats
/// as the strings "NaN", "Infinity", "-Infinity". Writes straight from the merged rows: one type switch
/// per column, then a loop over the chosen rows.
/// </summary>
internal static class SequenceJson
{
    public static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_columns;

    public static void WriteSequence(Utf8JsonWriter w, ServedSignal signal, in ServedSequence sequence, int[] projection, in ReadContext context, bool includeSignal, RenderCache? renders)
    {
        var timeline = sequence.Timeline;
        w.WriteStartObject();
        if (includeSignal)
        {
            w.WriteString("signal"u8, signal.Name);
        }

        w.WriteNumber("user_id"u8, timeline.UserId);
        w.WritePropertyName("columns"u8);
        if (renders is null)
        {
            WriteColumns(w, signal, timeline.Rows, projection, sequence.Rows);
        }
        else if (renders.TryGet(signal, timeline, projection, sequence.Rows) is { } rendered)
        {
            w.WriteRawValue(rendered, skipInputValidation: true);
        }
        else
        {
            var buffer = t_columns ??= new ArrayBufferWriter<byte>(64 * 1024);
            buffer.ResetWrittenCount();
            using (var cw = new Utf8JsonWriter(buffer, WriterOptions))
            {
                WriteColumns(cw, signal, timeline.Rows, projection, sequence.Rows);
            }

            var json = buffer.WrittenSpan.ToArray();
            renders.Put(signal, timeline, projection, sequence.Rows, json);
            w.WriteRawValue(json, skipInputValidation: true);
        }

        w.WriteNumber("length"u8, sequence.Rows.Count);
        WriteProvenance(w, signal, timeline.History, sequence.FromStream, sequence.FromBatch, fromLegacy: null, sequence.Truncated, context);
        w.WriteEndObject();
    }

    /// <summary>
    /// A hybrid sequence (docs/migration.md): <paramref name="rows"/> of <paramref name="elements"/>
    /// (sequence columns), newest first, some from Weft and some from the legacy pipeline, with the
    /// assembly that chose which event type came from where.
    /// </summary>
    public static void WriteHybrid(Utf8JsonWriter w, ServedSignal signal, long userId, EventBatch elements, List<int> rows, int[] projection, in ReadContext context,
        HistorySnapshot history, (int Stream, int Batch, int Legacy) from, bool truncated, string consumer, long assemblyVersion, IReadOnlyList<(string EventType, bool Weft)> sources, bool includeSignal)
    {
        w.WriteStartObject();
        if (includeSignal)
        {
            w.WriteString("signal"u8, signal.Name);
        }

        w.WriteNumber("user_id"u8, userId);
        w.WritePropertyName("columns"u8);
        WriteColumns(w, signal, elements, projection, rows);
        w.WriteNumber("length"u8, rows.Count);
        WriteProvenance(w, signal, history, from.Stream, from.Batch, from.Legacy, truncated, context);
        w.WriteStartObject("assembly"u8);
        w.WriteString("consumer"u8, consumer);
        w.WriteNumber("version"u8, assemblyVersion);
        w.WriteStartObject("sources"u8);
        foreach (var (eventType, weft) in sources)
        {
            w.WriteString(eventType, weft ? "weft" : "legacy");
        }

        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteProvenance(Utf8JsonWriter w, ServedSignal signal, HistorySnapshot history, int fromStream, int fromBatch, int? fromLegacy, bool truncated, in ReadContext context)
    {
        w.WriteStartObject("provenance"u8);
        w.WriteString("fingerprint"u8, signal.Fingerprint);
        WriteTimestampOrNull(w, "stream_watermark"u8, signal.StreamWatermark);
        WriteTimestampOrNull(w, "batch_sealed_through"u8, history.SealedThroughMicros);
        w.WriteNumber("from_stream"u8, fromStream);
        w.WriteNumber("from_batch"u8, fromBatch);
        if (fromLegacy is { } legacy)
        {
            w.WriteNumber("from_legacy"u8, legacy);
        }

        w.WriteBoolean("truncated"u8, truncated);
        if (context.LagMs is { } lag)
        {
            w.WriteNumber("lag_ms"u8, lag);
        }
        else
        {
            w.WriteNull("lag_ms"u8);
        }

        WriteTimestampOrNull(w, "as_of"u8, context.Cut.AsOfMicros);
        WriteTimestampOrNull(w, "known_at"u8, context.Cut.KnownAtMicros);
        w.WriteString("lookback"u8, Durations.Format(context.Lookback));
        w.WriteNumber("history_version"u8, history.Version);
        w.WriteEndObject();
    }

    /// <summary>The projected columns of <paramref name="rows"/>; <paramref name="elements"/> starts with the signal's sequence columns.</summary>
    private static void WriteColumns(Utf8JsonWriter w, ServedSignal signal, EventBatch elements, int[] projection, List<int> rows)
    {
        w.WriteStartObject();
        foreach (int c in projection)
        {
            w.WritePropertyName(signal.SequenceColumns[c].Name);
            WriteColumn(w, elements.Columns[c], signal.SequenceColumns[c].Type, rows);
        }

        w.WriteEndObject();
    }

    private static void WriteTimestampOrNull(Utf8JsonWriter w, ReadOnlySpan<byte> name, long? micros)
    {
        if (micros is { } m)
        {
            Span<byte> text = stackalloc byte[32];
            w.WriteString(name, text[..FormatTimestamp(m, text)]);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void WriteColumn(Utf8JsonWriter w, Column column, WeftType type, List<int> rows)
    {
        w.WriteStartArray();
        var nulls = column.Nulls;
        switch (column)
        {
            case PrimitiveColumn<long> c when type.Kind == ScalarKind.Timestamp:
            {
                Span<byte> text = stackalloc byte[32];
                foreach (int r in rows)
                {
                    if (nulls is not null && nulls[r])
                    {
                        w.WriteNullValue();
                    }
                    else
                    {
                        w.WriteStringValue(text[..FormatTimestamp(c.Values[r], text)]);
                    }
                }

                break;
            }

            case PrimitiveColumn<long> c:
                foreach (int r in rows)
                {
                    if (nulls is not null && nulls[r]) { w.WriteNullValue(); } else { w.WriteNumberValue(c.Values[r]); }
                }

                break;
            case PrimitiveColumn<int> c:
                foreach (int r in rows)
                {
                    if (nulls is not null && nulls[r]) { w.WriteNullValue(); } else { w.WriteNumberValue(c.Values[r]); }
                }

                break;
            case PrimitiveColumn<float> c:
                foreach (int r in rows)
                {
                    if (nulls is not null && nulls[r]) { w.WriteNullValue(); } else { Float(w, c.Values[r]); }
                }

                break;
            case PrimitiveColumn<double> c:
                foreach (int r in rows)
                {
                    if (nulls is not null && nulls[r]) { w.WriteNullValue(); } else { Double(w, c.Values[r]); }
                }

                break;
            case PrimitiveColumn<bool> c:
                foreach (int r in rows)
                {
                    if (nulls is not null && nulls[r]) { w.WriteNullValue(); } else { w.WriteBooleanValue(c.Values[r]); }
                }

                break;
            case StringColumn c:
                foreach (int r in rows)
                {
                    if (c.Values[r] is { } s) { w.WriteStringValue(s); } else { w.WriteNullValue(); }
                }

                break;
            case ListColumn<float> c:
                foreach (int r in rows)
                {
                    if (c.Values[r] is not { } list) { w.WriteNullValue(); continue; }
                    w.WriteStartArray();
                    foreach (var v in list) { Float(w, v); }
                    w.WriteEndArray();
                }

                break;
            case ListColumn<double> c:
                foreach (int r in rows)
                {
                    if (c.Values[r] is not { } list) { w.WriteNullValue(); continue; }
                    w.WriteStartArray();
                    foreach (var v in list) { Double(w, v); }
                    w.WriteEndArray();
                }

                break;
            case ListColumn<long> c when type.Kind == ScalarKind.Timestamp:
            {
                Span<byte> text = stackalloc byte[32];
                foreach (int r in rows)
                {
                    if (c.Values[r] is not { } list) { w.WriteNullValue(); continue; }
                    w.WriteStartArray();
                    foreach (var v in list) { w.WriteStringValue(text[..FormatTimestamp(v, text)]); }
                    w.WriteEndArray();
                }

                break;
            }

            case ListColumn<long> c:
                foreach (int r in rows)
                {
                    if (c.Values[r] is not { } list) { w.WriteNullValue(); continue; }
                    w.WriteStartArray();
                    foreach (var v in list) { w.WriteNumberValue(v); }
                    w.WriteEndArray();
                }

                break;
            case ListColumn<int> c:
                foreach (int r in rows)
                {
                    if (c.Values[r] is not { } list) { w.WriteNullValue(); continue; }
                    w.WriteStartArray();
                    foreach (var v in list) { w.WriteNumberValue(v); }
                    w.WriteEndArray();
                }

                break;
            case ListColumn<bool> c:
                foreach (int r in rows)
                {
                    if (c.Values[r] is not { } list) { w.WriteNullValue(); continue; }
                    w.WriteStartArray();
                    foreach (var v in list) { w.WriteBooleanValue(v); }
                    w.WriteEndArray();
                }

                break;
            case ListColumn<string> c:
                foreach (int r in rows)
                {
                    if (c.Values[r] is not { } list) { w.WriteNullValue(); continue; }
                    w.WriteStartArray();
                    foreach (var v in list) { if (v is null) { w.WriteNullValue(); } else { w.WriteStringValue(v); } }
                    w.WriteEndArray();
                }

                break;
            default:
                throw new NotSupportedException($"column of type {type}");
        }

        w.WriteEndArray();
    }

    private static void Float(Utf8JsonWriter w, float v)
    {
        if (float.IsFinite(v))
        {
            w.WriteNumberValue(v);
        }
        else
        {
            w.WriteStringValue(float.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        }
    }

    private static void Double(Utf8JsonWriter w, double v)
    {
        if (double.IsFinite(v))
        {
            w.WriteNumberValue(v);
        }
        else
        {
            w.WriteStringValue(double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        }
    }

    /// <summary>
    /// Writes <c>YYYY-MM-DDTHH:MM:SS.ffffffZ</c> (27 bytes) for µs since the Unix epoch, the form
    /// <see cref="Timestamps.Format"/> produces, without going through <see cref="DateTimeOffset"/>.
    /// </summary>
    internal static int FormatTimestamp(long micros, Span<byte> destination)
    {
        const long MicrosPerDay = 86_400_000_000L;
        long days = Math.DivRem(micros, MicrosPerDay, out long rem);
        if (rem < 0)
        {
            rem += MicrosPerDay;
            days--;
        }

        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm), proleptic Gregorian.
        long z = days + 719_468;
        long era = (z >= 0 ? z : z - 146_096) / 146_097;
        long doe = z - (era * 146_097);
        long yoe = (doe - (doe / 1460) + (doe / 36_524) - (doe / 146_096)) / 365;
        long doy = doe - ((365 * yoe) + (yoe / 4) - (yoe / 100));
        long mp = ((5 * doy) + 2) / 153;
        int day = (int)(doy - (((153 * mp) + 2) / 5) + 1);
        int month = (int)(mp < 10 ? mp + 3 : mp - 9);
        long year = yoe + (era * 400) + (month <= 2 ? 1 : 0);
        if (year is < 0 or > 9999)
        {
            return System.Text.Encoding.UTF8.GetBytes(Timestamps.Format(micros), destination);
        }

        long seconds = Math.DivRem(rem, 1_000_000, out long fraction);
        int hour = (int)(seconds / 3600), minute = (int)(seconds / 60 % 60), second = (int)(seconds % 60);
        Digits(destination[..4], (int)year);
        destination[4] = (byte)'-';
        Digits(destination.Slice(5, 2), month);
        destination[7] = (byte)'-';
        Digits(destination.Slice(8, 2), day);
        destination[10] = (byte)'T';
        Digits(destination.Slice(11, 2), hour);
        destination[13] = (byte)':';
        Digits(destination.Slice(14, 2), minute);
        destination[16] = (byte)':';
        Digits(destination.Slice(17, 2), second);
        destination[19] = (byte)'.';
        Digits(destination.Slice(20, 6), (int)fraction);
        destination[26] = (byte)'Z';
        return 27;
    }

    private static void Digits(Span<byte> destination, int value)
    {
        for (int i = destination.Length - 1; i >= 0; i--)
        {
            destination[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }
}
