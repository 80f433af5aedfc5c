using FluentAssertions;
using Weft.Streaming.Kafka;
using Xunit;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>The librdkafka configuration the Kafka source builds from its options.</summary>
public sealed class KafkaConsumerSettingsTests
{
    private static readonly KafkaSourceOptions Options = new() { BootstrapServers = "127.0.0.1:9092", Topics = ["events"], GroupId = "g" };

    private static Dictionary<string, string> Settings(KafkaSourceOptions options) =>
        KafkaEventSource.ConsumerSettings(options);

    [Fact]
    public void The_prefetch_queue_is_kept_small_by_count_with_a_large_byte_cap_unless_the_config_names_them()
    {
        var settings = Settings(Options);
        int.Parse(settings["queued.min.messages"], System.Globalization.CultureInfo.InvariantCulture).Should().BeLessThan(100_000,
            "under librdkafka's default, so prefetched messages are read while still in the caches (the fetchers are woken when it drains)");
        int.Parse(settings["queued.max.messages.kbytes"], System.Globalization.CultureInfo.InvariantCulture).Should().BeGreaterThan(65_536, "the count, not the bytes, bounds the queue of small events");

        var own = Settings(Options with { Config = new Dictionary<string, string> { ["queued.min.messages"] = "1000", ["fetch.max.bytes"] = "1048576" } });
        own["queued.min.messages"].Should().Be("1000", "the deployment's own setting wins");
        own["queued.max.messages.kbytes"].Should().Be(settings["queued.max.messages.kbytes"]);
        own["fetch.max.bytes"].Should().Be("1048576");
    }

    [Fact]
    public void The_source_manages_commits_offsets_and_what_is_copied_out_of_each_message()
    {
        var one = Settings(Options with { Config = new Dictionary<string, string> { ["session.timeout.ms"] = "6000" } });
        one["enable.auto.commit"].Should().BeEquivalentTo("false");
        one["enable.auto.offset.store"].Should().BeEquivalentTo("false");
        one["group.id"].Should().Be("g");
        one["bootstrap.servers"].Should().Be("127.0.0.1:9092");
        one["auto.offset.reset"].Should().BeEquivalentTo("earliest");
        one["session.timeout.ms"].Should().Be("6000");
        one["dotnet.consumer.consume.result.fields"].Should().Be("timestamp");

        Settings(Options with { Topics = ["a", "b"] })["dotnet.consumer.consume.result.fields"].Should().Be("topic,timestamp");
    }
}
