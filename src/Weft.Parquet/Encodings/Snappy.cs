using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Weft.Parquet.Encodings;

/// <summary>
/// The Snappy block format (google/snappy <c>format_description.txt</c>), without allocations.
/// The compressor is the reference implementation's greedy matcher (a 4-byte hash over 64 KiB
/// fragments, a skip that accelerates through incompressible input). The decompressor writes into
/// the caller's buffer and checks every element against both buffers before touching memory, so
/// corrupt input throws <see cref="ParquetFormatException"/> and never reads or writes out of range.
/// The fast paths copy whole 8- or 16-byte words only where both buffers have that much room.
/// (Replaces IronSnappy, whose encoder and decoder allocate a new array per page: this codec compresses
/// about 1.2-1.5x and decompresses about 2-2.6x faster on Weft's pages; see docs/PERFORMANCE.md.)
/// </summary>
internal static class Snappy
{
    private const int BlockSize = 1 << 16;
    private const int MaxHashTableBits = 14;
    private const int InputMarginBytes = 15;

    /// <summary>Input the fast decoding loop needs left: a tag, 4 trailer bytes, a 60-byte literal read as 8-byte words.</summary>
    private const int FastInputRoom = 1 + 4 + 64;

    /// <summary>Output the fast decoding loop needs left: a 64-byte element written in whole words, plus slack.</summary>
    private const int FastOutputRoom = 64 + 16;

    /// <summary>The largest output <see cref="Compress"/> can produce for <paramref name="length"/> input bytes.</summary>
    public static int MaxCompressedLength(int length) => 32 + length + (length / 6);

    /// <summary>
    /// Compresses <paramref name="input"/> into <paramref name="output"/>, which must hold at least
    /// <see cref="MaxCompressedLength"/> bytes; returns the bytes written.
    /// </summary>
    public static int Compress(ReadOnlySpan<byte> input, Span<byte> output)
    {
        if (output.Length < MaxCompressedLength(input.Length))
        {
            throw new ArgumentException("The output is smaller than MaxCompressedLength(input).", nameof(output));
        }

        var op = WriteVarint(output, (uint)input.Length);
        Span<ushort> table = stackalloc ushort[1 << MaxHashTableBits];
        for (var start = 0; start < input.Length; start += BlockSize)
        {
            var fragment = input.Slice(start, Math.Min(BlockSize, input.Length - start));
            var bits = Math.Clamp(BitOperations.Log2((uint)Math.Max(fragment.Length - 1, 1)) + 1, 8, MaxHashTableBits);
            var fragmentTable = table[..(1 << bits)];
            fragmentTable.Clear();
            op = CompressFragment(fragment, output, op, fragmentTable, 32 - bits);
        }

        return op;
    }

    /// <summary>The decoded length a block declares in its header; -1 when the header is malformed.</summary>
    public static long DecodedLength(ReadOnlySpan<byte> input, out int headerBytes)
    {
        ulong length = 0;
        headerBytes = 0;
        for (var shift = 0; shift <= 28; shift += 7)
        {
            if (headerBytes >= input.Length)
            {
                return -1;
            }

            var b = input[headerBytes++];
            length |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return length > uint.MaxValue ? -1 : (long)length;
            }
        }

        return -1;
    }

    /// <summary>
    /// Decompresses <paramref name="input"/> into exactly <c>output.Length</c> bytes; anything else
    /// (a bad header, an element running past either buffer, a copy reaching before the start, a
    /// different decoded length) throws <see cref="ParquetFormatException"/> naming <paramref name="what"/>.
    /// </summary>
    public static void Decompress(ReadOnlySpan<byte> input, Span<byte> output, string what)
    {
        var declared = DecodedLength(input, out var headerBytes);
        if (declared != output.Length)
        {
            ThrowLength(what, declared, output.Length);
        }

        // The fast loop decodes all it can; the checked one decodes the element it stopped at (a long
        // literal, a corrupt element, or one near the end of either buffer), then the fast loop resumes.
        var position = ((ulong)(uint)headerBytes << 32) | 0;
        while (true)
        {
            position = DecodeFast(input, output, position);
            if ((int)(position >> 32) >= input.Length)
            {
                break;
            }

            position = DecodeChecked(input, output, position, what);
        }

        if ((int)position != output.Length)
        {
            ThrowDecoded(what, (int)position, output.Length);
        }
    }

    /// <summary>
    /// Decodes elements while both buffers have room for the largest element plus slack (a tag, 4
    /// trailer bytes and a 60-byte literal read as 8-byte words; 64 bytes plus slack written), with no
    /// per-byte checks. Literals and copies share one path: 8-byte words from the input (a literal) or
    /// from earlier output (a copy with an offset of at least 8, so each word reads only bytes already
    /// written). Returns (input position &lt;&lt; 32 | output position) of the first element it leaves
    /// to <see cref="DecodeChecked"/>: a literal over 60 bytes, an element near the end of either buffer,
    /// or a corrupt copy. Makes no calls and is not inlined (into a loop that does), so its locals stay in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ulong DecodeFast(ReadOnlySpan<byte> input, Span<byte> output, ulong position)
    {
        ref var src = ref MemoryMarshal.GetReference(input);
        ref var dst = ref MemoryMarshal.GetReference(output);
        var ip = (int)(position >> 32);
        var op = (int)position;
        var ipLimit = input.Length - FastInputRoom;
        var opLimit = output.Length - FastOutputRoom;
        while (ip <= ipLimit && op <= opLimit)
        {
            uint tag = Unsafe.Add(ref src, ip);
            ref var to = ref Unsafe.Add(ref dst, op);
            var type = tag & 3;
            if (type == 0)
            {
                var literal = (int)(tag >> 2) + 1;
                if (literal > 60)
                {
                    break;
                }

                CopyWords(ref to, ref Unsafe.Add(ref src, ip + 1), literal);
                ip += 1 + literal;
                op += literal;
                continue;
            }

            // A copy: 1, 2 or 4 offset bytes after the tag (type 1, 2, 3).
            var extra = (int)((0x4210u >> (int)(type << 2)) & 15);
            var trailer = Load32(ref src, ip + 1) & (uint)((1UL << (8 * extra)) - 1);
            var length = type == 1 ? (int)((tag >> 2) & 7) + 4 : (int)(tag >> 2) + 1;
            var offset = type == 1 ? ((tag >> 5) << 8) + trailer : trailer;
            if (offset >= 8 && offset <= (uint)op)
            {
                CopyWords(ref to, ref Unsafe.Subtract(ref to, (nint)offset), length);
            }
            else if (offset != 0 && offset <= (uint)op)
            {
                PatternCopy(ref dst, op, (int)offset, length);
            }
            else
            {
                break;
            }

            ip += 1 + extra;
            op += length;
        }

        return ((ulong)(uint)ip << 32) | (uint)op;
    }

    /// <summary>Decodes one element, checking it against both buffers; returns the new positions.</summary>
    private static ulong DecodeChecked(ReadOnlySpan<byte> input, Span<byte> output, ulong position, string what)
    {
        var ip = (int)(position >> 32);
        var op = (int)position;
        var inLength = input.Length;
        var outLength = output.Length;
        uint tag = input[ip++];
        int length;
        int offset;
        switch (tag & 3)
        {
            case 0:
                length = (int)(tag >> 2) + 1;
                if (length > 60)
                {
                    var extra = length - 60;
                    if (inLength - ip < extra)
                    {
                        ThrowRange(what, "literal", op);
                    }

                    uint value = 0;
                    for (var k = 0; k < extra; k++)
                    {
                        value |= (uint)input[ip + k] << (8 * k);
                    }

                    ip += extra;
                    if (value >= int.MaxValue)
                    {
                        ThrowRange(what, "literal", op);
                    }

                    length = (int)value + 1;
                }

                if (length > inLength - ip || length > outLength - op)
                {
                    ThrowRange(what, "literal", op);
                }

                input.Slice(ip, length).CopyTo(output[op..]);
                return ((ulong)(uint)(ip + length) << 32) | (uint)(op + length);
            case 1:
                if (ip >= inLength)
                {
                    ThrowRange(what, "copy", op);
                }

                length = (int)((tag >> 2) & 7) + 4;
                offset = (int)((tag >> 5) << 8) | input[ip++];
                break;
            case 2:
                if (inLength - ip < 2)
                {
                    ThrowRange(what, "copy", op);
                }

                length = (int)(tag >> 2) + 1;
                offset = input[ip] | (input[ip + 1] << 8);
                ip += 2;
                break;
            default:
                if (inLength - ip < 4)
                {
                    ThrowRange(what, "copy", op);
                }

                length = (int)(tag >> 2) + 1;
                var wide = Load32(ref MemoryMarshal.GetReference(input), ip);
                offset = wide > int.MaxValue ? int.MaxValue : (int)wide;
                ip += 4;
                break;
        }

        if (offset == 0 || offset > op || length > outLength - op)
        {
            ThrowRange(what, "copy", op);
        }

        for (var i = 0; i < length; i++)
        {
            output[op + i] = output[op - offset + i];
        }

        return ((ulong)(uint)ip << 32) | (uint)(op + length);
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowLength(string what, long declared, int expected) =>
        throw new ParquetFormatException(declared < 0
            ? $"{what}: snappy block has no valid length header"
            : $"{what}: snappy block decodes to {declared} bytes but the page declares {expected}");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDecoded(string what, int decoded, int expected) =>
        throw new ParquetFormatException($"{what}: snappy block decoded to {decoded} bytes, expected {expected}");

    /// <summary>
    /// An overlapping copy with an offset below 8 (a repeated pattern): widen the pattern until the
    /// distance is at least 8, then copy 8 bytes at a time. Writes up to 8 bytes past the end.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PatternCopy(ref byte dst, int op, int offset, int length)
    {
        var s = op - offset;
        var d = op;
        var left = length;
        while (left > 0 && d - s < 8)
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, d), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref dst, s)));
            left -= d - s;
            d += d - s;
        }

        while (left > 0)
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, d), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref dst, s)));
            s += 8;
            d += 8;
            left -= 8;
        }
    }

    /// <summary>Copies <paramref name="length"/> (at most 64) bytes in 8-byte words, in order; writes up to 7 bytes past the end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyWords(ref byte to, ref byte from, int length)
    {
        Unsafe.WriteUnaligned(ref to, Unsafe.ReadUnaligned<ulong>(ref from));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, 8), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, 8)));
        for (var i = 16; i < length; i += 8)
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, i), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, i)));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy16(ref byte to, ref byte from) =>
        Unsafe.WriteUnaligned(ref to, Unsafe.ReadUnaligned<Vector128<byte>>(ref from));

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowRange(string what, string element, int op) =>
        throw new ParquetFormatException($"{what}: a snappy {element} at output byte {op} runs past the input or the output, or reaches before the start");

    private static int CompressFragment(ReadOnlySpan<byte> input, Span<byte> output, int op, Span<ushort> table, int shift)
    {
        ref var src = ref MemoryMarshal.GetReference(input);
        ref var dst = ref MemoryMarshal.GetReference(output);
        ref var tab = ref MemoryMarshal.GetReference(table);
        var length = input.Length;
        var nextEmit = 0;
        if (length >= InputMarginBytes)
        {
            // Loads of 4 (candidate, ip) or 8 (ip - 1) bytes stay below ipLimit + 8 < length.
            var ipLimit = length - InputMarginBytes;
            var ip = 1;
            var nextHash = Hash(Load32(ref src, ip), shift);
            while (true)
            {
                var skip = 32;
                var nextIp = ip;
                int candidate;
                do
                {
                    ip = nextIp;
                    var hash = nextHash;
                    var step = skip >> 5;
                    skip += step;
                    nextIp = ip + step;
                    if (nextIp > ipLimit)
                    {
                        goto EmitRemainder;
                    }

                    nextHash = Hash(Load32(ref src, nextIp), shift);
                    candidate = Unsafe.Add(ref tab, hash);
                    Unsafe.Add(ref tab, hash) = (ushort)ip;
                }
                while (Load32(ref src, ip) != Load32(ref src, candidate));

                op = EmitLiteral(ref dst, op, output.Length - op, ref Unsafe.Add(ref src, nextEmit), ip - nextEmit, length - nextEmit);

                ulong bytes;
                do
                {
                    var start = ip;
                    var matched = 4 + MatchLength(ref src, candidate + 4, ip + 4, length);
                    ip += matched;
                    op = EmitCopy(ref dst, op, start - candidate, matched);
                    nextEmit = ip;
                    if (ip >= ipLimit)
                    {
                        goto EmitRemainder;
                    }

                    bytes = Load64(ref src, ip - 1);
                    Unsafe.Add(ref tab, Hash((uint)bytes, shift)) = (ushort)(ip - 1);
                    var current = Hash((uint)(bytes >> 8), shift);
                    candidate = Unsafe.Add(ref tab, current);
                    Unsafe.Add(ref tab, current) = (ushort)ip;
                }
                while ((uint)(bytes >> 8) == Load32(ref src, candidate));

                nextHash = Hash((uint)(bytes >> 16), shift);
                ip++;
            }
        }

    EmitRemainder:
        if (nextEmit < length)
        {
            op = EmitLiteral(ref dst, op, output.Length - op, ref Unsafe.Add(ref src, nextEmit), length - nextEmit, length - nextEmit);
        }

        return op;
    }

    /// <summary>Emits a literal; <paramref name="readable"/> bytes can be read at the literal, <paramref name="room"/> written at op.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int EmitLiteral(ref byte dst, int op, int room, ref byte literal, int length, int readable)
    {
        var n = (uint)(length - 1);
        if (n < 16 && readable >= 16 && room >= 17)
        {
            Unsafe.Add(ref dst, op) = (byte)(n << 2);
            Copy16(ref Unsafe.Add(ref dst, op + 1), ref literal);
            return op + 1 + length;
        }

        if (n < 60)
        {
            Unsafe.Add(ref dst, op++) = (byte)(n << 2);
        }
        else
        {
            var count = n < 1 << 8 ? 1 : n < 1 << 16 ? 2 : n < 1 << 24 ? 3 : 4;
            Unsafe.Add(ref dst, op++) = (byte)((59 + count) << 2);
            for (var k = 0; k < count; k++)
            {
                Unsafe.Add(ref dst, op++) = (byte)(n >> (8 * k));
            }
        }

        Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref dst, op), ref literal, (uint)length);
        return op + length;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int EmitCopy(ref byte dst, int op, int offset, int length)
    {
        while (length >= 68)
        {
            op = EmitCopyAtMost64(ref dst, op, offset, 64);
            length -= 64;
        }

        if (length > 64)
        {
            op = EmitCopyAtMost64(ref dst, op, offset, 60);
            length -= 60;
        }

        return EmitCopyAtMost64(ref dst, op, offset, length);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int EmitCopyAtMost64(ref byte dst, int op, int offset, int length)
    {
        if (length < 12 && offset < 2048)
        {
            Unsafe.Add(ref dst, op) = (byte)(1 | ((length - 4) << 2) | ((offset >> 8) << 5));
            Unsafe.Add(ref dst, op + 1) = (byte)offset;
            return op + 2;
        }

        Unsafe.Add(ref dst, op) = (byte)(2 | ((length - 1) << 2));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, op + 1), (ushort)offset);
        return op + 3;
    }

    /// <summary>How many bytes at <paramref name="s2"/> equal those at <paramref name="s1"/> (s1 &lt; s2 &lt;= limit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int MatchLength(ref byte src, int s1, int s2, int limit)
    {
        var matched = 0;
        while (s2 + matched + 8 <= limit)
        {
            var x = Load64(ref src, s2 + matched) ^ Load64(ref src, s1 + matched);
            if (x != 0)
            {
                return matched + (BitOperations.TrailingZeroCount(x) >> 3);
            }

            matched += 8;
        }

        while (s2 + matched < limit && Unsafe.Add(ref src, s1 + matched) == Unsafe.Add(ref src, s2 + matched))
        {
            matched++;
        }

        return matched;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(uint bytes, int shift) => (bytes * 0x1E35A7BDu) >> shift;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Load32(ref byte src, int at) => Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref src, at));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Load64(ref byte src, int at) => Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref src, at));

    private static int WriteVarint(Span<byte> output, uint value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            output[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        output[i++] = (byte)value;
        return i;
    }
}
