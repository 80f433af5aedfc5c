using System.Text;
using FluentAssertions;
using Weft.Streaming;
using Xunit;
using Weft.Testing;

namespace Weft.Streaming.Tests;

/// <summary>
/// The contract every <see cref="IEventSource"/> passes (the embedded log, Kafka): at-least-once
/// delivery, offset order within a partition, resume after the committed offsets. A subclass gives
/// each test a fresh, empty source (its own log folder or topic).
/// </summary>
public abstract class EventSourceContract
{
    /// <summary>Opens a reader of the source under test for consumer group <paramref name="group"/>.</summary>
    protected abstract Task<IEventSource> OpenAsync(string group);

    /// <summary>Appends records to the source under test (key = user id as text, JSON payload); returns when they are durable.</summary>
    protected abstract Task ProduceAsync(IReadOnlyList<(string Key, string Json)> records);

    /// <summary>How long a test waits for records it expects before failing.</summary>
    protected virtual TimeSpan DeliveryTimeout => TimeSpan.FromSeconds(30);

    protected static IReadOnlyList<(string Key, string Json)> Events(int count, int users = 7, int start = 0) =>
        Enumerable.Range(start, count)
            .Select(i => ((i % users).ToString(System.Globalization.CultureInfo.InvariantCulture),
                $$"""{"event_id":"e{{i}}","user_id":{{i % users}},"event_type":"click","event_time":"2026-11-30T10:00:00Z","item_id":{{i}}}"""))
            .ToList();

    protected async Task<List<SourceRecord>> ReadAtLeastAsync(IEventSource source, int count)
    {
        var records = new List<SourceRecord>();
        using var timeout = new CancellationTokenSource(DeliveryTimeout);
        while (records.Count < count)
        {
            timeout.IsCancellationRequested.Should().BeFalse($"{count} records were expected within {DeliveryTimeout}, {records.Count} arrived");
            // Each read is bounded by its own maxWait; the guard above turns a stall into a message, not an OperationCanceledException.
            records.AddRange(await source.ReadBatchAsync(Math.Min(100, count - records.Count), TimeSpan.FromMilliseconds(200), CancellationToken.None));
        }

        return records;
    }

    protected static string Payload(SourceRecord r) => Text(r.Payload);

    private static string Text(ReadOnlyMemory<byte> bytes) => Encoding.UTF8.GetString(bytes.Span);

    private static Dictionary<string, long> LastOffsets(IEnumerable<SourceRecord> records) =>
        records.GroupBy(r => r.Partition).ToDictionary(g => g.Key, g => g.Max(r => r.Offset));

    [Fact]
    public async Task Every_produced_record_is_delivered_with_its_payload_in_offset_order_per_partition()
    {
        var produced = Events(250);
        await ProduceAsync(produced);
        await using var source = await OpenAsync("g1");

        var records = await ReadAtLeastAsync(source, produced.Count);

        records.Select(Payload).Should().HaveSameItemsAs(produced.Select(p => p.Json));
        foreach (var partition in records.GroupBy(r => r.Partition))
        {
            partition.Select(r => r.Offset).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        }

        records.Select(r => (Text(r.Key), Payload(r))).Should().HaveSameItemsAs(produced, "each record keeps the key it was produced with");
    }

    [Fact]
    public async Task A_reopened_source_resumes_after_the_committed_offsets()
    {
        var first = Events(120);
        await ProduceAsync(first);
        await using (var source = await OpenAsync("g1"))
        {
            var records = await ReadAtLeastAsync(source, first.Count);
            await source.CommitAsync(LastOffsets(records), CancellationToken.None);
        }

        var second = Events(80, start: 120);
        await ProduceAsync(second);
        await using (var source = await OpenAsync("g1"))
        {
            var records = await ReadAtLeastAsync(source, second.Count);
            records.Select(Payload).Should().HaveSameItemsAs(second.Select(p => p.Json), "only records after the commit come again");
            var extra = await source.ReadBatchAsync(100, TimeSpan.FromMilliseconds(500), CancellationToken.None);
            extra.Should().BeEmpty();
        }
    }

    [Fact]
    public async Task Records_read_but_not_committed_are_delivered_again_after_reopening()
    {
        var produced = Events(60);
        await ProduceAsync(produced);
        List<SourceRecord> committed;
        await using (var source = await OpenAsync("g1"))
        {
            var records = await ReadAtLeastAsync(source, produced.Count);
            // Commit only the first half of every partition.
            committed = records.GroupBy(r => r.Partition).SelectMany(g => g.OrderBy(r => r.Offset).Take(g.Count() / 2)).ToList();
            await source.CommitAsync(LastOffsets(committed), CancellationToken.None);
        }

        await using (var source = await OpenAsync("g1"))
        {
            var again = await ReadAtLeastAsync(source, produced.Count - committed.Count);
            again.Select(Payload).Should().HaveSameItemsAs(produced.Select(p => p.Json).Except(committed.Select(Payload)));
        }
    }

    [Fact]
    public async Task Consumer_groups_keep_their_own_offsets()
    {
        var produced = Events(40);
        await ProduceAsync(produced);
        await using (var a = await OpenAsync("group-a"))
        {
            var records = await ReadAtLeastAsync(a, produced.Count);
            await a.CommitAsync(LastOffsets(records), CancellationToken.None);
        }

        await using var b = await OpenAsync("group-b");
        var all = await ReadAtLeastAsync(b, produced.Count);
        all.Select(Payload).Should().HaveSameItemsAs(produced.Select(p => p.Json), "group-b has committed nothing");
    }

    [Fact]
    public async Task Records_produced_while_a_reader_waits_reach_it()
    {
        await using var source = await OpenAsync("g1");
        var empty = await source.ReadBatchAsync(10, TimeSpan.FromMilliseconds(300), CancellationToken.None);
        empty.Should().BeEmpty("nothing was produced yet");

        var produced = Events(30);
        await ProduceAsync(produced);
        var records = await ReadAtLeastAsync(source, produced.Count);
        records.Select(Payload).Should().HaveSameItemsAs(produced.Select(p => p.Json));
    }

    [Fact]
    public async Task The_backlog_is_what_the_partitions_hold_beyond_what_was_delivered()
    {
        var produced = Events(250);
        await ProduceAsync(produced);
        await using var source = await OpenAsync("g1");

        var first = await ReadAtLeastAsync(source, 100);
        first.Should().HaveCount(100);
        (await BacklogWhenAsync(source, 150)).Values.Sum().Should().Be(150, "250 produced, 100 delivered");

        var rest = await ReadAtLeastAsync(source, 150);
        var backlog = await BacklogWhenAsync(source, 0);
        backlog.Values.Should().OnlyContain(v => v == 0, "everything produced was delivered");
        backlog.Keys.Should().BeSubsetOf(first.Concat(rest).Select(r => r.Partition).Distinct());
    }

    /// <summary>The source's backlog once its total is <paramref name="total"/> (a broker's watermark arrives with a fetch), or the last one seen.</summary>
    private async Task<IReadOnlyDictionary<string, long>> BacklogWhenAsync(IEventSource source, long total)
    {
        var deadline = DateTime.UtcNow + DeliveryTimeout;
        var backlog = source.Backlog();
        while (backlog.Values.Sum() != total && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            backlog = source.Backlog();
        }

        return backlog;
    }

    [Fact]
    public async Task A_cancelled_read_throws_OperationCanceledException()
    {
        await using var source = await OpenAsync("g1");
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        var read = async () => await source.ReadBatchAsync(10, TimeSpan.FromSeconds(10), cancelled.Token);
        await read.Should().ThrowAsync<OperationCanceledException>();
    }
}
