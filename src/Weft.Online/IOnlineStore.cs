namespace Weft.Online;

/// <summary>
/// The online store: per signal and user, the most recent enriched events (the streaming path's
/// "now"), read by serving in one index range scan. Open one with <see cref="OnlineStores"/>.
/// </summary>
/// <remarks>
/// An instance is safe for concurrent use by many tasks, except <see cref="IAsyncDisposable.DisposeAsync"/>,
/// which must come after every other call has completed. Failures the store reports on purpose are
/// <see cref="OnlineStoreException"/>s, flagged <see cref="OnlineStoreException.IsTransient"/> when a
/// retry may succeed; bad arguments are <see cref="ArgumentException"/>s; cancellation is an
/// <see cref="OperationCanceledException"/>.
/// </remarks>
public interface IOnlineStore : IAsyncDisposable
{
    /// <summary>Where the store lives, for logs: <c>sqlite:/path/file.db</c> or <c>postgres:host:port/db</c> (no secrets).</summary>
    string Describe { get; }

    /// <summary>
    /// Stores the elements of <paramref name="signal"/>, idempotently: an element whose key
    /// (signal, user_id, event_time, event_id) is already stored, or appears earlier in the batch, is
    /// dropped (the first write wins, no error), so replaying a batch is harmless. Elements may come
    /// in any order and for any users. Nothing already stored is read or rewritten. When
    /// <paramref name="checkpoint"/> is given, its offsets are stored in the same transaction, so they
    /// are durable exactly when the elements are. Durable when the returned task completes.
    /// </summary>
    /// <returns>How many elements were newly stored.</returns>
    ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, CancellationToken cancellationToken) =>
        AppendAsync(signal, elements, checkpoint, OnlineDurability.Immediate, cancellationToken);

    /// <summary>
    /// As <see cref="AppendAsync(string, IReadOnlyList{OnlineElement}, SourceCheckpoint?, CancellationToken)"/>;
    /// with <see cref="OnlineDurability.Deferred"/> the elements are readable when the task completes and
    /// durable once a later <see cref="SyncAsync"/> returns. A store may make them durable sooner.
    /// </summary>
    /// <returns>How many elements were newly stored.</returns>
    ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, OnlineDurability durability, CancellationToken cancellationToken);

    /// <summary>
    /// Makes every append that completed before this call durable, <see cref="OnlineDurability.Deferred"/>
    /// ones included: one disk sync for many appends, where each would otherwise pay its own.
    /// </summary>
    ValueTask SyncAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The user's elements of <paramref name="signal"/> that <paramref name="options"/> selects,
    /// newest first: event_time descending, then event_id ascending (code point order).
    /// </summary>
    ValueTask<IReadOnlyList<OnlineElement>> ReadAsync(string signal, long userId, OnlineReadOptions options, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="ReadAsync"/> for several users at once, from one consistent snapshot. The result has
    /// one entry per distinct requested user (an empty list for a user with no elements).
    /// </summary>
    ValueTask<IReadOnlyDictionary<long, IReadOnlyList<OnlineElement>>> ReadManyAsync(string signal, IReadOnlyList<long> userIds, OnlineReadOptions options, CancellationToken cancellationToken);

    /// <summary>
    /// Keeps the newest <paramref name="keep"/> elements of each user of <paramref name="signal"/> (in
    /// read order) and deletes the rest, in short transactions of bounded size so appends and reads
    /// go on meanwhile. Other signals are untouched.
    /// </summary>
    /// <returns>How many elements were deleted.</returns>
    ValueTask<long> TrimAsync(string signal, int keep, CancellationToken cancellationToken);

    /// <summary>The offsets stored for <paramref name="consumer"/>: partition → last processed offset (empty when none).</summary>
    ValueTask<IReadOnlyDictionary<string, long>> ReadCheckpointAsync(string consumer, CancellationToken cancellationToken);

    /// <summary>Users, elements and the newest event and ingest times of <paramref name="signal"/>. Scans the signal: not for the hot path.</summary>
    ValueTask<OnlineStoreStats> StatsAsync(string signal, CancellationToken cancellationToken);
}
