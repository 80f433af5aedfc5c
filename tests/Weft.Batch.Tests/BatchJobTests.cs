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
}
