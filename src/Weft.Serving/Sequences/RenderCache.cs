using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Weft.Serving.Sequences;

/// <summary>
/// The last rendered <c>columns</c> JSON of recently read users, so that reading an unchanged sequence
/// again is a copy of bytes rather than thousands of value writes. Bounded by bytes: past
/// <see cref="CapacityBytes"/>, arbitrary entries are dropped until an eighth is free.
/// </summary>
/// <remarks>
/// Invalidation needs nothing of its own: an entry names the <see cref="UserTimeline"/> object it was
/// rendered from, and is used only while that object is still the user's timeline (reference equality)
/// and the projection and the chosen rows are exactly the same (compared element by element). Whatever
/// replaces a timeline — an append for the user, a trim, a new batch history — therefore also retires its
/// rendering. Provenance (as_of, lag, counts) is written fresh for every response.
/// </remarks>
internal sealed class RenderCache(long capacityBytes)
{
    private readonly ConcurrentDictionary<(int Slot, long User), Rendered> _entries = new();
    private long _bytes;

    public long CapacityBytes { get; } = capacityBytes;

    public long Bytes => Interlocked.Read(ref _bytes);

    public int Count => _entries.Count;

    public byte[]? TryGet(ServedSignal signal, UserTimeline timeline, int[] projection, List<int> rows)
    {
        if (_entries.TryGetValue((signal.Slot, timeline.UserId), out var r)
            && ReferenceEquals(r.Timeline, timeline)
            && r.Projection.AsSpan().SequenceEqual(projection)
            && r.Rows.AsSpan().SequenceEqual(CollectionsMarshal.AsSpan(rows)))
        {
            return r.Json;
        }

        return null;
    }

    public void Put(ServedSignal signal, UserTimeline timeline, int[] projection, List<int> rows, byte[] json)
    {
        if (json.Length > CapacityBytes / 8)
        {
            return; // one huge sequence would churn the whole cache
        }

        var entry = new Rendered(timeline, projection, [.. rows], json);
        long delta = json.Length;
        _entries.AddOrUpdate((signal.Slot, timeline.UserId), entry, (_, old) =>
        {
            delta = json.Length - old.Json.Length;
            return entry;
        });
        if (Interlocked.Add(ref _bytes, delta) > CapacityBytes)
        {
            Evict();
        }
    }

    private void Evict()
    {
        long target = CapacityBytes - (CapacityBytes / 8);
        foreach (var key in _entries.Keys)
        {
            if (Interlocked.Read(ref _bytes) <= target)
            {
                break;
            }

            if (_entries.TryRemove(key, out var removed))
            {
                Interlocked.Add(ref _bytes, -removed.Json.Length);
            }
        }
    }

    private sealed record Rendered(UserTimeline Timeline, int[] Projection, int[] Rows, byte[] Json);
}
