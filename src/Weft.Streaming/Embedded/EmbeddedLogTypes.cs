namespace Weft.Streaming.Embedded;

/// <summary>The offsets one <see cref="EmbeddedLog.AppendAsync"/> call was given: dense, in the order of its records.</summary>
/// <param name="FirstOffset">The offset of the call's first record (for an empty call, the log's end offset).</param>
/// <param name="Count">How many records the call appended.</param>
public readonly record struct OffsetRange(long FirstOffset, int Count)
{
    /// <summary>The offset of the last record; <c>FirstOffset - 1</c> for an empty range.</summary>
    public long LastOffset => FirstOffset + Count - 1;

    /// <summary>The offset of the <paramref name="index"/>-th record of the call.</summary>
    public long this[int index] => (uint)index < (uint)Count ? FirstOffset + index : throw new ArgumentOutOfRangeException(nameof(index));
}

/// <summary>What recovery repaired when the log was opened: a torn tail cut off the last segment.</summary>
/// <param name="SegmentPath">The segment file that was truncated.</param>
/// <param name="TruncatedAtByte">The byte position the file was cut back to (the end of its last whole record).</param>
/// <param name="BytesRemoved">How many bytes were removed.</param>
/// <param name="Reason">What was found at <paramref name="TruncatedAtByte"/>.</param>
public sealed record EmbeddedLogRecovery(string SegmentPath, long TruncatedAtByte, long BytesRemoved, string Reason)
{
    /// <summary>The file the cut bytes were copied to before the cut (null when nothing past a header was cut).</summary>
    public string? KeptIn { get; init; }
}

/// <summary>
/// The embedded log found data it cannot trust where it must be whole: a bad record in a sealed
/// segment, a segment with a bad header, or offsets that do not follow. Permanent: retrying does
/// not help; an operator must look at <see cref="FilePath"/> at <see cref="ByteOffset"/>.
/// </summary>
public sealed class EmbeddedLogCorruptionException : IOException
{
    public EmbeddedLogCorruptionException()
    {
        FilePath = "";
    }

    public EmbeddedLogCorruptionException(string message)
        : base(message)
    {
        FilePath = "";
    }

    public EmbeddedLogCorruptionException(string message, Exception innerException)
        : base(message, innerException)
    {
        FilePath = "";
    }

    public EmbeddedLogCorruptionException(string filePath, long byteOffset, string problem)
        : base($"Embedded log file '{filePath}' is corrupt at byte {byteOffset}: {problem}.")
    {
        FilePath = filePath;
        ByteOffset = byteOffset;
    }

    /// <summary>A file that should not be where it is (its name, not its bytes, is the problem).</summary>
    internal EmbeddedLogCorruptionException(string filePath, string problem)
        : base($"Embedded log file '{filePath}': {problem}.")
    {
        FilePath = filePath;
    }

    /// <summary>The file holding the bad data.</summary>
    public string FilePath { get; }

    /// <summary>The byte position in <see cref="FilePath"/> where the bad data starts.</summary>
    public long ByteOffset { get; }
}
