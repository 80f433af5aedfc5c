using System.Text;
using Weft.Definitions;
using Weft.Storage;

namespace Weft.Streaming.Runtime;

/// <summary>Options of the streaming runtime, with their defaults.</summary>
public sealed record StreamOptions
{
    /// <summary>
    /// Records per micro-batch at most (default 10,000). A batch takes what the source holds, so this
    /// bounds batches only under a backlog, where larger ones mean fewer commits and fewer,
    /// larger runs for the online store to merge.
    /// </summary>
    public int MaxBatchRecords { get; init; } = 10_000;

    /// <summary>How long a read waits for the first record of a micro-batch (default 50 ms).</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How often stream partitions are flushed to the lake and source offsets committed (default 5 s).</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Rows waiting for the lake (enriched rows, dead letters and late events of every signal) at which a
    /// flush starts before <see cref="FlushInterval"/> is up (default 500,000). It bounds the memory a
    /// backlog takes: read at 300,000 events/s, a 5 s interval would hold 1.5 M rows. When the previous
    /// flush is still writing, the loop waits for it rather than holding more.
    /// </summary>
    public int MaxPendingRows { get; init; } = 500_000;

    /// <summary>
    /// Rows per row group of the stream's lake files (default 32,768). Between flushes, each bucket's
    /// rows are encoded into its uncommitted file a row group at a time as they arrive, in the background,
    /// so a flush has only the last part-filled row group to encode and the rows wait as encoded bytes,
    /// not objects. Smaller groups leave a flush less to do; compaction rewrites the files later.
    /// </summary>
    public int LakeRowGroupSize { get; init; } = 32_768;

    /// <summary>How often the online store is trimmed to each signal's max_length (default 60 s).</summary>
    public TimeSpan TrimInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How often enrichment tables are checked for new versions (default 30 s).</summary>
    public TimeSpan EnrichmentRefresh { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often the stream re-reads which time buckets the batch path has sealed (default 5 s). A bucket
    /// sealed by batch is treated as sealed by the stream at most this long (plus one micro-batch) later;
    /// until then, events for it are judged against the stream watermark only.
    /// </summary>
    public TimeSpan SealRefresh { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often the stream compacts the small files of its closed buckets, in the background (default
    /// 10 min; zero turns it off). A flush writes one small file per bucket it touched, ~720 an hour at the
    /// default flush interval. Once a bucket is closed (it ends before the stream's watermark, so only
    /// late events still reach it), its <c>path=stream</c> files are packed into files of up to 128 MiB
    /// (<see cref="EventTable.CompactAsync(PartitionFilter?, int, long, CancellationToken)"/>): the same rows, fewer files for
    /// batch jobs, serving and DuckDB to open. The dead-letter and late-event tables' stream files too.
    /// A failed compaction is counted (<c>weft_stream_compaction_failures_total</c>) and tried again at
    /// the next interval; it never stops the stream.
    /// </summary>
    public TimeSpan CompactInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Small files a closed bucket must hold before a compaction rewrites them (default 16, at least 2).</summary>
    public int CompactMinFiles { get; init; } = 16;

    /// <summary>
    /// How often the stream vacuums the tables it writes, in the background (default 1 day; zero turns it
    /// off). Compactions, and batch rewrites of the same tables, leave the files they replaced on disk
    /// for time travel: a stream compacting every 10 minutes would otherwise keep every small file it
    /// ever flushed. A vacuum deletes the files no version within <see cref="VacuumRetention"/>
    /// references (<see cref="DeltaTable.VacuumAsync"/>, the same as <c>weft table vacuum</c>): the
    /// <c>enriched/&lt;signal&gt;</c>, dead-letter and late-event tables of every signal, and the
    /// unrouted dead letters. A failed vacuum is counted (<c>weft_stream_vacuum_failures_total</c>) and
    /// tried again at the next interval; it never stops the stream.
    /// </summary>
    public TimeSpan VacuumInterval { get; init; } = TimeSpan.FromDays(1);

    /// <summary>
    /// How long a file the tables no longer reference stays on disk (default 7 days, Delta's default;
    /// at least 1 day): time travel to any instant within it keeps working, and a file younger than it
    /// is never deleted, so a writer still writing files it has not committed (a long batch backfill
    /// of the same table) keeps them.
    /// </summary>
    public TimeSpan VacuumRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>The shortest <see cref="VacuumRetention"/> allowed.</summary>
    public static readonly TimeSpan MinVacuumRetention = TimeSpan.FromDays(1);

    /// <summary>The consumer name offsets are checkpointed under (default "weft-stream"; see <see cref="ConsumerFor"/>).</summary>
    public string Consumer { get; init; } = DefaultConsumer;

    public const string DefaultConsumer = "weft-stream";

    /// <summary>
    /// The consumer a stream of some of the config's signals reads as: one of its own, so that it neither
    /// takes records from the stream of every signal (which would then never see them) nor shares its
    /// position. Every signal: <see cref="DefaultConsumer"/>; some: "weft-stream." and their sorted names
    /// joined by dots, or, when that is no valid consumer name (1–100 of <c>[A-Za-z0-9._-]</c>), a hash of them.
    /// </summary>
    public static string ConsumerFor(IReadOnlyCollection<string> signals, IReadOnlyCollection<string> configured)
    {
        var chosen = signals.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (configured.All(chosen.Contains))
        {
            return DefaultConsumer;
        }

        string named = DefaultConsumer + "." + string.Join('.', chosen);
        if (Embedded.LogFormat.IsValidGroupName(named))
        {
            return named;
        }

        var hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', chosen)));
        return DefaultConsumer + ".h" + Convert.ToHexStringLower(hash.AsSpan(0, 8));
    }

    /// <summary>
    /// The Kafka consumer group a stream reads as: the configured <c>group_id</c> for the stream of every
    /// signal; for some of them, the group and the consumer's suffix (<c>events-weft.engagement</c>), a
    /// group of its own as <see cref="ConsumerFor"/> gives it a consumer of its own. Sharing the configured
    /// group committed the other signals' records as processed, and they were never read.
    /// </summary>
    public static string KafkaGroupFor(string configuredGroup, string consumer) =>
        consumer == DefaultConsumer ? configuredGroup
        : consumer.StartsWith(DefaultConsumer + ".", StringComparison.Ordinal) ? configuredGroup + consumer[DefaultConsumer.Length..]
        : configuredGroup + "." + consumer;

    public void Validate()
    {
        if (MaxBatchRecords < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBatchRecords), MaxBatchRecords, "StreamOptions.MaxBatchRecords must be at least 1");
        }

        if (LakeRowGroupSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(LakeRowGroupSize), LakeRowGroupSize, "StreamOptions.LakeRowGroupSize must be at least 1");
        }

        if (MaxPendingRows < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPendingRows), MaxPendingRows, "StreamOptions.MaxPendingRows must be at least 1");
        }

        if (FlushInterval <= TimeSpan.Zero || MaxWait < TimeSpan.Zero || TrimInterval <= TimeSpan.Zero || EnrichmentRefresh <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(FlushInterval), "StreamOptions intervals must be positive");
        }

        if (CompactInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(CompactInterval), CompactInterval, "StreamOptions.CompactInterval must not be negative (zero turns compaction off)");
        }

        if (CompactMinFiles < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(CompactMinFiles), CompactMinFiles, "StreamOptions.CompactMinFiles must be at least 2");
        }

        if (VacuumInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(VacuumInterval), VacuumInterval, "StreamOptions.VacuumInterval must not be negative (zero turns vacuuming off)");
        }

        if (VacuumRetention < MinVacuumRetention)
        {
            throw new ArgumentOutOfRangeException(nameof(VacuumRetention), VacuumRetention,
                $"StreamOptions.VacuumRetention must be at least {Durations.Format(MinVacuumRetention)}: a shorter one could delete the files of a writer that has not committed them yet");
        }

        if (SealRefresh < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(SealRefresh), SealRefresh, "StreamOptions.SealRefresh must not be negative (zero re-reads every micro-batch)");
        }
    }
}
