using FluentAssertions;
using Weft.Engine;
using Xunit;

namespace Weft.Batch.Tests;

public sealed class EnrichedLakeStateTests
{
    [Fact]
    public async Task A_long_lived_lake_catches_up_on_new_commits_reading_only_those()
    {
        using var world = await BatchWorld.CreateAsync(seed: 11, events: 300);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var path = world.Config.EnrichedTable("engagement");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day), null, CancellationToken.None);
        var lake = await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None);
        var first = await lake.GetStateAsync(CancellationToken.None);
        first.SealedBuckets.Should().NotBeEmpty();

        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start + BatchWorld.Day, BatchWorld.Start + 3 * BatchWorld.Day), null, CancellationToken.None);
        var fresh = await (await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None)).GetStateAsync(CancellationToken.None);

        // Damage an entry the first state already covered: a reader that re-read the whole history would fail on it.
        await File.WriteAllTextAsync(Path.Combine(path, "_delta_log", "00000000000000000001.json"), "{ damaged");
        var caughtUp = await lake.GetStateAsync(CancellationToken.None);

        caughtUp.Version.Should().BeGreaterThan(first.Version).And.Be(fresh.Version);
        caughtUp.SealedBuckets.Should().BeEquivalentTo(fresh.SealedBuckets);
        caughtUp.SealedBuckets.Should().Contain(first.SealedBuckets).And.HaveCountGreaterThan(first.SealedBuckets.Count);
        caughtUp.SealedThroughMicros.Should().Be(fresh.SealedThroughMicros).And.BeGreaterThan(first.SealedThroughMicros!.Value);
        (await lake.GetStateAsync(CancellationToken.None)).Should().BeSameAs(caughtUp);
    }
}
