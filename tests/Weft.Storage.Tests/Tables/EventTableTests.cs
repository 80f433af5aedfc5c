using System.Collections.Immutable;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet;
using Xunit;

namespace Weft.Storage.Tests.Tables;

public sealed class EventTableTests : IDisposable
{
    private static readonly IReadOnlyList<string> Layout = EventLayout.PartitionColumns;

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static string[] Names(ImmutableArray<FieldDefinition> schema) => [.. schema.Select(f => f.Name)];

    // ------------------------------------------------------------------ round trip

    /// <summary>An event id, an event time, and up to eight columns of any type, list or not, nullable or not.</summary>
    internal static readonly Gen<ImmutableArray<FieldDefinition>> RandomSchemas =
        from extra in Gen.Elements(Enum.GetValues<ScalarKind>())
            .SelectMany(kind => ArbMap.Default.GeneratorFor<bool>().SelectMany(isList => ArbMap.Default.GeneratorFor<bool>()
                .Select(nullable => (Kind: kind, IsList: isList, Nullable: nullable))))
            .ListOf()
        select ImmutableArray.Create<FieldDefinition>(
        [
            new("event_id", WeftType.String, Nullable: false),
            new("event_time", WeftType.Timestamp, Nullable: false),
            .. extra.Take(8).Select((c, i) => new FieldDefinition($"c{i}", new WeftType(c.Kind, c.IsList), c.Nullable)),
        ]);

    private static readonly Gen<(ImmutableArray<FieldDefinition> Schema, int Rows, int Seed, int RowGroupSize)> TableCase =
        from schema in RandomSchemas
        from rows in Gen.Choose(0, 120)
        from seed in ArbMap.Default.GeneratorFor<int>()
        from rowGroupSize in Gen.Elements(1, 7, 50, 1000)
        select (schema, rows, seed, rowGroupSize);

    [Fact]
    public void Random_batches_come_back_unchanged_through_append_and_read()
    {
        var property = Prop.ForAll(TableCase.ToArbitrary(), async c =>
        {
            var path = _directory.Combine(Guid.NewGuid().ToString("N"));
            var table = await EventTable.OpenOrCreateAsync(path, c.Schema, Layout, new EventTableOptions { RowGroupSize = c.RowGroupSize });
            var first = EventData.Random(c.Schema, c.Rows, c.Seed, "a");
            var second = EventData.Random(c.Schema, c.Rows / 2, c.Seed + 1, "b");
            await table.AppendAsync(first, EventPartitioner.ByTimeBucket(TimeBucket.Hour, EventLayout.StreamPath));
            await table.AppendAsync(second, EventPartitioner.ByTimeBucket(TimeBucket.Day, EventLayout.BatchPath));

            var read = await EventData.ReadAllAsync(table.ReadAsync());

            var names = Names(c.Schema);
            EventData.Rows(read, names).Should().Equal(EventData.Rows([first, second], names), c.ToString());
            foreach (var batch in read)
            {
                batch.Schema.Select(f => f.Name).Should().Equal([.. names, "bucket", "path"]);
                batch.RowCount.Should().BeInRange(1, c.RowGroupSize);
                var times = (PrimitiveColumn<long>)batch["event_time"];
                for (var row = 0; row < batch.RowCount; row++)
                {
                    var path0 = (string?)batch["path"].GetValue(row);
                    var bucket = path0 == "stream" ? TimeBucket.Hour : TimeBucket.Day;
                    batch["bucket"].GetValue(row).Should().Be(TimeBuckets.Format(times.Values[row], bucket));
                }
            }

            // A reopened handle sees the same schema and rows.
            var reopened = await EventTable.OpenAsync(path);
            reopened.Schema.Should().Equal(c.Schema);
            reopened.PartitionColumns.Should().Equal("bucket", "path");
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(40).WithEndSize(40).WithReplay(0xE7AB1E, 0x9E3779B97F4A7C15), property);
    }

    [Fact]
    public async Task Each_append_is_one_commit_with_one_file_per_partition_and_its_statistics()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var batch = EventData.Random(EventData.TenColumns, 300, 1, spanMicros: 3 * EventData.HourMicros);

        var result = await table.AppendAsync(batch, EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));

        result.Version.Should().Be(1);
        result.RowsWritten.Should().Be(300);
        result.FilesAdded.Select(f => f.PartitionValues["bucket"]).Should().BeEquivalentTo("2026-11-23T10", "2026-11-23T11", "2026-11-23T12");
        result.FilesAdded.Should().OnlyContain(f => f.Path.StartsWith("bucket=" + f.PartitionValues["bucket"] + "/path=stream/part-", StringComparison.Ordinal));
        result.FilesAdded.Sum(f => f.NumRecords).Should().Be(300);
        var history = await table.Log.GetHistoryAsync();
        history.Should().HaveCount(2);
        history[0].FilesAdded.Should().Be(3);

        var file = result.FilesAdded.First(f => f.PartitionValues["bucket"] == "2026-11-23T11");
        FileStatistics.TryParse(file.Stats, out var stats).Should().BeTrue();
        var rows = Enumerable.Range(0, 300).Where(i => TimeBuckets.Format(((PrimitiveColumn<long>)batch["event_time"]).Values[i], TimeBucket.Hour) == "2026-11-23T11").ToArray();
        var part = batch.Gather(rows);
        stats!.NumRecords.Should().Be(rows.Length);
        stats.NullCount!["item_id"]!.GetValue<int>().Should().Be(part["item_id"].NullCount);
        stats.NullCount["embedding"]!.GetValue<int>().Should().Be(part["embedding"].NullCount);
        stats.MinValues!.ContainsKey("embedding").Should().BeFalse("lists have no min/max");
        var userIds = ((PrimitiveColumn<long>)part["user_id"]).Values;
        stats.MinValues["user_id"]!.GetValue<long>().Should().Be(userIds.Min());
        stats.MaxValues!["user_id"]!.GetValue<long>().Should().Be(userIds.Max());
        var times = ((PrimitiveColumn<long>)part["event_time"]).Values;
        var min = Timestamps.ToMicros(DateTimeOffset.Parse(stats.MinValues["event_time"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture));
        var max = Timestamps.ToMicros(DateTimeOffset.Parse(stats.MaxValues["event_time"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture));
        min.Should().BeLessThanOrEqualTo(times.Min()).And.BeGreaterThan(times.Min() - 1000);
        max.Should().BeGreaterThanOrEqualTo(times.Max()).And.BeLessThan(times.Max() + 1000);

        await using var reader = await ParquetFileReader.OpenAsync(Path.Combine(path, file.Path));
        reader.Schema.Fields.Select(f => f.Name).Should().Equal(Names(EventData.TenColumns), "partition columns stay out of the data files");
    }

    [Fact]
    public async Task An_empty_batch_commits_nothing()
    {
        var table = await EventTable.OpenOrCreateAsync(_directory.Combine("t"), EventData.TenColumns, Layout);

        var result = await table.AppendAsync(EventBatch.Empty(EventData.TenColumns), EventLayout.Partition("2026-11-23T10", "stream"));

        result.Version.Should().BeNull();
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(0);
    }

    // ------------------------------------------------------------------ projection, pruning, skipping

    [Fact]
    public async Task Reading_two_of_ten_columns_decodes_far_fewer_bytes_than_a_full_scan()
    {
        var table = await EventTable.OpenOrCreateAsync(_directory.Combine("t"), EventData.TenColumns, Layout);
        var batch = EventData.Random(EventData.TenColumns, 4000, 2);
        await table.AppendAsync(batch, EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));

        var before = table.ReadStatistics;
        var full = await EventData.ReadAllAsync(table.ReadAsync());
        var fullScan = table.ReadStatistics - before;
        before = table.ReadStatistics;
        var projected = await EventData.ReadAllAsync(table.ReadAsync(["user_id", "event_time"]));
        var twoColumns = table.ReadStatistics - before;

        projected.Should().OnlyContain(b => b.Schema.Length == 2 && b.Schema[0].Name == "user_id" && b.Schema[1].Name == "event_time");
        projected.Sum(b => b.RowCount).Should().Be(4000);
        EventData.Rows(projected, ["user_id", "event_time"]).Should().Equal(EventData.Rows([batch], ["user_id", "event_time"]));
        twoColumns.FilesOpened.Should().Be(fullScan.FilesOpened);
        twoColumns.BytesDecompressed.Should().BePositive();
        (twoColumns.BytesDecompressed * 3).Should().BeLessThan(fullScan.BytesDecompressed,
            $"2 of 10 columns decoded {twoColumns.BytesDecompressed} bytes, the full scan {fullScan.BytesDecompressed}");
        twoColumns.PagesDecoded.Should().BeLessThan(fullScan.PagesDecoded);
        twoColumns.BytesRead.Should().BeLessThan(fullScan.BytesRead);
        full.Sum(b => b.RowCount).Should().Be(4000);
    }

    [Fact]
    public async Task Reading_one_bucket_opens_only_that_buckets_files()
    {
        var table = await EventTable.OpenOrCreateAsync(_directory.Combine("t"), EventData.TenColumns, Layout);
        for (var i = 0; i < 3; i++)
        {
            await table.AppendAsync(EventData.Random(EventData.TenColumns, 200, 10 + i, $"s{i}-"), EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));
        }

        await table.AppendAsync(EventData.Random(EventData.TenColumns, 200, 20, "b-"), EventPartitioner.ByTimeBucket(TimeBucket.Hour, "batch"));
        var snapshot = await table.Log.GetSnapshotAsync();
        var filter = PartitionFilter.All.Equal("bucket", "2026-11-23T11");
        var inBucket = snapshot.Files(filter).Count;
        inBucket.Should().Be(4);
        snapshot.FileCount.Should().Be(12);

        var before = table.ReadStatistics;
        var read = await EventData.ReadAllAsync(table.ReadAsync(["event_id", "event_time", "bucket", "path"], filter));
        var stats = table.ReadStatistics - before;

        stats.FilesOpened.Should().Be(inBucket);
        read.Should().NotBeEmpty();
        read.Should().OnlyContain(b => Enumerable.Range(0, b.RowCount).All(r => (string?)b["bucket"].GetValue(r) == "2026-11-23T11"));
        read.SelectMany(b => Enumerable.Range(0, b.RowCount).Select(r => (long)b["event_time"].GetValue(r)!))
            .Should().OnlyContain(t => t >= EventData.BaseMicros + EventData.HourMicros && t < EventData.BaseMicros + (2 * EventData.HourMicros));

        // Partition columns alone come from the log: files are opened for their row counts, nothing is decoded.
        before = table.ReadStatistics;
        var partitionsOnly = await EventData.ReadAllAsync(table.ReadAsync(["path"], filter.Equal("path", "batch")));
        stats = table.ReadStatistics - before;
        stats.FilesOpened.Should().Be(1);
        stats.BytesDecompressed.Should().Be(0);
        partitionsOnly.Sum(b => b.RowCount).Should().Be((int)snapshot.Files(filter.Equal("path", "batch")).Single().NumRecords!);
    }

    [Fact]
    public async Task A_time_range_skips_row_groups_and_files_whose_statistics_exclude_it()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout, new EventTableOptions { RowGroupSize = 100 });
        // 1000 rows in time order over one hour: ten row groups of 100 rows, 3.6 s apart each.
        var hour = EventData.Random(EventData.TenColumns, 1000, 3, "h", spanMicros: EventData.HourMicros, sortedTime: true);
        await table.AppendAsync(hour, EventLayout.Partition("2026-11-23T10", "stream"));
        // A second file, later the same hour: its log statistics exclude the range.
        var later = EventData.Random(EventData.TenColumns, 50, 4, "l", fromMicros: EventData.BaseMicros + EventData.HourMicros - 1000, spanMicros: 1000);
        await table.AppendAsync(later, EventLayout.Partition("2026-11-23T10", "stream"));

        var times = ((PrimitiveColumn<long>)hour["event_time"]).Values;
        var range = new ColumnRange("event_time", times[250], times[349]);
        var before = table.ReadStatistics;
        var read = await EventData.ReadAllAsync(table.ReadAsync(["event_id", "score"], range: range));
        var stats = table.ReadStatistics - before;

        stats.FilesSkipped.Should().Be(1);
        stats.FilesOpened.Should().Be(1);
        stats.RowGroupsRead.Should().Be(2, "rows 250..349 lie in row groups 2 and 3");
        stats.RowGroupsSkipped.Should().Be(8);
        read.Should().OnlyContain(b => b.Schema.Length == 2, "the range column is decoded for filtering, not returned");
        var expected = Enumerable.Range(250, 100).ToArray();
        EventData.Rows(read, ["event_id", "score"]).Should().Equal(EventData.Rows([hour.Gather(expected)], ["event_id", "score"]));

        // An open-ended range that misses everything reads nothing. (Log statistics bound timestamps at
        // millisecond precision, so the range starts a millisecond past the last event.)
        before = table.ReadStatistics;
        (await EventData.ReadAllAsync(table.ReadAsync(range: new ColumnRange("event_time", EventData.BaseMicros + EventData.HourMicros + 1000, null)))).Should().BeEmpty();
        stats = table.ReadStatistics - before;
        stats.FilesOpened.Should().Be(0);
        stats.FilesSkipped.Should().Be(2);
    }

    [Fact]
    public async Task A_range_on_a_column_that_is_not_int64_or_timestamp_is_refused()
    {
        var table = await EventTable.OpenOrCreateAsync(_directory.Combine("t"), EventData.TenColumns, Layout);

        var act = async () => await EventData.ReadAllAsync(table.ReadAsync(range: new ColumnRange("score", 0, 1)));

        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*'score'*");
    }

    [Fact]
    public async Task Projecting_an_unknown_column_names_it_and_the_table()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);

        var act = async () => await EventData.ReadAllAsync(table.ReadAsync(["user_id", "nope"]));

        await act.Should().ThrowAsync<ArgumentException>().WithMessage($"*{path}*'nope'*");
    }

    // ------------------------------------------------------------------ replace, time travel

    [Fact]
    public async Task Replacing_a_partition_shows_readers_the_old_rows_or_the_new_never_both()
    {
        var path = _directory.Combine("t");
        var writer = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var target = EventLayout.Partition("2026-11-23T10", "batch");
        var other = EventLayout.Partition("2026-11-23T10", "stream");
        var sizes = new[] { 40, 75, 10, 120, 33, 64 };
        // Two files in the target partition, so a half-applied replace would be visible as a part.
        var oldA = EventData.Random(EventData.TenColumns, sizes[0] / 2, 100, "g0-a", spanMicros: EventData.HourMicros);
        var oldB = EventData.Random(EventData.TenColumns, sizes[0] / 2, 99, "g0-b", spanMicros: EventData.HourMicros);
        await writer.AppendAsync(oldA, target);
        await writer.AppendAsync(oldB, target);
        var streamRows = EventData.Random(EventData.TenColumns, 25, 101, "s-", spanMicros: EventData.HourMicros);
        await writer.AppendAsync(streamRows, other);
        var beforeReplace = (await writer.Log.GetSnapshotAsync()).Version;

        var reader = await EventTable.OpenAsync(path);
        using var stop = new CancellationTokenSource();
        var observed = new List<(int Generation, int Count)>();
        var readers = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            var seen = new List<(int, int)>();
            do
            {
                var batches = await EventData.ReadAllAsync(reader.ReadAsync(["event_id"], PartitionFilter.ForPartition(target)));
                var ids = batches.SelectMany(b => Enumerable.Range(0, b.RowCount).Select(r => (string)b["event_id"].GetValue(r)!)).ToList();
                var generations = ids.Select(id => int.Parse(id[1..id.IndexOf('-', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture)).Distinct().ToList();
                generations.Should().ContainSingle("a read sees one generation of the partition, got ids {0}", string.Join(",", ids.Take(10)));
                ids.Should().OnlyHaveUniqueItems();
                seen.Add((generations[0], ids.Count));
            }
            while (!stop.IsCancellationRequested);
            return seen;
        })).ToArray();

        var versions = new List<long>();
        for (var g = 1; g < sizes.Length; g++)
        {
            var rows = EventData.Random(EventData.TenColumns, sizes[g], 100 + g, $"g{g}-", spanMicros: EventData.HourMicros);
            var result = await writer.ReplacePartitionsAsync(rows, target);
            result.FilesRemoved.Should().Be(g == 1 ? 2 : 1, "two appends made two files; each replace leaves one");
            versions.Add(result.Version!.Value);
        }

        await stop.CancelAsync();
        foreach (var task in readers)
        {
            observed.AddRange(await task);
        }

        observed.Should().NotBeEmpty();
        observed.Should().OnlyContain(o => o.Count == sizes[o.Generation], "each generation is read whole");

        // Time travel: the version before the first replace still has the old rows; the stream partition is untouched.
        var old = await EventData.ReadAllAsync(reader.ReadAsync(["event_id"], PartitionFilter.ForPartition(target), version: beforeReplace));
        EventData.Rows(old, ["event_id"]).Should().Equal(EventData.Rows([oldA, oldB], ["event_id"]));
        var latest = await EventData.ReadAllAsync(reader.ReadAsync(["event_id", "path"]));
        latest.Sum(b => b.RowCount).Should().Be(sizes[^1] + 25);
        versions.Should().BeInAscendingOrder();
    }

    [Fact]
    public async Task Replacing_with_rows_outside_the_replaced_partitions_is_refused_before_writing()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        await table.AppendAsync(EventData.Random(EventData.TenColumns, 10, 1, spanMicros: EventData.HourMicros), EventLayout.Partition("2026-11-23T10", "batch"));
        var files = EventData.DataFilesOnDisk(path);
        var spanning = EventData.Random(EventData.TenColumns, 50, 2, spanMicros: 3 * EventData.HourMicros);

        var act = () => table.ReplacePartitionsAsync(spanning, EventPartitioner.ByTimeBucket(TimeBucket.Hour, "batch"),
            PartitionFilter.All.Equal("bucket", "2026-11-23T10").Equal("path", "batch"));

        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*bucket=2026-11-23T1*outside*");
        EventData.DataFilesOnDisk(path).Should().Equal(files);
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(1);
    }

    [Fact]
    public async Task Staged_files_stay_invisible_until_one_commit_replaces_the_partition_with_all_of_them()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var target = EventLayout.Partition("2026-11-23T10", "batch");
        var old = EventData.Random(EventData.TenColumns, 12, 1, "old-", spanMicros: EventData.HourMicros);
        await table.AppendAsync(old, target);
        var filter = PartitionFilter.ForPartition(target);
        var first = EventData.Random(EventData.TenColumns, 20, 2, "a-", spanMicros: EventData.HourMicros);
        var second = EventData.Random(EventData.TenColumns, 30, 3, "b-", spanMicros: EventData.HourMicros);

        // Two writers (say, two shards in two processes) stage their shares and hand them over as text.
        var other = await EventTable.OpenAsync(path);
        var stagedA = await table.StageAsync(first, EventPartitioner.Single(target), filter);
        var stagedB = await other.StageAsync(second, EventPartitioner.Single(target), filter);
        var handedOver = StagedFiles.Parse(StagedFiles.Serialize([.. stagedA, .. stagedB]), "shares");
        handedOver.Should().BeEquivalentTo([.. stagedA, .. stagedB], o => o.WithStrictOrdering()
            .Using<DateTimeOffset>(t => t.Subject.Should().BeCloseTo(t.Expectation, TimeSpan.FromMilliseconds(1))).WhenTypeIs<DateTimeOffset>()); // the log keeps milliseconds

        (await table.Log.GetSnapshotAsync()).Version.Should().Be(1, "staging commits nothing");
        EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync(["event_id"])), ["event_id"]).Should().Equal(EventData.Rows([old], ["event_id"]));

        var result = await table.CommitStagedAsync(handedOver, filter, new Dictionary<string, string> { ["weft.run"] = "r1" });

        result.FilesRemoved.Should().Be(1);
        result.RowsWritten.Should().Be(50);
        EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync(["event_id"])), ["event_id"]).Should().BeEquivalentTo(EventData.Rows([first, second], ["event_id"]));
        (await table.Log.GetHistoryAsync(limit: 1)).Single().Parameters.Should().Contain("weft.run", "r1");

        var again = () => table.CommitStagedAsync(handedOver, filter, null);
        await again.Should().ThrowAsync<ArgumentException>().WithMessage("*already in the table*");
    }

    [Fact]
    public async Task Committing_staged_files_outside_the_replaced_partitions_or_a_malformed_list_is_refused()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var target = EventLayout.Partition("2026-11-23T10", "batch");
        var staged = await table.StageAsync(EventData.Random(EventData.TenColumns, 5, 1, spanMicros: EventData.HourMicros), EventPartitioner.Single(target), PartitionFilter.ForPartition(target));

        var outside = () => table.CommitStagedAsync(staged, PartitionFilter.ForPartition(EventLayout.Partition("2026-11-23T11", "batch")), null);
        await outside.Should().ThrowAsync<ArgumentException>().WithMessage("*outside the partitions being replaced*");
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(0);

        var malformed = () => StagedFiles.Parse("{\"add\": {\"path\": 3}}\n"u8, "shard-1-of-2.json");
        malformed.Should().Throw<FormatException>().WithMessage("*shard-1-of-2.json*");
        var notAdds = () => StagedFiles.Parse("{\"remove\": {\"path\": \"x.parquet\", \"deletionTimestamp\": 1, \"dataChange\": true}}\n"u8, "shares.json");
        notAdds.Should().Throw<FormatException>().WithMessage("*shares.json*not only add actions*");
    }

    [Fact]
    public async Task Compacting_rewrites_each_partition_of_small_files_into_one_file_with_the_same_rows()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var names = Names(EventData.TenColumns);
        var a = EventLayout.Partition("2026-11-23T10", "stream");
        var b = EventLayout.Partition("2026-11-23T11", "stream");
        var c = EventLayout.Partition("2026-11-23T10", "batch");
        for (int i = 0; i < 5; i++)
        {
            await table.AppendAsync(EventData.Random(EventData.TenColumns, 10 + i, i, $"a{i}-", spanMicros: EventData.HourMicros), a);
        }

        await table.AppendAsync(EventData.Random(EventData.TenColumns, 7, 50, "b-", spanMicros: EventData.HourMicros), b);
        for (int i = 0; i < 3; i++)
        {
            await table.AppendAsync(EventData.Random(EventData.TenColumns, 4, 60 + i, $"c{i}-", spanMicros: EventData.HourMicros), c);
        }

        var versionBefore = (await table.Log.GetSnapshotAsync()).Version;
        var before = EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync()), [.. names, "bucket", "path"]);

        var result = await table.CompactAsync(null, minFiles: 2);

        result.Should().Be(new CompactionResult(2, 8, 0) { FilesAdded = 2 });
        var snapshot = await table.Log.GetSnapshotAsync();
        snapshot.Files().GroupBy(f => f.DescribePartition(Layout)).Select(g => g.Count()).Should().Equal(1, 1, 1);
        EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync()), [.. names, "bucket", "path"]).Should().BeEquivalentTo(before);
        // Time travel still reads the small files; the commits say they only rearranged rows.
        EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync(version: versionBefore)), [.. names, "bucket", "path"]).Should().BeEquivalentTo(before);
        var history = await table.Log.GetHistoryAsync(limit: 2);
        history.Should().OnlyContain(h => h.Operation == "OPTIMIZE" && h.FilesAdded == 1);
        history.Select(h => h.FilesRemoved).Should().BeEquivalentTo([5, 3]);
        var lastEntry = await File.ReadAllTextAsync(Path.Combine(path, "_delta_log", $"{snapshot.Version:D20}.json"));
        lastEntry.Should().Contain("\"dataChange\":false").And.NotContain("\"dataChange\":true");

        // A partition below the threshold, or compacted already, is left alone.
        (await table.CompactAsync(null, minFiles: 2)).Should().Be(new CompactionResult(0, 0, 0));
        var act = () => table.CompactAsync(null, minFiles: 1);
        await act.Should().ThrowAsync<ArgumentOutOfRangeException>();
    }

    [Fact]
    public async Task Compacting_packs_small_files_into_groups_under_the_target_size_and_leaves_large_files_alone()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var names = Names(EventData.TenColumns);
        var stream = EventLayout.Partition("2026-11-23T10", "stream");
        var large = await table.AppendAsync(EventData.Random(EventData.TenColumns, 2_000, 99, "big-", spanMicros: EventData.HourMicros), stream);
        for (int i = 0; i < 7; i++)
        {
            await table.AppendAsync(EventData.Random(EventData.TenColumns, 20, i, $"s{i}-", spanMicros: EventData.HourMicros), stream);
        }

        var small = (await table.Log.GetSnapshotAsync()).Files().Where(f => f.Path != large.FilesAdded.Single().Path).ToList();
        small.Should().HaveCount(7);
        // Room for three small files but not four, and less than the large one.
        long target = small.Take(3).Sum(f => f.Size) + (small.Min(f => f.Size) / 2);
        large.FilesAdded.Single().Size.Should().BeGreaterThan(target);
        var before = EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync()), [.. names, "bucket", "path"]);

        var result = await table.CompactAsync(null, minFiles: 2, targetFileBytes: target);

        // Seven small files in log order: [3][3][1]; the lone last one is not worth a rewrite.
        result.Should().Be(new CompactionResult(1, 6, 0) { FilesAdded = 2 });
        var files = (await table.Log.GetSnapshotAsync()).Files().Select(f => f.Path).ToList();
        files.Should().HaveCount(4).And.Contain(large.FilesAdded.Single().Path).And.Contain(small[^1].Path);
        EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync()), [.. names, "bucket", "path"]).Should().BeEquivalentTo(before);

        // Below the file threshold (three small files now), nothing happens.
        (await table.CompactAsync(null, minFiles: 4, targetFileBytes: target)).Should().Be(new CompactionResult(0, 0, 0));
    }

    // ------------------------------------------------------------------ bad input

    [Fact]
    public async Task A_batch_whose_schema_differs_is_rejected_naming_the_table_and_column_and_nothing_changes()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var good = EventData.Random(EventData.TenColumns, 20, 1);
        await table.AppendAsync(good, EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));
        var files = EventData.DataFilesOnDisk(path);

        var wrongType = EventData.TenColumns.SetItem(7, new FieldDefinition("dwell_ms", WeftType.Int64));
        var missing = EventData.TenColumns.RemoveAt(8);
        var extra = EventData.TenColumns.Add(new FieldDefinition("query", WeftType.String));
        var partition = EventData.TenColumns.Add(new FieldDefinition("bucket", WeftType.String));
        var cases = new (ImmutableArray<FieldDefinition> Schema, string Column)[]
        {
            (wrongType, "dwell_ms"), (missing, "score"), (extra, "query"), (partition, "bucket"),
        };
        foreach (var (schema, column) in cases)
        {
            var batch = EventData.Random(schema, 20, 2);
            var act = () => table.AppendAsync(batch, EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));
            var error = (await act.Should().ThrowAsync<SchemaMismatchException>()).Which;
            error.Column.Should().Be(column);
            error.TablePath.Should().Be(path);
            error.Message.Should().Contain(path).And.Contain($"'{column}'").And.Contain("Nothing was committed");
        }

        // A null in a non-nullable column is refused the same way.
        var nulls = good.WithColumn(EventData.TenColumns[1], new PrimitiveColumn<long>(WeftType.Int64, new long[20], [.. Enumerable.Range(0, 20).Select(i => i == 7)]));
        var nullAct = () => table.AppendAsync(nulls, EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));
        (await nullAct.Should().ThrowAsync<SchemaMismatchException>()).Which.Message.Should().Contain("'user_id'").And.Contain("row 7");

        (await table.Log.GetSnapshotAsync()).Version.Should().Be(1);
        EventData.DataFilesOnDisk(path).Should().Equal(files);
        EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync(Names(EventData.TenColumns))), Names(EventData.TenColumns))
            .Should().Equal(EventData.Rows([good], Names(EventData.TenColumns)));
    }

    [Fact]
    public async Task Opening_an_existing_table_with_another_schema_is_refused()
    {
        var path = _directory.Combine("t");
        await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);

        var act = () => EventTable.OpenOrCreateAsync(path, EventData.TenColumns.RemoveAt(9), Layout);

        (await act.Should().ThrowAsync<SchemaMismatchException>()).Which.Message.Should().Contain(path).And.Contain("embedding");
    }

    [Fact]
    public async Task A_partition_column_in_the_data_schema_is_refused()
    {
        var act = () => EventTable.OpenOrCreateAsync(_directory.Combine("t"), EventData.TenColumns.Add(new FieldDefinition("path", WeftType.String)), Layout);

        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*'path'*partition*");
    }

    [Fact]
    public async Task A_write_that_fails_midway_commits_nothing_and_leaves_no_files()
    {
        var path = _directory.Combine("t");
        ImmutableArray<FieldDefinition> schema =
        [
            new("event_id", WeftType.String, Nullable: false),
            new("event_time", WeftType.Timestamp, Nullable: false),
            new("tags", WeftType.ListOf(ScalarKind.String)),
        ];
        var table = await EventTable.OpenOrCreateAsync(path, schema, Layout);
        var hour = EventData.HourMicros;
        // Row 2 lies in the second partition written and has a null list element, which Parquet cannot hold.
        var batch = new EventBatch(schema,
        [
            new StringColumn(["a", "b", "c"]),
            new PrimitiveColumn<long>(WeftType.Timestamp, [EventData.BaseMicros, EventData.BaseMicros + 1, EventData.BaseMicros + hour]),
            new ListColumn<string>(WeftType.ListOf(ScalarKind.String), [["x"], [], ["y", null!]]),
        ]);

        var act = () => table.AppendAsync(batch, EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));

        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*'tags'*row 2*");
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(0);
        EventData.DataFilesOnDisk(path).Should().BeEmpty("the file written for the first partition is deleted");
    }

    [Fact]
    public async Task A_corrupt_data_file_gives_an_error_naming_it_and_the_table_stays_usable()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var result = await table.AppendAsync(EventData.Random(EventData.TenColumns, 500, 5, spanMicros: 2 * EventData.HourMicros), EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));
        var victim = result.FilesAdded.Single(f => f.PartitionValues["bucket"] == "2026-11-23T10");
        var full = Path.Combine(path, victim.Path);
        var bytes = await File.ReadAllBytesAsync(full);
        await File.WriteAllBytesAsync(full, bytes[..(bytes.Length / 2)]);

        var act = async () => await EventData.ReadAllAsync(table.ReadAsync());

        var error = (await act.Should().ThrowAsync<DataFileException>()).Which;
        error.DataFile.Should().Be(victim.Path);
        error.TablePath.Should().Be(path);
        error.Version.Should().Be(1);
        error.IsTransient.Should().BeFalse();
        error.Message.Should().Contain(path).And.Contain(victim.Path);
        error.InnerException.Should().BeOfType<ParquetFormatException>();

        // Garbage in the middle of a column chunk (footer intact) is reported the same way.
        var garbled = (byte[])bytes.Clone();
        Array.Fill(garbled, (byte)0xEE, 4, Math.Min(2000, garbled.Length / 2));
        await File.WriteAllBytesAsync(full, garbled);
        var decode = async () => await EventData.ReadAllAsync(table.ReadAsync(["embedding", "event_id"], PartitionFilter.All.Equal("bucket", "2026-11-23T10")));
        (await decode.Should().ThrowAsync<DataFileException>()).Which.DataFile.Should().Be(victim.Path);

        // A file missing from disk too.
        File.Delete(full);
        (await act.Should().ThrowAsync<DataFileException>()).Which.Message.Should().Contain(victim.Path);

        // Nothing committed was damaged: the log is unchanged, other partitions read, appends still work.
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(1);
        var other = await EventData.ReadAllAsync(table.ReadAsync(partitions: PartitionFilter.All.Equal("bucket", "2026-11-23T11")));
        other.Sum(b => b.RowCount).Should().BeGreaterThan(0);
        (await table.AppendAsync(EventData.Random(EventData.TenColumns, 5, 6, "n"), EventLayout.Partition("2026-11-24T00", "stream"))).Version.Should().Be(2);
    }

    // ------------------------------------------------------------------ concurrency

    [Fact]
    public async Task Concurrent_appends_from_several_handles_lose_nothing()
    {
        var path = _directory.Combine("t");
        await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        const int Writers = 5;
        const int AppendsEach = 8;
        var handles = await Task.WhenAll(Enumerable.Range(0, Writers).Select(_ => EventTable.OpenAsync(path)));

        var expected = await Task.WhenAll(handles.Select((table, w) => Task.Run(async () =>
        {
            var written = new List<EventBatch>();
            for (var i = 0; i < AppendsEach; i++)
            {
                var batch = EventData.Random(EventData.TenColumns, 30 + i, (w * 100) + i, $"w{w}-{i}-");
                await table.AppendAsync(batch, EventPartitioner.ByTimeBucket(TimeBucket.Hour, i % 2 == 0 ? "stream" : "batch"));
                written.Add(batch);
            }

            return written;
        })));

        var reader = await EventTable.OpenAsync(path);
        (await reader.Log.GetSnapshotAsync()).Version.Should().Be(Writers * AppendsEach);
        var names = Names(EventData.TenColumns);
        EventData.Rows(await EventData.ReadAllAsync(reader.ReadAsync(names)), names)
            .Should().Equal(EventData.Rows(expected.SelectMany(b => b), names));
    }
}
