using System.Collections.Immutable;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Storage;

namespace Weft.Serving.Sequences;

/// <summary>
/// The batch rows of one signal that a read may need, frozen: every <c>path=batch</c> row of
/// <c>enriched/&lt;signal&gt;</c> with event_time from <see cref="LoadedFromMicros"/> on, grouped by user in
/// sequence order (a <see cref="SequenceIndex"/>), and the sealed buckets of the same table version.
/// </summary>
/// <param name="Version">The table version read; -1 when the table does not exist yet.</param>
/// <param name="SealedBucketStarts">Start (µs) of every sealed bucket, and when the run that sealed it read (µs; <see cref="long.MaxValue"/> when unknown: <see cref="LakeState.SealReadAt"/>).</param>
/// <param name="SealedThroughMicros">End of the newest sealed bucket (the batch watermark), or null.</param>
internal sealed record HistorySnapshot(
    long Version,
    EventBatch Rows,
    SequenceIndex Index,
    IReadOnlyDictionary<long, long> SealedBucketStarts,
    long? SealedThroughMicros,
    long LoadedFromMicros,
    DateTimeOffset LoadedAt)
{
    /// <summary>
    /// The newest table version found to add no batch rows since <see cref="Version"/> (stream flushes
    /// only), so a refresh need not look at those commits again. <see cref="Version"/> stays the one
    /// the rows were read at: a response built from this snapshot, cached or not, names that one.
    /// </summary>
    public long CheckedVersion { get; init; } = long.MinValue;

    /// <summary>Whether the bucket of <paramref name="eventTimeMicros"/> is sealed, and when the run that sealed it read.</summary>
    public bool IsSealed(long eventTimeMicros, TimeBucket bucket, out long readAtMicros)
    {
        readAtMicros = long.MaxValue;
        return SealedBucketStarts.Count > 0 && SealedBucketStarts.TryGetValue(TimeBuckets.StartOf(eventTimeMicros, bucket), out readAtMicros);
    }
}

/// <summary>
/// Keeps a signal's <see cref="HistorySnapshot"/> current. The lake's stream partitions are not loaded:
/// they hold the same events as the online store (the stream writes both from one enriched batch), which
/// serving reads instead. So only batch commits (and anything that is not a stream commit) cause a
/// reload; a stream flush only moves the version checked (<see cref="HistorySnapshot.CheckedVersion"/>). A reload reads the window
/// in the background and swaps the snapshot atomically: reads never wait for it.
/// </summary>
internal sealed class BatchHistory
{
    private readonly string _tablePath;
    private readonly SignalDefinition _signal;
    private readonly TimeSpan _horizon;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private EnrichedLake? _lake;
    private HistorySnapshot _current;

    public BatchHistory(string tablePath, SignalDefinition signal, TimeSpan horizon, TimeProvider time)
    {
        _tablePath = tablePath;
        _signal = signal;
        _horizon = horizon;
        _time = time;
        var schema = ServedSignal.RowSchemaOf(signal);
        _current = new HistorySnapshot(-1, EventBatch.Empty(schema), SequenceIndex.Build(EventBatch.Empty(schema), signal.Merge), new Dictionary<long, long>(), null, WindowStart(), time.GetUtcNow());
    }

    public HistorySnapshot Current => Volatile.Read(ref _current);

    /// <summary>How many batch reloads happened (for status and tests).</summary>
    public int Loads { get; private set; }

    /// <summary>
    /// Brings the snapshot up to the table's latest version. Returns true when it loaded new rows (a
    /// batch commit, or the window moved a whole horizon), false when nothing changed or only stream
    /// commits came.
    /// </summary>
    public async Task<bool> RefreshAsync(CancellationToken cancellationToken)
    {
        await _refreshing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await RefreshCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _refreshing.Release();
        }
    }

    private async Task<bool> RefreshCoreAsync(CancellationToken cancellationToken)
    {
        if (_lake is null)
        {
            if (!Directory.Exists(Path.Combine(_tablePath, "_delta_log")))
            {
                return false;
            }

            _lake = await EnrichedLake.OpenAsync(_tablePath, _signal, cancellationToken).ConfigureAwait(false);
        }

        var current = Current;
        var snapshot = await _lake.Table.Log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
        // Rows older than any read may need are shed once the window has moved on by a horizon (an hour at least).
        bool windowStale = current.LoadedFromMicros < WindowStart() - Math.Max(Micros(_horizon), Micros(TimeSpan.FromHours(1)));
        long seen = Math.Max(current.Version, current.CheckedVersion);
        if (snapshot.Version == seen && !windowStale)
        {
            return false;
        }

        if (current.Version >= 0 && !windowStale && await OnlyStreamCommitsSinceAsync(seen, snapshot.Version, cancellationToken).ConfigureAwait(false))
        {
            Volatile.Write(ref _current, current with { CheckedVersion = snapshot.Version });
            return false;
        }

        await LoadAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    private async Task<bool> OnlyStreamCommitsSinceAsync(long loaded, long latest, CancellationToken cancellationToken)
    {
        var commits = await _lake!.Table.Log.GetHistoryAsync((int)Math.Min(int.MaxValue, latest - loaded), cancellationToken).ConfigureAwait(false);
        foreach (var commit in commits)
        {
            // A compaction (dataChange false) rearranges files, never rows: nothing to reload.
            if (commit.Version > loaded && commit.DataChange
                && (!commit.Parameters.TryGetValue(LakeParameters.Path, out var path) || path != EventLayout.StreamPath
                    || (commit.Parameters.TryGetValue(LakeParameters.Sealed, out var sealedList) && sealedList.Length > 0)))
            {
                return false;
            }
        }

        return true;
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        long from = WindowStart();
        var loadedAt = _time.GetUtcNow();

        // The state (sealed buckets) and the rows must come from one version: read until they agree.
        for (int attempt = 0; ; attempt++)
        {
            var before = await _lake!.GetStateAsync(cancellationToken).ConfigureAwait(false);
            var rows = await _lake.ReadAsync(from, TimeBuckets.MaxMicros, cancellationToken).ConfigureAwait(false);
            var after = await _lake.GetStateAsync(cancellationToken).ConfigureAwait(false);
            if (before.Version != after.Version && attempt < 5)
            {
                continue;
            }

            var keep = new List<int>(rows.BatchRows);
            for (int i = 0; i < rows.FromBatch.Length; i++)
            {
                if (rows.FromBatch[i] && rows.Admitted[i])
                {
                    keep.Add(i);
                }
            }

            var schema = ServedSignal.RowSchemaOf(_signal);
            var batchRows = rows.Rows.Gather(keep.ToArray()).Project(schema);
            var fromBatch = new bool[batchRows.RowCount];
            Array.Fill(fromBatch, true);
            var index = SequenceIndex.Build(batchRows, _signal.Merge, fromBatch);
            var sealedStarts = new Dictionary<long, long>();
            foreach (var bucket in after.SealedBuckets)
            {
                // Buckets of the signal's own length only: a day bucket's start is its hour 00's too.
                if (TimeBuckets.TryParse(bucket, out var kind, out long start) && kind == _signal.Bucket)
                {
                    sealedStarts[start] = after.SealReadAtMicros(bucket);
                }
            }

            Volatile.Write(ref _current, new HistorySnapshot(after.Version, batchRows, index, sealedStarts, after.SealedThroughMicros, from, loadedAt));
            Loads++;
            return;
        }
    }

    /// <summary>The first event time kept: now − lookback − horizon.</summary>
    private long WindowStart() => Timestamps.ToMicros(_time.GetUtcNow()) - Micros(_signal.Lookback) - Micros(_horizon);

    private static long Micros(TimeSpan span) => span.Ticks / TimeSpan.TicksPerMicrosecond;
}
