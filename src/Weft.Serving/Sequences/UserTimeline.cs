using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Online;

namespace Weft.Serving.Sequences;

/// <summary>
/// Everything one user's sequences are cut from: the user's batch history rows and the online store's
/// rows (the stream tail), in one batch, marked by path and by what the merge policy admits, and grouped
/// by <see cref="SequenceIndex"/> — the index snapshots and training sets cut from. A read is then
/// <see cref="Select"/> with the request's <see cref="SequenceCut"/>: the one merge, nothing of its own.
/// </summary>
internal sealed class UserTimeline
{
    private readonly long[] _times;
    private readonly long _maxIngest;
    private CutResult? _lastCut;

    private UserTimeline(long userId, EventBatch rows, int batchCount, SequenceIndex index, HistorySnapshot history, long generation, int foreign)
    {
        _times = ((PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
        var ingest = ((PrimitiveColumn<long>)rows[StandardColumns.IngestTime]).Values;
        _maxIngest = ingest.Length == 0 ? long.MinValue : ingest.Max();
        UserId = userId;
        Rows = rows;
        BatchCount = batchCount;
        Index = index;
        History = history;
        Generation = generation;
        ForeignPayloads = foreign;
    }

    public long UserId { get; }

    /// <summary>Rows in <see cref="ServedSignal.RowSchema"/>: the batch rows first (<see cref="BatchCount"/>), then the online rows.</summary>
    public EventBatch Rows { get; }

    public int BatchCount { get; }

    public SequenceIndex Index { get; }

    /// <summary>The batch history the rows came from (its version and watermark go into provenance).</summary>
    public HistorySnapshot History { get; }

    /// <summary>The signal's <see cref="ServedSignal.Generation"/> when built: a cached timeline is stale once it moves.</summary>
    public long Generation { get; }

    /// <summary>Online elements skipped because another definition of the signal wrote them (fingerprint prefix differs).</summary>
    public int ForeignPayloads { get; }

    /// <summary>
    /// Cuts the sequence: appends the chosen rows (newest first) to <paramref name="picked"/> and returns
    /// whether the cut dropped an event inside the window (truncated).
    /// </summary>
    public bool Select(in SequenceCut cut, List<int> picked, HashSet<string> seen)
    {
        if (Index.UserCount == 0)
        {
            return false;
        }

        // Reads of "now" move as_of by microseconds: when no row lies between the last cut and this one,
        // the same rows pass both, and Select would choose exactly what it chose last time.
        if (Volatile.Read(ref _lastCut) is { } last && SameRows(last.Cut, cut))
        {
            picked.AddRange(last.Rows);
            return last.Truncated;
        }

        int before = picked.Count;
        bool truncated = Index.Select(0, cut, picked, seen);
        Volatile.Write(ref _lastCut, new CutResult(cut, picked.GetRange(before, picked.Count - before).ToArray(), truncated));
        return truncated;
    }

    /// <summary>True when exactly the same rows pass cut <paramref name="a"/> and cut <paramref name="b"/>.</summary>
    private bool SameRows(in SequenceCut a, in SequenceCut b)
    {
        if (a.MaxLength != b.MaxLength)
        {
            return false;
        }

        if (a.KnownAtMicros != b.KnownAtMicros && (a.KnownAtMicros < _maxIngest || b.KnownAtMicros < _maxIngest))
        {
            return false;
        }

        return NoRowIn(Math.Min(a.AsOfMicros, b.AsOfMicros), Math.Max(a.AsOfMicros, b.AsOfMicros))
            && NoRowIn(Math.Min(a.FromMicros, b.FromMicros) - 1, Math.Max(a.FromMicros, b.FromMicros) - 1);
    }

    /// <summary>No row of the user has an event time in (<paramref name="low"/>, <paramref name="high"/>].</summary>
    private bool NoRowIn(long low, long high)
    {
        if (low == high)
        {
            return true;
        }

        // Rows are newest first: find the first row at or before high, and see whether it is after low.
        var rows = Index.RowsOf(0);
        int lo = 0, hi = rows.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_times[rows[mid]] > high)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo == rows.Length || _times[rows[lo]] <= low;
    }

    private sealed record CutResult(SequenceCut Cut, int[] Rows, bool Truncated);

    public static UserTimeline Build(ServedSignal signal, HistorySnapshot history, long generation, long userId, IReadOnlyList<OnlineElement> online)
    {
        var definition = signal.Definition;
        int group = history.Index.FindUser(userId);
        var batchPart = group >= 0 ? history.Rows.Gather(history.Index.RowsOf(group)) : null;
        int batchCount = batchPart?.RowCount ?? 0;

        var payloads = new List<byte[]>(online.Count);
        var kept = new List<int>(online.Count);
        for (int i = 0; i < online.Count; i++)
        {
            if (signal.Codec.Recognises(online[i].Payload))
            {
                payloads.Add(online[i].Payload);
                kept.Add(i);
            }
        }

        var parts = new List<EventBatch>(2);
        if (batchPart is not null)
        {
            parts.Add(batchPart);
        }

        if (kept.Count > 0)
        {
            parts.Add(OnlineRows(signal, online, kept, payloads));
        }

        var rows = parts.Count == 0 ? EventBatch.Empty(signal.RowSchema) : EventBatch.Concat(signal.RowSchema, parts);

        // Which copies take part, and which wins between copies of one event: MergePolicy decides, as
        // it does for snapshots and training sets (batch rows are all admitted; stream rows of a bucket
        // the batch path sealed are not, under batch_seals_stream_fills, unless they arrived after the
        // sealing run read).
        int n = rows.RowCount;
        var fromBatch = new bool[n];
        var admitted = new bool[n];
        var times = ((PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
        var ingest = ((PrimitiveColumn<long>)rows[StandardColumns.IngestTime]).Values;
        for (int i = 0; i < n; i++)
        {
            fromBatch[i] = i < batchCount;
            bool sealedBucket = history.IsSealed(times[i], definition.Bucket, out long readAt);
            admitted[i] = MergePolicy.Admits(definition.Merge, fromBatch[i], sealedBucket, ingest[i], readAt);
        }

        var index = SequenceIndex.Build(rows, definition.Merge, fromBatch, admitted);
        if (online.Count > kept.Count)
        {
            signal.SkippedOtherDefinition(online.Count - kept.Count);
        }

        return new UserTimeline(userId, rows, batchCount, index, history, generation, online.Count - kept.Count);
    }

    private static EventBatch OnlineRows(ServedSignal signal, IReadOnlyList<OnlineElement> online, List<int> kept, List<byte[]> payloads)
    {
        // The payload holds event_type and the element columns; the store's key holds the rest.
        var decoded = signal.Codec.Decode(payloads);
        int n = kept.Count;
        var ids = new string?[n];
        var times = new long[n];
        var users = new long[n];
        var ingest = new long[n];
        for (int k = 0; k < n; k++)
        {
            var e = online[kept[k]];
            ids[k] = e.EventId;
            times[k] = e.EventTimeMicros;
            users[k] = e.UserId;
            ingest[k] = e.IngestTimeMicros;
        }

        var schema = signal.RowSchema;
        var columns = new Column[schema.Length];
        columns[0] = new StringColumn(ids);
        columns[1] = decoded[0];
        columns[2] = new PrimitiveColumn<long>(WeftType.Timestamp, times);
        for (int c = 1; c < decoded.Length; c++)
        {
            columns[2 + c] = decoded[c];
        }

        columns[^2] = new PrimitiveColumn<long>(WeftType.Int64, users);
        columns[^1] = new PrimitiveColumn<long>(WeftType.Timestamp, ingest);
        return new EventBatch(schema, columns);
    }
}
