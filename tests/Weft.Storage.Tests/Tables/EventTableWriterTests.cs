using System.Collections.Immutable;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet;
using Xunit;

namespace Weft.Storage.Tests.Tables;

/// <summary>
/// An <see cref="EventTableWriter"/> fed batch by batch commits what one append of all its batches
/// commits: the same rows in the same order per partition, the same files and statistics.
/// </summary>
public sealed class EventTableWriterTests : IDisposable
{
    private static readonly IReadOnlyList<string> Layout = EventLayout.PartitionColumns;

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static readonly Gen<(ImmutableArray<FieldDefinition> Schema, int[] Batches, int Seed, int RowGroupSize)> WriterCase =
        from schema in EventTableTests.RandomSchemas
        from batches in Gen.Choose(0, 90).ArrayOf()
        from seed in ArbMap.Default.GeneratorFor<int>()
        from rowGroupSize in Gen.Elements(1, 7, 50, 1000)
        select (schema, batches.Take(6).ToArray(), seed, rowGroupSize);

    [Fact]
    public void Batches_added_one_by_one_commit_what_one_append_of_them_all_commits()
    {
        var property = Prop.ForAll(WriterCase.ToArbitrary(), async c =>
        {
            var partitioner = EventPartitioner.ByTimeBucket(TimeBucket.Hour, EventLayout.StreamPath);
            var batches = c.Batches.Select((rows, i) => EventData.Random(c.Schema, rows, c.Seed + i, $"b{i}-")).ToList();
            var options = new EventTableOptions { RowGroupSize = c.RowGroupSize };
            var written = await EventTable.OpenOrCreateAsync(_directory.Combine(Guid.NewGuid().ToString("N")), c.Schema, Layout, options);
            var appended = await EventTable.OpenOrCreateAsync(_directory.Combine(Guid.NewGuid().ToString("N")), c.Schema, Layout, options);
            var parameters = new Dictionary<string, string> { ["weft.offsets"] = "p0:7" };

            TableWriteResult result;
            await using (var writer = written.OpenWriter(partitioner))
            {
                foreach (var batch in batches)
                {
                    writer.Add(batch);
                }

                writer.RowCount.Should().Be(c.Batches.Sum());
                result = await writer.CommitAsync(parameters);
            }

            var all = EventBatch.Concat(c.Schema, [EventBatch.Empty(c.Schema), .. batches]);
            var expected = await appended.AppendAsync(all, partitioner, parameters);

            result.Version.Should().Be(expected.Version, c.ToString());
            result.RowsWritten.Should().Be(all.RowCount);
            var files = result.FilesAdded.ToDictionary(f => Describe(f.PartitionValues));
            files.Keys.Should().BeEquivalentTo(expected.FilesAdded.Select(f => Describe(f.PartitionValues)));
            var rows = await RowsByPartitionAsync(written);
            var expectedRows = await RowsByPartitionAsync(appended);
            rows.Keys.Should().BeEquivalentTo(expectedRows.Keys);
            foreach (var file in expected.FilesAdded)
            {
                var partition = Describe(file.PartitionValues);
                var mine = files[partition];
                mine.Stats.Should().Be(file.Stats, "the statistics merged row group by row group are the whole file's");
                mine.NumRecords.Should().Be(file.NumRecords);
                rows[partition].Should().Equal(expectedRows[partition], "each partition keeps the rows in the order added");
                await using var reader = await ParquetFileReader.OpenAsync(Path.Combine(written.Path, mine.Path));
                var groups = reader.RowGroups.Select(g => g.RowCount).ToList();
                groups.Should().OnlyContain(n => n > 0 && n <= c.RowGroupSize);
                groups.SkipLast(1).Where(n => n != c.RowGroupSize).Should().BeEmpty("only a file's last row group is part-filled");
            }

            if (result.Version is not null)
            {
                var history = await written.Log.GetHistoryAsync();
                history.Should().HaveCount(2, "all the batches are one commit");
                history[0].Parameters.Should().Contain("weft.offsets", "p0:7");
            }

            EventData.DataFilesOnDisk(written.Path).Should().HaveCount(result.FilesAdded.Count);
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(40).WithEndSize(40).WithReplay(0xC0FFEE, 0x9E3779B97F4A7C15), property);
    }

    [Fact]
    public async Task A_writer_disposed_without_a_commit_leaves_no_files_and_no_commit()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);

        await using (var writer = table.OpenWriter(EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"), rowGroupSize: 40))
        {
            // Enough rows that row groups are encoded and written before the end.
            writer.Add(EventData.Random(EventData.TenColumns, 300, 1, "a"));
            writer.Add(EventData.Random(EventData.TenColumns, 100, 2, "b"));
        }

        (await table.Log.GetSnapshotAsync()).Version.Should().Be(0);
        EventData.DataFilesOnDisk(path).Should().BeEmpty();
    }

    [Fact]
    public async Task A_batch_whose_schema_differs_is_refused_at_add_and_the_rows_added_before_still_commit()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var good = EventData.Random(EventData.TenColumns, 30, 1);
        await using var writer = table.OpenWriter(EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));
        writer.Add(good);

        var act = () => writer.Add(EventData.Random(EventData.TenColumns.SetItem(7, new FieldDefinition("dwell_ms", WeftType.Int64)), 20, 2));

        var error = act.Should().Throw<SchemaMismatchException>().Which;
        error.Column.Should().Be("dwell_ms");
        error.TablePath.Should().Be(path);
        writer.RowCount.Should().Be(30);
        var result = await writer.CommitAsync(null);
        result.RowsWritten.Should().Be(30);
        var names = EventData.TenColumns.Select(f => f.Name).ToArray();
        EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync(names)), names).Should().Equal(EventData.Rows([good], names));
    }

    [Fact]
    public async Task A_row_group_that_fails_to_encode_fails_the_commit_which_commits_nothing_and_leaves_no_files()
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
        var writer = table.OpenWriter(EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"), rowGroupSize: 2);
        writer.Add(new EventBatch(schema,
        [
            new StringColumn(["a", "b", "c"]),
            new PrimitiveColumn<long>(WeftType.Timestamp, [EventData.BaseMicros, EventData.BaseMicros + 1, EventData.BaseMicros + hour]),
            new ListColumn<string>(WeftType.ListOf(ScalarKind.String), [["x"], [], ["y"]]),
        ]));
        // Its second row holds a null list element, which Parquet cannot hold.
        writer.Add(new EventBatch(schema,
        [
            new StringColumn(["d", "e"]),
            new PrimitiveColumn<long>(WeftType.Timestamp, [EventData.BaseMicros + 2, EventData.BaseMicros + 3]),
            new ListColumn<string>(WeftType.ListOf(ScalarKind.String), [["z"], ["y", null!]]),
        ]));

        var act = () => writer.CommitAsync(null);

        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*'tags'*");
        await writer.DisposeAsync();
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(0);
        EventData.DataFilesOnDisk(path).Should().BeEmpty();
    }

    /// <summary>
    /// A commit given work to wait for (the stream: the online store's sync) completes its files, then
    /// commits only once that work has; when it fails, nothing is committed and no file is left.
    /// </summary>
    [Fact]
    public async Task A_commit_waits_for_the_work_it_is_given_and_commits_nothing_when_that_work_fails()
    {
        var path = _directory.Combine("t");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, Layout);
        var synced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var partitioner = EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream");
        var writer = table.OpenWriter(partitioner, rowGroupSize: 40);
        var rows = EventData.Random(EventData.TenColumns, 100, 1, "a");
        writer.Add(rows);
        int partitions = partitioner.Assign(rows, new int[rows.RowCount]).Count;

        var committing = writer.CommitAsync(null, commitAfter: synced.Task);
        // Until a whole file (Parquet's magic at both ends) is on disk for each partition of the rows.
        string[] written = [];
        for (int i = 0; i < 3000 && !(written.Length == partitions && written.All(f => Whole(Path.Combine(path, f)))); i++)
        {
            await Task.Delay(10);
            written = EventData.DataFilesOnDisk(path);
        }

        written.Should().HaveCount(partitions, "the writer completes its files before it waits");
        committing.IsCompleted.Should().BeFalse("the work it waits for is not done");
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(0);
        synced.SetResult();
        (await committing).Version.Should().Be(1);
        EventData.DataFilesOnDisk(path).Should().Equal(written, "the commit adds the files written before the wait, and no other");
        (await table.Log.GetSnapshotAsync()).FileCount.Should().Be(written.Length);

        var failing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var second = table.OpenWriter(EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"), rowGroupSize: 40);
        second.Add(EventData.Random(EventData.TenColumns, 100, 2, "b"));
        failing.SetException(new IOException("disk gone"));
        var act = () => second.CommitAsync(null, commitAfter: failing.Task);

        await act.Should().ThrowAsync<IOException>().WithMessage("disk gone");
        await second.DisposeAsync();
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(1);
        EventData.DataFilesOnDisk(path).Should().HaveCount((await table.Log.GetSnapshotAsync()).FileCount, "the failed commit's files are deleted");
    }

    [Fact]
    public async Task A_writer_given_no_rows_commits_nothing()
    {
        var table = await EventTable.OpenOrCreateAsync(_directory.Combine("t"), EventData.TenColumns, Layout);
        await using var writer = table.OpenWriter(EventPartitioner.ByTimeBucket(TimeBucket.Hour, "stream"));
        writer.Add(EventBatch.Empty(EventData.TenColumns));

        var result = await writer.CommitAsync(new Dictionary<string, string> { ["weft.offsets"] = "p0:1" });

        result.Version.Should().BeNull();
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(0);
        var again = () => writer.CommitAsync(null);
        await again.Should().ThrowAsync<ObjectDisposedException>("a writer commits once");
    }

    /// <summary>Each partition's rows in the order the table reads them (one commit: one file per partition).</summary>
    private static async Task<Dictionary<string, List<string>>> RowsByPartitionAsync(EventTable table)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var names = table.Schema.Select(f => f.Name).ToArray();
        await foreach (var batch in table.ReadAsync())
        {
            for (var row = 0; row < batch.RowCount; row++)
            {
                var partition = Describe(table.PartitionColumns.ToDictionary(c => c, c => (string?)batch[c].GetValue(row)));
                if (!result.TryGetValue(partition, out var rows))
                {
                    result[partition] = rows = [];
                }

                rows.Add(string.Join("|", names.Select(name => EventData.Show(batch[name].GetValue(row)))));
            }
        }

        return result;
    }

    private static string Describe(IReadOnlyDictionary<string, string?> values) =>
        string.Join("/", values.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key + "=" + kv.Value));

    /// <summary>Whether a Parquet file is whole: "PAR1" at its start and at its end. Not while its writer holds it open exclusively.</summary>
    private static bool Whole(string file)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file);
        }
        catch (IOException)
        {
            return false; // still being written (opened without sharing): asked again at the next poll
        }

        return bytes.Length >= 8 && bytes.AsSpan(0, 4).SequenceEqual("PAR1"u8) && bytes.AsSpan(bytes.Length - 4).SequenceEqual("PAR1"u8);
    }
}
