using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Weft.Parquet.Format;

namespace Weft.Parquet.Encodings;

/// <summary>
/// Per-type PLAIN encoding, statistics order and dictionary keys. Implemented by structs with static
/// members so generic column code specialises per type without a call through an interface per value.
/// </summary>
internal interface IValueCodec<T>
{
    static abstract PhysicalType Physical { get; }

    /// <summary>Comparer for dictionary keys (null: the default comparer).</summary>
    static abstract IEqualityComparer<T>? DictionaryComparer { get; }

    /// <summary>Whether the type can be dictionary-encoded by the writer.</summary>
    static abstract bool Dictionary { get; }

    static abstract void EncodePlain(ReadOnlySpan<T> values, PooledBuffer output);

    /// <summary>Decodes <c>destination.Length</c> PLAIN values; returns the bytes consumed.</summary>
    static abstract int DecodePlain(ReadOnlySpan<byte> input, Span<T> destination, string what);

    /// <summary>Decodes RLE-encoded values (booleans only); returns the bytes consumed.</summary>
    static abstract int DecodeRle(ReadOnlySpan<byte> input, Span<T> destination, string what);

    /// <summary>The PLAIN size of one value (strings: estimated from UTF-16 length).</summary>
    static abstract int PlainSize(T value);

    /// <summary>Statistics order (strings: UTF-8 byte order). Never sees NaN.</summary>
    static abstract int Compare(T a, T b);

    static abstract bool IsNaN(T value);

    /// <summary>Min statistic as stored (floating point zero becomes -0.0).</summary>
    static abstract byte[] MinBytes(T value);

    /// <summary>Max statistic as stored (floating point zero becomes +0.0).</summary>
    static abstract byte[] MaxBytes(T value);

    /// <summary>Decodes a statistic; null when it is malformed or NaN.</summary>
    static abstract object? ReadStatistic(ReadOnlySpan<byte> bytes);
}

internal readonly struct BooleanCodec : IValueCodec<bool>
{
    public static PhysicalType Physical => PhysicalType.Boolean;

    public static IEqualityComparer<bool>? DictionaryComparer => null;

    public static bool Dictionary => false;

    public static void EncodePlain(ReadOnlySpan<bool> values, PooledBuffer output)
    {
        var count = (values.Length + 7) / 8;
        var span = output.GetSpan(count)[..count];
        span.Clear();
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i])
            {
                span[i >> 3] |= (byte)(1 << (i & 7));
            }
        }

        output.Advance(count);
    }

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<bool> destination, string what)
    {
        var count = (destination.Length + 7) / 8;
        if (input.Length < count)
        {
            ThrowHelper.Format($"{what}: {destination.Length} PLAIN booleans need {count} bytes, {input.Length} present");
        }

        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = (input[i >> 3] & (1 << (i & 7))) != 0;
        }

        return count;
    }

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<bool> destination, string what)
    {
        if (input.Length < 4)
        {
            ThrowHelper.Format($"{what}: RLE booleans lack their 4-byte length");
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(input);
        if (length < 0 || length > input.Length - 4)
        {
            ThrowHelper.Format($"{what}: RLE boolean length {length} runs past the page ({input.Length - 4} bytes left)");
        }

        // bool and byte share a layout; values are checked to be 0 or 1.
        RleBitPackedHybrid.Decode(input.Slice(4, length), 1, MemoryMarshal.AsBytes(destination), 1, what);
        return 4 + length;
    }

    public static int PlainSize(bool value) => 1;

    public static int Compare(bool a, bool b) => a.CompareTo(b);

    public static bool IsNaN(bool value) => false;

    public static byte[] MinBytes(bool value) => [value ? (byte)1 : (byte)0];

    public static byte[] MaxBytes(bool value) => [value ? (byte)1 : (byte)0];

    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) => bytes.Length == 1 && bytes[0] <= 1 ? bytes[0] == 1 : null;
}

internal readonly struct Int32Codec : IValueCodec<int>
{
    public static PhysicalType Physical => PhysicalType.Int32;

    public static IEqualityComparer<int>? DictionaryComparer => null;

    public static bool Dictionary => true;

    public static void EncodePlain(ReadOnlySpan<int> values, PooledBuffer output) =>
        FixedWidth.Encode(values, output);

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<int> destination, string what) =>
        FixedWidth.Decode(input, destination, what);

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<int> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(int value) => 4;

    public static int Compare(int a, int b) => a.CompareTo(b);

    public static bool IsNaN(int value) => false;

    public static byte[] MinBytes(int value) => BitConverter.GetBytes(value);

    public static byte[] MaxBytes(int value) => BitConverter.GetBytes(value);

    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) =>
        bytes.Length == 4 ? BinaryPrimitives.ReadInt32LittleEndian(bytes) : null;
}

internal readonly struct Int64Codec : IValueCodec<long>
{
    public static PhysicalType Physical => PhysicalType.Int64;

    public static IEqualityComparer<long>? DictionaryComparer => null;

    public static bool Dictionary => true;

    public static void EncodePlain(ReadOnlySpan<long> values, PooledBuffer output) =>
        FixedWidth.Encode(values, output);

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<long> destination, string what) =>
        FixedWidth.Decode(input, destination, what);

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<long> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(long value) => 8;

    public static int Compare(long a, long b) => a.CompareTo(b);

    public static bool IsNaN(long value) => false;

    public static byte[] MinBytes(long value) => BitConverter.GetBytes(value);

    public static byte[] MaxBytes(long value) => BitConverter.GetBytes(value);

    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) =>
        bytes.Length == 8 ? BinaryPrimitives.ReadInt64LittleEndian(bytes) : null;
}

internal readonly struct FloatCodec : IValueCodec<float>
{
    public static PhysicalType Physical => PhysicalType.Float;

    public static IEqualityComparer<float>? DictionaryComparer => BitwiseComparer.Instance;

    public static bool Dictionary => true;

    public static void EncodePlain(ReadOnlySpan<float> values, PooledBuffer output) =>
        FixedWidth.Encode(values, output);

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<float> destination, string what) =>
        FixedWidth.Decode(input, destination, what);

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<float> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(float value) => 4;

    public static int Compare(float a, float b) => a.CompareTo(b);

    public static bool IsNaN(float value) => float.IsNaN(value);

    public static byte[] MinBytes(float value) => BitConverter.GetBytes(value == 0 ? -0.0f : value);

    public static byte[] MaxBytes(float value) => BitConverter.GetBytes(value == 0 ? 0.0f : value);

    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) =>
        bytes.Length == 4 && BinaryPrimitives.ReadSingleLittleEndian(bytes) is var v && !float.IsNaN(v) ? v : null;

    private sealed class BitwiseComparer : IEqualityComparer<float>
    {
        public static readonly BitwiseComparer Instance = new();

        public bool Equals(float x, float y) => BitConverter.SingleToInt32Bits(x) == BitConverter.SingleToInt32Bits(y);

        public int GetHashCode(float obj) => BitConverter.SingleToInt32Bits(obj);
    }
}

internal readonly struct DoubleCodec : IValueCodec<double>
{
    public static PhysicalType Physical => PhysicalType.Double;

    public static IEqualityComparer<double>? DictionaryComparer => BitwiseComparer.Instance;

    public static bool Dictionary => true;

    public static void EncodePlain(ReadOnlySpan<double> values, PooledBuffer output) =>
        FixedWidth.Encode(values, output);

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<double> destination, string what) =>
        FixedWidth.Decode(input, destination, what);

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<double> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(double value) => 8;

    public static int Compare(double a, double b) => a.CompareTo(b);

    public static bool IsNaN(double value) => double.IsNaN(value);

    public static byte[] MinBytes(double value) => BitConverter.GetBytes(value == 0 ? -0.0 : value);

    public static byte[] MaxBytes(double value) => BitConverter.GetBytes(value == 0 ? 0.0 : value);

    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) =>
        bytes.Length == 8 && BinaryPrimitives.ReadDoubleLittleEndian(bytes) is var v && !double.IsNaN(v) ? v : null;

    private sealed class BitwiseComparer : IEqualityComparer<double>
    {
        public static readonly BitwiseComparer Instance = new();

        public bool Equals(double x, double y) => BitConverter.DoubleToInt64Bits(x) == BitConverter.DoubleToInt64Bits(y);

        public int GetHashCode(double obj) => BitConverter.DoubleToInt64Bits(obj).GetHashCode();
    }
}

internal readonly struct StringCodec : IValueCodec<string>
{
    private static readonly UTF8Encoding Utf8Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static PhysicalType Physical => PhysicalType.ByteArray;

    public static IEqualityComparer<string>? DictionaryComparer => StringComparer.Ordinal;

    public static bool Dictionary => true;

    public static void EncodePlain(ReadOnlySpan<string> values, PooledBuffer output)
    {
        foreach (var s in values)
        {
            var count = Utf8Strict.GetByteCount(s);
            var span = output.GetSpan(count + 4);
            BinaryPrimitives.WriteInt32LittleEndian(span, count);
            Utf8Strict.GetBytes(s, span[4..]);
            output.Advance(count + 4);
        }
    }

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<string> destination, string what)
    {
        var position = 0;
        for (var i = 0; i < destination.Length; i++)
        {
            if (input.Length - position < 4)
            {
                ThrowHelper.Format($"{what}: string {i} of {destination.Length} lacks its length prefix");
            }

            var length = BinaryPrimitives.ReadInt32LittleEndian(input[position..]);
            position += 4;
            if (length < 0 || length > input.Length - position)
            {
                ThrowHelper.Format($"{what}: string {i} of {length} bytes runs past the page ({input.Length - position} bytes left)");
            }

            destination[i] = Decode(input.Slice(position, length), what);
            position += length;
        }

        return position;
    }

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<string> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(string value) => value.Length + 4;

    public static int Compare(string a, string b) => Utf8Order.Compare(a, b);

    public static bool IsNaN(string value) => false;

    public static byte[] MinBytes(string value) => Utf8Strict.GetBytes(value);

    public static byte[] MaxBytes(string value) => Utf8Strict.GetBytes(value);

    public static object? ReadStatistic(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return Utf8Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    private static string Decode(ReadOnlySpan<byte> bytes, string what)
    {
        try
        {
            return Utf8Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return ThrowHelper.Format<string>($"{what}: a string value is not valid UTF-8");
        }
    }
}

/// <summary>Little-endian fixed-width PLAIN values.</summary>
internal static class FixedWidth
{
    public static void Encode<T>(ReadOnlySpan<T> values, PooledBuffer output)
        where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values);
        output.Write(bytes);
    }

    public static int Decode<T>(ReadOnlySpan<byte> input, Span<T> destination, string what)
        where T : unmanaged
    {
        var target = MemoryMarshal.AsBytes(destination);
        if (input.Length < target.Length)
        {
            ThrowHelper.Format($"{what}: {destination.Length} PLAIN values need {target.Length} bytes, {input.Length} present");
        }

        input[..target.Length].CopyTo(target);
        return target.Length;
    }

    public static int NoRle(string what) => throw new NotSupportedException($"{what}: RLE value encoding is only defined for booleans.");

    static FixedWidth()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Weft.Parquet needs a little-endian platform.");
        }
    }
}

/// <summary>Compares UTF-16 strings in Unicode code point order, which is UTF-8 byte order.</summary>
internal static class Utf8Order
{
    public static int Compare(string a, string b)
    {
        var length = Math.Min(a.Length, b.Length);
        for (var i = 0; i < length; i++)
        {
            var x = a[i];
            var y = b[i];
            if (x != y)
            {
                return Fix(x) - Fix(y);
            }
        }

        return a.Length - b.Length;
    }

    // Surrogates (U+D800..U+DFFF) encode code points above U+FFFF, so they sort after U+E000..U+FFFF.
    private static int Fix(char c) => c >= 0xE000 ? c - 0x800 : c >= 0xD800 ? c + 0x2000 : c;
}
