using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Parquet;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>A missing input, or an input without the columns a job needs: fails the job before it writes anything.</summary>
public sealed class InputException(string message) : Exception(message);

/// <summary>
/// Reads the tables Weft takes as input — raw event archives and enrichment tables — in any of the
/// formats of <see cref="TableFormat"/>, as batches of a wanted schema. Rows are typed by the schema;
/// what cannot be typed becomes a dead letter naming the file and row, never a silent drop.
/// </summary>
public static class TableInputs
{
    /// <summary>
    /// Raw events for <paramref name="parser"/>'s signal with event_time in [<paramref name="fromMicros"/>,
    /// <paramref name="toMicros"/>), parsed and checked: each yielded result holds the good rows and the
    /// dead letters of one file (or row group) of the archive. A dead letter belongs to the range its
    /// event_time falls in, like an event; one whose event_time cannot be read is in the result only
    /// with <paramref name="untimedDeadLetters"/>, so that a job reading an archive in several ranges
    /// records it once.
    /// </summary>
    public static async IAsyncEnumerable<ParseResult> ReadRawEventsAsync(
        TableLocation archive, RawEventParser parser, ImmutableArray<FieldDefinition> rawSchema, long fromMicros, long toMicros,
        [EnumeratorCancellation] CancellationToken cancellationToken, bool untimedDeadLetters = true)
    {
        EnsureExists(archive);
        switch (archive.Format)
        {
            case TableFormat.Delta:
            {
                var table = await EventTable.OpenAsync(archive.Path, cancellationToken).ConfigureAwait(false);
                foreach (var want in rawSchema)
                {
                    // As for a Parquet folder: a wanted column in a type Weft does not read is an error, never nulls.
                    if (table.TypeNotRead(want.Name) is { } type)
                    {
                        throw new InputException($"{archive.Path}: column '{want.Name}' is {type}, which Weft does not read");
                    }
                }

                var columns = rawSchema.Where(f => table.Schema.Any(t => t.Name == f.Name)).Select(f => f.Name).ToList();
                var range = new ColumnRange(StandardColumns.EventTime, fromMicros, toMicros - 1);
                int part = 0;
                await foreach (var batch in table.ReadAsync(columns, null, range, cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    yield return parser.ParseTable(WithSchema(batch, rawSchema, archive.Path), $"{archive.Path}[{part++}]");
                }

                break;
            }

            case TableFormat.Parquet:
                foreach (var file in Files(archive, ".parquet"))
                {
                    await foreach (var (batch, source) in ReadParquetAsync(file, rawSchema, cancellationToken, root: archive.Path, required: RequiredRawColumns).ConfigureAwait(false))
                    {
                        yield return InRange(parser.ParseTable(batch, source), fromMicros, toMicros, untimedDeadLetters, batch);
                    }
                }

                break;

            case TableFormat.Jsonl:
                foreach (var file in Files(archive, ".jsonl", ".json", ".ndjson"))
                {
                    if (archive.Optional && ArrivedBefore(archive.Path, file, fromMicros - StreamArchiveSlackMicros))
                    {
                        continue;
                    }

                    yield return InRange(parser.Parse(JsonRows.ReadLines(file)), fromMicros, toMicros, untimedDeadLetters);
                }

                break;

            case TableFormat.Csv:
                foreach (var file in Files(archive, ".csv"))
                {
                    var misaligned = new List<DeadLetter>();
                    var inRange = InRange(parser.Parse(CsvAsJson(file, rawSchema, misaligned)), fromMicros, toMicros, untimedDeadLetters);
                    // Untimed: no cell of a misaligned row, event_time included, can be trusted to say which range it is in.
                    yield return misaligned.Count == 0 || !untimedDeadLetters ? inRange : inRange with { DeadLetters = [.. inRange.DeadLetters, .. misaligned] };
                }

                break;
        }
    }

    /// <summary>Every row of an enrichment table, with the columns of <paramref name="schema"/> (the source's row schema).</summary>
    public static async Task<(EventBatch Rows, IReadOnlyList<DeadLetter> Bad)> ReadEnrichmentAsync(
        TableLocation location, ImmutableArray<FieldDefinition> schema, CancellationToken cancellationToken)
    {
        var parts = new List<EventBatch>();
        var bad = new List<DeadLetter>();
        await foreach (var (rows, rejected) in ReadTableAsync(location, schema, cancellationToken).ConfigureAwait(false))
        {
            parts.Add(rows);
            bad.AddRange(rejected);
        }

        var all = parts.Count == 0 ? EventBatch.Empty(schema) : EventBatch.Concat(schema, parts);
        return (all, bad);
    }

    /// <summary>
    /// A table's rows with the columns of <paramref name="schema"/>, a part at a time (a row group, or
    /// a JSON-lines or CSV file), each with the rows of it that could not be typed; so a reader that
    /// keeps a slice of a large table never holds all of it.
    /// </summary>
    public static async IAsyncEnumerable<(EventBatch Rows, IReadOnlyList<DeadLetter> Bad)> ReadTableAsync(
        TableLocation location, ImmutableArray<FieldDefinition> schema, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(location);
        EnsureExists(location);
        switch (location.Format)
        {
            case TableFormat.Delta:
            {
                var table = await EventTable.OpenAsync(location.Path, cancellationToken).ConfigureAwait(false);
                var missing = schema.Where(f => !table.Schema.Any(t => t.Name == f.Name))
                    .Select(f => table.TypeNotRead(f.Name) is { } type ? $"{f.Name} (it is {type}, which Weft does not read)" : f.Name).ToList();
                if (missing.Count > 0)
                {
                    throw new InputException($"table '{location.Path}' has no column(s) {string.Join(", ", missing)}");
                }

                await foreach (var b in table.ReadAsync(schema.Select(f => f.Name).ToList(), cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    yield return (WithSchema(b, schema, location.Path), []);
                }

                break;
            }

            case TableFormat.Parquet:
                foreach (var file in Files(location, ".parquet"))
                {
                    await foreach (var (batch, _) in ReadParquetAsync(file, schema, cancellationToken, root: location.Path).ConfigureAwait(false))
                    {
                        yield return (WithSchema(batch, schema), []);
                    }
                }

                break;

            case TableFormat.Jsonl:
            case TableFormat.Csv:
                foreach (var file in location.Format == TableFormat.Jsonl ? Files(location, ".jsonl", ".json", ".ndjson") : Files(location, ".csv"))
                {
                    var misaligned = new List<DeadLetter>();
                    var records = location.Format == TableFormat.Jsonl ? JsonRows.ReadLines(file) : CsvAsJson(file, schema, misaligned);
                    var (rows, rejected) = JsonRows.Read(records, schema, "enrichment");
                    yield return (WithSchema(rows, schema), misaligned.Count == 0 ? rejected : [.. rejected, .. misaligned]);
                }

                break;
        }
    }

    /// <summary>The format a single file's extension names (.parquet, .csv, .jsonl/.json/.ndjson); null for any other.</summary>
    public static TableFormat? FormatOfFile(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".parquet" => TableFormat.Parquet,
        ".csv" => TableFormat.Csv,
        ".jsonl" or ".json" or ".ndjson" => TableFormat.Jsonl,
        _ => null,
    };

    /// <summary>
    /// The column names a table holds, whatever its format: a Delta table's schema and partition
    /// columns; the columns every Parquet file holds (a Hive folder above a file counts); a CSV file's
    /// header; the keys of a JSON-lines file's first rows. Reading a table with a schema fills a column
    /// the table lacks with nulls, so a reader comparing tables asks this first.
    /// </summary>
    public static async Task<IReadOnlySet<string>> ColumnNamesAsync(TableLocation location, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(location);
        EnsureExists(location);
        switch (location.Format)
        {
            case TableFormat.Delta:
            {
                var table = await EventTable.OpenAsync(location.Path, cancellationToken).ConfigureAwait(false);
                return table.Schema.Select(f => f.Name).Concat(table.PartitionColumns).ToHashSet(StringComparer.Ordinal);
            }

            case TableFormat.Parquet:
            {
                HashSet<string>? common = null;
                foreach (var file in Files(location, ".parquet"))
                {
                    ParquetFileReader reader;
                    try
                    {
                        reader = await ParquetFileReader.OpenAsync(file, cancellationToken).ConfigureAwait(false);
                    }
                    catch (ParquetFormatException ex)
                    {
                        throw new InputException($"{file}: not a readable Parquet file: {ex.Message}");
                    }

                    await using (reader.ConfigureAwait(false))
                    {
                        var names = reader.Schema.Fields.Select(f => f.Name).Concat(HivePartitionValues(location.Path, file).Keys).ToHashSet(StringComparer.Ordinal);
                        common = common is null ? names : [.. common.Intersect(names)];
                    }
                }

                return common ?? [];
            }

            default:
            {
                // The first rows name the columns: a CSV header, or the keys JSON lines use.
                var names = new HashSet<string>(StringComparer.Ordinal);
                var file = location.Format == TableFormat.Csv ? Files(location, ".csv").First() : Files(location, ".jsonl", ".json", ".ndjson").First();
                var records = location.Format == TableFormat.Csv ? CsvAsJson(file, [], misaligned: []) : JsonRows.ReadLines(file);
                foreach (var record in records.Take(location.Format == TableFormat.Csv ? 1 : 1_000))
                {
                    try
                    {
                        using var doc = JsonDocument.Parse(record.Json);
                        if (doc.RootElement.ValueKind == JsonValueKind.Object)
                        {
                            names.UnionWith(doc.RootElement.EnumerateObject().Select(p => p.Name));
                        }
                    }
                    catch (JsonException)
                    {
                        // A line that is not JSON names no column; reading the table reports it as a bad row.
                    }
                }

                return names;
            }
        }
    }

    /// <summary>
    /// How long before a range's start the stream's archive may hold its events: an event more than a
    /// day ahead of the clock that reads it is a dead letter, so a record of event time T was read, and
    /// filed under its flush's day, no earlier than T − 1 day; one more day covers clocks and midnight.
    /// </summary>
    private const long StreamArchiveSlackMicros = 2 * 86_400_000_000L;

    /// <summary>
    /// Whether <paramref name="file"/> of the stream's archive lies in a <c>date=YYYY-MM-DD</c> folder of
    /// a day that ended before <paramref name="cutoffMicros"/>: every record in it was read before then.
    /// </summary>
    internal static bool ArrivedBefore(string archive, string file, long cutoffMicros) =>
        TryArchiveDay(archive, file, out var day, out _) && Timestamps.ToMicros(new DateTimeOffset(day.AddDays(1), TimeSpan.Zero)) <= cutoffMicros;

    /// <summary>
    /// The day of the stream archive's <c>date=YYYY-MM-DD</c> folder <paramref name="file"/> lies in (the
    /// day its records were read), and the rest of its path below that folder; false for a file elsewhere.
    /// </summary>
    internal static bool TryArchiveDay(string archive, string file, out DateTime day, out string below)
    {
        var relative = Path.GetRelativePath(archive, file);
        int slash = relative.IndexOf(Path.DirectorySeparatorChar, StringComparison.Ordinal);
        below = slash > 0 ? relative[(slash + 1)..] : "";
        day = default;
        return slash > 0 && relative.StartsWith("date=", StringComparison.Ordinal)
            && DateTime.TryParseExact(relative[5..slash], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out day);
    }

    /// <summary>The columns a raw event table must have: a file without one would be nothing but dead letters.</summary>
    private static readonly string[] RequiredRawColumns = [StandardColumns.EventId, StandardColumns.UserId, StandardColumns.EventType, StandardColumns.EventTime];

    /// <summary>
    /// Reads a Parquet file's row groups as batches of <paramref name="schema"/> (absent columns are null;
    /// int32 widens to int64). Under <paramref name="root"/>, a column the file lacks is read from a
    /// Hive-style folder above it (<c>event_type=click/</c>), as DuckDB, Spark and pyarrow write
    /// partitioned datasets. A <paramref name="required"/> column found in neither fails the read
    /// before any row is returned.
    /// </summary>
    public static async IAsyncEnumerable<(EventBatch Batch, string Source)> ReadParquetAsync(
        string file, ImmutableArray<FieldDefinition> schema, [EnumeratorCancellation] CancellationToken cancellationToken,
        string? root = null, IReadOnlyList<string>? required = null)
    {
        ParquetFileReader reader;
        try
        {
            reader = await ParquetFileReader.OpenAsync(file, cancellationToken).ConfigureAwait(false);
        }
        catch (ParquetFormatException ex)
        {
            throw new InputException($"{file}: not a readable Parquet file: {ex.Message}");
        }
        catch (NotSupportedException ex)
        {
            throw new InputException($"{file}: {ex.Message}");
        }

        await using (reader.ConfigureAwait(false))
        {
            var partitionValues = root is null ? [] : HivePartitionValues(root, file);
            // A column the file holds in a type Weft does not read is an error when wanted, never nulls.
            foreach (var want in schema)
            {
                if (reader.UnsupportedColumns.TryGetValue(want.Name, out var why))
                {
                    throw new InputException($"{file}: column '{want.Name}' cannot be read: {why}");
                }
            }

            foreach (var name in required ?? [])
            {
                if (reader.Schema.IndexOf(name) < 0 && !partitionValues.ContainsKey(name))
                {
                    throw new InputException(
                        $"{file}: has no column '{name}', and no folder above it names one ('{name}=…'); every row would be a dead letter, so no row was read or written. " +
                        $"Columns in the file: {string.Join(", ", reader.Schema.Fields.Select(f => f.Name))}");
                }
            }

            for (int g = 0; g < reader.RowGroups.Count; g++)
            {
                int rows = (int)reader.RowGroups[g].RowCount;
                var columns = new Column[schema.Length];
                for (int c = 0; c < schema.Length; c++)
                {
                    var want = schema[c];
                    int index = reader.Schema.IndexOf(want.Name);
                    if (index < 0)
                    {
                        columns[c] = partitionValues.TryGetValue(want.Name, out var text)
                            ? PartitionColumn(want, text, rows, file)
                            : Column.AllNull(want.Type, rows);
                        continue;
                    }

                    ParquetColumnData data;
                    try
                    {
                        data = await reader.ReadColumnAsync(g, want.Name, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is NotSupportedException or ParquetFormatException)
                    {
                        throw new InputException($"{file}: column '{want.Name}' of row group {g}: {ex.Message}");
                    }

                    columns[c] = ToColumn(data, want, file);
                }

                yield return (new EventBatch(Nullable(schema), columns), $"{file}#rg{g}");
            }
        }
    }

    /// <summary>
    /// The <c>name=value</c> folders between <paramref name="root"/> and <paramref name="file"/>, values
    /// unescaped as Hive escapes them (<c>%3A</c>); Hive's marker for a null value maps to null.
    /// </summary>
    internal static Dictionary<string, string?> HivePartitionValues(string root, string file)
    {
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        var directory = Path.GetDirectoryName(Path.GetRelativePath(root, file));
        if (string.IsNullOrEmpty(directory) || directory.StartsWith("..", StringComparison.Ordinal))
        {
            return values;
        }

        foreach (var segment in directory.Split(Path.DirectorySeparatorChar))
        {
            int equals = segment.IndexOf('=');
            if (equals > 0)
            {
                string value = Uri.UnescapeDataString(segment[(equals + 1)..]);
                values[Uri.UnescapeDataString(segment[..equals])] = value == "__HIVE_DEFAULT_PARTITION__" ? null : value;
            }
        }

        return values;
    }

    private static Column PartitionColumn(FieldDefinition want, string? text, int rows, string file)
    {
        if (text is null)
        {
            return Column.AllNull(want.Type, rows);
        }

        object? value = want.Type.IsList ? null : want.Type.Kind switch
        {
            ScalarKind.String => text,
            ScalarKind.Int32 => int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i) ? i : null,
            ScalarKind.Int64 => long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l) ? l : null,
            ScalarKind.Float32 => float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float f) ? f : null,
            ScalarKind.Float64 => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : null,
            ScalarKind.Bool => bool.TryParse(text, out bool b) ? b : null,
            // Hive folders hold a space where ISO 8601 has a 'T' (DuckDB writes "2026-11-07 12:00:00").
            ScalarKind.Timestamp => Timestamps.TryParseInstant(text.Replace(' ', 'T'), out long micros) ? micros : null,
            _ => null,
        };
        if (value is null)
        {
            throw new InputException($"{file}: the folder value {want.Name}={text} cannot be read as {want.Type}");
        }

        return value switch
        {
            string text1 => new StringColumn(Filled(text1)),
            int i1 => new PrimitiveColumn<int>(want.Type, Filled(i1)),
            long l1 => new PrimitiveColumn<long>(want.Type, Filled(l1)),
            float f1 => new PrimitiveColumn<float>(want.Type, Filled(f1)),
            double d1 => new PrimitiveColumn<double>(want.Type, Filled(d1)),
            _ => new PrimitiveColumn<bool>(want.Type, Filled((bool)value)),
        };

        T[] Filled<T>(T one)
        {
            var values = new T[rows];
            Array.Fill(values, one);
            return values;
        }
    }

    private static Column ToColumn(ParquetColumnData data, FieldDefinition want, string file)
    {
        if (ColumnConversions.Stores(data.Field, want.Type))
        {
            return ColumnConversions.FromParquet(data, want.Type);
        }

        if (!want.Type.IsList && want.Type.Kind is ScalarKind.Int64 or ScalarKind.Timestamp && data.Values is int[] ints)
        {
            return new PrimitiveColumn<long>(want.Type, Array.ConvertAll(ints, i => (long)i), data.Nulls);
        }

        if (!want.Type.IsList && want.Type.Kind is ScalarKind.Timestamp && data.Values is long[] micros)
        {
            return new PrimitiveColumn<long>(want.Type, micros, data.Nulls); // integers are microseconds, as in raw JSON
        }

        if (!want.Type.IsList && want.Type.Kind is ScalarKind.Timestamp && data.Values is string?[] texts)
        {
            var instants = new long[texts.Length];
            for (int i = 0; i < texts.Length; i++)
            {
                if (texts[i] is { } text && !Timestamps.TryParseInstant(text, out instants[i]))
                {
                    throw new InputException($"{file}: column '{want.Name}', row {i + 1}: \"{text}\" is not an ISO-8601 instant");
                }
            }

            return new PrimitiveColumn<long>(want.Type, instants, data.Nulls);
        }

        if (!want.Type.IsList && want.Type.Kind is ScalarKind.Float64 && data.Values is float[] floats)
        {
            return new PrimitiveColumn<double>(want.Type, Array.ConvertAll(floats, f => (double)f), data.Nulls);
        }

        throw new InputException($"{file}: column '{want.Name}' holds Parquet {data.Field.Type}{(data.Field.IsList ? " list" : "")}, which cannot be read as {want.Type}");
    }

    private static ImmutableArray<FieldDefinition> Nullable(ImmutableArray<FieldDefinition> schema) =>
        schema.Select(f => f with { Nullable = true }).ToImmutableArray();

    /// <summary>
    /// The batch with exactly <paramref name="schema"/>'s columns: absent ones all null, and a table's
    /// narrower or same-storage column read as the wanted type (int32 as int64, timestamp or double;
    /// int64 as timestamp or double; float as double), as from a Parquet folder. Any other difference
    /// fails naming <paramref name="source"/> and the column.
    /// </summary>
    internal static EventBatch WithSchema(EventBatch batch, ImmutableArray<FieldDefinition> schema, string source = "input")
    {
        var columns = new Column[schema.Length];
        for (int c = 0; c < schema.Length; c++)
        {
            columns[c] = batch.TryGetColumn(schema[c].Name, out var column) ? Conform(column, schema[c], source) : Column.AllNull(schema[c].Type, batch.RowCount);
        }

        return new EventBatch(Nullable(schema), columns);
    }

    private static Column Conform(Column column, FieldDefinition want, string source)
    {
        if (column.Type == want.Type)
        {
            return column;
        }

        if (!want.Type.IsList && !column.Type.IsList)
        {
            // Integers as timestamps are microseconds, as in raw JSON; the rest widens as a file's column does.
            switch (column, want.Type.Kind)
            {
                case (PrimitiveColumn<int> ints, ScalarKind.Timestamp):
                    return new PrimitiveColumn<long>(want.Type, Array.ConvertAll(ints.Values, i => (long)i), ints.Nulls);
                case (PrimitiveColumn<long> longs, ScalarKind.Int64 or ScalarKind.Timestamp):
                    return new PrimitiveColumn<long>(want.Type, longs.Values, longs.Nulls);
            }
        }

        return ColumnConversions.Widen(column, want.Type)
            ?? throw new InputException($"{source}: column '{want.Name}' is {column.Type}, which cannot be read as {want.Type}");
    }

    /// <summary>
    /// The events and dead letters of <paramref name="result"/> in [<paramref name="fromMicros"/>,
    /// <paramref name="toMicros"/>). A dead letter's event_time comes from <paramref name="table"/>'s
    /// column (a table's rows) or from its raw JSON payload.
    /// </summary>
    private static ParseResult InRange(ParseResult result, long fromMicros, long toMicros, bool untimedDeadLetters, EventBatch? table = null)
    {
        var times = ((PrimitiveColumn<long>)result.Events[StandardColumns.EventTime]).Values;
        var keep = new List<int>(times.Length);
        for (int i = 0; i < times.Length; i++)
        {
            if (times[i] >= fromMicros && times[i] < toMicros)
            {
                keep.Add(i);
            }
        }

        var tableTimes = table is not null && table.TryGetColumn(StandardColumns.EventTime, out var column) ? column : null;
        var deadLetters = new List<DeadLetter>(result.DeadLetters.Count);
        var deadLetterRows = new List<int>(result.DeadLetters.Count);
        for (int i = 0; i < result.DeadLetters.Count; i++)
        {
            int row = i < result.DeadLetterRows.Length ? result.DeadLetterRows[i] : -1;
            long? time = tableTimes is not null
                ? row >= 0 && !tableTimes.IsNull(row) ? (long?)tableTimes.GetValue(row) : null
                : EventTimeInPayload(result.DeadLetters[i].Payload);
            if (time is { } t ? t >= fromMicros && t < toMicros : untimedDeadLetters)
            {
                deadLetters.Add(result.DeadLetters[i]);
                deadLetterRows.Add(row);
            }
        }

        if (keep.Count == times.Length && deadLetters.Count == result.DeadLetters.Count)
        {
            return result;
        }

        var rows = keep.ToArray();
        return result with
        {
            Events = keep.Count == times.Length ? result.Events : result.Events.Gather(rows),
            SourceRows = keep.Count == times.Length || result.SourceRows.Length != times.Length ? result.SourceRows : Array.ConvertAll(rows, r => result.SourceRows[r]),
            DeadLetters = deadLetters,
            DeadLetterRows = [.. deadLetterRows],
        };
    }

    /// <summary>The event_time a raw JSON record states (an ISO-8601 string or microseconds), or null.</summary>
    internal static long? EventTimeInPayload(string? payload)
    {
        if (payload is null)
        {
            return null;
        }

        try
        {
            var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(payload));
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            long? time = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isTime = reader.ValueTextEquals(StandardColumns.EventTime);
                reader.Read();
                if (isTime)
                {
                    time = reader.TokenType switch
                    {
                        JsonTokenType.Number when reader.TryGetInt64(out long micros) => micros,
                        JsonTokenType.String when Timestamps.TryParseInstant(reader.GetString(), out long micros) => micros,
                        _ => null,
                    };
                }

                reader.Skip();
            }

            return time;
        }
        catch (JsonException)
        {
            return null; // a truncated or malformed payload: its time is unknown
        }
    }

    internal static void EnsureExists(TableLocation location)
    {
        if (!File.Exists(location.Path) && !Directory.Exists(location.Path))
        {
            throw new InputException($"input '{location.Path}' ({location.Format.ToString().ToLowerInvariant()}) does not exist");
        }
    }

    private static IEnumerable<string> Files(TableLocation location, params string[] extensions)
    {
        if (File.Exists(location.Path))
        {
            return [location.Path];
        }

        var files = Directory.EnumerateFiles(location.Path, "*", SearchOption.AllDirectories)
            .Where(f => extensions.Any(e => f.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
        {
            throw new InputException($"input folder '{location.Path}' holds no {string.Join(" or ", extensions)} files");
        }

        return files;
    }

    /// <summary>
    /// CSV rows as JSON records, typed by <paramref name="schema"/> (numbers and booleans unquoted,
    /// empty cells null, a quoted empty cell of a text column the empty string), so CSV goes through the same parser and checks as JSON; "path:line" sources.
    /// A row with more cells than the header (an unquoted comma in a cell shifts every cell after it)
    /// is not a record: it goes to <paramref name="misaligned"/> as a dead letter naming the file and line,
    /// or, without that list, fails the read naming them. Its extra cells were dropped silently before.
    /// A row with fewer cells reads its missing cells as null, except without that list (a strict read,
    /// as of labels), where it fails the same way.
    /// </summary>
    internal static IEnumerable<RawRecord> CsvAsJson(string file, ImmutableArray<FieldDefinition> schema, List<DeadLetter>? misaligned = null)
    {
        using var reader = new StreamReader(file);
        var fields = new List<string?>();
        int line = 1;
        if (!ReadRecord())
        {
            yield break;
        }

        var header = fields.Select(f => f ?? "").ToArray();
        for (int c = 0; c < header.Length; c++)
        {
            // Two cells of a row under one name: JSON would keep the last and drop the other silently.
            int earlier = Array.IndexOf(header, header[c], 0, c);
            if (earlier >= 0)
            {
                throw new InputException($"CSV file '{file}', line 1: column '{header[c]}' appears twice in the header (columns {earlier + 1} and {c + 1})");
            }
        }

        var types = header.Select(h => schema.FirstOrDefault(f => f.Name == h)?.Type).ToArray();
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        while (true)
        {
            int first = line;
            if (!ReadRecord())
            {
                yield break;
            }

            if (fields is [null] && header.Length > 1)
            {
                continue; // a blank line (one at the end of a file is common), not a row of empty cells
            }

            bool wide = fields.Count > header.Length;
            if (wide && misaligned is null)
            {
                throw new InputException($"CSV file '{file}', line {first}: {fields.Count} cells under a header of {header.Length} (a cell with an unquoted comma?)");
            }

            if (fields.Count < header.Length && misaligned is null)
            {
                // Read strictly (labels): the missing cells would be nulls, a label or a time silently gone.
                throw new InputException($"CSV file '{file}', line {first}: {fields.Count} cell(s) under a header of {header.Length} (a row cut short?); write an empty cell for a missing value");
            }

            buffer.ResetWrittenCount();
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                for (int c = 0; c < header.Length; c++)
                {
                    string? cell = c < fields.Count ? fields[c] : null;
                    if (cell is null || (cell.Length == 0 && types[c] is not { IsList: false, Kind: ScalarKind.String }))
                    {
                        // An unquoted empty cell is null; a quoted one ("") is the empty string where
                        // the column holds text, and null where no other type can read it.
                        json.WriteNull(header[c]);
                    }
                    else if (types[c] is { IsList: false, Kind: ScalarKind.Int32 or ScalarKind.Int64 or ScalarKind.Float32 or ScalarKind.Float64 } && IsJsonNumber(cell))
                    {
                        json.WritePropertyName(header[c]);
                        json.WriteRawValue(cell);
                    }
                    else if (types[c] is { IsList: false, Kind: ScalarKind.Bool } && bool.TryParse(cell, out bool b))
                    {
                        json.WriteBoolean(header[c], b);
                    }
                    else if (types[c] is { IsList: true } && IsJson(cell))
                    {
                        json.WritePropertyName(header[c]);
                        json.WriteRawValue(cell);
                    }
                    else
                    {
                        json.WriteString(header[c], cell);
                    }
                }

                if (wide)
                {
                    // Kept in the dead letter's payload, so the row can be mended and sent again.
                    json.WriteStartArray("_extra_cells");
                    for (int c = header.Length; c < fields.Count; c++)
                    {
                        json.WriteStringValue(fields[c]);
                    }

                    json.WriteEndArray();
                }

                json.WriteEndObject();
            }

            if (wide)
            {
                int at = Array.IndexOf(header, StandardColumns.EventId);
                int userAt = Array.IndexOf(header, StandardColumns.UserId);
                misaligned!.Add(new DeadLetter(
                    at >= 0 ? fields[at] : null,
                    userAt >= 0 && long.TryParse(fields[userAt], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long user) ? user : null,
                    Array.IndexOf(header, StandardColumns.EventType) is >= 0 and var typeAt ? fields[typeAt] : null,
                    "parse",
                    $"{fields.Count} cells under a header of {header.Length}: a cell with an unquoted comma shifts the ones after it, so no cell of the row can be trusted",
                    $"{file}:{first}",
                    Encoding.UTF8.GetString(buffer.WrittenSpan)));
                continue;
            }

            yield return new RawRecord(buffer.WrittenMemory.ToArray(), $"{file}:{first}");
        }

        bool ReadRecord()
        {
            try
            {
                return Csv.ReadRecord(reader, fields, ref line);
            }
            catch (FormatException ex)
            {
                // An unclosed quote swallows the rest of the file: no row after it can be told apart.
                throw new InputException($"CSV file '{file}', {ex.Message}");
            }
        }
    }

    /// <summary>
    /// A cell JSON takes as a number. double.TryParse also takes "+5", ".5", "NaN" and "Infinity",
    /// which written raw made the record invalid JSON and crashed the read; such a cell goes as text,
    /// so the row is refused (a dead letter, a bad label row) naming the file and line.
    /// </summary>
    private static bool IsJsonNumber(string cell)
    {
        var bytes = Encoding.UTF8.GetBytes(cell);
        var reader = new Utf8JsonReader(bytes);
        try
        {
            return reader.Read() && reader.TokenType == JsonTokenType.Number && reader.TokenStartIndex == 0 && reader.BytesConsumed == bytes.Length;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool IsJson(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>A short text of a dead letter for reports.</summary>
    internal static string Describe(DeadLetter d) => $"{d.Source}: {d.Reason}";

    internal static string Utf8(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);
}
