using Weft.Engine.Sequences;
using Weft.Online;

namespace Weft.Serving.Sequences;

/// <summary>One served sequence: the timeline it was cut from, the rows chosen (newest first) and what provenance reports.</summary>
internal readonly record struct ServedSequence(UserTimeline Timeline, List<int> Rows, bool Truncated, int FromBatch, int FromStream);

/// <summary>
/// Reads sequences: a user's timeline (from the cache, or from the online store merged with the batch
/// history), cut with the request's <see cref="SequenceCut"/>. The online read is the same for every cut
/// — the newest <see cref="ServedSignal.Retention"/> elements, which is what the store keeps — so a
/// served sequence does not depend on whether the cache answered.
/// </summary>
internal sealed class SequenceService(IOnlineStore store, TimelineCache? cache, RenderCache? renders = null)
{
    /// <summary>Rendered columns JSON of cached timelines (only with the timeline cache: it relies on timeline identity).</summary>
    public RenderCache? Renders => cache is null ? null : renders;

    public IOnlineStore Store => store;

    public TimelineCache? Cache => cache;

    public async ValueTask<UserTimeline> TimelineAsync(ServedSignal signal, long userId, CancellationToken cancellationToken)
    {
        // Generation before history: a timeline stamped with a generation never holds an older history.
        long generation = signal.Generation;
        var history = signal.History.Current;
        if (cache?.TryGet(signal, userId, generation) is { } cached)
        {
            return cached;
        }

        long writes = signal.WritesOf(userId);
        var online = await store.ReadAsync(signal.Name, userId, new OnlineReadOptions { Limit = signal.Retention }, cancellationToken).ConfigureAwait(false);
        var timeline = UserTimeline.Build(signal, history, generation, userId, online);
        cache?.Add(signal, userId, timeline, writes);
        return timeline;
    }

    /// <summary>Timelines of several users (distinct, in the order given); the ones not cached come from one store snapshot.</summary>
    public async ValueTask<UserTimeline[]> TimelinesAsync(ServedSignal signal, IReadOnlyList<long> userIds, CancellationToken cancellationToken)
    {
        long generation = signal.Generation;
        var history = signal.History.Current;
        var result = new UserTimeline[userIds.Count];
        var missing = new List<long>();
        var writes = new Dictionary<long, long>();
        for (int i = 0; i < userIds.Count; i++)
        {
            if (cache?.TryGet(signal, userIds[i], generation) is { } cached)
            {
                result[i] = cached;
            }
            else
            {
                missing.Add(userIds[i]);
                writes[userIds[i]] = signal.WritesOf(userIds[i]);
            }
        }

        if (missing.Count > 0)
        {
            var online = await store.ReadManyAsync(signal.Name, missing, new OnlineReadOptions { Limit = signal.Retention }, cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < userIds.Count; i++)
            {
                if (result[i] is null)
                {
                    long user = userIds[i];
                    var timeline = UserTimeline.Build(signal, history, generation, user, online.TryGetValue(user, out var elements) ? elements : []);
                    cache?.Add(signal, user, timeline, writes[user]);
                    result[i] = timeline;
                }
            }
        }

        return result;
    }

    /// <summary>Cuts <paramref name="timeline"/>: the one merge (<see cref="SequenceIndex.Select"/>) under <paramref name="cut"/>.</summary>
    public static ServedSequence Cut(UserTimeline timeline, in SequenceCut cut, HashSet<string> seen)
    {
        var rows = new List<int>(Math.Min(cut.MaxLength, timeline.Rows.RowCount));
        bool truncated = timeline.Select(cut, rows, seen);
        int fromBatch = 0;
        foreach (int r in rows)
        {
            if (r < timeline.BatchCount)
            {
                fromBatch++;
            }
        }

        return new ServedSequence(timeline, rows, truncated, fromBatch, rows.Count - fromBatch);
    }
}
