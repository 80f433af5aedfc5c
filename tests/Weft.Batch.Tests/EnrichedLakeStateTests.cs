using FluentAssertions;
using Weft.Engine;
using Weft.Storage;
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

    [Fact]
    public async Task A_first_read_starts_from_the_sealed_buckets_a_previous_reader_kept()
    {
        using var world = await BatchWorld.CreateAsync(seed: 12, events: 100);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var path = world.Config.EnrichedTable("engagement");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day), null, CancellationToken.None);

        // Many more commits, some sealing a bucket each: a history long enough to keep a fold of.
        var table = await Weft.Storage.DeltaTable.OpenAsync(path);
        var sealedByCommits = new List<string>();
        for (int i = 0; i < EnrichedLake.FoldKeepAfter + 20; i++)
        {
            var commit = Weft.Storage.DeltaTransaction.Create("WRITE");
            if (i % 10 == 0)
            {
                string bucket = TimeBuckets.Format(BatchWorld.Start + (5 * BatchWorld.Day) + (i * BatchWorld.Hour), Weft.Definitions.TimeBucket.Hour);
                commit.WithParameter(LakeParameters.Sealed, bucket);
                sealedByCommits.Add(bucket);
            }

            await table.CommitAsync(commit.Build());
        }

        var whole = await (await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None)).GetStateAsync(CancellationToken.None);
        whole.SealedBuckets.Should().Contain(sealedByCommits);
        var fold = await table.ReadFoldAsync(EnrichedLake.SealedFold);
        fold.Should().NotBeNull("the first read folded more than the threshold of commits, so it kept them");
        fold!.Value.Version.Should().Be(whole.Version);

        // An early commit's sealed bucket, rewritten: a reader of the whole history would now see it.
        // A first read from the fold reads only what came after, and a newer seal.
        var early = Path.Combine(path, "_delta_log", "00000000000000000001.json");
        var text = await File.ReadAllTextAsync(early);
        await File.WriteAllTextAsync(early, text.Replace("\"weft.sealed\":\"", "\"weft.sealed\":\"2031-01-01T00,", StringComparison.Ordinal));
        await table.CommitAsync(Weft.Storage.DeltaTransaction.Create("WRITE").WithParameter(LakeParameters.Sealed, "2030-06-01T00").Build());
        var fromFold = await (await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None)).GetStateAsync(CancellationToken.None);

        text.Should().Contain("\"weft.sealed\"", "the batch run's first commit seals buckets");
        fromFold.SealedBuckets.Should().BeEquivalentTo(whole.SealedBuckets.Add("2030-06-01T00"));
        fromFold.SealedThroughMicros.Should().Be(TimeBuckets.Parse("2030-06-01T00").EndMicros);
    }
}
