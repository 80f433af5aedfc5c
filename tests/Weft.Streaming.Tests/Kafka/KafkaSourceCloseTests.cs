using System.Collections.Concurrent;
using FluentAssertions;
using Microsoft.Extensions.Logging;
using Weft.Streaming.Kafka;
using Xunit;
using Xunit.Abstractions;
using static Weft.Streaming.Tests.Kafka.KafkaReading;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>Disposing a source whose consumer does not finish closing.</summary>
public sealed class KafkaSourceCloseTests(ITestOutputHelper output)
{
    private const int PartitionsRevoked = 1002;
    private const int CloseTimedOut = 1016;
    private const int SourceClosed = 1013;

    [Fact]
    public async Task Disposing_gives_up_on_a_close_that_blocks_after_the_close_timeout_and_the_close_finishes_later()
    {
        await using var kafka = KafkaTestCluster.Start(output);

        // The poll thread logs the revocation from inside librdkafka's rebalance handler, while it leaves
        // the group: a logger that holds that call holds the close, as librdkafka's own hang did.
        var logger = new BlockingLogger(blockOn: PartitionsRevoked);
        var options = kafka.Options("close") with { CloseTimeout = TimeSpan.FromSeconds(1) };
        var source = (KafkaEventSource)await KafkaSource.OpenAsync(options, logger);
        var produced = Events(40);
        await kafka.ProduceAsync(produced);
        await ReadAllOfAsync(source, [], produced.Select(e => e.Json), "every record, so the source holds partitions");

        await source.DisposeAsync().AsTask().WaitAsync(Guard);

        logger.Blocked.Task.IsCompleted.Should().BeTrue("the close reached the revocation and is held there");
        logger.Logged.Should().Contain(CloseTimedOut, "disposing returned by giving up on the close, with a warning")
            .And.NotContain(SourceClosed, "the close had not finished when disposing returned");

        logger.Release();
        await UntilAsync(() => logger.Logged.Contains(SourceClosed), "the held close finishing once released");
        logger.Logged.Should().ContainInOrder(PartitionsRevoked, CloseTimedOut, SourceClosed);
        source.AssignedPartitions.Should().BeEmpty();
    }

    /// <summary>Records event ids; the first call logging <c>blockOn</c> waits until <see cref="Release"/>.</summary>
    private sealed class BlockingLogger(int blockOn) : ILogger
    {
        private readonly ManualResetEventSlim _release = new(false);
        private readonly ConcurrentQueue<int> _logged = new();

        public TaskCompletionSource Blocked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IReadOnlyList<int> Logged => [.. _logged];

        public void Release() => _release.Set();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            _logged.Enqueue(eventId.Id);
            if (eventId.Id == blockOn && Blocked.TrySetResult())
            {
                _release.Wait(Guard);
            }
        }
    }
}
