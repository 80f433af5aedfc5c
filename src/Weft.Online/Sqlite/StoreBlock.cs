using System.Buffers;
using System.Text;

namespace Weft.Online.Sqlite;

/// <summary>
/// The SQLite store's unit of storage: a few kilobytes of one run's elements, in the run's order
/// (user, event time descending, event id), encoded as one blob. Format 1: a format byte, the element
/// count (varint), then per element the zigzag-varint deltas of user, event time and ingest time from
/// the element before it, and the event id (UTF-8) and payload, each prefixed by its length (varint).
/// </summary>
internal static class StoreBlock
{
    public const byte Format = 1;

    /// <summary>
    /// Bytes after which a block is closed: a read decodes a block or two per run, so they stay small,
    /// and a block with its last element still fits one 4 KiB page (no overflow pages).
    /// </summary>
    public const int TargetBytes = 3_600;

    public static InvalidDataException Corrupt(string why) =>
        new($"An online store block is corrupt ({why}); the file was changed outside Weft or damaged.");
}

/// <summary>Builds blocks from elements given in run order; reused across blocks (its buffer is pooled).</summary>
internal sealed class BlockWriter : IDisposable
{
    // Elements are written after room for the largest header (format byte + 10-byte varint), so the
    // header can be put in front of them without moving them.
    private const int HeaderRoom = 11;

    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(StoreBlock.TargetBytes * 2);
    private int _end = HeaderRoom;
    private long _user;
    private long _time;
    private long _ingest;

    public int Count { get; private set; }

    /// <summary>The user of the last element added (the block's largest).</summary>
    public long LastUser => _user;

    /// <summary>True once the block has reached its target size and should be written.</summary>
    public bool IsFull => _end - HeaderRoom >= StoreBlock.TargetBytes;

    public void Add(long user, long eventTime, long ingestTime, ReadOnlySpan<byte> eventIdUtf8, ReadOnlySpan<byte> payload)
    {
        Ensure((3 * 10) + (2 * 5) + eventIdUtf8.Length + payload.Length);
        var span = _buffer.AsSpan();
        WriteZigZag(span, ref _end, user - _user);
        WriteZigZag(span, ref _end, eventTime - _time);
        WriteZigZag(span, ref _end, ingestTime - _ingest);
        WriteVarint(span, ref _end, (ulong)eventIdUtf8.Length);
        eventIdUtf8.CopyTo(span[_end..]);
        _end += eventIdUtf8.Length;
        WriteVarint(span, ref _end, (ulong)payload.Length);
        payload.CopyTo(span[_end..]);
        _end += payload.Length;
        (_user, _time, _ingest) = (user, eventTime, ingestTime);
        Count++;
    }

    /// <summary>The block's bytes, header included; valid until the next <see cref="Add"/> or <see cref="Clear"/>.</summary>
    public ReadOnlySpan<byte> Encode()
    {
        Span<byte> header = stackalloc byte[HeaderRoom];
        int h = 0;
        header[h++] = StoreBlock.Format;
        WriteVarint(header, ref h, (ulong)Count);
        header[..h].CopyTo(_buffer.AsSpan(HeaderRoom - h));
        return _buffer.AsSpan(HeaderRoom - h, _end - HeaderRoom + h);
    }

    public void Clear()
    {
        _end = HeaderRoom;
        Count = 0;
        (_user, _time, _ingest) = (0, 0, 0);
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    private void Ensure(int more)
    {
        if (_end + more > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _end + more));
            _buffer.AsSpan(0, _end).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
    }

    private static void WriteZigZag(Span<byte> span, ref int at, long value) =>
        WriteVarint(span, ref at, (ulong)((value << 1) ^ (value >> 63)));

    private static void WriteVarint(Span<byte> span, ref int at, ulong value)
    {
        while (value >= 0x80)
        {
            span[at++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[at++] = (byte)value;
    }
}

/// <summary>Reads a block's elements in order without allocating: each field is a value or a span into the block.</summary>
internal ref struct BlockReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _at;
    private int _left;

    public BlockReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        if (data.IsEmpty || data[0] != StoreBlock.Format)
        {
            throw StoreBlock.Corrupt(data.IsEmpty ? "empty" : $"unknown format {data[0]}");
        }

        _at = 1;
        ulong count = ReadVarint();
        Count = count <= int.MaxValue ? (int)count : throw StoreBlock.Corrupt("element count out of range");
        _left = Count;
    }

    public int Count { get; }

    public long User { get; private set; }

    public long EventTime { get; private set; }

    public long IngestTime { get; private set; }

    /// <summary>Where the current element's event id sits in the block.</summary>
    public Range EventIdRange { get; private set; }

    /// <summary>Where the current element's payload sits in the block.</summary>
    public Range PayloadRange { get; private set; }

    public readonly ReadOnlySpan<byte> EventIdUtf8 => _data[EventIdRange];

    public readonly ReadOnlySpan<byte> Payload => _data[PayloadRange];

    public readonly string EventId => Encoding.UTF8.GetString(EventIdUtf8);

    /// <summary>Moves to the next element; false after the last.</summary>
    public bool Next()
    {
        if (_left == 0)
        {
            if (_at != _data.Length)
            {
                throw StoreBlock.Corrupt("bytes after the last element");
            }

            return false;
        }

        _left--;
        User += ReadZigZag();
        EventTime += ReadZigZag();
        IngestTime += ReadZigZag();
        EventIdRange = ReadBytes();
        PayloadRange = ReadBytes();
        return true;
    }

    public readonly OnlineElement ToElement() => new(User, EventTime, EventId, IngestTime, Payload.ToArray());

    private Range ReadBytes()
    {
        ulong length = ReadVarint();
        if (length > (ulong)(_data.Length - _at))
        {
            throw StoreBlock.Corrupt("a length runs past the end");
        }

        var range = new Range(_at, _at + (int)length);
        _at += (int)length;
        return range;
    }

    private long ReadZigZag()
    {
        ulong v = ReadVarint();
        return (long)(v >> 1) ^ -(long)(v & 1);
    }

    private ulong ReadVarint()
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_at >= _data.Length)
            {
                throw StoreBlock.Corrupt("truncated");
            }

            byte b = _data[_at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }

        throw StoreBlock.Corrupt("a varint is too long");
    }
}
