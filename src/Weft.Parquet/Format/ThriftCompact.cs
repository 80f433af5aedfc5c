using System.Diagnostics.CodeAnalysis;
using System.Text;
using Weft.Parquet.Encodings;

namespace Weft.Parquet.Format;

/// <summary>Type ids of the Thrift compact protocol.</summary>
internal enum CompactType : byte
{
    Stop = 0,
    BooleanTrue = 1,
    BooleanFalse = 2,
    Byte = 3,
    I16 = 4,
    I32 = 5,
    I64 = 6,
    Double = 7,
    Binary = 8,
    List = 9,
    Set = 10,
    Map = 11,
    Struct = 12,
}

/// <summary>
/// Writes Thrift compact protocol into a <see cref="PooledBuffer"/>. Field ids are delta-encoded
/// against the previous field of the same struct, so callers open and close every struct
/// (<see cref="BeginStruct"/> returns the outer struct's last id, <see cref="EndStruct"/> restores it).
/// </summary>
internal sealed class ThriftCompactWriter(PooledBuffer output)
{
    private short _lastFieldId;

    public short BeginStruct()
    {
        var outer = _lastFieldId;
        _lastFieldId = 0;
        return outer;
    }

    public void EndStruct(short outer)
    {
        output.WriteByte((byte)CompactType.Stop);
        _lastFieldId = outer;
    }

    public void FieldBegin(short id, CompactType type)
    {
        var delta = id - _lastFieldId;
        if (delta is > 0 and <= 15)
        {
            output.WriteByte((byte)((delta << 4) | (int)type));
        }
        else
        {
            output.WriteByte((byte)type);
            WriteVarint(ZigZag(id));
        }

        _lastFieldId = id;
    }

    public void BoolField(short id, bool value) => FieldBegin(id, value ? CompactType.BooleanTrue : CompactType.BooleanFalse);

    public void I32Field(short id, int value)
    {
        FieldBegin(id, CompactType.I32);
        WriteVarint(ZigZag(value));
    }

    public void I64Field(short id, long value)
    {
        FieldBegin(id, CompactType.I64);
        WriteVarint(ZigZag(value));
    }

    public void ByteField(short id, sbyte value)
    {
        FieldBegin(id, CompactType.Byte);
        output.WriteByte((byte)value);
    }

    public void BinaryField(short id, ReadOnlySpan<byte> value)
    {
        FieldBegin(id, CompactType.Binary);
        Binary(value);
    }

    public void StringField(short id, string value)
    {
        FieldBegin(id, CompactType.Binary);
        String(value);
    }

    /// <summary>Begins a struct-valued field; close it with <see cref="EndStruct"/>.</summary>
    public short StructField(short id)
    {
        FieldBegin(id, CompactType.Struct);
        return BeginStruct();
    }

    public void ListField(short id, CompactType elementType, int count)
    {
        FieldBegin(id, CompactType.List);
        ListHeader(elementType, count);
    }

    public void ListHeader(CompactType elementType, int count)
    {
        if (count < 15)
        {
            output.WriteByte((byte)((count << 4) | (int)elementType));
        }
        else
        {
            output.WriteByte((byte)(0xF0 | (int)elementType));
            WriteVarint((uint)count);
        }
    }

    public void I32(int value) => WriteVarint(ZigZag(value));

    public void Binary(ReadOnlySpan<byte> value)
    {
        WriteVarint((uint)value.Length);
        output.Write(value);
    }

    public void String(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        WriteVarint((uint)count);
        var span = output.GetSpan(count);
        Encoding.UTF8.GetBytes(value, span);
        output.Advance(count);
    }

    private static uint ZigZag(int value) => (uint)((value << 1) ^ (value >> 31));

    private static ulong ZigZag(long value) => (ulong)((value << 1) ^ (value >> 63));

    private void WriteVarint(ulong value)
    {
        while (value >= 0x80)
        {
            output.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        output.WriteByte((byte)value);
    }
}

/// <summary>
/// Reads Thrift compact protocol from a span. Every read is bounds-checked; malformed input throws
/// <see cref="ParquetFormatException"/>. Struct readers keep their own last field id and pass it by
/// reference to <see cref="ReadFieldHeader"/>.
/// </summary>
internal ref struct ThriftCompactReader
{
    private const int MaxSkipDepth = 64;
    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    public ThriftCompactReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    public readonly int Position => _position;

    public readonly int Remaining => _data.Length - _position;

    /// <summary>Reads the next field header; false at the struct's stop byte.</summary>
    public bool ReadFieldHeader(ref short lastFieldId, out short id, out CompactType type)
    {
        var header = ReadByte();
        if (header == 0)
        {
            id = 0;
            type = CompactType.Stop;
            return false;
        }

        type = (CompactType)(header & 0x0F);
        if (type > CompactType.Struct)
        {
            Throw($"unknown Thrift compact type {(int)type}");
        }

        var delta = header >> 4;
        if (delta != 0)
        {
            id = (short)(lastFieldId + delta);
        }
        else
        {
            var raw = ReadI32Raw();
            if (raw is < short.MinValue or > short.MaxValue)
            {
                Throw($"Thrift field id {raw} out of range");
            }

            id = (short)raw;
        }

        lastFieldId = id;
        return true;
    }

    public int ReadI32(CompactType type)
    {
        if (type is CompactType.I32 or CompactType.I16)
        {
            return ReadI32Raw();
        }

        if (type == CompactType.Byte)
        {
            return (sbyte)ReadByte();
        }

        return ThrowType<int>(type, "i32");
    }

    public long ReadI64(CompactType type) => type switch
    {
        CompactType.I64 => ReadI64Raw(),
        CompactType.I32 or CompactType.I16 => ReadI32Raw(),
        CompactType.Byte => (sbyte)ReadByte(),
        _ => ThrowType<long>(type, "i64"),
    };

    public readonly bool ReadBoolField(CompactType type) => type switch
    {
        CompactType.BooleanTrue => true,
        CompactType.BooleanFalse => false,
        _ => ThrowType<bool>(type, "bool"),
    };

    /// <summary>A bool element of a list or set: one byte (1 = true; 0 or 2 = false).</summary>
    public bool ReadBoolElement() => ReadByte() == 1;

    public ReadOnlySpan<byte> ReadBinary(CompactType type)
    {
        if (type != CompactType.Binary)
        {
            ThrowType<int>(type, "binary");
        }

        return ReadBinaryRaw();
    }

    public ReadOnlySpan<byte> ReadBinaryRaw()
    {
        var length = ReadVarint();
        if (length > (ulong)Remaining)
        {
            Throw($"Thrift binary of {length} bytes runs past the end ({Remaining} bytes left)");
        }

        var span = _data.Slice(_position, (int)length);
        _position += (int)length;
        return span;
    }

    public string ReadString(CompactType type)
    {
        var bytes = ReadBinary(type);
        try
        {
            return Utf8Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return Throw<string>("a Thrift string is not valid UTF-8");
        }
    }

    public string ReadStringElement()
    {
        var bytes = ReadBinaryRaw();
        try
        {
            return Utf8Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return Throw<string>("a Thrift string is not valid UTF-8");
        }
    }

    public int ReadI32Element() => ReadI32Raw();

    /// <summary>Reads a list header; the count is checked against the bytes left (every element takes at least one byte).</summary>
    public int ReadListHeader(CompactType fieldType, out CompactType elementType)
    {
        if (fieldType is not (CompactType.List or CompactType.Set))
        {
            ThrowType<int>(fieldType, "list");
        }

        return ReadListHeaderRaw(out elementType);
    }

    public void ExpectStruct(CompactType type)
    {
        if (type != CompactType.Struct)
        {
            ThrowType<int>(type, "struct");
        }
    }

    public void Skip(CompactType type) => Skip(type, 0);

    [DoesNotReturn]
    public readonly void Throw(string problem) =>
        throw new ParquetFormatException($"Thrift decode failure: {problem} (at byte {_position} of {_data.Length})");

    [DoesNotReturn]
    public readonly T Throw<T>(string problem) =>
        throw new ParquetFormatException($"Thrift decode failure: {problem} (at byte {_position} of {_data.Length})");

    private static readonly UTF8Encoding Utf8Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private int ReadListHeaderRaw(out CompactType elementType)
    {
        var header = ReadByte();
        elementType = (CompactType)(header & 0x0F);
        if (elementType > CompactType.Struct || elementType == CompactType.Stop)
        {
            Throw($"unknown Thrift list element type {(int)elementType}");
        }

        ulong count = (uint)(header >> 4);
        if (count == 15)
        {
            count = ReadVarint();
        }

        if (count > (ulong)Remaining)
        {
            Throw($"Thrift list of {count} elements cannot fit in the {Remaining} bytes left");
        }

        return (int)count;
    }

    private void Skip(CompactType type, int depth)
    {
        if (depth > MaxSkipDepth)
        {
            Throw("Thrift structures nested too deeply");
        }

        switch (type)
        {
            case CompactType.BooleanTrue:
            case CompactType.BooleanFalse:
                break;
            case CompactType.Byte:
                ReadByte();
                break;
            case CompactType.I16:
            case CompactType.I32:
            case CompactType.I64:
                ReadVarint();
                break;
            case CompactType.Double:
                if (Remaining < 8)
                {
                    Throw("Thrift double runs past the end");
                }

                _position += 8;
                break;
            case CompactType.Binary:
                ReadBinaryRaw();
                break;
            case CompactType.List:
            case CompactType.Set:
            {
                var count = ReadListHeaderRaw(out var elementType);
                for (var i = 0; i < count; i++)
                {
                    if (elementType is CompactType.BooleanTrue or CompactType.BooleanFalse)
                    {
                        ReadByte();
                    }
                    else
                    {
                        Skip(elementType, depth + 1);
                    }
                }

                break;
            }

            case CompactType.Map:
            {
                var count = ReadVarint();
                if (count == 0)
                {
                    break;
                }

                if (count > (ulong)Remaining)
                {
                    Throw($"Thrift map of {count} entries cannot fit in the {Remaining} bytes left");
                }

                var kinds = ReadByte();
                var keyType = (CompactType)(kinds >> 4);
                var valueType = (CompactType)(kinds & 0x0F);
                if (keyType is CompactType.Stop or > CompactType.Struct || valueType is CompactType.Stop or > CompactType.Struct)
                {
                    Throw("unknown Thrift map element type");
                }

                for (var i = 0UL; i < count; i++)
                {
                    SkipElement(keyType, depth + 1);
                    SkipElement(valueType, depth + 1);
                }

                break;
            }

            case CompactType.Struct:
            {
                short last = 0;
                while (ReadFieldHeader(ref last, out _, out var fieldType))
                {
                    Skip(fieldType, depth + 1);
                }

                break;
            }

            default:
                Throw($"cannot skip Thrift type {(int)type}");
                break;
        }
    }

    private void SkipElement(CompactType type, int depth)
    {
        if (type is CompactType.BooleanTrue or CompactType.BooleanFalse)
        {
            ReadByte();
        }
        else
        {
            Skip(type, depth);
        }
    }

    private byte ReadByte()
    {
        if (_position >= _data.Length)
        {
            Throw("unexpected end of Thrift data");
        }

        return _data[_position++];
    }

    private ulong ReadVarint()
    {
        ulong result = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = ReadByte();
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        return Throw<ulong>("Thrift varint longer than 10 bytes");
    }

    private int ReadI32Raw()
    {
        var raw = ReadVarint();
        if (raw > uint.MaxValue)
        {
            Throw("Thrift i32 varint out of range");
        }

        var u = (uint)raw;
        return (int)(u >> 1) ^ -(int)(u & 1);
    }

    private long ReadI64Raw()
    {
        var u = ReadVarint();
        return (long)(u >> 1) ^ -(long)(u & 1);
    }

    [DoesNotReturn]
    private readonly T ThrowType<T>(CompactType actual, string expected) =>
        Throw<T>($"expected a Thrift {expected}, found type {actual}");
}
