using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Weft.Parquet.Format;

namespace Weft.Parquet.Encodings;

/// <summary>
/// Unscaled decimals (value = unscaled / 10^scale) to the double nearest the exact value. Doubles hold
/// 15 to 17 significant digits, so a decimal of more digits reads rounded, but never further than half
/// a unit in the last place.
/// </summary>
internal static class DecimalDouble
{
    /// <summary>10^0 .. 10^22: every one is a double exactly.</summary>
    private static readonly double[] ExactPowersOfTen =
    [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    private const long MaxExactInteger = 1L << 53;

    public static double FromUnscaled(long unscaled, int scale)
    {
        // Clinger's fast path: both operands are doubles exactly, so the one IEEE division rounds the
        // exact quotient once, to the nearest double. A long alone converts with one rounding too.
        if (scale == 0)
        {
            return unscaled;
        }

        if (scale < ExactPowersOfTen.Length && unscaled is >= -MaxExactInteger and <= MaxExactInteger)
        {
            return unscaled / ExactPowersOfTen[scale];
        }

        return FromText(unscaled, scale);
    }

    public static double FromUnscaled(Int128 unscaled, int scale) =>
        unscaled >= long.MinValue && unscaled <= long.MaxValue ? FromUnscaled((long)unscaled, scale) : FromText(unscaled, scale);

    /// <summary>
    /// Beyond the fast path (more than 2^53, or a scale over 22), a scaled division would round twice.
    /// .NET parses decimal text correctly rounded (IEEE 754-2008), so "unscaled E-scale" reads as the
    /// nearest double; formatting into the stack keeps it free of allocations.
    /// </summary>
    private static double FromText(Int128 unscaled, int scale)
    {
        Span<char> text = stackalloc char[64];
        unscaled.TryFormat(text, out var length, default, CultureInfo.InvariantCulture);
        text[length++] = 'E';
        text[length++] = '-';
        scale.TryFormat(text[length..], out var digits, default, CultureInfo.InvariantCulture);
        return double.Parse(text[..(length + digits)], NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Reads a big-endian two's complement integer; false when it has no bytes or needs more than 128
    /// bits (leading bytes that only repeat the sign are allowed, as some writers pad to a fixed width).
    /// </summary>
    public static bool TryReadBigEndian(ReadOnlySpan<byte> bytes, out Int128 value)
    {
        if (bytes.IsEmpty)
        {
            value = default;
            return false;
        }

        var sign = (byte)((sbyte)bytes[0] >> 7);
        while (bytes.Length > 16 && bytes[0] == sign && ((bytes[1] ^ sign) & 0x80) == 0)
        {
            bytes = bytes[1..];
        }

        if (bytes.Length > 16)
        {
            value = default;
            return false;
        }

        if (bytes.Length <= 8)
        {
            long small = (sbyte)bytes[0];
            for (var i = 1; i < bytes.Length; i++)
            {
                small = (small << 8) | bytes[i];
            }

            value = small;
            return true;
        }

        Span<byte> padded = stackalloc byte[16];
        padded[..(16 - bytes.Length)].Fill(sign);
        bytes.CopyTo(padded[(16 - bytes.Length)..]);
        value = BinaryPrimitives.ReadInt128BigEndian(padded);
        return true;
    }

    /// <summary>A big-endian unscaled value as its double; throws naming the value when it has no bytes or more than 128 bits.</summary>
    public static double FromBigEndian(ReadOnlySpan<byte> bytes, int scale, string what)
    {
        if (!TryReadBigEndian(bytes, out var unscaled))
        {
            if (bytes.IsEmpty)
            {
                ThrowHelper.Format($"{what}: a DECIMAL value has no bytes");
            }

            ThrowHelper.NotSupported($"{what}: a DECIMAL value of {bytes.Length} bytes needs more than the 128 bits Weft reads.");
        }

        return FromUnscaled(unscaled, scale);
    }

    /// <summary>
    /// INT32 and INT64 decimals are decoded as their unscaled longs' bits in the double slots they end in
    /// (every encoding and the dictionary move them as they are); this turns each slot into its value.
    /// </summary>
    public static void ScaleUnscaledBits(double[] values, int scale)
    {
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = FromUnscaled(BitConverter.DoubleToInt64Bits(values[i]), scale);
        }
    }
}

/// <summary>
/// DECIMAL stored as INT32, decoded into doubles that hold the unscaled value's long bits until
/// <see cref="DecimalDouble.ScaleUnscaledBits"/> scales them. Read only.
/// </summary>
internal readonly struct DecimalInt32Codec : IValueCodec<double>
{
    public static PhysicalType Physical => PhysicalType.Int32;

    public static int FixedPlainSize => 4;

    public static int DictionaryHash(double value) => throw ReadOnly();

    public static bool DictionaryEquals(double a, double b) => throw ReadOnly();

    public static bool Dictionary => false;

    public static void EncodePlain(ReadOnlySpan<double> values, PooledBuffer output) => throw ReadOnly();

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<double> destination, string what)
    {
        var bytes = (long)destination.Length * 4;
        if (input.Length < bytes)
        {
            ThrowHelper.Format($"{what}: {destination.Length} PLAIN values need {bytes} bytes, {input.Length} present");
        }

        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt32LittleEndian(input.Slice(i * 4, 4)));
        }

        return (int)bytes;
    }

    /// <summary>DELTA_BINARY_PACKED values: packed as the INT32s they are stored as.</summary>
    public static void DecodeBinaryPacked(ReadOnlySpan<byte> input, Span<double> destination, string what)
    {
        var stored = ArrayPool<int>.Shared.Rent(destination.Length);
        try
        {
            DeltaEncodings.DecodeBinaryPacked(input, stored.AsSpan(0, destination.Length), what);
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = BitConverter.Int64BitsToDouble(stored[i]);
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(stored);
        }
    }

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<double> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(double value) => 4;

    public static int Compare(double a, double b) => throw ReadOnly();

    public static bool IsNaN(double value) => false;

    public static byte[] MinBytes(double value) => throw ReadOnly();

    public static byte[] MaxBytes(double value) => throw ReadOnly();

    // The reader converts decimal statistics itself: it knows the scale.
    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) => null;

    private static NotSupportedException ReadOnly() => new("Weft writes no DECIMAL columns.");
}

/// <summary>
/// DECIMAL stored as INT64: PLAIN values are the unscaled longs' bytes, so they go to the double slots
/// as they are (and take the reader's raw paths) until <see cref="DecimalDouble.ScaleUnscaledBits"/>
/// scales them. Read only.
/// </summary>
internal readonly struct DecimalInt64Codec : IValueCodec<double>
{
    public static PhysicalType Physical => PhysicalType.Int64;

    public static int FixedPlainSize => 8;

    public static int DictionaryHash(double value) => throw ReadOnly();

    public static bool DictionaryEquals(double a, double b) => throw ReadOnly();

    public static bool Dictionary => false;

    public static void EncodePlain(ReadOnlySpan<double> values, PooledBuffer output) => throw ReadOnly();

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<double> destination, string what) =>
        FixedWidth.Decode(input, destination, what);

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<double> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(double value) => 8;

    public static int Compare(double a, double b) => throw ReadOnly();

    public static bool IsNaN(double value) => false;

    public static byte[] MinBytes(double value) => throw ReadOnly();

    public static byte[] MaxBytes(double value) => throw ReadOnly();

    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) => null;

    private static NotSupportedException ReadOnly() => new("Weft writes no DECIMAL columns.");
}

/// <summary>
/// DECIMAL stored as FIXED_LEN_BYTE_ARRAY or BYTE_ARRAY (big-endian two's complement): up to 128 bits,
/// so no double slot can hold the unscaled value; each is converted as it is decoded, which needs the
/// column's scale and width, so the reader calls <see cref="DecodePlain(ReadOnlySpan{byte}, Span{double}, int, int, string)"/>
/// rather than the interface's. Dictionary pages are converted once, their indices gathered as usual.
/// Read only.
/// </summary>
internal readonly struct WideDecimalCodec : IValueCodec<double>
{
    public static PhysicalType Physical => PhysicalType.FixedLenByteArray;

    public static int FixedPlainSize => 0;

    public static int DictionaryHash(double value) => throw ReadOnly();

    public static bool DictionaryEquals(double a, double b) => throw ReadOnly();

    public static bool Dictionary => false;

    public static void EncodePlain(ReadOnlySpan<double> values, PooledBuffer output) => throw ReadOnly();

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<double> destination, string what) =>
        throw new UnreachableException("Wide decimals decode with their scale and width.");

    /// <summary>
    /// PLAIN values: <paramref name="typeLength"/> bytes each (FIXED_LEN_BYTE_ARRAY), or, when it is 0,
    /// each prefixed by its 4-byte length (BYTE_ARRAY).
    /// </summary>
    public static int DecodePlain(ReadOnlySpan<byte> input, Span<double> destination, int typeLength, int scale, string what)
    {
        if (typeLength > 0)
        {
            var bytes = (long)destination.Length * typeLength;
            if (input.Length < bytes)
            {
                ThrowHelper.Format($"{what}: {destination.Length} PLAIN values of {typeLength} bytes need {bytes} bytes, {input.Length} present");
            }

            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = DecimalDouble.FromBigEndian(input.Slice(i * typeLength, typeLength), scale, what);
            }

            return (int)bytes;
        }

        var position = 0;
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = DecimalDouble.FromBigEndian(PlainByteArray.Next(input, ref position, i, destination.Length, "value", what), scale, what);
        }

        return position;
    }

    /// <summary>BYTE_STREAM_SPLIT FIXED_LEN_BYTE_ARRAY values: unsplit into a pooled buffer, then read as PLAIN.</summary>
    public static void DecodeByteStreamSplit(ReadOnlySpan<byte> input, Span<double> destination, int typeLength, int scale, string what)
    {
        var size = destination.Length * typeLength;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, size));
        try
        {
            DeltaEncodings.DecodeByteStreamSplit(input, buffer.AsSpan(0, size), typeLength, what);
            DecodePlain(buffer.AsSpan(0, size), destination, typeLength, scale, what);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<double> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(double value) => 16;

    public static int Compare(double a, double b) => throw ReadOnly();

    public static bool IsNaN(double value) => false;

    public static byte[] MinBytes(double value) => throw ReadOnly();

    public static byte[] MaxBytes(double value) => throw ReadOnly();

    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) => null;

    private static NotSupportedException ReadOnly() => new("Weft writes no DECIMAL columns.");
}

/// <summary>Byte arrays decoded by DELTA_LENGTH_BYTE_ARRAY or DELTA_BYTE_ARRAY as decimals of one scale.</summary>
internal readonly struct DecimalByteValues(int scale) : IByteArrayValues<double>
{
    public double From(ReadOnlySpan<byte> bytes, string what) => DecimalDouble.FromBigEndian(bytes, scale, what);
}
