using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
    /// <summary>
    /// The most a first page's bytes a row may project for the rest of the chunk: past it the array
    /// doubles as it must. A projection only saves copies; it never decides what is read.
    /// </summary>
    private const int MaxProjection = 1 << 28;

    public static ParquetUtf8Column Read(ColumnDescriptor descriptor, ColumnMetaData meta, long rowCount, byte[] chunk, int chunkLength, ReadCounters counters)
    {
        if (meta.NumValues != rowCount)
        {
            ThrowHelper.Format($"the chunk declares {meta.NumValues} values for {rowCount} rows");
        }

        var rows = checked((int)rowCount);
        var maxDef = descriptor.MaxDefinitionLevel;

        // Sized as the string read sizes its values: a corrupt row count cannot demand more than a page could.
        var offsets = new int[Math.Min(rows, ColumnChunkReader.MaxValuesPerPage) + 1];
        bool[]? nulls = null;

        // Nothing from the footer sizes the bytes (a declared size is not data): the first data page does.
        var bytes = new ByteArena(0);
        Utf8Dictionary? dictionary = null;
        var row = 0;
        var position = 0;
        while (row < rows)
        {
            var (header, body) = ColumnChunkReader.NextPage(chunk, chunkLength, ref position, row, rows);
            switch (header.Type)
            {
                case PageType.DictionaryPage:
                    dictionary = ReadDictionaryPage(header, body, meta.Codec, dictionary is not null, counters);
                    break;
                case PageType.DataPage:
                case PageType.DataPageV2:
                {
                    var numValues = ColumnChunkReader.DataPageValues(header, row, rows);
                    if ((long)row + numValues + 1 > offsets.Length)
                    {
                        Grow(ref offsets, ref nulls, (long)row + numValues + 1, rows);
                    }

                    var first = row == 0;
                    ReadDataPage(header, numValues, body, meta.Codec, maxDef, dictionary, bytes, offsets.AsSpan(row, numValues + 1), ref nulls, row, offsets.Length - 1, counters);
                    row += numValues;
                    if (first && numValues > 0 && row < rows)
                    {
                        // Room for the rest of the chunk at the first page's bytes a row (null rows included),
                        // and for the vector a dictionary page's copy may write past its last value.
                        var projected = (long)bytes.Length * (rows - row) / numValues;
                        bytes.EnsureRoom(Math.Min(projected, MaxProjection) + Utf8Dictionary.Padding);
                    }

                    break;
                }

                default:
                    // Index pages and unknown page types carry nothing Weft needs.
                    break;
            }
        }

        return new ParquetUtf8Column(descriptor.Field, bytes.Trimmed(), offsets, nulls);
    }

    /// <summary>Grows the offsets (and the null flags, when there are any) to at least <paramref name="needed"/> entries, at most one a row plus one.</summary>
    private static void Grow(ref int[] offsets, ref bool[]? nulls, long needed, int rows)
    {
        var size = Math.Min((long)rows + 1, Math.Max(needed, (long)offsets.Length * 2));
        if (size > Array.MaxLength)
        {
            ThrowHelper.NotSupported($"a row group of {rows} rows has more than a UTF-8 column's {Array.MaxLength - 1}");
        }

        Array.Resize(ref offsets, (int)size);
        if (nulls is not null)
        {
            Array.Resize(ref nulls, (int)size - 1);
        }
    }

    private static Utf8Dictionary ReadDictionaryPage(PageHeader header, ArraySegment<byte> body, CompressionCodec codec, bool seen, ReadCounters counters)
    {
        var buffer = ColumnChunkReader.DecompressDictionaryPage(header, body, codec, seen, counters, out var count, minValueBytes: 4);
        try
        {
            var page = buffer.AsSpan(0, header.UncompressedPageSize);
            var entries = new ByteArena(Math.Max(16, page.Length + Utf8Dictionary.Padding));
            var lengths = new int[count];
            AppendPlain(page, lengths, entries, "dictionary page");
            CheckUtf8(entries.Written, lengths, "dictionary page");
            var offsets = new int[count];
            var maxLength = 0;
            for (var i = 1; i < count; i++)
            {
                offsets[i] = offsets[i - 1] + lengths[i - 1];
            }

            foreach (var length in lengths)
            {
                maxLength = Math.Max(maxLength, length);
            }

            // The padding after the last entry lets a vector-wide copy start at any entry.
            entries.Reserve(Utf8Dictionary.Padding);
            return new Utf8Dictionary(entries.Array, offsets, lengths, maxLength);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// One data page: appends its values' bytes to <paramref name="bytes"/> and fills
    /// <paramref name="offsets"/> (the page's rows' offsets, its first entry already set by the page before).
    /// Null flags, made at the first null row, cover <paramref name="rowCapacity"/> rows, as the offsets do.
    /// </summary>
    private static void ReadDataPage(
        PageHeader header,
        int numValues,
        ArraySegment<byte> body,
        CompressionCodec codec,
        int maxDef,
        Utf8Dictionary? dictionary,
        ByteArena bytes,
        Span<int> offsets,
        ref bool[]? nulls,
        int firstRow,
        int rowCapacity,
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
                    AppendFromDictionary(valueSpan, dictionary, valueLengths, bytes);
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
                    ColumnChunkReader.UnsupportedEncoding(encoding, PhysicalType.ByteArray);
                    break;
            }

            // Rows to offsets: a null row (below the maximum definition level) takes no bytes.
            if (defs is null || present == numValues)
            {
                for (var i = 0; i < numValues; i++)
                {
                    offsets[i + 1] = offsets[i] + valueLengths[i];
                }

                return;
            }

            var level = (byte)maxDef;
            var k = 0;

            // The flags cover the rows the offsets have room for, and grow with them.
            nulls ??= new bool[rowCapacity];
            for (var i = 0; i < numValues; i++)
            {
                var length = 0;
                if (defs[i] == level)
                {
                    length = valueLengths[k++];
                }
                else
                {
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
        // Each value takes its bytes and a 4-byte length from the input, so this reservation holds them all.
        var target = bytes.Reserve(Math.Max(0, input.Length - (4L * lengths.Length)));
        var position = 0;
        var written = 0;
        for (var i = 0; i < lengths.Length; i++)
        {
            var value = PlainByteArray.Next(input, ref position, i, lengths.Length, "string", what);
            value.CopyTo(target[written..]);
            written += value.Length;
            lengths[i] = value.Length;
        }

        bytes.Advance(written);
    }

    /// <summary>Dictionary indices: appends each entry's bytes and records its length.</summary>
    private static void AppendFromDictionary(ReadOnlySpan<byte> input, Utf8Dictionary? dictionary, Span<int> lengths, ByteArena bytes)
    {
        if (lengths.Length == 0)
        {
            return;
        }

        ColumnChunkReader.DecodeIndices(input, dictionary is null ? -1 : dictionary.Count, lengths);

        // DecodeIndices checked every index against the dictionary; lengths holds them until replaced.
        var entryLengths = dictionary!.Lengths;
        var total = 0L;
        foreach (var index in lengths)
        {
            total += entryLengths[index];
        }

        // Room for the values and one vector beyond them: short entries are copied a whole vector at a time.
        var target = bytes.Reserve(total + Utf8Dictionary.Padding);
        ref var to = ref MemoryMarshal.GetReference(target);
        ref var from = ref MemoryMarshal.GetArrayDataReference(dictionary.Bytes);
        var offsets = dictionary.Offsets;
        var written = 0;
        if (dictionary.MaxLength <= Utf8Dictionary.Padding)
        {
            for (var i = 0; i < lengths.Length; i++)
            {
                var index = lengths[i];
                var length = entryLengths[index];
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, written), Unsafe.ReadUnaligned<Vector128<byte>>(ref Unsafe.Add(ref from, offsets[index])));
                written += length;
                lengths[i] = length;
            }
        }
        else
        {
            for (var i = 0; i < lengths.Length; i++)
            {
                var index = lengths[i];
                var length = entryLengths[index];
                Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref to, written), ref Unsafe.Add(ref from, offsets[index]), (uint)length);
                written += length;
                lengths[i] = length;
            }
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

    /// <summary>A chunk's dictionary: its entries' bytes back to back (then at least <see cref="Padding"/> more), offsets and lengths.</summary>
    private sealed record Utf8Dictionary(byte[] Bytes, int[] Offsets, int[] Lengths, int MaxLength)
    {
        /// <summary>One vector: entries no longer than this are copied a vector at a time.</summary>
        public const int Padding = 16;

        public int Count => Offsets.Length;
    }

    /// <summary>An append-only byte array that the column keeps (not pooled: the result owns it).</summary>
    private sealed class ByteArena(int capacity)
    {
        private byte[] _array = capacity == 0 ? [] : GC.AllocateUninitializedArray<byte>(capacity);

        public int Length { get; private set; }

        public byte[] Array => _array;

        public ReadOnlySpan<byte> Written => _array.AsSpan(0, Length);

        /// <summary>
        /// Room for at least <paramref name="count"/> more bytes after those written. More than an array
        /// holds is valid data Weft cannot hold this way: refused before anything is allocated.
        /// </summary>
        public Span<byte> Reserve(long count)
        {
            var needed = Length + count;
            if (needed > _array.Length)
            {
                if (needed > System.Array.MaxLength)
                {
                    ThrowHelper.NotSupported(
                        $"the column chunk's strings take more than {System.Array.MaxLength} bytes, more than one UTF-8 column holds; read it with ReadColumnAsync");
                }

                Resize((int)Math.Min(System.Array.MaxLength, Math.Max(needed, (long)_array.Length * 2)));
            }

            return _array.AsSpan(Length);
        }

        /// <summary>Room for <paramref name="count"/> more bytes if an array can hold them; a hint, never an error.</summary>
        public void EnsureRoom(long count)
        {
            var needed = Math.Min(Length + count, System.Array.MaxLength);
            if (needed > _array.Length)
            {
                Resize((int)needed);
            }
        }

        public void Advance(int count) => Length += count;

        /// <summary>The array, copied to its length when more than a quarter of it (and 64 KB) is unused: the column keeps it.</summary>
        public byte[] Trimmed() =>
            _array.Length - Length > Math.Max(Length / 4, 1 << 16) ? _array.AsSpan(0, Length).ToArray() : _array;

        private void Resize(int size)
        {
            var grown = GC.AllocateUninitializedArray<byte>(size);
            _array.AsSpan(0, Length).CopyTo(grown);
            _array = grown;
        }
    }
}
