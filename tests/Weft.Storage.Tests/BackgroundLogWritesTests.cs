using FluentAssertions;
using Xunit;

namespace Weft.Storage.Tests;

/// <summary>
/// The checkpoints and log snapshots a commit starts in the background are waited for before a CLI
/// process exits (they were killed half-written, leaving no checkpoint and a temporary file), and a
/// vacuum removes the temporary files such killed writes left in the log.
/// </summary>
public sealed class BackgroundLogWritesTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(TestTables.Epoch);

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task A_checkpoint_a_commit_started_is_written_whole_once_the_wait_returns()
    {
        var path = _directory.Combine("t");
        var table = await DeltaTable.CreateAsync(path, TestTables.Schema, TestTables.PartitionColumns, new DeltaTableOptions { TimeProvider = _time, CheckpointInterval = 2 });
        // Enough files that the checkpoint takes a while to write: the wait, not luck, has it done.
        var files = Enumerable.Range(0, 40_000).Select(i => new AddFile($"bucket=b{i % 50}/path=batch/part-{i:D6}.parquet", TestTables.Partition($"b{i % 50}", "batch"), 100 + i, TestTables.Epoch, null)).ToArray();
        await table.CommitAsync(TestTables.Append(files[..20_000]));
        await table.CommitAsync(TestTables.Append(files[20_000..]));

        (await BackgroundLogWrites.WaitAsync(TimeSpan.FromMinutes(2))).Should().BeTrue();

        var log = Path.Combine(path, "_delta_log");
        File.Exists(Path.Combine(log, DeltaLogNaming.CheckpointFileName(2))).Should().BeTrue();
        Directory.GetFiles(log, ".*.tmp").Should().BeEmpty();
        (await (await DeltaTable.OpenAsync(path)).GetSnapshotAsync()).FileCount.Should().Be(40_000);
    }

    [Fact]
    public async Task The_wait_ends_when_the_writes_running_end_or_at_its_timeout()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var write = BackgroundLogWrites.Start(() => gate.Task);

        (await BackgroundLogWrites.WaitAsync(TimeSpan.FromMilliseconds(50))).Should().BeFalse("the write has not ended");
        write.IsCompleted.Should().BeFalse();
        gate.SetResult();
        (await BackgroundLogWrites.WaitAsync(TimeSpan.FromMinutes(1))).Should().BeTrue();
        write.IsCompletedSuccessfully.Should().BeTrue();
    }

    [Fact]
    public async Task A_vacuum_removes_a_killed_log_writes_temporary_files_older_than_the_horizon()
    {
        var path = _directory.Combine("v");
        await TestTables.CreateAsync(path, _time);
        var log = Path.Combine(path, "_delta_log");
        var snapshots = Path.Combine(log, "_weft_snapshots");
        Directory.CreateDirectory(snapshots);
        string Temp(string directory, string name, DateTimeOffset written)
        {
            var full = Path.Combine(directory, name);
            File.WriteAllBytes(full, new byte[3]);
            File.SetLastWriteTimeUtc(full, written.UtcDateTime);
            return full;
        }

        var oldCheckpoint = Temp(log, $".{DeltaLogNaming.CheckpointFileName(300)}.{Guid.NewGuid():N}.tmp", TestTables.Epoch.AddDays(-8));
        var oldSnapshot = Temp(snapshots, $".{Guid.NewGuid():N}.tmp", TestTables.Epoch.AddDays(-9));
        var young = Temp(log, $".{DeltaLogNaming.CommitFileName(1)}.{Guid.NewGuid():N}.tmp", TestTables.Epoch.AddHours(-1));
        var table = await DeltaTable.OpenAsync(path, TestTables.Options(_time));

        var dry = await table.VacuumAsync(TimeSpan.FromDays(7), dryRun: true);
        dry.Files.Select(f => f.Path).Should().BeEquivalentTo([Path.GetRelativePath(path, oldCheckpoint), Path.GetRelativePath(path, oldSnapshot)]);
        File.Exists(oldCheckpoint).Should().BeTrue("a dry run deletes nothing");

        var done = await table.VacuumAsync(TimeSpan.FromDays(7));
        done.Files.Should().HaveCount(2);
        File.Exists(oldCheckpoint).Should().BeFalse();
        File.Exists(oldSnapshot).Should().BeFalse();
        File.Exists(young).Should().BeTrue("a temporary file younger than the horizon may be a write still running");
        (await (await DeltaTable.OpenAsync(path)).GetSnapshotAsync()).Version.Should().Be(0);
    }
}
