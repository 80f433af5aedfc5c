using FluentAssertions;
using Xunit;
using Xunit.Abstractions;
using static Weft.Streaming.Tests.Kafka.KafkaReading;
using Weft.Testing;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>The bounded channel between the poll thread and the reader is the source's backpressure.</summary>
public sealed class KafkaBackpressureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_full_channel_pauses_fetching_and_a_slow_reader_still_gets_every_record_in_offset_order()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        var source = await kafka.OpenAsync("g", channelCapacity: 8, pauseAfter: TimeSpan.FromMilliseconds(200));
        var produced = Events(300);
        await kafka.ProduceAsync(produced);

        // Nothing is read yet: the poll thread fills the channel, waits for the reader, then (after 200 ms) pauses the partitions.
        await UntilAsync(() => source.PauseCount > 0, "the poll thread pausing the partitions of a full channel");
        source.BufferedCount.Should().BeInRange(1, 8, "the channel never holds more than its capacity");

        var records = new List<SourceRecord>();
        using var guard = new CancellationTokenSource(Guard);
        while (records.Count < produced.Count)
        {
            guard.IsCancellationRequested.Should().BeFalse($"300 records were expected within {Guard}, {records.Count} arrived");
            var batch = await source.ReadBatchAsync(3, TimeSpan.FromMilliseconds(200), CancellationToken.None);
            batch.Count.Should().BeLessThanOrEqualTo(3);
            records.AddRange(batch);
        }

        records.Select(Payload).Should().HaveSameItemsAs(produced.Select(p => p.Json));
        ShouldBeInStrictOffsetOrderPerPartition(records, "pausing and resuming neither skips nor repeats records");
    }

    [Fact]
    public async Task A_channel_full_for_less_than_pause_after_does_not_pause_and_still_serves_a_rebalance()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        var a = await kafka.OpenAsync("g", channelCapacity: 8, pauseAfter: TimeSpan.FromMinutes(5));
        var produced = Events(200);
        await kafka.ProduceAsync(produced);
        await UntilAsync(() => a.WaitingForRoom, "a's channel filling up before anything is read");

        // A second member joins while a's poll thread waits for room: a must still answer the rebalance.
        var b = await kafka.OpenAsync("g");
        await UntilAsync(
            () => a.AssignedPartitions.Count > 0 && b.AssignedPartitions.Count > 0 && a.AssignedPartitions.Count + b.AssignedPartitions.Count == 4,
            "the rebalance giving both sources partitions while a's channel is full");
        a.PauseCount.Should().Be(0, "a stall shorter than PauseAfter is waited out without pausing");

        var readByA = new List<SourceRecord>();
        var readByB = new List<SourceRecord>();
        await ReadBothUntilAllOfAsync(a, readByA, b, readByB, produced.Select(p => p.Json), "every record, from a or b");
        ShouldBeInStrictOffsetOrderPerPartition(readByA, "records a took while full are delivered in order");
        ShouldBeInStrictOffsetOrderPerPartition(readByB, "b starts where a's revoked partitions stood");
    }
}
