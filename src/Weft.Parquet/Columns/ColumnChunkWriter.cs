using System.Buffers;
using Weft.Parquet.Encodings;
using Weft.Parquet.Format;

namespace Weft.Parquet.Columns;

/// <summary>Reusable buffers for writing column chunks (one writer, one thread).</summary>
internal sealed class WriteScratch : IDisposable
{
    public PooledBuffer Page { get; } = new(64 * 1024);

    public PooledBuffer Compressed { get; } = new(64 * 1024);

    public PooledBuffer Header { get; } = new(256);

    public void Dispose()
    {
        Page.Dispose();
        Compressed.Dispose();
        Header.Dispose();
    }
}

/// <summary>
/// Encodes one column of one row group as a column chunk: an optional dictionary page, then data
/// pages (v1) that each end at a row boundary.
/// </summary>
internal static class ColumnChunkWriter
{
    /// <summary>
    /// Encodes <paramref name="column"/>. <paramref name="enclosingNulls"/> (columns inside nullable structs,
    /// when a struct is null in some row): per row, the definition level at which an enclosing group is
    /// null, or <see cref="GroupTree.NotNull"/>; the column is null in those rows.
    /// </summary>
    public static ColumnMetaData Write(
        ParquetColumnData column, ColumnDescriptor descriptor, ParquetWriterOptions options, long chunkOffset, PooledBuffer output, WriteScratch scratch, byte[]? enclosingNulls = null) =>
        column.Field.Type switch
        {
            ParquetType.Boolean => Write<bool, BooleanCodec>(column, descriptor, options, chunkOffset, output, scratch, enclosingNulls),
            ParquetType.Int32 => Write<int, Int32Codec>(column, descriptor, options, chunkOffset, output, scratch, enclosingNulls),
            ParquetType.Int64 or ParquetType.TimestampMicros => Write<long, Int64Codec>(column, descriptor, options, chunkOffset, output, scratch, enclosingNulls),
            ParquetType.Float => Write<float, FloatCodec>(column, descriptor, options, chunkOffset, output, scratch, enclosingNulls),
            ParquetType.Double => Write<double, DoubleCodec>(column, descriptor, options, chunkOffset, output, scratch, enclosingNulls),
            ParquetType.String => Write<string, StringCodec>(column, descriptor, options, chunkOffset, output, scratch, enclosingNulls),
            _ => throw new ArgumentOutOfRangeException(nameof(column), column.Field.Type, "Unknown ParquetType."),
        };

    private static ColumnMetaData Write<T, TCodec>(
        ParquetColumnData column, ColumnDescriptor descriptor, ParquetWriterOptions options, long chunkOffset, PooledBuffer output, WriteScratch scratch, byte[]? enclosingNulls)
        where T : notnull
        where TCodec : IValueCodec<T>
    {
        var field = column.Field;
        var values = (T[])column.Values;
        var rows = column.RowCount;
        var nulls = column.Nulls;
        var maxDef = descriptor.MaxDefinitionLevel;
        var maxRep = descriptor.MaxRepetitionLevel;
        var codec = PageCompression.ToThrift(options.Compression);

        T[]? compacted = null;
        DictionaryBuilder<T, TCodec>? dictionary = null;
        byte[]? defLevels = null;
        byte[]? repLevels = null;
        int[]? indices = null;
        try
        {
            // Present (non-null) values, in order. List columns: null and empty lists have no element
            // slots, so the flattened array is the present values unless some elements are null.
            ReadOnlySpan<T> present;
            var skip = field.IsList ? column.ElementNulls : nulls;
            if (skip is not null)
            {
                compacted = ArrayPool<T>.Shared.Rent(values.Length);
                var n = 0;
                for (var i = 0; i < values.Length; i++)
                {
                    if (!skip[i])
                    {
                        compacted[n++] = values[i];
                    }
                }

                present = compacted.AsSpan(0, n);
            }
            else
            {
                present = values;
            }

            // Levels.
            int levelCount;
            if (field.IsList)
            {
                levelCount = ListLevels.Count(column);
                defLevels = ArrayPool<byte>.Shared.Rent(levelCount);
                repLevels = ArrayPool<byte>.Shared.Rent(levelCount);
                ListLevels.Shred(column, descriptor, defLevels.AsSpan(0, levelCount), repLevels.AsSpan(0, levelCount), enclosingNulls);
            }
            else
            {
                levelCount = rows;
                if (maxDef > 0)
                {
                    defLevels = ArrayPool<byte>.Shared.Rent(rows);
                    var value = (byte)maxDef;
                    var none = (byte)(maxDef - 1);
                    for (var i = 0; i < rows; i++)
                    {
                        defLevels[i] = nulls is not null && nulls[i] ? none : value;
                    }

                    if (enclosingNulls is not null)
                    {
                        for (var i = 0; i < rows; i++)
                        {
                            defLevels[i] = enclosingNulls[i] == GroupTree.NotNull ? defLevels[i] : enclosingNulls[i];
                        }
                    }
                }
            }

            // Dictionary: used only if its PLAIN size stays within MaxDictionarySize and its values repeat.
            var useDictionary = false;
            if (options.UseDictionary && TCodec.Dictionary && present.Length > 0)
            {
                indices = ArrayPool<int>.Shared.Rent(present.Length);
                dictionary = new DictionaryBuilder<T, TCodec>(present.Length, options.MaxDictionarySize);
                useDictionary = dictionary.TryBuild(present, indices.AsSpan(0, present.Length), options.MaxDictionarySize);
            }

            var start = output.Length;
            long uncompressedTotal = 0;
            long? dictionaryOffset = null;
            var encodings = new List<PageEncoding> { PageEncoding.Plain };
            if (maxDef > 0 || maxRep > 0)
            {
                encodings.Add(PageEncoding.Rle);
            }

            var dictionaryCount = useDictionary ? dictionary!.Count : 0;
            if (useDictionary)
            {
                dictionaryOffset = chunkOffset;
                encodings.Add(PageEncoding.RleDictionary);
                scratch.Page.Clear();
                TCodec.EncodePlain(dictionary!.Entries, scratch.Page);
                uncompressedTotal += WritePage(
                    new PageHeader
                    {
                        Type = PageType.DictionaryPage,
                        DictionaryPageHeader = new DictionaryPageHeader { NumValues = dictionaryCount, Encoding = PageEncoding.Plain },
                    },
                    codec,
                    output,
                    scratch);
            }

            var dataOffset = chunkOffset + (output.Length - start);
            var indexBitWidth = useDictionary ? Math.Max(1, RleBitPackedHybrid.BitWidth(dictionaryCount - 1)) : 0;

            // Data pages, split at row boundaries once the estimated PLAIN size (1 + the value's PLAIN
            // size per row) passes the page size.
            var pageSize = options.DataPageSize;
            if (!field.IsList && nulls is null && TCodec.FixedPlainSize > 0)
            {
                // Every row costs the same 1 + FixedPlainSize bytes, so every page closes after
                // max(1, pageSize / that) rows: the split the general loop makes, without visiting rows.
                var perPage = (int)Math.Max(1, pageSize / (TCodec.FixedPlainSize + 1L));
                for (var first = 0; first < rows; first += perPage)
                {
                    var count = Math.Min(perPage, rows - first);
                    uncompressedTotal += WriteDataPage<T, TCodec>(
                        present.Slice(first, count), indices, first, useDictionary, indexBitWidth,
                        defLevels, repLevels, first, count, descriptor, codec, output, scratch);
                }
            }
            else
            {
                int rowStart = 0, levelStart = 0, valueStart = 0, level = 0, value = 0;
                long bytes = 0;
                for (var row = 0; row < rows; row++)
                {
                    int rowLevels, rowValues;
                    if (field.IsList)
                    {
                        // A row's levels run up to the next repetition level 0; its values are the
                        // levels at the maximum definition level.
                        var next = repLevels!.AsSpan(level + 1, levelCount - level - 1).IndexOf((byte)0);
                        rowLevels = next < 0 ? levelCount - level : next + 1;
                        rowValues = defLevels!.AsSpan(level, rowLevels).Count((byte)maxDef);
                    }
                    else
                    {
                        rowLevels = 1;
                        rowValues = nulls is not null && nulls[row] ? 0 : 1;
                    }

                    long rowBytes = 1;
                    for (var k = 0; k < rowValues; k++)
                    {
                        rowBytes += TCodec.PlainSize(present[value + k]);
                    }

                    if (row > rowStart && bytes + rowBytes > pageSize)
                    {
                        uncompressedTotal += WriteDataPage<T, TCodec>(
                            present[valueStart..value], indices, valueStart, useDictionary, indexBitWidth,
                            defLevels, repLevels, levelStart, level - levelStart, descriptor, codec, output, scratch);
                        rowStart = row;
                        levelStart = level;
                        valueStart = value;
                        bytes = 0;
                    }

                    bytes += rowBytes;
                    level += rowLevels;
                    value += rowValues;
                }

                if (rows > 0)
                {
                    uncompressedTotal += WriteDataPage<T, TCodec>(
                        present[valueStart..value], indices, valueStart, useDictionary, indexBitWidth,
                        defLevels, repLevels, levelStart, level - levelStart, descriptor, codec, output, scratch);
                }
            }

            return new ColumnMetaData
            {
                Type = TCodec.Physical,
                Encodings = encodings,
                PathInSchema = descriptor.Path,
                Codec = codec,
                NumValues = levelCount,
                TotalUncompressedSize = uncompressedTotal,
                TotalCompressedSize = output.Length - start,
                DataPageOffset = dataOffset,
                DictionaryPageOffset = dictionaryOffset,
                Statistics = ComputeStatistics<T, TCodec>(present, levelCount - present.Length),
            };
        }
        finally
        {
            if (compacted is not null)
            {
                ArrayPool<T>.Shared.Return(compacted, clearArray: !typeof(T).IsValueType);
            }

            if (defLevels is not null)
            {
                ArrayPool<byte>.Shared.Return(defLevels);
            }

            if (repLevels is not null)
            {
                ArrayPool<byte>.Shared.Return(repLevels);
            }

            if (indices is not null)
            {
                ArrayPool<int>.Shared.Return(indices);
            }

            dictionary?.Dispose();
        }
    }

    private static long WriteDataPage<T, TCodec>(
        ReadOnlySpan<T> values,
        int[]? indices,
        int valueStart,
        bool dictionaryEncoded,
        int indexBitWidth,
        byte[]? defLevels,
        byte[]? repLevels,
        int levelStart,
        int levelCount,
        ColumnDescriptor descriptor,
        CompressionCodec codec,
        PooledBuffer output,
        WriteScratch scratch)
        where TCodec : IValueCodec<T>
    {
        var page = scratch.Page;
        page.Clear();
        if (descriptor.MaxRepetitionLevel > 0)
        {
            WriteLevels(repLevels!.AsSpan(levelStart, levelCount), descriptor.MaxRepetitionLevel, page);
        }

        if (descriptor.MaxDefinitionLevel > 0)
        {
            WriteLevels(defLevels!.AsSpan(levelStart, levelCount), descriptor.MaxDefinitionLevel, page);
        }

        if (dictionaryEncoded)
        {
            page.WriteByte((byte)indexBitWidth);
            RleBitPackedHybrid.Encode(indices.AsSpan(valueStart, values.Length), indexBitWidth, page);
        }
        else
        {
            TCodec.EncodePlain(values, page);
        }

        return WritePage(
            new PageHeader
            {
                Type = PageType.DataPage,
                DataPageHeader = new DataPageHeader
                {
                    NumValues = levelCount,
                    Encoding = dictionaryEncoded ? PageEncoding.RleDictionary : PageEncoding.Plain,
                    DefinitionLevelEncoding = PageEncoding.Rle,
                    RepetitionLevelEncoding = PageEncoding.Rle,
                },
            },
            codec,
            output,
            scratch);
    }

    private static void WriteLevels(ReadOnlySpan<byte> levels, int maxLevel, PooledBuffer page)
    {
        var at = page.ReserveInt32();
        RleBitPackedHybrid.Encode(levels, RleBitPackedHybrid.BitWidth(maxLevel), page);
        page.PatchInt32LittleEndian(at, page.Length - at - 4);
    }

    /// <summary>Compresses scratch.Page and appends header and body to the output; returns header + uncompressed size.</summary>
    private static long WritePage(PageHeader template, CompressionCodec codec, PooledBuffer output, WriteScratch scratch)
    {
        var raw = scratch.Page.WrittenSpan;
        var body = PageCompression.Compress(codec, raw, scratch.Compressed);
        var header = new PageHeader
        {
            Type = template.Type,
            UncompressedPageSize = raw.Length,
            CompressedPageSize = body.Length,
            DataPageHeader = template.DataPageHeader,
            DictionaryPageHeader = template.DictionaryPageHeader,
        };
        scratch.Header.Clear();
        header.Write(new ThriftCompactWriter(scratch.Header));
        output.Write(scratch.Header.WrittenSpan);
        output.Write(body);
        return scratch.Header.Length + raw.Length;
    }

    private static Statistics ComputeStatistics<T, TCodec>(ReadOnlySpan<T> present, long nullCount)
        where TCodec : IValueCodec<T>
    {
        var found = false;
        T min = default!;
        T max = default!;
        long nans = 0;
        foreach (var v in present)
        {
            if (TCodec.IsNaN(v))
            {
                nans++;
                continue;
            }

            if (!found)
            {
                min = max = v;
                found = true;
            }
            else if (!typeof(T).IsValueType && (ReferenceEquals(v, min) || ReferenceEquals(v, max)))
            {
                // A repeated string is mostly one instance (types, surfaces): nothing to compare.
            }
            else if (TCodec.Compare(v, min) < 0)
            {
                min = v;
            }
            else if (TCodec.Compare(v, max) > 0)
            {
                max = v;
            }
        }

        var floating = TCodec.Physical is PhysicalType.Float or PhysicalType.Double;
        return new Statistics
        {
            NullCount = nullCount,
            MinValue = found ? TCodec.MinBytes(min) : null,
            MaxValue = found ? TCodec.MaxBytes(max) : null,
            NanCount = floating ? nans : null,
        };
    }
}
