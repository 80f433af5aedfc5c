using System.Text;
using Confluent.Kafka;
using FluentAssertions;
using Weft.Streaming.Kafka;
using Xunit;
using Xunit.Abstractions;
using static Weft.Streaming.Tests.Kafka.KafkaReading;
using Weft.Testing;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>The queue Weft's Kafka source drains, on a Confluent.Kafka consumer of its own.</summary>
public sealed class FetchedMessageQueueTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Attached_partitions_deliver_every_message_through_the_queue_with_its_key_value_offset_and_timestamp()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        var produced = Events(300);
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await kafka.ProduceAsync(produced);
        var after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        FetchedMessageQueue? fetched = null;
        var config = new ConsumerConfig(kafka.Options("direct").Config.ToDictionary())
        {
            BootstrapServers = kafka.Cluster.BootstrapServers,
            GroupId = "direct",
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        };
        using var consumer = new ConsumerBuilder<byte[], byte[]>(config)
            .SetPartitionsAssignedHandler((_, partitions) => partitions.ForEach(tp => fetched!.Attach(tp.Topic, tp.Partition.Value)))
            .Build();
        fetched = FetchedMessageQueue.Open(consumer, capacity: 64);
        consumer.Subscribe(kafka.Topic);

        var read = new List<(int Partition, long Offset, string Key, string Value, long? Timestamp)>();
        var largestTake = 0;
        using (var guard = new CancellationTokenSource(Guard))
        {
            while (read.Count < produced.Count)
            {
                guard.IsCancellationRequested.Should().BeFalse($"300 messages were expected within {Guard} ({read.Count} read)");
                consumer.Consume(0).Should().BeNull("rebalances are served here, but messages of attached partitions go to the queue");
                var messages = fetched.Take(timeoutMs: 100, max: 1_000);
                largestTake = Math.Max(largestTake, messages.Length);
                foreach (var pointer in messages)
                {
                    ref readonly var message = ref FetchedMessageQueue.Read(pointer);
                    message.Error.Should().Be(0);
                    Encoding.UTF8.GetString(message.TopicName).Should().Be(kafka.Topic);
                    read.Add((message.Partition, message.Offset, Encoding.UTF8.GetString(message.KeyBytes), Encoding.UTF8.GetString(message.Value), FetchedMessageQueue.Message.TimestampMs(pointer)));
                }

                fetched.Release();
            }
        }

        read.Select(m => (m.Key, m.Value)).Should().HaveSameItemsAs(produced, "each message once, its key and value as produced");
        largestTake.Should().BeLessThanOrEqualTo(64, "a take never exceeds the queue's capacity");
        foreach (var partition in read.GroupBy(m => m.Partition))
        {
            partition.Select(m => m.Offset).Should().Equal(Enumerable.Range(0, partition.Count()).Select(i => (long)i), $"partition {partition.Key} is read from its start, in offset order");
        }

        // A window of seconds: the test is that the create time is copied in milliseconds, not the clocks' agreement.
        read.Should().OnlyContain(m => m.Timestamp >= before - 5_000 && m.Timestamp <= after + 5_000, "the producer's create time, in ms since the epoch");

        fetched.Dispose();
        var closed = Task.Run(consumer.Close);
        (await Task.WhenAny(closed, Task.Delay(Guard))).Should().BeSameAs(closed, "the consumer closes once the queue is gone");
        await closed;
    }

    [Fact]
    public async Task A_disposed_queue_refuses_takes_and_ignores_detaches_and_further_disposes()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = kafka.Cluster.BootstrapServers, GroupId = "disposed" }).Build();
        var fetched = FetchedMessageQueue.Open(consumer, capacity: 8);
        fetched.Take(timeoutMs: 0, max: 8).Length.Should().Be(0, "nothing is assigned");
        fetched.Release();

        fetched.Dispose();
        fetched.Dispose();
        fetched.Detach(kafka.Topic, 0);
        var take = () => fetched.Take(timeoutMs: 0, max: 1).Length;
        take.Should().Throw<ObjectDisposedException>();
        var attach = () => fetched.Attach(kafka.Topic, 0);
        attach.Should().Throw<ObjectDisposedException>();
    }
}
