using Weft.Online;

namespace Weft.Serving.Sequences;

/// <summary>
/// The online store as the server and its in-process streaming runtime share it: every call goes to the
/// real store; after a durable append the appended users' cached timelines are dropped and the signal's
/// stream watermark moves, as it does after a read (what a read sees is servable); after a trim that deleted anything, the signal's cached timelines go stale.
/// </summary>
internal sealed class ObservedOnlineStore(IOnlineStore inner, IReadOnlyDictionary<string, ServedSignal> signals, TimelineCache? cache) : IOnlineStore
{
    public string Describe => inner.Describe;

    public async ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, OnlineDurability durability, CancellationToken cancellationToken)
    {
        int added = await inner.AppendAsync(signal, elements, checkpoint, durability, cancellationToken).ConfigureAwait(false);
        if (signals.TryGetValue(signal, out var served))
        {
            long previousUser = long.MinValue;
            for (int i = 0; i < elements.Count; i++)
            {
                var e = elements[i];
                served.AdvanceStreamWatermark(ServedSignal.ServableTime(e));
                if (e.UserId != previousUser)
                {
                    // Counter first, then removal: a reader that raced with this append sees one or the other.
                    served.Written(e.UserId);
                    cache?.Remove(served, e.UserId);
                    previousUser = e.UserId;
                }
            }
        }

        return added;
    }

    public ValueTask SyncAsync(CancellationToken cancellationToken) => inner.SyncAsync(cancellationToken);

    public async ValueTask<IReadOnlyList<OnlineElement>> ReadAsync(string signal, long userId, OnlineReadOptions options, CancellationToken cancellationToken)
    {
        var elements = await inner.ReadAsync(signal, userId, options, cancellationToken).ConfigureAwait(false);
        if (signals.TryGetValue(signal, out var served))
        {
            served.AdvanceStreamWatermark(elements);
        }

        return elements;
    }

    public async ValueTask<IReadOnlyDictionary<long, IReadOnlyList<OnlineElement>>> ReadManyAsync(string signal, IReadOnlyList<long> userIds, OnlineReadOptions options, CancellationToken cancellationToken)
    {
        var byUser = await inner.ReadManyAsync(signal, userIds, options, cancellationToken).ConfigureAwait(false);
        if (signals.TryGetValue(signal, out var served))
        {
            foreach (var elements in byUser.Values)
            {
                served.AdvanceStreamWatermark(elements);
            }
        }

        return byUser;
    }

    public async ValueTask<long> TrimAsync(string signal, int keep, CancellationToken cancellationToken)
    {
        long deleted = await inner.TrimAsync(signal, keep, cancellationToken).ConfigureAwait(false);
        if (deleted > 0 && signals.TryGetValue(signal, out var served))
        {
            served.Invalidate();
        }

        return deleted;
    }

    public ValueTask<IReadOnlyDictionary<string, long>> ReadCheckpointAsync(string consumer, CancellationToken cancellationToken) =>
        inner.ReadCheckpointAsync(consumer, cancellationToken);

    public ValueTask<OnlineStoreStats> StatsAsync(string signal, CancellationToken cancellationToken) =>
        inner.StatsAsync(signal, cancellationToken);

    /// <summary>The inner store is owned by whoever opened it (the stream host), not by this view.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
