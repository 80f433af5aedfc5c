using System.Collections.Immutable;
using System.Text;
using System.Text.Json;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>Reads JSON lines into a batch of a fixed schema (enrichment sources, label files) and formats batches canonically.</summary>
public static class JsonRows
{
    /// <summary>Parses each record as an object with the schema's columns; bad rows are returned as dead letters.</summary>
    public static (EventBatch Rows, IReadOnlyList<DeadLetter> Bad) Read(IEnumerable<RawRecord> records, ImmutableArray<FieldDefinition> schema, string stage)
    {
        var values = new List<object?>[schema.Length];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = [];
        }

        var bad = new List<DeadLetter>();
        var row = new object?[schema.Length];
        foreach (var record in records)
        {
            string? problem = null, eventId = null, eventType = null;
            long? userId = null;
            try
            {
                using var doc = JsonDocument.Parse(record.Json);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    problem = "not a JSON object";
                }
                else
                {
                    // Named in a dead letter, so a bad row can be traced to its event and counted by type.
                    eventId = Text(doc.RootElement, StandardColumns.EventId);
                    eventType = Text(doc.RootElement, StandardColumns.EventType);
                    userId = doc.RootElement.TryGetProperty(StandardColumns.UserId, out var u) && u.ValueKind == JsonValueKind.Number && u.TryGetInt64(out long user) ? user : null;
                    for (int c = 0; c < schema.Length && problem is null; c++)
                    {
                        row[c] = null;
                        if (!doc.RootElement.TryGetProperty(schema[c].Name, out var v) || v.ValueKind == JsonValueKind.Null)
                        {
                            if (!schema[c].Nullable)
                            {
                                problem = $"missing '{schema[c].Name}'";
                            }
                        }
                        else if (!RawEventParser.TryRead(v, schema[c].Type, out row[c]))
                        {
                            problem = $"'{schema[c].Name}': expected {schema[c].Type}";
                        }
                    }
                }
            }
            catch (JsonException)
            {
                problem = "malformed JSON";
            }

            if (problem is not null)
            {
                bad.Add(new DeadLetter(eventId, userId, eventType, stage, problem, record.Source, Encoding.UTF8.GetString(record.Json.Span)));
                continue;
            }

            for (int c = 0; c < schema.Length; c++)
            {
                values[c].Add(row[c]);
            }
        }

        var columns = new Column[schema.Length];
        for (int c = 0; c < schema.Length; c++)
        {
            columns[c] = ColumnBuilder.Build(schema[c].Type, values[c]);
        }

        return (new EventBatch(schema, columns), bad);
    }

    private static string? Text(JsonElement row, string name) =>
        row.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>Reads a JSON-lines file lazily, one record per non-empty line, with "path:line" as its source.</summary>
    public static IEnumerable<RawRecord> ReadLines(string path)
    {
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length > 0)
            {
                yield return new RawRecord(Encoding.UTF8.GetBytes(line), $"{path}:{lineNumber}");
            }
        }
    }

    /// <summary>Writes row <paramref name="row"/> as a JSON object: columns in schema order, timestamps as ISO-8601 UTC with microseconds.</summary>
    public static void WriteRow(Utf8JsonWriter writer, EventBatch batch, int row)
    {
        writer.WriteStartObject();
        for (int c = 0; c < batch.Schema.Length; c++)
        {
            writer.WritePropertyName(batch.Schema[c].Name);
            WriteValue(writer, batch.Columns[c].GetValue(row), batch.Schema[c].Type);
        }

        writer.WriteEndObject();
    }

    public static void WriteValue(Utf8JsonWriter writer, object? value, WeftType type)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case long l when type.Kind == ScalarKind.Timestamp && !type.IsList:
                writer.WriteStringValue(Timestamps.Format(l));
                break;
            case long l:
                writer.WriteNumberValue(l);
                break;
            case double d when double.IsFinite(d):
                writer.WriteNumberValue(d);
                break;
            case float f when float.IsFinite(f):
                writer.WriteNumberValue(f);
                break;
            case double or float:
                writer.WriteStringValue(ValueFormat.Format(value, type));
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case string s:
                writer.WriteStringValue(s);
                break;
            case System.Collections.IEnumerable list:
                writer.WriteStartArray();
                foreach (var item in list)
                {
                    WriteValue(writer, item is int i ? (long)i : item, type.Element);
                }

                writer.WriteEndArray();
                break;
            default:
                writer.WriteStringValue(ValueFormat.Format(value, type));
                break;
        }
    }

    /// <summary>One line per row, columns in schema order, values in a stable text form; for comparisons.</summary>
    public static string Canonical(EventBatch batch)
    {
        var sb = new StringBuilder();
        for (int r = 0; r < batch.RowCount; r++)
        {
            for (int c = 0; c < batch.Schema.Length; c++)
            {
                sb.Append(c == 0 ? "" : " | ").Append(batch.Schema[c].Name).Append('=').Append(ValueFormat.Format(batch.Columns[c].GetValue(r), batch.Schema[c].Type));
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }
}
