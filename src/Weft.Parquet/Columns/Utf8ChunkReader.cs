using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using Weft.Parquet.Encodings;
using Weft.Parquet.Format;

namespace Weft.Parquet.Columns;

/// <summary>
/// Decodes one flat string column chunk into <see cref="ParquetUtf8Column"/>: the values' bytes copied
/// back to back from the pages, with no string per value. Reads the pages and encodings
/// <see cref="ColumnChunkReader"/> reads for strings (PLAIN, dictionary, DELTA_LENGTH_BYTE_ARRAY,
/// DELTA_BYTE_ARRAY; v1 and v2 data pages) and reports corruption in the same words.
/// </summary>
internal static class Utf8ChunkReader
{
    public static ParquetUtf8Column Read(ColumnDescriptor descriptor, ColumnMetaData meta, long rowCount, byte[] chunk, int chunkLength, ReadCounters counters)
    {
        if (meta.NumValues != rowCount)
        {
            ThrowHelper.Format($"the chunk declares {meta.NumValues} values for {rowCount} rows");
        }

        var rows = checked((int)rowCount);
        var maxDef = descriptor.MaxDefinitionLevel;
        var offsets = new int[rows + 1];
        bool[]? nulls = null;

        // The uncompressed size bounds a PLAIN chunk's bytes (each value's bytes plus its length); a
        // dictionary-encoded chunk grows from it.
        var bytes = new ByteArena((int)Math.Clamp(meta.TotalUncompressedSize, 16, 1 << 30));
        ByteArena? dictionary = null;
        int[]? dictionaryOffsets = null;
        var row = 0;
        var position = 0;
        while (row < rows)
        {
            var (header, body) = ColumnChunkReader.NextPage(chunk, chunkLength, ref position, row, rows);
            switch (header.Type)
            {
                case PageType.DictionaryPage:
                    (dictionary, dictionaryOffsets) = ReadDictionaryPage(header, body, meta.Codec, dictionary is not null, counters);
                    break;
                case PageType.DataPage:
                case PageType.DataPageV2:
                {
                    var numValues = ColumnChunkReader.DataPageValues(header, row, rows);
                    ReadDataPage(header, numValues, body, meta.Codec, maxDef, dictionary, dictionaryOffsets, bytes, offsets.AsSpan(row, numValues + 1), ref nulls, row, rows, counters);
                    row += numValues;
                    break;
                }

                default:
                    // Index pages and unknown page types carry nothing Weft needs.
                    break;
            }
        }

        return new ParquetUtf8Column(descriptor.Field, bytes.Array, offsets, nulls);
    }

    private static (ByteArena Bytes, int[] Offsets) ReadDictionaryPage(PageHeader header, ArraySegment<byte> body, CompressionCodec codec, bool seen, ReadCounters counters)
    {
        var buffer = ColumnChunkReader.DecompressDictionaryPage(header, body, codec, seen, counters, out var count);
        var lengths = ArrayPool<int>.Shared.Rent(Math.Max(1, count));
        try
        {
            var page = buffer.AsSpan(0, header.UncompressedPageSize);
            var entries = new ByteArena(Math.Max(16, page.Length));
            var span = lengths.AsSpan(0, count);
            AppendPlain(page, span, entries, "dictionary page");
            CheckUtf8(entries.Written, span, "dictionary page");
            var offsets = new int[count + 1];
            for (var i = 0; i < count; i++)
            {
                offsets[i + 1] = offsets[i] + span[i];
            }

            return (entries, offsets);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(lengths);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// One data page: appends its values' bytes to <paramref name="bytes"/> and fills
    /// <paramref name="offsets"/> (the page's rows' offsets, its first entry already set by the page before).
    /// </summary>
    private static void ReadDataPage(
        PageHeader header,
        int numValues,
        ArraySegment<byte> body,
        CompressionCodec codec,
        int maxDef,
        ByteArena? dictionary,
        int[]? dictionaryOffsets,
        ByteArena bytes,
        Span<int> offsets,
        ref bool[]? nulls,
        int firstRow,
        int rows,
        ReadCounters counters)
    {
        ColumnChunkReader.PreCheck(header, body, codec);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, header.UncompressedPageSize));
        var defs = maxDef > 0 ? ArrayPool<byte>.Shared.Rent(Math.Max(1, numValues)) : null;
        var lengths = ArrayPool<int>.Shared.Rent(Math.Max(1, numValues));
        try
        {
            var encoding = ColumnChunkReader.DecompressDataPage(header, body, codec, maxRep: 0, maxDef, buffer, counters, out _, out var defSpan, out var valueSpan);
            var present = numValues;
            if (defs is not null)
            {
                RleBitPackedHybrid.Decode(defSpan, RleBitPackedHybrid.BitWidth(maxDef), defs.AsSpan(0, numValues), maxDef, "definition levels");
                present = defs.AsSpan(0, numValues).Count((byte)maxDef);
            }

            var valueLengths = lengths.AsSpan(0, present);
            var start = bytes.Length;
            switch (encoding)
            {
                case PageEncoding.Plain:
                    AppendPlain(valueSpan, valueLengths, bytes, "data page values");
                    CheckUtf8(bytes.Written[start..], valueLengths, "data page values");
                    break;
                case PageEncoding.PlainDictionary:
                case PageEncoding.RleDictionary:
                    AppendFromDictionary(valueSpan, dictionary, dictionaryOffsets, valueLengths, bytes);
                    break;
                case PageEncoding.DeltaLengthByteArray:
                    DeltaEncodings.DecodeLengthByteArray(valueSpan, valueLengths, new AppendTo(bytes), "data page values");
                    CheckUtf8(bytes.Written[start..], valueLengths, "data page values");
                    break;
                case PageEncoding.DeltaByteArray:
                    DeltaEncodings.DecodeByteArray(valueSpan, valueLengths, new AppendTo(bytes), "data page values");
                    CheckUtf8(bytes.Written[start..], valueLengths, "data page values");
                    break;
                default:
                    ThrowHelper.NotSupported($"value encoding {encoding} is not supported for BYTE_ARRAY values; Weft reads PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY, (strings) DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY");
                    break;
            }

            // Rows to offsets: a null row (below the maximum definition level) takes no bytes.
            var level = (byte)maxDef;
            var k = 0;
            for (var i = 0; i < numValues; i++)
            {
                var length = 0;
                if (defs is null || defs[i] == level)
                {
                    length = valueLengths[k++];
                }
                else
                {
                    nulls ??= new bool[rows];
                    nulls[firstRow + i] = true;
                }

                offsets[i + 1] = offsets[i] + length;
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(lengths);
            if (defs is not null)
            {
                ArrayPool<byte>.Shared.Return(defs);
            }

            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>PLAIN byte arrays (a 4-byte length, then the bytes): appends each value's bytes and records its length.</summary>
    private static void AppendPlain(ReadOnlySpan<byte> input, Span<int> lengths, ByteArena bytes, string what)
    {
        // The values' bytes are fewer than the input's, so one reservation holds them all.
        var target = bytes.Reserve(input.Length);
        var position = 0;
        var written = 0;
        for (var i = 0; i < lengths.Length; i++)
        {
            if (input.Length - position < 4)
            {
                ThrowHelper.Format($"{what}: string {i} of {lengths.Length} lacks its length prefix");
            }

            var length = BinaryPrimitives.ReadInt32LittleEndian(input[position..]);
            position += 4;
            if (length < 0 || length > input.Length - position)
            {
                ThrowHelper.Format($"{what}: string {i} of {length} bytes runs past the page ({input.Length - position} bytes left)");
            }

            input.Slice(position, length).CopyTo(target[written..]);
            position += length;
            written += length;
            lengths[i] = length;
        }

        bytes.Advance(written);
    }

    private static void AppendFromDictionary(ReadOnlySpan<byte> input, ByteArena? dictionary, int[]? dictionaryOffsets, Span<int> lengths, ByteArena bytes)
    {
        if (lengths.Length == 0)
        {
            return;
        }

        ColumnChunkReader.DecodeIndices(input, dictionaryOffsets is null ? -1 : dictionaryOffsets.Length - 1, lengths);

        // DecodeIndices checked every index against the dictionary; lengths holds them until replaced.
        var entries = dictionary!.Written;
        var total = 0L;
        foreach (var index in lengths)
        {
            total += dictionaryOffsets![index + 1] - dictionaryOffsets[index];
        }

        var target = bytes.Reserve(checked((int)Math.Min(total, int.MaxValue)));
        var written = 0;
        for (var i = 0; i < lengths.Length; i++)
        {
            var index = lengths[i];
            var from = dictionaryOffsets![index];
            var length = dictionaryOffsets[index + 1] - from;
            entries.Slice(from, length).CopyTo(target[written..]);
            written += length;
            lengths[i] = length;
        }

        bytes.Advance(written);
    }

    /// <summary>Checks that each value is valid UTF-8, at once when every byte is ASCII.</summary>
    private static void CheckUtf8(ReadOnlySpan<byte> values, ReadOnlySpan<int> lengths, string what)
    {
        if (Ascii.IsValid(values))
        {
            return;
        }

        // Valid UTF-8 bytes back to back can still split a character between two values: check each.
        var at = 0;
        foreach (var length in lengths)
        {
            if (!Utf8.IsValid(values.Slice(at, length)))
            {
                ThrowHelper.Format($"{what}: a string value is not valid UTF-8");
            }

            at += length;
        }
    }

    /// <summary>The delta decoders' values: each appended to the column's bytes, its length kept.</summary>
    private readonly struct AppendTo(ByteArena bytes) : IByteArrayValues<int>
    {
        public int From(ReadOnlySpan<byte> value, string what)
        {
            value.CopyTo(bytes.Reserve(value.Length));
            bytes.Advance(value.Length);
            return value.Length;
        }
    }

    /// <summary>An append-only byte array that the column keeps (not pooled: the result owns it).</summary>
    private sealed class ByteArena(int capacity)
    {
        private byte[] _array = GC.AllocateUninitializedArray<byte>(capacity);

        public int Length { get; private set; }

        public byte[] Array => _array;

        public ReadOnlySpan<byte> Written => _array.AsSpan(0, Length);

        /// <summary>Room for at least <paramref name="count"/> more bytes after those written.</summary>
        public Span<byte> Reserve(int count)
        {
            var needed = (long)Length + count;
            if (needed > _array.Length)
            {
                if (needed > System.Array.MaxLength)
                {
                    ThrowHelper.Format($"a column chunk's strings take more than {System.Array.MaxLength} bytes");
                }

                var grown = GC.AllocateUninitializedArray<byte>((int)Math.Min(System.Array.MaxLength, Math.Max(needed, (long)_array.Length * 2)));
                _array.AsSpan(0, Length).CopyTo(grown);
                _array = grown;
            }

            return _array.AsSpan(Length);
        }

        public void Advance(int count) => Length += count;
    }
}
