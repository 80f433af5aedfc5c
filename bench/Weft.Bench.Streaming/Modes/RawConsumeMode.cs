using System.Diagnostics;
using Confluent.Kafka;

namespace Weft.Bench.Streaming.Modes;

/// <summary>
/// The ceiling: one Confluent.Kafka consumer (consumer group, subscribe, auto commit off) calling
/// <c>Consume</c> in a loop on one thread, keeping nothing but a count and the payload bytes.
/// </summary>
internal sealed class RawConsumeMode(IReadOnlyDictionary<string, string> extraConfig) : IBenchMode
{
    public string Name => "raw-consume";

    public string Description => "Confluent.Kafka 1.9.3 Consume loop, one consumer, byte[] key/value, only the timestamp copied besides them, no processing";

    public Task<RunResult> RunAsync(BenchTopic topic, int run, CancellationToken cancellationToken)
    {
        var config = Config(topic, $"bench-raw-{run}-{Guid.NewGuid():N}", extraConfig);
        var created = Stopwatch.StartNew();
        using var consumer = new ConsumerBuilder<byte[], byte[]>(config).SetLogHandler((_, _) => { }).Build();
        consumer.Subscribe(topic.Name);
        long events = 0, bytes = 0;
        var guard = TimeSpan.FromMinutes(5);

        var first = consumer.Consume(guard) ?? throw new TimeoutException("No event within 5 minutes.");
        var startup = created.Elapsed.TotalSeconds;
        var costStart = ProcessCost.Start();
        var steady = Stopwatch.StartNew();
        events = 1;
        bytes = first.Message.Value.Length;
        while (events < topic.Events)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var result = consumer.Consume(TimeSpan.FromSeconds(10))
                ?? throw new TimeoutException($"Stalled after {events} of {topic.Events} events.");
            events++;
            bytes += result.Message.Value.Length;
        }

        var seconds = steady.Elapsed.TotalSeconds;
        consumer.Close();
        return Task.FromResult(ProcessCost.Result(costStart, events, bytes, startup, seconds));
    }

    /// <summary>
    /// Prefetch thresholds of the references: large, so that librdkafka never stops their fetchers.
    /// librdkafka 2.0.2's broker threads sleep up to a second once the queue reaches its threshold and
    /// nothing wakes them when it drains; Weft's source keeps a small queue and wakes them itself
    /// (<c>FetcherWake</c>), a plain consumer cannot. With Weft's 40,000 messages the reference read
    /// 195k events/s instead of 1.3M.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, string> ReferencePrefetch = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["queued.min.messages"] = "500000",
        ["queued.max.messages.kbytes"] = "262144",
    };

    /// <summary>
    /// A reference consumer's configuration: a fresh group reading from the start, no commits, the
    /// <see cref="ReferencePrefetch"/> thresholds, then the <c>--set</c> ones.
    /// </summary>
    internal static ConsumerConfig Config(BenchTopic topic, string groupId, IReadOnlyDictionary<string, string> extraConfig)
    {
        var properties = new Dictionary<string, string>(ReferencePrefetch, StringComparer.Ordinal);
        foreach (var (key, value) in extraConfig)
        {
            properties[key] = value;
        }

        return new ConsumerConfig(properties)
        {
            BootstrapServers = topic.BootstrapServers,
            GroupId = groupId,
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,

            // What Weft's source asks for on one topic: no Headers list or topic string per message, so
            // the ceiling is as lean as the consumer under test (~10 % faster than Confluent's default).
            ConsumeResultFields = "timestamp",
        };
    }
}
