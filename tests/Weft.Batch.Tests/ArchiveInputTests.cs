using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using FluentAssertions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Parquet.Tests;
using Weft.Storage;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary>
/// Raw archives as plain folders of files (Parquet the way DuckDB, Spark and pyarrow write it, JSONL): a batch over
/// such an archive must equal a batch over the same events in a Delta table, and an archive that
/// cannot hold events must fail the run before it replaces anything.
/// </summary>
public sealed class ArchiveInputTests
{
    private static readonly BatchRequest ThreeDays = new("engagement", BatchWorld.Start, BatchWorld.Start + 3 * BatchWorld.Day);

    [Fact]
    public async Task A_Hive_partitioned_archive_gives_the_rows_of_the_same_events_in_a_Delta_table()
    {
        using var world = await BatchWorld.CreateAsync(seed: 41, events: 500, users: 20);
        await new BatchJob(await SignalEnvironment.LoadAsync(world.Config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);
        var expected = await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"));
        expected.Should().NotBeEmpty();

        // event_type lives only in the folder names (event_type=click/…), as PARTITION_BY leaves it.
        await DuckDb.RunAsync(
            $"COPY (SELECT * FROM read_parquet({DuckDb.Quote(world.RawPath + "/**/*.parquet")})) TO {DuckDb.Quote(Path.Combine(world.Root, "hive"))} (FORMAT parquet, PARTITION_BY (event_type))");
        Directory.EnumerateDirectories(Path.Combine(world.Root, "hive"), "event_type=*").Should().HaveCount(3);

        var config = WriteConfig(world, "hive.json", lake: "lake-hive", archive: "hive");
        var result = await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);

        result.DeadLetters.Should().Be(0, "every event's type is read from its folder");
        (await BatchWorld.BatchRowsAsync(config.EnrichedTable("engagement"))).Should().Equal(expected);
    }

    /// <summary>
    /// An erasure done in another engine: Databricks (and Delta Lake 3) record a DELETE on the archive as
    /// deletion vectors, leaving the data files in place. The next batch run over the range must drop the
    /// user's rows and leave every other user's as they were. The vectors are CRoaring's
    /// (tests/interop/deletion-vector.mjs), the rows to delete found by DuckDB's file_row_number.
    /// </summary>
    [Fact]
    public async Task A_users_events_deleted_by_another_engine_with_deletion_vectors_leave_the_next_batch_run()
    {
        using var world = await BatchWorld.CreateAsync(seed: 47, events: 500, users: 20);
        await new BatchJob(await SignalEnvironment.LoadAsync(world.Config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);
        var before = await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"));
        var erased = world.Events.GroupBy(e => e.UserId).OrderByDescending(g => g.Count()).First().Key;
        static long UserOf(string row) => long.Parse(row.Split(" | ").Single(c => c.StartsWith("user_id=", StringComparison.Ordinal))["user_id=".Length..], CultureInfo.InvariantCulture);
        before.Select(UserOf).Should().Contain(erased);

        var log = await DeltaTable.OpenAsync(world.RawPath);
        var snapshot = await log.GetSnapshotAsync();
        var lines = new List<string>
        {
            """{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}""",
            """{"commitInfo":{"timestamp":1764000000000,"operation":"DELETE","operationParameters":{"predicate":"[\"(user_id = erased)\"]"}}}""",
        };
        foreach (var file in snapshot.Files())
        {
            var full = snapshot.FullPath(file);
            var rows = (await DuckDb.RunAsync($"SELECT file_row_number FROM read_parquet({DuckDb.Quote(full)}, file_row_number = true) WHERE user_id = {erased} ORDER BY 1"))[0]
                .Rows.Select(r => (JsonNode)long.Parse(r[0].GetString()!, CultureInfo.InvariantCulture)).ToArray();
            if (rows.Length == 0)
            {
                continue;
            }

            var request = new JsonObject { ["mode"] = "inline", ["vectors"] = new JsonArray(new JsonObject { ["rows"] = new JsonArray(rows), ["runs"] = false }) };
            var vector = JsonNode.Parse(await NodeScript.RunAsync("deletion-vector.mjs", request.ToJsonString(), full))![0]!.AsObject();
            vector["storageType"] = "i";
            lines.Add(new JsonObject { ["remove"] = new JsonObject { ["path"] = file.Path, ["deletionTimestamp"] = 1_764_000_000_000L, ["dataChange"] = true } }.ToJsonString());
            lines.Add(new JsonObject
            {
                ["add"] = new JsonObject
                {
                    ["path"] = file.Path,
                    ["partitionValues"] = new JsonObject(),
                    ["size"] = file.Size,
                    ["modificationTime"] = file.ModificationTime.ToUnixTimeMilliseconds(),
                    ["dataChange"] = true,
                    ["stats"] = file.Stats,
                    ["deletionVector"] = vector.DeepClone(),
                },
            }.ToJsonString());
        }

        lines.Should().HaveCountGreaterThan(2, "the user has events in the archive");
        var next = Path.Combine(world.RawPath, "_delta_log", (snapshot.Version + 1).ToString("D20", CultureInfo.InvariantCulture) + ".json");
        await File.WriteAllTextAsync(next, string.Join('\n', lines) + "\n");

        var result = await new BatchJob(await SignalEnvironment.LoadAsync(world.Config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);

        result.DeadLetters.Should().Be(0);
        var after = await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"));
        after.Should().Equal(before.Where(r => UserOf(r) != erased));
    }

    /// <summary>
    /// A warehouse's Delta table as an enrichment (or archive): an integer id widens to the int64 the
    /// signal wants and a decimal reads as a double, while a struct the signal wants, or a string it wants
    /// as a number, fails naming the table and the column. The data is DuckDB's, the log the test's.
    /// </summary>
    [Fact]
    public async Task A_warehouse_Delta_table_reads_its_decimals_and_narrow_ids_and_names_what_it_cannot_read()
    {
        using var world = await BatchWorld.CreateAsync(seed: 45, events: 10);
        var path = Path.Combine(world.Root, "warehouse-items");
        await WriteForeignDeltaAsync(
            path,
            "SELECT i::INTEGER AS item_id, 'c' || i AS category, (i * 1.5)::DECIMAL(10, 2) AS price, {'w': i} AS dims FROM range(0, 20) t(i)",
            """[{"name":"item_id","type":"integer"},{"name":"category","type":"string"},{"name":"price","type":"decimal(10,2)"},{"name":"dims","type":{"type":"struct","fields":[{"name":"w","type":"long"}]}}]""");
        var location = new TableLocation(path, TableFormat.Delta);
        System.Collections.Immutable.ImmutableArray<Weft.Definitions.FieldDefinition> wanted =
            [new("item_id", Weft.Definitions.WeftType.Int64), new("price", Weft.Definitions.WeftType.Float64)];

        var ids = new List<long>();
        var prices = new List<double>();
        await foreach (var (batch, _) in TableInputs.ReadTableAsync(location, wanted, CancellationToken.None))
        {
            ids.AddRange(((PrimitiveColumn<long>)batch["item_id"]).Values);
            prices.AddRange(((PrimitiveColumn<double>)batch["price"]).Values);
        }

        ids.Should().Equal(Enumerable.Range(0, 20).Select(i => (long)i));
        prices.Should().Equal(Enumerable.Range(0, 20).Select(i => i * 1.5));

        async Task<string> FailureAsync(Weft.Definitions.FieldDefinition extra)
        {
            var read = async () =>
            {
                await foreach (var _ in TableInputs.ReadTableAsync(location, wanted.Add(extra), CancellationToken.None))
                {
                }
            };
            return (await read.Should().ThrowAsync<InputException>()).Which.Message;
        }

        (await FailureAsync(new("dims", Weft.Definitions.WeftType.Int64))).Should().Contain(path).And.Contain("dims (it is a struct (its fields read as dims.w), which Weft does not read)");
        (await FailureAsync(new("category", Weft.Definitions.WeftType.Int64))).Should().Contain(path).And.Contain("column 'category' is string, which cannot be read as int64");
    }

    /// <summary>
    /// A Delta archive another engine keeps whose column the signal reads holds a struct: the run fails
    /// naming the archive, the column and its type before it replaces anything, as for a Parquet folder.
    /// </summary>
    [Fact]
    public async Task A_Delta_archive_whose_wanted_column_is_a_struct_fails_the_run_naming_it()
    {
        using var world = await BatchWorld.CreateAsync(seed: 46, events: 100);
        var archive = Path.Combine(world.Root, "foreign-events");
        await WriteForeignDeltaAsync(
            archive,
            $"SELECT * REPLACE ({{'ms': dwell_ms}} AS dwell_ms) FROM read_parquet({DuckDb.Quote(world.RawPath + "/**/*.parquet")})",
            """[{"name":"event_id","type":"string"},{"name":"user_id","type":"long"},{"name":"event_type","type":"string"},{"name":"event_time","type":"timestamp"},{"name":"ingest_time","type":"timestamp"},{"name":"item_id","type":"long"},{"name":"dwell_ms","type":{"type":"struct","fields":[{"name":"ms","type":"integer"}]}}]""");
        var config = WriteConfig(world, "foreign.json", lake: "lake-foreign", archive: "foreign-events", format: "delta");

        var run = async () => await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);

        (await run.Should().ThrowAsync<InputException>()).Which.Message.Should().Contain(archive).And.Contain("column 'dwell_ms' is a struct (its fields read as dwell_ms.ms), which Weft does not read");
        (await BatchWorld.BatchRowsAsync(config.EnrichedTable("engagement"))).Should().BeEmpty("nothing was committed");
    }

    /// <summary>A Delta table as another engine writes one: <paramref name="select"/>'s rows in one DuckDB file, the log by hand with <paramref name="fields"/>.</summary>
    private static async Task WriteForeignDeltaAsync(string path, string select, string fields)
    {
        Directory.CreateDirectory(Path.Combine(path, "_delta_log"));
        var file = Path.Combine(path, "part-0.parquet");
        await DuckDb.RunAsync($"COPY ({select}) TO {DuckDb.Quote(file)} (FORMAT parquet)");
        var log = new[]
        {
            new JsonObject { ["protocol"] = new JsonObject { ["minReaderVersion"] = 1, ["minWriterVersion"] = 2 } },
            new JsonObject { ["metaData"] = new JsonObject { ["id"] = Guid.NewGuid().ToString(), ["format"] = new JsonObject { ["provider"] = "parquet", ["options"] = new JsonObject() }, ["schemaString"] = $"{{\"type\":\"struct\",\"fields\":{fields}}}", ["partitionColumns"] = new JsonArray(), ["configuration"] = new JsonObject() } },
            new JsonObject { ["add"] = new JsonObject { ["path"] = "part-0.parquet", ["partitionValues"] = new JsonObject(), ["size"] = new FileInfo(file).Length, ["modificationTime"] = 1_764_000_000_000L, ["dataChange"] = true } },
        };
        await File.WriteAllTextAsync(Path.Combine(path, "_delta_log", "00000000000000000000.json"), string.Concat(log.Select(l => l.ToJsonString() + "\n")));
    }

    /// <summary>pandas writes nanosecond timestamps, Polars zstd pages, Spark INT96 or millisecond timestamps.</summary>
    [Fact]
    public async Task An_archive_with_nanosecond_timestamps_in_zstd_pages_gives_the_rows_of_the_same_events_in_a_Delta_table()
    {
        using var world = await BatchWorld.CreateAsync(seed: 43, events: 500, users: 20);
        await new BatchJob(await SignalEnvironment.LoadAsync(world.Config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);
        var expected = await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"));
        expected.Should().NotBeEmpty();

        Directory.CreateDirectory(Path.Combine(world.Root, "pandas"));
        var file = Path.Combine(world.Root, "pandas", "events.parquet");
        await DuckDb.RunAsync(
            $"COPY (SELECT * REPLACE (make_timestamp_ns(epoch_us(event_time) * 1000) AS event_time, make_timestamp_ns(epoch_us(ingest_time) * 1000) AS ingest_time) FROM read_parquet({DuckDb.Quote(world.RawPath + "/**/*.parquet")})) TO {DuckDb.Quote(file)} (FORMAT parquet, COMPRESSION zstd)");
        var types = (await DuckDb.RunAsync($"SELECT name, logical_type FROM parquet_schema({DuckDb.Quote(file)}) WHERE name = 'event_time'"))[0];
        types.Rows.Single()[1].GetString().Should().Contain("NANOS");

        var config = WriteConfig(world, "pandas.json", lake: "lake-pandas", archive: "pandas");
        var result = await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);

        result.DeadLetters.Should().Be(0);
        (await BatchWorld.BatchRowsAsync(config.EnrichedTable("engagement"))).Should().Equal(expected);
    }

    /// <summary>
    /// A warehouse export carries columns Weft does not read (intervals, structs): those the signal does
    /// not want are skipped, and one it wants fails naming the column and its type, never as nulls. A
    /// decimal, which Weft reads as a double, reads when wanted.
    /// </summary>
    [Fact]
    public async Task A_Parquet_column_of_a_type_Weft_does_not_read_is_skipped_when_unwanted_and_an_error_when_wanted()
    {
        using var world = await BatchWorld.CreateAsync(seed: 44, events: 10);
        var file = Path.Combine(world.Root, "items.parquet");
        await DuckDb.RunAsync(
            $"COPY (SELECT i::BIGINT AS item_id, 'c' || i AS category, (i * 1.5)::DECIMAL(10, 2) AS price, DATE '2026-01-01' + i::INTEGER AS launched, to_days(i::INTEGER) AS shelf_life, {{'w': i}} AS dims FROM range(0, 20) t(i)) TO {DuckDb.Quote(file)} (FORMAT parquet)");
        System.Collections.Immutable.ImmutableArray<Weft.Definitions.FieldDefinition> wanted =
            [new("item_id", Weft.Definitions.WeftType.Int64), new("category", Weft.Definitions.WeftType.String)];

        var rows = 0;
        var categories = new List<string?>();
        await foreach (var (batch, _) in TableInputs.ReadParquetAsync(file, wanted, CancellationToken.None))
        {
            rows += batch.RowCount;
            categories.AddRange(((StringColumn)batch["category"]).Values);
        }

        rows.Should().Be(20);
        categories.Should().Equal(Enumerable.Range(0, 20).Select(i => $"c{i}"));

        var withPrice = wanted.Add(new("price", Weft.Definitions.WeftType.Float64));
        var prices = new List<double>();
        await foreach (var (batch, _) in TableInputs.ReadParquetAsync(file, withPrice, CancellationToken.None))
        {
            prices.AddRange(((PrimitiveColumn<double>)batch["price"]).Values.ToArray());
        }

        prices.Should().Equal(Enumerable.Range(0, 20).Select(i => i * 1.5));

        var withShelfLife = wanted.Add(new("shelf_life", Weft.Definitions.WeftType.Int64));
        var read = async () =>
        {
            await foreach (var _ in TableInputs.ReadParquetAsync(file, withShelfLife, CancellationToken.None))
            {
            }
        };
        (await read.Should().ThrowAsync<InputException>()).Which.Message.Should()
            .Contain("items.parquet").And.Contain("column 'shelf_life' cannot be read").And.Contain("INTERVAL");
    }

    [Fact]
    public async Task An_archive_without_event_types_fails_before_it_replaces_the_buckets_a_good_run_wrote()
    {
        using var world = await BatchWorld.CreateAsync(seed: 42, events: 300);
        var path = world.Config.EnrichedTable("engagement");
        await new BatchJob(await SignalEnvironment.LoadAsync(world.Config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);
        var before = await BatchWorld.BatchRowsAsync(path);
        int version = (await (await EventTable.OpenAsync(path)).Log.GetHistoryAsync()).Count;

        Directory.CreateDirectory(Path.Combine(world.Root, "flat"));
        await DuckDb.RunAsync(
            $"COPY (SELECT * EXCLUDE (event_type) FROM read_parquet({DuckDb.Quote(world.RawPath + "/**/*.parquet")})) TO {DuckDb.Quote(Path.Combine(world.Root, "flat", "events.parquet"))} (FORMAT parquet)");
        var config = WriteConfig(world, "flat.json", lake: "lake", archive: "flat");

        var env = await SignalEnvironment.LoadAsync(config, "engagement");
        var run = () => new BatchJob(env).RunAsync(ThreeDays, null, CancellationToken.None);
        (await run.Should().ThrowAsync<InputException>()).Which.Message.Should().Contain("events.parquet").And.Contain("no column 'event_type'");

        (await (await EventTable.OpenAsync(path)).Log.GetHistoryAsync()).Count.Should().Be(version, "nothing was committed");
        (await BatchWorld.BatchRowsAsync(path)).Should().Equal(before);
    }

    [Fact]
    public async Task A_JSONL_archive_read_in_several_chunks_records_each_bad_line_once_in_the_chunk_of_its_event_time_and_not_again_in_later_runs()
    {
        using var world = await BatchWorld.CreateAsync(seed: 43, events: 200, write: false);
        await world.WriteAsync();
        var lines = world.Events.Select(e => System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["event_id"] = e.EventId, ["user_id"] = e.UserId, ["event_type"] = e.EventType,
            ["event_time"] = BatchWorld.Iso(e.EventTime), ["ingest_time"] = BatchWorld.Iso(e.IngestTime), ["item_id"] = e.ItemId, ["dwell_ms"] = e.DwellMs,
        })).ToList();
        string Bad(string id, long time) => $$"""{"event_id":"{{id}}","event_type":"click","event_time":"{{BatchWorld.Iso(time)}}","item_id":1}""";
        lines.Insert(7, Bad("no-user-day-2", BatchWorld.Start + BatchWorld.Day + 5 * BatchWorld.Hour));
        lines.Insert(50, Bad("no-user-day-5", BatchWorld.Start + 4 * BatchWorld.Day));
        lines.Insert(90, "not json at all");
        Directory.CreateDirectory(Path.Combine(world.Root, "landing"));
        await File.WriteAllLinesAsync(Path.Combine(world.Root, "landing", "events.jsonl"), lines);
        var config = WriteConfig(world, "jsonl.json", lake: "lake", archive: "landing", format: "jsonl");

        var result = await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);
        result.Chunks.Should().Be(3);
        var recorded = await DeadLetterSourcesAsync(config.DeadLetterTable("engagement"));
        recorded.Should().BeEquivalentTo(["landing/events.jsonl:8", "landing/events.jsonl:91"],
            "the day-2 line in the chunk of day 2, the line without a time once (in the run's first chunk), the day-5 line in no chunk of these three days");
        result.DeadLetters.Should().Be(2);
        result.DeadLettersRecorded.Should().Be(2);

        var dayTwo = await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement"))
            .RunAsync(new BatchRequest("engagement", BatchWorld.Start + BatchWorld.Day, BatchWorld.Start + 2 * BatchWorld.Day), null, CancellationToken.None);
        dayTwo.DeadLetters.Should().Be(2, "a run over day 2 alone rejects the day-2 line and the untimed one, not the day-5 one");
        (await DeadLetterSourcesAsync(config.DeadLetterTable("engagement"))).Should().BeEquivalentTo(["landing/events.jsonl:8", "landing/events.jsonl:91"],
            "a later run rejecting the same records does not record them again");
        dayTwo.DeadLettersRecorded.Should().Be(0);

        // A second delivery of the day-2 event, read later (as the stream archive replays after a crash),
        // and a new bad line without an event_id.
        await File.WriteAllLinesAsync(Path.Combine(world.Root, "landing", "replayed.jsonl"),
        [
            "{\"ingest_time\":\"" + BatchWorld.Iso(BatchWorld.Start + 2 * BatchWorld.Day) + "\"," + Bad("no-user-day-2", BatchWorld.Start + BatchWorld.Day + 5 * BatchWorld.Hour)[1..],
            "[1, 2]",
        ]);
        var again = await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);
        again.DeadLetters.Should().Be(4, "the run rejects both deliveries of the day-2 event and both lines without a time");
        again.DeadLettersRecorded.Should().Be(1);
        (await DeadLetterSourcesAsync(config.DeadLetterTable("engagement"))).Should().BeEquivalentTo(["landing/events.jsonl:8", "landing/events.jsonl:91", "landing/replayed.jsonl:2"],
            "an event is recorded once by its event_id, whichever copy; a line without one once where it is");

        // Where it is means within the deployment: the same deployment reached by another path (moved,
        // or mounted elsewhere by a shard's host) records none of them again.
        var elsewhere = world.Root + "-elsewhere";
        try
        {
            foreach (var file in Directory.EnumerateFiles(world.Root, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(elsewhere, Path.GetRelativePath(world.Root, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
                File.SetLastWriteTimeUtc(target, File.GetLastWriteTimeUtc(file));
            }

            // One new bad line there, so that the run computes its chunks again (the same inputs would resume).
            await File.WriteAllLinesAsync(Path.Combine(elsewhere, "landing", "later.jsonl"), [Bad("no-user-later", BatchWorld.Start + BatchWorld.Day + 6 * BatchWorld.Hour)]);
            var moved = Weft.Engine.Configuration.WeftConfig.Load(Path.Combine(elsewhere, "jsonl.json"));
            var there = await new BatchJob(await SignalEnvironment.LoadAsync(moved, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);
            there.DeadLetters.Should().Be(5);
            there.DeadLettersRecorded.Should().Be(1, "only the new line: those without an event_id are known by their place in the deployment");
            var table = await EventTable.OpenAsync(moved.DeadLetterTable("engagement"));
            var stored = new List<string>();
            await foreach (var batch in table.ReadAsync(["source"]))
            {
                stored.AddRange(Enumerable.Range(0, batch.RowCount).Select(i => (string)batch["source"].GetValue(i)!));
            }

            stored.Should().BeEquivalentTo(["landing/events.jsonl:8", "landing/events.jsonl:91", "landing/replayed.jsonl:2", "landing/later.jsonl:1"], "sources under the deployment are stored relative to its folder");
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public async Task A_CSV_archive_skips_blank_lines_and_dead_letters_a_number_JSON_does_not_take_naming_its_line()
    {
        using var world = await BatchWorld.CreateAsync(seed: 44, events: 10);
        Directory.CreateDirectory(Path.Combine(world.Root, "landing"));
        string Row(string id, string dwell) => $"{id},7,click,{BatchWorld.Iso(BatchWorld.Start + BatchWorld.Hour)},1,{dwell}";
        await File.WriteAllTextAsync(Path.Combine(world.Root, "landing", "events.csv"), string.Join("\n",
            "event_id,user_id,event_type,event_time,item_id,dwell_ms",
            Row("good", "600"),
            "",
            Row("plus", "+700"),
            Row("nan", "NaN"),
            Row("dot", ".5"),
            Row("good-2", "800"),
            "",
            ""));
        var config = WriteConfig(world, "csv.json", lake: "lake", archive: "landing", format: "csv");

        var result = await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);

        result.EventsOut.Should().Be(2, "the two good rows; blank lines are no rows");
        (await DeadLetterSourcesAsync(config.DeadLetterTable("engagement"))).Should().BeEquivalentTo(
            ["landing/events.csv:4", "landing/events.csv:5", "landing/events.csv:6"], "'+700', 'NaN' and '.5' are not numbers a JSON line could carry");
    }

    /// <summary>
    /// An archive without ingest_time (a CSV export): each event arrived at its event_time, the same every
    /// run. Stamped with the run's clock, a recompute's rows changed and no as-served read held them.
    /// </summary>
    [Fact]
    public async Task Events_without_an_ingest_time_arrived_at_their_event_time_and_a_recompute_gives_the_same_rows()
    {
        using var world = await BatchWorld.CreateAsync(seed: 47, events: 10);
        Directory.CreateDirectory(Path.Combine(world.Root, "landing"));
        long at = BatchWorld.Start + BatchWorld.Hour + 123_456;
        await File.WriteAllTextAsync(Path.Combine(world.Root, "landing", "events.csv"), string.Join("\n",
            "event_id,user_id,event_type,event_time,item_id,dwell_ms",
            $"no-ingest,7,click,{BatchWorld.Iso(at)},1,600"));
        var config = WriteConfig(world, "csv.json", lake: "lake", archive: "landing", format: "csv");
        var env = await SignalEnvironment.LoadAsync(config, "engagement");

        await new BatchJob(env).RunAsync(ThreeDays, null, CancellationToken.None);
        var first = await BatchWorld.BatchRowsAsync(config.EnrichedTable("engagement"));
        await new BatchJob(env, new ShiftedTime(TimeSpan.FromDays(3))).RunAsync(ThreeDays with { BucketsPerChunk = 12 }, null, CancellationToken.None);
        var again = await BatchWorld.BatchRowsAsync(config.EnrichedTable("engagement"));

        first.Should().ContainSingle().Which.Should().Contain($"ingest_time={BatchWorld.Iso(at)}");
        again.Should().Equal(first, "a second run (a new run id, three days later) recomputes the same row");
    }

    /// <summary>Its extra cells were dropped, so a comma in a cell moved every value after it into the wrong column, silently.</summary>
    [Fact]
    public async Task A_CSV_row_wider_than_its_header_is_a_dead_letter_naming_its_line_keeping_every_cell()
    {
        using var world = await BatchWorld.CreateAsync(seed: 46, events: 10);
        Directory.CreateDirectory(Path.Combine(world.Root, "landing"));
        string time = BatchWorld.Iso(BatchWorld.Start + BatchWorld.Hour);
        await File.WriteAllTextAsync(Path.Combine(world.Root, "landing", "events.csv"), string.Join("\n",
            "event_id,user_id,event_type,event_time,item_id,dwell_ms",
            $"good,7,click,{time},1,600",
            $"shifted,7,click,{time},1,2,900",
            $"good-2,7,click,{time},1,800"));
        var config = WriteConfig(world, "csv.json", lake: "lake", archive: "landing", format: "csv");

        var result = await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);

        result.EventsOut.Should().Be(2);
        result.DeadLetters.Should().Be(1);
        (await DeadLetterSourcesAsync(config.DeadLetterTable("engagement"))).Should().Equal(["landing/events.csv:3"]);
        var table = await EventTable.OpenAsync(config.DeadLetterTable("engagement"));
        var letters = new List<string>();
        await foreach (var batch in table.ReadAsync(["event_id", "reason", "payload"]))
        {
            for (int i = 0; i < batch.RowCount; i++)
            {
                letters.Add($"{batch["event_id"].GetValue(i)} | {batch["reason"].GetValue(i)} | {batch["payload"].GetValue(i)}");
            }
        }

        letters.Should().ContainSingle().Which.Should().StartWith("shifted | 7 cells under a header of 6").And.Contain("\"dwell_ms\":2").And.Contain("\"_extra_cells\":[\"900\"]");
    }

    [Fact]
    public async Task A_CSV_archive_with_a_quote_never_closed_fails_the_run_naming_the_file_and_line_before_it_commits()
    {
        using var world = await BatchWorld.CreateAsync(seed: 45, events: 10);
        Directory.CreateDirectory(Path.Combine(world.Root, "landing"));
        string time = BatchWorld.Iso(BatchWorld.Start + BatchWorld.Hour);
        await File.WriteAllTextAsync(Path.Combine(world.Root, "landing", "events.csv"),
            $"event_id,user_id,event_type,event_time,item_id,dwell_ms\na,7,click,{time},1,600\n\"b,7,click,{time},1,600\nc,7,click,{time},1,600\n");
        var config = WriteConfig(world, "csv.json", lake: "lake", archive: "landing", format: "csv");

        var run = async () => await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);

        (await run.Should().ThrowAsync<InputException>()).Which.Message.Should().Contain("events.csv").And.Contain("line 3").And.Contain("not closed");
        (await BatchWorld.BatchRowsAsync(config.EnrichedTable("engagement"))).Should().BeEmpty("nothing was committed");
    }

    /// <summary>
    /// A JSON-lines archive line holding bytes that are not UTF-8 (the stream's archive keeps each record
    /// as it was read) is a dead letter in batch as it was in the stream, naming the byte; before, the file
    /// was decoded as text, the bytes became U+FFFD, and batch kept an event the stream had refused.
    /// </summary>
    [Fact]
    public async Task A_JSONL_line_that_is_not_UTF8_is_a_dead_letter_in_batch_as_in_the_stream()
    {
        using var world = await BatchWorld.CreateAsync(seed: 48, events: 50, write: false);
        await world.WriteAsync();
        var lines = world.Events.Select(e => Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["event_id"] = e.EventId, ["user_id"] = e.UserId, ["event_type"] = e.EventType,
            ["event_time"] = BatchWorld.Iso(e.EventTime), ["ingest_time"] = BatchWorld.Iso(e.IngestTime), ["item_id"] = e.ItemId, ["dwell_ms"] = e.DwellMs,
        }))).ToList();
        var first = world.Events[0];
        var head = "{\"event_id\":\"latin1-";
        var tail = $"\",\"user_id\":{first.UserId},\"event_type\":\"click\",\"event_time\":\"{BatchWorld.Iso(first.EventTime)}\",\"item_id\":1}}";
        byte[] bad = [.. Encoding.UTF8.GetBytes(head), 0xE9, .. Encoding.UTF8.GetBytes(tail)]; // é in Latin-1
        lines.Insert(3, bad);
        Directory.CreateDirectory(Path.Combine(world.Root, "landing"));
        await File.WriteAllBytesAsync(Path.Combine(world.Root, "landing", "events.jsonl"), [.. lines.SelectMany(l => l.Append((byte)'\n'))]);
        var config = WriteConfig(world, "latin1.json", lake: "lake", archive: "landing", format: "jsonl");

        var result = await new BatchJob(await SignalEnvironment.LoadAsync(config, "engagement")).RunAsync(ThreeDays, null, CancellationToken.None);

        result.DeadLetters.Should().Be(1);
        (await DeadLetterSourcesAsync(config.DeadLetterTable("engagement"))).Should().Equal("landing/events.jsonl:4");
        var reasons = new List<string>();
        await foreach (var batch in (await EventTable.OpenAsync(config.DeadLetterTable("engagement"))).ReadAsync(["reason"]))
        {
            reasons.AddRange(Enumerable.Range(0, batch.RowCount).Select(i => (string)batch["reason"].GetValue(i)!));
        }

        reasons.Should().ContainSingle().Which.Should().Contain("not valid UTF-8: byte 0xE9");
        (await BatchWorld.BatchRowsAsync(config.EnrichedTable("engagement"))).Should().NotContain(r => r.Contains("latin1", StringComparison.Ordinal));
    }

    private static async Task<List<string>> DeadLetterSourcesAsync(string path)
    {
        var table = await EventTable.OpenAsync(path);
        var sources = new List<string>();
        await foreach (var batch in table.ReadAsync(["source"]))
        {
            for (int i = 0; i < batch.RowCount; i++)
            {
                var source = (string)batch["source"].GetValue(i)!;
                sources.Add(source[(source.IndexOf("landing", StringComparison.Ordinal))..]);
            }
        }

        return sources;
    }

    private static WeftConfig WriteConfig(BatchWorld world, string name, string lake, string archive, string format = "parquet")
    {
        var file = Path.Combine(world.Root, name);
        File.WriteAllText(file, $$"""
            {
              "lake": "{{lake}}",
              "signals": "signals",
              "archives": [ { "path": "{{archive}}", "format": "{{format}}" } ],
              "enrichments": { "items": { "path": "raw/items", "format": "delta" } }
            }
            """);
        return WeftConfig.Load(file);
    }
}
