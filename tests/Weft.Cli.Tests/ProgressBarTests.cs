using FluentAssertions;
using Weft.Batch;
using Xunit;

namespace Weft.Cli.Tests;

public sealed class ProgressBarTests
{
    /// <summary>
    /// Off a terminal: one line per chunk computed, none per chunk resumed past (a resumed backfill of
    /// 480 chunks printed 480 lines saying nothing); the share done, the time taken and the time left
    /// at the pace of the chunks computed (resumed ones took no time and do not count).
    /// </summary>
    [Fact]
    public void Off_a_terminal_each_computed_chunk_is_a_line_with_the_share_done_and_the_time_left()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var bar = new ProgressBar(output, clock, interactive: false);

        for (int i = 1; i <= 4; i++)
        {
            bar.Report(new BatchProgress(i, 10, i, 0, 0, 0, $"c{i}"));
        }

        clock.Advance(TimeSpan.FromSeconds(30));
        bar.Report(new BatchProgress(5, 10, 4, 1_000, 900, 3, "c5"));
        clock.Advance(TimeSpan.FromSeconds(30));
        bar.Report(new BatchProgress(6, 10, 4, 2_000, 1_800, 6, "c6"));
        for (int i = 7; i <= 10; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(30));
            bar.Report(new BatchProgress(i, 10, 4, i * 1_000, i * 900, i, $"c{i}"));
        }

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().HaveCount(6, "the four resumed chunks print nothing of their own");
        lines[0].Should().Contain(" 50% 5/10 chunks (4 resumed)").And.Contain("30s  left ~2m30s").And.Contain("1,000 in, 900 out, 3 dead  c5");
        lines[1].Should().Contain(" 60% 6/10").And.Contain("1m00s  left ~2m00s");
        lines[^1].Should().Contain("100% 10/10").And.Contain("3m00s").And.NotContain("left");
    }

    /// <summary>A fresh run's clock starts when the bar is made, before the first chunk: started at the first report, the first chunk's time was missing from every estimate.</summary>
    [Fact]
    public void A_fresh_runs_time_left_counts_the_first_chunk()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var bar = new ProgressBar(output, clock, interactive: false);

        clock.Advance(TimeSpan.FromSeconds(40));
        bar.Report(new BatchProgress(1, 4, 0, 10, 10, 0, "c1"));

        output.ToString().Should().Contain(" 25% 1/4 chunks  40s  left ~2m00s");
    }

    /// <summary>On a terminal the line is redrawn in place, so it is cut to the terminal's width, and a shorter line blanks what a longer one left.</summary>
    [Fact]
    public void On_a_terminal_the_line_fits_the_width_and_covers_the_one_before()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var bar = new ProgressBar(output, clock, interactive: true, width: 80);

        bar.Report(new BatchProgress(1, 3, 0, 123_456_789, 123_456_000, 42, "2026-11-01T00..2026-11-01T23"));
        clock.Advance(TimeSpan.FromSeconds(5));
        bar.Report(new BatchProgress(2, 3, 0, 5, 5, 0, "x"));
        bar.Finish();

        var redraws = output.ToString().TrimEnd('\n').Split('\r', StringSplitOptions.RemoveEmptyEntries);
        redraws.Should().HaveCount(2);
        redraws.Should().OnlyContain(r => r.Length <= 79, "a line as wide as the terminal wraps, and \\r then redraws only its last row");
        redraws[1].Length.Should().Be(redraws[0].Length, "padded over the longer line before");
        redraws[1].TrimEnd().Should().EndWith("5 in, 5 out, 0 dead  x");
    }

    [Theory]
    [InlineData(0.2, "1s")]
    [InlineData(42, "42s")]
    [InlineData(185, "3m05s")]
    [InlineData(7_620, "2h07m")]
    public void Durations_read_as_a_clock(double seconds, string text) =>
        ProgressBar.Clock(TimeSpan.FromSeconds(seconds)).Should().Be(text);
}
