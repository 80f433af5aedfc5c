using System.Globalization;
using System.Text;
using FluentAssertions;
using Weft.Streaming.Kafka;
using Xunit;
using Xunit.Abstractions;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>
/// Records name their topic and partition whether the source reads one topic (whose name it does not
/// ask Confluent.Kafka to copy out of every message) or several (whose names it does).
/// </summary>
public sealed class KafkaTopicsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_source_on_two_topics_names_each_record_by_the_topic_it_came_from()
    {
        await using var kafka = KafkaTestCluster.Start(output, partitions: 3, topic: "clicks");
        kafka.Cluster.CreateTopic("saves", 2);
        await kafka.ProduceAsync(KafkaReading.Events(60));
        using (var producer = KafkaEventProducer.Open(kafka.Cluster.BootstrapServers, "saves", null, kafka.Logger))
        {
            await producer.ProduceManyAsync(
                KafkaReading.Events(40, start: 1_000).Select(e => (long.Parse(e.Key, CultureInfo.InvariantCulture), Encoding.UTF8.GetBytes(e.Json))).ToList(),
                CancellationToken.None);
        }

        await using var source = await KafkaSource.OpenAsync(kafka.Options("two-topics") with { Topics = ["clicks", "saves"] }, kafka.Logger);
        var read = new List<SourceRecord>();
        await KafkaReading.ReadAllOfAsync(source, read, KafkaReading.Events(60).Concat(KafkaReading.Events(40, start: 1_000)).Select(e => e.Json), "both topics");

        var saves = KafkaReading.Events(40, start: 1_000).Select(e => e.Json).ToHashSet(StringComparer.Ordinal);
        foreach (var r in read)
        {
            r.Partition.Should().StartWith(saves.Contains(KafkaReading.Payload(r)) ? "saves/" : "clicks/", KafkaReading.Payload(r));
        }

        read.Select(r => r.Partition).Distinct().Should().BeSubsetOf(["clicks/0", "clicks/1", "clicks/2", "saves/0", "saves/1"]);
        read.Should().OnlyContain(r => r.TimestampMicros > 0, "the broker's timestamp is still copied");
    }

    [Fact]
    public async Task A_source_on_one_topic_names_its_records_by_that_topic()
    {
        await using var kafka = KafkaTestCluster.Start(output, partitions: 3, topic: "views");
        await kafka.ProduceAsync(KafkaReading.Events(50));

        await using var source = await kafka.OpenAsync("one-topic");
        var read = new List<SourceRecord>();
        await KafkaReading.ReadAllOfAsync(source, read, KafkaReading.Events(50).Select(e => e.Json), "the topic");

        read.Select(r => r.Partition).Distinct().Should().BeSubsetOf(["views/0", "views/1", "views/2"]).And.HaveCountGreaterThan(1);
        read.Should().OnlyContain(r => r.TimestampMicros > 0);
        read.GroupBy(r => r.Partition).Should().OnlyContain(g => g.Select(r => r.Offset).SequenceEqual(g.Select(r => r.Offset).Order()));
    }
}
