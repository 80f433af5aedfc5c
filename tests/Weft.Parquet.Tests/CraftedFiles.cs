using Weft.Parquet.Columns;
using Weft.Parquet.Encodings;
using Weft.Parquet.Format;

namespace Weft.Parquet.Tests;

/// <summary>Builds Parquet files byte by byte from the codec's internal pieces, for shapes Weft's writer never emits.</summary>
internal static class CraftedFiles
{
    /// <summary>
    /// One row group, every column written as DATA_PAGE_V2 pages of <paramref name="rowsPerPage"/> rows
    /// (levels uncompressed, values compressed on even pages, stored raw with is_compressed = false on
    /// odd pages). String columns get a dictionary page and RLE_DICTIONARY values.
    /// </summary>
    public static byte[] BuildDataPageV2File(ParquetSchema schema, IReadOnlyList<ParquetColumnData> columns, int rowsPerPage, CompressionCodec codec)
    {
        using var file = new PooledBuffer();
        file.Write("PAR1"u8);
        var chunks = new List<ColumnChunk>();
        var rows = columns[0].RowCount;
        foreach (var column in columns)
        {
            var descriptor = ColumnDescriptor.ForWrite(column.Field);
            var chunkStart = file.Length;
            var (defs, reps, present) = Levels(column, descriptor);
            long? dictionaryOffset = null;
            Dictionary<string, int>? dictionary = null;
            var encodings = new List<PageEncoding> { PageEncoding.Plain, PageEncoding.Rle };
            if (column.Field.Type == ParquetType.String)
            {
                dictionary = [];
                var entries = new List<string>();
                foreach (string s in present)
                {
                    if (dictionary.TryAdd(s, entries.Count))
                    {
                        entries.Add(s);
                    }
                }

                using var plain = new PooledBuffer();
                StringCodec.EncodePlain(entries.ToArray(), plain);
                dictionaryOffset = file.Length;
                using var compressed = new PooledBuffer();
                var body = PageCompression.Compress(codec, plain.WrittenSpan, compressed).ToArray();
                WriteHeader(file, new PageHeader
                {
                    Type = PageType.DictionaryPage,
                    UncompressedPageSize = plain.Length,
                    CompressedPageSize = body.Length,
                    DictionaryPageHeader = new DictionaryPageHeader { NumValues = entries.Count, Encoding = PageEncoding.Plain },
                });
                file.Write(body);
                encodings.Add(PageEncoding.RleDictionary);
            }

            var dataOffset = file.Length;
            int level = 0, value = 0, page = 0;
            for (var r0 = 0; r0 < rows; r0 += rowsPerPage, page++)
            {
                var r1 = Math.Min(rows, r0 + rowsPerPage);
                // Rows r0 .. r1: one level each (flat), or the levels up to the next row start after them (lists).
                var levelEnd = level + (r1 - r0);
                if (column.Offsets is not null)
                {
                    levelEnd = level + 1;
                    for (var started = 1; levelEnd < reps.Length; levelEnd++)
                    {
                        if (reps[levelEnd] == 0 && ++started > r1 - r0)
                        {
                            break;
                        }
                    }
                }

                var valueEnd = value + (defs.Length == 0 ? levelEnd - level : defs.AsSpan(level, levelEnd - level).Count((byte)descriptor.MaxDefinitionLevel));

                using var levels = new PooledBuffer();
                var repLength = 0;
                if (descriptor.MaxRepetitionLevel > 0)
                {
                    RleBitPackedHybrid.Encode(reps.AsSpan(level, levelEnd - level), RleBitPackedHybrid.BitWidth(descriptor.MaxRepetitionLevel), levels);
                    repLength = levels.Length;
                }

                if (descriptor.MaxDefinitionLevel > 0)
                {
                    RleBitPackedHybrid.Encode(defs.AsSpan(level, levelEnd - level), RleBitPackedHybrid.BitWidth(descriptor.MaxDefinitionLevel), levels);
                }

                var defLength = levels.Length - repLength;
                using var values = new PooledBuffer();
                var slice = present.GetRange(value, valueEnd - value);
                if (dictionary is not null)
                {
                    var indices = slice.Select(v => dictionary[(string)v]).ToArray();
                    var width = Math.Max(1, RleBitPackedHybrid.BitWidth(dictionary.Count - 1));
                    values.WriteByte((byte)width);
                    RleBitPackedHybrid.Encode(indices, width, values);
                }
                else
                {
                    EncodePlain(column.Field.Type, slice, values);
                }

                var compressValues = page % 2 == 0;
                using var compressedValues = new PooledBuffer();
                var valueBytes = compressValues ? PageCompression.Compress(codec, values.WrittenSpan, compressedValues).ToArray() : values.WrittenSpan.ToArray();
                var nullsInPage = Enumerable.Range(level, levelEnd - level).Count(i => defs.Length > 0 && defs[i] < descriptor.MaxDefinitionLevel);
                WriteHeader(file, new PageHeader
                {
                    Type = PageType.DataPageV2,
                    UncompressedPageSize = levels.Length + values.Length,
                    CompressedPageSize = levels.Length + valueBytes.Length,
                    DataPageHeaderV2 = new DataPageHeaderV2
                    {
                        NumValues = levelEnd - level,
                        NumNulls = nullsInPage,
                        NumRows = r1 - r0,
                        Encoding = dictionary is null ? PageEncoding.Plain : PageEncoding.RleDictionary,
                        DefinitionLevelsByteLength = defLength,
                        RepetitionLevelsByteLength = repLength,
                        IsCompressed = compressValues,
                    },
                });
                file.Write(levels.WrittenSpan);
                file.Write(valueBytes);
                level = levelEnd;
                value = valueEnd;
            }

            chunks.Add(new ColumnChunk
            {
                MetaData = new ColumnMetaData
                {
                    Type = descriptor.Physical,
                    Encodings = encodings,
                    PathInSchema = descriptor.Path,
                    Codec = codec,
                    NumValues = level,
                    TotalCompressedSize = file.Length - chunkStart,
                    TotalUncompressedSize = file.Length - chunkStart,
                    DataPageOffset = dataOffset,
                    DictionaryPageOffset = dictionaryOffset,
                },
            });
        }

        WriteFooter(file, schema, [new RowGroup { Columns = chunks, NumRows = rows, TotalByteSize = file.Length }], rows);
        return file.WrittenSpan.ToArray();
    }

    /// <summary>A one-column file whose single chunk is <paramref name="chunkBytes"/>, described by <paramref name="meta"/>.</summary>
    public static byte[] BuildRawChunkFile(ParquetField field, byte[] chunkBytes, long rows, Func<ColumnMetaData, ColumnMetaData> meta)
    {
        using var file = new PooledBuffer();
        file.Write("PAR1"u8);
        file.Write(chunkBytes);
        var descriptor = ColumnDescriptor.ForWrite(field);
        var chunk = new ColumnChunk
        {
            MetaData = meta(new ColumnMetaData
            {
                Type = descriptor.Physical,
                Encodings = [PageEncoding.Plain],
                PathInSchema = descriptor.Path,
                Codec = CompressionCodec.Uncompressed,
                NumValues = rows,
                TotalCompressedSize = chunkBytes.Length,
                TotalUncompressedSize = chunkBytes.Length,
                DataPageOffset = 4,
            }),
        };
        WriteFooter(file, new ParquetSchema([field]), [new RowGroup { Columns = [chunk], NumRows = rows, TotalByteSize = chunkBytes.Length }], rows);
        return file.WrittenSpan.ToArray();
    }

    /// <summary>
    /// A file of one required INT96 column <paramref name="name"/> (Spark's legacy timestamps, which
    /// Weft's writer never emits): one PLAIN data page, each value the nanoseconds of the day then the
    /// Julian day, little-endian.
    /// </summary>
    public static byte[] BuildInt96File(string name, IReadOnlyList<(long NanosOfDay, int JulianDay)> values)
    {
        var page = new byte[values.Count * 12];
        for (var i = 0; i < values.Count; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(page.AsSpan(i * 12), values[i].NanosOfDay);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(page.AsSpan((i * 12) + 8), values[i].JulianDay);
        }

        return BuildSingleColumnFile(new SchemaElement { Name = name, Type = PhysicalType.Int96, RepetitionType = Repetition.Required }, page, values.Count, PageEncoding.Plain);
    }

    /// <summary>
    /// A one-column, one-row-group file whose leaf is exactly <paramref name="leaf"/> (any physical,
    /// logical or converted type, as another writer would annotate it), each row given as its PLAIN
    /// bytes (<c>null</c>: a null row, when the leaf is optional). With <paramref name="dictionary"/>
    /// the distinct values go to a PLAIN dictionary page and the data page holds RLE_DICTIONARY indices,
    /// as parquet-mr writes Spark's columns. Pages are compressed with <paramref name="codec"/> when
    /// Weft can write it; any other codec labels raw bytes (only for testing that it is refused).
    /// </summary>
    public static byte[] BuildFlatFile(
        SchemaElement leaf, IReadOnlyList<byte[]?> rows, bool dictionary = false, CompressionCodec codec = CompressionCodec.Uncompressed, Statistics? statistics = null)
    {
        var optional = leaf.RepetitionType == Repetition.Optional;
        if (!optional && rows.Any(r => r is null))
        {
            throw new ArgumentException("A required leaf cannot hold a null row.", nameof(rows));
        }

        using var file = new PooledBuffer();
        file.Write("PAR1"u8);
        long? dictionaryOffset = null;
        var present = rows.Where(r => r is not null).Select(r => r!).ToList();
        using var values = new PooledBuffer();
        if (dictionary)
        {
            var entries = new List<byte[]>();
            var index = new Dictionary<string, int>(StringComparer.Ordinal);
            var indices = new int[present.Count];
            for (var i = 0; i < present.Count; i++)
            {
                var key = Convert.ToHexString(present[i]);
                if (!index.TryGetValue(key, out indices[i]))
                {
                    indices[i] = index[key] = entries.Count;
                    entries.Add(present[i]);
                }
            }

            dictionaryOffset = file.Length;
            WritePage(file, [.. entries.SelectMany(e => e)], codec, (uncompressed, compressed) => new PageHeader
            {
                Type = PageType.DictionaryPage,
                UncompressedPageSize = uncompressed,
                CompressedPageSize = compressed,
                DictionaryPageHeader = new DictionaryPageHeader { NumValues = entries.Count, Encoding = PageEncoding.PlainDictionary },
            });
            var width = Math.Max(1, RleBitPackedHybrid.BitWidth(entries.Count - 1));
            values.WriteByte((byte)width);
            RleBitPackedHybrid.Encode(indices, width, values);
        }
        else
        {
            foreach (var value in present)
            {
                values.Write(value);
            }
        }

        using var page = new PooledBuffer();
        if (optional)
        {
            using var levels = new PooledBuffer();
            RleBitPackedHybrid.Encode(rows.Select(r => (byte)(r is null ? 0 : 1)).ToArray(), 1, levels);
            page.WriteInt32LittleEndian(levels.Length);
            page.Write(levels.WrittenSpan);
        }

        page.Write(values.WrittenSpan);
        var dataOffset = file.Length;
        var encoding = dictionary ? PageEncoding.PlainDictionary : PageEncoding.Plain;
        WritePage(file, page.WrittenSpan.ToArray(), codec, (uncompressed, compressed) => new PageHeader
        {
            Type = PageType.DataPage,
            UncompressedPageSize = uncompressed,
            CompressedPageSize = compressed,
            DataPageHeader = new DataPageHeader { NumValues = rows.Count, Encoding = encoding, DefinitionLevelEncoding = PageEncoding.Rle, RepetitionLevelEncoding = PageEncoding.Rle },
        });
        var chunkSize = file.Length - 4;
        var chunk = new ColumnChunk
        {
            MetaData = new ColumnMetaData
            {
                Type = leaf.Type!.Value,
                Encodings = [encoding, PageEncoding.Rle],
                PathInSchema = [leaf.Name],
                Codec = codec,
                NumValues = rows.Count,
                TotalCompressedSize = chunkSize,
                TotalUncompressedSize = chunkSize,
                DataPageOffset = dataOffset,
                DictionaryPageOffset = dictionaryOffset,
                Statistics = statistics,
            },
        };
        var start = file.Length;
        new FileMetaData
        {
            Schema = [new SchemaElement { Name = "schema", NumChildren = 1 }, leaf],
            NumRows = rows.Count,
            RowGroups = [new RowGroup { Columns = [chunk], NumRows = rows.Count, TotalByteSize = chunkSize }],
            CreatedBy = "weft tests (crafted)",
        }.Write(new ThriftCompactWriter(file));
        file.WriteInt32LittleEndian(file.Length - start);
        file.Write("PAR1"u8);
        return file.WrittenSpan.ToArray();
    }

    private static void WritePage(PooledBuffer file, byte[] body, CompressionCodec codec, Func<int, int, PageHeader> header)
    {
        using var scratch = new PooledBuffer();
        var stored = codec is CompressionCodec.Uncompressed or CompressionCodec.Snappy or CompressionCodec.Gzip
            ? PageCompression.Compress(codec, body, scratch).ToArray()
            : body;
        WriteHeader(file, header(body.Length, stored.Length));
        file.Write(stored);
    }

    /// <summary>
    /// A file of one required string column <paramref name="name"/> in one DELTA_BYTE_ARRAY data page
    /// (parquet-mr's v2 choice for strings), encoded here from the format's description.
    /// </summary>
    public static byte[] BuildDeltaByteArrayFile(string name, IReadOnlyList<string> values) =>
        BuildSingleColumnFile(
            new SchemaElement { Name = name, Type = PhysicalType.ByteArray, RepetitionType = Repetition.Required, ConvertedType = ConvertedType.Utf8, LogicalType = new LogicalType { Kind = LogicalType.String } },
            DeltaByteArray(values.Select(v => System.Text.Encoding.UTF8.GetBytes(v)).ToArray()), values.Count, PageEncoding.DeltaByteArray);

    /// <summary>DELTA_BYTE_ARRAY as the format describes it: prefix lengths, suffix lengths (both DELTA_BINARY_PACKED), then the suffixes.</summary>
    public static byte[] DeltaByteArray(IReadOnlyList<byte[]> bytes)
    {
        var prefixes = new long[bytes.Count];
        var suffixes = new long[bytes.Count];
        for (var i = 0; i < bytes.Count; i++)
        {
            var shared = 0;
            if (i > 0)
            {
                while (shared < bytes[i].Length && shared < bytes[i - 1].Length && bytes[i][shared] == bytes[i - 1][shared])
                {
                    shared++;
                }
            }

            prefixes[i] = shared;
            suffixes[i] = bytes[i].Length - shared;
        }

        var page = new List<byte>();
        page.AddRange(DeltaBinaryPacked(prefixes));
        page.AddRange(DeltaBinaryPacked(suffixes));
        for (var i = 0; i < bytes.Count; i++)
        {
            page.AddRange(bytes[i].Skip((int)prefixes[i]));
        }

        return [.. page];
    }

    /// <summary>DELTA_BINARY_PACKED as the format describes it: blocks of 128 deltas in 4 miniblocks of 32.</summary>
    public static byte[] DeltaBinaryPacked(IReadOnlyList<long> values)
    {
        const int Block = 128, Miniblocks = 4, PerMiniblock = 32;
        var output = new List<byte>();
        Uleb(output, Block);
        Uleb(output, Miniblocks);
        Uleb(output, (ulong)values.Count);
        Uleb(output, ZigZag(values.Count > 0 ? values[0] : 0));
        for (var start = 1; start < values.Count; start += Block)
        {
            var deltas = new long[Math.Min(Block, values.Count - start)];
            for (var i = 0; i < deltas.Length; i++)
            {
                deltas[i] = unchecked(values[start + i] - values[start + i - 1]);
            }

            var min = deltas.Min();
            Uleb(output, ZigZag(min));
            var needed = (deltas.Length + PerMiniblock - 1) / PerMiniblock;
            var widths = new byte[Miniblocks];
            for (var m = 0; m < needed; m++)
            {
                var max = deltas.Skip(m * PerMiniblock).Take(PerMiniblock).Select(d => unchecked((ulong)(d - min))).Max();
                widths[m] = (byte)(64 - System.Numerics.BitOperations.LeadingZeroCount(max));
            }

            output.AddRange(widths);
            for (var m = 0; m < needed; m++)
            {
                var packed = new byte[PerMiniblock * widths[m] / 8];
                for (var k = 0; k < PerMiniblock; k++)
                {
                    var index = (m * PerMiniblock) + k;
                    var value = index < deltas.Length ? unchecked((ulong)(deltas[index] - min)) : 0;
                    for (var bit = 0; bit < widths[m]; bit++)
                    {
                        if ((value >> bit & 1) != 0)
                        {
                            var at = (k * widths[m]) + bit;
                            packed[at >> 3] |= (byte)(1 << (at & 7));
                        }
                    }
                }

                output.AddRange(packed);
            }
        }

        return [.. output];
    }

    private static void Uleb(List<byte> output, ulong value)
    {
        while (value >= 0x80)
        {
            output.Add((byte)(value | 0x80));
            value >>= 7;
        }

        output.Add((byte)value);
    }

    private static ulong ZigZag(long value) => (ulong)((value << 1) ^ (value >> 63));

    public static byte[] BuildSingleColumnFile(SchemaElement leaf, byte[] page, int count, PageEncoding encoding)
    {
        using var file = new PooledBuffer();
        file.Write("PAR1"u8);
        var header = PageHeaderBytes(new PageHeader
        {
            Type = PageType.DataPage,
            UncompressedPageSize = page.Length,
            CompressedPageSize = page.Length,
            DataPageHeader = new DataPageHeader { NumValues = count, Encoding = encoding, DefinitionLevelEncoding = PageEncoding.Rle, RepetitionLevelEncoding = PageEncoding.Rle },
        });
        file.Write(header);
        file.Write(page);
        var chunk = new ColumnChunk
        {
            MetaData = new ColumnMetaData
            {
                Type = leaf.Type!.Value,
                Encodings = [encoding, PageEncoding.Rle],
                PathInSchema = [leaf.Name],
                Codec = CompressionCodec.Uncompressed,
                NumValues = count,
                TotalCompressedSize = header.Length + page.Length,
                TotalUncompressedSize = header.Length + page.Length,
                DataPageOffset = 4,
            },
        };
        var start = file.Length;
        new FileMetaData
        {
            Schema = [new SchemaElement { Name = "schema", NumChildren = 1 }, leaf],
            NumRows = count,
            RowGroups = [new RowGroup { Columns = [chunk], NumRows = count, TotalByteSize = header.Length + page.Length }],
            CreatedBy = "weft tests (crafted)",
        }.Write(new ThriftCompactWriter(file));
        file.WriteInt32LittleEndian(file.Length - start);
        file.Write("PAR1"u8);
        return file.WrittenSpan.ToArray();
    }

    /// <summary>One leaf's chunk for <see cref="BuildNestedFile"/>: its levels and its present values' PLAIN bytes.</summary>
    public sealed record LeafChunk(string[] Path, PhysicalType Type, int MaxDefinition, int MaxRepetition, byte[] Definitions, byte[] Repetitions, byte[] PlainValues);

    /// <summary>
    /// A one-row-group file with the schema <paramref name="schema"/> exactly as given (any nesting other
    /// writers produce, e.g. required groups inside optional ones), one uncompressed v1 data page per leaf.
    /// </summary>
    public static byte[] BuildNestedFile(IReadOnlyList<SchemaElement> schema, long rows, IReadOnlyList<LeafChunk> leaves)
    {
        using var file = new PooledBuffer();
        file.Write("PAR1"u8);
        var chunks = new List<ColumnChunk>();
        foreach (var leaf in leaves)
        {
            using var page = new PooledBuffer();
            foreach (var (levels, max) in new[] { (leaf.Repetitions, leaf.MaxRepetition), (leaf.Definitions, leaf.MaxDefinition) })
            {
                if (max == 0)
                {
                    continue;
                }

                using var encoded = new PooledBuffer();
                RleBitPackedHybrid.Encode(levels, RleBitPackedHybrid.BitWidth(max), encoded);
                page.WriteInt32LittleEndian(encoded.Length);
                page.Write(encoded.WrittenSpan);
            }

            page.Write(leaf.PlainValues);
            var numValues = leaf.MaxDefinition > 0 ? leaf.Definitions.Length : (int)rows;
            var offset = file.Length;
            WriteHeader(file, new PageHeader
            {
                Type = PageType.DataPage,
                UncompressedPageSize = page.Length,
                CompressedPageSize = page.Length,
                DataPageHeader = new DataPageHeader { NumValues = numValues, Encoding = PageEncoding.Plain, DefinitionLevelEncoding = PageEncoding.Rle, RepetitionLevelEncoding = PageEncoding.Rle },
            });
            file.Write(page.WrittenSpan);
            chunks.Add(new ColumnChunk
            {
                MetaData = new ColumnMetaData
                {
                    Type = leaf.Type,
                    Encodings = [PageEncoding.Plain, PageEncoding.Rle],
                    PathInSchema = leaf.Path,
                    Codec = CompressionCodec.Uncompressed,
                    NumValues = numValues,
                    TotalCompressedSize = file.Length - offset,
                    TotalUncompressedSize = file.Length - offset,
                    DataPageOffset = offset,
                },
            });
        }

        var start = file.Length;
        new FileMetaData
        {
            Schema = [.. schema],
            NumRows = rows,
            RowGroups = [new RowGroup { Columns = chunks, NumRows = rows, TotalByteSize = start - 4 }],
            CreatedBy = "weft tests (crafted)",
        }.Write(new ThriftCompactWriter(file));
        file.WriteInt32LittleEndian(file.Length - start);
        file.Write("PAR1"u8);
        return file.WrittenSpan.ToArray();
    }

    public static byte[] PageHeaderBytes(PageHeader header)
    {
        using var buffer = new PooledBuffer();
        header.Write(new ThriftCompactWriter(buffer));
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteHeader(PooledBuffer file, PageHeader header) => header.Write(new ThriftCompactWriter(file));

    private static void WriteFooter(PooledBuffer file, ParquetSchema schema, IReadOnlyList<RowGroup> groups, long rows)
    {
        var start = file.Length;
        new FileMetaData
        {
            Schema = SchemaMapping.ToElements(schema),
            NumRows = rows,
            RowGroups = groups,
            CreatedBy = "weft tests (crafted)",
        }.Write(new ThriftCompactWriter(file));
        file.WriteInt32LittleEndian(file.Length - start);
        file.Write("PAR1"u8);
    }

    private static (byte[] Defs, byte[] Reps, List<object> Present) Levels(ParquetColumnData column, ColumnDescriptor descriptor)
    {
        if (column.Offsets is not null)
        {
            var count = ListLevels.Count(column);
            var listDefs = new byte[count];
            var listReps = new byte[count];
            ListLevels.Shred(column, descriptor, listDefs, listReps);
            return (listDefs, listReps, TestColumns.PresentValues(column));
        }

        var defs = new List<byte>();
        var present = new List<object>();
        for (var r = 0; r < column.RowCount; r++)
        {
            defs.Add(column.IsNull(r) ? (byte)0 : (byte)1);
            if (!column.IsNull(r))
            {
                present.Add(column.Values.GetValue(r)!);
            }
        }

        return (column.Field.Nullable ? defs.ToArray() : [], [], present);
    }

    private static void EncodePlain(ParquetType type, List<object> values, PooledBuffer output)
    {
        switch (type)
        {
            case ParquetType.Boolean:
                BooleanCodec.EncodePlain(values.Cast<bool>().ToArray(), output);
                break;
            case ParquetType.Int32:
                Int32Codec.EncodePlain(values.Cast<int>().ToArray(), output);
                break;
            case ParquetType.Int64:
            case ParquetType.TimestampMicros:
                Int64Codec.EncodePlain(values.Cast<long>().ToArray(), output);
                break;
            case ParquetType.Float:
                FloatCodec.EncodePlain(values.Cast<float>().ToArray(), output);
                break;
            case ParquetType.Double:
                DoubleCodec.EncodePlain(values.Cast<double>().ToArray(), output);
                break;
            case ParquetType.String:
                StringCodec.EncodePlain(values.Cast<string>().ToArray(), output);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type));
        }
    }
}
