using System.Diagnostics;
using Confluent.Kafka;
using Weft.Streaming.Kafka;

namespace Weft.Bench.Streaming;

/// <summary>
/// A mock cluster with one topic holding exactly <see cref="Events"/> generated click events, checked
/// to be complete (the mock keeps about 5 MB per partition and silently drops older message sets, so
/// the partition count is derived from the data size and the low watermarks are verified to be 0).
/// </summary>
internal sealed class BenchTopic : IAsyncDisposable
{
    /// <summary>Bytes the benchmark lets one mock partition hold (its cap is about 5 MB).</summary>
    public const long PartitionBudgetBytes = 3_500_000;

    private BenchTopic(KafkaMockCluster cluster, string name, int partitions, long events, long payloadBytes, double preloadSeconds)
    {
        Cluster = cluster;
        Name = name;
        Partitions = partitions;
        Events = events;
        PayloadBytes = payloadBytes;
        PreloadSeconds = preloadSeconds;
    }

    public KafkaMockCluster Cluster { get; }

    public string Name { get; }

    public int Partitions { get; }

    public long Events { get; }

    public long PayloadBytes { get; }

    public double PreloadSeconds { get; }

    public string BootstrapServers => Cluster.BootstrapServers;

    /// <summary>Partitions needed for <paramref name="events"/> events of about <paramref name="eventBytes"/> bytes (at least <paramref name="minimum"/>).</summary>
    public static int PartitionsFor(long events, int eventBytes, int minimum)
    {
        // Sized as if uncompressed: record overhead ~20-30 bytes, and 30 % headroom for key skew across partitions.
        var bytes = events * (eventBytes + 30L) * 13 / 10;
        return (int)Math.Max(minimum, (bytes + PartitionBudgetBytes - 1) / PartitionBudgetBytes);
    }

    public static async Task<BenchTopic> CreateAsync(long events, int partitions, int brokers, string compression, int seed, CancellationToken cancellationToken)
    {
        var cluster = KafkaMockCluster.Start(brokers);
        const string name = "clicks";
        cluster.CreateTopic(name, partitions);
        var clock = Stopwatch.StartNew();
        long payloadBytes = 0;
        await using (var producer = KafkaEventProducer.Open(cluster.BootstrapServers, name, new Dictionary<string, string>
        {
            ["linger.ms"] = "20",
            ["batch.num.messages"] = "10000",
            ["queue.buffering.max.messages"] = "1000000",
            ["compression.type"] = compression,
        }))
        {
            await producer.ProduceManyAsync(Counted(ClickEvents.Generate(events, seed), b => payloadBytes += b), cancellationToken);
        }

        var seconds = clock.Elapsed.TotalSeconds;
        Verify(cluster.BootstrapServers, name, partitions, events);
        return new BenchTopic(cluster, name, partitions, events, payloadBytes, seconds);
    }

    public ValueTask DisposeAsync() => Cluster.DisposeAsync();

    private static IEnumerable<(long, byte[])> Counted(IEnumerable<(long UserId, byte[] Json)> events, Action<int> count)
    {
        foreach (var e in events)
        {
            count(e.Json.Length);
            yield return e;
        }
    }

    /// <summary>Checks that every partition still starts at offset 0 and that the offsets add up to the events produced.</summary>
    private static void Verify(string bootstrapServers, string topic, int partitions, long events)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = bootstrapServers, GroupId = "bench-verify" })
            .SetLogHandler((_, _) => { })
            .Build();
        long total = 0;
        for (var p = 0; p < partitions; p++)
        {
            var marks = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10));
            if (marks.Low.Value != 0)
            {
                throw new InvalidOperationException(
                    $"The mock cluster dropped the start of {topic}/{p} (low watermark {marks.Low.Value}): it keeps ~5 MB per partition. Use more --partitions.");
            }

            total += marks.High.Value;
        }

        if (total != events)
        {
            throw new InvalidOperationException($"{topic} holds {total} events, {events} were produced.");
        }
    }
}
