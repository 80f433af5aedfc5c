using FluentAssertions;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Online;
using Weft.Streaming.Runtime;
using Weft.Storage;
using Xunit;

namespace Weft.Streaming.Tests.Runtime;

/// <summary>
/// The late check at its edges: an event exactly at the watermark or at its sealed bucket's end, and
/// signals sharing a stream, each judging lateness by its own events and acting by its own policy.
/// </summary>
public sealed class LateEdgeTests
{
    private static string Save(string id, long time, int user = 7) =>
        $$"""{"event_id":"{{id}}","user_id":{{user}},"event_type":"save","event_time":"{{Timestamps.Format(time)}}","item_id":3}""";

    private static string Refund(string id, long time, int user = 7) =>
        $$"""{"event_id":"{{id}}","user_id":{{user}},"event_type":"refund","event_time":"{{Timestamps.Format(time)}}","amount":5}""";

    private static Dictionary<string, (long Lateness, string Reason, string Action, long ObservedAt)> Ledger(EventBatch ledger) =>
        Enumerable.Range(0, ledger.RowCount).ToDictionary(
            i => (string)ledger[StandardColumns.EventId].GetValue(i)!,
            i => ((long)ledger["lateness_us"].GetValue(i)!, (string)ledger["reason"].GetValue(i)!, (string)ledger["action"].GetValue(i)!, (long)ledger["observed_at"].GetValue(i)!));

    /// <summary>
    /// The watermark is the newest event time less one bucket; an event at it is on time, one a
    /// microsecond older is late by exactly that microsecond.
    /// </summary>
    [Fact]
    public async Task An_event_at_the_watermark_is_on_time_and_one_a_microsecond_older_is_late_by_a_microsecond()
    {
        using var world = new StreamWorld(LatePolicy.Drop);
        long newest = StreamWorld.Start + (2 * StreamWorld.Hour);
        await world.AppendAsync([Save("newest", newest), Save("at", newest - StreamWorld.Hour), Save("before", newest - StreamWorld.Hour - 1)]);

        await (await world.RunAsync()).DisposeAsync();

        var ledger = Ledger(await world.TableAsync("lake/late_events/engagement"));
        ledger.Keys.Should().Equal("before");
        ledger["before"].Lateness.Should().Be(1);
        ledger["before"].Reason.Should().Be("older than the stream watermark");
        ledger["before"].Action.Should().Be("drop");
        (await world.StreamLakeIdsAsync()).Should().BeEquivalentTo(["newest", "at"]);
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().BeEquivalentTo(["newest", "at"]);
    }

    /// <summary>
    /// A bucket the batch path sealed holds times up to its end, excluded: an event at the end is in the
    /// next bucket, on time; one a microsecond before is late, by the wall-clock time since the bucket closed.
    /// </summary>
    [Fact]
    public async Task An_event_at_a_sealed_buckets_end_is_on_time_and_one_inside_it_is_late_since_the_bucket_closed()
    {
        using var world = new StreamWorld(LatePolicy.BatchOnly);
        var table = await EnrichedLake.OpenForWritingAsync(world.Config, (await SignalEnvironment.LoadAsync(world.Config, "engagement")).Signal, CancellationToken.None);
        await table.Log.CommitAsync(DeltaTransaction.Create("WRITE").WithParameter(LakeParameters.Sealed, TimeBuckets.Format(StreamWorld.Start, TimeBucket.Hour)).Build());
        long end = StreamWorld.Start + StreamWorld.Hour;
        await world.AppendAsync([Save("at-end", end), Save("inside", end - 1)]);

        await (await world.RunAsync()).DisposeAsync();

        var ledger = Ledger(await world.TableAsync("lake/late_events/engagement"));
        ledger.Keys.Should().Equal("inside");
        ledger["inside"].Reason.Should().Be("bucket sealed by batch");
        ledger["inside"].Action.Should().Be("batch_only");
        ledger["inside"].Lateness.Should().Be(ledger["inside"].ObservedAt - end);
        (await world.StreamLakeIdsAsync()).Should().BeEquivalentTo(["at-end"]);
    }

    /// <summary>
    /// Two signals on one stream: each judges lateness by its own events' watermark and acts by its own
    /// policy, and records in its own ledger. A refund hours older than the newest save is on time for
    /// refunds; a save as old is late for engagement (drop) and recorded there alone.
    /// </summary>
    [Fact]
    public async Task Signals_sharing_a_stream_judge_lateness_by_their_own_events_and_act_by_their_own_policy()
    {
        using var world = new StreamWorld(LatePolicy.Drop, refundSignal: true);
        long t = StreamWorld.Start;
        await world.AppendAsync([
            Save("s-new", t + (3 * StreamWorld.Hour)), Refund("r-old", t), Save("s-old", t),
            Refund("r-new", t + (5 * StreamWorld.Hour)), Refund("r-late", t + StreamWorld.Hour)]);

        await (await world.RunAsync()).DisposeAsync();

        var engagement = Ledger(await world.TableAsync("lake/late_events/engagement"));
        engagement.Keys.Should().Equal("s-old");
        engagement["s-old"].Action.Should().Be("drop");
        engagement["s-old"].Lateness.Should().Be(2 * StreamWorld.Hour);
        var refunds = Ledger(await world.TableAsync("lake/late_events/refunds"));
        refunds.Keys.Should().Equal("r-late");
        refunds["r-late"].Action.Should().Be("accept");
        refunds["r-late"].Lateness.Should().Be(3 * StreamWorld.Hour);
        var refundRows = await world.TableAsync("lake/enriched/refunds");
        ((StringColumn)refundRows[StandardColumns.EventId]).Values.Should().BeEquivalentTo(["r-old", "r-new", "r-late"]);
        (await world.StreamLakeIdsAsync()).Should().BeEquivalentTo(["s-new"]);
    }

    /// <summary>
    /// A flush whose events the stages all left out (a filter here; a dead letter alike) wrote no rows,
    /// so no lake commit recorded the watermark they raised: a restart judged against the older one and
    /// stored an event a single process would have found late and dropped. A commit of no rows now
    /// records it.
    /// </summary>
    [Fact]
    public async Task A_watermark_raised_only_by_events_the_stages_left_out_is_the_one_a_restart_judges_against()
    {
        using var world = new StreamWorld(LatePolicy.Drop);
        long t = StreamWorld.Start;
        await world.AppendAsync([Save("s1", t)]);
        await (await world.RunAsync()).DisposeAsync();
        string shortClick = $$"""{"event_id":"c1","user_id":7,"event_type":"click","event_time":"{{Timestamps.Format(t + (3 * StreamWorld.Hour))}}","item_id":3,"dwell_ms":100}""";
        await world.AppendAsync([shortClick]); // the filter keeps clicks of 500 ms or more
        await (await world.RunAsync()).DisposeAsync();
        (await world.StreamLakeIdsAsync()).Should().Equal("s1");

        await world.AppendAsync([Save("s2", t + (90 * 60_000_000L))]); // before the watermark, t + 2 h
        await (await world.RunAsync()).DisposeAsync();

        (await world.StreamLakeIdsAsync()).Should().Equal(["s1"], "one process would have judged s2 late and dropped it");
        var ledger = Ledger(await world.TableAsync("lake/late_events/engagement"));
        ledger.Keys.Should().Equal("s2");
        ledger["s2"].Lateness.Should().Be(30 * 60_000_000L);
    }

    /// <summary>
    /// Policy accept amends online in event-time order: a late event inside the user's newest max_length
    /// (50) is read in its place, not at the head, and one older than all of them is trimmed away at the
    /// next trim, as if it had come on time.
    /// </summary>
    [Fact]
    public async Task An_accepted_late_event_is_placed_in_event_time_order_online_and_trimmed_like_any_other()
    {
        using var world = new StreamWorld(LatePolicy.Accept);
        long t = StreamWorld.Start;
        var lines = Enumerable.Range(0, 60).Select(i => Save($"on-{i:D2}", t + (i * 60_000_000L))).ToList(); // a minute apart
        lines.Add(Save("newest", t + (3 * StreamWorld.Hour)));
        lines.Add(Save("late-inside", t + (55 * 60_000_000L) + 30_000_000L)); // between on-55 and on-56
        lines.Add(Save("late-oldest", t - StreamWorld.Hour));
        await world.AppendAsync(lines);

        await (await world.RunAsync(options: new StreamOptions { MaxBatchRecords = 300, MaxWait = TimeSpan.FromMilliseconds(20), TrimInterval = TimeSpan.FromMilliseconds(1) })).DisposeAsync();

        Ledger(await world.TableAsync("lake/late_events/engagement")).Keys.Should().BeEquivalentTo(["late-inside", "late-oldest"]);
        await using var store = await OnlineStores.OpenSqliteAsync(System.IO.Path.Combine(world.Root, "online.db"), CancellationToken.None);
        var read = await store.ReadAsync("engagement", 7, new OnlineReadOptions { Limit = 1000 }, CancellationToken.None);
        List<string> order = ["newest", .. Enumerable.Range(56, 4).Reverse().Select(i => $"on-{i:D2}"), "late-inside", .. Enumerable.Range(0, 56).Reverse().Select(i => $"on-{i:D2}")];
        read.Select(e => e.EventId).Should().Equal(order.Take(OnlineStores.KeptPerUser(50)), "the store keeps the newest 51 (max_length + 1) in event-time order");
    }
}
