using System.Text;
using FluentAssertions;
using Xunit;

namespace Weft.Storage.Tests;

/// <summary>The contract every <see cref="IDeltaLogStore"/> must meet; one subclass per implementation.</summary>
public abstract class LogStoreContractTests : IDisposable
{
    private protected abstract IDeltaLogStore Store { get; }

    public abstract void Dispose();

    [Fact]
    public async Task An_empty_log_lists_no_versions_and_reads_nothing()
    {
        var listing = await Store.ListAsync(CancellationToken.None);

        listing.Versions.Should().BeEmpty();
        listing.HasCheckpoints.Should().BeFalse();
        (await Store.ReadAsync(0, CancellationToken.None)).Should().BeNull();
    }

    [Fact]
    public async Task Commit_if_absent_writes_once_and_refuses_the_second_writer()
    {
        (await Store.TryCommitAsync(0, Encoding.UTF8.GetBytes("first\n"), CancellationToken.None)).Should().BeTrue();
        (await Store.TryCommitAsync(0, Encoding.UTF8.GetBytes("second\n"), CancellationToken.None)).Should().BeFalse();
        (await Store.TryCommitAsync(1, Encoding.UTF8.GetBytes("next\n"), CancellationToken.None)).Should().BeTrue();

        (await Store.ListAsync(CancellationToken.None)).Versions.Should().Equal(0, 1);
        var entry = await Store.ReadAsync(0, CancellationToken.None);
        Encoding.UTF8.GetString(entry!.Content).Should().Be("first\n");
        entry.Version.Should().Be(0);
    }

    [Fact]
    public async Task Of_many_writers_racing_for_one_version_exactly_one_wins_and_its_content_is_whole()
    {
        const int writers = 16;
        var payloads = Enumerable.Range(0, writers).Select(i => Encoding.UTF8.GetBytes(new string((char)('a' + i), 64 * 1024) + "\n")).ToArray();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var tasks = payloads.Select(p => Task.Run(async () =>
        {
            await start.Task;
            return await Store.TryCommitAsync(7, p, CancellationToken.None);
        })).ToArray();
        start.SetResult();
        var results = await Task.WhenAll(tasks);

        results.Count(won => won).Should().Be(1);
        var winner = payloads[Array.IndexOf(results, true)];
        (await Store.ReadAsync(7, CancellationToken.None))!.Content.Should().Equal(winner);
        (await Store.ListAsync(CancellationToken.None)).Versions.Should().Equal(7);
    }
}

public sealed class FileSystemLogStoreTests : LogStoreContractTests
{
    private readonly TempDirectory _directory = new();

    public FileSystemLogStoreTests()
    {
        Store = new FileSystemLogStore(_directory.Path);
    }

    private protected override IDeltaLogStore Store { get; }

    public override void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Commits_are_named_with_twenty_digits_and_leave_no_temp_files()
    {
        await Store.TryCommitAsync(0, "x\n"u8.ToArray(), CancellationToken.None);
        await Store.TryCommitAsync(0, "y\n"u8.ToArray(), CancellationToken.None);
        await Store.TryCommitAsync(12, "z\n"u8.ToArray(), CancellationToken.None);

        TestTables.LogFiles(_directory.Path).Should().Equal("00000000000000000000.json", "00000000000000000012.json");
        Store.Describe(12).Should().Be(_directory.Combine("_delta_log", "00000000000000000012.json"));
    }

    [Fact]
    public async Task Listing_ignores_files_that_are_not_commits_and_notices_checkpoints()
    {
        var log = Directory.CreateDirectory(_directory.Combine("_delta_log")).FullName;
        await File.WriteAllTextAsync(Path.Combine(log, "00000000000000000003.json"), "{}\n");
        await File.WriteAllTextAsync(Path.Combine(log, ".00000000000000000004.json.0123.tmp"), "partial");
        await File.WriteAllTextAsync(Path.Combine(log, "00000000000000000004.crc"), "{}");
        await File.WriteAllTextAsync(Path.Combine(log, "0000000000000000005.json"), "{}");
        await File.WriteAllTextAsync(Path.Combine(log, "_last_checkpoint"), "{\"version\":2}");
        await File.WriteAllTextAsync(Path.Combine(log, "00000000000000000002.checkpoint.parquet"), "");

        var listing = await Store.ListAsync(CancellationToken.None);

        listing.Versions.Should().Equal(3);
        listing.HasCheckpoints.Should().BeTrue();
        listing.Checkpoints.Should().Equal(new CheckpointFile(2, 1, 1, "00000000000000000002.checkpoint.parquet", UuidNamed: false));
    }

    [Fact]
    public async Task A_checkpoint_file_opens_by_name_and_a_missing_one_is_null()
    {
        var log = Directory.CreateDirectory(_directory.Combine("_delta_log")).FullName;
        await File.WriteAllBytesAsync(Path.Combine(log, "00000000000000000002.checkpoint.parquet"), [1, 2, 3]);

        var opened = await Store.OpenFileAsync("00000000000000000002.checkpoint.parquet", CancellationToken.None);
        var missing = await Store.OpenFileAsync("00000000000000000004.checkpoint.parquet", CancellationToken.None);

        opened.Should().NotBeNull();
        await using (var content = opened!.Value.Content)
        {
            var bytes = new byte[8];
            (await content.ReadAsync(bytes)).Should().Be(3);
            bytes[..3].Should().Equal(1, 2, 3);
        }

        opened.Value.LastModified.Should().Be(new DateTimeOffset(File.GetLastWriteTimeUtc(Path.Combine(log, "00000000000000000002.checkpoint.parquet")), TimeSpan.Zero));
        missing.Should().BeNull();
        Store.DescribeFile("_last_checkpoint").Should().Be(Path.Combine(log, "_last_checkpoint"));
    }

    [Fact]
    public void Naming_lives_in_one_place_and_parses_only_exact_commit_names()
    {
        DeltaLogNaming.CommitFileName(42).Should().Be("00000000000000000042.json");
        DeltaLogNaming.TryParseCommitFileName("00000000000000000042.json", out var version).Should().BeTrue();
        version.Should().Be(42);
        DeltaLogNaming.TryParseCommitFileName("0000000000000000042.json", out _).Should().BeFalse();
        DeltaLogNaming.TryParseCommitFileName("0000000000000000004x.json", out _).Should().BeFalse();
        DeltaLogNaming.TryParseCommitFileName(DeltaLogNaming.TempFileName(42), out _).Should().BeFalse();
        DeltaLogNaming.IsCheckpointFileName("00000000000000000010.checkpoint.0000000001.0000000002.parquet").Should().BeTrue();
        DeltaLogNaming.IsCheckpointFileName("00000000000000000010.json").Should().BeFalse();
    }
}
