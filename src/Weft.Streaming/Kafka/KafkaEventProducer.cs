using System.Globalization;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Weft.Streaming.Kafka;

/// <summary>
/// Writes raw events to a Kafka topic in Weft's message format (see <c>docs/kafka.md</c>): the value
/// is the event's JSON in UTF-8, the key is its <c>user_id</c> as decimal text in UTF-8, so Kafka's
/// key partitioning keeps each user's events in one partition, in order. Used by tests, benchmarks
/// and the demo; each call returns once the brokers have acknowledged its events.
/// </summary>
/// <remarks>
/// Defaults: <c>acks=all</c>, <c>enable.idempotence=true</c> (no duplicates or reordering on retries),
/// <c>linger.ms=5</c>; any librdkafka producer property can be given in <c>config</c>.
/// </remarks>
public sealed class KafkaEventProducer : IDisposable, IAsyncDisposable
{
    private static readonly TimeSpan QueueFullBackoff = TimeSpan.FromMilliseconds(2);
    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(30);

    private readonly IProducer<byte[], byte[]> _producer;
    private readonly ILogger _logger;
    private int _disposed;

    private KafkaEventProducer(IProducer<byte[], byte[]> producer, string topic, ILogger logger)
    {
        _producer = producer;
        Topic = topic;
        _logger = logger;
    }

    /// <summary>The topic events are written to.</summary>
    public string Topic { get; }

    /// <summary>Creates a producer for <paramref name="topic"/>. Connects in the background; no call blocks here.</summary>
    /// <param name="bootstrapServers">Brokers, <c>host:port[,…]</c>.</param>
    /// <param name="topic">The topic to write to.</param>
    /// <param name="config">Further librdkafka producer properties; they override the defaults.</param>
    /// <param name="logger">Where librdkafka errors are logged; null for none.</param>
    /// <param name="librdkafkaPath">The librdkafka file to load (see <see cref="KafkaSourceOptions.LibrdkafkaPath"/>).</param>
    public static KafkaEventProducer Open(
        string bootstrapServers,
        string topic,
        IReadOnlyDictionary<string, string>? config = null,
        ILogger? logger = null,
        string? librdkafkaPath = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(bootstrapServers);
        if (!KafkaSourceOptions.IsValidTopicName(topic))
        {
            throw new ArgumentException($"\"{topic}\" is not a Kafka topic name.", nameof(topic));
        }

        LibRdKafka.EnsureLoaded(librdkafkaPath);
        logger ??= NullLogger.Instance;
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["bootstrap.servers"] = bootstrapServers,
            ["acks"] = "all",
            ["enable.idempotence"] = "true",
            ["linger.ms"] = "5",
            ["client.id"] = "weft-producer",
        };
        foreach (var (key, value) in config ?? new Dictionary<string, string>())
        {
            settings[key] = value;
        }

        var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig(settings))
            .SetErrorHandler((_, error) => StreamingLog.KafkaError(logger, "producer " + topic, error.Code.ToString(), error.Reason))
            .SetLogHandler((_, message) =>
            {
                if (message.Level <= SyslogLevel.Warning && logger.IsEnabled(LogLevel.Warning))
                {
                    StreamingLog.KafkaLibraryLog(logger, LogLevel.Warning, message.Name, message.Facility, message.Message);
                }
            })
            .Build();
        return new KafkaEventProducer(producer, topic, logger);
    }

    /// <summary>The message key of a user: the user id as decimal text, UTF-8.</summary>
    public static byte[] KeyOf(long userId)
    {
        Span<byte> digits = stackalloc byte[20];
        userId.TryFormat(digits, out var written, default, CultureInfo.InvariantCulture);
        return digits[..written].ToArray();
    }

    /// <summary>Writes one event and waits until the brokers acknowledge it.</summary>
    /// <param name="userId">The event's <c>user_id</c> (the message key).</param>
    /// <param name="utf8Json">The event's JSON, UTF-8. The producer does not keep the array after the call returns.</param>
    /// <param name="cancellationToken">Stops waiting (the event may still be written).</param>
    /// <exception cref="KafkaSourceException">The event could not be written.</exception>
    public Task ProduceAsync(long userId, byte[] utf8Json, CancellationToken cancellationToken) =>
        ProduceManyAsync([(userId, utf8Json)], cancellationToken);

    /// <summary>Writes events in order and waits until the brokers acknowledge all of them.</summary>
    /// <param name="events">The events: user id and JSON (UTF-8) each.</param>
    /// <param name="cancellationToken">Stops producing and waiting (events already handed over may still be written).</param>
    /// <returns>How many events were written.</returns>
    /// <exception cref="KafkaSourceException">At least one event could not be written; the first error is named.</exception>
    public async Task<long> ProduceManyAsync(IEnumerable<(long UserId, byte[] Utf8Json)> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var batch = new DeliveryBatch();
        long count = 0;
        foreach (var (userId, json) in events)
        {
            cancellationToken.ThrowIfCancellationRequested();
            batch.Add();
            var message = new Message<byte[], byte[]> { Key = KeyOf(userId), Value = json };
            while (true)
            {
                try
                {
                    _producer.Produce(Topic, message, batch.OnDelivered);
                    break;
                }
                catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    await Task.Delay(QueueFullBackoff, cancellationToken).ConfigureAwait(false);
                }
                catch (ProduceException<byte[], byte[]> e)
                {
                    batch.Fail(e.Error);
                    break;
                }
            }

            count++;
        }

        await batch.Seal().WaitAsync(cancellationToken).ConfigureAwait(false);
        if (batch.FirstError is { } error)
        {
            throw new KafkaSourceException(
                $"Writing to Kafka topic {Topic} failed with {error.Code}: {error.Reason} ({batch.Failed} of {count} events not written).",
                error.Code.ToString(),
                isTransient: !error.IsFatal);
        }

        return count;
    }

    /// <summary>Waits (up to 30 s) for events still in flight, then closes the producer.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            var left = _producer.Flush(FlushTimeout);
            if (left > 0)
            {
                StreamingLog.KafkaError(_logger, "producer " + Topic, "Local_TimedOut", $"{left} events were still in flight when the producer closed");
            }

            _producer.Dispose();
        }
    }

    /// <inheritdoc cref="Dispose"/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Counts outstanding deliveries of one call; completes when the last is acknowledged.</summary>
    private sealed class DeliveryBatch
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _outstanding = 1; // the caller's own reference, released by Seal
        private int _failed;
        private Error? _firstError;

        public DeliveryBatch() => OnDelivered = Delivered;

        public Action<DeliveryReport<byte[], byte[]>> OnDelivered { get; }

        public Error? FirstError => Volatile.Read(ref _firstError);

        public int Failed => Volatile.Read(ref _failed);

        public void Add() => Interlocked.Increment(ref _outstanding);

        public void Fail(Error error)
        {
            Interlocked.Increment(ref _failed);
            Interlocked.CompareExchange(ref _firstError, error, null);
            Release();
        }

        public Task Seal()
        {
            Release();
            return _done.Task;
        }

        private void Delivered(DeliveryReport<byte[], byte[]> report)
        {
            if (report.Error.IsError)
            {
                Fail(report.Error);
                return;
            }

            Release();
        }

        private void Release()
        {
            if (Interlocked.Decrement(ref _outstanding) == 0)
            {
                _done.TrySetResult();
            }
        }
    }
}
