using FluentAssertions;
using Weft.Streaming.Kafka;
using Xunit;
using Xunit.Abstractions;
using static Weft.Streaming.Tests.Kafka.KafkaReading;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>Waking librdkafka's fetchers once a full prefetch queue has been drained.</summary>
public sealed class FetcherWakeTests(ITestOutputHelper output)
{
    [Fact]
    public void A_wake_is_due_once_the_queue_has_reached_four_fifths_of_the_threshold_and_fallen_to_two_fifths()
    {
        var policy = new FetcherWake.WakePolicy(threshold: 1000);

        policy.Due(0).Should().BeFalse("an empty queue that never filled: the fetchers are fetching");
        policy.Due(799).Should().BeFalse();
        policy.Due(401).Should().BeFalse("below four fifths it never stopped the fetchers");

        policy.Due(800).Should().BeFalse("full: the reader has to drain it first");
        policy.Due(600).Should().BeFalse("not drained far enough yet");
        policy.Due(400).Should().BeTrue();
        policy.Due(100).Should().BeTrue("due until a wake starts");

        policy.Started();
        policy.Due(0).Should().BeFalse("one wake per fill: the queue has not filled again");
        policy.Due(1000).Should().BeFalse();
        policy.Due(0).Should().BeTrue();
    }

    [Fact]
    public void The_source_runs_with_a_small_prefetch_queue_unless_told_otherwise()
    {
        var options = new KafkaSourceOptions { BootstrapServers = "127.0.0.1:9", Topics = ["events"], GroupId = "g" };
        KafkaEventSource.PrefetchThreshold(options).Should().Be(40_000);
        KafkaEventSource.PrefetchThreshold(options with { Config = new Dictionary<string, string> { ["queued.min.messages"] = "5000" } }).Should().Be(5000);
    }

    [Fact]
    public async Task A_reader_that_drains_a_full_prefetch_queue_wakes_the_fetchers_and_gets_every_record_in_order()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        var options = kafka.Options("wake", channelCapacity: 8, pauseAfter: TimeSpan.FromMinutes(5));
        options = options with
        {
            // A queue of 100 messages at most, refilled by fetches of ~2 kB a partition.
            Config = new Dictionary<string, string>(options.Config) { ["queued.min.messages"] = "100", ["max.partition.fetch.bytes"] = "2048" },
        };
        var source = (KafkaEventSource)await KafkaSource.OpenAsync(options, kafka.Logger);
        await using var _ = source;
        var produced = Events(3000);
        await kafka.ProduceAsync(produced);

        // Nothing is read yet: the channel fills, then librdkafka's queue, and the fetchers stop.
        await UntilAsync(() => source.WaitingForRoom, "the channel full before anything is read");

        var records = new List<SourceRecord>();
        await ReadAllOfAsync(source, records, produced.Select(e => e.Json), "every record");

        // The wake's requests run on a pool thread: the last one may still be on its way.
        await UntilAsync(() => source.FetcherWakes > 0, "a wake of the fetchers once the full queue was drained");
        records.Should().HaveCount(produced.Count, "a wake neither drops nor repeats a record");
        ShouldBeInStrictOffsetOrderPerPartition(records, "fetching resumes where the queue left off");
        source.PauseCount.Should().Be(0);
    }
}
