using System.Globalization;
using System.Text.RegularExpressions;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Streaming.Kafka;
using Weft.Streaming.Runtime;
using Weft.Streaming.Tests.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>
/// A lake written from a Kafka topic, then a topic of the same name whose offsets started over (another
/// cluster's, or the topic deleted and created again): its records up to the lake's offsets would be
/// taken for replays, so the stream stops instead (docs/kafka.md, "When a topic's offsets start over").
/// </summary>
public sealed partial class KafkaOffsetsStartedOverTests(ITestOutputHelper output)
{
    private static readonly StreamOptions Options = new() { MaxBatchRecords = 300, MaxWait = TimeSpan.FromMilliseconds(100) };

    /// <summary>When the source learns the partitions' ends.</summary>
    public enum Ends
    {
        /// <summary>The runtime is open when the group assigns the partitions: they are checked in the assignment.</summary>
        AtAssignment,

        /// <summary>
        /// The group assigns the partitions, and the source buffers their records, before the runtime opens
        /// (a lake slower to load than a group to join): the runtime's first word of what it holds checks them.
        /// </summary>
        AssignedBeforeTheRuntime,

        /// <summary>
        /// One partition's leader is down when the group assigns them, so the request for the ends times
        /// out: each partition fetched is checked at its first record, against the fetch's watermark.
        /// </summary>
        NotAnswered,
    }

    [Theory]
    [InlineData(Ends.AtAssignment)]
    [InlineData(Ends.AssignedBeforeTheRuntime)]
    [InlineData(Ends.NotAnswered)]
    public async Task A_topic_of_the_same_name_on_a_new_cluster_stops_the_stream_naming_the_partition_and_changes_nothing_stored(Ends ends)
    {
        using var world = new StreamWorld();
        var first = StreamWorld.Events(600, seed: 71);
        await using (var old = KafkaTestCluster.Start(output))
        {
            await old.ProduceAsync(Keyed(first));
            await PointAtAsync(world, old, "weft-stream");
            await StreamAsync(world, first.Count);
        }

        var lakeBefore = LakeFiles(world);
        var onlineBefore = Online(await world.OnlineAsync());
        var streamRowsBefore = (await world.StreamLakeIdsAsync()).Count;
        streamRowsBefore.Should().BePositive();

        // The same users, so the same partitions, each with far fewer records than the lake holds of it.
        await using var recreated = KafkaTestCluster.Start(output);
        var second = StreamWorld.Events(40, seed: 72, baseTime: StreamWorld.Start + StreamWorld.Hour);
        await recreated.ProduceAsync(Keyed(second));
        await PointAtAsync(world, recreated, "weft-stream");
        if (ends == Ends.NotAnswered)
        {
            for (int partition = 0; partition < 4; partition++)
            {
                recreated.Cluster.SetPartitionLeader(recreated.Topic, partition, brokerId: partition == 3 ? 3 : 1);
            }

            recreated.Cluster.SetGroupCoordinator("weft-stream", brokerId: 2);
            recreated.Cluster.SetBrokerDown(3);
        }

        KafkaSourceException? refused = null;
        long recordsIn;
        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", recreated.Logger, CancellationToken.None))
        {
            if (ends == Ends.AssignedBeforeTheRuntime)
            {
                var source = (KafkaEventSource)host.Source;
                using var buffered = new CancellationTokenSource(KafkaReading.Guard);
                while (source.Backlog().Count < 4) // a partition is in the backlog once a record of it arrived
                {
                    await Task.Delay(20, buffered.Token);
                }
            }

            await using var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, host.Store, null, Options);
            using var guard = new CancellationTokenSource(KafkaReading.Guard);
            try
            {
                // Without the check the stream reads the new topic's records (as replays) and goes on.
                while (runtime.RecordsIn == 0)
                {
                    guard.IsCancellationRequested.Should().BeFalse($"the stream was expected to stop, or to read the new topic's records, within {KafkaReading.Guard}");
                    await runtime.StepAsync(CancellationToken.None);
                }
            }
            catch (KafkaSourceException e)
            {
                refused = e;
            }

            recordsIn = runtime.RecordsIn;
        }

        refused.Should().NotBeNull("the lake holds every partition past the new topic's end");
        output.WriteLine(refused!.Message);
        refused.ErrorCode.Should().Be("OffsetsStartedOver");
        refused.IsTransient.Should().BeFalse();
        var named = RefusedPartition().Matches(refused.Message);
        named.Should().NotBeEmpty($"the message names each partition refused, its end and the lake's offset: {refused.Message}");
        foreach (Match partition in named)
        {
            long end = long.Parse(partition.Groups["end"].Value, CultureInfo.InvariantCulture);
            long held = long.Parse(partition.Groups["held"].Value, CultureInfo.InvariantCulture);
            end.Should().BeInRange(0, second.Count);
            held.Should().BeGreaterThanOrEqualTo(end);
        }

        named.Select(m => m.Groups["partition"].Value).Should().OnlyHaveUniqueItems();
        refused.Message.Should().Contain($"refused {named.Count} partition{(named.Count == 1 ? "" : "s")} whose offsets started over: ");
        if (ends != Ends.NotAnswered)
        {
            // Every partition's end came in one answer, and the lake holds each past it: one error names all four.
            named.Select(m => m.Groups["partition"].Value).Should().BeEquivalentTo(["events/0", "events/1", "events/2", "events/3"]);
        }

        refused.Message.Should().Contain("another name").And.Contain("new lake");
        recordsIn.Should().Be(0, "no record of the new topic reaches the runtime");

        LakeFiles(world).Should().Equal(lakeBefore, "no table was written");
        (await world.StreamLakeIdsAsync()).Should().HaveCount(streamRowsBefore);
        Online(await world.OnlineAsync()).Should().Equal(onlineBefore, "nothing reached the online store");
    }

    /// <summary>
    /// No leader gives a partition's end (every ListOffsets request refused), and the watermarks the fetches
    /// brought are at or below what the lake holds. A fetch's watermark may lag (a leader just elected, a
    /// follower fetched from), so it alone does not refuse: the partitions are read unchecked, with a warning,
    /// since a healthy stream stopped costs more than the rare topic this lets through.
    /// </summary>
    [Fact]
    public async Task A_fetched_watermark_alone_does_not_refuse_a_partition_whose_leader_gives_no_end()
    {
        using var world = new StreamWorld();
        var first = StreamWorld.Events(600, seed: 73);
        await using (var old = KafkaTestCluster.Start(output))
        {
            await old.ProduceAsync(Keyed(first));
            await PointAtAsync(world, old, "weft-stream");
            await StreamAsync(world, first.Count);
        }

        await using var recreated = KafkaTestCluster.Start(output);
        var second = StreamWorld.Events(40, seed: 74, baseTime: StreamWorld.Start + StreamWorld.Hour);
        await recreated.ProduceAsync(Keyed(second));
        await PointAtAsync(world, recreated, "weft-stream");
        await using var host = await StreamHost.OpenAsync(world.Config, "weft-stream", recreated.Logger, CancellationToken.None);
        var source = (KafkaEventSource)host.Source;
        using (var buffered = new CancellationTokenSource(KafkaReading.Guard))
        {
            while (source.Backlog().Count < 4) // every partition fetched under this assignment, before the runtime opens
            {
                await Task.Delay(20, buffered.Token);
            }
        }

        recreated.Cluster.PushRequestErrors(apiKey: 2, count: 100, error: 29); // ListOffsets: TOPIC_AUTHORIZATION_FAILED
        await using var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, host.Store, null, Options);
        using var guard = new CancellationTokenSource(KafkaReading.Guard);
        while (runtime.RecordsIn < second.Count)
        {
            guard.IsCancellationRequested.Should().BeFalse($"{second.Count} records were expected within {KafkaReading.Guard}, {runtime.RecordsIn} arrived");
            await runtime.StepAsync(CancellationToken.None);
        }

        runtime.RecordsIn.Should().Be(second.Count, "every partition was read, none refused");
    }

    [Fact]
    public async Task A_restart_on_the_same_topic_and_a_new_group_replaying_it_from_offset_0_are_not_refused()
    {
        using var world = new StreamWorld();
        await using var kafka = KafkaTestCluster.Start(output);
        var first = StreamWorld.Events(300, seed: 81);
        await kafka.ProduceAsync(Keyed(first));
        await PointAtAsync(world, kafka, "weft-stream");
        await StreamAsync(world, first.Count);

        // New events of one user: its partition grows, the others still end right after the offset the
        // lake holds of them (their high watermark is that offset + 1), checked at the boundary.
        var more = StreamWorld.Events(200, seed: 82, baseTime: StreamWorld.Start + StreamWorld.Hour)
            .Where(l => KafkaReading.UserIdOf(l) == "7").ToList();
        more.Should().NotBeEmpty();
        await kafka.ProduceAsync(Keyed(more));
        await StreamAsync(world, more.Count);

        var expected = ((StringColumn)(await world.ReferenceAsync([.. first, .. more]))[StandardColumns.EventId]).Values.Select(v => v!).ToList();
        var ids = await world.StreamLakeIdsAsync();
        ids.Should().BeEquivalentTo(expected, "the restart read the new events into the lake");

        // A group of its own (weft stream --signal, or a new group_id) reads the topic again from offset 0:
        // a replay, whose records the lake holds already.
        await PointAtAsync(world, kafka, "weft-replay");
        await StreamAsync(world, first.Count + more.Count);
        (await world.StreamLakeIdsAsync()).Should().BeEquivalentTo(expected, "a replay writes no row twice");
    }

    [GeneratedRegex(@"(?<partition>events/\d+) ends at offset (?<end>\d+) \(its high watermark\), but the stream's tables hold its records through offset (?<held>\d+)[;.]")]
    private static partial Regex RefusedPartition();

    private static List<(string Key, string Json)> Keyed(IEnumerable<string> lines) => [.. lines.Select(l => (KafkaReading.UserIdOf(l), l))];

    private static Task PointAtAsync(StreamWorld world, KafkaTestCluster kafka, string group) =>
        File.WriteAllTextAsync(Path.Combine(world.Root, "weft.json"), $$"""
            {
              "lake": "lake",
              "signals": "signals",
              "enrichments": { "items": { "path": "items.jsonl", "format": "jsonl" } },
              "online_store": { "kind": "sqlite", "path": "online.db" },
              "source": {
                "kind": "kafka", "bootstrap_servers": "{{kafka.Cluster.BootstrapServers}}", "topic": "{{kafka.Topic}}", "group_id": "{{group}}",
                "config": { "session.timeout.ms": 6000, "heartbeat.interval.ms": 500 }
              }
            }
            """);

    /// <summary>
    /// Streams until at least <paramref name="count"/> records were read and the source has had nothing
    /// for a few reads (a commit the mock coordinator refused replays more), then flushes: lake, online
    /// store, offsets committed.
    /// </summary>
    private static async Task StreamAsync(StreamWorld world, int count)
    {
        await using var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None);
        await using var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, host.Store, null, Options);
        using var guard = new CancellationTokenSource(KafkaReading.Guard);
        int empty = 0;
        while (runtime.RecordsIn < count || empty < 3)
        {
            guard.IsCancellationRequested.Should().BeFalse($"{count} records were expected within {KafkaReading.Guard}, {runtime.RecordsIn} arrived");
            empty = await runtime.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
        }

        await runtime.FlushAsync(CancellationToken.None);
    }

    /// <summary>Every file of the lake (the Delta logs included) with its length.</summary>
    private static List<string> LakeFiles(StreamWorld world)
    {
        var lake = Path.Combine(world.Root, "lake");
        return [.. Directory.EnumerateFiles(lake, "*", SearchOption.AllDirectories)
            .Select(f => $"{Path.GetRelativePath(lake, f)} {new FileInfo(f).Length}")
            .Order(StringComparer.Ordinal)];
    }

    private static List<string> Online(Dictionary<(long User, string Id), byte[]> elements) =>
        [.. elements.Select(e => $"{e.Key.User} {e.Key.Id} {Convert.ToBase64String(e.Value)}").Order(StringComparer.Ordinal)];
}
