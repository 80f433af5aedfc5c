using System.Diagnostics;
using Confluent.Kafka;
using Weft.Streaming.Kafka;

namespace Weft.Bench.Streaming.Modes;

/// <summary>
/// A second, higher reference: the same Confluent.Kafka consumer as <c>raw-consume</c>, but its
/// partitions' messages drained many per call from a queue of their own (<see cref="FetchedMessageQueue"/>,
/// as Weft's source now reads them), each copied into a key and a value array with its timestamp read,
/// and nothing else done. Weft's source no longer pays Confluent's per-message <c>Consume</c>, so this is
/// the consume rate its runtime could reach at most; the ceiling stays <c>raw-consume</c>.
/// </summary>
internal sealed class RawBatchMode(IReadOnlyDictionary<string, string> extraConfig) : IBenchMode
{
    private const int BatchSize = 512; // Weft's source drains at most a chunk (≤ 512 records) per call

    public string Name => "raw-batch";

    public string Description => $"Confluent.Kafka 1.9.3 consumer drained through rd_kafka_consume_batch_queue ({BatchSize} per call), byte[] key/value and timestamp copied, no processing";

    public Task<RunResult> RunAsync(BenchTopic topic, int run, CancellationToken cancellationToken)
    {
        var config = RawConsumeMode.Config(topic, $"bench-raw-batch-{run}-{Guid.NewGuid():N}", extraConfig);

        var created = Stopwatch.StartNew();
        FetchedMessageQueue? fetched = null;
        using var consumer = new ConsumerBuilder<byte[], byte[]>(config)
            .SetLogHandler((_, _) => { })
            .SetPartitionsAssignedHandler((_, partitions) => partitions.ForEach(tp => fetched!.Attach(tp.Topic, tp.Partition.Value)))
            .Build();
        fetched = FetchedMessageQueue.Open(consumer, BatchSize);
        try
        {
            consumer.Subscribe(topic.Name);
            var guard = Stopwatch.StartNew();
            long events = 0, bytes = 0, checksum = 0;
            double startup = 0;
            ProcessCost costStart = default;
            Stopwatch? steady = null;
            while (events < topic.Events)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (consumer.Consume(0) is not null)
                {
                    throw new InvalidOperationException("A message bypassed the fetched-message queue.");
                }

                var messages = fetched.Take(steady is null ? 100 : 0, BatchSize);
                if (messages.Length == 0 && steady is not null)
                {
                    messages = fetched.Take(10_000, 1);
                }

                if (messages.Length == 0 && guard.Elapsed > TimeSpan.FromMinutes(5))
                {
                    throw new TimeoutException($"Stalled after {events} of {topic.Events} events.");
                }

                foreach (var pointer in messages)
                {
                    ref readonly var message = ref FetchedMessageQueue.Read(pointer);
                    if (message.Error != 0)
                    {
                        continue;
                    }

                    var key = message.KeyBytes.ToArray();
                    var value = message.Value.ToArray();
                    checksum += (FetchedMessageQueue.Message.TimestampMs(pointer) ?? 0) + message.Offset + key.Length;
                    events++;
                    bytes += value.Length;
                }

                fetched.Release();
                if (steady is null && events > 0)
                {
                    startup = created.Elapsed.TotalSeconds;
                    costStart = ProcessCost.Start();
                    steady = Stopwatch.StartNew();
                }
            }

            var seconds = steady!.Elapsed.TotalSeconds;
            GC.KeepAlive(checksum);
            fetched.Dispose(); // before the consumer closes (see FetchedMessageQueue)
            consumer.Close();
            return Task.FromResult(ProcessCost.Result(costStart, events, bytes, startup, seconds));
        }
        finally
        {
            fetched.Dispose();
        }
    }
}
