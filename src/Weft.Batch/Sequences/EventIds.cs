using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Weft.Batch.Sequences;

/// <summary>
/// Event ids as UTF-8 bytes: a 64-bit hash for grouping, and the order of <see cref="string.CompareOrdinal(string, string)"/>
/// (UTF-16 code units), which the sequence order's tie-break uses, computed on the bytes without decoding.
/// </summary>
/// <remarks>
/// UTF-8 byte order is code point order; UTF-16 code unit order differs from it in one place only: a
/// supplementary character (4-byte UTF-8, lead byte F0–F4; surrogates D800–DBFF in UTF-16) sorts below
/// the characters U+E000–U+FFFF (lead byte EE or EF). Bytes before the first difference are equal, so the
/// first differing byte is either a lead byte in both strings or a continuation byte under equal leads;
/// only the first case can need the swap.
/// </remarks>
internal static class EventIds
{
    /// <summary>A 64-bit hash of the bytes (multiply-xorshift over 8-byte words); stable within a process run, not a format.</summary>
    public static ulong Hash(ReadOnlySpan<byte> id)
    {
        ulong h = 0x9E3779B97F4A7C15UL ^ (ulong)id.Length;
        while (id.Length >= 8)
        {
            h = Mix(h ^ BinaryPrimitives.ReadUInt64LittleEndian(id));
            id = id[8..];
        }

        if (id.Length > 0)
        {
            Span<byte> tail = stackalloc byte[8];
            tail.Clear();
            id.CopyTo(tail);
            h = Mix(h ^ BinaryPrimitives.ReadUInt64LittleEndian(tail) ^ 0xFF);
        }

        return Mix(h);
    }

    /// <summary>The first 8 bytes, big-endian, zero-padded: comparing prefixes compares the bytes (see <see cref="ComparePrefixes"/>).</summary>
    public static ulong Prefix(ReadOnlySpan<byte> id)
    {
        if (id.Length >= 8)
        {
            return BinaryPrimitives.ReadUInt64BigEndian(id);
        }

        Span<byte> padded = stackalloc byte[8];
        padded.Clear();
        id.CopyTo(padded);
        return BinaryPrimitives.ReadUInt64BigEndian(padded);
    }

    /// <summary>
    /// Compares two ids by their <see cref="Prefix"/>es in UTF-16 ordinal order; 0 when the prefixes are
    /// equal, which says nothing (compare the full ids with <see cref="Compare"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ComparePrefixes(ulong a, ulong b)
    {
        if (a == b)
        {
            return 0;
        }

        int shift = 56 - (BitOperations.LeadingZeroCount(a ^ b) & ~7);
        return Order((byte)(a >> shift), (byte)(b >> shift));
    }

    /// <summary>The order of the ids as .NET strings under <see cref="string.CompareOrdinal(string, string)"/> (sign only).</summary>
    public static int Compare(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int common = a.CommonPrefixLength(b);
        if (common == a.Length || common == b.Length)
        {
            return a.Length.CompareTo(b.Length);
        }

        return Order(a[common], b[common]);
    }

    /// <summary>Two different bytes at the first difference: byte order, except a 4-byte lead (F0–F4) sorts below EE–EF.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Order(byte x, byte y)
    {
        if (x >= 0xEE && y >= 0xEE && (x >= 0xF0) != (y >= 0xF0))
        {
            return x >= 0xF0 ? -1 : 1;
        }

        return x < y ? -1 : 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
