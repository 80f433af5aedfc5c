using FluentAssertions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Parquet.Tests;
using Weft.Storage;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary>
/// Raw archives as plain Parquet folders, the way DuckDB, Spark and pyarrow write them: a batch over
/// such an archive must equal a batch over the same events in a Delta table, and an archive that
/// cannot hold events must fail the run before it replaces anything.
/// </summary>
public sealed class ParquetArchiveTests
{
    private static readonly BatchRequest ThreeDays = new("engagement", BatchWorld.Start, BatchWorld.Start + 3 * BatchWorld.Day);

    [Fact]
    public async Task A_Hive_partitioned_archive_gives_the_rows_of_the_same_events_in_a_Delta_table()
    {
        using var world = await BatchWorld.CreateAsync(seed: 41, events: 500, users: 20);
        await new BatchJob(await SignalEnvironment.LoadAsync(world.Config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);
        var expected = await BatchRowsAsync(world.Config.EnrichedTable("engagement"));
        expected.Should().NotBeEmpty();

        // event_type lives only in the folder names (event_type=click/…), as PARTITION_BY leaves it.
        await DuckDb.RunAsync(
            $"COPY (SELECT * FROM read_parquet({DuckDb.Quote(world.RawPath + "/**/*.parquet")})) TO {DuckDb.Quote(Path.Combine(world.Root, "hive"))} (FORMAT parquet, PARTITION_BY (event_type))");
        Directory.EnumerateDirectories(Path.Combine(world.Root, "hive"), "event_type=*").Should().HaveCount(3);

        var config = WriteConfig(world, "hive.json", lake: "lake-hive", archive: "hive");
        var result = await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);

        result.DeadLetters.Should().Be(0, "every event's type is read from its folder");
        (await BatchRowsAsync(config.EnrichedTable("engagement"))).Should().Equal(expected);
    }

    [Fact]
    public async Task An_archive_without_event_types_fails_before_it_replaces_the_buckets_a_good_run_wrote()
    {
        using var world = await BatchWorld.CreateAsync(seed: 42, events: 300);
        var path = world.Config.EnrichedTable("engagement");
        await new BatchJob(await SignalEnvironment.LoadAsync(world.Config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);
        var before = await BatchRowsAsync(path);
        int version = (await (await EventTable.OpenAsync(path)).Log.GetHistoryAsync()).Count;

        Directory.CreateDirectory(Path.Combine(world.Root, "flat"));
        await DuckDb.RunAsync(
            $"COPY (SELECT * EXCLUDE (event_type) FROM read_parquet({DuckDb.Quote(world.RawPath + "/**/*.parquet")})) TO {DuckDb.Quote(Path.Combine(world.Root, "flat", "events.parquet"))} (FORMAT parquet)");
        var config = WriteConfig(world, "flat.json", lake: "lake", archive: "flat");

        var env = await SignalEnvironment.LoadAsync(config, "engagement");
        var run = () => new BatchJob(env).RunAsync(ThreeDays, null, CancellationToken.None);
        (await run.Should().ThrowAsync<InputException>()).Which.Message.Should().Contain("events.parquet").And.Contain("no column 'event_type'");

        (await (await EventTable.OpenAsync(path)).Log.GetHistoryAsync()).Count.Should().Be(version, "nothing was committed");
        (await BatchRowsAsync(path)).Should().Equal(before);
    }

    private static WeftConfig WriteConfig(BatchWorld world, string name, string lake, string archive)
    {
        var file = Path.Combine(world.Root, name);
        File.WriteAllText(file, $$"""
            {
              "lake": "{{lake}}",
              "signals": "signals",
              "archives": [ { "path": "{{archive}}", "format": "parquet" } ],
              "enrichments": { "items": { "path": "raw/items", "format": "delta" } }
            }
            """);
        return WeftConfig.Load(file);
    }

    private static async Task<List<string>> BatchRowsAsync(string path)
    {
        var table = await EventTable.OpenAsync(path);
        var rows = new List<string>();
        await foreach (var batch in table.ReadAsync(null, PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath)))
        {
            rows.AddRange(JsonRows.Canonical(batch.Project(table.Schema)).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        rows.Sort(StringComparer.Ordinal);
        return rows;
    }
}
