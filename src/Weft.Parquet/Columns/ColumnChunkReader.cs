using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Weft.Parquet.Encodings;
using Weft.Parquet.Format;

namespace Weft.Parquet.Columns;

/// <summary>Counters a reader exposes; updated by the thread reading.</summary>
internal sealed class ReadCounters
{
    public long BytesRead;
    public long BytesDecompressed;
    public long PagesDecoded;

    /// <summary>DATA_PAGE_V2 pages decoded (for tests).</summary>
    public long V2PagesDecoded;
}

/// <summary>
/// Decodes one column chunk (its bytes already in memory) into a <see cref="ParquetColumnData"/>.
/// Handles a dictionary page, DATA_PAGE v1 and DATA_PAGE_V2; PLAIN, PLAIN_DICTIONARY /
/// RLE_DICTIONARY, (booleans) RLE, DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and BYTE_STREAM_SPLIT value
/// encodings; UNCOMPRESSED, SNAPPY, GZIP, ZSTD and LZ4_RAW.
/// </summary>
internal static class ColumnChunkReader
{
    /// <summary>A page may not claim more values than this (guards allocations on corrupt headers).</summary>
    internal const int MaxValuesPerPage = 1 << 24;

    /// <summary>A page may not claim a larger uncompressed size than this.</summary>
    internal const int MaxUncompressedPageSize = 1 << 30;

    public static ParquetColumnData Read(ColumnDescriptor descriptor, ColumnMetaData meta, long rowCount, byte[] chunk, int chunkLength, ReadCounters counters)
    {
        switch (descriptor.Stored)
        {
            case StoredAs.AsIs:
                return ReadAsIs(descriptor, meta, rowCount, chunk, chunkLength, counters);
            case StoredAs.Int8 or StoredAs.Int16 or StoredAs.UInt8 or StoredAs.UInt16:
            {
                var narrow = Read<int, Int32Codec>(descriptor, meta, rowCount, chunk, chunkLength, counters);
                KeepLowBits(descriptor.Stored, (int[])narrow.Values);
                return narrow;
            }

            case StoredAs.UInt32:
                return Read<long, WidenedInt32Codec<UnsignedWidening>>(descriptor, meta, rowCount, chunk, chunkLength, counters);
            case StoredAs.Int96Timestamp:
                return Read<long, Int96TimestampCodec>(descriptor, meta, rowCount, chunk, chunkLength, counters);
            case StoredAs.DateDays:
                return Read<long, WidenedInt32Codec<DaysWidening>>(descriptor, meta, rowCount, chunk, chunkLength, counters);
            case StoredAs.TimeMillis:
                return Read<long, WidenedInt32Codec<MillisWidening>>(descriptor, meta, rowCount, chunk, chunkLength, counters);
            case StoredAs.DecimalInt32 or StoredAs.DecimalInt64:
            {
                var unscaled = descriptor.Stored == StoredAs.DecimalInt32
                    ? Read<double, DecimalInt32Codec>(descriptor, meta, rowCount, chunk, chunkLength, counters)
                    : Read<double, DecimalInt64Codec>(descriptor, meta, rowCount, chunk, chunkLength, counters);
                DecimalDouble.ScaleUnscaledBits((double[])unscaled.Values, descriptor.Scale);
                return unscaled;
            }

            case StoredAs.DecimalFixed or StoredAs.DecimalBytes:
                return Read<double, WideDecimalCodec>(descriptor, meta, rowCount, chunk, chunkLength, counters);
            default:
                var data = Read<long, Int64Codec>(descriptor, meta, rowCount, chunk, chunkLength, counters);
                Convert(descriptor, (long[])data.Values);
                return data;
        }
    }

    /// <summary>8- and 16-bit integers stored as INT32: only the low bits are the value (arrow and DuckDB read them so).</summary>
    private static void KeepLowBits(StoredAs stored, int[] values)
    {
        // Sign-extend from the width's top bit (INT_8, INT_16) or clear every bit above it (UINT_8, UINT_16).
        int shift = stored is StoredAs.Int8 or StoredAs.UInt8 ? 24 : 16;
        if (stored is StoredAs.Int8 or StoredAs.Int16)
        {
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (values[i] << shift) >> shift;
            }
        }
        else
        {
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (int)((uint)(values[i] << shift) >> shift);
            }
        }
    }

    /// <summary>Stored values to the field's: other timestamp and time units to µs, UINT_64 checked to fit a long.</summary>
    private static void Convert(ColumnDescriptor descriptor, long[] values)
    {
        switch (descriptor.Stored)
        {
            case StoredAs.TimestampMillis:
                for (var i = 0; i < values.Length; i++)
                {
                    var millis = values[i];
                    if (!TimeUnits.TryMillisToMicros(millis, out values[i]))
                    {
                        ThrowHelper.Format($"column '{descriptor.Field.Name}': TIMESTAMP(MILLIS) value {millis} is beyond the range of µs since the epoch");
                    }
                }

                break;
            case StoredAs.TimestampNanos or StoredAs.TimeNanos:
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = TimeUnits.FloorNanosToMicros(values[i]);
                }

                break;
            case StoredAs.UInt64:
                for (var i = 0; i < values.Length; i++)
                {
                    if (values[i] < 0)
                    {
                        ThrowHelper.NotSupported($"Column '{descriptor.Field.Name}': UINT_64 value {(ulong)values[i]} does not fit the signed 64-bit integers Weft reads it as.");
                    }
                }

                break;
        }
    }

    private static ParquetColumnData ReadAsIs(ColumnDescriptor descriptor, ColumnMetaData meta, long rowCount, byte[] chunk, int chunkLength, ReadCounters counters) =>
        descriptor.Field.Type switch
        {
            ParquetType.Boolean => Read<bool, BooleanCodec>(descriptor, meta, rowCount, chunk, chunkLength, counters),
            ParquetType.Int32 => Read<int, Int32Codec>(descriptor, meta, rowCount, chunk, chunkLength, counters),
            ParquetType.Int64 or ParquetType.TimestampMicros => Read<long, Int64Codec>(descriptor, meta, rowCount, chunk, chunkLength, counters),
            ParquetType.Float => Read<float, FloatCodec>(descriptor, meta, rowCount, chunk, chunkLength, counters),
            ParquetType.Double => Read<double, DoubleCodec>(descriptor, meta, rowCount, chunk, chunkLength, counters),
            ParquetType.String => Read<string, StringCodec>(descriptor, meta, rowCount, chunk, chunkLength, counters),
            _ => throw new ArgumentOutOfRangeException(nameof(descriptor), descriptor.Field.Type, "Unknown ParquetType."),
        };

    private static ParquetColumnData Read<T, TCodec>(
        ColumnDescriptor descriptor, ColumnMetaData meta, long rowCount, byte[] chunk, int chunkLength, ReadCounters counters)
        where TCodec : IValueCodec<T>
    {
        var maxDef = descriptor.MaxDefinitionLevel;
        var maxRep = descriptor.MaxRepetitionLevel;
        var isList = descriptor.Field.IsList;
        if (meta.NumValues < 0 || (!isList && meta.NumValues != rowCount))
        {
            ThrowHelper.Format($"the chunk declares {meta.NumValues} values for {rowCount} rows");
        }

        // Flat columns decode each page's values straight into their rows of the result; list columns
        // collect levels and values, then assemble.
        var flat = isList ? null : new FlatColumn<T>(checked((int)rowCount));
        var initial = isList ? (int)Math.Min(meta.NumValues, 4096) : 0;
        var defLevels = new GrowableBuffer<byte>(maxDef > 0 ? initial : 0);
        var repLevels = new GrowableBuffer<byte>(maxRep > 0 ? initial : 0);
        var values = new GrowableBuffer<T>(initial);
        T[]? dictionary = null;
        try
        {
            long levelsRead = 0;
            var position = 0;
            while (levelsRead < meta.NumValues)
            {
                var (header, body) = NextPage(chunk, chunkLength, ref position, levelsRead, meta.NumValues);
                switch (header.Type)
                {
                    case PageType.DictionaryPage:
                        dictionary = ReadDictionaryPage<T, TCodec>(header, body, meta.Codec, descriptor, dictionary is not null, counters);
                        break;
                    case PageType.DataPage:
                    case PageType.DataPageV2:
                    {
                        var numValues = DataPageValues(header, levelsRead, meta.NumValues);
                        ReadDataPage<T, TCodec>(header, numValues, body, meta.Codec, descriptor, dictionary, flat, ref defLevels, ref repLevels, ref values, counters);
                        levelsRead += numValues;
                        break;
                    }

                    default:
                        // Index pages and unknown page types carry nothing Weft needs.
                        break;
                }
            }

            return flat is not null
                ? ParquetColumnData.CreateTrusted(descriptor.Field, flat.Values, flat.Nulls)
                : ListLevels.Assemble(descriptor, rowCount, defLevels.Span, repLevels.Span, values.Span);
        }
        finally
        {
            defLevels.Dispose();
            repLevels.Dispose();
            values.Dispose();
        }
    }

    /// <summary>
    /// The page at <paramref name="position"/> (advanced past it): its header and its still compressed body,
    /// checked to lie inside the chunk. <paramref name="levelsRead"/> of the chunk's <paramref name="chunkValues"/>
    /// are read so far; a chunk that ends before them all is corrupt.
    /// </summary>
    internal static (PageHeader Header, ArraySegment<byte> Body) NextPage(byte[] chunk, int chunkLength, ref int position, long levelsRead, long chunkValues)
    {
        if (position >= chunkLength)
        {
            ThrowHelper.Format($"the chunk ends after {levelsRead} of its {chunkValues} values");
        }

        var headerReader = new ThriftCompactReader(chunk.AsSpan(position, chunkLength - position));
        var header = PageHeader.Read(ref headerReader);
        position += headerReader.Position;
        if (header.CompressedPageSize > chunkLength - position)
        {
            ThrowHelper.Format(
                $"a page of {header.CompressedPageSize} bytes at chunk byte {position} runs past the end of the chunk ({chunkLength - position} bytes left)");
        }

        if (header.UncompressedPageSize > MaxUncompressedPageSize)
        {
            ThrowHelper.Format($"a page declares {header.UncompressedPageSize} uncompressed bytes, more than the {MaxUncompressedPageSize} allowed");
        }

        var body = new ArraySegment<byte>(chunk, position, header.CompressedPageSize);
        position += header.CompressedPageSize;
        return (header, body);
    }

    /// <summary>A data page's value count (levels, for list columns), checked against what the chunk has left.</summary>
    internal static int DataPageValues(PageHeader header, long levelsRead, long chunkValues)
    {
        var numValues = header.Type == PageType.DataPage
            ? (header.DataPageHeader ?? ThrowHelper.Format<DataPageHeader>("a DATA_PAGE has no data_page_header")).NumValues
            : (header.DataPageHeaderV2 ?? ThrowHelper.Format<DataPageHeaderV2>("a DATA_PAGE_V2 has no data_page_header_v2")).NumValues;
        if (numValues < 0 || numValues > MaxValuesPerPage || numValues > chunkValues - levelsRead)
        {
            ThrowHelper.Format(
                $"a data page declares {numValues} values but the chunk has {chunkValues - levelsRead} of its {chunkValues} left");
        }

        return numValues;
    }

    private static T[] ReadDictionaryPage<T, TCodec>(PageHeader header, ArraySegment<byte> body, CompressionCodec codec, ColumnDescriptor descriptor, bool seen, ReadCounters counters)
        where TCodec : IValueCodec<T>
    {
        var buffer = DecompressDictionaryPage(header, body, codec, seen, counters, out var count, minValueBytes: TCodec.Physical == PhysicalType.ByteArray ? 4 : 0);
        try
        {
            var page = buffer.AsSpan(0, header.UncompressedPageSize);
            var dictionary = new T[count];
            if (typeof(TCodec) == typeof(WideDecimalCodec))
            {
                WideDecimalCodec.DecodePlain(page, As<T, double>(dictionary), WidthOf(descriptor), descriptor.Scale, "dictionary page");
            }
            else
            {
                TCodec.DecodePlain(page, dictionary, "dictionary page");
            }

            return dictionary;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Checks a dictionary page and decompresses it into a rented buffer, which the caller returns: its
    /// first <c>UncompressedPageSize</c> bytes are the <paramref name="count"/> PLAIN entries, each at least
    /// <paramref name="minValueBytes"/> long (0: at least a bit).
    /// </summary>
    internal static byte[] DecompressDictionaryPage(
        PageHeader header, ArraySegment<byte> body, CompressionCodec codec, bool seen, ReadCounters counters, out int count, int minValueBytes)
    {
        if (seen)
        {
            ThrowHelper.Format("the chunk has a second dictionary page");
        }

        var dictHeader = header.DictionaryPageHeader ?? ThrowHelper.Format<DictionaryPageHeader>("a DICTIONARY_PAGE has no dictionary_page_header");
        if (dictHeader.Encoding is not (PageEncoding.Plain or PageEncoding.PlainDictionary))
        {
            ThrowHelper.NotSupported($"dictionary page encoding {dictHeader.Encoding} is not supported");
        }

        // Every PLAIN value takes at least one bit; a count beyond that is corrupt.
        if (dictHeader.NumValues < 0 || dictHeader.NumValues > (long)header.UncompressedPageSize * 8
            || (minValueBytes > 0 && dictHeader.NumValues > header.UncompressedPageSize / minValueBytes))
        {
            ThrowHelper.Format($"a dictionary page declares {dictHeader.NumValues} values in {header.UncompressedPageSize} bytes");
        }

        PageCompression.CheckDeclaredSize(codec, body, header.UncompressedPageSize, "dictionary page");
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, header.UncompressedPageSize));
        try
        {
            var page = buffer.AsSpan(0, header.UncompressedPageSize);
            PageCompression.Decompress(codec, body, page, "dictionary page");
            counters.BytesDecompressed += page.Length;
            counters.PagesDecoded++;
            count = dictHeader.NumValues;
            return buffer;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private static void ReadDataPage<T, TCodec>(
        PageHeader header,
        int numValues,
        ArraySegment<byte> body,
        CompressionCodec codec,
        ColumnDescriptor descriptor,
        T[]? dictionary,
        FlatColumn<T>? flat,
        ref GrowableBuffer<byte> defLevels,
        ref GrowableBuffer<byte> repLevels,
        ref GrowableBuffer<T> values,
        ReadCounters counters)
        where TCodec : IValueCodec<T>
    {
        var maxDef = descriptor.MaxDefinitionLevel;
        var maxRep = descriptor.MaxRepetitionLevel;
        PreCheck(header, body, codec);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, header.UncompressedPageSize));
        try
        {
            if (flat is not null && maxDef == 0 && header.Type == PageType.DataPage && header.DataPageHeader!.Encoding == PageEncoding.Plain
                && IsRawPlain<T, TCodec>() && (long)numValues * TCodec.FixedPlainSize == header.UncompressedPageSize)
            {
                // Required fixed-width PLAIN values are the page itself: decompress straight into their rows.
                var rows = flat.Next(numValues);
                var target = MemoryMarshal.CreateSpan(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(rows)), header.UncompressedPageSize);
                PageCompression.Decompress(codec, body, target, "data page");
                counters.BytesDecompressed += target.Length;
                counters.PagesDecoded++;
                return;
            }

            var encoding = DecompressDataPage(header, body, codec, maxRep, maxDef, buffer, counters, out var repSpan, out var defSpan, out var valueSpan);
            if (flat is not null)
            {
                ReadFlatValues<T, TCodec>(numValues, maxDef, defSpan, encoding, valueSpan, dictionary, flat, descriptor);
                return;
            }

            if (maxRep > 0)
            {
                RleBitPackedHybrid.Decode(repSpan, RleBitPackedHybrid.BitWidth(maxRep), repLevels.Append(numValues), maxRep, "repetition levels");
            }

            var present = numValues;
            if (maxDef > 0)
            {
                var defs = defLevels.Append(numValues);
                RleBitPackedHybrid.Decode(defSpan, RleBitPackedHybrid.BitWidth(maxDef), defs, maxDef, "definition levels");
                present = defs.Count((byte)maxDef);
            }

            DecodeValues<T, TCodec>(encoding, valueSpan, dictionary, values.Append(present), descriptor);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Decompresses a data page (v1 or v2, already checked by <see cref="PreCheck"/>) into
    /// <paramref name="buffer"/> and splits it into its repetition levels, definition levels (empty for a
    /// maximum level of 0) and values; returns the values' encoding.
    /// </summary>
    internal static PageEncoding DecompressDataPage(
        PageHeader header,
        ArraySegment<byte> body,
        CompressionCodec codec,
        int maxRep,
        int maxDef,
        byte[] buffer,
        ReadCounters counters,
        out ReadOnlySpan<byte> repSpan,
        out ReadOnlySpan<byte> defSpan,
        out ReadOnlySpan<byte> valueSpan)
    {
        PageEncoding encoding;
        if (header.Type == PageType.DataPage)
        {
            var v1 = header.DataPageHeader!;
            encoding = v1.Encoding;
            var page = buffer.AsSpan(0, header.UncompressedPageSize);
            PageCompression.Decompress(codec, body, page, "data page");
            counters.BytesDecompressed += page.Length;
            var at = 0;
            repSpan = maxRep > 0 ? LengthPrefixed(page, ref at, v1.RepetitionLevelEncoding, "repetition levels") : default;
            defSpan = maxDef > 0 ? LengthPrefixed(page, ref at, v1.DefinitionLevelEncoding, "definition levels") : default;
            valueSpan = page[at..];
        }
        else
        {
            var v2 = header.DataPageHeaderV2!;
            encoding = v2.Encoding;
            var levelBytes = (long)v2.RepetitionLevelsByteLength + v2.DefinitionLevelsByteLength;
            if (v2.RepetitionLevelsByteLength < 0 || v2.DefinitionLevelsByteLength < 0 || levelBytes > body.Count || levelBytes > header.UncompressedPageSize)
            {
                ThrowHelper.Format($"a DATA_PAGE_V2 declares {levelBytes} level bytes in a {body.Count}-byte page");
            }

            var levels = body.AsSpan(0, (int)levelBytes);
            repSpan = levels[..v2.RepetitionLevelsByteLength];
            defSpan = levels[v2.RepetitionLevelsByteLength..];
            var compressedValues = body.Slice((int)levelBytes);
            var valuesLength = header.UncompressedPageSize - (int)levelBytes;
            var page = buffer.AsSpan(0, valuesLength);
            PageCompression.Decompress(v2.IsCompressed ? codec : CompressionCodec.Uncompressed, compressedValues, page, "data page v2");
            counters.BytesDecompressed += header.UncompressedPageSize;
            counters.V2PagesDecoded++;
            valueSpan = page;
        }

        counters.PagesDecoded++;
        return encoding;
    }

    /// <summary>
    /// A flat page: its <paramref name="rows"/> values go to the next rows of the result. When some rows
    /// are null, the present values are decoded first and then spread over their rows (dictionary
    /// indices are gathered straight into their rows).
    /// </summary>
    private static void ReadFlatValues<T, TCodec>(
        int rows, int maxDef, ReadOnlySpan<byte> defSpan, PageEncoding encoding, ReadOnlySpan<byte> valueSpan, T[]? dictionary, FlatColumn<T> flat, ColumnDescriptor descriptor)
        where TCodec : IValueCodec<T>
    {
        var destination = flat.Next(rows);
        if (maxDef == 0)
        {
            DecodeValues<T, TCodec>(encoding, valueSpan, dictionary, destination, descriptor);
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, rows));
        try
        {
            var defs = buffer.AsSpan(0, rows);
            RleBitPackedHybrid.Decode(defSpan, RleBitPackedHybrid.BitWidth(maxDef), defs, maxDef, "definition levels");
            var level = (byte)maxDef;
            var present = defs.Count(level);
            if (present == rows)
            {
                DecodeValues<T, TCodec>(encoding, valueSpan, dictionary, destination, descriptor);
                return;
            }

            if (encoding is PageEncoding.PlainDictionary or PageEncoding.RleDictionary && present > 0)
            {
                var indices = ArrayPool<int>.Shared.Rent(present);
                try
                {
                    var span = indices.AsSpan(0, present);
                    DecodeIndices(valueSpan, dictionary, span);
                    ref var entries = ref MemoryMarshal.GetArrayDataReference(dictionary!);
                    var k = 0;
                    for (var i = 0; i < rows; i++)
                    {
                        if (defs[i] == level)
                        {
                            destination[i] = Unsafe.Add(ref entries, (uint)span[k++]);
                        }
                        else
                        {
                            destination[i] = default!;
                            flat.MarkNull(i);
                        }
                    }
                }
                finally
                {
                    ArrayPool<int>.Shared.Return(indices);
                }

                return;
            }

            // Decode the present values to the front, then move each to its row, back to front (value k
            // moves to row i >= k). Once k == i, every earlier row is present and already in place.
            DecodeValues<T, TCodec>(encoding, valueSpan, dictionary, destination[..present], descriptor);
            var next = present - 1;
            for (var i = rows - 1; i > next; i--)
            {
                if (defs[i] == level)
                {
                    destination[i] = destination[next--];
                }
                else
                {
                    destination[i] = default!;
                    flat.MarkNull(i);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Whether PLAIN values of this type are their little-endian bytes (not booleans, which are bit-packed, nor strings).</summary>
    private static bool IsRawPlain<T, TCodec>()
        where TCodec : IValueCodec<T> =>
        !RuntimeHelpers.IsReferenceOrContainsReferences<T>() && TCodec.Physical is not PhysicalType.Boolean && TCodec.FixedPlainSize == Unsafe.SizeOf<T>();

    /// <summary>FIXED_LEN_BYTE_ARRAY values' width; 0 for BYTE_ARRAY ones, whose values carry their lengths.</summary>
    private static int WidthOf(ColumnDescriptor descriptor) => descriptor.Physical == PhysicalType.FixedLenByteArray ? descriptor.TypeLength : 0;

    private static void DecodeValues<T, TCodec>(PageEncoding encoding, ReadOnlySpan<byte> input, T[]? dictionary, Span<T> destination, ColumnDescriptor descriptor)
        where TCodec : IValueCodec<T>
    {
        // The typeof tests are constants of each specialisation: the other types' code has none of these cases.
        switch (encoding)
        {
            case PageEncoding.Plain when typeof(TCodec) == typeof(WideDecimalCodec):
                WideDecimalCodec.DecodePlain(input, As<T, double>(destination), WidthOf(descriptor), descriptor.Scale, "data page values");
                break;
            case PageEncoding.Plain:
                TCodec.DecodePlain(input, destination, "data page values");
                break;
            case PageEncoding.PlainDictionary:
            case PageEncoding.RleDictionary:
                DecodeDictionaryIndices(input, dictionary, destination);
                break;
            case PageEncoding.Rle:
                TCodec.DecodeRle(input, destination, "data page values");
                break;
            case PageEncoding.DeltaBinaryPacked when TCodec.Physical == PhysicalType.Int64 && typeof(T) == typeof(long):
                DeltaEncodings.DecodeBinaryPacked(input, As<T, long>(destination), "data page values");
                break;
            case PageEncoding.DeltaBinaryPacked when TCodec.Physical == PhysicalType.Int32 && typeof(T) == typeof(int):
                DeltaEncodings.DecodeBinaryPacked(input, As<T, int>(destination), "data page values");
                break;
            case PageEncoding.DeltaBinaryPacked when typeof(TCodec) == typeof(WidenedInt32Codec<UnsignedWidening>):
                WidenedInt32Codec<UnsignedWidening>.DecodeBinaryPacked(input, As<T, long>(destination), "data page values");
                break;
            case PageEncoding.DeltaBinaryPacked when typeof(TCodec) == typeof(WidenedInt32Codec<DaysWidening>):
                WidenedInt32Codec<DaysWidening>.DecodeBinaryPacked(input, As<T, long>(destination), "data page values");
                break;
            case PageEncoding.DeltaBinaryPacked when typeof(TCodec) == typeof(WidenedInt32Codec<MillisWidening>):
                WidenedInt32Codec<MillisWidening>.DecodeBinaryPacked(input, As<T, long>(destination), "data page values");
                break;
            case PageEncoding.DeltaBinaryPacked when typeof(TCodec) == typeof(DecimalInt32Codec):
                DecimalInt32Codec.DecodeBinaryPacked(input, As<T, double>(destination), "data page values");
                break;
            case PageEncoding.DeltaBinaryPacked when typeof(TCodec) == typeof(DecimalInt64Codec):
                DeltaEncodings.DecodeBinaryPacked(input, As<T, long>(destination), "data page values");
                break;
            case PageEncoding.DeltaLengthByteArray when typeof(TCodec) == typeof(WideDecimalCodec) && descriptor.Physical == PhysicalType.ByteArray:
                DeltaEncodings.DecodeLengthByteArray(input, As<T, double>(destination), new DecimalByteValues(descriptor.Scale), "data page values");
                break;
            case PageEncoding.DeltaByteArray when typeof(TCodec) == typeof(WideDecimalCodec):
                DeltaEncodings.DecodeByteArray(input, As<T, double>(destination), new DecimalByteValues(descriptor.Scale), "data page values");
                break;
            case PageEncoding.ByteStreamSplit when typeof(TCodec) == typeof(WideDecimalCodec) && descriptor.Physical == PhysicalType.FixedLenByteArray:
                WideDecimalCodec.DecodeByteStreamSplit(input, As<T, double>(destination), descriptor.TypeLength, descriptor.Scale, "data page values");
                break;
            case PageEncoding.DeltaLengthByteArray when typeof(T) == typeof(string):
                DeltaEncodings.DecodeLengthByteArray(input, As<T, string>(destination), "data page values");
                break;
            case PageEncoding.DeltaByteArray when typeof(T) == typeof(string):
                DeltaEncodings.DecodeByteArray(input, As<T, string>(destination), "data page values");
                break;
            case PageEncoding.ByteStreamSplit when IsRawPlain<T, TCodec>():
                DeltaEncodings.DecodeByteStreamSplit(
                    input, MemoryMarshal.CreateSpan(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(destination)), destination.Length * Unsafe.SizeOf<T>()), Unsafe.SizeOf<T>(), "data page values");
                break;
            case PageEncoding.ByteStreamSplit when TCodec.Physical is PhysicalType.Int32 or PhysicalType.Int64 && TCodec.FixedPlainSize > 0:
                DecodeByteStreamSplitWidened<T, TCodec>(input, destination);
                break;
            default:
                UnsupportedEncoding(encoding, TCodec.Physical);
                break;
        }
    }

    [DoesNotReturn]
    internal static void UnsupportedEncoding(PageEncoding encoding, PhysicalType physical) =>
        ThrowHelper.NotSupported($"value encoding {encoding} is not supported for {physical} values; Weft reads PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY, (booleans) RLE, (integers) DELTA_BINARY_PACKED, (strings) DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY, (fixed-width values) BYTE_STREAM_SPLIT");

    /// <summary>BYTE_STREAM_SPLIT integers read into a wider type (INT32 decimals, times, dates, UINT_32): unsplit, then read as PLAIN.</summary>
    private static void DecodeByteStreamSplitWidened<T, TCodec>(ReadOnlySpan<byte> input, Span<T> destination)
        where TCodec : IValueCodec<T>
    {
        var size = destination.Length * TCodec.FixedPlainSize;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, size));
        try
        {
            DeltaEncodings.DecodeByteStreamSplit(input, buffer.AsSpan(0, size), TCodec.FixedPlainSize, "data page values");
            TCodec.DecodePlain(buffer.AsSpan(0, size), destination, "data page values");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The same elements as another type; only for T that is that type.</summary>
    private static Span<TTo> As<T, TTo>(Span<T> span) =>
        MemoryMarshal.CreateSpan(ref Unsafe.As<T, TTo>(ref MemoryMarshal.GetReference(span)), span.Length);

    internal static void PreCheck(PageHeader header, ArraySegment<byte> body, CompressionCodec codec)
    {
        if (header.Type == PageType.DataPage)
        {
            PageCompression.CheckDeclaredSize(codec, body, header.UncompressedPageSize, "data page");
            return;
        }

        var v2 = header.DataPageHeaderV2!;
        var levelBytes = (long)v2.RepetitionLevelsByteLength + v2.DefinitionLevelsByteLength;
        if (v2.RepetitionLevelsByteLength < 0 || v2.DefinitionLevelsByteLength < 0 || levelBytes > body.Count || levelBytes > header.UncompressedPageSize)
        {
            ThrowHelper.Format($"a DATA_PAGE_V2 declares {levelBytes} level bytes in a {body.Count}-byte page");
        }

        PageCompression.CheckDeclaredSize(
            v2.IsCompressed ? codec : CompressionCodec.Uncompressed,
            body.Slice((int)levelBytes),
            header.UncompressedPageSize - (int)levelBytes,
            "data page v2");
    }

    private static ReadOnlySpan<byte> LengthPrefixed(ReadOnlySpan<byte> page, scoped ref int at, PageEncoding encoding, string what)
    {
        if (encoding != PageEncoding.Rle)
        {
            ThrowHelper.NotSupported($"{what} use encoding {encoding}; Weft reads RLE levels only");
        }

        if (page.Length - at < 4)
        {
            ThrowHelper.Format($"{what}: the page ends before their 4-byte length");
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(page[at..]);
        at += 4;
        if (length < 0 || length > page.Length - at)
        {
            ThrowHelper.Format($"{what}: length {length} runs past the page ({page.Length - at} bytes left)");
        }

        var span = page.Slice(at, length);
        at += length;
        return span;
    }

    private static void DecodeDictionaryIndices<T>(ReadOnlySpan<byte> input, T[]? dictionary, Span<T> destination)
    {
        if (destination.Length == 0)
        {
            return;
        }

        var indices = ArrayPool<int>.Shared.Rent(destination.Length);
        try
        {
            var span = indices.AsSpan(0, destination.Length);
            DecodeIndices(input, dictionary, span);

            // DecodeIndices checked every index against the dictionary's length.
            ref var entries = ref MemoryMarshal.GetArrayDataReference(dictionary!);
            for (var i = 0; i < span.Length; i++)
            {
                destination[i] = Unsafe.Add(ref entries, (uint)span[i]);
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(indices);
        }
    }

    /// <summary>Decodes <c>indices.Length</c> dictionary indices (bit width byte, then RLE / bit-packed runs), each checked against the dictionary.</summary>
    private static void DecodeIndices<T>(ReadOnlySpan<byte> input, T[]? dictionary, Span<int> indices) =>
        DecodeIndices(input, dictionary?.Length ?? -1, indices);

    /// <summary>
    /// Decodes <c>indices.Length</c> dictionary indices, each checked against a dictionary of
    /// <paramref name="dictionaryCount"/> entries (-1: the chunk has had no dictionary page).
    /// </summary>
    internal static void DecodeIndices(ReadOnlySpan<byte> input, int dictionaryCount, Span<int> indices)
    {
        if (dictionaryCount < 0)
        {
            ThrowHelper.Format("a dictionary-encoded data page comes before any dictionary page");
        }

        if (input.Length < 1)
        {
            ThrowHelper.Format("dictionary indices: the page has no bit width byte");
        }

        RleBitPackedHybrid.Decode(input[1..], input[0], indices, dictionaryCount, "dictionary indices");
    }
}
