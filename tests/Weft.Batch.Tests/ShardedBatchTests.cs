using FluentAssertions;
using Weft.Engine;
using Weft.Storage;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary><c>--shard i/n</c>: n processes split one batch job by user hash and commit into one table.</summary>
public sealed class ShardedBatchTests
{
    private static readonly BatchRequest Range = new("engagement", BatchWorld.Start, BatchWorld.Start + 3 * BatchWorld.Day);

    [Theory]
    [InlineData("0/1", 0, 1)]
    [InlineData("3/4", 3, 4)]
    [InlineData("11/16", 11, 16)]
    public void A_shard_parses_from_i_slash_n(string text, int index, int count)
    {
        BatchShard.Parse(text).Should().Be(new BatchShard(index, count));
        BatchShard.Parse(text).ToString().Should().Be(text);
    }

    [Theory]
    [InlineData("4/4")]
    [InlineData("1/0")]
    [InlineData("-1/4")]
    [InlineData("1")]
    [InlineData("a/b")]
    [InlineData("1/2/3")]
    public void A_malformed_shard_is_refused_naming_the_option_and_the_text(string text)
    {
        var act = () => BatchShard.Parse(text);

        act.Should().Throw<ArgumentException>().WithMessage($"--shard '{text}'*");
    }

    [Fact]
    public void Every_user_falls_to_exactly_one_shard_and_the_shards_are_even()
    {
        var rng = new Random(7);
        for (int count = 1; count <= 7; count++)
        {
            var shards = Enumerable.Range(0, count).Select(i => new BatchShard(i, count)).ToArray();
            var sizes = new int[count];
            for (long user = 0; user < 20_000; user++)
            {
                long id = user % 2 == 0 ? user : rng.NextInt64(long.MinValue, long.MaxValue); // neighbours and arbitrary ids
                var owners = shards.Where(s => s.Owns(id)).ToList();
                owners.Should().ContainSingle($"user {id} with {count} shards");
                sizes[owners[0].Index]++;
            }

            foreach (var size in sizes)
            {
                size.Should().BeInRange((int)(20_000 / count * 0.9), (int)(20_000 / count * 1.1), $"{count} shards: {string.Join(", ", sizes)}");
            }
        }
    }

    [Fact]
    public async Task Shards_run_one_after_another_commit_each_chunk_whole_only_when_the_last_share_is_staged()
    {
        var (world, env, path, reference, expected) = await ReferenceRunAsync(23, Range);
        using var _ = world;
        expected.Should().NotBeEmpty();

        // Empty the table's batch rows, so a shard's share showing up early would be seen.
        var table = await EventTable.OpenAsync(path);
        await table.ReplacePartitionsAsync(EventBatch.Empty(env.Signal.EnrichedSchema), EventPartitioner.ByTimeBucket(env.Definition.Bucket, EventLayout.BatchPath),
            PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath));

        var results = new List<BatchResult>();
        for (int i = 0; i < 3; i++)
        {
            results.Add(await new BatchJob(env).RunAsync(Range with { Shard = new BatchShard(i, 3) }, null, CancellationToken.None));
            if (i < 2)
            {
                results[i].ChunksWaiting.Should().Be(results[i].Chunks);
                (await BatchWorld.BatchRowsAsync(path)).Should().BeEmpty($"no chunk is committed while shard {i + 1}/3 and later have not staged");
            }
        }

        results[2].ChunksWaiting.Should().Be(0);
        results.Select(r => r.RunId).Distinct().Should().ContainSingle().Which.Should().NotBe(reference.RunId);
        results.Sum(r => r.EventsIn).Should().Be(reference.EventsIn);
        results.Sum(r => r.EventsOut).Should().Be(reference.EventsOut);
        results.Sum(r => r.DeadLetters).Should().Be(reference.DeadLetters);
        results[0].EventsIn.Should().BeGreaterThan(0);
        results[1].EventsIn.Should().BeGreaterThan(0);
        results[2].EventsIn.Should().BeGreaterThan(0);
        (await BatchWorld.BatchRowsAsync(path)).Should().Equal(expected);
        Directory.Exists(Path.Combine(path, ChunkStaging.Directory)).Should().BeFalse("committed chunks leave no staged shares, nor the empty directories that held them");

        var again = await new BatchJob(env).RunAsync(Range with { Shard = new BatchShard(1, 3) }, null, CancellationToken.None);
        again.ChunksResumed.Should().Be(again.Chunks);
        again.EventsIn.Should().Be(0);
    }

    [Fact]
    public async Task Shards_running_at_once_leave_the_table_an_unsharded_run_leaves()
    {
        var (world, env, path, reference, expected) = await ReferenceRunAsync(29, Range with { BucketsPerChunk = 6 });
        using var _ = world;

        var shards = await Task.WhenAll(Enumerable.Range(0, 4).Select(i =>
            Task.Run(() => new BatchJob(env).RunAsync(Range with { BucketsPerChunk = 6, Shard = new BatchShard(i, 4) }, null, CancellationToken.None))));

        shards.Sum(r => r.EventsIn).Should().Be(reference.EventsIn);
        shards.Sum(r => r.DeadLetters).Should().Be(reference.DeadLetters);
        shards.Sum(r => r.ChunksWaiting).Should().BeLessThanOrEqualTo(3 * reference.Chunks);
        shards.Should().Contain(r => r.ChunksWaiting == 0, "the last shard to finish finds every chunk committed, those it staged and waited on too");
        (await BatchWorld.BatchRowsAsync(path)).Should().Equal(expected);
        var history = await (await EventTable.OpenAsync(path)).Log.GetHistoryAsync();
        history.Count(c => c.Parameters.TryGetValue(LakeParameters.Run, out var run) && run == shards[0].RunId)
            .Should().Be(reference.Chunks, "each chunk is committed once, by one shard");
    }

    /// <summary>
    /// One run started twice at once (the streams of one group recomputing one changed signal's tail): a
    /// chunk the other process committed first, from the same inputs, is taken as committed, where the
    /// commit's conflict failed the run. The table is the one a single run leaves.
    /// </summary>
    [Fact]
    public async Task The_same_run_started_twice_at_once_completes_both_and_leaves_the_table_one_run_leaves()
    {
        var request = Range with { BucketsPerChunk = 1 };
        var (reference, _, _, single, expected) = await ReferenceRunAsync(31, request);
        reference.Dispose();
        using var world = await BatchWorld.CreateAsync(31, events: 600, users: 40);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");

        var runs = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() => new BatchJob(env).RunAsync(request, null, CancellationToken.None))));

        runs.Select(r => r.RunId).Distinct().Should().ContainSingle();
        runs.Should().OnlyContain(r => r.Chunks == single.Chunks);
        (await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"))).Should().Equal(expected);
        var history = await (await EventTable.OpenAsync(world.Config.EnrichedTable("engagement"))).Log.GetHistoryAsync();
        history.Where(c => c.Parameters.TryGetValue(LakeParameters.Chunk, out _)).Select(c => c.Parameters[LakeParameters.Chunk]).Distinct().Should().HaveCount(single.Chunks);
    }

    [Fact]
    public async Task A_share_whose_data_files_were_vacuumed_is_withdrawn_and_staged_again_not_committed_broken()
    {
        var (world, env, path, reference, expected) = await ReferenceRunAsync(37, Range);
        using var _ = world;

        var first = await new BatchJob(env).RunAsync(Range with { Shard = new BatchShard(0, 2) }, null, CancellationToken.None);
        first.ChunksWaiting.Should().Be(reference.Chunks);
        // A vacuum past the retention removes a data file of one staged share while it waits.
        var (shareFile, staged) = Directory.EnumerateFiles(Path.Combine(path, ChunkStaging.Directory), "shard-0-of-2.json", SearchOption.AllDirectories)
            .Select(f => (File: f, Files: StagedFiles.Parse(File.ReadAllBytes(f), f)))
            .First(s => s.Files.Count > 0);
        File.Delete(Path.Combine(path, staged[0].Path));

        var second = await new BatchJob(env).RunAsync(Range with { Shard = new BatchShard(1, 2) }, null, CancellationToken.None);
        second.ChunksWaiting.Should().Be(1, "the chunk with the damaged share is not committed");
        File.Exists(shareFile).Should().BeFalse("the damaged share is withdrawn");

        var again = await new BatchJob(env).RunAsync(Range with { Shard = new BatchShard(0, 2) }, null, CancellationToken.None);
        again.ChunksResumed.Should().Be(reference.Chunks - 1);
        again.EventsIn.Should().BeGreaterThan(0, "shard 0 computes the withdrawn share again");
        again.ChunksWaiting.Should().Be(0);
        (await BatchWorld.BatchRowsAsync(path)).Should().Equal(expected);
    }

    /// <summary>
    /// Hosts that mount the shared lake at different paths run one job: the shards name one run (its
    /// inputs are known by table id and version, and a folder's files within it, not by where they sit),
    /// so the last to stage commits. Before, each path named its own run and every shard waited forever.
    /// </summary>
    [Fact]
    public async Task Shards_reaching_the_deployment_by_different_paths_run_one_job()
    {
        var (world, env, path, reference, expected) = await ReferenceRunAsync(41, Range);
        using var _ = world;
        var elsewhere = world.Root + "-mounted-elsewhere";
        Directory.CreateSymbolicLink(elsewhere, world.Root);
        try
        {
            var mounted = await SignalEnvironment.LoadAsync(Weft.Engine.Configuration.WeftConfig.Load(Path.Combine(elsewhere, "weft.json")), "engagement");
            mounted.Config.EnrichedTable("engagement").Should().StartWith(elsewhere);
            var table = await EventTable.OpenAsync(path);
            await table.ReplacePartitionsAsync(EventBatch.Empty(env.Signal.EnrichedSchema), EventPartitioner.ByTimeBucket(env.Definition.Bucket, EventLayout.BatchPath),
                PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath));

            var first = await new BatchJob(env).RunAsync(Range with { Shard = new BatchShard(0, 2) }, null, CancellationToken.None);
            var second = await new BatchJob(mounted).RunAsync(Range with { Shard = new BatchShard(1, 2) }, null, CancellationToken.None);

            second.RunId.Should().Be(first.RunId);
            first.ChunksWaiting.Should().Be(reference.Chunks);
            second.ChunksWaiting.Should().Be(0);
            (await BatchWorld.BatchRowsAsync(path)).Should().Equal(expected);
        }
        finally
        {
            Directory.Delete(elsewhere);
        }
    }

    /// <summary>A world and its enriched table after one unsharded run: what every sharded run must reproduce.</summary>
    private static async Task<(BatchWorld World, SignalEnvironment Env, string Path, BatchResult Reference, List<string> Expected)> ReferenceRunAsync(int seed, BatchRequest request)
    {
        var world = await BatchWorld.CreateAsync(seed, events: 600, users: 40);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var path = world.Config.EnrichedTable("engagement");
        var reference = await new BatchJob(env).RunAsync(request, null, CancellationToken.None);
        return (world, env, path, reference, await BatchWorld.BatchRowsAsync(path));
    }
}
