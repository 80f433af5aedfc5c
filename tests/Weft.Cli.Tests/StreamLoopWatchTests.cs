using FluentAssertions;
using Xunit;

namespace Weft.Cli.Tests;

/// <summary>What <c>weft stream</c>'s /healthz reports: healthy while the loop steps, stuck after a minute of silence.</summary>
public sealed class StreamLoopWatchTests
{
    [Fact]
    public void The_loop_is_reported_stuck_only_after_a_minute_without_a_finished_step()
    {
        var clock = new ManualClock();
        var watch = new StreamLoopWatch(clock);

        clock.Advance(StreamLoopWatch.StuckAfter - TimeSpan.FromSeconds(1));
        watch.Problem().Should().BeNull("59 s without a step is within the limit");

        clock.Advance(TimeSpan.FromSeconds(2));
        watch.Problem().Should().Be("the stream loop has not finished a step for 61 s");

        watch.Stepped();
        watch.Problem().Should().BeNull("a finished step makes it healthy again");
        clock.Advance(TimeSpan.FromSeconds(30));
        watch.Problem().Should().BeNull();
    }

    /// <summary>An idle exit waiting for a tail's recompute: the ended loop is no stuck loop (a liveness probe killed it mid-recompute).</summary>
    [Fact]
    public void A_loop_that_ended_is_not_reported_stuck()
    {
        var clock = new ManualClock();
        var watch = new StreamLoopWatch(clock);
        clock.Advance(StreamLoopWatch.StuckAfter + TimeSpan.FromSeconds(1));
        watch.Problem().Should().NotBeNull();

        watch.Finished();
        watch.Problem().Should().BeNull();
        clock.Advance(TimeSpan.FromMinutes(10));
        watch.Problem().Should().BeNull();
    }
}
