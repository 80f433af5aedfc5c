using FluentAssertions;
using Weft.Definitions;
using Weft.Storage;
using Weft.Streaming.Runtime;
using Xunit;
using Weft.Testing;

namespace Weft.Streaming.Tests.Runtime;

/// <summary>
/// The stream vacuums the tables it writes: the files its compactions replaced leave the disk once no
/// version within the retention references them, and never sooner; no row changes.
/// </summary>
public sealed class StreamVacuumTests
{
    private static readonly string[] Tables = ["enriched/engagement", "dead_letters/engagement", "late_events/engagement", "dead_letters/_stream"];

    /// <summary>Rounds of 40 events, three per hour over four hours, each round in its own 20 minutes: no event is late.</summary>
    private static List<string> Rounds(int rounds) =>
        [.. Enumerable.Range(0, rounds).SelectMany(r => StreamWorld.Events(40, seed: 100 + r, startIndex: r * 1000, baseTime: StreamWorld.Start + (r * StreamWorld.Hour / 3)))];

    /// <summary>Twelve runs of one round each, every one ending in a flush: three small files per hour bucket, nothing compacted or vacuumed.</summary>
    private static async Task<List<string>> SmallFilesAsync(StreamWorld world)
    {
        var options = new StreamOptions { MaxBatchRecords = 40, MaxWait = TimeSpan.FromMilliseconds(20), CompactInterval = TimeSpan.Zero, VacuumInterval = TimeSpan.Zero };
        var rounds = Rounds(12);
        for (int r = 0; r < 12; r++)
        {
            await world.AppendAsync(rounds.Skip(r * 40).Take(40));
            await using var runtime = await world.RunAsync(options: options);
        }

        return rounds;
    }

    [Fact]
    public async Task Background_vacuum_past_the_retention_deletes_exactly_the_files_no_version_references_and_keeps_every_row()
    {
        using var world = new StreamWorld();
        var rounds = await SmallFilesAsync(world);
        var onDiskBefore = FilesOnDisk(world, "enriched/engagement");
        var sizeBefore = onDiskBefore.ToDictionary(f => f, f => new FileInfo(Path.Combine(world.Root, "lake", "enriched/engagement", f)).Length);

        // Eight days on, by the runtime's clock: every file written so far is past the 7-day retention.
        // (The files' own times stay real, so a file committed while a vacuum runs would look just as
        // old: no new events here, so the compaction is the only writer, and it commits before the
        // vacuum starts, in the same background task.)
        var options = new StreamOptions
        {
            MaxBatchRecords = 40, MaxWait = TimeSpan.FromMilliseconds(20), CompactMinFiles = 2,
            CompactInterval = TimeSpan.FromTicks(1), VacuumInterval = TimeSpan.FromTicks(1),
        };
        await using var runtime = await world.RunAsync(options: options, time: new ShiftedClock(TimeSpan.FromDays(8)));

        // The first step started a compaction and then a vacuum in the background.
        var enrichedFiles = ("table", "enriched/engagement");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (runtime.Metrics.Value("weft_stream_vacuumed_files_total", enrichedFiles) == 0 && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(20);
        }

        runtime.Metrics.Value("weft_stream_vacuumed_files_total", enrichedFiles).Should().BeGreaterThan(0, "the background vacuum deleted the files the background compaction replaced");
        (await runtime.VacuumAsync(CancellationToken.None)).Should().Be(0, "the background vacuum left nothing to delete");

        runtime.LastVacuumFailure.Should().BeNull();
        runtime.LastCompactionFailure.Should().BeNull();
        foreach (var table in Tables)
        {
            FilesOnDisk(world, table).Should().HaveSameItemsAs(await ReferencedAsync(world, table), $"{table} keeps on disk exactly what its latest version references");
        }

        // The files the compaction replaced are gone, and the vacuum counted each one.
        var deleted = onDiskBefore.Except(FilesOnDisk(world, "enriched/engagement")).ToList();
        deleted.Should().HaveCount(6, "hours 0 and 1 are closed, and each had three small files");
        runtime.Metrics.Value("weft_stream_vacuumed_files_total", enrichedFiles).Should().Be(deleted.Count);
        runtime.Metrics.Value("weft_stream_vacuumed_bytes_total", enrichedFiles).Should().Be(deleted.Sum(f => sizeBefore[f]));

        var expected = await world.ReferenceAsync(rounds);
        var ids = Enumerable.Range(0, expected.RowCount).Select(i => (string)expected[StandardColumns.EventId].GetValue(i)!).ToList();
        (await world.StreamLakeIdsAsync()).Should().OnlyHaveUniqueItems().And.HaveSameItemsAs(ids);
    }

    [Fact]
    public async Task A_vacuum_within_the_retention_deletes_nothing_so_the_version_before_a_compaction_still_reads()
    {
        using var world = new StreamWorld();
        await SmallFilesAsync(world);
        var options = new StreamOptions { MaxBatchRecords = 40, MaxWait = TimeSpan.FromMilliseconds(20), CompactMinFiles = 2, CompactInterval = TimeSpan.Zero, VacuumInterval = TimeSpan.Zero };
        await using var runtime = await world.RunAsync(options: options);
        (await runtime.CompactAsync(CancellationToken.None)).Should().BeGreaterThan(0);
        var table = await DeltaTable.OpenAsync(Path.Combine(world.Root, "lake", "enriched", "engagement"));
        var latest = await table.GetSnapshotAsync();
        var beforeCompaction = await table.GetSnapshotAsync(latest.Version - 1);

        int deleted = await runtime.VacuumAsync(CancellationToken.None);

        deleted.Should().Be(0);
        runtime.LastVacuumFailure.Should().BeNull();
        var onDisk = FilesOnDisk(world, "enriched/engagement");
        onDisk.Should().Contain(beforeCompaction.Files().Select(f => f.Path), "time travel to the version before the compaction reads its files");
        onDisk.Should().Contain(latest.Files().Select(f => f.Path));
    }

    [Fact]
    public void Vacuum_options_are_validated()
    {
        var shortRetention = () => new StreamOptions { VacuumRetention = TimeSpan.FromHours(23) }.Validate();
        shortRetention.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*VacuumRetention*at least 1d*");
        var negative = () => new StreamOptions { VacuumInterval = TimeSpan.FromSeconds(-1) }.Validate();
        negative.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*VacuumInterval*");
        new StreamOptions { VacuumInterval = TimeSpan.Zero, VacuumRetention = TimeSpan.FromDays(1) }.Validate();
    }

    /// <summary>The data files under a table's folder (not its log), relative and '/'-separated.</summary>
    private static List<string> FilesOnDisk(StreamWorld world, string table)
    {
        var root = Path.Combine(world.Root, "lake", table);
        return Directory.Exists(root)
            ? [.. Directory.EnumerateFiles(root, "*.parquet", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
                .Where(f => !f.StartsWith("_delta_log/", StringComparison.Ordinal))]
            : [];
    }

    private static async Task<List<string>> ReferencedAsync(StreamWorld world, string table)
    {
        var root = Path.Combine(world.Root, "lake", table);
        if (!Directory.Exists(Path.Combine(root, "_delta_log")))
        {
            return [];
        }

        var snapshot = await (await DeltaTable.OpenAsync(root)).GetSnapshotAsync();
        return [.. snapshot.Files().Select(f => f.Path)];
    }

    /// <summary>The system clock, <c>offset</c> ahead in wall time (intervals measured as usual).</summary>
    private sealed class ShiftedClock(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => TimeProvider.System.GetUtcNow() + offset;
    }
}
