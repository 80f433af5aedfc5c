using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>The hot-user cap: raw events per user and hour of event time, beyond the cap dead-lettered.</summary>
public sealed class HotUserCapExecutorTests
{
    private const long Hour = 3_600_000_000L;
    private static readonly ExecutorContext Context = new(TestSignals.Engagement());

    [Fact]
    public async Task Events_past_the_cap_in_one_hour_are_rejected_and_the_next_hour_starts_again()
    {
        var cap = new HotUserCapExecutor(maxEventsPerHour: 2);
        var kept = await cap.ExecuteAsync(Batch((7, 0), (7, 10), (8, 20), (7, 30), (7, Hour + 1)), Context, CancellationToken.None);

        Users(kept).Should().Equal(7, 7, 8, 7);
        Times(kept).Should().Equal(0, 10, 20, Hour + 1);
    }

    [Fact]
    public async Task Many_users_make_it_forget_hours_far_behind_the_newest_but_not_recent_ones()
    {
        var cap = new HotUserCapExecutor(maxEventsPerHour: 2);
        long recent = (100 - HotUserCapExecutor.KeptHours) * Hour; // the oldest hour still kept at hour 100
        await cap.ExecuteAsync(Batch((1, 0), (1, 1), (2, recent), (2, recent + 1)), Context, CancellationToken.None);

        // More distinct users than are kept unpruned, all in hour 100: a prune.
        var crowd = Enumerable.Range(0, HotUserCapExecutor.PruneAbove + 1).Select(i => (User: 1_000L + i, Time: 100 * Hour)).ToArray();
        (await cap.ExecuteAsync(Batch(crowd), Context, CancellationToken.None)).RowCount.Should().Be(crowd.Length);

        // Hour 0 was forgotten: user 1 starts from zero there. Hour 52 was not: user 2 is past the cap.
        var after = await cap.ExecuteAsync(Batch((1, 2), (2, recent + 2)), Context, CancellationToken.None);
        Users(after).Should().Equal(1);
    }

    private static EventBatch Batch(params (long User, long Time)[] rows) => new(
        [new FieldDefinition(StandardColumns.UserId, WeftType.Int64), new FieldDefinition(StandardColumns.EventTime, WeftType.Timestamp)],
        [new PrimitiveColumn<long>(WeftType.Int64, rows.Select(r => r.User).ToArray()), new PrimitiveColumn<long>(WeftType.Timestamp, rows.Select(r => r.Time).ToArray())]);

    private static long[] Users(EventBatch batch) => ((PrimitiveColumn<long>)batch[StandardColumns.UserId]).Values;

    private static long[] Times(EventBatch batch) => ((PrimitiveColumn<long>)batch[StandardColumns.EventTime]).Values;
}
