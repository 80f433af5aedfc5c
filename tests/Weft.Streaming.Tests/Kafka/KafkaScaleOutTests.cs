using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Streaming.Kafka;
using Weft.Streaming.Runtime;
using Weft.Streaming.Tests.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>Several stream runtimes in one consumer group, sharing the online store and the lake (the scale-out of DESIGN.md).</summary>
public sealed class KafkaScaleOutTests(ITestOutputHelper output)
{
    private static readonly StreamOptions Options = new() { MaxBatchRecords = 100, MaxWait = TimeSpan.FromMilliseconds(20), FlushInterval = TimeSpan.FromHours(1) };

    [Fact]
    public async Task A_runtime_joining_mid_stream_takes_partitions_whose_rows_the_first_still_held_and_the_lake_holds_every_event_once()
    {
        using var world = new StreamWorld();
        await using var kafka = KafkaTestCluster.Start(output);
        await WriteKafkaConfigAsync(world, kafka);
        var lines = StreamWorld.Events(6000, seed: 21);
        // Clicks without their item (the signal dead-letters them), among every user's events.
        for (int i = 0; i < 40; i++)
        {
            lines.Insert(i * 150, $$"""{"event_id":"bad-{{i}}","user_id":{{1 + (i % 30)}},"event_type":"click","event_time":"{{Timestamps.Format(StreamWorld.Start + i * 1_000_000L)}}"}""");
        }

        await kafka.ProduceAsync(lines.Select(l => (KafkaReading.UserIdOf(l), l)).ToList());
        var config = world.Config;

        await using var hostA = await OpenHostAsync(config, kafka);
        await using var a = await StreamRuntime.CreateAsync(config, hostA.Source, hostA.Store, null, Options);
        using var guard = new CancellationTokenSource(KafkaReading.Guard);
        while (a.RecordsIn < 500)
        {
            guard.IsCancellationRequested.Should().BeFalse($"500 records were expected within {KafkaReading.Guard}, {a.RecordsIn} arrived");
            await a.StepAsync(CancellationToken.None);
        }

        // a has read about half of the stream and flushed none of it. b joins the group: the rebalance
        // hands b partitions whose records a holds, read but neither in the lake nor committed.
        await using var hostB = await OpenHostAsync(config, kafka);
        await using var b = await StreamRuntime.CreateAsync(config, hostB.Source, hostB.Store, null, Options);
        var sourceA = (KafkaEventSource)hostA.Source;
        var sourceB = (KafkaEventSource)hostB.Source;
        while (!(sourceA.AssignedPartitions.Count > 0 && sourceB.AssignedPartitions.Count > 0 && sourceA.AssignedPartitions.Count + sourceB.AssignedPartitions.Count == 4))
        {
            guard.IsCancellationRequested.Should().BeFalse("both runtimes were expected to hold partitions");
            await a.StepAsync(CancellationToken.None);
            await b.StepAsync(CancellationToken.None);
        }

        // A source shows its partitions once the handler's assignment work is done.
        a.Metrics.Value("weft_stream_rebalances_total", ("action", "revoke")).Should().BeGreaterThanOrEqualTo(1, "a flushed when b's joining revoked its partitions");
        b.Metrics.Value("weft_stream_rebalances_total", ("action", "assign")).Should().BeGreaterThanOrEqualTo(1);
        a.Metrics.Value("weft_stream_rebalance_seconds", ("action", "revoke")).Should().BeGreaterThan(0);
        a.Metrics.Value("weft_stream_rebalance_recalled_events", ("signal", "engagement")).Should().Be(0, "the lake held only a's own files: nothing to learn");
        b.Metrics.Value("weft_stream_rebalance_recalled_events", ("signal", "engagement")).Should().BeGreaterThan(0, "b read back what a had flushed");

        var reference = await world.ReferenceAsync(lines);
        var expected = Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!).Order(StringComparer.Ordinal).ToList();
        await ReadUntilAsync(guard, async () => (await world.OnlineAsync()).Count >= expected.Count, "every event online", a, b);

        await a.FlushAsync(CancellationToken.None);
        await b.FlushAsync(CancellationToken.None);

        output.WriteLine($"records read by a: {a.RecordsIn}, by b: {b.RecordsIn}, of {lines.Count}");

        // b read again records a had processed (the mock coordinator refuses commits while the group
        // rebalances, where a broker accepts those of the generation ending), but wrote none of them again.
        (a.RecordsIn + b.RecordsIn).Should().BeGreaterThanOrEqualTo(lines.Count);
        // Sorted and compared in order: BeEquivalentTo matches thousands of strings pairwise, for minutes.
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Order(StringComparer.Ordinal).Should().Equal(expected);
        (await world.StreamLakeIdsAsync()).Order(StringComparer.Ordinal).Should().Equal(expected, "the rows of a revoked partition are written to the lake by one runtime");
        var unrouted = await world.TableAsync("lake/dead_letters/_stream");
        var searches = lines.Where(l => l.Contains("\"search\"", StringComparison.Ordinal)).Select(EventIdOf).Order(StringComparer.Ordinal).ToList();
        searches.Should().NotBeEmpty();
        Enumerable.Range(0, unrouted.RowCount).Select(i => EventIdOf((string)unrouted["payload"].GetValue(i)!)).Order(StringComparer.Ordinal)
            .Should().Equal(searches, "every record no signal takes is dead-lettered once, by whichever runtime read it first");
        var dead = await world.TableAsync("lake/dead_letters/engagement");
        Enumerable.Range(0, dead.RowCount).Select(i => EventIdOf((string)dead["payload"].GetValue(i)!)).Order(StringComparer.Ordinal)
            .Should().Equal(Enumerable.Range(0, 40).Select(i => $"bad-{i}").Order(StringComparer.Ordinal), "so is every record the signal refuses");
    }

    [Fact]
    public async Task A_runtime_that_dies_between_its_lake_flush_and_its_commit_leaves_the_other_nothing_to_write_twice()
    {
        using var world = new StreamWorld();
        await using var kafka = KafkaTestCluster.Start(output);
        // Cooperative rebalancing: when a leaves, b is only given a's partitions; nothing is revoked from
        // b, so what b learns of them it learns when they are assigned.
        await WriteKafkaConfigAsync(world, kafka, """, "partition.assignment.strategy": "cooperative-sticky" """);
        var lines = StreamWorld.Events(3000, seed: 22);
        await kafka.ProduceAsync(lines.Select(l => (KafkaReading.UserIdOf(l), l)).ToList());
        var config = world.Config;

        var hostA = await OpenHostAsync(config, kafka);
        await using var hostB = await OpenHostAsync(config, kafka);
        var sourceA = (KafkaEventSource)hostA.Source;
        var sourceB = (KafkaEventSource)hostB.Source;
        using var guard = new CancellationTokenSource(KafkaReading.Guard);
        await UntilBothHoldPartitionsAsync(guard, sourceA, sourceB);

        // a's commits never reach the group: it dies after its lake flush, before its commit.
        var a = await StreamRuntime.CreateAsync(config, new CommitsLost(hostA.Source), hostA.Store, null, Options);
        await using var b = await StreamRuntime.CreateAsync(config, hostB.Source, hostB.Store, null, Options);
        await ReadUntilAsync(guard, () => Task.FromResult(a.RecordsIn + b.RecordsIn >= lines.Count), "every record", a, b);
        await a.FlushAsync(CancellationToken.None);
        long readByA = a.RecordsIn;
        readByA.Should().BeGreaterThan(0);
        await hostA.DisposeAsync(); // the consumer leaves the group; the runtime is never stopped

        while (sourceB.AssignedPartitions.Count < 4)
        {
            guard.IsCancellationRequested.Should().BeFalse("b was expected to take a's partitions");
            await b.StepAsync(CancellationToken.None);
        }

        long readByBBefore = b.RecordsIn;
        await ReadUntilAsync(guard, () => Task.FromResult(b.RecordsIn - readByBBefore >= readByA), "a's records, again", b);
        await b.FlushAsync(CancellationToken.None);

        (b.RecordsIn - readByBBefore).Should().Be(readByA, "b reads again from the group's commits every record of a's partitions");
        var reference = await world.ReferenceAsync(lines);
        var expected = Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!).Order(StringComparer.Ordinal).ToList();
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Order(StringComparer.Ordinal).Should().Equal(expected);
        (await world.StreamLakeIdsAsync()).Order(StringComparer.Ordinal).Should().Equal(expected, "b writes none of the rows a's flush left in the lake");
        var unrouted = await world.TableAsync("lake/dead_letters/_stream");
        unrouted.RowCount.Should().Be(lines.Count(l => l.Contains("\"search\"", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_runtime_taking_over_partitions_counts_what_their_previous_owner_stored_against_the_hot_user_cap_and_the_dedup_window()
    {
        using var world = new StreamWorld(hotUserCap: 40);
        await using var kafka = KafkaTestCluster.Start(output);
        await WriteKafkaConfigAsync(world, kafka, """, "partition.assignment.strategy": "cooperative-sticky" """);
        var config = world.Config;
        long hour = StreamWorld.Start + 3 * StreamWorld.Hour;
        string Save(string id, int user, int second) =>
            $$"""{"event_id":"{{id}}","user_id":{{user}},"event_type":"save","event_time":"{{Timestamps.Format(hour + second * 1_000_000L)}}","item_id":5}""";

        // Every user saves 30 times within one hour: under the cap of 40.
        var first = Enumerable.Range(0, 30).SelectMany(i => Enumerable.Range(1, 30).Select(u => Save($"u{u}-{i}", u, i))).ToList();
        await kafka.ProduceAsync(first.Select(l => (KafkaReading.UserIdOf(l), l)).ToList());
        var hostA = await OpenHostAsync(config, kafka);
        await using var hostB = await OpenHostAsync(config, kafka);
        var sourceA = (KafkaEventSource)hostA.Source;
        var sourceB = (KafkaEventSource)hostB.Source;
        using var guard = new CancellationTokenSource(KafkaReading.Guard);
        await UntilBothHoldPartitionsAsync(guard, sourceA, sourceB);

        var a = await StreamRuntime.CreateAsync(config, hostA.Source, hostA.Store, null, Options);
        await using var b = await StreamRuntime.CreateAsync(config, hostB.Source, hostB.Store, null, Options);
        await ReadUntilAsync(guard, () => Task.FromResult(a.RecordsIn + b.RecordsIn >= first.Count), "the first saves", a, b);
        await a.FlushAsync(CancellationToken.None); // stored and committed
        await b.FlushAsync(CancellationToken.None); // b's own rows: recalled again below, counted once
        a.RecordsIn.Should().BeGreaterThan(0);
        await hostA.DisposeAsync(); // a dies: its consumer leaves, its runtime is never stopped
        while (sourceB.AssignedPartitions.Count < 4)
        {
            guard.IsCancellationRequested.Should().BeFalse("b was expected to take a's partitions");
            await b.StepAsync(CancellationToken.None);
        }

        // Then 20 more saves each, within the same hour (10 over the cap), and one redelivery each of a
        // save a stored.
        var second = Enumerable.Range(30, 20).SelectMany(i => Enumerable.Range(1, 30).Select(u => Save($"u{u}-{i}", u, i)))
            .Concat(Enumerable.Range(1, 30).Select(u => Save($"u{u}-0", u, 0))).ToList();
        await kafka.ProduceAsync(second.Select(l => (KafkaReading.UserIdOf(l), l)).ToList());
        long before = b.RecordsIn;
        await ReadUntilAsync(guard, () => Task.FromResult(b.RecordsIn - before >= second.Count), "the second saves", b);
        await b.FlushAsync(CancellationToken.None);

        var reference = await world.ReferenceAsync(first.Concat(second));
        var expected = Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!).Order(StringComparer.Ordinal).ToList();
        expected.Should().HaveCount(30 * 40, "the reference caps every user at 40 saves in the hour and drops the redeliveries");
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Order(StringComparer.Ordinal).Should().Equal(expected, "b counted what a had stored of each user's hour");
        (await world.StreamLakeIdsAsync()).Order(StringComparer.Ordinal).Should().Equal(expected);
    }

    /// <summary>
    /// With the first owner's commits kept, the second reads only what came after them, and must know
    /// the stored watermark to judge the old event late; with them lost, it reads everything again, and
    /// must not record the first owner's late event in the ledger twice.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_runtime_taking_a_partition_over_judges_lateness_against_the_newest_event_time_stored(bool commitsLost)
    {
        using var world = new StreamWorld(LatePolicy.Drop);
        await using var kafka = KafkaTestCluster.Start(output, partitions: 1);
        await WriteKafkaConfigAsync(world, kafka, """, "partition.assignment.strategy": "cooperative-sticky" """);
        var config = world.Config;
        string Save(string id, long at) =>
            $$"""{"event_id":"{{id}}","user_id":7,"event_type":"save","event_time":"{{Timestamps.Format(at)}}","item_id":5}""";

        var hostA = await OpenHostAsync(config, kafka);
        var hostB = await OpenHostAsync(config, kafka);
        using var guard = new CancellationTokenSource(KafkaReading.Guard);
        while (((KafkaEventSource)hostA.Source).AssignedPartitions.Count + ((KafkaEventSource)hostB.Source).AssignedPartitions.Count < 1)
        {
            guard.IsCancellationRequested.Should().BeFalse("one consumer was expected to hold the partition");
            await Task.Delay(50);
        }

        // The one holding the partition reads events 10 hours in, stores them and dies; the other,
        // which has seen nothing, is given the partition.
        var (holder, other) = ((KafkaEventSource)hostA.Source).AssignedPartitions.Count == 1 ? (hostA, hostB) : (hostB, hostA);
        await using var survivor = other; // the holder dies below
        var first = await StreamRuntime.CreateAsync(config, commitsLost ? new CommitsLost(holder.Source) : holder.Source, holder.Store, null, Options);
        await using var second = await StreamRuntime.CreateAsync(config, other.Source, other.Store, null, Options);
        long recent = StreamWorld.Start + 10 * StreamWorld.Hour;
        await kafka.ProduceAsync([("7", Save("recent-1", recent)), ("7", Save("recent-2", recent + 1_000_000)), ("7", Save("old-0", recent - 4 * StreamWorld.Hour))]);
        await ReadUntilAsync(guard, () => Task.FromResult(first.RecordsIn >= 3), "the first saves", first);
        await first.FlushAsync(CancellationToken.None);
        await holder.DisposeAsync();
        while (((KafkaEventSource)other.Source).AssignedPartitions.Count < 1)
        {
            guard.IsCancellationRequested.Should().BeFalse("the other consumer was expected to take the partition");
            await second.StepAsync(CancellationToken.None);
        }

        // Three hours before the newest event stored: older than the watermark (one bucket, an hour).
        await kafka.ProduceAsync([("7", Save("old-1", recent - 3 * StreamWorld.Hour)), ("7", Save("recent-3", recent + 2_000_000))]);
        await ReadUntilAsync(guard, () => Task.FromResult(second.RecordsIn >= (commitsLost ? 5 : 2)), "the later saves", second);
        await second.FlushAsync(CancellationToken.None);

        (await world.OnlineAsync()).Keys.Select(k => k.Id).Order(StringComparer.Ordinal).Should().Equal("recent-1", "recent-2", "recent-3");
        var ledger = await world.TableAsync("lake/late_events/engagement");
        Enumerable.Range(0, ledger.RowCount).Select(i => (string)ledger[StandardColumns.EventId].GetValue(i)!).Order(StringComparer.Ordinal).Should().Equal("old-0", "old-1");
        (await world.StreamLakeIdsAsync()).Order(StringComparer.Ordinal).Should().Equal("recent-1", "recent-2", "recent-3");
    }

    /// <summary>A stream host on the world's weft.json: its store and a consumer of the test cluster's group.</summary>
    private static Task<StreamHost> OpenHostAsync(Weft.Engine.Configuration.WeftConfig config, KafkaTestCluster kafka) =>
        StreamHost.OpenAsync(config, "weft-stream", kafka.Logger, CancellationToken.None);

    /// <summary>Waits until the group's rebalance has given each of the two consumers some of the 4 partitions.</summary>
    private static async Task UntilBothHoldPartitionsAsync(CancellationTokenSource guard, KafkaEventSource a, KafkaEventSource b)
    {
        while (!(a.AssignedPartitions.Count > 0 && b.AssignedPartitions.Count > 0 && a.AssignedPartitions.Count + b.AssignedPartitions.Count == 4))
        {
            guard.IsCancellationRequested.Should().BeFalse("both consumers were expected to hold partitions");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Steps each runtime in turn until <paramref name="done"/> holds (checked every 20 rounds), then on
    /// until none has had a record for a second. A wait for idleness alone can end before a partition
    /// just assigned delivers its first record.
    /// </summary>
    private static async Task ReadUntilAsync(CancellationTokenSource guard, Func<Task<bool>> done, string what, params StreamRuntime[] runtimes)
    {
        for (int round = 1; ; round++)
        {
            guard.IsCancellationRequested.Should().BeFalse($"{what} was expected within {KafkaReading.Guard}");
            foreach (var runtime in runtimes)
            {
                await runtime.StepAsync(CancellationToken.None);
            }

            if (round % 20 == 0 && await done())
            {
                break;
            }
        }

        var idleSince = DateTime.UtcNow;
        while (DateTime.UtcNow - idleSince < TimeSpan.FromSeconds(1))
        {
            foreach (var runtime in runtimes)
            {
                if (await runtime.StepAsync(CancellationToken.None) > 0)
                {
                    idleSince = DateTime.UtcNow;
                }
            }
        }
    }

    private static Task WriteKafkaConfigAsync(StreamWorld world, KafkaTestCluster kafka, string moreConfig = "") =>
        File.WriteAllTextAsync(Path.Combine(world.Root, "weft.json"), $$"""
            {
              "lake": "lake",
              "signals": "signals",
              "enrichments": { "items": { "path": "items.jsonl", "format": "jsonl" } },
              "online_store": { "kind": "sqlite", "path": "online.db" },
              "source": {
                "kind": "kafka", "bootstrap_servers": "{{kafka.Cluster.BootstrapServers}}", "topic": "{{kafka.Topic}}", "group_id": "weft-stream",
                "config": { "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "reconnect.backoff.max.ms": 1000, "topic.metadata.refresh.interval.ms": 1000{{moreConfig}} }
              }
            }
            """);

    private static string EventIdOf(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("event_id").GetString()!;
    }
}
