using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary>
/// Point-in-time cuts on their edges, against a plain model of the documented semantics: events and
/// enrichment versions placed a microsecond either side of (and exactly on) a label time, the lookback's
/// start and the ingest-time cut; ties in event_time; repeated deliveries; labels repeated for one user
/// and time. Random times (the other differential tests) almost never land on an edge.
/// </summary>
public sealed class PointInTimeEdgeTests
{
    private const long Hour = BatchWorld.Hour;
    private const long Lookback = 2 * BatchWorld.Day;
    private const int MaxLength = 5;
    private static readonly long L = BatchWorld.Start + (2 * BatchWorld.Day) + (12 * Hour);

    /// <summary>Offsets from a label time that sit on the edges a cut draws.</summary>
    private static readonly long[] EventOffsets = [-Lookback - 1, -Lookback, -Lookback + 1, -Hour, -2, -1, 0, 1];

    private static readonly long[] IngestOffsets = [-1, 0, 1, 5 * Hour];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task Training_examples_and_snapshots_on_the_edges_equal_the_documented_cut(int seed)
    {
        var rng = new Random(seed);
        using var world = await BatchWorld.CreateAsync(seed, events: 0, write: false, maxLength: MaxLength);
        world.Items.Clear();
        long[] labelTimes = [L, L + 1, L - 1, L + Hour];
        for (long user = 1; user <= 4; user++)
        {
            for (int i = 0; i < 14; i++)
            {
                long anchor = labelTimes[rng.Next(labelTimes.Length)];
                long time = anchor + EventOffsets[rng.Next(EventOffsets.Length)];
                long ingest = time + IngestOffsets[rng.Next(IngestOffsets.Length)];
                // Ties in event time (the event_id breaks them), and ids whose order differs from their arrival.
                if (i > 0 && rng.Next(4) == 0)
                {
                    time = world.Events[^1].EventTime;
                    ingest = Math.Max(ingest, time - 1);
                }

                var e = new RawEvent($"u{user}-{rng.Next(100):00}-{i:00}", user, "save", time, ingest, rng.Next(1, 5), null);
                world.Events.Add(e);
                if (rng.Next(5) == 0)
                {
                    world.Events.Add(e with { IngestTime = ingest + (rng.Next(1, 3) * (rng.Next(2) == 0 ? 1 : Hour)) }); // a repeated delivery, later
                }
            }
        }

        // Item versions on the label times' edges, one version time per item (a tie has no documented winner).
        for (long item = 1; item <= 4; item++)
        {
            var times = new HashSet<long> { BatchWorld.Start - BatchWorld.Day };
            for (int v = 0; v < 3; v++)
            {
                times.Add(labelTimes[rng.Next(labelTimes.Length)] + rng.Next(-1, 2));
            }

            foreach (long at in times.Order())
            {
                world.Items.Add(new ItemVersion(item, at, $"i{item}@{at - L}", [item, at - L, 0, 0]));
            }
        }

        await world.WriteAsync();
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        long from = BatchWorld.Start, to = BatchWorld.Start + (4 * BatchWorld.Day);
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", from, to), null, CancellationToken.None);
        var lake = await EnrichedLake.OpenAsync(world.Config.EnrichedTable("engagement"), env.Definition, CancellationToken.None);
        var rows = await lake.ReadAsync(long.MinValue / 2, long.MaxValue / 2, CancellationToken.None);

        // Labels: every user at every label time, some twice, and a user with no events.
        var labels = new List<(long User, long Time)>();
        foreach (long t in labelTimes)
        {
            for (long user = 1; user <= 5; user++)
            {
                labels.Add((user, t));
                if (rng.Next(3) == 0)
                {
                    labels.Add((user, t));
                }
            }
        }

        var keys = new EventBatch([new FieldDefinition("i", WeftType.Int64)], [new PrimitiveColumn<long>(WeftType.Int64, [.. labels.Select((_, i) => (long)i)])]);
        foreach (bool asServed in new[] { false, true })
        {
            var set = SequenceBuilder.ForLabels(rows, env.Definition, keys, [.. labels.Select(l => l.User)], [.. labels.Select(l => l.Time)], asServed, env.Enrichments);
            Enumerable.Range(0, labels.Count).Count(i => set.Length(i) > 0).Should().BeGreaterThan(labels.Count / 2, "most labels must see a sequence, or the edges prove little");
            for (int i = 0; i < labels.Count; i++)
            {
                var (user, t) = labels[i];
                var expected = Model(world, user, asOf: t - 1, fromExclusive: t - Lookback, knownAt: asServed ? t : long.MaxValue, enrichmentsAt: asServed ? t : long.MaxValue);
                Elements(set, i).Should().Equal(expected.Elements, $"{(asServed ? "as-served" : "corrected")} label {i}: user {user} at L{t - L:+0;-0;+0}");
                set.Truncated[i].Should().Be(expected.Truncated, $"label {i}'s truncation flag");
            }
        }

        // Snapshots at as_of = L, known at each edge of it, from the lake and straight from the archive.
        foreach (long knownAt in new[] { L - 1, L, L + 1, long.MaxValue })
        {
            var cut = SequenceCut.For(env.Definition, L, knownAt);
            var fromLake = SequenceBuilder.Snapshot(rows, env.Definition, cut, knownAt == long.MaxValue ? null : env.Enrichments);
            var (fromArchive, _) = await SequenceBuild.BuildAsync(env, new SequenceBuildRequest(from, L + 1, cut) { EnrichmentsKnownAtMicros = knownAt, Parallelism = 1 }, null, CancellationToken.None);
            foreach (var snapshot in new[] { fromLake, fromArchive })
            {
                var users = Enumerable.Range(0, snapshot.RowCount).Select(r => (long)snapshot.Keys[StandardColumns.UserId].GetValue(r)!).ToList();
                var expectedUsers = Enumerable.Range(1, 5).Select(u => (long)u).Where(u => Model(world, u, L, L - Lookback, knownAt, knownAt).Elements.Count > 0).ToList();
                users.Should().Equal(expectedUsers, $"users with a sequence known at L{(knownAt == long.MaxValue ? "+∞" : (knownAt - L).ToString("+0;-0;+0", System.Globalization.CultureInfo.InvariantCulture))}");
                for (int r = 0; r < snapshot.RowCount; r++)
                {
                    var expected = Model(world, users[r], L, L - Lookback, knownAt, knownAt);
                    Elements(snapshot, r).Should().Equal(expected.Elements, $"user {users[r]}'s snapshot known at {knownAt}");
                    snapshot.Truncated[r].Should().Be(expected.Truncated);
                }
            }
        }
    }

    /// <summary>
    /// The documented cut over the raw events: the first delivery of each event_id; event_time in
    /// (<paramref name="fromExclusive"/>, <paramref name="asOf"/>]; ingest_time ≤ <paramref name="knownAt"/>;
    /// newest first, event_id ascending on a tie; the first max_length; each element's item at its
    /// latest version with version_time ≤ <paramref name="enrichmentsAt"/>.
    /// </summary>
    private static (List<string> Elements, bool Truncated) Model(BatchWorld world, long user, long asOf, long fromExclusive, long knownAt, long enrichmentsAt)
    {
        var kept = world.Events.GroupBy(e => e.EventId).Select(g => g.OrderBy(e => e.IngestTime).First())
            .Where(e => e.UserId == user && e.EventTime <= asOf && e.EventTime > fromExclusive && e.IngestTime <= knownAt)
            .OrderByDescending(e => e.EventTime).ThenBy(e => e.EventId, StringComparer.Ordinal).ToList();
        var elements = kept.Take(MaxLength).Select(e =>
        {
            var version = world.Items.Where(v => v.ItemId == e.ItemId && v.VersionTime <= enrichmentsAt).MaxBy(v => v.VersionTime);
            return $"{e.EventId}@{e.EventTime - L}:{version?.Category ?? "-"}";
        }).ToList();
        return (elements, kept.Count > MaxLength);
    }

    private static List<string> Elements(SequenceTable table, int row) =>
        [.. Enumerable.Range(table.Offsets[row], table.Length(row)).Select(k =>
            $"{table.Elements[StandardColumns.EventId].GetValue(k)}@{(long)table.Elements[StandardColumns.EventTime].GetValue(k)! - L}:{table.Elements["category"].GetValue(k) ?? "-"}")];
}
