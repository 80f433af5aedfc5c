using FluentAssertions;
using Weft.Engine.Tests;
using Weft.Streaming.Runtime;
using Xunit;

namespace Weft.Streaming.Tests.Runtime;

public sealed class RawArchiveTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "weft-archive-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    /// <summary>
    /// A runtime killed mid-flush leaves its temporary file; the next start deletes it once it has gone
    /// unwritten for longer than any live runtime's would (the folder may be shared by a consumer group),
    /// and leaves a recent one and the committed files alone.
    /// </summary>
    [Fact]
    public void A_start_deletes_temporary_files_left_unwritten_past_the_stale_age_and_keeps_the_rest()
    {
        Directory.CreateDirectory(Path.Combine(_folder, "date=2026-12-05"));
        string old = Path.Combine(_folder, "part-old.jsonl.tmp"), recent = Path.Combine(_folder, "part-recent.jsonl.tmp");
        string committed = Path.Combine(_folder, "date=2026-12-05", "part-000000000000-a.jsonl");
        foreach (var file in new[] { old, recent, committed })
        {
            File.WriteAllText(file, "{\"event_id\":\"x\"}\n");
        }

        // The runtime's clock, not the machine's, says what "an hour ago" is.
        var now = new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
        File.SetLastWriteTimeUtc(old, now.UtcDateTime - RawArchive.StaleAfter - TimeSpan.FromMinutes(1));
        File.SetLastWriteTimeUtc(recent, now.UtcDateTime - RawArchive.StaleAfter + TimeSpan.FromMinutes(5));
        File.SetLastWriteTimeUtc(committed, now.UtcDateTime.AddDays(-30));

        using (RawArchive.Open(_folder, new FakeTimeProvider(now)))
        {
        }

        File.Exists(old).Should().BeFalse("its runtime is gone: its records were not committed and are read again");
        File.Exists(recent).Should().BeTrue("it may be a live runtime's, between two flushes");
        File.Exists(committed).Should().BeTrue();
    }

    [Fact]
    public void A_temporary_file_is_stale_by_the_runtime_clock_so_a_later_clock_deletes_what_an_earlier_one_keeps()
    {
        Directory.CreateDirectory(_folder);
        string file = Path.Combine(_folder, "part-x.jsonl.tmp");
        File.WriteAllText(file, "{\"event_id\":\"x\"}\n");
        var written = new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
        File.SetLastWriteTimeUtc(file, written.UtcDateTime);

        using (RawArchive.Open(_folder, new FakeTimeProvider(written + RawArchive.StaleAfter - TimeSpan.FromSeconds(1))))
        {
        }

        File.Exists(file).Should().BeTrue("an hour has not passed on the runtime's clock");
        using (RawArchive.Open(_folder, new FakeTimeProvider(written + RawArchive.StaleAfter + TimeSpan.FromSeconds(1))))
        {
        }

        File.Exists(file).Should().BeFalse();
    }
}
