using FluentAssertions;
using Xunit;
using Xunit.Abstractions;
using static Weft.Streaming.Tests.Kafka.KafkaReading;
using Weft.Testing;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>A broker of the cluster goes down and comes back while a source reads.</summary>
public sealed class KafkaBrokerFailureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task When_a_partition_leader_goes_down_and_comes_back_every_record_is_delivered_and_the_commits_hold()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        // Broker 1 leads partitions 0 and 2; brokers 2 and 3 lead 1 and 3; the group's coordinator is broker 2.
        kafka.Cluster.SetPartitionLeader(kafka.Topic, 0, 1);
        kafka.Cluster.SetPartitionLeader(kafka.Topic, 1, 2);
        kafka.Cluster.SetPartitionLeader(kafka.Topic, 2, 1);
        kafka.Cluster.SetPartitionLeader(kafka.Topic, 3, 3);
        kafka.Cluster.SetGroupCoordinator("g", 2);
        var downPartitions = new[] { $"{kafka.Topic}/0", $"{kafka.Topic}/2" };

        var source = await kafka.OpenAsync("g");
        var first = Events(200);
        await kafka.ProduceAsync(first);
        var delivered = new List<SourceRecord>();
        await ReadAllOfAsync(source, delivered, first.Select(e => e.Json), "the records produced before the failure");
        await source.CommitAsync(LastOffsets(delivered), CancellationToken.None);

        // Mid-stream, the leader of partitions 0 and 2 goes down; the producer keeps their records queued.
        kafka.Cluster.SetBrokerDown(1);
        var second = Events(200, start: 200);
        var producing = kafka.ProduceAsync(second);
        var duringOutage = new List<SourceRecord>();
        await ReadUntilAsync(source, duringOutage, () => duringOutage.Count > 0, "records of the partitions whose leaders are up");
        duringOutage.Should().OnlyContain(r => !downPartitions.Contains(r.Partition), "partitions 0 and 2 have no reachable leader");
        await source.CommitAsync(LastOffsets(duringOutage), CancellationToken.None);

        kafka.Cluster.SetBrokerUp(1);
        await producing.WaitAsync(Guard);
        var afterRecovery = new List<SourceRecord>(duringOutage);
        await ReadAllOfAsync(source, afterRecovery, second.Select(e => e.Json), "every record produced during the failure");
        afterRecovery.Should().Contain(r => downPartitions.Contains(r.Partition));
        ShouldBeInStrictOffsetOrderPerPartition(delivered.Concat(afterRecovery), "nothing is delivered twice or out of order");
        await source.CommitAsync(LastOffsets(afterRecovery), CancellationToken.None);
        await source.DisposeAsync();

        // The committed offsets hold: a reopened source of the group sees only what came after them.
        var third = Events(50, start: 400);
        await kafka.ProduceAsync(third);
        await using var reopened = await kafka.OpenAsync("g");
        var resumed = new List<SourceRecord>();
        await ReadAllOfAsync(reopened, resumed, third.Select(e => e.Json), "the records produced after the last commit");
        resumed.Select(Payload).Should().HaveSameItemsAs(third.Select(e => e.Json), "everything before the commits was committed");
        (await reopened.ReadBatchAsync(100, TimeSpan.FromMilliseconds(500), CancellationToken.None)).Should().BeEmpty();
    }

    /// <summary>
    /// The group's coordinator down while the stream commits: the commit is not made and the stream goes
    /// on (it stopped with a stack trace); the next commit once the coordinator is back covers its offsets.
    /// </summary>
    [Fact]
    public async Task A_commit_while_the_coordinator_is_down_is_not_made_and_the_next_one_covers_it()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        for (int p = 0; p < 4; p++)
        {
            kafka.Cluster.SetPartitionLeader(kafka.Topic, p, p % 2 == 0 ? 1 : 3);
        }

        kafka.Cluster.SetGroupCoordinator("g", 2);
        var source = await kafka.OpenAsync("g");
        var first = Events(100);
        await kafka.ProduceAsync(first);
        var delivered = new List<SourceRecord>();
        await ReadAllOfAsync(source, delivered, first.Select(e => e.Json), "the records produced before the outage");

        kafka.Cluster.SetBrokerDown(2);
        var commit = Task.Run(async () => await source.CommitAsync(LastOffsets(delivered), CancellationToken.None));
        // Past the group's session timeout (6 s) the consumer has lost its partitions and the commit its
        // coordinator; the coordinator then comes back whatever the commit waits for (librdkafka may hold
        // a commit until a coordinator is known, rather than fail it).
        await Task.WhenAny(commit, Task.Delay(TimeSpan.FromSeconds(8)));
        kafka.Cluster.SetBrokerUp(2);
        Func<Task> finished = () => commit.WaitAsync(Guard);
        await finished.Should().NotThrowAsync("a coordinator down is passing: the commit is not made, or made once it is back");
        source.CommitsNotMade.Should().BeLessThanOrEqualTo(1);

        // Back, the group gives this consumer its partitions again (from the last commit made, so the
        // records since may come again: the runtime's writes are idempotent); what it reads then is committed.
        var second = Events(30, start: 100);
        await kafka.ProduceAsync(second);
        var after = new List<SourceRecord>();
        await ReadAllOfAsync(source, after, second.Select(e => e.Json), "the records produced after the outage");
        var deadline = DateTime.UtcNow + Guard;
        while (true)
        {
            long before = source.CommitsNotMade;
            await source.CommitAsync(LastOffsets(after), CancellationToken.None).AsTask().WaitAsync(Guard);
            if (source.CommitsNotMade == before)
            {
                break; // made: the coordinator was found again
            }

            DateTime.UtcNow.Should().BeBefore(deadline, "librdkafka finds the coordinator again once it is up");
            await Task.Delay(200);
        }

        await source.DisposeAsync().AsTask().WaitAsync(Guard);
        var third = Events(20, start: 130);
        await kafka.ProduceAsync(third);
        await using var reopened = await kafka.OpenAsync("g");
        var resumed = new List<SourceRecord>();
        await ReadAllOfAsync(reopened, resumed, third.Select(e => e.Json), "the records produced after the commit");
        resumed.Select(Payload).Should().HaveSameItemsAs(third.Select(e => e.Json), "the commit after the outage covered everything before it");
    }
}
