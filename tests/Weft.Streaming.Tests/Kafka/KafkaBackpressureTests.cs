using FluentAssertions;
using Xunit;
using Xunit.Abstractions;
using static Weft.Streaming.Tests.Kafka.KafkaReading;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>The bounded channel between the poll thread and the reader is the source's backpressure.</summary>
public sealed class KafkaBackpressureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_full_channel_pauses_fetching_and_a_slow_reader_still_gets_every_record_in_offset_order()
    {
        await using var kafka = KafkaTestCluster.Start(output);
        var source = await kafka.OpenAsync("g", channelCapacity: 8);
        var produced = Enumerable.Range(0, 300)
            .Select(i => (Key: (i % 64).ToString(System.Globalization.CultureInfo.InvariantCulture), Json: $$"""{"event_id":"e{{i}}","user_id":{{i % 64}},"event_type":"save"}"""))
            .ToList();
        await kafka.ProduceAsync(produced);

        // Nothing is read yet: the poll thread fills the channel, waits for the reader, then pauses the partitions.
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

        records.Select(Payload).Should().BeEquivalentTo(produced.Select(p => p.Json));
        ShouldBeInStrictOffsetOrderPerPartition(records, "pausing and resuming neither skips nor repeats records");
    }
}
