using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Weft.Streaming.Kafka;
using Xunit.Abstractions;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>
/// A fresh mock Kafka cluster (3 brokers on 127.0.0.1) with one topic, for one test: sources and a
/// producer on it, all disposed with it.
/// </summary>
internal sealed class KafkaTestCluster : IAsyncDisposable
{
    /// <summary>
    /// Group timings for tests: the mock coordinator waits session.timeout.ms − 1 s for members to
    /// rejoin after one leaves (45 s with librdkafka's default); reconnects back off at most 1 s.
    /// </summary>
    private static readonly Dictionary<string, string> FastGroupConfig = new(StringComparer.Ordinal)
    {
        ["session.timeout.ms"] = "6000",
        ["heartbeat.interval.ms"] = "500",
        ["reconnect.backoff.max.ms"] = "1000",
        ["topic.metadata.refresh.interval.ms"] = "1000",
    };

    private readonly List<IEventSource> _sources = [];
    private KafkaEventProducer? _producer;

    private KafkaTestCluster(KafkaMockCluster cluster, string topic, ILogger logger)
    {
        Cluster = cluster;
        Topic = topic;
        Logger = logger;
    }

    public KafkaMockCluster Cluster { get; }

    public string Topic { get; }

    public ILogger Logger { get; }

    public static KafkaTestCluster Start(ITestOutputHelper? output = null, int brokers = 3, int partitions = 4, string topic = "events")
    {
        var cluster = KafkaMockCluster.Start(brokers);
        cluster.CreateTopic(topic, partitions);
        return new KafkaTestCluster(cluster, topic, output is null ? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance : new TestOutputLogger(output));
    }

    public KafkaSourceOptions Options(string group, int channelCapacity = KafkaSourceOptions.DefaultChannelCapacity, TimeSpan? pauseAfter = null) => new()
    {
        BootstrapServers = Cluster.BootstrapServers,
        Topics = [Topic],
        GroupId = group,
        ChannelCapacity = channelCapacity,
        PauseAfter = pauseAfter ?? KafkaSourceOptions.DefaultPauseAfter,
        Config = FastGroupConfig,
    };

    /// <summary>Opens a source on the topic; it is disposed with the cluster if the test has not disposed it.</summary>
    public async Task<KafkaEventSource> OpenAsync(string group, int channelCapacity = KafkaSourceOptions.DefaultChannelCapacity, TimeSpan? pauseAfter = null)
    {
        var source = (KafkaEventSource)await KafkaSource.OpenAsync(Options(group, channelCapacity, pauseAfter), Logger);
        _sources.Add(source);
        return source;
    }

    public Task ProduceAsync(IReadOnlyList<(string Key, string Json)> records, CancellationToken cancellationToken = default)
    {
        // socket.timeout.ms: a request in flight to a broker the test takes down can go unanswered on a
        // connection that stays up; librdkafka's default waits 60 s (the tests' guard) before it retries.
        _producer ??= KafkaEventProducer.Open(Cluster.BootstrapServers, Topic, new Dictionary<string, string> { ["reconnect.backoff.max.ms"] = "1000", ["socket.timeout.ms"] = "5000" }, Logger);
        return _producer.ProduceManyAsync(
            records.Select(r => (long.Parse(r.Key, CultureInfo.InvariantCulture), Encoding.UTF8.GetBytes(r.Json))).ToList(),
            cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var source in _sources)
        {
            await source.DisposeAsync();
        }

        _producer?.Dispose();
        Cluster.Dispose();
    }

    /// <summary>Writes log lines to the test's output while the test runs.</summary>
    private sealed class TestOutputLogger(ITestOutputHelper output) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {eventId.Id} {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
            }
            catch (InvalidOperationException)
            {
                // The test has finished; librdkafka threads may still log while closing.
            }
        }
    }
}
