using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Storage;
using Weft.Streaming.Runtime;
using Xunit;
using Weft.Testing;

namespace Weft.Streaming.Tests.Runtime;

/// <summary>The stream compacts the small files of its closed buckets, and only those; rows never change.</summary>
public sealed class StreamCompactionTests
{
    /// <summary>Rounds of 40 events, three per hour over four hours, each round in its own 20 minutes: no event is late.</summary>
    private static List<string> Rounds(int rounds) =>
        [.. Enumerable.Range(0, rounds).SelectMany(r => StreamWorld.Events(40, seed: 100 + r, startIndex: r * 1000, baseTime: StreamWorld.Start + (r * StreamWorld.Hour / 3)))];

    [Fact]
    public async Task Compaction_rewrites_the_closed_buckets_small_files_keeps_every_row_and_leaves_open_buckets_alone()
    {
        using var world = new StreamWorld();
        // One run per round, each ending in a flush: every bucket gets three small files.
        var options = new StreamOptions { MaxBatchRecords = 40, MaxWait = TimeSpan.FromMilliseconds(20), CompactInterval = TimeSpan.Zero, CompactMinFiles = 2 };
        var rounds = Rounds(12);
        StreamRuntime? runtime = null;
        for (int r = 0; r < 12; r++)
        {
            await world.AppendAsync(rounds.Skip(r * 40).Take(40));
            if (runtime is not null)
            {
                await runtime.DisposeAsync();
            }

            runtime = await world.RunAsync(options: options);
        }

        await using var last = runtime!;
        var before = await FilesPerBucketAsync(world);
        before.Should().HaveCount(4).And.OnlyContain(b => b.Value == 3);
        var lakeBefore = await world.StreamLakeIdsAsync();
        var unroutedBefore = (await world.TableAsync("lake/dead_letters/_stream")).RowCount;
        var online = await world.OnlineAsync();

        int removed = await last.CompactAsync(CancellationToken.None);

        // The newest event is in hour 3, so the watermark (one bucket behind) is in hour 2: hours 0 and 1 are closed.
        var after = await FilesPerBucketAsync(world);
        after.Should().Equal(new Dictionary<string, int>
        {
            [Bucket(0)] = 1,
            [Bucket(1)] = 1,
            [Bucket(2)] = before[Bucket(2)],
            [Bucket(3)] = before[Bucket(3)],
        });
        var unroutedFiles = await FilesAsync(world, "lake/dead_letters/_stream");
        unroutedFiles.Should().Be(1);
        removed.Should().Be(before[Bucket(0)] + before[Bucket(1)] + (await FilesBeforeAsync(world, "lake/dead_letters/_stream")));
        last.Metrics.Value("weft_stream_compacted_files_total", ("table", "enriched/engagement")).Should().Be(before[Bucket(0)] + before[Bucket(1)]);
        last.LastCompactionFailure.Should().BeNull();

        (await world.StreamLakeIdsAsync()).Should().HaveSameItemsAs(lakeBefore).And.OnlyHaveUniqueItems();
        (await world.TableAsync("lake/dead_letters/_stream")).RowCount.Should().Be(unroutedBefore);
        (await world.OnlineAsync()).Keys.Should().HaveSameItemsAs(online.Keys);

        // A restart after the compaction still knows what the lake holds: more events, none twice.
        var more = StreamWorld.Events(60, seed: 7, startIndex: 50_000, baseTime: StreamWorld.Start + (4 * StreamWorld.Hour));
        await world.AppendAsync(more);
        await using var second = await world.RunAsync(options: options);
        var expected = (await world.ReferenceAsync([.. rounds, .. more])).RowCount;
        (await world.StreamLakeIdsAsync()).Should().HaveCount(expected).And.OnlyHaveUniqueItems();
    }

    [Fact]
    public async Task Background_compaction_racing_the_flushes_loses_and_duplicates_no_row()
    {
        using var world = new StreamWorld();
        var lines = Rounds(12);
        await world.AppendAsync(lines);
        // Every step flushes and, when the last compaction is done, starts another: they overlap.
        var options = new StreamOptions { MaxBatchRecords = 40, MaxWait = TimeSpan.FromMilliseconds(20), FlushInterval = TimeSpan.FromTicks(1), CompactInterval = TimeSpan.FromTicks(1), CompactMinFiles = 2 };
        await using var runtime = await world.RunAsync(options: options);
        await runtime.CompactAsync(CancellationToken.None);

        runtime.LastCompactionFailure.Should().BeNull();
        runtime.Metrics.Value("weft_stream_compaction_failures_total", ("table", "enriched/engagement")).Should().Be(0);
        var files = await FilesPerBucketAsync(world);
        files[Bucket(0)].Should().Be(1);
        files[Bucket(1)].Should().Be(1);
        var reference = await world.ReferenceAsync(lines);
        var ids = Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!).ToList();
        (await world.StreamLakeIdsAsync()).Should().OnlyHaveUniqueItems().And.HaveSameItemsAs(ids);
        (await world.OnlineAsync()).Should().HaveCount(ids.Count);
    }

    [Fact]
    public void Compaction_options_are_validated()
    {
        var negative = () => new StreamOptions { CompactInterval = TimeSpan.FromSeconds(-1) }.Validate();
        negative.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*CompactInterval*");
        var one = () => new StreamOptions { CompactMinFiles = 1 }.Validate();
        one.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*CompactMinFiles*");
        new StreamOptions { CompactInterval = TimeSpan.Zero }.Validate();
    }

    private static string Bucket(int hour) => TimeBuckets.Format(StreamWorld.Start + (hour * StreamWorld.Hour), Weft.Definitions.TimeBucket.Hour);

    private static async Task<Dictionary<string, int>> FilesPerBucketAsync(StreamWorld world)
    {
        var table = await EventTable.OpenAsync(Path.Combine(world.Root, "lake", "enriched", "engagement"));
        var snapshot = await table.Log.GetSnapshotAsync();
        return snapshot.Files(PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.StreamPath))
            .GroupBy(f => f.PartitionValues[EventLayout.BucketColumn]!)
            .ToDictionary(g => g.Key, g => g.Count());
    }

    private static async Task<int> FilesAsync(StreamWorld world, string relative)
    {
        var table = await EventTable.OpenAsync(Path.Combine(world.Root, relative));
        return (await table.Log.GetSnapshotAsync()).Files().Count();
    }

    /// <summary>The files the table held at the version before its last commit (the compaction).</summary>
    private static async Task<int> FilesBeforeAsync(StreamWorld world, string relative)
    {
        var table = await EventTable.OpenAsync(Path.Combine(world.Root, relative));
        var latest = await table.Log.GetSnapshotAsync();
        return (await table.Log.GetSnapshotAsync(latest.Version - 1)).Files().Count();
    }
}
