using System.Globalization;
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
}

/// <summary>Progress of a run, reported after each chunk commits.</summary>
public sealed record BatchProgress(int ChunksDone, int ChunksTotal, int ChunksSkipped, long EventsIn, long EventsOut, long DeadLetters, string? LastChunk);

/// <summary>The outcome of a run.</summary>
public sealed record BatchResult(string RunId, int Chunks, int ChunksResumed, long EventsIn, long EventsOut, long DeadLetters, IReadOnlyList<string> SealedBuckets, long? TableVersion);

/// <summary>
/// <c>weft batch</c>: recomputes the <c>path=batch</c> buckets of <c>enriched/&lt;signal&gt;</c> over a time
/// range from the raw archives, running the signal's executors (the same compiled chain the stream
/// runs) with enrichments at their latest corrected versions. Each chunk of buckets is replaced in
/// one atomic commit, so readers never see a partial bucket. The commit records the run id and chunk;
/// a run started again over the same inputs skips the chunks already committed (resume), and a run
/// over changed inputs (late events landed, an enrichment corrected) recomputes everything it covers.
/// Buckets recomputed after their end plus the signal's late allowance are recorded as sealed.
/// </summary>
public sealed class BatchJob
{
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
        if (config.Archives.IsEmpty)
        {
            throw new InputException($"{config.ConfigPath}: $.archives is empty: the batch path needs at least one raw event archive");
        }

        long bucketLength = TimeBuckets.LengthMicros(definition.Bucket);
        long from = TimeBuckets.StartOf(request.FromMicros, definition.Bucket);
        long to = TimeBuckets.StartOf(request.ToMicros - 1, definition.Bucket) + bucketLength;
        if (request.ToMicros <= request.FromMicros)
        {
            throw new ArgumentException($"--to ({Timestamps.Format(request.ToMicros)}) must be after --from ({Timestamps.Format(request.FromMicros)})", nameof(request));
        }

        int perChunk = request.BucketsPerChunk ?? (definition.Bucket == TimeBucket.Hour ? 24 : 1);
        long chunkLength = bucketLength * perChunk;
        var chunks = new List<(long Start, long End)>();
        for (long s = from; s < to; s += chunkLength)
        {
            chunks.Add((s, Math.Min(to, s + chunkLength)));
        }

        var inputs = new StringBuilder();
        foreach (var archive in config.Archives)
        {
            inputs.Append(await SignalEnvironment.InputFingerprintAsync(archive, cancellationToken).ConfigureAwait(false)).Append(';');
        }

        string runId = RunId(_env.Signal.Fingerprint, from, to, perChunk, inputs.ToString(), _env.EnrichmentFingerprint);
        var table = await EventTable.OpenOrCreateAsync(config.EnrichedTable(definition.Name), _env.Signal.EnrichedSchema, EventLayout.PartitionColumns, cancellationToken: cancellationToken).ConfigureAwait(false);
        var deadLetterTable = await DeadLetterTable.OpenAsync(config.DeadLetterTable(definition.Name), cancellationToken).ConfigureAwait(false);

        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (var commit in await table.Log.GetHistoryAsync(cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (commit.Parameters.TryGetValue(LakeParameters.Run, out var run) && run == runId && commit.Parameters.TryGetValue(LakeParameters.Chunk, out var chunk))
            {
                done.Add(chunk);
            }
        }

        long eventsIn = 0, eventsOut = 0, deadLetters = 0;
        int skipped = 0, index = 0;
        long? version = null;
        var sealedBuckets = new List<string>();
        long lateAllowance = definition.LateAllowance.Ticks / TimeSpan.TicksPerMicrosecond;
        foreach (var (start, end) in chunks)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string chunkName = $"{TimeBuckets.Format(start, definition.Bucket)}..{TimeBuckets.Format(end - 1, definition.Bucket)}";
            index++;
            if (done.Contains(chunkName))
            {
                skipped++;
                progress?.Report(new BatchProgress(index, chunks.Count, skipped, eventsIn, eventsOut, deadLetters, chunkName));
                continue;
            }

            var parser = new RawEventParser(_env.Signal, _time);
            var parsed = new List<EventBatch>();
            var rejected = new List<DeadLetter>();
            foreach (var archive in config.Archives)
            {
                await foreach (var part in TableInputs.ReadRawEventsAsync(archive, parser, _env.Signal.RawSchema, start, end, cancellationToken).ConfigureAwait(false))
                {
                    if (part.Events.RowCount > 0)
                    {
                        parsed.Add(part.Events);
                    }

                    rejected.AddRange(part.DeadLetters);
                }
            }

            var raw = parsed.Count == 0 ? EventBatch.Empty(_env.Signal.RawSchema) : InArrivalOrder(EventBatch.Concat(_env.Signal.RawSchema, parsed));
            var context = new ExecutorContext(definition, _time);
            var run = _env.Signal.StartRun(context, new RunOptions { Assemble = false });
            // An empty chunk still replaces (empties) its buckets; it need not go through the stages.
            var enriched = raw.RowCount == 0
                ? EventBatch.Empty(_env.Signal.EnrichedSchema)
                : await run.ProcessTableAsync(raw, cancellationToken).ConfigureAwait(false);
            rejected.AddRange(context.DeadLetters);

            long now = Timestamps.ToMicros(_time.GetUtcNow());
            var sealedHere = new List<string>();
            for (long b = start; b < end; b += bucketLength)
            {
                if (b + bucketLength + lateAllowance <= now)
                {
                    sealedHere.Add(TimeBuckets.Format(b, definition.Bucket));
                }
            }

            // Dead letters first, tagged by run and chunk: a crash between the two commits re-runs
            // the chunk, and the tag keeps its dead letters from being recorded twice.
            await DeadLetterTable.AppendAsync(deadLetterTable, EventLayout.BatchPath, runId, $"batch:{runId}:{chunkName}", onlyOnce: true, rejected, now, cancellationToken).ConfigureAwait(false);
            var replace = TimeBuckets.Filter(start, end - 1, definition.Bucket, PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath));
            var parameters = new Dictionary<string, string>
            {
                [LakeParameters.Path] = EventLayout.BatchPath,
                [LakeParameters.Run] = runId,
                [LakeParameters.Chunk] = chunkName,
                [LakeParameters.Fingerprint] = _env.Signal.Fingerprint,
                [LakeParameters.Sealed] = string.Join(',', sealedHere),
            };
            var result = await table.ReplacePartitionsAsync(enriched, EventPartitioner.ByTimeBucket(definition.Bucket, EventLayout.BatchPath), replace, parameters, cancellationToken).ConfigureAwait(false);
            version = result.Version;
            sealedBuckets.AddRange(sealedHere);
            eventsIn += run.EventsIn;
            eventsOut += run.EventsOut;
            deadLetters += rejected.Count;
            progress?.Report(new BatchProgress(index, chunks.Count, skipped, eventsIn, eventsOut, deadLetters, chunkName));
        }

        return new BatchResult(runId, chunks.Count, skipped, eventsIn, eventsOut, deadLetters, sealedBuckets, version);
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

    private static string RunId(string fingerprint, long from, long to, int perChunk, string inputs, string enrichments)
    {
        var text = string.Create(CultureInfo.InvariantCulture, $"{fingerprint}|{from}|{to}|{perChunk}|{inputs}|{enrichments}");
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

    /// <summary>Stream commits: source offsets covered, "partition=offset,…".</summary>
    public const string Offsets = "weft.offsets";
}
