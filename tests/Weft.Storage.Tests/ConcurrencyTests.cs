using System.Text;
using FluentAssertions;
using Xunit;

namespace Weft.Storage.Tests;

public sealed class ConcurrencyTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private string TablePath => _directory.Combine("events");

    [Fact]
    public async Task Eight_writers_appending_twenty_times_each_through_separate_handles_lose_no_commit()
    {
        const int writers = 8;
        const int appendsEach = 20;
        await TestTables.CreateAsync(TablePath);
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var tasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            // No checkpoints: the log's listing below is exactly the commits (CheckpointWriteTests covers checkpoints).
            var table = await DeltaTable.OpenAsync(TablePath, new DeltaTableOptions { CheckpointInterval = 0 });
            await start.Task;
            var committed = new List<(AddFile File, CommitResult Result)>();
            for (var i = 0; i < appendsEach; i++)
            {
                var file = TestTables.WriteFile(TablePath, $"2026-11-23T{w:D2}", i % 2 == 0 ? "stream" : "batch");
                committed.Add((file, await table.CommitAsync(TestTables.Append(file))));
            }

            return committed;
        })).ToArray();
        start.SetResult();
        var results = (await Task.WhenAll(tasks)).SelectMany(r => r).ToList();

        var snapshot = await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync();
        snapshot.Version.Should().Be(writers * appendsEach);
        snapshot.Files().Select(f => f.Path).Should().BeEquivalentTo(results.Select(r => r.File.Path));
        results.Select(r => r.Result.Version).Should().BeEquivalentTo(Enumerable.Range(1, writers * appendsEach).Select(v => (long)v),
            "every append got its own version and the versions are contiguous");
        TestTables.LogFiles(TablePath).Should().Equal(Enumerable.Range(0, writers * appendsEach + 1).Select(v => DeltaLogNaming.CommitFileName(v)),
            "the log holds exactly the commits and no temp files");
    }

    [Fact]
    public async Task Replacing_a_partition_while_others_append_to_other_partitions_succeeds()
    {
        var setup = await TestTables.CreateAsync(TablePath);
        await setup.CommitAsync(TestTables.Append(
            TestTables.WriteFile(TablePath, "2026-11-23T10", "batch"),
            TestTables.WriteFile(TablePath, "2026-11-23T10", "batch")));
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var appenders = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var table = await DeltaTable.OpenAsync(TablePath);
            await start.Task;
            for (var i = 0; i < 10; i++)
            {
                await table.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T11", "stream")));
            }
        })).ToArray();
        var replacer = Task.Run(async () =>
        {
            var table = await DeltaTable.OpenAsync(TablePath);
            await start.Task;
            AddFile last = null!;
            for (var i = 0; i < 5; i++)
            {
                last = TestTables.WriteFile(TablePath, "2026-11-23T10", "batch");
                await table.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema)
                    .ReplacePartitions(PartitionFilter.ForPartition(TestTables.Partition("2026-11-23T10", "batch")), [last]).Build());
            }

            return last;
        });
        start.SetResult();
        await Task.WhenAll(appenders);
        var lastReplacement = await replacer;

        var snapshot = await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync();
        snapshot.Version.Should().Be(1 + 40 + 5);
        snapshot.Files(PartitionFilter.All.Equal("path", "batch")).Select(f => f.Path).Should().Equal(lastReplacement.Path);
        snapshot.Files(PartitionFilter.All.Equal("path", "stream")).Should().HaveCount(40);
    }

    /// <summary>
    /// A commit that only added nullable columns (a batch run of a signal's new definition) is not a
    /// conflict for a transaction written against the narrower schema (the stream of the earlier one,
    /// mid-flush): it commits, its files reading the new column as null.
    /// </summary>
    [Fact]
    public async Task Columns_added_by_another_writer_mid_commit_are_not_a_conflict()
    {
        await TestTables.CreateAsync(TablePath);
        var wider = new DeltaSchema([.. TestTables.Schema.Fields, new DeltaField("board_id", DeltaDataType.Long)]);
        var store = new HookedLogStore(new FileSystemLogStore(TablePath),
            async () => await DeltaTable.OpenOrCreateAsync(TablePath, wider, TestTables.PartitionColumns, null, addColumns: true, CancellationToken.None));
        var table = await DeltaTable.OpenAsync(store, TablePath, null, CancellationToken.None);
        var file = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");

        var result = await table.CommitAsync(TestTables.Append(file));

        result.Version.Should().Be(2, "the columns went in as version 1");
        var snapshot = await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync();
        snapshot.Schema.Find("board_id").Should().NotBeNull();
        snapshot.Files().Select(f => f.Path).Should().Equal(file.Path);
    }

    [Fact]
    public async Task Replacing_a_partition_another_writer_just_appended_to_fails_with_a_clear_conflict()
    {
        await TestTables.CreateAsync(TablePath);
        var other = await DeltaTable.OpenAsync(TablePath);
        var sneaked = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        var store = new HookedLogStore(new FileSystemLogStore(TablePath), async () => await other.CommitAsync(TestTables.Append(sneaked)));
        var table = await DeltaTable.OpenAsync(store, TablePath, null, CancellationToken.None);
        var replacement = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");

        var act = () => table.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema)
            .ReplacePartitions(PartitionFilter.ForPartition(TestTables.Partition("2026-11-23T10", "stream")), [replacement]).Build());

        var error = (await act.Should().ThrowAsync<ConcurrentModificationException>()).Which;
        error.ConflictingVersion.Should().Be(1);
        error.IsTransient.Should().BeFalse();
        error.Message.Should().Contain(TablePath).And.Contain("version 1 (WRITE)").And.Contain(sneaked.Path)
            .And.Contain("bucket=2026-11-23T10/path=stream").And.Contain("which this transaction replaces");
        var snapshot = await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync();
        snapshot.Version.Should().Be(1);
        snapshot.Files().Select(f => f.Path).Should().Equal(sneaked.Path);
    }

    /// <summary>
    /// A compaction rewrites a partition's small files into one, leaving its rows as they were; a replace
    /// of that partition racing it (weft batch while weft table compact runs) failed as a conflict. It
    /// now commits over what is there: the compacted file goes too, and nothing else.
    /// </summary>
    [Fact]
    public async Task Replacing_a_partition_another_writer_just_compacted_replaces_the_compacted_file()
    {
        var setup = await TestTables.CreateAsync(TablePath);
        var first = TestTables.WriteFile(TablePath, "2026-11-23T10", "batch");
        var second = TestTables.WriteFile(TablePath, "2026-11-23T10", "batch");
        var elsewhere = TestTables.WriteFile(TablePath, "2026-11-23T11", "batch");
        await setup.CommitAsync(TestTables.Append(first, second, elsewhere));
        var other = await DeltaTable.OpenAsync(TablePath);
        var compacted = TestTables.WriteFile(TablePath, "2026-11-23T10", "batch");
        var store = new HookedLogStore(new FileSystemLogStore(TablePath), async () => await other.CommitAsync(
            DeltaTransaction.Create("OPTIMIZE").WithWriterSchema(TestTables.Schema).WithoutDataChange().Remove(first.Path).Remove(second.Path).Add(compacted).Build()));
        var table = await DeltaTable.OpenAsync(store, TablePath, null, CancellationToken.None);
        var replacement = TestTables.WriteFile(TablePath, "2026-11-23T10", "batch");

        var result = await table.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema)
            .ReplacePartitions(PartitionFilter.ForPartition(TestTables.Partition("2026-11-23T10", "batch")), [replacement]).Build());

        result.Version.Should().Be(3);
        result.FilesRemoved.Should().Be(1, "what the partition held at the version it committed over: the compacted file");
        (await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync()).Files().Select(f => f.Path).Should().BeEquivalentTo([elsewhere.Path, replacement.Path]);
        var entry = await new DeltaLogReader(new FileSystemLogStore(TablePath), TablePath).ReadAsync(3, CancellationToken.None);
        entry.Actions.OfType<RemoveAction>().Select(r => DeltaPaths.FromLogPath(r.Path)).Should().Equal(compacted.Path);
    }

    [Fact]
    public async Task Replacing_a_partition_after_another_writer_appended_elsewhere_is_retried_at_the_next_version()
    {
        await TestTables.CreateAsync(TablePath);
        var other = await DeltaTable.OpenAsync(TablePath);
        var elsewhere = TestTables.WriteFile(TablePath, "2026-11-23T11", "stream");
        var store = new HookedLogStore(new FileSystemLogStore(TablePath), async () => await other.CommitAsync(TestTables.Append(elsewhere)));
        var table = await DeltaTable.OpenAsync(store, TablePath, null, CancellationToken.None);
        var replacement = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");

        var result = await table.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema)
            .ReplacePartitions(PartitionFilter.ForPartition(TestTables.Partition("2026-11-23T10", "stream")), [replacement]).Build());

        result.Should().Be(new CommitResult(2, 2, 1, 0));
        (await table.GetSnapshotAsync()).Files().Select(f => f.Path).Should().BeEquivalentTo([elsewhere.Path, replacement.Path]);
        var entry = await new DeltaLogReader(new FileSystemLogStore(TablePath), TablePath).ReadAsync(2, CancellationToken.None);
        entry.Actions.OfType<CommitInfoAction>().Single().ReadVersion.Should().Be(1, "the retry records the version it re-checked against");
    }

    [Fact]
    public async Task A_concurrent_schema_change_fails_even_a_plain_append()
    {
        await TestTables.CreateAsync(TablePath);
        var fileStore = new FileSystemLogStore(TablePath);
        var changed = DeltaSchema.Of([.. TestTables.Schema.Fields, new DeltaField("surface", DeltaDataType.String)]);
        var store = new HookedLogStore(fileStore, async () =>
        {
            var metadata = new MetadataAction(Guid.NewGuid().ToString(), FormatSpec.Parquet, changed.ToSchemaString(), TestTables.PartitionColumns,
                new Dictionary<string, string>());
            await fileStore.TryCommitAsync(1, DeltaActionCodec.Serialize([new CommitInfoAction { Timestamp = 1, Operation = "ADD COLUMNS" }, metadata]), CancellationToken.None);
        });
        var table = await DeltaTable.OpenAsync(store, TablePath, null, CancellationToken.None);

        var act = () => table.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T10", "stream")));

        (await act.Should().ThrowAsync<ConcurrentModificationException>())
            .WithMessage("*version 1 (ADD COLUMNS) changed the table metadata*")
            .Which.ConflictingVersion.Should().Be(1);
        TestTables.LogFiles(TablePath).Should().HaveCount(2);
    }

    [Fact]
    public async Task A_compaction_while_another_writer_appends_to_the_same_partition_keeps_the_new_file()
    {
        var setup = await TestTables.CreateAsync(TablePath);
        var small = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        await setup.CommitAsync(TestTables.Append(small));
        var other = await DeltaTable.OpenAsync(TablePath);
        var flushed = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        var store = new HookedLogStore(new FileSystemLogStore(TablePath), async () => await other.CommitAsync(TestTables.Append(flushed)));
        var table = await DeltaTable.OpenAsync(store, TablePath, null, CancellationToken.None);
        var compacted = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");

        await table.CommitAsync(DeltaTransaction.Create("OPTIMIZE").WithWriterSchema(TestTables.Schema).WithoutDataChange().Remove(small.Path).Add(compacted).Build());

        (await table.GetSnapshotAsync()).Files().Select(f => f.Path).Should().BeEquivalentTo([flushed.Path, compacted.Path]);
        var entry = await File.ReadAllTextAsync(Path.Combine(TablePath, "_delta_log", "00000000000000000003.json"));
        entry.Should().Contain("\"dataChange\":false").And.NotContain("\"dataChange\":true");
    }

    [Fact]
    public async Task Removing_a_file_another_writer_removed_first_conflicts()
    {
        var setup = await TestTables.CreateAsync(TablePath);
        var file = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        await setup.CommitAsync(TestTables.Append(file));
        var other = await DeltaTable.OpenAsync(TablePath);
        var store = new HookedLogStore(new FileSystemLogStore(TablePath),
            async () => await other.CommitAsync(DeltaTransaction.Create("DELETE").Remove(file.Path).Build()));
        var table = await DeltaTable.OpenAsync(store, TablePath, null, CancellationToken.None);

        var act = () => table.CommitAsync(DeltaTransaction.Create("OPTIMIZE").Remove(file.Path).Build());

        (await act.Should().ThrowAsync<ConcurrentModificationException>()).WithMessage($"*removed file '{file.Path}', which this transaction also removes*");
    }

    [Fact]
    public async Task When_every_attempt_loses_the_race_the_commit_gives_up_with_a_transient_error()
    {
        await TestTables.CreateAsync(TablePath);
        var other = await DeltaTable.OpenAsync(TablePath);
        var store = new HookedLogStore(new FileSystemLogStore(TablePath),
            async () => await other.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T11", "stream"))),
            everyTime: true);
        var table = await DeltaTable.OpenAsync(store, TablePath, new DeltaTableOptions { MaxCommitAttempts = 3 }, CancellationToken.None);
        var mine = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");

        var act = () => table.CommitAsync(TestTables.Append(mine));

        var error = (await act.Should().ThrowAsync<ConcurrentModificationException>()).Which;
        error.RetriesExhausted.Should().BeTrue();
        error.IsTransient.Should().BeTrue();
        error.Message.Should().Contain("after 3 attempts");
        var snapshot = await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync();
        snapshot.Version.Should().Be(3);
        snapshot.Files().Should().NotContain(f => f.Path == mine.Path);
    }

    private static DeltaTransaction AppendOnce(AddFile file, CommitOnce once) =>
        DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema).Add(file).Once(once).Build();

    private static DeltaTransaction AppendTagged(AddFile file, string tag) =>
        DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema).Add(file).WithParameter("weft.tag", tag).Build();

    /// <summary>
    /// A commit that must land once (a chunk's dead letters) was decided on the log as read through some
    /// version; a commit after it that records the same value is the same work done by another writer.
    /// </summary>
    [Fact]
    public async Task A_commit_once_fails_when_a_commit_after_the_version_it_checked_records_the_same_value()
    {
        await TestTables.CreateAsync(TablePath);
        var other = await DeltaTable.OpenAsync(TablePath);
        await other.CommitAsync(AppendTagged(TestTables.WriteFile(TablePath, "2026-11-23T10", "batch"), "chunk-1"));
        var table = await DeltaTable.OpenAsync(TablePath);
        var mine = TestTables.WriteFile(TablePath, "2026-11-23T10", "batch");

        var act = () => table.CommitAsync(AppendOnce(mine, new CommitOnce("weft.tag", "chunk-1", CheckedThrough: 0)));

        var error = (await act.Should().ThrowAsync<ConcurrentModificationException>()).Which;
        error.ConflictingVersion.Should().Be(1);
        error.IsTransient.Should().BeFalse();
        error.Message.Should().Contain("version 1 (WRITE) recorded weft.tag 'chunk-1' already").And.Contain("checked through version 0");
        (await table.GetSnapshotAsync()).Version.Should().Be(1);

        // Another value, or the same value at or below the version checked, is not the same work.
        (await table.CommitAsync(AppendOnce(mine, new CommitOnce("weft.tag", "chunk-2", CheckedThrough: 0)))).Version.Should().Be(2);
        var later = TestTables.WriteFile(TablePath, "2026-11-23T10", "batch");
        (await table.CommitAsync(AppendOnce(later, new CommitOnce("weft.tag", "chunk-1", CheckedThrough: 1)))).Version.Should().Be(3);
        var history = await (await DeltaTable.OpenAsync(TablePath)).GetCommitsAfterAsync(1);
        history.Select(c => c.Parameters["weft.tag"]).Should().Equal("chunk-2", "chunk-1");
    }

    [Fact]
    public async Task A_commit_once_that_loses_the_race_to_the_same_value_commits_nothing()
    {
        await TestTables.CreateAsync(TablePath);
        var other = await DeltaTable.OpenAsync(TablePath);
        var store = new HookedLogStore(new FileSystemLogStore(TablePath),
            async () => await other.CommitAsync(AppendTagged(TestTables.WriteFile(TablePath, "2026-11-23T10", "batch"), "chunk-1")));
        var table = await DeltaTable.OpenAsync(store, TablePath, null, CancellationToken.None);
        var mine = TestTables.WriteFile(TablePath, "2026-11-23T10", "batch");

        var act = () => table.CommitAsync(AppendOnce(mine, new CommitOnce("weft.tag", "chunk-1", CheckedThrough: 0)));

        var error = (await act.Should().ThrowAsync<ConcurrentModificationException>()).Which;
        error.ConflictingVersion.Should().Be(1);
        error.Message.Should().Contain("recorded weft.tag 'chunk-1' already");
        var snapshot = await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync();
        snapshot.Version.Should().Be(1);
        snapshot.Files().Should().NotContain(f => f.Path == mine.Path);
    }

    [Fact]
    public async Task A_commit_once_that_loses_the_race_to_another_value_is_retried_at_the_next_version()
    {
        await TestTables.CreateAsync(TablePath);
        var other = await DeltaTable.OpenAsync(TablePath);
        var store = new HookedLogStore(new FileSystemLogStore(TablePath),
            async () => await other.CommitAsync(AppendTagged(TestTables.WriteFile(TablePath, "2026-11-23T10", "batch"), "chunk-2")));
        var table = await DeltaTable.OpenAsync(store, TablePath, null, CancellationToken.None);

        var result = await table.CommitAsync(AppendOnce(TestTables.WriteFile(TablePath, "2026-11-23T10", "batch"), new CommitOnce("weft.tag", "chunk-1", CheckedThrough: 0)));

        result.Version.Should().Be(2);
        result.Attempts.Should().Be(2);
    }

    /// <summary>Runs a competing writer just before this store's commit attempts, to stage a race deterministically.</summary>
    private sealed class HookedLogStore(IDeltaLogStore inner, Func<Task> beforeCommit, bool everyTime = false) : IDeltaLogStore
    {
        private bool _fired;

        public string Location => inner.Location;

        public string Describe(long version) => inner.Describe(version);

        public string DescribeFile(string fileName) => inner.DescribeFile(fileName);

        public ValueTask<(Stream Content, DateTimeOffset LastModified)?> OpenFileAsync(string fileName, CancellationToken cancellationToken) =>
            inner.OpenFileAsync(fileName, cancellationToken);

        public ValueTask<LogListing> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

        public ValueTask<LogEntry?> ReadAsync(long version, CancellationToken cancellationToken) => inner.ReadAsync(version, cancellationToken);

        public async ValueTask<bool> TryCommitAsync(long version, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
        {
            if (everyTime || !_fired)
            {
                _fired = true;
                await beforeCommit();
            }

            return await inner.TryCommitAsync(version, content, cancellationToken);
        }
    }
}

public sealed class LogEncodingSanityTests
{
    [Fact]
    public void Commit_info_lines_carry_no_raw_newline_even_with_odd_parameters()
    {
        var line = Encoding.UTF8.GetString(DeltaActionCodec.Serialize([new CommitInfoAction { Timestamp = 1, Operation = "X\nY", OperationParameters = new Dictionary<string, string> { ["k"] = "a\r\nb" } }]));

        line.IndexOf('\n').Should().Be(line.Length - 1);
    }
}
