using System.Security.Cryptography;
using System.Text.Json;

namespace Weft.Definitions;

/// <summary>
/// Writes the canonical JSON of a signal: fixed property order, event types and enrichment sources
/// sorted by name, two-space indentation, '\n' newlines, no trailing whitespace. The same
/// definition gives the same bytes on every run and machine, so the SHA-256 of those bytes is the
/// signal's fingerprint.
/// </summary>
public static class SignalJsonWriter
{
    public const string Format = "weft.signal/1";

    public static byte[] Write(SignalDefinition s)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { MaxDepth = SignalJsonReader.MaxDepth, Indented = true, NewLine = "\n", Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("format", Format);
            w.WriteString("name", s.Name);
            w.WriteNumber("version", s.Version);
            w.WriteString("tenant", s.Tenant);
            w.WriteString("description", s.Description);

            w.WriteStartArray("event_types");
            foreach (var et in s.EventTypes.OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("name", et.Name);
                WriteFields(w, "raw_schema", et.RawSchema);
                w.WriteStartObject("column_mapping");
                foreach (var (from, to) in et.ColumnMapping)
                {
                    w.WriteString(from, to);
                }

                w.WriteEndObject();
                w.WriteStartArray("steps");
                foreach (var step in et.Steps)
                {
                    WriteStep(w, step);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray("enrichment_sources");
            foreach (var src in s.EnrichmentSources.OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("name", src.Name);
                w.WritePropertyName("key");
                WriteField(w, src.Key);
                WriteFields(w, "columns", src.Columns);
                w.WriteString("version_column", src.VersionColumn);
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray("enrichments");
            foreach (var e in s.Enrichments)
            {
                w.WriteStartObject();
                w.WriteString("source", e.Source);
                w.WriteString("on", e.On);
                WriteStrings(w, "columns", e.Columns);
                WriteStrings(w, "event_types", e.EventTypes);
                w.WriteEndObject();
            }

            w.WriteEndArray();

            WriteFields(w, "element", s.Element);
            w.WriteString("order", SignalDefinition.OrderBy);
            w.WriteString("dedup", SignalDefinition.DedupBy);
            w.WriteNumber("max_length", s.MaxLength);
            w.WriteString("lookback", Durations.Format(s.Lookback));
            w.WriteString("bucket", s.Bucket == TimeBucket.Hour ? "hour" : "day");
            w.WriteString("late_allowance", Durations.Format(s.LateAllowance));
            w.WriteString("merge", MergeName(s.Merge));
            w.WriteString("late_policy", LatePolicyNames.Name(s.Late));
            w.WriteString("freshness_objective", Durations.Format(s.FreshnessObjective));
            w.WriteStartObject("budgets");
            w.WriteNumber("max_elements", s.Budgets.MaxElements);
            w.WriteNumber("max_bytes_per_user", s.Budgets.MaxBytesPerUser);
            w.WriteNumber("hot_user_max_events_per_hour", s.Budgets.HotUserMaxEventsPerHour);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>Lower-case hex SHA-256 of the canonical bytes.</summary>
    public static string Fingerprint(ReadOnlySpan<byte> canonicalJson) => Convert.ToHexStringLower(SHA256.HashData(canonicalJson));

    public static string Fingerprint(SignalDefinition s) => Fingerprint(Write(s));

    /// <summary>
    /// A fingerprint of what the signal computes: the canonical JSON less what changes no event or
    /// sequence (the description, the owning tenant, the version number, the freshness objective).
    /// Evidence about a signal's output stays valid across edits of those.
    /// </summary>
    public static string ContentFingerprint(SignalDefinition s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return Fingerprint(Write(s with { Description = "", Tenant = "", Version = 1, FreshnessObjective = TimeSpan.FromSeconds(5) }));
    }

    internal static string MergeName(MergePolicyKind merge) => merge switch
    {
        MergePolicyKind.BatchSealsStreamFills => "batch_seals_stream_fills",
        MergePolicyKind.LastWriteWins => "last_write_wins",
        _ => throw new ArgumentOutOfRangeException(nameof(merge)),
    };

    private static void WriteStep(Utf8JsonWriter w, StepDefinition step)
    {
        w.WriteStartObject();
        switch (step)
        {
            case FilterStep f:
                w.WriteString("op", "filter");
                w.WritePropertyName("where");
                WriteExpr(w, f.Where);
                break;
            case MapStep m:
                w.WriteString("op", "map");
                w.WriteStartArray("columns");
                foreach (var c in m.Columns)
                {
                    w.WriteStartObject();
                    w.WriteString("name", c.Name);
                    w.WriteString("from", c.From);
                    if (c.Cast is { } cast)
                    {
                        w.WriteString("cast", cast.ToString());
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
                break;
            case DeriveStep d:
                w.WriteString("op", "derive");
                w.WriteString("name", d.Name);
                w.WriteString("type", d.Type.ToString());
                w.WritePropertyName("expr");
                WriteExpr(w, d.Expr);
                break;
            case CustomStep c:
                w.WriteString("op", "custom");
                w.WriteString("executor", c.Executor);
                w.WriteStartObject("args");
                foreach (var (k, v) in c.Args)
                {
                    w.WriteString(k, v);
                }

                w.WriteEndObject();
                WriteFields(w, "produces", c.Produces);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(step));
        }

        w.WriteEndObject();
    }

    internal static void WriteExpr(Utf8JsonWriter w, Expr expr)
    {
        w.WriteStartObject();
        switch (expr)
        {
            case ColumnExpr c:
                w.WriteString("col", c.Name);
                break;
            case LiteralExpr l:
                w.WritePropertyName("lit");
                WriteLiteralValue(w, l);
                w.WriteString("type", l.Type.ToString());
                break;
            case CallExpr call:
                w.WriteString("op", call.Op);
                if (call.TargetType is { } t)
                {
                    w.WriteString("type", t.ToString());
                }

                w.WriteStartArray("args");
                foreach (var a in call.Args)
                {
                    WriteExpr(w, a);
                }

                w.WriteEndArray();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(expr));
        }

        w.WriteEndObject();
    }

    private static void WriteLiteralValue(Utf8JsonWriter w, LiteralExpr l)
    {
        switch (l.Value)
        {
            case null:
                w.WriteNullValue();
                break;
            case long v when l.Type == WeftType.Timestamp:
                w.WriteStringValue(Timestamps.Format(v));
                break;
            case long v:
                w.WriteNumberValue(v);
                break;
            case double v:
                w.WriteNumberValue(v);
                break;
            case string v:
                w.WriteStringValue(v);
                break;
            case bool v:
                w.WriteBooleanValue(v);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(l), l.Value.GetType(), "unsupported literal value");
        }
    }

    private static void WriteFields(Utf8JsonWriter w, string name, IEnumerable<FieldDefinition> fields)
    {
        w.WriteStartArray(name);
        foreach (var f in fields)
        {
            WriteField(w, f);
        }

        w.WriteEndArray();
    }

    private static void WriteField(Utf8JsonWriter w, FieldDefinition f)
    {
        w.WriteStartObject();
        w.WriteString("name", f.Name);
        w.WriteString("type", f.Type.ToString());
        w.WriteBoolean("nullable", f.Nullable);
        w.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
    }
}
