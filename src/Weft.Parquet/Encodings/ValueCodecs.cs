using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;
using Weft.Parquet.Format;

namespace Weft.Parquet.Encodings;

/// <summary>
/// Per-type PLAIN encoding, statistics order and dictionary keys. Implemented by structs with static
/// members so generic column code specialises per type without a call through an interface per value.
/// </summary>
internal interface IValueCodec<T>
{
    static abstract PhysicalType Physical { get; }

    /// <summary>The PLAIN size of every value (0: the size varies, see <see cref="PlainSize"/>).</summary>
    static abstract int FixedPlainSize { get; }

    /// <summary>A well-mixed hash of a dictionary key (floating point: of its bits).</summary>
    static abstract int DictionaryHash(T value);

    /// <summary>Dictionary key equality (floating point: bitwise, so NaNs and -0.0 stay distinct).</summary>
    static abstract bool DictionaryEquals(T a, T b);

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

    public static int FixedPlainSize => 1;

    public static int DictionaryHash(bool value) => value ? 1 : 0;

    public static bool DictionaryEquals(bool a, bool b) => a == b;

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

    public static int FixedPlainSize => 4;

    public static int DictionaryHash(int value) => HashMix.Mix((uint)value);

    public static bool DictionaryEquals(int a, int b) => a == b;

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

    public static int FixedPlainSize => 8;

    public static int DictionaryHash(long value) => HashMix.Mix((ulong)value);

    public static bool DictionaryEquals(long a, long b) => a == b;

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

/// <summary>How an INT32 as stored becomes the long a read-only widened column holds.</summary>
internal interface IInt32Widening
{
    static abstract long Widen(int stored);

    /// <summary>The stored type in the format's terms, for the error a write attempt gets.</summary>
    static abstract string TypeName { get; }
}

/// <summary>UINT_32: values from 2^31 up stay positive.</summary>
internal readonly struct UnsignedWidening : IInt32Widening
{
    public static long Widen(int stored) => (uint)stored;

    public static string TypeName => "UINT_32";
}

/// <summary>DATE (days since the epoch): µs at midnight UTC of that day.</summary>
internal readonly struct DaysWidening : IInt32Widening
{
    public const long MicrosPerDay = 86_400_000_000;

    public static long Widen(int stored) => stored * MicrosPerDay;

    public static string TypeName => "DATE";
}

/// <summary>TIME(MILLIS): µs since midnight.</summary>
internal readonly struct MillisWidening : IInt32Widening
{
    public static long Widen(int stored) => stored * 1000L;

    public static string TypeName => "TIME";
}

/// <summary>
/// A column stored as INT32 and read into longs through <typeparamref name="TWidening"/> (UINT_32,
/// DATE, TIME(MILLIS)), PLAIN or delta-packed, statistics widened the same way. Read only: Weft writes neither.
/// </summary>
internal readonly struct WidenedInt32Codec<TWidening> : IValueCodec<long>
    where TWidening : struct, IInt32Widening
{
    public static PhysicalType Physical => PhysicalType.Int32;

    public static int FixedPlainSize => 4;

    public static int DictionaryHash(long value) => HashMix.Mix((ulong)value);

    public static bool DictionaryEquals(long a, long b) => a == b;

    public static bool Dictionary => false;

    public static void EncodePlain(ReadOnlySpan<long> values, PooledBuffer output) => throw ReadOnly();

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<long> destination, string what)
    {
        var bytes = (long)destination.Length * 4;
        if (input.Length < bytes)
        {
            ThrowHelper.Format($"{what}: {destination.Length} PLAIN values need {bytes} bytes, {input.Length} present");
        }

        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = TWidening.Widen(BinaryPrimitives.ReadInt32LittleEndian(input.Slice(i * 4, 4)));
        }

        return (int)bytes;
    }

    /// <summary>DELTA_BINARY_PACKED values: packed as the INT32s they are stored as, then widened.</summary>
    public static void DecodeBinaryPacked(ReadOnlySpan<byte> input, Span<long> destination, string what)
    {
        var stored = ArrayPool<int>.Shared.Rent(destination.Length);
        try
        {
            DeltaEncodings.DecodeBinaryPacked(input, stored.AsSpan(0, destination.Length), what);
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = TWidening.Widen(stored[i]);
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(stored);
        }
    }

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<long> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(long value) => 4;

    public static int Compare(long a, long b) => a.CompareTo(b);

    public static bool IsNaN(long value) => false;

    public static byte[] MinBytes(long value) => throw ReadOnly();

    public static byte[] MaxBytes(long value) => throw ReadOnly();

    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) =>
        bytes.Length == 4 ? TWidening.Widen(BinaryPrimitives.ReadInt32LittleEndian(bytes)) : null;

    private static NotSupportedException ReadOnly() => new($"Weft writes no {TWidening.TypeName} columns.");
}

/// <summary>
/// INT96 timestamps (Spark's and Impala's legacy layout: nanoseconds of the day, then the Julian day,
/// little-endian) read as µs since the Unix epoch, the nanoseconds rounded down. Read only.
/// </summary>
internal readonly struct Int96TimestampCodec : IValueCodec<long>
{
    private const long JulianDayOfUnixEpoch = 2_440_588;
    private const long MicrosPerDay = DaysWidening.MicrosPerDay;
    private const long NanosPerDay = MicrosPerDay * 1000;
    private const long MaxDays = (long.MaxValue / MicrosPerDay) - 1;
    private const long MinDays = -MaxDays;

    public static PhysicalType Physical => PhysicalType.Int96;

    public static int FixedPlainSize => 12;

    public static int DictionaryHash(long value) => HashMix.Mix((ulong)value);

    public static bool DictionaryEquals(long a, long b) => a == b;

    public static bool Dictionary => false;

    public static void EncodePlain(ReadOnlySpan<long> values, PooledBuffer output) => throw ReadOnly();

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<long> destination, string what)
    {
        var bytes = (long)destination.Length * 12;
        if (input.Length < bytes)
        {
            ThrowHelper.Format($"{what}: {destination.Length} INT96 values need {bytes} bytes, {input.Length} present");
        }

        for (var i = 0; i < destination.Length; i++)
        {
            var value = input.Slice(i * 12, 12);
            long nanos = BinaryPrimitives.ReadInt64LittleEndian(value);
            long day = BinaryPrimitives.ReadInt32LittleEndian(value[8..]);
            if (nanos < 0 || nanos >= NanosPerDay)
            {
                ThrowHelper.Format($"{what}: INT96 timestamp {i} has {nanos} nanoseconds of the day");
            }

            long days = day - JulianDayOfUnixEpoch;
            if (days < MinDays || days > MaxDays)
            {
                ThrowHelper.Format($"{what}: INT96 timestamp {i} is on Julian day {day}, beyond the range of µs since the epoch");
            }

            destination[i] = (days * MicrosPerDay) + (nanos / 1000);
        }

        return (int)bytes;
    }

    public static int DecodeRle(ReadOnlySpan<byte> input, Span<long> destination, string what) => FixedWidth.NoRle(what);

    public static int PlainSize(long value) => 12;

    public static int Compare(long a, long b) => a.CompareTo(b);

    public static bool IsNaN(long value) => false;

    public static byte[] MinBytes(long value) => throw ReadOnly();

    public static byte[] MaxBytes(long value) => throw ReadOnly();

    // The format leaves INT96's sort order undefined, so its statistics prune nothing.
    public static object? ReadStatistic(ReadOnlySpan<byte> bytes) => null;

    private static NotSupportedException ReadOnly() => new("Weft writes no INT96 columns.");
}

internal readonly struct FloatCodec : IValueCodec<float>
{
    public static PhysicalType Physical => PhysicalType.Float;

    public static int FixedPlainSize => 4;

    public static int DictionaryHash(float value) => HashMix.Mix((uint)BitConverter.SingleToInt32Bits(value));

    public static bool DictionaryEquals(float a, float b) => BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b);

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

}

internal readonly struct DoubleCodec : IValueCodec<double>
{
    public static PhysicalType Physical => PhysicalType.Double;

    public static int FixedPlainSize => 8;

    public static int DictionaryHash(double value) => HashMix.Mix((ulong)BitConverter.DoubleToInt64Bits(value));

    public static bool DictionaryEquals(double a, double b) => BitConverter.DoubleToInt64Bits(a) == BitConverter.DoubleToInt64Bits(b);

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

}

internal readonly struct StringCodec : IValueCodec<string>
{
    private static readonly UTF8Encoding Utf8Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static PhysicalType Physical => PhysicalType.ByteArray;

    public static int FixedPlainSize => 0;

    public static int DictionaryHash(string value) => value.GetHashCode();

    public static bool DictionaryEquals(string a, string b) => string.Equals(a, b);

    public static bool Dictionary => true;

    public static void EncodePlain(ReadOnlySpan<string> values, PooledBuffer output)
    {
        foreach (var s in values)
        {
            // One transcoding pass into room for the worst case (3 UTF-8 bytes per UTF-16 char).
            var span = output.GetSpan((s.Length * 3) + 4);
            if (Utf8.FromUtf16(s, span[4..], out _, out var count, replaceInvalidSequences: false) != OperationStatus.Done)
            {
                ThrowInvalidUtf16();
            }

            BinaryPrimitives.WriteInt32LittleEndian(span, count);
            output.Advance(count + 4);
        }
    }

    public static int DecodePlain(ReadOnlySpan<byte> input, Span<string> destination, string what)
    {
        // When every byte of the input is ASCII, every value is (and every length prefix is below 128):
        // widen each value without UTF-8 validation.
        var ascii = Ascii.IsValid(input);
        var position = 0;
        for (var i = 0; i < destination.Length; i++)
        {
            var bytes = PlainByteArray.Next(input, ref position, i, destination.Length, "string", what);
            destination[i] = ascii ? Encoding.Latin1.GetString(bytes) : Decode(bytes, what);
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

    [DoesNotReturn]
    private static void ThrowInvalidUtf16() =>
        throw new EncoderFallbackException("A string holds an unpaired surrogate and cannot be written as UTF-8.");

    internal static string Decode(ReadOnlySpan<byte> bytes, string what)
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

/// <summary>Multiplicative (Fibonacci) hashing: the high half of the product mixes every input bit.</summary>
internal static class HashMix
{
    public static int Mix(uint value) => (int)((value * 0x9E3779B97F4A7C15UL) >> 32);

    public static int Mix(ulong value) => (int)((value * 0x9E3779B97F4A7C15UL) >> 32);
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

/// <summary>
/// Compares UTF-16 strings in Unicode code point order, which is UTF-8 byte order: the order of
/// Parquet's string statistics (and of Delta's). Public so that other statistics of the same files
/// order strings the same way.
/// </summary>
public static class Utf8Order
{
    public static int Compare(string a, string b)
    {
        var i = a.AsSpan().CommonPrefixLength(b);
        return i == a.Length || i == b.Length ? a.Length - b.Length : Fix(a[i]) - Fix(b[i]);
    }

    // Surrogates (U+D800..U+DFFF) encode code points above U+FFFF, so they sort after U+E000..U+FFFF.
    private static int Fix(char c) => c >= 0xE000 ? c - 0x800 : c >= 0xD800 ? c + 0x2000 : c;
}
