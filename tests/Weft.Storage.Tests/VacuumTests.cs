using System.Text.Json.Nodes;
using FluentAssertions;
using Xunit;

namespace Weft.Storage.Tests;

public sealed class VacuumTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(TestTables.Epoch.AddDays(-10));

    public void Dispose() => _directory.Dispose();

    private string TablePath => _directory.Combine("events");

    private bool Exists(AddFile file) => File.Exists(Path.Combine(TablePath, file.Path));

    private string WriteOrphan(string relative, DateTimeOffset written)
    {
        var full = Path.Combine(TablePath, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, new byte[5]);
        File.SetLastWriteTimeUtc(full, written.UtcDateTime);
        return full;
    }

    /// <summary>Other engines may name a file in the log by its absolute path or a file: URI; the file is still the table's.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_file_the_log_names_by_an_absolute_path_is_kept_while_referenced(bool fileUri)
    {
        var epoch = TestTables.Epoch;
        await TestTables.CreateAsync(TablePath, _time);
        var file = TestTables.WriteFile(TablePath, "2026-11-13T10", "stream", written: epoch.AddDays(-10));
        var full = Path.Combine(TablePath, file.Path);
        var logPath = fileUri ? new Uri(full).AbsoluteUri : full;
        await TestTables.WriteRawLogAsync(TablePath, 1,
            new JsonObject { ["commitInfo"] = new JsonObject { ["timestamp"] = epoch.AddDays(-10).ToUnixTimeMilliseconds(), ["operation"] = "WRITE" } },
            new JsonObject
            {
                ["add"] = new JsonObject
                {
                    ["path"] = logPath,
                    ["partitionValues"] = new JsonObject { ["bucket"] = file.PartitionValues["bucket"], ["path"] = file.PartitionValues["path"] },
                    ["size"] = file.Size,
                    ["modificationTime"] = file.ModificationTime.ToUnixTimeMilliseconds(),
                    ["dataChange"] = true,
                },
            });
        var orphan = WriteOrphan("bucket=2026-11-13T10/path=stream/part-orphan.parquet", epoch.AddDays(-10));
        _time.Set(epoch);
        var table = await DeltaTable.OpenAsync(TablePath, TestTables.Options(_time));

        var result = await table.VacuumAsync(TimeSpan.FromDays(7));

        result.Files.Select(f => f.Path).Should().Equal(["bucket=2026-11-13T10/path=stream/part-orphan.parquet"], "only the file no version names goes");
        File.Exists(full).Should().BeTrue($"the latest version names it as {logPath}");
        File.Exists(orphan).Should().BeFalse();
    }

    /// <summary>A deletion vector whose descriptor names no file could be any file: vacuum stops, naming the data file, and deletes nothing.</summary>
    [Fact]
    public async Task A_deletion_vector_that_names_no_file_stops_the_vacuum_naming_its_data_file()
    {
        var epoch = TestTables.Epoch;
        await TestTables.CreateAsync(TablePath, _time);
        var file = TestTables.WriteFile(TablePath, "2026-11-13T10", "stream", written: epoch.AddDays(-10));
        await TestTables.WriteRawLogAsync(TablePath, 1,
            new JsonObject { ["commitInfo"] = new JsonObject { ["timestamp"] = epoch.AddDays(-10).ToUnixTimeMilliseconds(), ["operation"] = "DELETE" } },
            new JsonObject
            {
                ["add"] = new JsonObject
                {
                    ["path"] = file.Path,
                    ["partitionValues"] = new JsonObject { ["bucket"] = file.PartitionValues["bucket"], ["path"] = file.PartitionValues["path"] },
                    ["size"] = file.Size,
                    ["modificationTime"] = file.ModificationTime.ToUnixTimeMilliseconds(),
                    ["dataChange"] = true,
                    ["deletionVector"] = new JsonObject
                    {
                        ["storageType"] = "u",
                        ["pathOrInlineDv"] = "too-short",
                        ["offset"] = 1,
                        ["sizeInBytes"] = 36,
                        ["cardinality"] = 1,
                    },
                },
            });
        var orphan = WriteOrphan("bucket=2026-11-13T10/path=stream/part-orphan.parquet", epoch.AddDays(-10));
        _time.Set(epoch);
        var table = await DeltaTable.OpenAsync(TablePath, TestTables.Options(_time));

        var vacuum = () => table.VacuumAsync(TimeSpan.FromDays(7));

        var error = (await vacuum.Should().ThrowAsync<DeltaLogException>()).Which;
        error.Message.Should().Contain(file.Path).And.Contain("version 1").And.Contain("20-character encoded UUID");
        File.Exists(orphan).Should().BeTrue("nothing is deleted when a referenced file is unknown");
    }

    /// <summary>A table that promises to keep removed files longer (delta.deletedFileRetentionDuration, as Spark sets it) keeps them that long, whatever a vacuum asks.</summary>
    [Theory]
    [InlineData("interval 30 days")]
    [InlineData("30 days")]
    [InlineData("INTERVAL 4 weeks 2 days")]
    [InlineData("interval 720 hours")]
    public async Task The_tables_own_longer_retention_wins_over_the_one_asked(string tableRetention)
    {
        var epoch = TestTables.Epoch;
        await CreateWithRetentionAsync(tableRetention);
        var file = TestTables.WriteFile(TablePath, "2026-11-13T10", "stream", written: epoch.AddDays(-40));
        var table = await DeltaTable.OpenAsync(TablePath, TestTables.Options(_time));
        _time.Set(epoch.AddDays(-40));
        await table.CommitAsync(TestTables.Append(file));                                        // v1 at -40d
        _time.Set(epoch.AddDays(-10));
        await table.CommitAsync(DeltaTransaction.Create("DELETE").Remove(file.Path).Build());    // v2 at -10d
        _time.Set(epoch);

        var asked7 = await table.VacuumAsync(TimeSpan.FromDays(7), dryRun: true);
        var asked60 = await table.VacuumAsync(TimeSpan.FromDays(60), dryRun: true);
        _time.Set(epoch.AddDays(21));
        var later = await table.VacuumAsync(TimeSpan.FromDays(7));

        asked7.Files.Should().BeEmpty("version 1, which needs the file, is within the table's 30 days");
        asked7.Retention.Should().Be(TimeSpan.FromDays(30));
        asked7.OldestRetainedVersion.Should().Be(1);
        asked60.Retention.Should().Be(TimeSpan.FromDays(60), "a longer retention asked for is kept");
        later.Retention.Should().Be(TimeSpan.FromDays(30));
        later.Files.Select(f => f.Path).Should().Equal([file.Path], "31 days after the delete, the table's retention has passed");
    }

    [Fact]
    public async Task A_table_retention_Weft_cannot_read_stops_the_vacuum_before_it_deletes_anything()
    {
        var epoch = TestTables.Epoch;
        await CreateWithRetentionAsync("interval 1 month");
        var orphan = WriteOrphan("bucket=2026-11-13T10/path=stream/part-orphan.parquet", epoch.AddDays(-40));
        _time.Set(epoch);
        var table = await DeltaTable.OpenAsync(TablePath, TestTables.Options(_time));

        var vacuum = () => table.VacuumAsync(TimeSpan.FromDays(7));

        (await vacuum.Should().ThrowAsync<DeltaLogException>()).Which.Message.Should().Contain("delta.deletedFileRetentionDuration 'interval 1 month'");
        File.Exists(orphan).Should().BeTrue();
    }

    /// <summary>Version 0, 40 days ago, as another engine writes it: the test schema and a <c>delta.deletedFileRetentionDuration</c>.</summary>
    private Task CreateWithRetentionAsync(string retention) =>
        TestTables.WriteRawLogAsync(TablePath, 0,
            new JsonObject { ["commitInfo"] = new JsonObject { ["timestamp"] = TestTables.Epoch.AddDays(-40).ToUnixTimeMilliseconds(), ["operation"] = "CREATE TABLE" } },
            new JsonObject { ["protocol"] = new JsonObject { ["minReaderVersion"] = 1, ["minWriterVersion"] = 2 } },
            new JsonObject
            {
                ["metaData"] = new JsonObject
                {
                    ["id"] = Guid.NewGuid().ToString(),
                    ["format"] = new JsonObject { ["provider"] = "parquet", ["options"] = new JsonObject() },
                    ["schemaString"] = TestTables.Schema.ToSchemaString(),
                    ["partitionColumns"] = new JsonArray("bucket", "path"),
                    ["configuration"] = new JsonObject { ["delta.deletedFileRetentionDuration"] = retention },
                    ["createdTime"] = 1,
                },
            });

    [Fact]
    public async Task Vacuum_removes_only_unreferenced_files_older_than_the_retention()
    {
        var epoch = TestTables.Epoch;
        var table = await TestTables.CreateAsync(TablePath, _time);                                   // v0 at -10d
        var removedLongAgo = TestTables.WriteFile(TablePath, "2026-11-13T10", "stream", written: epoch.AddDays(-10));
        var removedRecently = TestTables.WriteFile(TablePath, "2026-11-13T10", "batch", written: epoch.AddDays(-10));
        await table.CommitAsync(TestTables.Append(removedLongAgo, removedRecently));                  // v1 at -10d
        _time.Set(epoch.AddDays(-9));
        await table.CommitAsync(DeltaTransaction.Create("DELETE").Remove(removedLongAgo.Path).Build()); // v2 at -9d
        _time.Set(epoch.AddDays(-1));
        var active = TestTables.WriteFile(TablePath, "2026-11-22T10", "stream", written: epoch.AddDays(-1));
        await table.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema)
            .Add(active).Remove(removedRecently.Path).Build());                                         // v3 at -1d
        var oldOrphan = WriteOrphan("bucket=2026-11-14T10/path=stream/part-orphan-old.parquet", epoch.AddDays(-8));
        var youngOrphan = WriteOrphan("bucket=2026-11-23T10/path=stream/part-orphan-young.parquet", epoch.AddHours(-1));
        var hidden = WriteOrphan("bucket=2026-11-13T10/path=stream/.part-x.parquet.crc", epoch.AddDays(-30));
        var strayInLog = WriteOrphan("_delta_log/not-a-commit.bin", epoch.AddDays(-30));
        var logBefore = TestTables.LogFiles(TablePath);
        _time.Set(epoch);

        var dryRun = await table.VacuumAsync(TimeSpan.FromDays(7), dryRun: true);

        dryRun.DryRun.Should().BeTrue();
        dryRun.Horizon.Should().Be(epoch.AddDays(-7));
        dryRun.OldestRetainedVersion.Should().Be(2, "version 2 was current at the horizon, so time travel to it must keep working");
        dryRun.Files.Select(f => f.Path).Should().Equal(new[] { "bucket=2026-11-14T10/path=stream/part-orphan-old.parquet", removedLongAgo.Path }.Order(StringComparer.Ordinal));
        Exists(removedLongAgo).Should().BeTrue("a dry run deletes nothing");
        File.Exists(oldOrphan).Should().BeTrue();

        var result = await table.VacuumAsync(TimeSpan.FromDays(7));

        result.Files.Should().BeEquivalentTo(dryRun.Files);
        Exists(removedLongAgo).Should().BeFalse();
        File.Exists(oldOrphan).Should().BeFalse();
        Exists(removedRecently).Should().BeTrue("it was removed after the horizon, so version 2 still references it");
        Exists(active).Should().BeTrue();
        File.Exists(youngOrphan).Should().BeTrue("it may belong to a writer that has not committed yet");
        File.Exists(hidden).Should().BeTrue();
        File.Exists(strayInLog).Should().BeTrue();
        TestTables.LogFiles(TablePath).Should().Equal(logBefore, "vacuum never touches _delta_log or commits");
        (await table.GetSnapshotAsync(2)).Files().Should().OnlyContain(f => Exists(f));

        var everything = await table.VacuumAsync(TimeSpan.Zero);

        everything.OldestRetainedVersion.Should().Be(3);
        everything.Files.Select(f => f.Path).Should().BeEquivalentTo([removedRecently.Path, "bucket=2026-11-23T10/path=stream/part-orphan-young.parquet"]);
        Exists(active).Should().BeTrue("the latest version is always retained");
        (await table.GetSnapshotAsync()).Files().Should().OnlyContain(f => Exists(f));
    }

    [Fact]
    public async Task Vacuum_keeps_every_file_of_versions_younger_than_the_retention()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        var file = TestTables.WriteFile(TablePath, "2026-11-13T10", "stream", written: TestTables.Epoch.AddDays(-10));
        await table.CommitAsync(TestTables.Append(file));
        await table.CommitAsync(DeltaTransaction.Create("DELETE").Remove(file.Path).Build());
        _time.Set(TestTables.Epoch.AddDays(-9));

        var result = await table.VacuumAsync(TimeSpan.FromDays(7));

        result.OldestRetainedVersion.Should().Be(0, "every commit is younger than the horizon");
        result.Files.Should().BeEmpty();
        Exists(file).Should().BeTrue();
    }

    [Fact]
    public async Task A_handle_that_vacuums_again_replays_only_the_commits_since_its_last_horizon_and_answers_as_a_fresh_handle_does()
    {
        // Thirty days of a compacted bucket: each day's commit adds a file and removes the day before's.
        var start = TestTables.Epoch.AddDays(-40);
        _time.Set(start);
        await TestTables.CreateAsync(TablePath, _time);
        var writer = await DeltaTable.OpenAsync(TablePath, TestTables.Options(_time));
        AddFile? previous = null;
        for (int day = 1; day <= 30; day++)
        {
            _time.Set(start.AddDays(day));
            var file = TestTables.WriteFile(TablePath, "2026-11-13T10", "stream", written: start.AddDays(day));
            var commit = DeltaTransaction.Create("OPTIMIZE").WithWriterSchema(TestTables.Schema).Add(file);
            await writer.CommitAsync((previous is null ? commit : commit.Remove(previous.Path)).Build());
            previous = file;
        }

        var store = new CountingLogStore(new FileSystemLogStore(TablePath));
        var kept = await DeltaTable.OpenAsync(store, TablePath, TestTables.Options(_time), CancellationToken.None);
        long lastOldest = -1;
        foreach (int day in new[] { 12, 15, 16, 22, 31, 40 })
        {
            _time.Set(start.AddDays(day));
            int readsBefore = store.Reads;

            var again = await kept.VacuumAsync(TimeSpan.FromDays(7), dryRun: true);

            int reads = store.Reads - readsBefore;
            var fresh = await (await DeltaTable.OpenAsync(TablePath, TestTables.Options(_time))).VacuumAsync(TimeSpan.FromDays(7), dryRun: true);
            again.OldestRetainedVersion.Should().Be(fresh.OldestRetainedVersion, $"day {day}");
            again.Files.Should().Equal(fresh.Files, $"day {day}");
            if (lastOldest >= 0)
            {
                // The commits after the last horizon's version, and the listing's probe past the end.
                reads.Should().BeLessThanOrEqualTo((int)(again.LatestVersion - lastOldest) + 2, $"day {day}: no replay from version 0");
            }

            lastOldest = again.OldestRetainedVersion;
        }

        // A longer retention moves the horizon back before the last one: a full replay, the same answer.
        var longer = await kept.VacuumAsync(TimeSpan.FromDays(25), dryRun: true);
        var longerFresh = await (await DeltaTable.OpenAsync(TablePath, TestTables.Options(_time))).VacuumAsync(TimeSpan.FromDays(25), dryRun: true);
        longer.OldestRetainedVersion.Should().Be(longerFresh.OldestRetainedVersion).And.BeLessThan(lastOldest);
        longer.Files.Should().Equal(longerFresh.Files);

        var deleted = await kept.VacuumAsync(TimeSpan.FromDays(7));
        var none = await (await DeltaTable.OpenAsync(TablePath, TestTables.Options(_time))).VacuumAsync(TimeSpan.FromDays(7), dryRun: true);
        deleted.Files.Should().NotBeEmpty();
        none.Files.Should().BeEmpty();
        (await kept.GetSnapshotAsync()).Files().Should().OnlyContain(f => Exists(f));
    }

    [Fact]
    public async Task A_new_handle_s_first_vacuum_starts_from_its_log_snapshot_and_answers_as_a_replay_from_version_0()
    {
        // Forty days of a compacted bucket, a commit a day. The last commit's clock runs behind the one
        // before it (another writer's skewed clock): a vacuum's running clock does not follow it back.
        var start = TestTables.Epoch.AddDays(-60);
        _time.Set(start);
        await TestTables.CreateAsync(TablePath, _time);
        var noSnapshots = TestTables.Options(_time) with { SnapshotInterval = 0 };
        var snapshots = TestTables.Options(_time) with { SnapshotInterval = 10 };
        var writer = await DeltaTable.OpenAsync(TablePath, noSnapshots);
        AddFile? previous = null;
        async Task CommitDayAsync(DeltaTable table, int day, DateTimeOffset at)
        {
            _time.Set(at);
            var file = TestTables.WriteFile(TablePath, "2026-11-13T10", "stream", written: start.AddDays(day));
            var commit = DeltaTransaction.Create("OPTIMIZE").WithWriterSchema(TestTables.Schema).Add(file);
            await table.CommitAsync((previous is null ? commit : commit.Remove(previous.Path)).Build());
            previous = file;
        }

        for (int day = 1; day <= 40; day++)
        {
            await CommitDayAsync(writer, day, start.AddDays(day == 40 ? 35 : day));
        }

        // A handle that replays the 41 commits keeps a snapshot of them.
        await DeltaTable.OpenAsync(TablePath, snapshots);
        var snapshot = await LatestSnapshotAsync();
        snapshot.State.Version.Should().Be(40);
        snapshot.Clock.Should().Be(start.AddDays(39), "the running clock, not the last commit's own time");

        async Task CheckAsync(DateTimeOffset now, bool fromSnapshot)
        {
            _time.Set(now);
            var replayed = await (await DeltaTable.OpenAsync(TablePath, noSnapshots)).VacuumAsync(TimeSpan.FromDays(7), dryRun: true);

            // From the snapshot, a vacuum reads none of the commits before it: version 1, damaged for the
            // while, would fail a replay from version 0.
            var first = Path.Combine(TablePath, "_delta_log", $"{1:D20}.json");
            var saved = await File.ReadAllBytesAsync(first);
            if (fromSnapshot)
            {
                await File.WriteAllTextAsync(first, "{ damaged");
            }

            VacuumResult vacuum;
            try
            {
                vacuum = await (await DeltaTable.OpenAsync(TablePath, snapshots)).VacuumAsync(TimeSpan.FromDays(7), dryRun: true);
            }
            finally
            {
                await File.WriteAllBytesAsync(first, saved);
            }

            vacuum.OldestRetainedVersion.Should().Be(replayed.OldestRetainedVersion, $"at {now}");
            vacuum.Files.Should().Equal(replayed.Files, $"at {now}");
            vacuum.Files.Should().NotBeEmpty();
        }

        // Horizon at day 37.5: after the last commit's own time, before the clock. From the snapshot, with
        // its own time for a clock, day 37's file (current at the horizon) would be taken.
        await CheckAsync(start.AddDays(44.5), fromSnapshot: false);
        await CheckAsync(start.AddDays(50), fromSnapshot: true);

        // Ten more commits through a handle opened from that snapshot: the next one, taken in the
        // background, carries the clock on from it.
        var live = await DeltaTable.OpenAsync(TablePath, snapshots);
        for (int day = 41; day <= 50; day++)
        {
            await CommitDayAsync(live, day, start.AddDays(day));
        }

        await live.SnapshotWrite;
        var next = await LatestSnapshotAsync();
        next.State.Version.Should().Be(50);
        var history = await (await DeltaTable.OpenAsync(TablePath, noSnapshots)).GetHistoryAsync();
        next.Clock.Should().Be(history.Max(c => c.Timestamp)).And.Be(start.AddDays(50));
        await CheckAsync(start.AddDays(60), fromSnapshot: true);
    }

    private async Task<LogSnapshot> LatestSnapshotAsync()
    {
        var log = new DeltaLogReader(new FileSystemLogStore(TablePath), TablePath, _time, TimeSpan.Zero);
        var snapshot = await new LogSnapshots(Path.Combine(TablePath, "_delta_log")).TryReadLatestAsync(long.MaxValue, log, CancellationToken.None);
        snapshot.Should().NotBeNull();
        return snapshot!;
    }

    [Fact]
    public async Task A_negative_retention_is_rejected()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);

        var act = () => table.VacuumAsync(TimeSpan.FromHours(-1));

        await act.Should().ThrowAsync<ArgumentOutOfRangeException>();
    }

    /// <summary>Counts the commit files read through it.</summary>
    private sealed class CountingLogStore(IDeltaLogStore inner) : IDeltaLogStore
    {
        private int _reads;

        public int Reads => Volatile.Read(ref _reads);

        public string Location => inner.Location;

        public string Describe(long version) => inner.Describe(version);

        public string DescribeFile(string fileName) => inner.DescribeFile(fileName);

        public ValueTask<(Stream Content, DateTimeOffset LastModified)?> OpenFileAsync(string fileName, CancellationToken cancellationToken) =>
            inner.OpenFileAsync(fileName, cancellationToken);

        public ValueTask<LogListing> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

        public ValueTask<LogEntry?> ReadAsync(long version, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _reads);
            return inner.ReadAsync(version, cancellationToken);
        }

        public ValueTask<bool> TryCommitAsync(long version, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
            inner.TryCommitAsync(version, content, cancellationToken);
    }
}
