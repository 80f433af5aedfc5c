namespace Weft.Online;

/// <summary>
/// One enriched event of a user's sequence as the online store keeps it. The store's key is
/// (signal, <see cref="UserId"/>, <see cref="EventTimeMicros"/>, <see cref="EventId"/>).
/// </summary>
/// <param name="UserId">The user whose sequence the element belongs to.</param>
/// <param name="EventTimeMicros">When the event happened, µs since the Unix epoch (UTC).</param>
/// <param name="EventId">The event's unique id. It must not contain U+0000 or unpaired surrogates
/// (PostgreSQL text cannot hold them) nor be longer than 1,024 bytes in UTF-8; ties in event time are broken by this id in Unicode code point
/// order, which is ordinal order for ids without characters beyond U+FFFF.</param>
/// <param name="IngestTimeMicros">When the platform first saw the event, µs since the Unix epoch (UTC).</param>
/// <param name="Payload">The element's column values, encoded by the caller; opaque to the store. The
/// store neither copies nor keeps the array it is given, and a read returns arrays the caller owns.</param>
public readonly record struct OnlineElement(long UserId, long EventTimeMicros, string EventId, long IngestTimeMicros, byte[] Payload);

/// <summary>When an append reaches the disk (see <see cref="IOnlineStore.AppendAsync(string, IReadOnlyList{OnlineElement}, SourceCheckpoint?, OnlineDurability, CancellationToken)"/>).</summary>
public enum OnlineDurability
{
    /// <summary>Durable when the append returns: a power cut after that loses nothing.</summary>
    Immediate,

    /// <summary>
    /// Visible to reads when the append returns, durable once a later <see cref="IOnlineStore.SyncAsync"/>
    /// returns. A power cut before that may lose it (never corrupting the store), so the caller must be
    /// able to write it again: a stream that commits its source offsets only after the sync.
    /// </summary>
    Deferred,
}

/// <summary>
/// What a read returns: at most <see cref="Limit"/> elements, newest first, with
/// <c>as_of - lookback &lt; event_time &lt;= as_of</c> and <c>ingest_time &lt;= known_at</c>.
/// The defaults read the newest 500 elements with no time bound.
/// </summary>
public sealed record OnlineReadOptions
{
    /// <summary>Defaults: limit 500, no as-of, no lookback, no known-at bound.</summary>
    public static OnlineReadOptions Default { get; } = new();

    private readonly int _limit = 500;
    private readonly long _lookbackMicros = long.MaxValue;

    /// <summary>At most this many elements per user (default 500); 0 reads nothing.</summary>
    public int Limit
    {
        get => _limit;
        init => _limit = value >= 0
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Limit), value, $"OnlineReadOptions.Limit was {value}; it must be 0 or more.");
    }

    /// <summary>Only events with <c>event_time &lt;= AsOfMicros</c> (default <see cref="long.MaxValue"/>: no bound).</summary>
    public long AsOfMicros { get; init; } = long.MaxValue;

    /// <summary>Only events with <c>event_time &gt; AsOfMicros - LookbackMicros</c>; the default, <see cref="long.MaxValue"/>, means no bound.</summary>
    public long LookbackMicros
    {
        get => _lookbackMicros;
        init => _lookbackMicros = value >= 0
            ? value
            : throw new ArgumentOutOfRangeException(nameof(LookbackMicros), value, $"OnlineReadOptions.LookbackMicros was {value}; it must be 0 or more.");
    }

    /// <summary>Only events with <c>ingest_time &lt;= KnownAtMicros</c>, i.e. as served at that time (default <see cref="long.MaxValue"/>: no bound).</summary>
    public long KnownAtMicros { get; init; } = long.MaxValue;

    /// <summary>
    /// The smallest event time the read includes: <c>AsOfMicros - LookbackMicros + 1</c>, saturated at
    /// <see cref="long.MinValue"/>; <see cref="long.MinValue"/> for the unbounded lookback.
    /// </summary>
    internal long FromMicros
    {
        get
        {
            if (LookbackMicros == long.MaxValue)
            {
                return long.MinValue;
            }

            var from = (Int128)AsOfMicros - LookbackMicros + 1;
            return from < long.MinValue ? long.MinValue : from > long.MaxValue ? long.MaxValue : (long)from;
        }
    }

    /// <summary>True when no element can qualify (a zero limit or an empty lookback window): no query needed.</summary>
    internal bool SelectsNothing => Limit == 0 || LookbackMicros == 0;
}

/// <summary>
/// Source positions a consumer has processed, written with the elements they produced. Stored offsets
/// only move forward: each partition keeps the larger of the stored and the given offset.
/// </summary>
/// <param name="Consumer">The consumer (e.g. the streaming job and signal) whose offsets these are.</param>
/// <param name="Offsets">Partition → last processed offset (inclusive).</param>
public sealed record SourceCheckpoint(string Consumer, IReadOnlyDictionary<string, long> Offsets);

/// <summary>What the store holds for one signal.</summary>
/// <param name="Users">Users with at least one element.</param>
/// <param name="Elements">Elements stored.</param>
/// <param name="NewestEventTimeMicros">The largest event time stored, or null when the signal is empty.</param>
/// <param name="NewestIngestTimeMicros">The largest ingest time stored (the stream watermark), or null when the signal is empty.</param>
public sealed record OnlineStoreStats(long Users, long Elements, long? NewestEventTimeMicros, long? NewestIngestTimeMicros);
