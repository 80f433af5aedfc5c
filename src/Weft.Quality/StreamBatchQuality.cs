using System.Collections.Immutable;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Engine.Sequences;
using Weft.Storage;
using Weft.Streaming.Runtime;

namespace Weft.Quality;

/// <summary>What <see cref="StreamBatchQuality.RunAsync"/> measures: buckets whose start lies in [From, To) (µs; either end open when null).</summary>
public sealed record QualityRequest(long? FromMicros = null, long? ToMicros = null, ComparisonOptions? Options = null);

/// <summary>
/// Which buckets of <c>enriched/&lt;signal&gt;</c> in the range were compared: those both paths wrote
/// and the batch path sealed; those the stream wrote that are not sealed yet (the batch path may have
/// written them, still open, or never recomputed them: their batch rows are not counted); those only the batch path wrote (the stream did not run then: a
/// backfill, or an outage; not counted against the stream's completeness, so look here for outages).
/// </summary>
public sealed record BucketCoverage(
    IReadOnlyList<string> Compared,
    IReadOnlyList<string> StreamOnly,
    long StreamOnlyRows,
    IReadOnlyList<string> BatchOnly,
    long BatchOnlyRows)
{
    /// <summary>
    /// Stream rows of compared buckets that arrived after the batch run that sealed them began reading
    /// (their ingest_time after its <c>weft.read_at</c>) of events the batch path lacks: events that run
    /// could not have, served from the stream; not compared, so not counted as stream-only. (A late
    /// stream row of an event the batch path has is compared: the stream read it after the archives.)
    /// </summary>
    public long ArrivedAfterSealRows { get; init; }
}

/// <summary>One compared bucket's completeness for one event type: where the stream's misses are (an outage shows as a run of buckets).</summary>
public sealed record BucketCompleteness(string Bucket, SliceCompleteness Events);

/// <summary>Late events the stream recorded in its ledger (<c>late_events/&lt;signal&gt;</c>) for buckets in the range, by event type and action.</summary>
public sealed record LateArrivals(string EventType, long Accepted, long LeftToBatch, long Dropped);

/// <summary>A run of commits of one path that recorded one definition fingerprint (versions and commit times inclusive).</summary>
public sealed record FingerprintSpan(string Path, string Fingerprint, long FirstVersion, long LastVersion, DateTimeOffset FirstCommit, DateTimeOffset LastCommit);

/// <summary>
/// A signal's stream path measured against its batch path (the reference: complete and corrected), per
/// event type and never mixed: completeness and enrichment agreement over the sealed buckets, late
/// arrivals, the definition fingerprints each path wrote with, and how soon the stream had each event
/// type's events (over every bucket in the range it wrote, sealed or not).
/// </summary>
public sealed record QualityReport(
    string Signal,
    string Fingerprint,
    long TableVersion,
    BucketCoverage Buckets,
    ComparisonResult Comparison,
    IReadOnlyList<BucketCompleteness> PerBucket,
    IReadOnlyList<LateArrivals> Late,
    IReadOnlyList<FingerprintSpan> Fingerprints,
    IReadOnlyList<StreamFreshness> Freshness);

/// <summary>A quality run that cannot start (no table to compare); the message says what to run first.</summary>
public sealed class QualityException(string message) : Exception(message);

/// <summary>Compares the stream and batch paths of one signal's enriched table, bucket by bucket.</summary>
public static class StreamBatchQuality
{
    /// <summary>
    /// Reads <c>enriched/&lt;signal&gt;</c> at its latest version and, for each bucket in the range that
    /// both paths wrote, compares the stream's rows (candidate) with the batch path's (reference) with an
    /// <see cref="EventComparer"/>. Batch rows missing from the stream that the stream's late-event
    /// ledger holds as left to batch or dropped are counted as explained. One bucket's rows are in
    /// memory at a time.
    /// </summary>
    public static Task<QualityReport> RunAsync(WeftConfig config, SignalDefinition signal, string fingerprint, QualityRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(signal);
        return CompareAsync(config.EnrichedTable(signal.Name), config.LateEventTable(signal.Name), signal.Name, fingerprint, request, cancellationToken);
    }

    /// <summary>
    /// <see cref="RunAsync"/> on the tables themselves: the enriched table at <paramref name="enrichedPath"/>
    /// and the late-event ledger at <paramref name="ledgerPath"/> (absent: nothing is explained).
    /// </summary>
    public static async Task<QualityReport> CompareAsync(string enrichedPath, string ledgerPath, string signal, string fingerprint, QualityRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!Directory.Exists(System.IO.Path.Combine(enrichedPath, "_delta_log")))
        {
            throw new QualityException($"There is no enriched table for signal '{signal}' at '{enrichedPath}': run `weft stream` and `weft batch` for it first.");
        }

        var table = await EventTable.OpenAsync(enrichedPath, cancellationToken).ConfigureAwait(false);
        RequireColumns(table, StandardColumns.All, $"The enriched table at '{enrichedPath}'", "an enriched table Weft writes");
        // Sealed buckets and files from one version: a batch commit landing between two reads sealed a
        // bucket whose rows the earlier read did not hold.
        var state = await EnrichedLake.ReadStateAsync(table, null, cancellationToken).ConfigureAwait(false);
        var snapshot = await table.Log.GetSnapshotAsync(state.Version, cancellationToken).ConfigureAwait(false);
        var sealedBuckets = state.SealedBuckets;
        var buckets = Coverage(snapshot, sealedBuckets, request);

        var ledger = await OpenLedgerAsync(ledgerPath, cancellationToken).ConfigureAwait(false);
        var late = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        var comparer = new EventComparer(table.Schema, table.Schema, request.Options);
        var columns = table.Schema.Select(f => f.Name).ToArray();
        var perBucket = new List<BucketCompleteness>();
        long arrivedAfterSeal = 0;
        var freshness = new StreamFreshnessMeter();
        string[] freshnessColumns = [StandardColumns.EventType, StandardColumns.EventTime, StandardColumns.IngestTime];
        // The ledger's own buckets too: a bucket whose every late event was dropped has no enriched rows.
        var ledgerBuckets = ledger is null ? [] : (await ledger.Log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false)).Files()
            .Select(f => f.PartitionValues.GetValueOrDefault(EventLayout.BucketColumn))
            .OfType<string>()
            .Where(b => InRange(b, request));
        foreach (var bucket in buckets.Compared.Concat(buckets.StreamOnly).Concat(buckets.BatchOnly).Concat(ledgerBuckets).Distinct().Order(StringComparer.Ordinal))
        {
            var explained = ledger is null ? null : await ReadLedgerAsync(ledger, bucket, late, cancellationToken).ConfigureAwait(false);
            if (!buckets.Compared.Contains(bucket))
            {
                if (buckets.StreamOnly.Contains(bucket))
                {
                    freshness.Add(bucket, await ReadAsync(table, freshnessColumns, bucket, EventLayout.StreamPath, snapshot.Version, cancellationToken).ConfigureAwait(false));
                }

                continue;
            }

            var reference = await ReadAsync(table, columns, bucket, EventLayout.BatchPath, snapshot.Version, cancellationToken).ConfigureAwait(false);
            var candidate = await ReadAsync(table, columns, bucket, EventLayout.StreamPath, snapshot.Version, cancellationToken).ConfigureAwait(false);
            freshness.Add(bucket, candidate);
            (candidate, long after) = ArrivedBefore(candidate, state.SealReadAtMicros(bucket), reference);
            arrivedAfterSeal += after;
            foreach (var part in comparer.Compare(reference, candidate, explained))
            {
                perBucket.Add(new BucketCompleteness(bucket, part));
            }
        }

        return new QualityReport(
            signal,
            fingerprint,
            snapshot.Version,
            buckets with { ArrivedAfterSealRows = arrivedAfterSeal },
            comparer.Result(),
            perBucket,
            [.. late.Select(l => new LateArrivals(l.Key, l.Value[0], l.Value[1], l.Value[2]))],
            await FingerprintsAsync(table.Log, cancellationToken).ConfigureAwait(false),
            freshness.Result());
    }

    /// <summary>
    /// The buckets in range by which paths hold rows. A bucket a batch commit sealed counts as the batch
    /// path's even with no rows of it (an hour without events): its stream rows are then stream-only
    /// events (reads of the sealed bucket show those that arrived after the sealing run read), not a
    /// bucket "not sealed yet".
    /// </summary>
    private static BucketCoverage Coverage(DeltaSnapshot snapshot, IReadOnlySet<string> sealedBuckets, QualityRequest request)
    {
        var paths = new SortedDictionary<string, (long? Stream, long? Batch)>(StringComparer.Ordinal); // rows of each path; null: no file
        foreach (var file in snapshot.Files())
        {
            if (!file.PartitionValues.TryGetValue(EventLayout.BucketColumn, out var bucket) || bucket is null
                || !file.PartitionValues.TryGetValue(EventLayout.PathColumn, out var path)
                || !InRange(bucket, request))
            {
                continue;
            }

            paths.TryGetValue(bucket, out var entry);
            long rows = file.NumRecords ?? 0;
            if (path == EventLayout.StreamPath)
            {
                entry.Stream = (entry.Stream ?? 0) + rows;
            }
            else if (path == EventLayout.BatchPath)
            {
                entry.Batch = (entry.Batch ?? 0) + rows;
            }

            paths[bucket] = entry;
        }

        foreach (var bucket in sealedBuckets)
        {
            if (paths.TryGetValue(bucket, out var entry) && entry.Batch is null)
            {
                paths[bucket] = entry with { Batch = 0 };
            }
        }

        var compared = new List<string>();
        var streamOnly = new List<string>();
        var batchOnly = new List<string>();
        long streamOnlyRows = 0, batchOnlyRows = 0;
        foreach (var (bucket, entry) in paths)
        {
            switch (entry)
            {
                case ({ }, { }) when sealedBuckets.Contains(bucket):
                    compared.Add(bucket);
                    break;
                case ({ } stream, _):
                    // No batch rows, or a batch run's rows of a bucket it did not seal (still open: the
                    // stream goes on writing it): not compared yet.
                    streamOnly.Add(bucket);
                    streamOnlyRows += stream;
                    break;
                case (null, { } batch):
                    batchOnly.Add(bucket);
                    batchOnlyRows += batch;
                    break;
            }
        }

        return new BucketCoverage(compared, streamOnly, streamOnlyRows, batchOnly, batchOnlyRows);
    }

    /// <summary>A bucket is in the range when it overlaps [from, to).</summary>
    private static bool InRange(string bucket, QualityRequest request) =>
        TimeBuckets.TryParse(bucket, out var kind, out long start)
        && !(request.FromMicros is { } from && start + TimeBuckets.LengthMicros(kind) <= from)
        && !(request.ToMicros is { } to && start >= to);

    private static async Task<EventBatch> ReadAsync(EventTable table, IReadOnlyList<string> columns, string bucket, string path, long version, CancellationToken cancellationToken)
    {
        var parts = new List<EventBatch>();
        var partition = PartitionFilter.All.Equal(EventLayout.BucketColumn, bucket).Equal(EventLayout.PathColumn, path);
        await foreach (var batch in table.ReadAsync(columns, partition, version: version, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            parts.Add(batch);
        }

        return parts.Count == 1 ? parts[0] : parts.Count == 0 ? EventBatch.Empty(table.Schema) : EventBatch.Concat(parts[0].Schema, parts);
    }

    /// <summary>
    /// The stream rows to compare: all but those that arrived after <paramref name="readAtMicros"/> (none
    /// when it is unknown) of events the batch path lacks; and how many were set apart. A stream behind
    /// its source reads an event after the sealing run read it from the archives: that row is the same
    /// event as the batch path's, and setting it apart counted the batch copy as missing from the stream.
    /// </summary>
    private static (EventBatch Rows, long After) ArrivedBefore(EventBatch rows, long readAtMicros, EventBatch reference)
    {
        if (readAtMicros == long.MaxValue || rows.RowCount == 0)
        {
            return (rows, 0);
        }

        var ingest = ((PrimitiveColumn<long>)rows[StandardColumns.IngestTime]).Values;
        var ids = ((StringColumn)rows[StandardColumns.EventId]).Values;
        HashSet<string>? batchIds = null;
        var keep = new List<int>(rows.RowCount);
        for (int i = 0; i < rows.RowCount; i++)
        {
            if (!MergePolicy.ArrivedAfterSeal(ingest[i], readAtMicros)
                || (ids[i] is { } id && (batchIds ??= [.. ((StringColumn)reference[StandardColumns.EventId]).Values.OfType<string>()]).Contains(id)))
            {
                keep.Add(i);
            }
        }

        return keep.Count == rows.RowCount ? (rows, 0) : (rows.Gather(keep.ToArray()), rows.RowCount - keep.Count);
    }

    private static async Task<EventTable?> OpenLedgerAsync(string path, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(System.IO.Path.Combine(path, "_delta_log")))
        {
            return null;
        }

        var ledger = await EventTable.OpenAsync(path, cancellationToken).ConfigureAwait(false);
        RequireColumns(ledger, [.. LateEventLedger.Schema.Where(f => f.Name is StandardColumns.EventId or StandardColumns.EventType or LateEventLedger.ActionColumn)], $"The late-event ledger at '{path}'", "the ledger the stream writes");
        return ledger;
    }

    /// <summary>
    /// Refuses a table without one of <paramref name="required"/> or with it of another type, naming the
    /// table and the column: the run would otherwise fail on a cast or a missing key part-way through,
    /// naming neither.
    /// </summary>
    private static void RequireColumns(EventTable table, IEnumerable<FieldDefinition> required, string what, string expected)
    {
        foreach (var field in required)
        {
            var found = table.Schema.FirstOrDefault(f => f.Name == field.Name);
            if (found is null || found.Type != field.Type)
            {
                throw new QualityException($"{what} cannot be compared: {(found is null ? $"it has no column '{field.Name}'" : $"its column '{field.Name}' is {found.Type}")}, where {expected} has '{field.Name}' {field.Type} (its columns: {string.Join(", ", table.Schema.Select(f => $"{f.Name} {f.Type}"))}).");
            }
        }
    }

    /// <summary>Counts the bucket's late events into <paramref name="late"/> and returns the ids the stream left to batch or dropped.</summary>
    private static async Task<HashSet<string>> ReadLedgerAsync(EventTable ledger, string bucket, SortedDictionary<string, long[]> late, CancellationToken cancellationToken)
    {
        var absent = new HashSet<string>(StringComparer.Ordinal);
        var partition = PartitionFilter.All.Equal(EventLayout.BucketColumn, bucket);
        string[] columns = [StandardColumns.EventId, StandardColumns.EventType, LateEventLedger.ActionColumn];
        await foreach (var batch in ledger.ReadAsync(columns, partition, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var ids = ((StringColumn)batch[StandardColumns.EventId]).Values;
            var types = ((StringColumn)batch[StandardColumns.EventType]).Values;
            var actions = ((StringColumn)batch[LateEventLedger.ActionColumn]).Values;
            for (int i = 0; i < batch.RowCount; i++)
            {
                var type = types[i] ?? "";
                if (!late.TryGetValue(type, out var counts))
                {
                    late[type] = counts = new long[3];
                }

                var action = LateEventLedger.ParseAction(actions[i]);
                counts[action switch { LatePolicy.BatchOnly => 1, LatePolicy.Drop => 2, _ => 0 }]++;
                if (action != LatePolicy.Accept && ids[i] is { } id)
                {
                    absent.Add(id);
                }
            }
        }

        return absent;
    }

    private static async Task<IReadOnlyList<FingerprintSpan>> FingerprintsAsync(DeltaTable log, CancellationToken cancellationToken)
    {
        var spans = new List<FingerprintSpan>();
        var open = new Dictionary<string, int>(StringComparer.Ordinal); // path -> index of its latest span
        foreach (var commit in (await log.GetHistoryAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).OrderBy(c => c.Version))
        {
            if (!commit.Parameters.TryGetValue(LakeParameters.Path, out var path) || !commit.Parameters.TryGetValue(LakeParameters.Fingerprint, out var fingerprint))
            {
                continue;
            }

            if (open.TryGetValue(path, out int at) && spans[at].Fingerprint == fingerprint)
            {
                spans[at] = spans[at] with { LastVersion = commit.Version, LastCommit = commit.Timestamp };
            }
            else
            {
                open[path] = spans.Count;
                spans.Add(new FingerprintSpan(path, fingerprint, commit.Version, commit.Version, commit.Timestamp, commit.Timestamp));
            }
        }

        return spans;
    }
}
