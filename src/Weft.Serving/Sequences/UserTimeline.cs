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
    private UserTimeline(long userId, EventBatch rows, int batchCount, SequenceIndex index, HistorySnapshot history, long generation, int foreign)
    {
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
    public bool Select(in SequenceCut cut, List<int> picked, HashSet<string> seen) =>
        Index.UserCount > 0 && Index.Select(0, cut, picked, seen);

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
        // the batch path sealed are not, under batch_seals_stream_fills).
        int n = rows.RowCount;
        var fromBatch = new bool[n];
        var admitted = new bool[n];
        var times = ((PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
        for (int i = 0; i < n; i++)
        {
            fromBatch[i] = i < batchCount;
            admitted[i] = MergePolicy.Admits(definition.Merge, fromBatch[i], history.IsSealed(times[i], definition.Bucket));
        }

        var index = SequenceIndex.Build(rows, definition.Merge, fromBatch, admitted);
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
