using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Weft.Parquet.Encodings;

/// <summary>
/// The RLE / bit-packing hybrid of Encodings.md, used for definition and repetition levels,
/// dictionary indices and RLE booleans. A run header is a ULEB128 varint: <c>count &lt;&lt; 1</c>
/// for a repeated run (the value follows in ceil(bitWidth / 8) little-endian bytes), or
/// <c>groups &lt;&lt; 1 | 1</c> for <c>groups * 8</c> bit-packed values (LSB first).
/// </summary>
internal static class RleBitPackedHybrid
{
    /// <summary>Runs at least this long are written as RLE runs.</summary>
    private const int MinRepeatRun = 8;

    /// <summary>Bit-packed runs hold at most this many groups of 8 (one-byte header).</summary>
    private const int MaxGroupsPerRun = 63;

    public static int BitWidth(int maxValue) => maxValue <= 0 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)maxValue);

    /// <summary>Encodes byte values (levels) with the given bit width.</summary>
    public static void Encode(ReadOnlySpan<byte> values, int bitWidth, PooledBuffer output) => EncodeRuns(values, bitWidth, output);

    /// <summary>Encodes int values (dictionary indices) with the given bit width.</summary>
    public static void Encode(ReadOnlySpan<int> values, int bitWidth, PooledBuffer output) => EncodeRuns(values, bitWidth, output);

    /// <summary>
    /// The hybrid's runs: a repeated run where a value repeats <see cref="MinRepeatRun"/> times or more,
    /// bit-packed groups of 8 between them. <typeparamref name="T"/> is byte or int (the JIT keeps one branch of each type test).
    /// </summary>
    private static void EncodeRuns<T>(ReadOnlySpan<T> values, int bitWidth, PooledBuffer output)
        where T : unmanaged, IBinaryInteger<T>
    {
        var i = 0;
        while (i < values.Length)
        {
            var run = RunLength(values, i, int.MaxValue);
            if (run >= MinRepeatRun)
            {
                WriteRepeatedRun(int.CreateTruncating(values[i]), run, bitWidth, output);
                i += run;
                continue;
            }

            var start = i;
            var groups = 0;
            while (i < values.Length && groups < MaxGroupsPerRun)
            {
                if (groups > 0 && RunLength(values, i, MinRepeatRun) >= MinRepeatRun)
                {
                    break;
                }

                i += 8;
                groups++;
            }

            i = Math.Min(i, values.Length);
            WriteVarint((uint)((groups << 1) | 1), output);
            var span = output.GetSpan(groups * bitWidth)[..(groups * bitWidth)];
            if (typeof(T) == typeof(byte))
            {
                PackBits(MemoryMarshal.Cast<T, byte>(values[start..i]), bitWidth, span);
            }
            else
            {
                PackBits(MemoryMarshal.Cast<T, int>(values[start..i]), bitWidth, span);
            }

            output.Advance(groups * bitWidth);
        }
    }

    /// <summary>
    /// Decodes exactly <c>destination.Length</c> level values, each at most <paramref name="maxValue"/>.
    /// Returns the number of input bytes consumed. Values above <paramref name="maxValue"/> and input that
    /// ends early throw <see cref="ParquetFormatException"/> naming <paramref name="what"/>.
    /// </summary>
    public static int Decode(ReadOnlySpan<byte> input, int bitWidth, Span<byte> destination, int maxValue, string what) =>
        DecodeRuns(input, bitWidth, destination, maxValue, what);

    /// <summary>Decodes exactly <c>destination.Length</c> dictionary indices, each below <paramref name="limit"/> (the dictionary's size).</summary>
    public static int Decode(ReadOnlySpan<byte> input, int bitWidth, Span<int> destination, int limit, string what) =>
        DecodeRuns(input, bitWidth, destination, limit - 1, what);

    /// <summary>
    /// The hybrid's runs into <paramref name="destination"/>, every value checked against
    /// <paramref name="maxValue"/> (inclusive; -1 admits none). <typeparamref name="T"/> is byte or int
    /// (the JIT keeps one branch of each type test).
    /// </summary>
    private static int DecodeRuns<T>(ReadOnlySpan<byte> input, int bitWidth, Span<T> destination, int maxValue, string what)
        where T : unmanaged, IBinaryInteger<T>
    {
        var maxBitWidth = typeof(T) == typeof(byte) ? 8 : 32;
        if (bitWidth < 0 || bitWidth > maxBitWidth)
        {
            ThrowHelper.Format($"{what}: bit width {bitWidth} is out of range");
        }

        var position = 0;
        var filled = 0;
        var byteWidth = (bitWidth + 7) / 8;
        while (filled < destination.Length)
        {
            var header = ReadVarint(input, ref position, what);
            if ((header & 1) == 0)
            {
                var count = (int)Math.Min(header >> 1, (ulong)(destination.Length - filled));
                if (count == 0)
                {
                    ThrowHelper.Format($"{what}: empty RLE run");
                }

                var value = ReadRunValue(input, ref position, byteWidth, what);
                if (value > maxValue)
                {
                    ThrowOutOfRange<T>(what, value, maxValue);
                }

                destination.Slice(filled, count).Fill(T.CreateTruncating(value));
                filled += count;
            }
            else
            {
                var groups = header >> 1;
                if (groups == 0)
                {
                    ThrowHelper.Format($"{what}: empty bit-packed run");
                }

                var bytes = groups * (ulong)bitWidth;
                if (bytes > (ulong)(input.Length - position))
                {
                    ThrowHelper.Format($"{what}: bit-packed run of {groups * 8} values needs {bytes} bytes, {input.Length - position} left");
                }

                var count = (int)Math.Min(groups * 8, (ulong)(destination.Length - filled));
                var dest = destination.Slice(filled, count);
                var packed = input.Slice(position, (int)bytes);
                if (typeof(T) == typeof(byte))
                {
                    UnpackBits(packed, bitWidth, MemoryMarshal.Cast<T, byte>(dest));
                }
                else
                {
                    UnpackBits(packed, bitWidth, MemoryMarshal.Cast<T, int>(dest));
                }

                // A byte's range ends at 255 whatever the maximum; an int index below 0 is out of range too.
                var bad = maxValue < 0 ? 0 : dest.IndexOfAnyExceptInRange(T.Zero, T.CreateSaturating(maxValue));
                if (bad >= 0)
                {
                    ThrowOutOfRange<T>(what, uint.CreateTruncating(dest[bad]), maxValue);
                }

                position += (int)bytes;
                filled += count;
            }
        }

        return position;
    }

    /// <summary>Packs values LSB-first; <paramref name="output"/> is a whole number of 8-value groups.</summary>
    public static void PackBits(ReadOnlySpan<byte> values, int bitWidth, Span<byte> output)
    {
        output.Clear();
        if (bitWidth == 0)
        {
            return;
        }

        ulong buffer = 0;
        var bits = 0;
        var o = 0;
        foreach (var v in values)
        {
            buffer |= (ulong)v << bits;
            bits += bitWidth;
            while (bits >= 8)
            {
                output[o++] = (byte)buffer;
                buffer >>= 8;
                bits -= 8;
            }
        }

        if (bits > 0)
        {
            output[o] = (byte)buffer;
        }
    }

    public static void PackBits(ReadOnlySpan<int> values, int bitWidth, Span<byte> output)
    {
        output.Clear();
        if (bitWidth == 0)
        {
            return;
        }

        // Accumulate up to 63 bits; flush 4 bytes at a time.
        ulong buffer = 0;
        var bits = 0;
        var o = 0;
        var mask = bitWidth == 32 ? uint.MaxValue : (1UL << bitWidth) - 1;
        foreach (var v in values)
        {
            buffer |= ((ulong)(uint)v & mask) << bits;
            bits += bitWidth;
            if (bits >= 32)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(output[o..], (uint)buffer);
                o += 4;
                buffer >>= 32;
                bits -= 32;
            }
        }

        while (bits > 0)
        {
            output[o++] = (byte)buffer;
            buffer >>= 8;
            bits -= 8;
        }
    }

    /// <summary>Unpacks <c>destination.Length</c> values; <paramref name="packed"/> must hold enough bits.</summary>
    public static void UnpackBits(ReadOnlySpan<byte> packed, int bitWidth, Span<byte> destination)
    {
        if (bitWidth == 0)
        {
            destination.Clear();
            return;
        }

        if (bitWidth == 1)
        {
            // Levels of an optional column: each packed byte expands to 8 bytes of 0 / 1.
            var whole = Math.Min(packed.Length, destination.Length / 8);
            for (var b = 0; b < whole; b++)
            {
                var bits = packed[b];
                // Copy the byte into every lane, keep bit k in lane k, then turn a non-zero lane into 1.
                var lanes = (bits * 0x0101010101010101UL) & 0x8040201008040201UL;
                var expanded = ((lanes + 0x7F7F7F7F7F7F7F7FUL) >> 7) & 0x0101010101010101UL;
                BinaryPrimitives.WriteUInt64LittleEndian(destination.Slice(b * 8, 8), expanded);
            }

            UnpackTail(packed, 1, destination, whole * 8);
            return;
        }

        // Value i starts at bit i * bitWidth: one unaligned 8-byte load holds it (bitWidth <= 8) while
        // 8 bytes remain from its first byte; the rest go through the byte-at-a-time loop.
        var mask = (1UL << bitWidth) - 1;
        ref var source = ref MemoryMarshal.GetReference(packed);
        var fast = packed.Length < 8 ? 0 : (int)Math.Min(destination.Length, ((packed.Length - 8) * 8L / bitWidth) + 1);
        for (var i = 0; i < fast; i++)
        {
            var bit = i * bitWidth;
            destination[i] = (byte)((Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref source, bit >> 3)) >> (bit & 7)) & mask);
        }

        UnpackTail(packed, bitWidth, destination, fast);
    }

    public static void UnpackBits(ReadOnlySpan<byte> packed, int bitWidth, Span<int> destination)
    {
        if (bitWidth == 0)
        {
            destination.Clear();
            return;
        }

        var mask = bitWidth == 32 ? uint.MaxValue : (1UL << bitWidth) - 1;
        ref var source = ref MemoryMarshal.GetReference(packed);
        var fast = packed.Length < 8 ? 0 : (int)Math.Min(destination.Length, ((packed.Length - 8) * 8L / bitWidth) + 1);
        for (var i = 0; i < fast; i++)
        {
            var bit = (long)i * bitWidth;
            destination[i] = (int)(uint)((Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref source, (nint)(bit >> 3))) >> (int)(bit & 7)) & mask);
        }

        UnpackTail(packed, bitWidth, destination, fast);
    }

    /// <summary>Unpacks values <paramref name="from"/>.. one byte at a time (no reads past the input).</summary>
    private static void UnpackTail<T>(ReadOnlySpan<byte> packed, int bitWidth, Span<T> destination, int from)
        where T : IBinaryInteger<T>
    {
        var mask = bitWidth == 32 ? uint.MaxValue : (1UL << bitWidth) - 1;
        var bit = (long)from * bitWidth;
        var p = (int)(bit >> 3);
        var skip = (int)(bit & 7);
        ulong buffer = 0;
        var bits = 0;
        if (skip > 0)
        {
            buffer = (ulong)packed[p++] >> skip;
            bits = 8 - skip;
        }

        for (var i = from; i < destination.Length; i++)
        {
            while (bits < bitWidth)
            {
                buffer |= (ulong)packed[p++] << bits;
                bits += 8;
            }

            destination[i] = T.CreateTruncating((uint)(buffer & mask));
            buffer >>= bitWidth;
            bits -= bitWidth;
        }
    }

    [DoesNotReturn]
    private static void ThrowOutOfRange<T>(string what, uint value, int maxValue) =>
        throw new ParquetFormatException(typeof(T) == typeof(byte)
            ? $"{what}: value {value} exceeds the maximum {maxValue}"
            : $"{what}: index {value} is out of range (dictionary has {maxValue + 1} entries)");

    public static void WriteVarint(uint value, PooledBuffer output)
    {
        while (value >= 0x80)
        {
            output.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        output.WriteByte((byte)value);
    }

    /// <summary>An unsigned LEB128 varint (RLE run headers, DELTA_BINARY_PACKED headers); <paramref name="encoding"/> names the data in errors.</summary>
    internal static ulong ReadVarint(ReadOnlySpan<byte> input, ref int position, string what, string encoding = "RLE")
    {
        ulong result = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (position >= input.Length)
            {
                ThrowHelper.Format($"{what}: {encoding} data ends early");
            }

            var b = input[position++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        return ThrowHelper.Format<ulong>($"{what}: {encoding} varint is longer than 64 bits");
    }

    private static uint ReadRunValue(ReadOnlySpan<byte> input, ref int position, int byteWidth, string what)
    {
        if (input.Length - position < byteWidth)
        {
            ThrowHelper.Format($"{what}: RLE run value runs past the end");
        }

        uint value = 0;
        for (var k = 0; k < byteWidth; k++)
        {
            value |= (uint)input[position + k] << (8 * k);
        }

        position += byteWidth;
        return value;
    }

    private static void WriteRepeatedRun(int value, int count, int bitWidth, PooledBuffer output)
    {
        WriteVarint((uint)count << 1, output);
        var byteWidth = (bitWidth + 7) / 8;
        for (var k = 0; k < byteWidth; k++)
        {
            output.WriteByte((byte)(value >> (8 * k)));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RunLength<T>(ReadOnlySpan<T> values, int start, int cap)
        where T : IEquatable<T>
    {
        var first = values[start];
        var end = (int)Math.Min((long)start + cap, values.Length);
        var j = start + 1;
        while (j < end && values[j].Equals(first))
        {
            j++;
        }

        return j - start;
    }
}
