using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;
using Weft.Definitions;

namespace Weft.Engine.Sequences;

/// <summary>
/// The online store's payload for one element: the element's columns (event_type and the signal's
/// element columns; event_id, user_id and the times are the store's own key columns) in a compact
/// binary form, prefixed by the first 4 bytes of the signal's fingerprint so a payload written under
/// another definition is recognised instead of misread.
/// </summary>
/// <remarks>
/// Layout: fingerprint prefix (4 bytes), then per column a presence byte (0 = null) and the value:
/// bool 1 byte; int32/float32 4 bytes; int64/float64/timestamp 8 bytes, little-endian; string a
/// varint byte length and UTF-8; list a varint count and its elements as above.
/// </remarks>
public sealed class ElementCodec
{
    private readonly uint _prefix;

    public ElementCodec(SignalDefinition signal, string fingerprint)
    {
        Columns = [StandardColumns.All[2], .. signal.Element];
        _prefix = Convert.ToUInt32(fingerprint[..8], 16);
    }

    /// <summary>The encoded columns, in order: event_type, then the element columns.</summary>
    public ImmutableArray<FieldDefinition> Columns { get; }

    /// <summary>Encodes row <paramref name="row"/> of <paramref name="batch"/> (which holds every encoded column).</summary>
    public byte[] Encode(EventBatch batch, int row, ArrayBufferWriter<byte> scratch) => EncodeRow(Resolve(batch), row, scratch);

    /// <summary>Encodes every row of <paramref name="batch"/>, in order: <see cref="Encode"/> of each, with the columns looked up once.</summary>
    public byte[][] EncodeAll(EventBatch batch, ArrayBufferWriter<byte> scratch)
    {
        var columns = Resolve(batch);
        var payloads = new byte[batch.RowCount][];
        for (int row = 0; row < payloads.Length; row++)
        {
            payloads[row] = EncodeRow(columns, row, scratch);
        }

        return payloads;
    }

    private Column[] Resolve(EventBatch batch)
    {
        var columns = new Column[Columns.Length];
        for (int c = 0; c < columns.Length; c++)
        {
            columns[c] = batch[Columns[c].Name];
        }

        return columns;
    }

    private byte[] EncodeRow(Column[] columns, int row, ArrayBufferWriter<byte> scratch)
    {
        scratch.ResetWrittenCount();
        BinaryPrimitives.WriteUInt32LittleEndian(scratch.GetSpan(4), _prefix);
        scratch.Advance(4);
        for (int f = 0; f < columns.Length; f++)
        {
            var column = columns[f];
            if (column.IsNull(row))
            {
                Byte(scratch, 0);
                continue;
            }

            Byte(scratch, 1);
            switch (column)
            {
                case PrimitiveColumn<bool> c: Byte(scratch, c.Values[row] ? (byte)1 : (byte)0); break;
                case PrimitiveColumn<int> c: BinaryPrimitives.WriteInt32LittleEndian(Take(scratch, 4), c.Values[row]); break;
                case PrimitiveColumn<long> c: BinaryPrimitives.WriteInt64LittleEndian(Take(scratch, 8), c.Values[row]); break;
                case PrimitiveColumn<float> c: BinaryPrimitives.WriteSingleLittleEndian(Take(scratch, 4), c.Values[row]); break;
                case PrimitiveColumn<double> c: BinaryPrimitives.WriteDoubleLittleEndian(Take(scratch, 8), c.Values[row]); break;
                case StringColumn c: String(scratch, c.Values[row]!); break;
                case ListColumn<float> c: List(scratch, c.Values[row]!, static (w, v) => BinaryPrimitives.WriteSingleLittleEndian(Take(w, 4), v)); break;
                case ListColumn<double> c: List(scratch, c.Values[row]!, static (w, v) => BinaryPrimitives.WriteDoubleLittleEndian(Take(w, 8), v)); break;
                case ListColumn<long> c: List(scratch, c.Values[row]!, static (w, v) => BinaryPrimitives.WriteInt64LittleEndian(Take(w, 8), v)); break;
                case ListColumn<int> c: List(scratch, c.Values[row]!, static (w, v) => BinaryPrimitives.WriteInt32LittleEndian(Take(w, 4), v)); break;
                case ListColumn<bool> c: List(scratch, c.Values[row]!, static (w, v) => Byte(w, v ? (byte)1 : (byte)0)); break;
                case ListColumn<string> c: List(scratch, c.Values[row]!, static (w, v) => String(w, v)); break;
                default: throw new NotSupportedException($"column '{Columns[f].Name}' of type {Columns[f].Type}");
            }
        }

        return scratch.WrittenSpan.ToArray();
    }

    /// <summary>True when <paramref name="payload"/> was written under this signal definition.</summary>
    public bool Recognises(ReadOnlySpan<byte> payload) => payload.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(payload) == _prefix;

    /// <summary>Decodes payloads into columns (one row per payload), in <see cref="Columns"/> order.</summary>
    public Column[] Decode(IReadOnlyList<byte[]> payloads)
    {
        var values = new List<object?>[Columns.Length];
        for (int c = 0; c < values.Length; c++)
        {
            values[c] = new List<object?>(payloads.Count);
        }

        foreach (var payload in payloads)
        {
            if (!Recognises(payload))
            {
                throw new FormatException("an online element was written under another definition of this signal (fingerprint prefix differs)");
            }

            int at = 4;
            for (int c = 0; c < Columns.Length; c++)
            {
                if (payload[at++] == 0)
                {
                    values[c].Add(null);
                    continue;
                }

                var type = Columns[c].Type;
                values[c].Add(type.IsList ? ReadList(payload, ref at, type.Kind) : ReadScalar(payload, ref at, type.Kind));
            }
        }

        var columns = new Column[Columns.Length];
        for (int c = 0; c < columns.Length; c++)
        {
            columns[c] = ColumnBuilder.Build(Columns[c].Type, values[c]);
        }

        return columns;
    }

    private static object ReadScalar(byte[] p, ref int at, ScalarKind kind)
    {
        object value;
        switch (kind)
        {
            case ScalarKind.Bool: value = p[at] != 0; at += 1; break;
            case ScalarKind.Int32: value = BinaryPrimitives.ReadInt32LittleEndian(p.AsSpan(at)); at += 4; break;
            case ScalarKind.Float32: value = BinaryPrimitives.ReadSingleLittleEndian(p.AsSpan(at)); at += 4; break;
            case ScalarKind.Int64 or ScalarKind.Timestamp: value = BinaryPrimitives.ReadInt64LittleEndian(p.AsSpan(at)); at += 8; break;
            case ScalarKind.Float64: value = BinaryPrimitives.ReadDoubleLittleEndian(p.AsSpan(at)); at += 8; break;
            default:
                int length = (int)ReadVarint(p, ref at);
                value = Encoding.UTF8.GetString(p, at, length);
                at += length;
                break;
        }

        return value;
    }

    private static object ReadList(byte[] p, ref int at, ScalarKind kind)
    {
        int count = (int)ReadVarint(p, ref at);
        switch (kind)
        {
            case ScalarKind.Float32:
            {
                var a = new float[count];
                for (int i = 0; i < count; i++, at += 4)
                {
                    a[i] = BinaryPrimitives.ReadSingleLittleEndian(p.AsSpan(at));
                }

                return a;
            }

            case ScalarKind.Float64:
            {
                var a = new double[count];
                for (int i = 0; i < count; i++, at += 8)
                {
                    a[i] = BinaryPrimitives.ReadDoubleLittleEndian(p.AsSpan(at));
                }

                return a;
            }

            case ScalarKind.Int64 or ScalarKind.Timestamp:
            {
                var a = new long[count];
                for (int i = 0; i < count; i++, at += 8)
                {
                    a[i] = BinaryPrimitives.ReadInt64LittleEndian(p.AsSpan(at));
                }

                return a;
            }

            case ScalarKind.Int32:
            {
                var a = new int[count];
                for (int i = 0; i < count; i++, at += 4)
                {
                    a[i] = BinaryPrimitives.ReadInt32LittleEndian(p.AsSpan(at));
                }

                return a;
            }

            case ScalarKind.Bool:
            {
                var a = new bool[count];
                for (int i = 0; i < count; i++)
                {
                    a[i] = p[at++] != 0;
                }

                return a;
            }

            default:
            {
                var a = new string[count];
                for (int i = 0; i < count; i++)
                {
                    a[i] = (string)ReadScalar(p, ref at, ScalarKind.String);
                }

                return a;
            }
        }
    }

    private static Span<byte> Take(ArrayBufferWriter<byte> w, int n)
    {
        var span = w.GetSpan(n)[..n];
        w.Advance(n);
        return span;
    }

    private static void Byte(ArrayBufferWriter<byte> w, byte b) => Take(w, 1)[0] = b;

    private static void String(ArrayBufferWriter<byte> w, string s)
    {
        int length = Encoding.UTF8.GetByteCount(s);
        Varint(w, (uint)length);
        Encoding.UTF8.GetBytes(s, Take(w, length));
    }

    private static void List<T>(ArrayBufferWriter<byte> w, T[] values, Action<ArrayBufferWriter<byte>, T> write)
    {
        Varint(w, (uint)values.Length);
        foreach (var v in values)
        {
            write(w, v);
        }
    }

    private static void Varint(ArrayBufferWriter<byte> w, uint value)
    {
        while (value >= 0x80)
        {
            Byte(w, (byte)(value | 0x80));
            value >>= 7;
        }

        Byte(w, (byte)value);
    }

    private static uint ReadVarint(byte[] p, ref int at)
    {
        uint result = 0;
        int shift = 0;
        byte b;
        do
        {
            b = p[at++];
            result |= (uint)(b & 0x7F) << shift;
            shift += 7;
        }
        while ((b & 0x80) != 0);
        return result;
    }
}
