using FluentAssertions;
using Xunit;

namespace Weft.Storage.Tests;

public sealed class BadLogTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private string TablePath => _directory.Combine("events");

    private string LogFile(long version) => Path.Combine(TablePath, "_delta_log", DeltaLogNaming.CommitFileName(version));

    private async Task<DeltaTable> TableWithVersionsAsync(int appends, DeltaTableOptions? options = null)
    {
        var table = await DeltaTable.CreateAsync(TablePath, TestTables.Schema, TestTables.PartitionColumns, options);
        for (var i = 0; i < appends; i++)
        {
            await table.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T10", "stream")));
        }

        return table;
    }

    private async Task CommitRawAsync(long version, params DeltaAction[] actions) =>
        (await new FileSystemLogStore(TablePath).TryCommitAsync(version, DeltaActionCodec.Serialize(actions), CancellationToken.None)).Should().BeTrue();

    [Fact]
    public async Task A_directory_without_a_log_is_not_a_table()
    {
        Directory.CreateDirectory(TablePath);

        var act = () => DeltaTable.OpenAsync(TablePath);

        (await act.Should().ThrowAsync<DeltaLogException>()).WithMessage($"No Delta table at '{TablePath}'*holds no commit files*");
    }

    /// <summary>Both said the folder "holds no commit files", as if it existed.</summary>
    [Fact]
    public async Task A_path_that_does_not_exist_or_is_a_file_is_told_so()
    {
        var missing = () => DeltaTable.OpenAsync(TablePath);
        (await missing.Should().ThrowAsync<DeltaLogException>()).WithMessage($"No Delta table at '{TablePath}': it does not exist.");

        Directory.CreateDirectory(Path.GetDirectoryName(TablePath)!);
        await File.WriteAllTextAsync(TablePath, "{}");
        var file = () => DeltaTable.OpenAsync(TablePath);
        (await file.Should().ThrowAsync<DeltaLogException>()).WithMessage($"No Delta table at '{TablePath}': it is a file*");
    }

    [Fact]
    public async Task A_gap_in_the_versions_names_the_missing_log_entry()
    {
        var table = await TableWithVersionsAsync(3, new DeltaTableOptions { LogCheckInterval = TimeSpan.Zero }); // the live handle lists at every refresh
        File.Delete(LogFile(2));

        var open = () => DeltaTable.OpenAsync(TablePath);
        var error = (await open.Should().ThrowAsync<DeltaLogException>()).Which;
        error.FilePath.Should().Be(LogFile(2));
        error.Message.Should().Contain("gap").And.Contain(LogFile(2)).And.Contain("version 3 exists");
        error.IsTransient.Should().BeFalse();

        var snapshot = () => table.GetSnapshotAsync();
        await snapshot.Should().ThrowAsync<DeltaLogException>().WithMessage("*gap*");
        var commit = () => table.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T10", "stream")));
        await commit.Should().ThrowAsync<DeltaLogException>();
        File.Exists(LogFile(4)).Should().BeFalse("a failed commit writes nothing");
    }

    [Fact]
    public async Task A_live_handle_lists_the_log_once_per_check_interval_and_finds_new_commits_and_gaps_all_the_same()
    {
        var clock = new ManualClock();
        var options = new DeltaTableOptions { TimeProvider = clock, LogCheckInterval = TimeSpan.FromMinutes(1) };
        await TableWithVersionsAsync(0, options);
        var store = new ListCountingStore(new FileSystemLogStore(TablePath));
        var table = await DeltaTable.OpenAsync(store, TablePath, options, CancellationToken.None);
        var other = await DeltaTable.OpenAsync(TablePath);
        store.Lists.Should().Be(1, "an open lists the log");

        for (int i = 0; i < 20; i++)
        {
            await table.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T10", "stream")));
            await other.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T11", "stream")));
            clock.Advance(TimeSpan.FromSeconds(2));
        }

        (await table.GetSnapshotAsync()).Version.Should().Be(40, "the other writer's commits are found by reading past the known version");
        store.Lists.Should().Be(1, "40 s of commits and refreshes within the interval list nothing");

        File.Delete(LogFile(2));
        (await table.GetSnapshotAsync()).Version.Should().Be(40, "a gap below the known version waits for the next listing");
        clock.Advance(TimeSpan.FromSeconds(30));
        var snapshot = () => table.GetSnapshotAsync();
        await snapshot.Should().ThrowAsync<DeltaLogException>().WithMessage("*gap*");
        store.Lists.Should().Be(2);
    }

    [Fact]
    public async Task A_negative_log_check_interval_is_refused()
    {
        var act = () => TableWithVersionsAsync(0, new DeltaTableOptions { LogCheckInterval = TimeSpan.FromSeconds(-1) });
        await act.Should().ThrowAsync<ArgumentOutOfRangeException>().WithMessage("*LogCheckInterval*");
    }

    /// <summary>A clock whose timestamps move only when told (intervals, not wall time).</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = TimeSpan.TicksPerDay;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    /// <summary>Counts the log listings made through it.</summary>
    private sealed class ListCountingStore(IDeltaLogStore inner) : IDeltaLogStore
    {
        public int Lists { get; private set; }

        public string Location => inner.Location;

        public string Describe(long version) => inner.Describe(version);

        public string DescribeFile(string fileName) => inner.DescribeFile(fileName);

        public ValueTask<(Stream Content, DateTimeOffset LastModified)?> OpenFileAsync(string fileName, CancellationToken cancellationToken) =>
            inner.OpenFileAsync(fileName, cancellationToken);

        public ValueTask<LogListing> ListAsync(CancellationToken cancellationToken)
        {
            Lists++;
            return inner.ListAsync(cancellationToken);
        }

        public ValueTask<LogEntry?> ReadAsync(long version, CancellationToken cancellationToken) => inner.ReadAsync(version, cancellationToken);

        public ValueTask<bool> TryCommitAsync(long version, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) => inner.TryCommitAsync(version, content, cancellationToken);
    }

    [Fact]
    public async Task A_malformed_json_line_names_the_file_and_the_line()
    {
        await TableWithVersionsAsync(2);
        await File.AppendAllTextAsync(LogFile(1), "{\"add\":{\"path\":\"x.parquet\",\"partitionValues\":{}\n");
        var before = await File.ReadAllBytesAsync(LogFile(1));

        var act = () => DeltaTable.OpenAsync(TablePath);

        var error = (await act.Should().ThrowAsync<DeltaLogException>()).Which;
        error.FilePath.Should().Be(LogFile(1));
        error.Message.Should().StartWith($"Malformed log entry '{LogFile(1)}', line 3, byte ");
        (await File.ReadAllBytesAsync(LogFile(1))).Should().Equal(before, "reading never repairs or rewrites");
    }

    [Fact]
    public async Task A_log_missing_its_first_entry_behind_an_unreadable_checkpoint_fails_naming_the_checkpoint()
    {
        await TableWithVersionsAsync(2);
        File.Delete(LogFile(0));
        var checkpoint = Path.Combine(TablePath, "_delta_log", "00000000000000000001.checkpoint.parquet");
        await File.WriteAllTextAsync(checkpoint, "");

        var act = () => DeltaTable.OpenAsync(TablePath);

        var error = (await act.Should().ThrowAsync<DeltaLogException>()).Which;
        error.FilePath.Should().Be(checkpoint);
        error.Message.Should().StartWith($"Cannot read checkpoint file '{checkpoint}':");
    }

    [Fact]
    public async Task A_log_missing_its_first_entry_without_a_checkpoint_is_refused_with_the_reason()
    {
        await TableWithVersionsAsync(2);
        File.Delete(LogFile(0));

        var act = () => DeltaTable.OpenAsync(TablePath);

        (await act.Should().ThrowAsync<DeltaLogException>()).WithMessage($"*missing its first entry '{LogFile(0)}' (the earliest present is version 1) and has no checkpoint*");
    }

    [Fact]
    public async Task A_log_cleaned_up_past_its_only_checkpoint_is_refused_with_the_reason()
    {
        await TableWithVersionsAsync(3);
        File.Delete(LogFile(0));
        File.Delete(LogFile(1));
        File.Delete(LogFile(2));
        await File.WriteAllTextAsync(Path.Combine(TablePath, "_delta_log", "00000000000000000001.checkpoint.parquet"), "");

        var act = () => DeltaTable.OpenAsync(TablePath);

        (await act.Should().ThrowAsync<DeltaLogException>()).WithMessage("*starts at version 3*no checkpoint covers them*");
    }

    [Fact]
    public async Task A_last_checkpoint_file_beside_a_complete_log_is_ignored()
    {
        await TableWithVersionsAsync(2);
        await File.WriteAllTextAsync(Path.Combine(TablePath, "_delta_log", "_last_checkpoint"), "{\"version\":1,\"size\":3}");

        var snapshot = await (await DeltaTable.OpenAsync(TablePath)).GetSnapshotAsync();

        snapshot.Version.Should().Be(2);
        snapshot.FileCount.Should().Be(2);
    }

    [Fact]
    public async Task A_higher_reader_version_is_refused_naming_the_version_and_the_file()
    {
        await TableWithVersionsAsync(1);
        await CommitRawAsync(2, new ProtocolAction(4, 8));

        var act = () => DeltaTable.OpenAsync(TablePath);

        var error = (await act.Should().ThrowAsync<DeltaLogException>()).Which;
        error.FilePath.Should().Be(LogFile(2));
        error.Message.Should().Contain("reader version 4").And.Contain(LogFile(2));
    }

    [Fact]
    public async Task An_unknown_required_reader_feature_is_refused_by_name()
    {
        await TableWithVersionsAsync(1);
        await CommitRawAsync(2, new ProtocolAction(3, 7, ["deletionVectors", "catalogManaged"], ["deletionVectors", "catalogManaged"]));

        var act = () => DeltaTable.OpenAsync(TablePath);

        // Only the feature Weft lacks is named: deletion vectors it reads.
        (await act.Should().ThrowAsync<DeltaLogException>()).WithMessage("*reader feature [catalogManaged], which Weft does not implement*");
    }

    [Fact]
    public async Task A_table_needing_a_newer_writer_stays_readable_but_refuses_commits_and_vacuum()
    {
        await TableWithVersionsAsync(1);
        await CommitRawAsync(2, new ProtocolAction(3, 7, [], ["identityColumns"]));
        var table = await DeltaTable.OpenAsync(TablePath);

        (await table.GetSnapshotAsync()).FileCount.Should().Be(1);
        var commit = () => table.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T10", "stream")));
        (await commit.Should().ThrowAsync<DeltaLogException>()).WithMessage("*writer version 7 with writer features [identityColumns]*");
        var vacuum = () => table.VacuumAsync(TimeSpan.FromDays(7));
        await vacuum.Should().ThrowAsync<DeltaLogException>().WithMessage("Cannot vacuum*");
        TestTables.LogFiles(TablePath).Should().HaveCount(3);
    }

    [Fact]
    public async Task A_schema_weft_cannot_represent_is_reported_with_the_file_and_column()
    {
        Directory.CreateDirectory(TablePath);
        const string schema = "{\"type\":\"struct\",\"fields\":[{\"name\":\"price\",\"nullable\":true,\"metadata\":{}}]}";
        await CommitRawAsync(0, new ProtocolAction(1, 2),
            new MetadataAction("id", FormatSpec.Parquet, schema, [], new Dictionary<string, string>()));

        var act = () => DeltaTable.OpenAsync(TablePath);

        (await act.Should().ThrowAsync<DeltaLogException>()).WithMessage($"*'{LogFile(0)}'*column 'price' has no \"type\"*");
    }

    [Fact]
    public async Task A_first_version_without_metadata_is_reported()
    {
        await CommitRawAsync(0, new ProtocolAction(1, 2));

        var act = () => DeltaTable.OpenAsync(TablePath);

        (await act.Should().ThrowAsync<DeltaLogException>()).WithMessage("*lacks a metaData action*");
    }
}
