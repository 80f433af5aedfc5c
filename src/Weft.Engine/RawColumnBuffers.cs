using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>
/// One raw-schema column being filled by <see cref="RawEventParser.Parse"/>: a typed, growable value
/// array written straight from a <see cref="Utf8JsonReader"/> (no boxing), plus a null mask allocated
/// at the first null. A row is written into slot <c>row</c> and only becomes part of the column when
/// the parser commits it; an abandoned slot is simply overwritten by the next event.
/// </summary>
internal abstract class RawColumnBuffer
{
    /// <param name="dated">Timestamps must be instants of years 1-9999 (see <see cref="RawEventParser.TryRead"/>): an attribute's.</param>
    public static RawColumnBuffer Create(WeftType type, int capacity, bool dated = false)
    {
        if (type.IsList)
        {
            return type.Kind switch
            {
                ScalarKind.Timestamp when dated => new ListBuffer<long, DatedTimestampReader>(type, capacity),
                ScalarKind.Bool => new ListBuffer<bool, BoolReader>(type, capacity),
                ScalarKind.Int32 => new ListBuffer<int, Int32Reader>(type, capacity),
                ScalarKind.Int64 => new ListBuffer<long, Int64Reader>(type, capacity),
                ScalarKind.Timestamp => new ListBuffer<long, TimestampReader>(type, capacity),
                ScalarKind.Float32 => new ListBuffer<float, Float32Reader>(type, capacity),
                ScalarKind.Float64 => new ListBuffer<double, Float64Reader>(type, capacity),
                _ => new ListBuffer<string, StringReader>(type, capacity),
            };
        }

        return type.Kind switch
        {
            ScalarKind.Timestamp when dated => new PrimitiveBuffer<long, DatedTimestampReader>(type, capacity),
            ScalarKind.Bool => new PrimitiveBuffer<bool, BoolReader>(type, capacity),
            ScalarKind.Int32 => new PrimitiveBuffer<int, Int32Reader>(type, capacity),
            ScalarKind.Int64 => new PrimitiveBuffer<long, Int64Reader>(type, capacity),
            ScalarKind.Timestamp => new PrimitiveBuffer<long, TimestampReader>(type, capacity),
            ScalarKind.Float32 => new PrimitiveBuffer<float, Float32Reader>(type, capacity),
            ScalarKind.Float64 => new PrimitiveBuffer<double, Float64Reader>(type, capacity),
            _ => new StringBuffer(capacity),
        };
    }

    /// <summary>
    /// Reads the (non-null) value at the reader into slot <paramref name="row"/>. Leaves the reader on the
    /// value's last token when it succeeds; on false the value is not of the column's type and the reader
    /// is on the value's first token or, for a list, on its closing bracket.
    /// </summary>
    public abstract bool TryRead(ref Utf8JsonReader reader, int row);

    /// <summary>
    /// <see cref="TryRead"/> of a scalar the parser's fast path scanned: <paramref name="token"/> is its
    /// JSON text (a string with its quotes, ASCII without escapes). This reads it through a reader of
    /// its own; buffers override it for the kinds they can take straight from the bytes.
    /// </summary>
    public virtual bool TryReadToken(JsonTokenType kind, ReadOnlySpan<byte> token, int row)
    {
        var reader = new Utf8JsonReader(token);
        reader.Read();
        return TryRead(ref reader, row);
    }

    /// <summary>Commits slot <paramref name="row"/> as null.</summary>
    public abstract void SetNull(int row);

    public abstract void Grow(int capacity);

    /// <summary>The column of the first <paramref name="count"/> committed rows; the buffer is not used afterwards.</summary>
    public abstract Column Build(int count);

    protected static T[] Trim<T>(T[] values, int count) => values.Length == count ? values : values.AsSpan(0, count).ToArray();
}

/// <summary>bool, int32, int64, float32, float64 and timestamp columns.</summary>
internal abstract class PrimitiveBuffer<T>(WeftType type, int capacity) : RawColumnBuffer
    where T : unmanaged
{
    private bool[]? _nulls;

    public T[] Values { get; private set; } = new T[capacity];

    public void Set(int row, T value) => Values[row] = value;

    public override void SetNull(int row)
    {
        _nulls ??= new bool[Values.Length];
        _nulls[row] = true;
        Values[row] = default;
    }

    public override void Grow(int capacity)
    {
        var values = Values;
        Array.Resize(ref values, capacity);
        Values = values;
        if (_nulls is not null)
        {
            Array.Resize(ref _nulls, capacity);
        }
    }

    public override Column Build(int count)
    {
        bool[]? nulls = null;
        if (_nulls is not null && _nulls.AsSpan(0, count).Contains(true))
        {
            nulls = Trim(_nulls, count);
        }

        return new PrimitiveColumn<T>(type, Trim(Values, count), nulls);
    }
}

internal sealed class PrimitiveBuffer<T, TReader>(WeftType type, int capacity) : PrimitiveBuffer<T>(type, capacity)
    where T : unmanaged
    where TReader : struct, IJsonValueReader<T>
{
    public override bool TryRead(ref Utf8JsonReader reader, int row)
    {
        if (!TReader.TryRead(ref reader, out var value))
        {
            return false;
        }

        Values[row] = value;
        return true;
    }

    public override bool TryReadToken(JsonTokenType kind, ReadOnlySpan<byte> token, int row)
    {
        if (TReader.TryReadToken(kind, token, out var value, out bool handled))
        {
            Values[row] = value;
            return true;
        }

        return !handled && base.TryReadToken(kind, token, row);
    }
}

/// <summary>String columns: a null reference is a null value.</summary>
internal sealed class StringBuffer(int capacity) : RawColumnBuffer
{
    private readonly RecentStrings _recent = new();

    public string?[] Values { get; private set; } = new string?[capacity];

    public void Set(int row, string value) => Values[row] = value;

    public override bool TryRead(ref Utf8JsonReader reader, int row)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            return false;
        }

        Values[row] = _recent.GetString(ref reader);
        return true;
    }

    public override bool TryReadToken(JsonTokenType kind, ReadOnlySpan<byte> token, int row)
    {
        if (kind != JsonTokenType.String)
        {
            return false;
        }

        Values[row] = _recent.GetAsciiString(token[1..^1]);
        return true;
    }

    public override void SetNull(int row) => Values[row] = null;

    public override void Grow(int capacity)
    {
        var values = Values;
        Array.Resize(ref values, capacity);
        Values = values;
    }

    public override Column Build(int count) => new StringColumn(Trim(Values, count));
}

/// <summary>
/// Hands out the string of a recently seen value with the same UTF-8 bytes, so a categorical column
/// (surface, country, …) allocates about once per distinct value per batch instead of once per event.
/// A small direct-mapped cache; it switches itself off when the column proves unique (ids), after
/// which it costs one branch per value.
/// </summary>
internal sealed class RecentStrings
{
    private const int Slots = 16;
    private const int MaxBytes = 48;
    private const int Probation = 256;

    private readonly byte[]?[] _bytes = new byte[]?[Slots];
    private readonly int[] _lengths = new int[Slots];
    private readonly string?[] _strings = new string?[Slots];
    private int _misses;
    private int _hits;
    private bool _off;

    public string GetString(ref Utf8JsonReader reader)
    {
        var value = reader.ValueSpan;
        if (_off || reader.ValueIsEscaped || value.Length > MaxBytes)
        {
            return reader.GetString()!;
        }

        int slot = Slot(value);
        return Cached(value, slot) ?? Remember(value, slot, reader.GetString()!);
    }

    /// <summary><see cref="GetString(ref Utf8JsonReader)"/> of a string's content that is ASCII without escapes.</summary>
    public string GetAsciiString(ReadOnlySpan<byte> ascii)
    {
        if (_off || ascii.Length > MaxBytes)
        {
            return Encoding.ASCII.GetString(ascii);
        }

        int slot = Slot(ascii);
        return Cached(ascii, slot) ?? Remember(ascii, slot, Encoding.ASCII.GetString(ascii));
    }

    private static int Slot(ReadOnlySpan<byte> value) =>
        value.IsEmpty ? 0 : ((value.Length * 7) + value[0] + (value[^1] * 31) + (value[value.Length / 2] * 17)) & (Slots - 1);

    private string? Cached(ReadOnlySpan<byte> value, int slot)
    {
        if (_strings[slot] is { } cached && value.SequenceEqual(_bytes[slot].AsSpan(0, _lengths[slot])))
        {
            _hits++;
            return cached;
        }

        return null;
    }

    private string Remember(ReadOnlySpan<byte> value, int slot, string text)
    {
        value.CopyTo(_bytes[slot] ??= new byte[MaxBytes]);
        _lengths[slot] = value.Length;
        _strings[slot] = text;
        if (++_misses == Probation && _hits < Probation / 4)
        {
            _off = true; // mostly distinct values: stop comparing
        }

        return text;
    }
}

/// <summary>List columns: each row's elements are gathered in a reused scratch array, then copied to an exact-size array.</summary>
internal sealed class ListBuffer<T, TReader>(WeftType type, int capacity) : RawColumnBuffer
    where TReader : struct, IJsonValueReader<T>
{
    private T[]?[] _values = new T[]?[capacity];
    private T[] _items = new T[16];

    public override bool TryRead(ref Utf8JsonReader reader, int row)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return false;
        }

        int n = 0;
        bool ok = true;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (ok && TReader.TryRead(ref reader, out var item))
            {
                if (n == _items.Length)
                {
                    Array.Resize(ref _items, n * 2);
                }

                _items[n++] = item;
            }
            else
            {
                // A bad element fails the whole list; read on to the closing bracket (the parser reports the whole value).
                ok = false;
                reader.Skip();
            }
        }

        if (!ok)
        {
            return false;
        }

        _values[row] = n == 0 ? [] : _items.AsSpan(0, n).ToArray();
        return true;
    }

    public override void SetNull(int row) => _values[row] = null;

    public override void Grow(int capacity) => Array.Resize(ref _values, capacity);

    public override Column Build(int count) => new ListColumn<T>(type, Trim(_values, count));
}

/// <summary>Reads one JSON value as <typeparamref name="T"/>, with the rules of <see cref="RawEventParser.TryRead"/>; null and wrong kinds are false.</summary>
internal interface IJsonValueReader<T>
{
    static abstract bool TryRead(ref Utf8JsonReader reader, out T value);

    /// <summary>
    /// <see cref="TryRead"/> of a scalar token's text (see <see cref="RawColumnBuffer.TryReadToken"/>),
    /// when this reader can decide it from the bytes (<paramref name="handled"/>); otherwise the buffer
    /// reads the token through a reader.
    /// </summary>
    static virtual bool TryReadToken(JsonTokenType kind, ReadOnlySpan<byte> token, out T value, out bool handled)
    {
        value = default!;
        handled = false;
        return false;
    }
}

internal readonly struct BoolReader : IJsonValueReader<bool>
{
    public static bool TryRead(ref Utf8JsonReader reader, out bool value)
    {
        value = reader.TokenType == JsonTokenType.True;
        return reader.TokenType is JsonTokenType.True or JsonTokenType.False;
    }

    public static bool TryReadToken(JsonTokenType kind, ReadOnlySpan<byte> token, out bool value, out bool handled)
    {
        handled = true;
        value = kind == JsonTokenType.True;
        return kind is JsonTokenType.True or JsonTokenType.False;
    }
}

internal readonly struct Int32Reader : IJsonValueReader<int>
{
    public static bool TryRead(ref Utf8JsonReader reader, out int value)
    {
        value = 0;
        return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out value);
    }

    /// <summary>As <see cref="Utf8JsonReader.TryGetInt32"/> reads a number: the whole token as an integer.</summary>
    public static bool TryReadToken(JsonTokenType kind, ReadOnlySpan<byte> token, out int value, out bool handled)
    {
        handled = true;
        value = 0;
        return kind == JsonTokenType.Number && Utf8Parser.TryParse(token, out value, out int used) && used == token.Length;
    }
}

/// <summary>A JSON integer, or a string holding one (ids often arrive quoted).</summary>
internal readonly struct Int64Reader : IJsonValueReader<long>
{
    public static bool TryRead(ref Utf8JsonReader reader, out long value)
    {
        value = 0;
        return reader.TokenType switch
        {
            JsonTokenType.Number => reader.TryGetInt64(out value),
            JsonTokenType.String => JsonText.TryParseInt64(ref reader, out value),
            _ => false,
        };
    }

    public static bool TryReadToken(JsonTokenType kind, ReadOnlySpan<byte> token, out long value, out bool handled)
    {
        handled = kind != JsonTokenType.String; // a quoted integer: through the reader, as it is rare
        value = 0;
        return kind == JsonTokenType.Number && JsonText.TryParseInt64Token(token, out value);
    }
}

/// <summary>Microseconds since the epoch as a JSON integer, or an ISO-8601 string.</summary>
internal readonly struct TimestampReader : IJsonValueReader<long>
{
    public static bool TryRead(ref Utf8JsonReader reader, out long value)
    {
        value = 0;
        return reader.TokenType switch
        {
            JsonTokenType.Number => reader.TryGetInt64(out value),
            JsonTokenType.String => JsonText.TryParseTimestamp(ref reader, out value),
            _ => false,
        };
    }

    public static bool TryReadToken(JsonTokenType kind, ReadOnlySpan<byte> token, out long value, out bool handled)
    {
        value = 0;
        switch (kind)
        {
            case JsonTokenType.Number:
                handled = true;
                return JsonText.TryParseInt64Token(token, out value);
            case JsonTokenType.String when IsoTimestamp.TryParse(token[1..^1], out value):
                handled = true;
                return true;
            default:
                handled = kind != JsonTokenType.String; // other forms of time: through the reader
                return false;
        }
    }
}

/// <summary>As <see cref="TimestampReader"/>, but an instant outside years 1-9999 is not a timestamp (an attribute's).</summary>
internal readonly struct DatedTimestampReader : IJsonValueReader<long>
{
    public static bool TryRead(ref Utf8JsonReader reader, out long value) =>
        TimestampReader.TryRead(ref reader, out value) && RawEventParser.IsDated(value);

    public static bool TryReadToken(JsonTokenType kind, ReadOnlySpan<byte> token, out long value, out bool handled) =>
        TimestampReader.TryReadToken(kind, token, out value, out handled) ? RawEventParser.IsDated(value) : false;
}

internal readonly struct Float64Reader : IJsonValueReader<double>
{
    public static bool TryRead(ref Utf8JsonReader reader, out double value)
    {
        value = 0;
        if (reader.TokenType != JsonTokenType.Number)
        {
            return false;
        }

        value = reader.GetDouble();
        return true;
    }
}

/// <summary>Read as a double and narrowed, exactly as the boxed path did (not <see cref="Utf8JsonReader.GetSingle"/>).</summary>
internal readonly struct Float32Reader : IJsonValueReader<float>
{
    public static bool TryRead(ref Utf8JsonReader reader, out float value)
    {
        value = 0;
        if (reader.TokenType != JsonTokenType.Number)
        {
            return false;
        }

        value = (float)reader.GetDouble();
        return !float.IsInfinity(value); // a JSON number is finite: beyond float32 (1e300) it is no float32
    }
}

internal readonly struct StringReader : IJsonValueReader<string>
{
    public static bool TryRead(ref Utf8JsonReader reader, out string value)
    {
        value = null!;
        if (reader.TokenType != JsonTokenType.String)
        {
            return false;
        }

        value = reader.GetString()!;
        return true;
    }
}

/// <summary>Number and time parsing of JSON string values without allocating the string when it is short.</summary>
internal static class JsonText
{
    private const int StackChars = 128;

    /// <summary>As <see cref="Utf8JsonReader.TryGetInt64"/> reads a number token: the whole token as an integer.</summary>
    public static bool TryParseInt64Token(ReadOnlySpan<byte> token, out long value) =>
        Utf8Parser.TryParse(token, out value, out int used) && used == token.Length;

    public static bool TryParseInt64(ref Utf8JsonReader reader, out long value)
    {
        if (reader.ValueSpan.Length > StackChars)
        {
            return long.TryParse(reader.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out value);
        }

        Span<char> chars = stackalloc char[StackChars];
        int n = reader.CopyString(chars);
        return long.TryParse(chars[..n], NumberStyles.Integer, CultureInfo.InvariantCulture, out value);
    }

    public static bool TryParseTimestamp(ref Utf8JsonReader reader, out long micros)
    {
        if (!reader.ValueIsEscaped && IsoTimestamp.TryParse(reader.ValueSpan, out micros))
        {
            return true;
        }

        if (reader.ValueSpan.Length > StackChars)
        {
            return IsoTimestamp.TryParseGeneral(reader.GetString(), out micros);
        }

        Span<char> chars = stackalloc char[StackChars];
        int n = reader.CopyString(chars);
        return IsoTimestamp.TryParseGeneral(chars[..n], out micros);
    }

    /// <summary>The unescaped UTF-8 of the current string or property name: the input itself unless it has escapes.</summary>
    public static ReadOnlySpan<byte> Unescaped(ref Utf8JsonReader reader, ref byte[]? scratch)
    {
        if (!reader.ValueIsEscaped)
        {
            return reader.ValueSpan;
        }

        int needed = reader.ValueSpan.Length; // unescaping never lengthens
        if (scratch is null || scratch.Length < needed)
        {
            if (scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }

            scratch = ArrayPool<byte>.Shared.Rent(Math.Max(needed, 256));
        }

        int n = reader.CopyString(scratch);
        return scratch.AsSpan(0, n);
    }
}
