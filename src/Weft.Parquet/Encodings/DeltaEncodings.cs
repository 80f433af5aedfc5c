using System.Buffers;
using System.Text;

namespace Weft.Parquet.Encodings;

/// <summary>
/// The read side of the encodings PARQUET_VERSION 2 writers choose (DuckDB's V2, parquet-mr's v2, Arrow's
/// writer when asked): DELTA_BINARY_PACKED integers, DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY
/// strings and BYTE_STREAM_SPLIT fixed-width values. Weft writes none of them.
/// </summary>
internal static class DeltaEncodings
{
    /// <summary>
    /// Decodes DELTA_BINARY_PACKED into <paramref name="destination"/>, whose length must be the value
    /// count the encoding states; returns the bytes consumed. Arithmetic wraps as the writer's did:
    /// 64-bit here, and 32-bit columns wrap the same way once cast back.
    /// </summary>
    public static int DecodeBinaryPacked(ReadOnlySpan<byte> input, Span<long> destination, string what)
    {
        var position = 0;
        var blockSize = ReadUleb(input, ref position, what);
        var miniblocks = ReadUleb(input, ref position, what);
        var total = ReadUleb(input, ref position, what);
        var first = ZigZag(ReadUleb(input, ref position, what));
        if (blockSize == 0 || blockSize % 128 != 0 || miniblocks == 0 || blockSize % miniblocks != 0 || (blockSize / miniblocks) % 32 != 0 || blockSize > 1 << 20)
        {
            ThrowHelper.Format($"{what}: DELTA_BINARY_PACKED header has blocks of {blockSize} values in {miniblocks} miniblocks");
        }

        if (total != (ulong)destination.Length)
        {
            ThrowHelper.Format($"{what}: DELTA_BINARY_PACKED holds {total} values where the page has {destination.Length}");
        }

        if (destination.Length == 0)
        {
            return position;
        }

        var perMiniblock = (int)(blockSize / miniblocks);
        destination[0] = first;
        var last = first;
        var n = 1;
        while (n < destination.Length)
        {
            var minDelta = ZigZag(ReadUleb(input, ref position, what));
            if ((ulong)(input.Length - position) < miniblocks)
            {
                ThrowHelper.Format($"{what}: DELTA_BINARY_PACKED block lacks its miniblock bit widths");
            }

            var widths = input.Slice(position, (int)miniblocks);
            position += (int)miniblocks;

            // The bit widths of miniblocks the last block does not need are still there; their bodies are not.
            for (var m = 0; m < widths.Length && n < destination.Length; m++)
            {
                int width = widths[m];
                if (width > 64)
                {
                    ThrowHelper.Format($"{what}: DELTA_BINARY_PACKED miniblock of {width}-bit deltas");
                }

                var bytes = perMiniblock / 8 * width;
                if (input.Length - position < bytes)
                {
                    ThrowHelper.Format($"{what}: DELTA_BINARY_PACKED miniblock of {bytes} bytes runs past the page ({input.Length - position} bytes left)");
                }

                var packed = input.Slice(position, bytes);
                position += bytes;
                for (var k = 0; k < perMiniblock && n < destination.Length; k++)
                {
                    last = unchecked(last + minDelta + (long)ReadBits(packed, k * width, width));
                    destination[n++] = last;
                }
            }
        }

        return position;
    }

    /// <summary>DELTA_BINARY_PACKED INT32 values, wrapping as 32-bit arithmetic does.</summary>
    public static int DecodeBinaryPacked(ReadOnlySpan<byte> input, Span<int> destination, string what)
    {
        var wide = ArrayPool<long>.Shared.Rent(destination.Length);
        try
        {
            var consumed = DecodeBinaryPacked(input, wide.AsSpan(0, destination.Length), what);
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = unchecked((int)wide[i]);
            }

            return consumed;
        }
        finally
        {
            ArrayPool<long>.Shared.Return(wide);
        }
    }

    /// <summary>DELTA_LENGTH_BYTE_ARRAY strings: every length (DELTA_BINARY_PACKED), then every value's bytes.</summary>
    public static int DecodeLengthByteArray(ReadOnlySpan<byte> input, Span<string> destination, string what) =>
        DecodeLengthByteArray(input, destination, default(Utf8Values), what);

    /// <summary>DELTA_LENGTH_BYTE_ARRAY values, each made from its bytes by <paramref name="values"/>.</summary>
    public static int DecodeLengthByteArray<T, TValues>(ReadOnlySpan<byte> input, Span<T> destination, TValues values, string what)
        where TValues : struct, IByteArrayValues<T>
    {
        var lengths = ArrayPool<int>.Shared.Rent(destination.Length);
        try
        {
            var position = DecodeBinaryPacked(input, lengths.AsSpan(0, destination.Length), what);
            for (var i = 0; i < destination.Length; i++)
            {
                var length = lengths[i];
                if (length < 0 || length > input.Length - position)
                {
                    ThrowHelper.Format($"{what}: string {i} of {length} bytes runs past the page ({input.Length - position} bytes left)");
                }

                destination[i] = values.From(input.Slice(position, length), what);
                position += length;
            }

            return position;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(lengths);
        }
    }

    /// <summary>
    /// DELTA_BYTE_ARRAY strings (parquet-mr's v2 choice): every prefix length, every suffix length (both
    /// DELTA_BINARY_PACKED), then the suffixes; each value is that many leading bytes of the value
    /// before it followed by its suffix.
    /// </summary>
    public static int DecodeByteArray(ReadOnlySpan<byte> input, Span<string> destination, string what) =>
        DecodeByteArray(input, destination, default(Utf8Values), what);

    /// <summary>DELTA_BYTE_ARRAY values (strings, or FIXED_LEN_BYTE_ARRAY and BYTE_ARRAY decimals), each made from its bytes by <paramref name="values"/>.</summary>
    public static int DecodeByteArray<T, TValues>(ReadOnlySpan<byte> input, Span<T> destination, TValues values, string what)
        where TValues : struct, IByteArrayValues<T>
    {
        var count = destination.Length;
        var lengths = ArrayPool<int>.Shared.Rent(count * 2);
        var previous = ArrayPool<byte>.Shared.Rent(256);
        try
        {
            var prefixes = lengths.AsSpan(0, count);
            var suffixes = lengths.AsSpan(count, count);
            var position = DecodeBinaryPacked(input, prefixes, what);
            position += DecodeBinaryPacked(input[position..], suffixes, what);
            var previousLength = 0;
            for (var i = 0; i < count; i++)
            {
                int prefix = prefixes[i], suffix = suffixes[i];
                if (prefix < 0 || prefix > previousLength)
                {
                    ThrowHelper.Format($"{what}: string {i} takes {prefix} bytes of a previous value of {previousLength}");
                }

                if (suffix < 0 || suffix > input.Length - position)
                {
                    ThrowHelper.Format($"{what}: string {i}'s suffix of {suffix} bytes runs past the page ({input.Length - position} bytes left)");
                }

                var length = prefix + suffix;
                if (length > previous.Length)
                {
                    var grown = ArrayPool<byte>.Shared.Rent(length);
                    previous.AsSpan(0, prefix).CopyTo(grown);
                    ArrayPool<byte>.Shared.Return(previous);
                    previous = grown;
                }

                input.Slice(position, suffix).CopyTo(previous.AsSpan(prefix));
                position += suffix;
                previousLength = length;
                destination[i] = values.From(previous.AsSpan(0, length), what);
            }

            return position;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(previous);
            ArrayPool<int>.Shared.Return(lengths);
        }
    }

    /// <summary>
    /// BYTE_STREAM_SPLIT: byte k of value i is at <c>k * count + i</c>. <paramref name="destination"/> holds
    /// <c>count * width</c> bytes, each value's little-endian bytes in turn.
    /// </summary>
    public static int DecodeByteStreamSplit(ReadOnlySpan<byte> input, Span<byte> destination, int width, string what)
    {
        var count = destination.Length / width;
        if (input.Length < destination.Length)
        {
            ThrowHelper.Format($"{what}: BYTE_STREAM_SPLIT needs {destination.Length} bytes for {count} values, {input.Length} present");
        }

        for (var k = 0; k < width; k++)
        {
            var stream = input.Slice(k * count, count);
            for (var i = 0; i < count; i++)
            {
                destination[(i * width) + k] = stream[i];
            }
        }

        return destination.Length;
    }

    private static ulong ReadUleb(ReadOnlySpan<byte> input, ref int position, string what) =>
        RleBitPackedHybrid.ReadVarint(input, ref position, what, "DELTA_BINARY_PACKED");

    private static long ZigZag(ulong value) => (long)(value >> 1) ^ -(long)(value & 1);

    /// <summary><paramref name="width"/> bits from <paramref name="bitOffset"/>, least significant bit first.</summary>
    private static ulong ReadBits(ReadOnlySpan<byte> packed, int bitOffset, int width)
    {
        ulong result = 0;
        var got = 0;
        var index = bitOffset >> 3;
        var shift = bitOffset & 7;
        while (got < width)
        {
            var take = Math.Min(8 - shift, width - got);
            result |= (ulong)((packed[index++] >> shift) & ((1 << take) - 1)) << got;
            got += take;
            shift = 0;
        }

        return result;
    }
}

/// <summary>What the byte-array decoders make of each value's bytes; a struct, so each kind gets its own specialised loop.</summary>
internal interface IByteArrayValues<T>
{
    T From(ReadOnlySpan<byte> bytes, string what);
}

/// <summary>Byte arrays as strict UTF-8 strings.</summary>
internal readonly struct Utf8Values : IByteArrayValues<string>
{
    public string From(ReadOnlySpan<byte> bytes, string what) => StringCodec.Decode(bytes, what);
}
