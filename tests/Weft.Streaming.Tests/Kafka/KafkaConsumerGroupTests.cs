using FluentAssertions;
using Xunit;
using Xunit.Abstractions;
using static Weft.Streaming.Tests.Kafka.KafkaReading;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>Two sources in one consumer group: sharing partitions, taking over, and rebalances with records in flight.</summary>
public sealed class KafkaConsumerGroupTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Two_sources_in_one_group_share_the_partitions_and_the_survivor_takes_over_when_one_closes()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        var a = await kafka.OpenAsync("shared");
        var b = await kafka.OpenAsync("shared");
        await UntilAsync(
            () => a.AssignedPartitions.Count > 0 && b.AssignedPartitions.Count > 0 && a.AssignedPartitions.Count + b.AssignedPartitions.Count == 4,
            "both sources holding partitions of the 4");
        var ofA = a.AssignedPartitions.ToHashSet();
        var ofB = b.AssignedPartitions.ToHashSet();
        ofA.Should().NotIntersectWith(ofB);

        var first = Events(400);
        await kafka.ProduceAsync(first);
        var readByA = new List<SourceRecord>();
        var readByB = new List<SourceRecord>();
        await ReadBothUntilAllOfAsync(a, readByA, b, readByB, first.Select(e => e.Json), "the first 400 records, shared by both sources");

        readByA.Select(Payload).Should().NotIntersectWith(readByB.Select(Payload), "each partition, so each record, goes to one member");
        readByA.Should().NotBeEmpty().And.OnlyContain(r => ofA.Contains(r.Partition));
        readByB.Should().NotBeEmpty().And.OnlyContain(r => ofB.Contains(r.Partition));

        // b commits what it read; a commits nothing and leaves.
        await b.CommitAsync(LastOffsets(readByB), CancellationToken.None);
        await a.DisposeAsync();
        await UntilAsync(() => b.AssignedPartitions.Count == 4, "b holding all 4 partitions after a left");

        var second = Events(200, start: 400);
        await kafka.ProduceAsync(second);
        var afterTakeover = new List<SourceRecord>();
        var expected = readByA.Select(Payload).Concat(second.Select(e => e.Json)).ToList();
        await ReadAllOfAsync(b, afterTakeover, expected, "a's uncommitted records and the new records, from b");

        afterTakeover.Select(Payload).Should().NotIntersectWith(readByB.Select(Payload), "b committed those");
        ShouldBeInStrictOffsetOrderPerPartition(afterTakeover, "a partition that changes hands restarts once, from its committed offset");
        b.StrayMessages.Should().Be(0, "every partition b was assigned, at the start and after the takeover, delivers through its fetched-message queue");
    }

    [Fact]
    public async Task Records_buffered_for_partitions_that_a_rebalance_revokes_are_not_delivered_afterwards()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        var a = await kafka.OpenAsync("g", channelCapacity: 10, pauseAfter: TimeSpan.FromMilliseconds(200));
        var produced = Events(200);
        await kafka.ProduceAsync(produced);
        await UntilAsync(() => a.PauseCount > 0 && a.BufferedCount > 0, "a's channel filling up before anything is read");

        // b joins: the eager rebalance revokes every partition of a while a still buffers their records.
        var b = await kafka.OpenAsync("g");
        await UntilAsync(
            () => a.AssignedPartitions.Count > 0 && b.AssignedPartitions.Count > 0 && a.AssignedPartitions.Count + b.AssignedPartitions.Count == 4,
            "the rebalance giving both sources partitions");

        var readByA = new List<SourceRecord>();
        var readByB = new List<SourceRecord>();
        await ReadBothUntilAllOfAsync(a, readByA, b, readByB, produced.Select(e => e.Json), "every record, from a or b");

        var ofA = a.AssignedPartitions.ToHashSet();
        readByA.Should().OnlyContain(r => ofA.Contains(r.Partition), "records fetched before the rebalance were dropped, not delivered");
        ShouldBeInStrictOffsetOrderPerPartition(readByA, "a never mixes records of the revoked assignment with those of the new one");
        a.PauseCount.Should().BeGreaterThan(0);
        (a.StrayMessages + b.StrayMessages).Should().Be(0, "partitions assigned again by the rebalance deliver through the fetched-message queue too");
    }
}
