namespace Weft.Streaming;

/// <summary>
/// Copies records' keys and payloads out of a source's own buffers (librdkafka's, the embedded log's
/// read buffer) into shared slabs, so a backlog (a Kafka source buffers up to 200,000 records by
/// default) is a few hundred arrays rather than two per record. Each array is an object the garbage collector marks and moves while it
/// lives, and a backlog lives through many collections: with an array per key and per value the
/// collector's pauses took 5–6 % of a stream's time, about what they take with no backlog at all
/// once the bytes share slabs. One thread copies; slices are never written after.
/// </summary>
internal sealed class MessageBytes
{
    /// <summary>Under the large-object threshold (85,000 bytes), so slabs are collected young like the arrays they replace.</summary>
    internal const int SlabBytes = 64 * 1024;

    private byte[] _slab = [];
    private int _used;

    /// <summary>The bytes, in a slab (a value over an eighth of a slab gets an array of its own).</summary>
    public ReadOnlyMemory<byte> Copy(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        if (bytes.Length > SlabBytes / 8)
        {
            return bytes.ToArray();
        }

        if (_slab.Length - _used < bytes.Length)
        {
            // Uninitialized: every byte handed out is copied in first.
            _slab = GC.AllocateUninitializedArray<byte>(SlabBytes);
            _used = 0;
        }

        bytes.CopyTo(_slab.AsSpan(_used));
        var copy = new ReadOnlyMemory<byte>(_slab, _used, bytes.Length);
        _used += bytes.Length;
        return copy;
    }
}
