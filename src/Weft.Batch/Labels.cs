using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Parquet;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>
/// A label file for <c>weft training-set</c>: one row per training example with <c>user_id</c>,
/// <c>label_time</c> and any label columns, in Parquet (types from the file), JSON lines or CSV
/// (types inferred over every row: integers, numbers, booleans, strings). A file without the
/// required columns, or with no rows, fails fast, naming the file and what is missing.
/// </summary>
public static class Labels
{
    public const string LabelTime = "label_time";

    /// <summary>1971-01-01T00:00:00Z in µs: a label time given as a number from 0 up to it is refused (see <see cref="RawEventParser.MinEventTime"/>).</summary>
    private static readonly long EarliestLabelMicros = Timestamps.ToMicros(new DateTimeOffset(1971, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public static async Task<(EventBatch Rows, long[] Users, long[] Times)> ReadAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            throw new InputException($"label file '{path}' does not exist");
        }

        var format = TableInputs.FormatOfFile(path) ?? TableFormat.Jsonl;

        EventBatch rows;
        bool numericTimes; // label_time given as a number, not as a timestamp or ISO-8601 text
        List<RawRecord>? records = null; // a text file's rows, one a record: where each came from
        if (format == TableFormat.Parquet)
        {
            ImmutableArray<FieldDefinition> schema;
            ParquetFileReader reader;
            try
            {
                reader = await ParquetFileReader.OpenAsync(path, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ParquetFormatException or NotSupportedException)
            {
                throw new InputException($"label file '{path}': {ex.Message}");
            }

            await using (reader.ConfigureAwait(false))
            {
                // Every label column goes into the training set, so one Weft cannot read fails the file
                // rather than vanishing from the output.
                if (reader.UnsupportedColumns.Count > 0)
                {
                    var (name, why) = reader.UnsupportedColumns.First();
                    throw new InputException($"label file '{path}': column '{name}' cannot be read: {why}");
                }

                schema = [.. reader.Schema.Fields.Select(ColumnConversions.ToFieldDefinition)];
            }

            numericTimes = IsNumber(schema, LabelTime);
            schema = Required(path, schema.Select(f => f with { Nullable = true }).ToList());
            var parts = new List<EventBatch>();
            await foreach (var (batch, _) in TableInputs.ReadParquetAsync(path, schema, cancellationToken).ConfigureAwait(false))
            {
                parts.Add(batch);
            }

            rows = parts.Count == 0 ? EventBatch.Empty(schema) : EventBatch.Concat(parts[0].Schema, parts);
            if (rows.RowCount == 0)
            {
                // As for CSV and JSON lines: an empty training set with exit 0 hides a wrong file.
                throw new InputException($"label file '{path}' holds no label rows");
            }
        }
        else
        {
            var csvSchema = format == TableFormat.Csv ? InferCsv(path) : null;
            records = (csvSchema is not null ? TableInputs.CsvAsJson(path, [.. csvSchema]) : JsonRows.ReadLines(path)).ToList();
            if (records.FirstOrDefault(r => NotText.Holds(r.Json.Span)) is { Source: not null } notText)
            {
                throw new InputException($"label file '{path}': {notText.Source}: {NotText.Reason(notText.Json.Span)}");
            }

            if (records.Count == 0)
            {
                // Its columns come from its rows, so without one the error named them missing.
                throw new InputException($"label file '{path}' holds no label rows");
            }

            var inferred = csvSchema ?? Infer(path, records); // a CSV file's types come from its cells, read once already
            CheckTimes(path, records);
            numericTimes = IsNumber(inferred, LabelTime);
            var schema = Required(path, inferred);
            var (read, bad) = JsonRows.Read(records, schema, "labels");
            if (bad.Count > 0)
            {
                throw new InputException($"label file '{path}': {bad.Count} bad row(s), e.g. {TableInputs.Describe(bad[0])}");
            }

            rows = read;
        }

        // A text file's row is named by its line (blank lines and a CSV header are not rows), as its
        // parse errors name it; a Parquet file's by its position.
        string Row(int i) => records is not null && records[i].Source.LastIndexOf(':') is int colon and >= 0
            ? $"label file '{path}', line {records[i].Source[(colon + 1)..]}"
            : $"label file '{path}', row {i + 1}";
        var users = rows[StandardColumns.UserId];
        var times = rows[LabelTime];
        var userValues = new long[rows.RowCount];
        var timeValues = new long[rows.RowCount];
        for (int i = 0; i < rows.RowCount; i++)
        {
            if (users.IsNull(i) || times.IsNull(i))
            {
                throw new InputException($"{Row(i)}: {(users.IsNull(i) ? "user_id" : LabelTime)} is empty");
            }

            userValues[i] = Convert.ToInt64(users.GetValue(i), CultureInfo.InvariantCulture);
            timeValues[i] = Convert.ToInt64(times.GetValue(i), CultureInfo.InvariantCulture);
            if (timeValues[i] < TimeBuckets.MinMicros || timeValues[i] > TimeBuckets.MaxMicros)
            {
                // The lake's reads go by time bucket; such a time failed the whole job later, as a bare
                // overflowed number naming no file or row.
                throw new InputException($"{Row(i)}: label_time {timeValues[i]} µs lies outside the years 1–9999");
            }

            if (numericTimes && timeValues[i] < EarliestLabelMicros)
            {
                // Epoch seconds or milliseconds read as µs land in 1970 (a negative number before it), and
                // every sequence cut there is empty: a training set of empty sequences with exit 0. Raw
                // events this old are dead letters.
                throw new InputException($"{Row(i)}: label_time {Timestamps.Format(timeValues[i])} is before 1971: seconds or milliseconds since the epoch? give microseconds, or ISO-8601 text");
            }
        }

        return (rows, userValues, timeValues);
    }

    /// <summary>
    /// Refuses a label_time given as text that is not ISO 8601 (<see cref="Timestamps.TryParseInstant"/>),
    /// as a Parquet file's text is refused. The typed read parses text as the framework guesses
    /// (invariant culture), so <c>05/11/2026</c> read as 11 May, where its writer may have meant 5
    /// November: every example of the row cut at another day, with exit 0.
    /// </summary>
    /// <remarks>
    /// A number there is held to the numeric column's rule too (not before 1971: seconds or milliseconds
    /// read as µs) whatever the column was typed as: a JSON-lines file whose first label_time is text
    /// typed the column by it, and a later row's epoch milliseconds landed in 1970 unchecked, its example empty.
    /// </remarks>
    private static void CheckTimes(string path, List<RawRecord> records)
    {
        foreach (var record in records)
        {
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(record.Json);
            }
            catch (JsonException)
            {
                continue; // reported by the typed read, with its line
            }

            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty(LabelTime, out var time))
                {
                    continue;
                }

                int colon = record.Source.LastIndexOf(':');
                string where = colon >= 0 ? $"line {record.Source[(colon + 1)..]}" : record.Source;
                if (time.ValueKind == JsonValueKind.String && time.GetString() is { } text && !Timestamps.TryParseInstant(text.Trim(), out _)) // a space after a CSV comma is no other instant
                {
                    throw new InputException($"label file '{path}', {where}: label_time \"{text}\" is not an ISO-8601 instant (e.g. 2026-11-05T10:00:00Z, 2026-11-05 10:00:00+02:00, 2026-11-05) or integer microseconds since the epoch");
                }

                if (time.ValueKind == JsonValueKind.Number && time.TryGetInt64(out long micros) && micros >= TimeBuckets.MinMicros && micros < EarliestLabelMicros)
                {
                    throw new InputException($"label file '{path}', {where}: label_time {Timestamps.Format(micros)} is before 1971: seconds or milliseconds since the epoch? give microseconds, or ISO-8601 text");
                }
            }
        }
    }

    private static bool IsNumber(IEnumerable<FieldDefinition> schema, string column) =>
        schema.FirstOrDefault(f => f.Name == column) is { Type: { IsList: false, Kind: ScalarKind.Int64 or ScalarKind.Int32 } };

    private static ImmutableArray<FieldDefinition> Required(string path, IReadOnlyList<FieldDefinition> schema)
    {
        var missing = new List<string>();
        var fields = schema.ToList();
        for (int a = 0; a < fields.Count; a++)
        {
            if (fields.FindIndex(a + 1, f => string.Equals(f.Name, fields[a].Name, StringComparison.OrdinalIgnoreCase)) is int b and >= 0)
            {
                // Both would be written, and readers that ignore case (DuckDB, Spark) read them as one
                // column or rename one: a label read as another.
                throw new InputException($"label file '{path}': columns '{fields[a].Name}' and '{fields[b].Name}' differ only in case; rename one");
            }
        }

        int u = fields.FindIndex(f => f.Name == StandardColumns.UserId);
        int t = fields.FindIndex(f => f.Name == LabelTime);
        if (u < 0)
        {
            missing.Add(StandardColumns.UserId);
        }
        else if (!fields[u].Type.IsInteger)
        {
            throw new InputException($"label file '{path}': user_id must be an integer column, found {fields[u].Type}");
        }
        else
        {
            fields[u] = fields[u] with { Type = WeftType.Int64 };
        }

        if (t < 0)
        {
            missing.Add(LabelTime);
        }
        else if (fields[t].Type.IsList || fields[t].Type.Kind is not (ScalarKind.Timestamp or ScalarKind.String or ScalarKind.Int64))
        {
            throw new InputException($"label file '{path}': label_time must be a timestamp (or ISO-8601 text), found {fields[t].Type}");
        }
        else
        {
            fields[t] = fields[t] with { Type = WeftType.Timestamp };
        }

        if (missing.Count > 0)
        {
            throw new InputException($"label file '{path}' lacks the required column(s) {string.Join(" and ", missing)} (it has: {string.Join(", ", schema.Select(f => f.Name))})");
        }

        return [.. fields];
    }

    /// <summary>
    /// A CSV file's column types from its text, over every row (a guess from the first rows failed a
    /// valid file at the first row past them that widened a column): integers where every cell is one,
    /// then numbers, then booleans, else text (empty cells are nulls and say nothing), so that the
    /// records it becomes carry numbers and booleans as JSON does.
    /// </summary>
    private static List<FieldDefinition> InferCsv(string path)
    {
        var columns = new List<(string Name, bool Long, bool Double, bool Bool)>();
        foreach (var record in TableInputs.CsvAsJson(path, [], misaligned: []))
        {
            using var doc = JsonDocument.Parse(record.Json);
            int c = 0;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (c == columns.Count)
                {
                    columns.Add((p.Name, true, true, true));
                }

                if (p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is { } cell)
                {
                    var (name, isLong, isDouble, isBool) = columns[c];
                    columns[c] = (name,
                        isLong && long.TryParse(cell, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _),
                        isDouble && double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out _),
                        isBool && bool.TryParse(cell, out _));
                }

                c++;
            }
        }

        return columns.Select(k => new FieldDefinition(k.Name, k.Long ? WeftType.Int64 : k.Double ? WeftType.Float64 : k.Bool ? WeftType.Bool : WeftType.String, true)).ToList();
    }

    /// <summary>
    /// Column types across every record: a column's first non-null value gives it, and an integer column
    /// that also holds a fraction is a number column. A column that first appears, or first has a value,
    /// after many rows is still found (a guess from the first rows dropped it or typed it wrongly).
    /// </summary>
    private static List<FieldDefinition> Infer(string path, IReadOnlyList<RawRecord> records)
    {
        var order = new List<string>();
        var types = new Dictionary<string, WeftType?>(StringComparer.Ordinal); // null until a value says (default(WeftType) is a real type)
        var names = new HashSet<string>(StringComparer.Ordinal);
        bool anyObject = false;
        foreach (var record in records)
        {
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(record.Json);
            }
            catch (JsonException ex)
            {
                if (!anyObject)
                {
                    // The first line already is not JSON: likely another format under a name Weft reads as JSON lines.
                    throw new InputException($"label file '{path}' is not JSON lines ({record.Source}: {ex.Message}); label files are Parquet (.parquet), CSV (.csv) or JSON lines (one object per line, any other name)");
                }

                continue; // reported by the typed read, with its line
            }

            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new InputException($"label file '{path}', {record.Source}: a row is a JSON object, not {Describe(doc.RootElement.ValueKind)}{(doc.RootElement.ValueKind == JsonValueKind.Array ? " (a JSON array of rows is not read: write one object per line)" : "")}");
                }

                anyObject = true;
                names.Clear();
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (!names.Add(p.Name))
                    {
                        // JSON's last-one-wins would silently label another user or time.
                        throw new InputException($"label file '{path}', {record.Source}: column '{p.Name}' is given twice in one row");
                    }

                    if (p.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                    {
                        throw new InputException($"label file '{path}', {record.Source}: column '{p.Name}' holds {Describe(p.Value.ValueKind)}; label columns hold numbers, booleans, text or timestamps (flatten it, or write the labels as Parquet)");
                    }

                    if (!types.ContainsKey(p.Name))
                    {
                        order.Add(p.Name);
                        types[p.Name] = null;
                    }

                    if (types[p.Name] == WeftType.Int64 && p.Value.ValueKind == JsonValueKind.Number && !p.Value.TryGetInt64(out _))
                    {
                        types[p.Name] = WeftType.Float64; // an integer-looking first value does not make a column integral
                    }

                    if (types[p.Name] is not null)
                    {
                        continue;
                    }

                    types[p.Name] = p.Value.ValueKind switch
                    {
                        JsonValueKind.Number => p.Value.TryGetInt64(out _) ? WeftType.Int64 : WeftType.Float64,
                        JsonValueKind.True or JsonValueKind.False => WeftType.Bool,
                        JsonValueKind.String => WeftType.String,
                        _ => null,
                    };
                }
            }
        }

        return order.Select(n => new FieldDefinition(n, types[n] ?? WeftType.String, true)).ToList();
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "a JSON array",
        JsonValueKind.Object => "a JSON object",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.Null => "null",
        _ => "a boolean",
    };
}
