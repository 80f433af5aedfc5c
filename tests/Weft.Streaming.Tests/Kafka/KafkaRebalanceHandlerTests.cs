using System.Collections.Concurrent;
using System.Diagnostics;
using FluentAssertions;
using Microsoft.Extensions.Logging;
using Weft.Streaming.Kafka;
using Xunit;
using Xunit.Abstractions;
using static Weft.Streaming.Tests.Kafka.KafkaReading;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>The reader's rebalance handler (<see cref="IEventSource.SetRebalanceHandler"/>) on a Kafka source.</summary>
public sealed class KafkaRebalanceHandlerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_handler_runs_at_each_assignment_and_at_a_revoke_while_the_partitions_are_still_owned()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        var a = await kafka.OpenAsync("g");
        var calls = new ConcurrentQueue<(bool Revoking, int Owned)>();
        a.SetRebalanceHandler(async revoking =>
        {
            await Task.Yield();
            calls.Enqueue((revoking, a.AssignedPartitions.Count));
        });
        await UntilAsync(() => a.AssignedPartitions.Count == 4, "a holding the 4 partitions");

        var b = await kafka.OpenAsync("g");
        await UntilAsync(
            () => a.AssignedPartitions.Count > 0 && b.AssignedPartitions.Count > 0 && a.AssignedPartitions.Count + b.AssignedPartitions.Count == 4,
            "both sources holding partitions of the 4");

        // The first assignment, the revoke of all 4 when b joins (eager), then a's share.
        calls.Take(3).Should().Equal((false, 0), (true, 4), (false, 0));
    }

    [Fact]
    public async Task A_handler_that_does_not_finish_holds_the_rebalance_only_until_the_timeout()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        KafkaEventSource? held = null;
        var timedOut = new ConcurrentQueue<(int Owned, long At)>(); // partitions a held, and when, as it gave up waiting for the handler
        var logger = new TimeoutWatcher(() => held?.AssignedPartitions.Count ?? -1, timedOut, kafka.Logger);
        await using var a = (KafkaEventSource)await KafkaSource.OpenAsync(kafka.Options("g") with { RebalanceTimeout = TimeSpan.FromSeconds(1) }, logger);
        held = a;
        await UntilAsync(() => a.AssignedPartitions.Count == 4, "a holding the 4 partitions");
        var revokes = 0;
        int ownedAtRevoke = -1;
        a.SetRebalanceHandler(revoking =>
        {
            if (revoking && Interlocked.Increment(ref revokes) == 1)
            {
                ownedAtRevoke = a.AssignedPartitions.Count;
            }

            return new TaskCompletionSource().Task; // never completes
        });

        long beforeTheRebalance = Stopwatch.GetTimestamp(); // the wait for the handler starts after this
        var b = await kafka.OpenAsync("g");
        await UntilAsync(
            () => a.AssignedPartitions.Count > 0 && b.AssignedPartitions.Count > 0 && a.AssignedPartitions.Count + b.AssignedPartitions.Count == 4,
            "the rebalance going on past a's handler");
        revokes.Should().BeGreaterThanOrEqualTo(1, "the revoke called the handler"); // a slow sync may bring a second rebalance
        ownedAtRevoke.Should().Be(4, "the handler runs while the partitions are still owned");
        timedOut.Should().NotBeEmpty("the rebalance went on only once the wait for the handler timed out");
        var (owned, at) = timedOut.First();
        owned.Should().Be(4, "a kept its partitions while it waited for the handler");
        Stopwatch.GetElapsedTime(beforeTheRebalance, at).Should().BeGreaterThanOrEqualTo(
            TimeSpan.FromSeconds(0.9), "it waited up to the 1 s timeout (a lower bound: a slow machine only lengthens it)");

        var produced = Events(100);
        await kafka.ProduceAsync(produced);
        var readByA = new List<SourceRecord>();
        var readByB = new List<SourceRecord>();
        await ReadBothUntilAllOfAsync(a, readByA, b, readByB, produced.Select(e => e.Json), "every record, from a or b, after the rebalance");
    }

    /// <summary>Passes every line on, and notes how many partitions the source held when it logged that a handler timed out.</summary>
    private sealed class TimeoutWatcher(Func<int> owned, ConcurrentQueue<(int Owned, long At)> timedOut, ILogger inner) : ILogger
    {
        private const int HandlerTimedOut = 1017; // StreamingLog.KafkaRebalanceHandlerTimedOut

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == HandlerTimedOut)
            {
                timedOut.Enqueue((owned(), Stopwatch.GetTimestamp()));
            }

            inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
