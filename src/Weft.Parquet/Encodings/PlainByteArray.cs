using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Weft.Parquet.Encodings;

/// <summary>PLAIN BYTE_ARRAY values: each a 4-byte little-endian length, then that many bytes.</summary>
internal static class PlainByteArray
{
    /// <summary>
    /// The value at <paramref name="position"/>, which moves past it. <paramref name="index"/> of
    /// <paramref name="count"/> and <paramref name="noun"/> ("string", "value") name it when it is cut short.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<byte> Next(ReadOnlySpan<byte> input, ref int position, int index, int count, string noun, string what)
    {
        if (input.Length - position < 4)
        {
            ThrowHelper.Format($"{what}: {noun} {index} of {count} lacks its length prefix");
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(input[position..]);
        position += 4;
        if (length < 0 || length > input.Length - position)
        {
            ThrowHelper.Format($"{what}: {noun} {index} of {length} bytes runs past the page ({input.Length - position} bytes left)");
        }

        var value = input.Slice(position, length);
        position += length;
        return value;
    }
}
