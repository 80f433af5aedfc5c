using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>
/// Served sequences against a reference computed here from the raw events alone (not from the merge,
/// the index or the snapshot code): the signal's filter, one copy per event_id known from its first
/// delivery, the window (as_of − lookback, as_of], ingest_time ≤ known_at, event_time descending then
/// event_id ordinal, at most limit. Many cuts are read one after another against the same users, so
/// cached timelines and their remembered last cut are exercised as a client would.
/// </summary>
public sealed class ReferenceSequenceTests
{
    private sealed record Cut(long AsOf, long? KnownAt, long? LookbackMs, int? Limit)
    {
        public string Query()
        {
            var q = new List<string> { "as_of=" + Uri.EscapeDataString(Timestamps.Format(AsOf)) };
            if (KnownAt is { } k)
            {
                q.Add("known_at=" + Uri.EscapeDataString(Timestamps.Format(k)));
            }

            if (LookbackMs is { } l)
            {
                q.Add("lookback=" + l.ToString(CultureInfo.InvariantCulture) + "ms");
            }

            if (Limit is { } n)
            {
                q.Add("limit=" + n.ToString(CultureInfo.InvariantCulture));
            }

            return string.Join('&', q);
        }
    }

    private static bool InSignal(RawEvent e) => e.EventType == "save" || (e.EventType == "click" && (e.DwellMs is null || e.DwellMs >= 500));

    /// <summary>The reference sequence of <paramref name="user"/>: event ids newest first, and whether the limit cut one.</summary>
    private static (List<(string Id, long Time)> Events, bool Truncated) Reference(IEnumerable<RawEvent> events, long user, Cut cut, int maxLength, long lookbackMs)
    {
        long lookback = (cut.LookbackMs ?? lookbackMs) * 1000;
        long knownAt = cut.KnownAt ?? cut.AsOf;
        int limit = cut.Limit ?? maxLength;
        var window = events.Where(e => e.UserId == user && InSignal(e))
            .GroupBy(e => e.EventId, StringComparer.Ordinal)
            .Select(g => g.OrderBy(e => e.IngestTime).First())
            .Where(e => e.EventTime > cut.AsOf - lookback && e.EventTime <= cut.AsOf && e.IngestTime <= knownAt)
            .OrderByDescending(e => e.EventTime).ThenBy(e => e.EventId, StringComparer.Ordinal)
            .Select(e => (e.EventId, e.EventTime))
            .ToList();
        return (window.Take(limit).ToList(), window.Count > limit);
    }

    private static void ShouldMatch(JsonElement served, (List<(string Id, long Time)> Events, bool Truncated) expected, string because)
    {
        var columns = served.GetProperty("columns");
        columns.GetProperty("event_id").EnumerateArray().Select(e => e.GetString()).Should().Equal(expected.Events.Select(e => e.Id), because);
        columns.GetProperty("event_time").EnumerateArray().Select(e => e.GetString()).Should().Equal(expected.Events.Select(e => Timestamps.Format(e.Time)), because);
        served.GetProperty("length").GetInt32().Should().Be(expected.Events.Count, because);
        var p = served.GetProperty("provenance");
        p.GetProperty("truncated").GetBoolean().Should().Be(expected.Truncated, because);
        (p.GetProperty("from_batch").GetInt32() + p.GetProperty("from_stream").GetInt32()).Should().Be(expected.Events.Count, because);
    }

    private static List<Cut> Cuts(int seed, int count)
    {
        var rng = new Random(seed);
        var cuts = new List<Cut>();
        for (int i = 0; i < count; i++)
        {
            long asOf = rng.Next(4) == 0 ? ServingWorld.Now : ServingWorld.Start + (long)(rng.NextDouble() * 3 * ServingWorld.Day);
            long? knownAt = rng.Next(3) == 0 ? asOf - (long)(rng.NextDouble() * 12 * ServingWorld.Hour) : rng.Next(5) == 0 ? ServingWorld.Now : null;
            long? lookback = rng.Next(3) switch { 0 => null, 1 => rng.Next(1, 72) * 3_600_000L, _ => rng.NextInt64(1, 7 * 86_400_000L) };
            int? limit = rng.Next(3) == 0 ? null : rng.Next(1, 80);
            cuts.Add(new Cut(asOf, knownAt, lookback, limit));
            if (rng.Next(4) == 0)
            {
                cuts.Add(cuts[^1] with { AsOf = cuts[^1].AsOf + rng.Next(1, 3) }); // as "now" moves by a µs or two between reads
            }
        }

        return cuts;
    }

    [Fact]
    public async Task Sequences_from_the_stream_alone_and_after_a_batch_run_equal_the_reference_for_many_cuts()
    {
        const int maxLength = 200; // more than any user's events: the store keeps them all
        await using var world = new ServingWorld(maxLength: maxLength);
        var events = ServingWorld.Events(700, seed: 41);
        var onTime = events.Where(e => e.IngestTime - e.EventTime < ServingWorld.Hour).OrderBy(e => e.IngestTime).ToList();
        await world.StreamAsync(onTime);
        await world.StartAsync();
        using var client = world.Client();
        long lookbackMs = (long)world.Signal.Lookback.TotalMilliseconds;

        async Task CheckAsync(IReadOnlyList<RawEvent> known, string phase, int seed)
        {
            foreach (var cut in Cuts(seed, 40))
            {
                for (long user = 1; user <= 12; user++)
                {
                    var response = await client.GetAsync($"v1/signals/engagement/users/{user}/sequence?{cut.Query()}");
                    response.StatusCode.Should().Be(HttpStatusCode.OK, cut.Query());
                    ShouldMatch(await ServingWorld.JsonAsync(response), Reference(known, user, cut, maxLength, lookbackMs), $"{phase}, user {user}, {cut.Query()}");
                }

                var body = new Dictionary<string, object> { ["user_ids"] = Enumerable.Range(1, 12).Reverse().ToArray(), ["as_of"] = Timestamps.Format(cut.AsOf) };
                if (cut.KnownAt is { } k)
                {
                    body["known_at"] = Timestamps.Format(k);
                }

                if (cut.LookbackMs is { } l)
                {
                    body["lookback"] = l.ToString(CultureInfo.InvariantCulture) + "ms";
                }

                if (cut.Limit is { } n)
                {
                    body["limit"] = n;
                }

                var many = await ServingWorld.JsonAsync(await client.PostAsJsonAsync("v1/signals/engagement/sequences", body));
                foreach (var s in many.GetProperty("sequences").EnumerateArray())
                {
                    long user = s.GetProperty("user_id").GetInt64();
                    ShouldMatch(s, Reference(known, user, cut, maxLength, lookbackMs), $"{phase}, multi-get, user {user}, {cut.Query()}");
                }
            }
        }

        await CheckAsync(onTime, "stream only", seed: 1);

        // Every event reaches the archive; the batch run seals all but the last 6 hours, and events
        // arriving after it fill the open buckets from the stream.
        await world.ArchiveAsync(events);
        await world.BatchAsync();
        var rng = new Random(42);
        var live = Enumerable.Range(0, 30).Select(i => new RawEvent($"live-{i}", rng.Next(1, 13), "save", ServingWorld.Now - rng.Next(1, 5 * 3600) * 1_000_000L, ServingWorld.Now, rng.Next(1, 41), null)).ToList();
        await world.Server.RefreshHistoryAsync(CancellationToken.None);
        var posted = await client.PostAsync("v1/events", new StringContent("[" + string.Join(",", live.Select(e => e.Json())) + "]", System.Text.Encoding.UTF8, "application/json"));
        posted.StatusCode.Should().Be(HttpStatusCode.Accepted);
        for (int attempt = 0; attempt < 200; attempt++)
        {
            var all = await ServingWorld.JsonAsync(await client.PostAsJsonAsync("v1/signals/engagement/sequences", new { user_ids = Enumerable.Range(1, 12).ToArray() }));
            if (all.GetProperty("sequences").EnumerateArray().Sum(s => s.GetProperty("columns").GetProperty("event_id").EnumerateArray().Count(e => e.GetString()!.StartsWith("live-", StringComparison.Ordinal))) == live.Count)
            {
                break;
            }

            await Task.Delay(50);
        }

        await CheckAsync([.. events, .. live], "after batch", seed: 2);
    }

    /// <summary>
    /// The window's edges, exactly: an event at as_of − lookback is out, one at as_of is in, one ingested
    /// at known_at is known; events tied in event_time come in event_id ordinal order. Each from the
    /// stream (open buckets) and from the batch history (sealed buckets).
    /// </summary>
    [Fact]
    public async Task The_windows_edges_are_exclusive_below_and_inclusive_at_as_of_and_known_at_from_either_path()
    {
        await using var world = new ServingWorld();
        long sealedTime = ServingWorld.Now - (2 * ServingWorld.Day);
        long openTime = ServingWorld.Now - (2 * ServingWorld.Hour);
        var events = new List<RawEvent>();
        foreach (var (user, t) in new[] { (801L, sealedTime), (802L, openTime) })
        {
            events.Add(new RawEvent($"edge-{user}-low", user, "save", t - ServingWorld.Hour, t - ServingWorld.Hour + 5, 1, null));
            events.Add(new RawEvent($"edge-{user}-at", user, "save", t, t + 7, 2, null));
            foreach (var id in new[] { "b", "B", "a", "aa", "\u00e9", "Z" })
            {
                events.Add(new RawEvent($"tie-{user}-{id}", user, "save", t - 1000, t - 1000 + 3, 3, null));
            }
        }

        await world.ArchiveAsync(events);
        await world.BatchAsync();
        await world.StreamAsync(events.Where(e => e.UserId == 802)); // the open buckets' events reach the stream too
        await world.StartAsync();
        using var client = world.Client();
        foreach (var (user, t) in new[] { (801L, sealedTime), (802L, openTime) })
        {
            foreach (var cut in new[]
            {
                new Cut(t, ServingWorld.Now, 3_600_000, null),      // as_of − lookback is the low event's time: out; the one at as_of: in
                new Cut(t - 1, ServingWorld.Now, 3_600_000, null),  // a µs before: the event at t is out
                new Cut(t, t + 7, 3_600_000, null),                 // known_at is the at-event's ingest: known
                new Cut(t, t + 6, 3_600_000, null),                 // a µs before its ingest: not yet
                new Cut(t, ServingWorld.Now, 3_600_000, 3),         // the limit cuts inside the tie
            })
            {
                var served = await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{user}/sequence?{cut.Query()}"));
                ShouldMatch(served, Reference(events, user, cut, 20, (long)world.Signal.Lookback.TotalMilliseconds), $"user {user}, {cut.Query()}");
            }
        }
    }
}
