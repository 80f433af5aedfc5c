using System.Collections.Concurrent;
using FluentAssertions;
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
        await using var a = (KafkaEventSource)await KafkaSource.OpenAsync(kafka.Options("g") with { RebalanceTimeout = TimeSpan.FromSeconds(1) }, kafka.Logger);
        await UntilAsync(() => a.AssignedPartitions.Count == 4, "a holding the 4 partitions");
        var revokes = 0;
        Task<TimeSpan>? held = null; // from the first revoke's call to a giving up its partitions
        a.SetRebalanceHandler(revoking =>
        {
            if (revoking && Interlocked.Increment(ref revokes) == 1)
            {
                long calledAt = System.Diagnostics.Stopwatch.GetTimestamp();
                held = Task.Run(async () =>
                {
                    while (a.AssignedPartitions.Count == 4)
                    {
                        await Task.Delay(10);
                    }

                    return System.Diagnostics.Stopwatch.GetElapsedTime(calledAt);
                });
            }

            return new TaskCompletionSource().Task; // never completes
        });

        var b = await kafka.OpenAsync("g");
        await UntilAsync(
            () => a.AssignedPartitions.Count > 0 && b.AssignedPartitions.Count > 0 && a.AssignedPartitions.Count + b.AssignedPartitions.Count == 4,
            "the rebalance going on past a's handler");
        revokes.Should().BeGreaterThanOrEqualTo(1, "the revoke called the handler"); // a slow sync may bring a second rebalance
        (await held!.WaitAsync(TimeSpan.FromSeconds(60))).Should().BeGreaterThanOrEqualTo(
            TimeSpan.FromSeconds(0.9), "a kept its partitions while it waited for the handler, up to the 1 s timeout");

        var produced = Events(100);
        await kafka.ProduceAsync(produced);
        var readByA = new List<SourceRecord>();
        var readByB = new List<SourceRecord>();
        await ReadBothUntilAllOfAsync(a, readByA, b, readByB, produced.Select(e => e.Json), "every record, from a or b, after the rebalance");
    }
}
