namespace Weft.Streaming;

/// <summary>
/// One raw event as a source delivered it: where it sits in the source (<see cref="Partition"/>,
/// <see cref="Offset"/>), its key (the user id, as text, for Kafka) and its JSON payload.
/// </summary>
/// <param name="Partition">The source partition, e.g. <c>events/3</c> for a Kafka topic partition.</param>
/// <param name="Offset">Position inside the partition; strictly increasing within a partition.</param>
/// <param name="Key">The record key (may be empty).</param>
/// <param name="Payload">The raw JSON event, exactly as produced.</param>
/// <remarks>
/// <see cref="Key"/> and <see cref="Payload"/> may share a buffer with other records' bytes (the Kafka
/// source copies many messages into one: a backlog of small arrays, each an object the collector
/// visits, made its pauses several times longer). Nothing writes to them after delivery.
/// </remarks>
/// <param name="TimestampMicros">The source's own timestamp (append time), µs since the Unix epoch.</param>
public readonly record struct SourceRecord(string Partition, long Offset, ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> Payload, long TimestampMicros);

/// <summary>
/// A source of raw events read in micro-batches, with at-least-once delivery: records not covered
/// by a <see cref="CommitAsync"/> are delivered again after the source is reopened (or, for Kafka,
/// after a rebalance moves the partition). Within a partition, records arrive in offset order.
/// </summary>
/// <remarks>
/// A source is read by one task at a time. Implementations: the embedded durable log (single node,
/// fed by <c>POST /v1/events</c>) and Kafka (consumer groups). Both pass one contract test suite.
/// </remarks>
public interface IEventSource : IAsyncDisposable
{
    /// <summary>A name for logs and metrics, e.g. <c>kafka:events</c> or <c>embedded:/var/weft/log</c>.</summary>
    string Name { get; }

    /// <summary>
    /// Returns up to <paramref name="maxRecords"/> records: as soon as some are available, or an empty
    /// list once <paramref name="maxWait"/> has passed without any.
    /// </summary>
    ValueTask<IReadOnlyList<SourceRecord>> ReadBatchAsync(int maxRecords, TimeSpan maxWait, CancellationToken cancellationToken);

    /// <summary>
    /// Durably records that every record of each partition up to and including the given offset has
    /// been processed, so a reopened source (same consumer group) starts after it.
    /// </summary>
    ValueTask CommitAsync(IReadOnlyDictionary<string, long> processedOffsets, CancellationToken cancellationToken);

    /// <summary>
    /// Per partition, the records the source holds beyond those delivered so far (the reader's lag), as
    /// far as it knows without a round trip to a broker; partitions it cannot tell of yet are left out,
    /// and a source that cannot tell at all returns none. Safe to call from any thread while a read runs
    /// (a metrics scrape).
    /// </summary>
    IReadOnlyDictionary<string, long> Backlog() => NoBacklog;

    /// <summary>
    /// Sets what the source calls, on a thread of its own, when a rebalance changes which partitions it
    /// reads (Kafka consumer groups). With <c>revoking</c> true: partitions are being taken away, and no
    /// more of their records will be delivered; while the task runs they are still this reader's, so it
    /// can make what it processed of them durable and commit it, and their next owner starts after it.
    /// With <c>revoking</c> false: partitions were given to it, and none of their records has been
    /// delivered yet; the reader can learn what earlier owners stored of them. The source waits for the
    /// task, up to a bound of its own, before the rebalance goes on. A source without rebalances never
    /// calls it; null removes it.
    /// </summary>
    void SetRebalanceHandler(Func<bool, Task>? handler)
    {
    }

    /// <summary>
    /// Why the source has not been able to read its input at all yet (a Kafka consumer never given a
    /// partition, with the broker's last error), or null once it has, or when it cannot tell. An
    /// operator's <c>--exit-when-idle</c> uses it to tell an empty input from an unreachable one.
    /// </summary>
    string? NotReadingReason() => null;

    /// <summary>
    /// Why the latest <see cref="CommitAsync"/> returned without making the commit (a Kafka group
    /// rebalancing, or its coordinator unreachable): the records since the commit before it will be
    /// delivered again. Null when it was made, and for a source whose commits always take.
    /// </summary>
    string? WhyLastCommitNotMade => null;

    /// <summary>Commits not made since the source opened (see <see cref="WhyLastCommitNotMade"/>); each is covered by the next one made.</summary>
    long CommitsNotMade => 0;

    /// <summary>
    /// Per partition, the offset the next record appended will get (the partition's end), as far as the
    /// source knows without a round trip to a broker; partitions it cannot tell of are left out. A
    /// table that holds a partition's records beyond it was written from another log (a replaced one).
    /// </summary>
    IReadOnlyDictionary<string, long> EndOffsets() => NoBacklog;

    /// <summary>
    /// Tells the source, per partition, the newest offset the reader's tables already hold (a record at or
    /// below it is taken for a replay), for a source that learns a partition's end only when it is given
    /// the partition (Kafka: its high watermark). Such a source refuses a partition whose end is at or
    /// below that offset: its offsets started over (a topic deleted and created again, or another
    /// cluster's topic of the name), so its records are not the ones held, and it stops (the next read
    /// throws) without delivering any of them. The reader calls it before its first read and again,
    /// from its rebalance handler, when partitions are assigned (what it holds of them may have changed).
    /// A source whose ends are known at open leaves the check to the reader (<see cref="EndOffsets"/>).
    /// </summary>
    void SetHeldOffsets(IReadOnlyDictionary<string, long> heldThrough)
    {
    }

    /// <summary>What <see cref="Backlog"/> says when the source cannot tell.</summary>
    private static readonly IReadOnlyDictionary<string, long> NoBacklog = new Dictionary<string, long>();
}
