using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Weft.Definitions;
using Weft.Engine;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>What a batch run was asked to do.</summary>
/// <param name="FromMicros">Start of the first bucket to recompute (rounded down to a bucket).</param>
/// <param name="ToMicros">End of the range, exclusive (rounded up to a bucket).</param>
public sealed record BatchRequest(string Signal, long FromMicros, long ToMicros)
{
    /// <summary>Buckets per commit: the unit of atomic replacement and of resume (default one day's worth).</summary>
    public int? BucketsPerChunk { get; init; }

    /// <summary>This process's share of the users when several processes split one job (<c>--shard i/n</c>); null: all users.</summary>
    public BatchShard? Shard { get; init; }

    /// <summary>
    /// Recompute a chunk whose archives hold no events even where the lake holds rows for its buckets,
    /// emptying them (<c>--allow-empty</c>). Without it such a chunk stops the run: an archive path gone
    /// wrong, or events past the archive's retention, would otherwise wipe the sequences and seal the buckets.
    /// </summary>
    public bool AllowEmptyChunks { get; init; }
}

/// <summary>
/// Shard <see cref="Index"/> of <see cref="Count"/>: the users whose hashed user_id falls to it. The hash
/// is a fixed 64-bit mix of the id, so every process, on any machine, splits the users the same way.
/// </summary>
public sealed record BatchShard(int Index, int Count)
{
    /// <summary>Parses <c>i/n</c> (0 ≤ i &lt; n).</summary>
    public static BatchShard Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0
            || !int.TryParse(text.AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out int index)
            || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int count))
        {
            throw new ArgumentException($"--shard '{text}' is not i/n (e.g. 0/4: the first of four shards)");
        }

        if (count < 1 || index >= count)
        {
            throw new ArgumentException($"--shard '{text}': the shard index must be 0 to n-1 and n at least 1 (e.g. 0/4 … 3/4)");
        }

        return new BatchShard(index, count);
    }

    /// <summary>Whether <paramref name="userId"/> belongs to this shard.</summary>
    public bool Owns(long userId)
    {
        // murmur3's 64-bit finaliser: neighbouring ids spread evenly over the shards.
        ulong x = (ulong)userId;
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdUL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53UL;
        x ^= x >> 33;
        return (int)(x % (ulong)Count) == Index;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Index}/{Count}");
}

/// <summary>Progress of a run, reported after each chunk commits.</summary>
public sealed record BatchProgress(int ChunksDone, int ChunksTotal, int ChunksSkipped, long EventsIn, long EventsOut, long DeadLetters, string? LastChunk);

/// <summary>The outcome of a run.</summary>
/// <param name="DeadLetters">Records the run rejected.</param>
/// <param name="ChunksWaiting">Sharded runs: chunks this shard staged whose other shards have not staged theirs yet (the last shard to stage a chunk commits it).</param>
/// <param name="DeadLettersRecorded">Of <paramref name="DeadLetters"/>, those the dead-letter table did not hold yet (an earlier run or delivery recorded the rest).</param>
public sealed record BatchResult(string RunId, int Chunks, int ChunksResumed, long EventsIn, long EventsOut, long DeadLetters, IReadOnlyList<string> SealedBuckets, long? TableVersion, int ChunksWaiting = 0, long DeadLettersRecorded = 0)
{
    /// <summary>Chunks this run had committed before and computed again, because the stream archived events for them since.</summary>
    public int ChunksRecomputed { get; init; }

    /// <summary>
    /// Chunks a sharded run resumed though the stream archived events for them after they were read: a
    /// shard does not compute a committed chunk again on its own (the other shards may have passed it),
    /// so the same range run without <c>--shard</c> picks those events up.
    /// </summary>
    public int ChunksStale { get; init; }
}

/// <summary>
/// <c>weft batch</c>: recomputes the <c>path=batch</c> buckets of <c>enriched/&lt;signal&gt;</c> over a time
/// range from the raw archives, running the signal's executors (the same compiled chain the stream
/// runs) with enrichments at their latest corrected versions. Each chunk of buckets is replaced in
/// one atomic commit, so readers never see a partial bucket. The commit records the run id and chunk;
/// a run started again over the same inputs skips the chunks already committed (resume), and a run
/// over changed inputs (late events landed, an enrichment corrected) recomputes everything it covers.
/// Buckets recomputed after their end plus the signal's late allowance are recorded as sealed.
/// <para><b>Shards.</b> With <see cref="BatchRequest.Shard"/> <c>i/n</c>, n processes split one job by user
/// hash. Each computes its users' rows of a chunk and stages them (data files written, not committed)
/// with a list of the files under <c>_weft_staging/&lt;run&gt;/&lt;chunk&gt;/</c> in the table. The shard that
/// stages a chunk's last share commits all n shares in one atomic replace, so readers still see a
/// chunk's buckets whole, never one shard's users. A shard run again skips what it already staged; a
/// crashed shard's chunks wait until it runs again. The run id covers n, so all n shards share one run.</para>
/// </summary>
public sealed class BatchJob
{
    /// <summary>The most chunks one run plans (a century of days; eleven years of hours one bucket a chunk).</summary>
    public const int MaxChunks = 100_000;

    private readonly SignalEnvironment _env;
    private readonly TimeProvider _time;

    public BatchJob(SignalEnvironment env, TimeProvider? time = null)
    {
        _env = env;
        _time = time ?? TimeProvider.System;
    }

    public async Task<BatchResult> RunAsync(BatchRequest request, IProgress<BatchProgress>? progress, CancellationToken cancellationToken)
    {
        var definition = _env.Definition;
        var config = _env.Config;
        var archives = config.ReadableArchives();
        if (archives.IsEmpty)
        {
            throw new InputException(config.Archives.IsEmpty
                ? $"{config.ConfigPath}: $.archives is empty: the batch path needs at least one raw event archive"
                : $"{config.ConfigPath}: $.archives is empty and the stream's archive {config.Archives[0].Path} holds nothing yet: the batch path needs at least one raw event archive");
        }

        long bucketLength = TimeBuckets.LengthMicros(definition.Bucket);
        long from = TimeBuckets.StartOf(request.FromMicros, definition.Bucket);
        long to = TimeBuckets.StartOf(request.ToMicros - 1, definition.Bucket) + bucketLength;
        if (request.ToMicros <= request.FromMicros)
        {
            throw new ArgumentException($"--to ({Timestamps.Format(request.ToMicros)}) must be after --from ({Timestamps.Format(request.FromMicros)})", nameof(request));
        }

        int perChunk = request.BucketsPerChunk ?? (definition.Bucket == TimeBucket.Hour ? 24 : 1);
        if (perChunk < 1)
        {
            throw new ArgumentException($"--chunk-buckets {perChunk} must be at least 1 (buckets per atomic commit)");
        }

        // A chunk of more buckets than the range holds is the range (bucketLength * perChunk could overflow,
        // and a wrapped length cut chunks inside buckets, each replacing rows the one before wrote).
        long chunkLength = perChunk >= (to - from) / bucketLength ? to - from : bucketLength * perChunk;
        long planned = ((to - from) + chunkLength - 1) / chunkLength;
        if (planned > MaxChunks)
        {
            // Each chunk is a commit, empty or not: a --from mistyped by centuries wrote thousands of
            // empty commits a second before anyone noticed. The instants as given: a --to in the last
            // bucket of 9999 rounds up to one no DateTime holds.
            throw new ArgumentException($"--from {Timestamps.Format(request.FromMicros)} to --to {Timestamps.Format(request.ToMicros)} is {planned:N0} chunks of {perChunk} bucket(s), more than {MaxChunks:N0}: check --from, or raise --chunk-buckets");
        }

        var chunks = new List<(long Start, long End)>();
        for (long s = from; s < to; s += chunkLength)
        {
            chunks.Add((s, Math.Min(to, s + chunkLength)));
        }

        var inputs = new StringBuilder();
        // The stream's archive is left out of the run's identity: it only grows (a flush every few
        // seconds while a stream runs), so with it a crashed run could never resume and the shards of
        // one job, started moments apart, would name different runs and wait for each other forever.
        // Each chunk reads the files it finds when it is computed, and a run started again computes a
        // committed chunk again when the stream archived events for it since (StreamArchiveArrivals).
        foreach (var archive in archives.Where(a => !a.Optional))
        {
            inputs.Append(await SignalEnvironment.InputFingerprintAsync(archive, cancellationToken).ConfigureAwait(false)).Append(';');
        }

        var shard = request.Shard is { Count: > 1 } sharded ? sharded : null;
        string runId = RunId(_env.Signal.Fingerprint, from, to, perChunk, inputs.ToString(), _env.EnrichmentFingerprint, shard?.Count ?? 1);
        var table = await EnrichedLake.OpenForWritingAsync(config, _env.Signal, cancellationToken).ConfigureAwait(false);
        var deadLetterTable = await DeadLetterTable.OpenAsync(config.DeadLetterTable(definition.Name), cancellationToken).ConfigureAwait(false);
        string deployment = Path.GetDirectoryName(Path.GetFullPath(config.ConfigPath)) ?? "/";
        var recordedDeadLetters = await DeadLetterTable.ReadRecordedAsync(deadLetterTable, EventLayout.BatchPath, deployment, cancellationToken).ConfigureAwait(false);

        // The chunks of this run already committed; sharded runs catch up before each chunk, since the
        // other shards commit while this one works. The first catch-up starts at the run's first commit
        // (or where the table's run-starts fold ends), not at version 0.
        // Each committed chunk of this run, with when it read its raw events (µs; null when its commit predates the record).
        var done = new Dictionary<string, long?>(StringComparer.Ordinal);
        RunStarts? starts = await RunStarts.ReadAsync(table.Log, RunOf, cancellationToken).ConfigureAwait(false);
        long seen = starts.ReadAfter(runId);
        async Task CatchUpAsync()
        {
            foreach (var commit in await table.Log.GetCommitsAfterAsync(seen, cancellationToken).ConfigureAwait(false))
            {
                starts?.Observe(commit);
                if (commit.Parameters.TryGetValue(LakeParameters.Run, out var run) && run == runId && commit.Parameters.TryGetValue(LakeParameters.Chunk, out var chunk))
                {
                    // A commit written before chunks recorded their read time is checked against every file
                    // of the stream's archive once (its commit came after a read of unknown length).
                    done[chunk] = commit.Parameters.TryGetValue(LakeParameters.ReadAt, out var readAt) && long.TryParse(readAt, NumberStyles.None, CultureInfo.InvariantCulture, out long micros)
                        ? micros
                        : null;
                }

                seen = commit.Version;
            }
        }

        await CatchUpAsync().ConfigureAwait(false);
        await starts.KeepAsync(table.Log, cancellationToken).ConfigureAwait(false);
        starts = null;

        long eventsIn = 0, eventsOut = 0, deadLetters = 0, recordedNow = 0;
        int skipped = 0, index = 0, refreshed = 0, stale = 0;
        var waiting = new List<string>();
        var arrivals = new StreamArchiveArrivals([.. archives.Where(a => a.Optional)], () => new RawEventParser(_env.Signal, _time));
        long? version = null;
        var sealedBuckets = new List<string>();
        LakeState? lakeState = null;
        long lateAllowance = definition.LateAllowance.Ticks / TimeSpan.TicksPerMicrosecond;
        foreach (var (start, end) in chunks)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string chunkName = $"{TimeBuckets.Format(start, definition.Bucket)}..{TimeBuckets.Format(end - 1, definition.Bucket)}";
            index++;
            var staging = shard is null ? null : new ChunkStaging(table.Path, runId, chunkName, shard);
            if (staging is not null)
            {
                await CatchUpAsync().ConfigureAwait(false);
            }

            if (done.TryGetValue(chunkName, out long? chunkReadAt))
            {
                // Sharded runs resume as they did: each shard deciding alone whether a late file sends a
                // chunk round again could split the shards, one waiting forever for another that skipped.
                // A sharded run only warns: it does not scan the whole archive for a commit that predates read times.
                bool arrived = (shard is null || chunkReadAt is not null) && arrivals.ArrivedSince(chunkReadAt, start, end);
                if (shard is not null || !arrived)
                {
                    stale += shard is not null && arrived ? 1 : 0;
                    staging?.Delete(); // left behind by a shard that committed the chunk and stopped before cleaning up
                    skipped++;
                    progress?.Report(new BatchProgress(index, chunks.Count, skipped, eventsIn, eventsOut, deadLetters, chunkName));
                    continue;
                }

                // Events for its buckets reached the stream's archive after it was computed: again.
                done.Remove(chunkName);
                refreshed++;
            }

            long readAt = Timestamps.ToMicros(_time.GetUtcNow());

            var replace = TimeBuckets.Filter(start, end - 1, definition.Bucket, PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath));
            var partitioner = EventPartitioner.ByTimeBucket(definition.Bucket, EventLayout.BatchPath);
            EventBatch? enriched = null;
            long chunkIn = 0, chunkOut = 0, chunkDeadLetters = 0;
            if (staging is null || !staging.IsStaged)
            {
                (enriched, var rejected, var run, long rawRead, long eventsRead) = await ComputeChunkAsync(start, end, shard, untimedDeadLetters: index == 1, cancellationToken).ConfigureAwait(false);
                if (eventsRead == 0 && !request.AllowEmptyChunks)
                {
                    await RefuseToEmptyAsync(table, chunkName, start, end, rawRead, rejected, cancellationToken).ConfigureAwait(false);
                }

                // Dead letters first, tagged by run and chunk (and shard): a crash before the chunk
                // commits re-runs it, and the tag keeps its dead letters from being recorded twice.
                string tag = shard is null ? $"batch:{runId}:{chunkName}" : $"batch:{runId}:{chunkName}:{shard}";
                // Each rejected record once in the table, not again per run or per delivery; the
                // run's count is still every record it rejected.
                var fresh = DeadLetterTable.NotYetRecorded(DeadLetterTable.Located(rejected, deployment), recordedDeadLetters);
                await DeadLetterTable.AppendAsync(deadLetterTable, EventLayout.BatchPath, runId, tag, onlyOnce: true, fresh, Timestamps.ToMicros(_time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
                recordedNow += fresh.Count;
                (chunkIn, chunkOut, chunkDeadLetters) = (run.EventsIn, run.EventsOut, rejected.Count);
                eventsIn += chunkIn;
                eventsOut += chunkOut;
                deadLetters += chunkDeadLetters;
            }

            if (staging is null)
            {
                var sealedHere = await SealedBucketsAsync(start, end).ConfigureAwait(false);
                try
                {
                    version = (await table.ReplacePartitionsAsync(enriched!, partitioner, replace, ChunkParameters(runId, chunkName, sealedHere, null, readAt), cancellationToken).ConfigureAwait(false)).Version;
                    sealedBuckets.AddRange(sealedHere);
                }
                catch (ConcurrentModificationException conflict)
                {
                    // The same run in another process (the streams of one group recomputing one changed
                    // signal's tail, or one command started twice) committed this chunk first: its rows
                    // stand, read from the same inputs but for stream archive files that landed between
                    // the two reads (its read time is recorded; a later run recomputes for those). Any
                    // other commit over these buckets is a real conflict and fails the run.
                    if (!await CommittedByThisRunAsync(conflict, chunkName).ConfigureAwait(false))
                    {
                        throw;
                    }

                    await CatchUpAsync().ConfigureAwait(false);
                    (eventsIn, eventsOut, deadLetters) = (eventsIn - chunkIn, eventsOut - chunkOut, deadLetters - chunkDeadLetters);
                    skipped++;
                }
            }
            else
            {
                if (enriched is not null)
                {
                    await staging.WriteAsync(await table.StageAsync(enriched, partitioner, replace, cancellationToken).ConfigureAwait(false), Timestamps.FromMicros(readAt).UtcDateTime, cancellationToken).ConfigureAwait(false);
                }

                if (!await TryCommitStagedAsync(staging, chunkName, start, end, replace, readAt).ConfigureAwait(false))
                {
                    waiting.Add(chunkName);
                }
            }

            progress?.Report(new BatchProgress(index, chunks.Count, skipped, eventsIn, eventsOut, deadLetters, chunkName));
        }

        if (waiting.Count > 0)
        {
            // Another shard may have committed them since this one staged its share.
            await CatchUpAsync().ConfigureAwait(false);
            waiting.RemoveAll(done.ContainsKey);
        }

        return new BatchResult(runId, chunks.Count, skipped, eventsIn, eventsOut, deadLetters, sealedBuckets, version, waiting.Count, recordedNow) { ChunksRecomputed = refreshed, ChunksStale = stale };

        // Whether the commit a replace conflicted with is this run's commit of the chunk.
        async Task<bool> CommittedByThisRunAsync(ConcurrentModificationException conflict, string chunkName)
        {
            if (conflict.ConflictingVersion is not { } at)
            {
                return false;
            }

            CommitSummary? commit;
            try
            {
                commit = (await table.Log.GetCommitsAfterAsync(at - 1, cancellationToken).ConfigureAwait(false)).FirstOrDefault(c => c.Version == at);
            }
            catch (Exception e) when (e is IOException or DeltaException)
            {
                return false; // unknown: the conflict stands
            }

            return commit is not null
                && commit.Parameters.TryGetValue(LakeParameters.Run, out var run) && run == runId
                && commit.Parameters.TryGetValue(LakeParameters.Chunk, out var chunk) && chunk == chunkName;
        }

        // The buckets a chunk's commit seals: those closed for good by now, and those an earlier run sealed
        // (a raised late allowance can make one open again by the clock). A seal is never undone, and the
        // replaced bucket's stream rows are judged against this commit's read time: left at the earlier
        // run's, a row this run read and left out on purpose (the hot-user cap, a dead letter) would come back.
        async Task<List<string>> SealedBucketsAsync(long start, long end)
        {
            lakeState = await EnrichedLake.ReadStateAsync(table, lakeState, cancellationToken).ConfigureAwait(false);
            long now = Timestamps.ToMicros(_time.GetUtcNow());
            var sealedHere = new List<string>();
            for (long b = start; b < end; b += bucketLength)
            {
                string bucket = TimeBuckets.Format(b, definition.Bucket);
                if (b + bucketLength + lateAllowance <= now || lakeState.SealedBuckets.Contains(bucket))
                {
                    sealedHere.Add(bucket);
                }
            }

            return sealedHere;
        }

        // Commits the chunk when every shard has staged its share (whoever gets there first); false
        // while some share is missing, so the chunk waits for the other shards.
        async Task<bool> TryCommitStagedAsync(ChunkStaging staging, string chunkName, long start, long end, PartitionFilter replace, long readAt)
        {
            if (await staging.ReadAllAsync(cancellationToken).ConfigureAwait(false) is not { } shares)
            {
                // Some share is missing: another shard has not staged yet, or it committed the chunk and
                // removed the staging directory (then this shard's share is gone too).
                await CatchUpAsync().ConfigureAwait(false);
                if (!done.ContainsKey(chunkName))
                {
                    return false;
                }
            }
            else
            {
                var sealedHere = await SealedBucketsAsync(start, end).ConfigureAwait(false);
                // The chunk read its events when its first share did, not when this shard did.
                if (staging.EarliestShareRead() is { } first)
                {
                    readAt = Math.Min(readAt, Timestamps.ToMicros(new DateTimeOffset(first, TimeSpan.Zero)));
                }

                try
                {
                    version = (await table.CommitStagedAsync(shares, replace, ChunkParameters(runId, chunkName, sealedHere, shard, readAt), cancellationToken).ConfigureAwait(false)).Version;
                    sealedBuckets.AddRange(sealedHere);
                }
                catch (Exception e) when (e is ConcurrentModificationException or ArgumentException)
                {
                    // Another shard read the same shares and committed them a moment before: its commit
                    // conflicts with this one, or already holds these files.
                    await CatchUpAsync().ConfigureAwait(false);
                    if (!done.ContainsKey(chunkName))
                    {
                        throw;
                    }
                }
            }

            staging.Delete();
            return true;
        }
    }

    private Dictionary<string, string> ChunkParameters(string runId, string chunkName, List<string> sealedHere, BatchShard? shard, long readAt)
    {
        var parameters = new Dictionary<string, string>
        {
            [LakeParameters.Path] = EventLayout.BatchPath,
            [LakeParameters.Run] = runId,
            [LakeParameters.Chunk] = chunkName,
            [LakeParameters.ReadAt] = readAt.ToString(CultureInfo.InvariantCulture),
            [LakeParameters.Fingerprint] = _env.Signal.Fingerprint,
            [LakeParameters.Sealed] = string.Join(',', sealedHere),
        };
        if (shard is not null)
        {
            parameters[LakeParameters.Shards] = shard.Count.ToString(CultureInfo.InvariantCulture);
        }

        return parameters;
    }

    /// <summary>
    /// One chunk's enriched rows (only the shard's users, when sharded) and its dead letters: those whose
    /// event_time is in the chunk, and with <paramref name="untimedDeadLetters"/> (the run's first chunk)
    /// those whose event_time cannot be read.
    /// </summary>
    /// <remarks>RawRead: the archives' records for the chunk, every shard's, dead letters included; EventsRead: those that parsed, every shard's.</remarks>
    private async Task<(EventBatch Enriched, List<DeadLetter> Rejected, SignalRun Run, long RawRead, long EventsRead)> ComputeChunkAsync(long start, long end, BatchShard? shard, bool untimedDeadLetters, CancellationToken cancellationToken)
    {
        var parser = new RawEventParser(_env.Signal, _time, HistoryParsing);
        var parsed = new List<EventBatch>();
        var rejected = new List<DeadLetter>();
        long rawRead = 0, eventsRead = 0;
        foreach (var archive in _env.Config.ReadableArchives())
        {
            await foreach (var part in TableInputs.ReadRawEventsAsync(archive, parser, _env.Signal.RawSchema, start, end, cancellationToken, untimedDeadLetters).ConfigureAwait(false))
            {
                rawRead += part.Events.RowCount + part.DeadLetters.Count;
                eventsRead += part.Events.RowCount;
                var events = shard is null ? part.Events : OwnedRows(part.Events, shard);
                if (events.RowCount > 0)
                {
                    parsed.Add(events);
                }

                foreach (var dead in part.DeadLetters)
                {
                    // A dead letter without a user (unreadable) goes to shard 0, so exactly one shard records it.
                    if (shard is null || (dead.UserId is { } user ? shard.Owns(user) : shard.Index == 0))
                    {
                        rejected.Add(dead);
                    }
                }
            }
        }

        var raw = parsed.Count == 0 ? EventBatch.Empty(_env.Signal.RawSchema) : InArrivalOrder(EventBatch.Concat(_env.Signal.RawSchema, parsed));
        var context = new ExecutorContext(_env.Definition, _time);
        var run = _env.Signal.StartRun(context, new RunOptions { Assemble = false });
        // An empty chunk still replaces (empties) its buckets; it need not go through the stages.
        var enriched = raw.RowCount == 0
            ? EventBatch.Empty(_env.Signal.EnrichedSchema)
            : await run.ProcessTableAsync(raw, cancellationToken).ConfigureAwait(false);
        rejected.AddRange(context.DeadLetters);
        return (enriched, rejected, run, rawRead, eventsRead);
    }

    /// <summary>
    /// Stops the run when a chunk whose archives hold no events would empty buckets the lake holds rows in
    /// (either path: sealing them hides the stream's rows too); see <see cref="BatchRequest.AllowEmptyChunks"/>.
    /// A chunk whose records are all dead letters holds no events either: an archive file damaged or of
    /// another format would otherwise wipe the rows it once gave.
    /// </summary>
    private async Task RefuseToEmptyAsync(EventTable table, string chunkName, long start, long end, long records, List<DeadLetter> rejected, CancellationToken cancellationToken)
    {
        var snapshot = await table.Log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
        var held = snapshot.Files(TimeBuckets.Filter(start, end - 1, _env.Definition.Bucket, PartitionFilter.All));
        if (held.Count == 0)
        {
            return;
        }

        long rows = 0;
        bool unknown = false;
        foreach (var file in held)
        {
            rows += file.LiveRecords ?? 0;
            unknown |= file.LiveRecords is null;
        }

        if (rows == 0 && !unknown)
        {
            return; // files of no rows: nothing to lose
        }

        string deadLetters = records == 0 ? ""
            : $" ({records:N0} record(s), every one a dead letter{(rejected.Count > 0 ? $", e.g. {rejected[0].Reason}{(rejected[0].Source is { } at ? $" at {at}" : "")}" : "")})";
        throw new InputException(
            $"chunk {chunkName}: the archives hold no events for it{deadLetters}, but {table.Path} holds {(unknown ? "rows" : $"{rows:N0} row(s)")} in its buckets; nothing was replaced. " +
            (records == 0
                ? $"Check `archives` in {_env.Config.ConfigPath} (a wrong path, or events past the archive's retention)"
                : $"Check the archive files for the chunk's days (damaged, of another format than `archives` in {_env.Config.ConfigPath} says, or events the signal's raw schema no longer reads)") +
            ", or pass --allow-empty to empty these buckets");
    }

    /// <summary>How the batch path parses the archive: an event without an ingest_time arrived at its event_time, the same every run.</summary>
    internal static readonly RawEventParserOptions HistoryParsing = new() { AbsentIngestTimeIsEventTime = true };

    private static EventBatch OwnedRows(EventBatch events, BatchShard shard)
    {
        var users = ((PrimitiveColumn<long>)events[StandardColumns.UserId]).Values;
        var owned = new List<int>(events.RowCount / shard.Count + 16);
        for (int i = 0; i < events.RowCount; i++)
        {
            if (shard.Owns(users[i]))
            {
                owned.Add(i);
            }
        }

        return owned.Count == events.RowCount ? events : events.Gather(CollectionsMarshal.AsSpan(owned));
    }

    /// <summary>
    /// The archive in the order events arrived (ingest_time, then event_id): the order-dependent
    /// stages (dedup keeps the first delivery, the hot-user cap) then see what the stream saw,
    /// whatever order the archive's files list in.
    /// </summary>
    private static EventBatch InArrivalOrder(EventBatch raw)
    {
        var ingest = ((PrimitiveColumn<long>)raw[StandardColumns.IngestTime]).Values;
        var ids = ((StringColumn)raw[StandardColumns.EventId]).Values;
        var order = new int[raw.RowCount];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, (a, b) => ingest[a] != ingest[b] ? ingest[a].CompareTo(ingest[b]) : string.CompareOrdinal(ids[a], ids[b]));
        return raw.Gather(order);
    }

    /// <summary>The batch run a commit of the enriched table belongs to (stream and maintenance commits have none).</summary>
    internal static string? RunOf(CommitSummary commit) => commit.Parameters.GetValueOrDefault(LakeParameters.Run);

    private static string RunId(string fingerprint, long from, long to, int perChunk, string inputs, string enrichments, int shards)
    {
        // An unsharded run's id names no shard count, as before shards existed. (The inputs' identity
        // changed on 2026-12-07, to what does not depend on where they sit: runs begun before it are not resumed.)
        var text = string.Create(CultureInfo.InvariantCulture, $"{fingerprint}|{from}|{to}|{perChunk}|{inputs}|{enrichments}")
            + (shards > 1 ? string.Create(CultureInfo.InvariantCulture, $"|shards={shards}") : "");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }
}

/// <summary>Names of the commit parameters Weft records in the lake's commits.</summary>
public static class LakeParameters
{
    public const string Path = "weft.path";
    public const string Run = "weft.run";
    public const string Chunk = "weft.chunk";
    public const string Fingerprint = "weft.fingerprint";

    /// <summary>Comma-separated buckets this commit sealed.</summary>
    public const string Sealed = "weft.sealed";

    /// <summary>Batch commits: when the chunk read its raw events (µs since the epoch); a resume recomputes it when the stream archived events for it since.</summary>
    public const string ReadAt = "weft.read_at";

    /// <summary>Sharded batch commits: how many shards' shares the commit holds.</summary>
    public const string Shards = "weft.shards";

    /// <summary>Stream commits: source offsets covered, "partition=offset,…".</summary>
    public const string Offsets = "weft.offsets";

    /// <summary>
    /// Comma-separated partitions whose offsets start over from this commit on: the offsets recorded
    /// before it were another log's (an embedded log replaced, or one that lost records), and records at
    /// those offsets now are new ones.
    /// </summary>
    public const string OffsetsReset = "weft.offsets_reset";

    /// <summary>
    /// Stream commits: the newest event time (µs since the epoch) of the events appended up to the
    /// offsets covered, from which the stream's watermark is taken. A restarted stream resumes from it,
    /// so a replay judges late events against the watermark the first life had, not against none.
    /// </summary>
    public const string MaxEventTime = "weft.max_event_time";
}
