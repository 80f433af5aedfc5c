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

    /// <summary>
    /// A run whose archives hold no events for a chunk the lake holds rows in (an archive path gone wrong,
    /// events past the archive's retention) stops before replacing anything: it emptied the buckets and
    /// sealed them, hiding the stream's rows too. --allow-empty empties them on purpose; a chunk with no rows
    /// anywhere still commits empty.
    /// </summary>
    [Fact]
    public async Task A_chunk_the_archives_hold_nothing_for_does_not_empty_buckets_the_lake_holds_rows_in()
    {
        using var world = await BatchWorld.CreateAsync(seed: 33, events: 200);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var day = new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day);
        var first = await new BatchJob(env).RunAsync(day, null, CancellationToken.None);
        first.EventsOut.Should().BeGreaterThan(0);
        var table = await EventTable.OpenAsync(world.Config.EnrichedTable("engagement"));
        long before = (await table.Log.GetSnapshotAsync()).Version;
        long rowsBefore = await RowsAsync(table);

        var emptyArchive = Path.Combine(world.Root, "moved");
        Directory.CreateDirectory(emptyArchive);
        await File.WriteAllTextAsync(Path.Combine(emptyArchive, "events.jsonl"), "");
        var wrongPath = await SignalEnvironment.LoadAsync(world.Config with { Archives = [new Weft.Engine.Configuration.TableLocation(emptyArchive, Weft.Engine.Configuration.TableFormat.Jsonl)] }, "engagement");

        var refused = async () => await new BatchJob(wrongPath).RunAsync(day with { BucketsPerChunk = 12 }, null, CancellationToken.None);

        (await refused.Should().ThrowAsync<InputException>()).Which.Message.Should()
            .Contain($"chunk 2026-11-01T00..2026-11-01T11: the archives hold no events for it, but {table.Path} holds {await RowsAsync(table, BatchWorld.Start + 12 * BatchWorld.Hour)} row(s) in its buckets").And.Subject.Should()
            .Contain("nothing was replaced").And.Contain("--allow-empty");
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(before);
        (await RowsAsync(table)).Should().Be(rowsBefore);

        var later = await new BatchJob(wrongPath).RunAsync(new BatchRequest("engagement", BatchWorld.Start + 5 * BatchWorld.Day, BatchWorld.Start + 6 * BatchWorld.Day), null, CancellationToken.None);
        later.Chunks.Should().Be(1, "a chunk no rows were in commits empty as before");

        var emptied = await new BatchJob(wrongPath).RunAsync(day with { AllowEmptyChunks = true }, null, CancellationToken.None);
        emptied.EventsIn.Should().Be(0);
        (await RowsAsync(table)).Should().Be(0);
    }

    /// <summary>
    /// A chunk whose archive records are all dead letters (a damaged file, one of another format) holds no
    /// events either: it emptied and sealed buckets the lake holds rows in. It stops as a chunk of no records
    /// does, saying the records were dead letters; --allow-empty still empties them, recording the dead letters.
    /// </summary>
    [Fact]
    public async Task A_chunk_whose_records_are_all_dead_letters_does_not_empty_buckets_the_lake_holds_rows_in()
    {
        using var world = await BatchWorld.CreateAsync(seed: 35, events: 200);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var day = new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day);
        (await new BatchJob(env).RunAsync(day, null, CancellationToken.None)).EventsOut.Should().BeGreaterThan(0);
        var table = await EventTable.OpenAsync(world.Config.EnrichedTable("engagement"));
        long before = (await table.Log.GetSnapshotAsync()).Version;
        long rowsBefore = await RowsAsync(table);
        rowsBefore.Should().BePositive();

        // Every record of the day lacks its user_id: each is a dead letter with an event time in the chunk.
        var damaged = Path.Combine(world.Root, "damaged");
        Directory.CreateDirectory(damaged);
        var lines = Enumerable.Range(0, 5).Select(i =>
            $$"""{"event_id":"bad-{{i}}","event_type":"click","event_time":"{{BatchWorld.Iso(BatchWorld.Start + (i + 1) * BatchWorld.Hour)}}","item_id":{{i}}}""");
        await File.WriteAllLinesAsync(Path.Combine(damaged, "events.jsonl"), lines);
        var damagedArchive = await SignalEnvironment.LoadAsync(world.Config with { Archives = [new Weft.Engine.Configuration.TableLocation(damaged, Weft.Engine.Configuration.TableFormat.Jsonl)] }, "engagement");

        var refused = async () => await new BatchJob(damagedArchive).RunAsync(day, null, CancellationToken.None);

        (await refused.Should().ThrowAsync<InputException>()).Which.Message.Should()
            .Contain("the archives hold no events for it (5 record(s), every one a dead letter, e.g. missing user_id").And.Subject.Should()
            .Contain("nothing was replaced").And.Contain("Check the archive files").And.Contain("--allow-empty");
        (await table.Log.GetSnapshotAsync()).Version.Should().Be(before);
        (await RowsAsync(table)).Should().Be(rowsBefore);

        var emptied = await new BatchJob(damagedArchive).RunAsync(day with { AllowEmptyChunks = true }, null, CancellationToken.None);
        emptied.DeadLetters.Should().Be(5);
        (await RowsAsync(table)).Should().Be(0);
    }

    /// <summary>More buckets per chunk than any range holds is one chunk of the range: the length once overflowed and cut chunks inside buckets, each emptying the last one's rows.</summary>
    [Theory]
    [InlineData(213_503_984)]
    [InlineData(106_751_992)]
    [InlineData(int.MaxValue)]
    public async Task A_chunk_of_more_buckets_than_the_range_holds_is_the_whole_range(int bucketsPerChunk)
    {
        var weft = new Weft.Definitions.DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", Weft.Definitions.WeftType.Int64, nullable: false).Attribute("dwell_ms", Weft.Definitions.WeftType.Int32);
        var save = weft.EventType("save").Attribute("item_id", Weft.Definitions.WeftType.Int64, nullable: false);
        weft.Signal("engagement", tenant: "home-feed").Include(click).Include(save).Element("item_id")
            .MaxLength(8).Lookback(TimeSpan.FromDays(2)).Bucket(Weft.Definitions.TimeBucket.Day).LateAllowance(TimeSpan.FromHours(6));
        using var world = await BatchWorld.CreateAsync(seed: 34, events: 300, signal: weft.Build().Single());
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var threeDays = new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + 3 * BatchWorld.Day);
        var daily = await new BatchJob(env).RunAsync(threeDays, null, CancellationToken.None);
        var table = await EventTable.OpenAsync(world.Config.EnrichedTable("engagement"));
        long rows = await RowsAsync(table);

        var whole = await new BatchJob(env).RunAsync(threeDays with { BucketsPerChunk = bucketsPerChunk }, null, CancellationToken.None);

        daily.Chunks.Should().Be(3);
        whole.Chunks.Should().Be(1);
        whole.EventsOut.Should().Be(daily.EventsOut);
        whole.SealedBuckets.Should().BeEquivalentTo(daily.SealedBuckets).And.HaveCount(3);
        (await RowsAsync(table)).Should().Be(rows).And.Be(daily.EventsOut);
    }

    private static async Task<long> RowsAsync(EventTable table, long before = long.MaxValue)
    {
        long rows = 0;
        await foreach (var batch in table.ReadAsync([Weft.Definitions.StandardColumns.EventTime]))
        {
            rows += ((Weft.Engine.PrimitiveColumn<long>)batch[Weft.Definitions.StandardColumns.EventTime]).Values.Count(t => t < before);
        }

        return rows;
    }
}
