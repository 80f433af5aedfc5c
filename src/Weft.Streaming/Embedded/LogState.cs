using System.Diagnostics;

namespace Weft.Streaming.Embedded;

/// <summary>One segment file. Sealed segments never change; only the writer seals the active one.</summary>
internal sealed class SegmentInfo(long baseOffset, string path)
{
    public long BaseOffset { get; } = baseOffset;

    public string Path { get; } = path;

    /// <summary>The final length of a sealed segment; -1 while it is the active one. Set before the state that seals it is published.</summary>
    public long SealedLength { get; set; } = -1;

    /// <summary>The header's roll timestamp once known (no record of an earlier segment is later than it).</summary>
    public long? RollTimestampMicros { get; set; }
}

/// <summary>
/// What readers may see, swapped as a whole: the segments (oldest first, the last one active), the
/// end offset and how many bytes of the active segment are durable. Readers never read past it.
/// </summary>
internal sealed class LogState
{
    public LogState(SegmentInfo[] segments, long endOffset, long activeDurableBytes)
    {
        Debug.Assert(segments.Length > 0);
        Segments = segments;
        EndOffset = endOffset;
        ActiveDurableBytes = activeDurableBytes;
    }

    public SegmentInfo[] Segments { get; }

    /// <summary>The offset the next appended record gets; every offset below it is durable.</summary>
    public long EndOffset { get; }

    public long ActiveDurableBytes { get; }

    public SegmentInfo Active => Segments[^1];

    public long StartOffset => Segments[0].BaseOffset;

    /// <summary>How far a reader may read in <paramref name="segment"/>.</summary>
    public long LimitOf(SegmentInfo segment) => ReferenceEquals(segment, Active) ? ActiveDurableBytes : segment.SealedLength;

    /// <summary>The segment holding <paramref name="offset"/> (the last one whose base offset is not above it), or null below the start.</summary>
    public SegmentInfo? Find(long offset)
    {
        int lo = 0, hi = Segments.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (Segments[mid].BaseOffset <= offset)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found < 0 ? null : Segments[found];
    }

    /// <summary>The segment that starts exactly at <paramref name="baseOffset"/>, or null.</summary>
    public SegmentInfo? StartingAt(long baseOffset)
    {
        var segment = Find(baseOffset);
        return segment is not null && segment.BaseOffset == baseOffset ? segment : null;
    }
}
