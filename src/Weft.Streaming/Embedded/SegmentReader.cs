using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Weft.Streaming.Embedded;

/// <summary>What <see cref="SegmentReader.TryReadNext"/> found at the reader's position.</summary>
internal enum FrameStatus
{
    /// <summary>A whole, checked record; its fields are on the reader until the next call.</summary>
    Record,

    /// <summary>The position is at the limit: nothing more to read.</summary>
    End,

    /// <summary>The buffer holds only part of the next frame; call <see cref="SegmentReader.FillAsync"/>.</summary>
    NeedsData,

    /// <summary>The next frame does not fit before the limit (a frame cut short).</summary>
    Torn,

    /// <summary>The next frame's length or key length is out of range.</summary>
    BadLength,

    /// <summary>The next frame's CRC-32C does not match its bytes.</summary>
    BadCrc,
}

/// <summary>
/// Sequential, buffered reading of the record frames of one segment file, up to a byte limit the
/// caller gives (the durable length of the active segment, or a sealed segment's length). The
/// buffer is rented from <see cref="ArrayPool{T}.Shared"/> and grows only for a record larger than
/// it. This is the one parser of the frame format: recovery and consumers both use it.
/// </summary>
/// <remarks>
/// <see cref="TryReadNext"/> is the synchronous fast path; it returns <see cref="FrameStatus.NeedsData"/>
/// when the caller must <c>await</c> <see cref="FillAsync"/> first. <see cref="Key"/> and
/// <see cref="Payload"/> point into the buffer and are valid only until the next call.
/// </remarks>
internal sealed class SegmentReader : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly bool _ownsHandle;
    private byte[] _buffer;
    private long _bufferFilePosition;
    private int _bufferCount;
    private int _cursor;
    private int _keyStart;
    private int _keyLength;
    private int _payloadLength;

    public SegmentReader(string path, SafeFileHandle handle, bool ownsHandle, long startPosition, int bufferSize)
    {
        Path = path;
        _handle = handle;
        _ownsHandle = ownsHandle;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        _bufferFilePosition = startPosition;
    }

    /// <summary>Opens a segment for reading; it may be deleted by retention while open.</summary>
    public static SegmentReader Open(string path, int bufferSize)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new SegmentReader(path, handle, ownsHandle: true, LogFormat.SegmentHeaderSize, bufferSize);
    }

    public string Path { get; }

    /// <summary>The file position of the next frame (or of the frame a non-record status is about).</summary>
    public long Position => _bufferFilePosition + _cursor;

    public long Offset { get; private set; }

    public long TimestampMicros { get; private set; }

    public ReadOnlySpan<byte> Key => _buffer.AsSpan(_keyStart, _keyLength);

    public ReadOnlySpan<byte> Payload => _buffer.AsSpan(_keyStart + _keyLength, _payloadLength);

    /// <summary>For <see cref="FrameStatus.BadCrc"/> and <see cref="FrameStatus.BadLength"/>: what was wrong.</summary>
    public string Problem { get; private set; } = "";

    /// <summary>Reads the segment header (the first <see cref="LogFormat.SegmentHeaderSize"/> bytes); fewer bytes if the file is shorter.</summary>
    public async ValueTask<byte[]> ReadHeaderAsync(CancellationToken cancellationToken)
    {
        var header = new byte[LogFormat.SegmentHeaderSize];
        var read = 0;
        while (read < header.Length)
        {
            var n = await RandomAccess.ReadAsync(_handle, header.AsMemory(read), read, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return header[..read];
            }

            read += n;
        }

        return header;
    }

    /// <summary>Parses the frame at <see cref="Position"/> if it lies wholly in the buffer and before <paramref name="limit"/>.</summary>
    public FrameStatus TryReadNext(long limit)
    {
        var remainingInLimit = limit - Position;
        if (remainingInLimit <= 0)
        {
            return FrameStatus.End;
        }

        if (remainingInLimit < LogFormat.RecordPrefixSize)
        {
            return FrameStatus.Torn;
        }

        var available = _bufferCount - _cursor;
        if (available < LogFormat.RecordPrefixSize)
        {
            return FrameStatus.NeedsData;
        }

        var frame = _buffer.AsSpan(_cursor, available);
        var bodyLength = BinaryPrimitives.ReadInt32LittleEndian(frame);
        if (bodyLength is < LogFormat.RecordFixedBodySize or > LogFormat.MaxBodyLength)
        {
            Problem = $"the record length field is {bodyLength}, outside {LogFormat.RecordFixedBodySize}..{LogFormat.MaxBodyLength}";
            return FrameStatus.BadLength;
        }

        var frameLength = LogFormat.RecordPrefixSize + bodyLength;
        if (frameLength > remainingInLimit)
        {
            return FrameStatus.Torn;
        }

        if (available < frameLength)
        {
            return FrameStatus.NeedsData;
        }

        frame = frame[..frameLength];
        var stored = BinaryPrimitives.ReadUInt32LittleEndian(frame[4..]);
        var computed = LogFormat.RecordCrc(frame);
        if (stored != computed)
        {
            Problem = $"the record CRC-32C does not match (stored 0x{stored:x8}, computed 0x{computed:x8})";
            return FrameStatus.BadCrc;
        }

        var keyLength = BinaryPrimitives.ReadInt32LittleEndian(frame[24..]);
        if (keyLength < 0 || keyLength > bodyLength - LogFormat.RecordFixedBodySize)
        {
            Problem = $"the key length field is {keyLength}, outside 0..{bodyLength - LogFormat.RecordFixedBodySize}";
            return FrameStatus.BadLength;
        }

        Offset = BinaryPrimitives.ReadInt64LittleEndian(frame[8..]);
        TimestampMicros = BinaryPrimitives.ReadInt64LittleEndian(frame[16..]);
        _keyStart = _cursor + LogFormat.RecordOverhead;
        _keyLength = keyLength;
        _payloadLength = bodyLength - LogFormat.RecordFixedBodySize - keyLength;
        _cursor += frameLength;
        return FrameStatus.Record;
    }

    /// <summary>
    /// Moves the unread bytes to the front of the buffer (growing it when the pending frame is larger)
    /// and reads more of the file, never past <paramref name="limit"/>. Returns false when the file
    /// gave no more bytes (it is shorter than the limit).
    /// </summary>
    public async ValueTask<bool> FillAsync(long limit, CancellationToken cancellationToken)
    {
        var unread = _bufferCount - _cursor;
        var needed = unread >= LogFormat.RecordPrefixSize
            ? LogFormat.RecordPrefixSize + Math.Clamp(BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_cursor)), 0, LogFormat.MaxBodyLength)
            : LogFormat.RecordPrefixSize;
        if (needed > _buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(needed);
            _buffer.AsSpan(_cursor, unread).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
        else if (_cursor > 0)
        {
            _buffer.AsSpan(_cursor, unread).CopyTo(_buffer);
        }

        _bufferFilePosition += _cursor;
        _cursor = 0;
        _bufferCount = unread;

        var readFrom = _bufferFilePosition + _bufferCount;
        var toRead = (int)Math.Min(_buffer.Length - _bufferCount, limit - readFrom);
        if (toRead <= 0)
        {
            return false;
        }

        var n = await RandomAccess.ReadAsync(_handle, _buffer.AsMemory(_bufferCount, toRead), readFrom, cancellationToken).ConfigureAwait(false);
        _bufferCount += n;
        return n > 0;
    }

    public void Dispose()
    {
        if (_ownsHandle)
        {
            _handle.Dispose();
        }

        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
