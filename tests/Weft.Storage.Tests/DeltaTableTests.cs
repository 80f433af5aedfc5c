using FluentAssertions;
using Xunit;

namespace Weft.Storage.Tests;

public sealed class DeltaTableTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(TestTables.Epoch);

    public void Dispose() => _directory.Dispose();

    private string TablePath => _directory.Combine("events");

    [Fact]
    public async Task A_new_table_is_version_zero_with_its_schema_partitioning_and_no_files()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);

        var snapshot = await table.GetSnapshotAsync();
        snapshot.Version.Should().Be(0);
        snapshot.Schema.Should().Be(TestTables.Schema);
        snapshot.PartitionColumns.Should().Equal("bucket", "path");
        snapshot.Files().Should().BeEmpty();
        snapshot.Timestamp.Should().Be(TestTables.Epoch);
        Guid.TryParse(snapshot.TableId, out _).Should().BeTrue();
        TestTables.LogFiles(TablePath).Should().Equal("00000000000000000000.json");

        var reopened = await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync();
        reopened.TableId.Should().Be(snapshot.TableId);
        reopened.Schema.Should().Be(TestTables.Schema);
    }

    [Fact]
    public async Task Creating_twice_fails_while_open_or_create_opens_a_matching_table_and_rejects_a_different_one()
    {
        var created = await TestTables.CreateAsync(TablePath, _time);

        var again = () => TestTables.CreateAsync(TablePath, _time);
        (await again.Should().ThrowAsync<DeltaLogException>()).WithMessage($"A table already exists at '{TablePath}'*");

        var opened = await DeltaTable.OpenOrCreateAsync(TablePath, TestTables.Schema, TestTables.PartitionColumns);
        (await opened.GetSnapshotAsync()).TableId.Should().Be((await created.GetSnapshotAsync()).TableId);

        var other = DeltaSchema.Of([.. TestTables.Schema.Fields.Select(f => f.Name == "user_id" ? f with { Type = DeltaDataType.Integer } : f)]);
        var mismatch = () => DeltaTable.OpenOrCreateAsync(TablePath, other, TestTables.PartitionColumns);
        (await mismatch.Should().ThrowAsync<SchemaMismatchException>()).Which.Column.Should().Be("user_id");

        var fresh = await DeltaTable.OpenOrCreateAsync(_directory.Combine("fresh"), TestTables.Schema, ["bucket"]);
        (await fresh.GetSnapshotAsync()).PartitionColumns.Should().Equal("bucket");
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("embedding")]
    public async Task Partition_columns_must_be_primitive_columns_of_the_schema(string column)
    {
        var act = () => DeltaTable.CreateAsync(TablePath, TestTables.Schema, [column]);

        (await act.Should().ThrowAsync<ArgumentException>()).WithMessage($"*'{column}'*");
        Directory.Exists(Path.Combine(TablePath, "_delta_log")).Should().BeFalse();
    }

    [Fact]
    public async Task Replaying_the_log_applies_adds_and_removes_in_version_order()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        var a = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        var b = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        var c = TestTables.WriteFile(TablePath, "2026-11-23T11", "batch");

        (await table.CommitAsync(TestTables.Append(a, b))).Version.Should().Be(1);
        var second = DeltaTransaction.Create("COMPACT").WithWriterSchema(TestTables.Schema).Add(c).Remove(a.Path).Build();
        var result = await table.CommitAsync(second);

        result.Should().Be(new CommitResult(2, 1, 1, 1));
        var cached = await table.GetSnapshotAsync();
        var replayed = await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync();
        foreach (var snapshot in new[] { cached, replayed })
        {
            snapshot.Version.Should().Be(2);
            snapshot.Files().Select(f => f.Path).Should().Equal(new[] { b.Path, c.Path }.Order(StringComparer.Ordinal));
        }

        var replayedC = replayed.Files().Single(f => f.Path == c.Path);
        replayedC.Should().BeEquivalentTo(c, o => o.Excluding(f => f.PartitionValues));
        replayedC.PartitionValues.Should().Equal(c.PartitionValues);
        replayedC.NumRecords.Should().Be(10);
        replayed.FullPath(replayedC).Should().Be(Path.Combine(TablePath, c.Path));
        File.Exists(replayed.FullPath(replayedC)).Should().BeTrue();
    }

    [Fact]
    public async Task Time_travel_reads_any_version_by_number_or_by_time()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        var first = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        var second = TestTables.WriteFile(TablePath, "2026-11-23T11", "stream");
        _time.Advance(TimeSpan.FromHours(1));
        await table.CommitAsync(TestTables.Append(first));
        _time.Advance(TimeSpan.FromHours(1));
        await table.CommitAsync(DeltaTransaction.Create("DELETE").Remove(first.Path).Build());
        _time.Advance(TimeSpan.FromHours(1));
        await table.CommitAsync(TestTables.Append(second));

        (await table.GetSnapshotAsync(1)).Files().Select(f => f.Path).Should().Equal(first.Path);
        (await table.GetSnapshotAsync(2)).Files().Should().BeEmpty();
        (await table.GetSnapshotAsync(0)).Files().Should().BeEmpty();
        (await table.GetSnapshotAsync(3)).Files().Select(f => f.Path).Should().Equal(second.Path);

        var atNinety = await table.GetSnapshotAsync(TestTables.Epoch.AddMinutes(90));
        atNinety.Version.Should().Be(1);
        atNinety.Timestamp.Should().Be(TestTables.Epoch.AddHours(1));
        (await table.GetSnapshotAsync(TestTables.Epoch.AddHours(2))).Version.Should().Be(2);
        (await table.GetSnapshotAsync(TestTables.Epoch.AddDays(9))).Version.Should().Be(3);

        var beforeCreation = () => table.GetSnapshotAsync(TestTables.Epoch.AddSeconds(-1));
        await beforeCreation.Should().ThrowAsync<ArgumentOutOfRangeException>().WithMessage("*did not exist yet*");
        var future = () => table.GetSnapshotAsync(4);
        await future.Should().ThrowAsync<ArgumentOutOfRangeException>().WithMessage("*versions 0 to 3*");
    }

    [Fact]
    public async Task Partition_pruning_returns_only_the_files_of_matching_partitions()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        var files = new List<AddFile>();
        foreach (var bucket in new[] { "2026-11-23T09", "2026-11-23T10", "2026-11-23T11" })
        {
            foreach (var path in new[] { "stream", "batch" })
            {
                files.Add(TestTables.WriteFile(TablePath, bucket, path));
            }
        }

        await table.CommitAsync(TestTables.Append([.. files]));
        var snapshot = await table.GetSnapshotAsync();

        var pruned = snapshot.Files(PartitionFilter.All.Between("bucket", "2026-11-23T10", "2026-11-23T11").Equal("path", "stream"));
        pruned.Select(f => (f.PartitionValues["bucket"], f.PartitionValues["path"])).Should().BeEquivalentTo(new[]
        {
            ("2026-11-23T10", "stream"),
            ("2026-11-23T11", "stream"),
        });
        snapshot.Files(PartitionFilter.All.In("path", "stream", "batch")).Should().HaveCount(6);
        snapshot.Files(PartitionFilter.All.Between("bucket", "2026-11-24T00", null)).Should().BeEmpty();

        var unknown = () => snapshot.Files(PartitionFilter.All.Equal("user_id", "1"));
        unknown.Should().Throw<ArgumentException>().WithMessage("*'user_id'*not a partition column*");
    }

    [Fact]
    public async Task Replacing_partitions_removes_their_files_and_adds_the_new_ones_in_one_commit()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        var old1 = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        var old2 = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        var keep = TestTables.WriteFile(TablePath, "2026-11-23T10", "batch");
        await table.CommitAsync(TestTables.Append(old1, old2, keep));
        var replacement = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream", rows: 20);

        var replace = DeltaTransaction.Create("WRITE")
            .WithWriterSchema(TestTables.Schema)
            .ReplacePartitions(PartitionFilter.ForPartition(TestTables.Partition("2026-11-23T10", "stream")), [replacement])
            .Build();
        var result = await table.CommitAsync(replace);

        result.Should().Be(new CommitResult(2, 1, 1, 2));
        (await table.GetSnapshotAsync()).Files().Select(f => f.Path).Should().BeEquivalentTo([keep.Path, replacement.Path]);
        var history = await table.GetHistoryAsync(limit: 1);
        history.Single().Should().BeEquivalentTo(new { Version = 2L, Operation = "WRITE", FilesAdded = 1, FilesRemoved = 2 });
        history.Single().Parameters.Should().Contain("mode", "Overwrite").And.Contain("predicate", "bucket = '2026-11-23T10' AND path = 'stream'");

        var outside = () => table.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema)
            .ReplacePartitions(PartitionFilter.All.Equal("path", "stream"), [TestTables.WriteFile(TablePath, "2026-11-23T10", "batch")]).Build());
        await outside.Should().ThrowAsync<ArgumentException>().WithMessage("*outside them*");
    }

    [Fact]
    public async Task A_writer_schema_that_differs_is_rejected_naming_the_table_and_column_and_nothing_is_committed()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        await table.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T10", "stream")));
        var logBefore = TestTables.LogFiles(TablePath);
        var writer = DeltaSchema.Of([.. TestTables.Schema.Fields.Select(f => f.Name == "embedding" ? DeltaField.List("embedding", DeltaDataType.Double) : f)]);

        var act = () => table.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(writer)
            .Add(TestTables.WriteFile(TablePath, "2026-11-23T10", "stream")).Build());

        var error = (await act.Should().ThrowAsync<SchemaMismatchException>()).Which;
        error.Column.Should().Be("embedding");
        error.TablePath.Should().Be(TablePath);
        error.IsTransient.Should().BeFalse();
        error.Message.Should().Contain(TablePath).And.Contain("'embedding'").And.Contain("array<float>").And.Contain("array<double>");
        TestTables.LogFiles(TablePath).Should().Equal(logBefore);
        (await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync()).Version.Should().Be(1);
    }

    [Fact]
    public async Task Malformed_transactions_are_rejected_before_anything_is_written()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        var file = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        await table.CommitAsync(TestTables.Append(file));
        var logBefore = TestTables.LogFiles(TablePath);

        var noSchema = () => table.CommitAsync(DeltaTransaction.Create("WRITE").Add(TestTables.WriteFile(TablePath, "b", "stream")).Build());
        await noSchema.Should().ThrowAsync<ArgumentException>().WithMessage("*no writer schema*");

        var wrongPartitions = file with { Path = "bucket=x/part-9.parquet", PartitionValues = new Dictionary<string, string?> { ["bucket"] = "x" } };
        var badPartition = () => table.CommitAsync(TestTables.Append(wrongPartitions));
        await badPartition.Should().ThrowAsync<ArgumentException>().WithMessage("*partitioned by [bucket, path]*");

        var hidden = file with { Path = "_tmp/part-1.parquet" };
        var hiddenPath = () => table.CommitAsync(TestTables.Append(hidden));
        await hiddenPath.Should().ThrowAsync<ArgumentException>().WithMessage("*hidden*");

        var twice = () => table.CommitAsync(TestTables.Append(file));
        await twice.Should().ThrowAsync<ArgumentException>().WithMessage("*already in the table*");

        var missing = () => table.CommitAsync(DeltaTransaction.Create("DELETE").Remove("bucket=b/path=stream/nope.parquet").Build());
        (await missing.Should().ThrowAsync<ConcurrentModificationException>()).WithMessage("*not an active file*");

        var duplicate = () => DeltaTransaction.Create("WRITE").Add(file).Add(file).Build();
        duplicate.Should().Throw<ArgumentException>().WithMessage("*added twice*");

        TestTables.LogFiles(TablePath).Should().Equal(logBefore);
    }

    [Fact]
    public async Task History_lists_commits_newest_first_with_operation_parameters_and_file_counts()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        var a = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream");
        _time.Advance(TimeSpan.FromMinutes(5));
        await table.CommitAsync(DeltaTransaction.Create("STREAMING UPDATE").WithWriterSchema(TestTables.Schema)
            .WithParameter("epochId", "7").Add(a).Add(TestTables.WriteFile(TablePath, "2026-11-23T10", "stream")).Build());
        _time.Advance(TimeSpan.FromMinutes(5));
        await table.CommitAsync(DeltaTransaction.Create("DELETE").Remove(a.Path).Build());

        var history = await table.GetHistoryAsync();

        history.Select(h => (h.Version, h.Operation, h.FilesAdded, h.FilesRemoved)).Should().Equal(
            (2L, "DELETE", 0, 1),
            (1L, "STREAMING UPDATE", 2, 0),
            (0L, "CREATE TABLE", 0, 0));
        history.Select(h => h.Timestamp).Should().Equal(TestTables.Epoch.AddMinutes(10), TestTables.Epoch.AddMinutes(5), TestTables.Epoch);
        history[1].Parameters.Should().Contain("epochId", "7").And.Contain("mode", "Append");
        history[2].Parameters.Should().Contain("partitionBy", "[\"bucket\",\"path\"]");
        (await table.GetHistoryAsync(limit: 2)).Select(h => h.Version).Should().Equal(2L, 1L);
    }

    [Fact]
    public async Task Commits_after_a_version_are_the_newer_commits_oldest_first_and_match_the_history()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        for (int i = 1; i <= 4; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            await table.CommitAsync(DeltaTransaction.Create("STREAMING UPDATE").WithWriterSchema(TestTables.Schema)
                .WithParameter("epochId", i.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .Add(TestTables.WriteFile(TablePath, "2026-11-23T10", "stream")).Build());
        }

        var history = await table.GetHistoryAsync();
        (await table.GetCommitsAfterAsync(-1)).Should().BeEquivalentTo(history.Reverse(), o => o.WithStrictOrdering());
        (await table.GetCommitsAfterAsync(2)).Select(c => (c.Version, c.Parameters["epochId"])).Should().Equal((3L, "3"), (4L, "4"));
        (await table.GetCommitsAfterAsync(4)).Should().BeEmpty();

        // A second handle's commit is seen by the first handle's next catch-up.
        var other = await DeltaTable.OpenAsync(TablePath);
        await other.CommitAsync(DeltaTransaction.Create("DELETE").Remove((await other.GetSnapshotAsync()).Files().First().Path).Build());
        (await table.GetCommitsAfterAsync(4)).Select(c => (c.Version, c.Operation, c.FilesRemoved)).Should().Equal((5L, "DELETE", 1));

        var negative = () => table.GetCommitsAfterAsync(-2);
        await negative.Should().ThrowAsync<ArgumentOutOfRangeException>();
    }
}
