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
        var rows = new Rows(schema, stage);
        foreach (var record in records)
        {
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(record.Json);
            }
            catch (JsonException)
            {
                rows.Refuse(null, null, null, "malformed JSON", record.Source, Encoding.UTF8.GetString(record.Json.Span));
                continue;
            }

            using (doc)
            {
                try
                {
                    rows.Add(doc.RootElement, record.Source);
                }
                catch (InvalidOperationException) when (NotText.Holds(record.Json.Span))
                {
                    // The reader decodes a string only when asked for it, and throws then.
                    rows.Refuse(null, null, null, NotText.Reason(record.Json.Span), record.Source, Encoding.UTF8.GetString(record.Json.Span));
                }
            }
        }

        return rows.Build();
    }

    /// <summary>Reads values already parsed (the elements of one JSON document) as objects with the schema's columns; <paramref name="sources"/> names each in a dead letter.</summary>
    public static (EventBatch Rows, IReadOnlyList<DeadLetter> Bad) Read(IReadOnlyList<JsonElement> objects, Func<int, string> sources, ImmutableArray<FieldDefinition> schema, string stage)
    {
        ArgumentNullException.ThrowIfNull(objects);
        ArgumentNullException.ThrowIfNull(sources);
        var rows = new Rows(schema, stage);
        for (int i = 0; i < objects.Count; i++)
        {
            rows.Add(objects[i], sources(i));
        }

        return rows.Build();
    }

    /// <summary>Columns being filled row by row, and the rows refused.</summary>
    private sealed class Rows
    {
        private readonly ImmutableArray<FieldDefinition> _schema;
        private readonly string _stage;
        private readonly List<object?>[] _values;
        private readonly object?[] _row;
        private readonly List<DeadLetter> _bad = [];

        public Rows(ImmutableArray<FieldDefinition> schema, string stage)
        {
            _schema = schema;
            _stage = stage;
            _values = new List<object?>[schema.Length];
            for (int i = 0; i < _values.Length; i++)
            {
                _values[i] = [];
            }

            _row = new object?[schema.Length];
        }

        public void Add(JsonElement root, string source)
        {
            string? problem = null;
            if (root.ValueKind != JsonValueKind.Object)
            {
                problem = "not a JSON object";
            }
            else
            {
                for (int c = 0; c < _schema.Length && problem is null; c++)
                {
                    _row[c] = null;
                    if (!root.TryGetProperty(_schema[c].Name, out var v) || v.ValueKind == JsonValueKind.Null)
                    {
                        if (!_schema[c].Nullable)
                        {
                            problem = $"missing '{_schema[c].Name}'";
                        }
                    }
                    else if (!RawEventParser.TryRead(v, _schema[c].Type, out _row[c], dated: !StandardColumns.IsStandard(_schema[c].Name)))
                    {
                        problem = _schema[c].Type == WeftType.Timestamp && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long micros)
                            ? $"'{_schema[c].Name}': {micros} µs lies outside the years 1–9999"
                            : $"'{_schema[c].Name}': expected {_schema[c].Type}";
                    }
                }
            }

            if (problem is not null)
            {
                // Named in the dead letter, so a bad row can be traced to its event and counted by type.
                bool isObject = root.ValueKind == JsonValueKind.Object;
                long? userId = isObject && root.TryGetProperty(StandardColumns.UserId, out var u) && u.ValueKind == JsonValueKind.Number && u.TryGetInt64(out long user) ? user : null;
                Refuse(isObject ? Text(root, StandardColumns.EventId) : null, userId, isObject ? Text(root, StandardColumns.EventType) : null, problem, source, root.GetRawText());
                return;
            }

            for (int c = 0; c < _schema.Length; c++)
            {
                _values[c].Add(_row[c]);
            }
        }

        public void Refuse(string? eventId, long? userId, string? eventType, string problem, string source, string payload) =>
            _bad.Add(new DeadLetter(eventId, userId, eventType, _stage, problem, source, payload));

        public (EventBatch Rows, IReadOnlyList<DeadLetter> Bad) Build()
        {
            var columns = new Column[_schema.Length];
            for (int c = 0; c < _schema.Length; c++)
            {
                columns[c] = ColumnBuilder.Build(_schema[c].Type, _values[c]);
            }

            return (new EventBatch(_schema, columns), _bad);
        }
    }

    private static string? Text(JsonElement row, string name) =>
        row.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>
    /// Reads a JSON-lines file lazily, one record per non-empty line (a line ends at '\n', a '\r' before
    /// it and a UTF-8 byte order mark at the start are dropped), with "path:line" as its source. A line's
    /// bytes are kept as they are: bytes that are not UTF-8 reach the parser, which dead-letters the
    /// record as the stream does, where decoding the file as text had replaced them with U+FFFD and kept
    /// the event in batch only.
    /// </summary>
    public static IEnumerable<RawRecord> ReadLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        var buffer = new byte[1 << 16];
        int start = 0, end = 0, lineNumber = 0;
        while (true)
        {
            int newline = Array.IndexOf(buffer, (byte)'\n', start, end - start);
            if (newline >= 0)
            {
                lineNumber++;
                if (Line(buffer, start, newline, lineNumber) is { } line)
                {
                    yield return new RawRecord(line, $"{path}:{lineNumber}");
                }

                start = newline + 1;
                continue;
            }

            // No line end in what is buffered: keep the partial line, and read more after it.
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }

            if (end == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }

            int read = stream.Read(buffer, end, buffer.Length - end);
            if (read == 0)
            {
                if (end > start && Line(buffer, start, end, lineNumber + 1) is { } last)
                {
                    yield return new RawRecord(last, $"{path}:{lineNumber + 1}");
                }

                yield break;
            }

            end += read;
        }
    }

    /// <summary>The bytes of <paramref name="buffer"/>[<paramref name="from"/>, <paramref name="to"/>) without a trailing '\r' (and, on line 1, a byte order mark); null when empty.</summary>
    private static byte[]? Line(byte[] buffer, int from, int to, int lineNumber)
    {
        if (lineNumber == 1 && to - from >= 3 && buffer[from] == 0xEF && buffer[from + 1] == 0xBB && buffer[from + 2] == 0xBF)
        {
            from += 3;
        }

        if (to > from && buffer[to - 1] == (byte)'\r')
        {
            to--;
        }

        return to > from ? buffer.AsSpan(from, to - from).ToArray() : null;
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
