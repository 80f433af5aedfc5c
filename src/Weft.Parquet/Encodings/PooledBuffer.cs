using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;

namespace Weft.Parquet.Encodings;

/// <summary>
/// A growable byte buffer over <see cref="ArrayPool{T}.Shared"/>. The owner disposes it to return
/// the array; <see cref="WrittenSpan"/> is valid until the next write or <see cref="Dispose"/>.
/// </summary>
internal sealed class PooledBuffer : IBufferWriter<byte>, IDisposable
{
    private byte[] _array;
    private int _length;

    public PooledBuffer(int initialCapacity = 4096)
    {
        _array = ArrayPool<byte>.Shared.Rent(Math.Max(initialCapacity, 256));
    }

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _array.AsSpan(0, _length);

    public ReadOnlyMemory<byte> WrittenMemory => _array.AsMemory(0, _length);

    public void Clear() => _length = 0;

    public void Advance(int count)
    {
        Debug.Assert(count >= 0 && _length + count <= _array.Length, "Advance past the buffer.");
        _length += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsMemory(_length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsSpan(_length);
    }

    public void WriteByte(byte value)
    {
        Ensure(1);
        _array[_length++] = value;
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_array.AsSpan(_length));
        _length += bytes.Length;
    }

    public void WriteInt32LittleEndian(int value)
    {
        Ensure(4);
        BinaryPrimitives.WriteInt32LittleEndian(_array.AsSpan(_length), value);
        _length += 4;
    }

    /// <summary>Reserves 4 bytes for a length written later with <see cref="PatchInt32LittleEndian"/>.</summary>
    public int ReserveInt32()
    {
        Ensure(4);
        var at = _length;
        _length += 4;
        return at;
    }

    public void PatchInt32LittleEndian(int position, int value) =>
        BinaryPrimitives.WriteInt32LittleEndian(_array.AsSpan(position, 4), value);

    public void Dispose()
    {
        var array = _array;
        _array = [];
        _length = 0;
        if (array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    private void Ensure(int extra)
    {
        if (extra < 1)
        {
            extra = 1;
        }

        var needed = (long)_length + extra;
        if (needed <= _array.Length)
        {
            return;
        }

        if (needed > Array.MaxLength)
        {
            throw new InvalidOperationException($"A Parquet buffer cannot grow past {Array.MaxLength} bytes.");
        }

        var size = (int)Math.Min(Array.MaxLength, Math.Max(needed, (long)_array.Length * 2));
        var bigger = ArrayPool<byte>.Shared.Rent(size);
        _array.AsSpan(0, _length).CopyTo(bigger);
        if (_array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_array);
        }

        _array = bigger;
    }
}

/// <summary>A write-only stream appending to a <see cref="PooledBuffer"/> (for GZipStream).</summary>
internal sealed class PooledBufferStream(PooledBuffer target) : Stream
{
    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => target.Length;

    public override long Position
    {
        get => target.Length;
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> source) => target.Write(source);

    public override void WriteByte(byte value) => target.WriteByte(value);
}
