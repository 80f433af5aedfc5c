using System.Diagnostics;
using Weft.Streaming;
using Weft.Streaming.Kafka;

namespace Weft.Bench.Streaming.Modes;

/// <summary>
/// Weft's Kafka source: the poll thread, the bounded channel and <c>ReadBatchAsync</c> batches, with
/// nothing done to the records. Its distance to <c>raw-consume</c> is the source's own overhead.
/// </summary>
internal sealed class SourceMode(IReadOnlyDictionary<string, string> extraConfig, int batchSize, int channelCapacity) : IBenchMode
{
    public string Name => "source";

    public string Description => $"Weft KafkaEventSource.ReadBatchAsync, batches of {batchSize}, channel capacity {channelCapacity}, no processing";

    public async Task<RunResult> RunAsync(BenchTopic topic, int run, CancellationToken cancellationToken)
    {
        var created = Stopwatch.StartNew();
        await using var source = await KafkaSource.OpenAsync(
            new KafkaSourceOptions
            {
                BootstrapServers = topic.BootstrapServers,
                Topics = [topic.Name],
                GroupId = $"bench-source-{run}-{Guid.NewGuid():N}",
                ChannelCapacity = channelCapacity,
                Config = extraConfig,
            },
            cancellationToken: cancellationToken);

        IReadOnlyList<SourceRecord> batch = [];
        using (var guard = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            guard.CancelAfter(TimeSpan.FromMinutes(5));
            while (batch.Count == 0)
            {
                batch = await source.ReadBatchAsync(batchSize, TimeSpan.FromMilliseconds(100), guard.Token);
            }
        }

        var startup = created.Elapsed.TotalSeconds;
        var costStart = ProcessCost.Start();
        var steady = Stopwatch.StartNew();
        long events = 0, bytes = 0;
        while (true)
        {
            events += batch.Count;
            for (var i = 0; i < batch.Count; i++)
            {
                bytes += batch[i].Payload.Length;
            }

            if (events >= topic.Events)
            {
                break;
            }

            batch = await source.ReadBatchAsync(batchSize, TimeSpan.FromSeconds(10), cancellationToken);
            if (batch.Count == 0)
            {
                throw new TimeoutException($"Stalled after {events} of {topic.Events} events.");
            }
        }

        var seconds = steady.Elapsed.TotalSeconds;
        if (source is KafkaEventSource kafka)
        {
            await Console.Error.WriteLineAsync($"  source paused its partitions {kafka.PauseCount} times (channel full for longer than a poll timeout)").ConfigureAwait(false);
        }

        return ProcessCost.Result(costStart, events, bytes, startup, seconds);
    }
}
