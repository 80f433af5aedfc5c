using System.Collections.Concurrent;

namespace Weft.Serving.Sequences;

/// <summary>
/// Decoded, merged timelines of recently read users, so a hot read is a cut and a JSON write, with no
/// store round trip and no payload decoding. Bounded: past <see cref="Capacity"/> entries an eighth of
/// them is dropped (arbitrary ones: a cheap approximation of LRU that never blocks readers).
/// </summary>
/// <remarks>
/// Invalidation. An entry is served only while (1) the signal's <see cref="ServedSignal.Generation"/> is
/// the one it was built under — a new batch history or a trim of the online store moves it — and (2) no
/// write for its user landed since it was built: <see cref="ObservedOnlineStore"/> removes a user's entry
/// after each durable append for that user, and an entry built from a read that raced with an append is
/// either not added or removed again (the per-user write counter is checked before and after adding).
/// This needs every write to the store to pass through this process, so the cache is used only when
/// the embedded streaming runtime runs in-process; servers over a shared store read through.
/// </remarks>
internal sealed class TimelineCache(int capacity)
{
    private readonly ConcurrentDictionary<(int Slot, long User), UserTimeline> _entries = new();
    private int _count;
    private long _hits;
    private long _misses;

    public int Capacity { get; } = capacity;

    public int Count => Volatile.Read(ref _count);

    public long Hits => Interlocked.Read(ref _hits);

    public long Misses => Interlocked.Read(ref _misses);

    public UserTimeline? TryGet(ServedSignal signal, long userId, long generation)
    {
        if (_entries.TryGetValue((signal.Slot, userId), out var timeline) && timeline.Generation == generation)
        {
            Interlocked.Increment(ref _hits);
            return timeline;
        }

        Interlocked.Increment(ref _misses);
        return null;
    }

    /// <summary>Adds a timeline built from a store read that began when the user's write counter was <paramref name="writesBefore"/>.</summary>
    public void Add(ServedSignal signal, long userId, UserTimeline timeline, long writesBefore)
    {
        if (signal.WritesOf(userId) != writesBefore)
        {
            return; // an append for this user landed meanwhile: the read may predate it
        }

        var key = (signal.Slot, userId);
        bool added = false;
        _entries.AddOrUpdate(key, _ => { added = true; return timeline; }, (_, _) => timeline);
        if (added && Interlocked.Increment(ref _count) > Capacity)
        {
            Evict();
        }

        if (signal.WritesOf(userId) != writesBefore && _entries.TryRemove(new KeyValuePair<(int, long), UserTimeline>(key, timeline)))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    public void Remove(ServedSignal signal, long userId)
    {
        if (_entries.TryRemove((signal.Slot, userId), out _))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    private void Evict()
    {
        int target = Capacity - (Capacity / 8);
        foreach (var key in _entries.Keys)
        {
            if (Volatile.Read(ref _count) <= target)
            {
                break;
            }

            if (_entries.TryRemove(key, out _))
            {
                Interlocked.Decrement(ref _count);
            }
        }
    }
}
