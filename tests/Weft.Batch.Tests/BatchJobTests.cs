using FluentAssertions;
using Weft.Storage;
using Xunit;

namespace Weft.Batch.Tests;

public sealed class BatchJobTests
{
    [Fact]
    public async Task A_range_past_the_data_ending_mid_bucket_empties_those_buckets_without_error()
    {
        using var world = await BatchWorld.CreateAsync(seed: 31, events: 200);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        long end = BatchWorld.Start + 4 * BatchWorld.Day + 30 * 60_000_000L; // a day with no events, ending half-way through an hour
        var result = await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, end), null, CancellationToken.None);

        result.Chunks.Should().Be(5);
        result.EventsOut.Should().BeGreaterThan(0);
        var table = await EventTable.OpenAsync(world.Config.EnrichedTable("engagement"));
        var history = await table.Log.GetHistoryAsync();
        history.Count(c => c.Parameters.ContainsKey(LakeParameters.Run)).Should().Be(5, "every chunk commits, the empty ones too");
    }

    [Fact]
    public async Task A_chunk_whose_events_the_filter_all_drops_commits_empty_buckets_instead_of_failing_on_the_enriched_schema()
    {
        using var world = await BatchWorld.CreateAsync(seed: 32, events: 0, write: false);
        // Day one: only short clicks, which the signal's dwell filter drops; day two: a save, which it keeps.
        world.Events.Add(new RawEvent("short-1", 1, "click", BatchWorld.Start + BatchWorld.Hour, BatchWorld.Start + BatchWorld.Hour + 1, 3, 100));
        world.Events.Add(new RawEvent("short-2", 2, "click", BatchWorld.Start + 2 * BatchWorld.Hour, BatchWorld.Start + 2 * BatchWorld.Hour + 1, 4, 20));
        world.Events.Add(new RawEvent("save-1", 1, "save", BatchWorld.Start + BatchWorld.Day + BatchWorld.Hour, BatchWorld.Start + BatchWorld.Day + BatchWorld.Hour + 1, 5, null));
        await world.WriteAsync();
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");

        var result = await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + 2 * BatchWorld.Day), null, CancellationToken.None);

        result.Chunks.Should().Be(2);
        result.EventsIn.Should().Be(3);
        result.EventsOut.Should().Be(1);
        var table = await EventTable.OpenAsync(world.Config.EnrichedTable("engagement"));
        var ids = new List<string?>();
        await foreach (var batch in table.ReadAsync([Weft.Definitions.StandardColumns.EventId, "embedding"]))
        {
            ids.AddRange(((Weft.Engine.StringColumn)batch[Weft.Definitions.StandardColumns.EventId]).Values);
        }

        ids.Should().Equal("save-1");
    }
}
