using FluentAssertions;
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

        File.SetLastWriteTimeUtc(old, DateTime.UtcNow - RawArchive.StaleAfter - TimeSpan.FromMinutes(1));
        File.SetLastWriteTimeUtc(recent, DateTime.UtcNow - RawArchive.StaleAfter + TimeSpan.FromMinutes(5));
        File.SetLastWriteTimeUtc(committed, DateTime.UtcNow.AddDays(-30));

        using (new RawArchive(_folder))
        {
        }

        File.Exists(old).Should().BeFalse("its runtime is gone: its records were not committed and are read again");
        File.Exists(recent).Should().BeTrue("it may be a live runtime's, between two flushes");
        File.Exists(committed).Should().BeTrue();
    }
}
