using System.Collections.Immutable;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>
/// Writes a <see cref="SequenceTable"/> as one Parquet file that pandas, Polars and DuckDB read
/// directly: the key columns (user_id; for training sets the label columns), <c>length</c>,
/// <c>truncated</c>, then one LIST column per sequence column (newest element first; a list-typed
/// feature such as an embedding becomes a list of lists). With padding, every list has exactly N
/// entries — real elements first, then fill values (0, "", zero vectors) — and a <c>mask</c> list says
/// which are real. The file appears atomically (written aside, then renamed); its footer carries the
/// provenance (signal fingerprint, cut, lake version).
/// </summary>
public static class SequenceFiles
{
    public const string LengthColumn = "length";
    public const string TruncatedColumn = "truncated";
    public const string MaskColumn = "mask";
    private const int RowsPerGroup = 16_384;

    /// <summary>
    /// Refuses an output path that is a folder, or an existing file that is not Parquet: writing would
    /// replace it (a config, a label file, a table's log) with sequences. A Parquet file is replaced, so a
    /// snapshot can be written again. Creates the file's folder, so that one which cannot be created fails
    /// here, before the work, naming the output.
    /// </summary>
    public static void CheckOutput(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            throw new ArgumentException($"output '{path}' is a folder: give a file path (e.g. {Path.Combine(path, "part-00000.parquet")})");
        }

        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { Length: > 0 } folder && !Directory.Exists(folder))
        {
            try
            {
                Directory.CreateDirectory(folder);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"output '{path}': its folder '{folder}' cannot be created ({ex.Message})", ex);
            }
        }

        if (!File.Exists(path))
        {
            return;
        }

        Span<byte> magic = stackalloc byte[4];
        int read;
        using (var file = File.OpenRead(path))
        {
            read = file.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        }

        if (read < 4 || !magic.SequenceEqual("PAR1"u8))
        {
            throw new ArgumentException($"output '{path}' exists and is not a Parquet file: writing the sequences would replace it; remove it or choose another path");
        }
    }

    public static Task WriteAsync(
        string path, SequenceTable table, SignalDefinition signal, IReadOnlyDictionary<string, string> metadata, int? pad, IReadOnlySet<string>? nullable, CancellationToken cancellationToken) =>
        WriteAsync(path, table.Keys.Schema, One(table), signal, metadata, pad, nullable, cancellationToken);

    /// <summary>
    /// Writes sequences that arrive in parts (consecutive output rows, each part with key columns of
    /// <paramref name="keySchema"/>), so a large snapshot never has to be in memory at once. Each part
    /// becomes one or more row groups, converted and encoded on several threads and appended in order.
    /// Sequence columns in <paramref name="nullable"/> (<see cref="EnrichedRows.NullableColumns"/>) allow
    /// nulls whatever the definition declares.
    /// </summary>
    public static Task WriteAsync(
        string path, ImmutableArray<FieldDefinition> keySchema, IAsyncEnumerable<SequenceTable> parts, SignalDefinition signal,
        IReadOnlyDictionary<string, string> metadata, int? pad, IReadOnlySet<string>? nullable, CancellationToken cancellationToken) =>
        WriteAsync(path, keySchema, parts, signal, metadata, pad, nullable, padWidths: null, cancellationToken);

    /// <summary>
    /// As <see cref="WriteAsync(string, ImmutableArray{FieldDefinition}, IAsyncEnumerable{SequenceTable}, SignalDefinition, IReadOnlyDictionary{string, string}, int?, IReadOnlySet{string}?, CancellationToken)"/>,
    /// padding a list-valued column named in <paramref name="padWidths"/> (<see cref="ListWidths"/>) with zero
    /// vectors of that width. Another list column's fill is as wide as the first real value of its row
    /// group, which a row group of empty sequences does not have.
    /// </summary>
    public static async Task WriteAsync(
        string path, ImmutableArray<FieldDefinition> keySchema, IAsyncEnumerable<SequenceTable> parts, SignalDefinition signal,
        IReadOnlyDictionary<string, string> metadata, int? pad, IReadOnlySet<string>? nullable, IReadOnlyDictionary<string, int>? padWidths, CancellationToken cancellationToken)
    {
        if (pad is < 1)
        {
            throw new ArgumentException($"--pad must be at least 1, not {pad}", nameof(pad));
        }

        CheckOutput(path);

        var sequenceColumns = signal.SequenceColumns;
        var fields = new List<ParquetField>();
        foreach (var key in keySchema)
        {
            fields.Add(ColumnConversions.ToParquetField(key));
        }

        fields.Add(new ParquetField(LengthColumn, ParquetType.Int32, Nullable: false));
        fields.Add(new ParquetField(TruncatedColumn, ParquetType.Boolean, Nullable: false));
        if (pad is not null)
        {
            fields.Add(new ParquetField(MaskColumn, ParquetType.Boolean, Nullable: false, IsList: true));
        }

        foreach (var column in sequenceColumns)
        {
            var f = nullable is not null && nullable.Contains(column.Name) ? column with { Nullable = true } : column;
            var type = ColumnConversions.ToParquetType(f.Type.Kind);
            fields.Add(f.Type.IsList
                ? new ParquetField(f.Name, type, Nullable: false, IsList: true) { ListDepth = 2, InnerListNullable = f.Nullable && pad is null }
                : new ParquetField(f.Name, type, Nullable: false, IsList: true, ElementNullable: f.Nullable));
        }

        var schema = new ParquetSchema(fields);
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        string temporary = path + $".tmp-{Guid.NewGuid():N}";
        try
        {
            var writer = await ParquetFileWriter.CreateAsync(temporary, schema, cancellationToken: cancellationToken).ConfigureAwait(false);
            await using (writer.ConfigureAwait(false))
            {
                foreach (var (key, value) in metadata)
                {
                    writer.SetMetadata(key, value);
                }

                writer.SetMetadata("weft.pad", pad?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "");
                // Row groups are converted and encoded on the thread pool, up to one per core at a time,
                // and appended in order.
                var encoding = new Queue<Task<ParquetEncodedRowGroup>>();
                try
                {
                    await foreach (var part in parts.WithCancellation(cancellationToken).ConfigureAwait(false))
                    {
                        for (int start = 0; start < part.RowCount; start += RowsPerGroup)
                        {
                            int first = start;
                            int count = Math.Min(RowsPerGroup, part.RowCount - start);
                            encoding.Enqueue(Task.Run(() => writer.EncodeRowGroup(RowGroup(part, sequenceColumns, fields, first, count, pad, padWidths)), cancellationToken));
                            while (encoding.Count > Environment.ProcessorCount)
                            {
                                await writer.WriteRowGroupAsync(await encoding.Dequeue().ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                            }
                        }
                    }

                    while (encoding.Count > 0)
                    {
                        await writer.WriteRowGroupAsync(await encoding.Dequeue().ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    // After a failure: release what was encoded and not written.
                    while (encoding.Count > 0)
                    {
                        var pending = encoding.Dequeue();
                        try
                        {
                            (await pending.ConfigureAwait(false)).Dispose();
                        }
                        catch (Exception) when (cancellationToken.IsCancellationRequested || pending.IsFaulted)
                        {
                        }
                    }
                }

                await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

#pragma warning disable CS1998 // an async iterator of one element
    private static async IAsyncEnumerable<SequenceTable> One(SequenceTable table)
#pragma warning restore CS1998
    {
        yield return table;
    }

    /// <summary>
    /// The width of each list-valued enrichment column of <paramref name="signal"/>'s sequences (an
    /// embedding): the length of its first value in the enrichment table. Padding needs it where a row
    /// group holds no real value to take it from (every sequence empty: cold-start users, labels before any
    /// event), else its fill would be empty lists there and d-wide vectors elsewhere in the file.
    /// </summary>
    public static IReadOnlyDictionary<string, int> ListWidths(SignalDefinition signal, IReadOnlyDictionary<string, EnrichmentTable> enrichments)
    {
        ArgumentNullException.ThrowIfNull(signal);
        ArgumentNullException.ThrowIfNull(enrichments);
        var widths = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var enrichment in signal.Enrichments)
        {
            if (!enrichments.TryGetValue(enrichment.Source, out var table))
            {
                continue;
            }

            foreach (var name in enrichment.Columns)
            {
                if (widths.ContainsKey(name) || !signal.SequenceColumns.Any(f => f.Name == name && f.Type.IsList) || !table.Rows.TryGetColumn(name, out var column))
                {
                    continue;
                }

                for (int i = 0; i < column.Length; i++)
                {
                    if (!column.IsNull(i) && column.GetValue(i) is Array { Length: > 0 } value)
                    {
                        widths[name] = value.Length;
                        break;
                    }
                }
            }
        }

        return widths;
    }

    private static List<ParquetColumnData> RowGroup(SequenceTable table, ImmutableArray<FieldDefinition> sequenceColumns, List<ParquetField> fields, int start, int count, int? pad, IReadOnlyDictionary<string, int>? padWidths)
    {
        var columns = new List<ParquetColumnData>(fields.Count);
        int f = 0;
        var rows = Enumerable.Range(start, count).ToArray();
        foreach (var key in table.Keys.Columns)
        {
            columns.Add(ColumnConversions.ToParquet(key, fields[f++], rows));
        }

        // Slots: per output element, the element row it shows, or -1 for padding.
        var offsets = new int[count + 1];
        var slots = new List<int>();
        var lengths = new int[count];
        var truncated = new bool[count];
        for (int r = 0; r < count; r++)
        {
            int row = start + r;
            int length = table.Length(row);
            int shown = pad is { } n ? Math.Min(n, length) : length;
            for (int k = 0; k < shown; k++)
            {
                slots.Add(table.Offsets[row] + k);
            }

            for (int k = shown; k < (pad ?? 0); k++)
            {
                slots.Add(-1);
            }

            offsets[r + 1] = slots.Count;
            lengths[r] = shown;
            truncated[r] = table.Truncated[row] || shown < length;
        }

        var slotArray = slots.ToArray();
        columns.Add(ParquetColumnData.FromValues(fields[f++], lengths));
        columns.Add(ParquetColumnData.FromValues(fields[f++], truncated));
        if (pad is not null)
        {
            columns.Add(ParquetColumnData.Create(fields[f++], Array.ConvertAll(slotArray, s => s >= 0), null, offsets));
        }

        foreach (var column in sequenceColumns)
        {
            columns.Add(ListOf(fields[f++], table.Elements[column.Name], slotArray, offsets, padWidths is not null && padWidths.TryGetValue(column.Name, out int width) ? width : null));
        }

        return columns;
    }

    private static ParquetColumnData ListOf(ParquetField field, Column elements, int[] slots, int[] offsets, int? padWidth) => elements switch
    {
        PrimitiveColumn<long> c => Scalars(field, c, c.Values, slots, offsets),
        PrimitiveColumn<int> c => Scalars(field, c, c.Values, slots, offsets),
        PrimitiveColumn<double> c => Scalars(field, c, c.Values, slots, offsets),
        PrimitiveColumn<float> c => Scalars(field, c, c.Values, slots, offsets),
        PrimitiveColumn<bool> c => Scalars(field, c, c.Values, slots, offsets),
        StringColumn c => Strings(field, c, slots, offsets),
        ListColumn<float> c => Nested(field, c.Values, slots, offsets, padWidth),
        ListColumn<double> c => Nested(field, c.Values, slots, offsets, padWidth),
        ListColumn<long> c => Nested(field, c.Values, slots, offsets, padWidth),
        ListColumn<int> c => Nested(field, c.Values, slots, offsets, padWidth),
        ListColumn<bool> c => Nested(field, c.Values, slots, offsets, padWidth),
        _ => throw new NotSupportedException($"sequence column '{field.Name}' of type {elements.Type}"),
    };

    private static ParquetColumnData Scalars<T>(ParquetField field, Column column, T[] source, int[] slots, int[] offsets)
    {
        var values = new T[slots.Length];
        bool[]? nulls = null;
        for (int i = 0; i < slots.Length; i++)
        {
            int s = slots[i];
            if (s < 0)
            {
                continue; // padding: the default value, not null
            }

            if (column.IsNull(s))
            {
                nulls ??= new bool[slots.Length];
                nulls[i] = true;
            }
            else
            {
                values[i] = source[s];
            }
        }

        return ParquetColumnData.Create(field, values, null, offsets, nulls);
    }

    private static ParquetColumnData Strings(ParquetField field, StringColumn column, int[] slots, int[] offsets)
    {
        var values = new string?[slots.Length];
        bool[]? nulls = null;
        for (int i = 0; i < slots.Length; i++)
        {
            int s = slots[i];
            values[i] = s < 0 ? "" : column.Values[s];
            if (values[i] is null)
            {
                nulls ??= new bool[slots.Length];
                nulls[i] = true;
            }
        }

        return ParquetColumnData.Create(field, values, null, offsets, nulls);
    }

    private static ParquetColumnData Nested<T>(ParquetField field, T[]?[] lists, int[] slots, int[] offsets, int? padWidth)
    {
        // Padding repeats a zero vector as wide as the column's values: that of the row group's first
        // real value, so a sequence's fill matches its own elements; in a row group without one, the width
        // known for the whole file when given (else a fill of empty lists).
        int width = FirstWidth(lists, slots) is > 0 and int real ? real : padWidth ?? 0;

        var inner = new int[slots.Length + 1];
        bool[]? innerNulls = null;
        int total = 0;
        for (int i = 0; i < slots.Length; i++)
        {
            int s = slots[i];
            var list = s < 0 ? null : lists[s];
            if (s >= 0 && list is null && field.InnerListNullable)
            {
                innerNulls ??= new bool[slots.Length];
                innerNulls[i] = true;
            }
            else
            {
                total += list?.Length ?? width;
            }

            inner[i + 1] = total;
        }

        var values = new T[total];
        for (int i = 0; i < slots.Length; i++)
        {
            int s = slots[i];
            if (s >= 0 && lists[s] is { } list)
            {
                list.CopyTo(values, inner[i]);
            }
        }

        return ParquetColumnData.CreateNested(field, values, null, offsets, innerNulls, inner);
    }

    private static int FirstWidth<T>(T[]?[] lists, int[] slots)
    {
        foreach (var s in slots)
        {
            if (s >= 0 && lists[s] is { Length: > 0 } l)
            {
                return l.Length;
            }
        }

        return 0;
    }
}
