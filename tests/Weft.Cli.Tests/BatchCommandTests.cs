using System.Diagnostics;
using FluentAssertions;
using Weft.Engine;
using Weft.Storage;
using Xunit;
using Weft.Testing;

namespace Weft.Cli.Tests;

/// <summary>The batch path as a user runs it: weft gen, weft compile, a weft.json, then weft batch / snapshot / training-set.</summary>
public sealed class BatchCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    private async Task<string> SetUpAsync(int events = 6000, int days = 3, string lake = "lake")
    {
        (await _cli.RunAsync("gen", "--out", _cli.PathOf("raw"), "--events", events.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--users", "60", "--items", "50", "--days", days.ToString(System.Globalization.CultureInfo.InvariantCulture))).Exit.Should().Be(0);
        var compile = await _cli.RunAsync("compile", Path.Combine(CliHarness.RepoRoot, "examples", "definitions"), "--out", _cli.PathOf("signals"));
        compile.Exit.Should().Be(0, compile.Err);
        return await WriteConfigAsync("weft.json", lake);
    }

    private async Task<string> WriteConfigAsync(string name, string lake)
    {
        var path = _cli.PathOf(name);
        await File.WriteAllTextAsync(path, $$"""
            {
              "lake": "{{lake}}",
              "signals": "signals",
              "archives": [ { "path": "raw/events", "format": "delta" } ],
              "enrichments": { "items": "raw/items" }
            }
            """);
        return path;
    }

    /// <summary>
    /// A signal's additive change (an element column added) deploys over its existing lake: the next
    /// batch run adds the column to the enriched table, the rows written before read it as null, and a
    /// snapshot taken before any run after the deployment reads it as null too. A nullable column
    /// removed stays in the table, null in the rows written since. (Every writer refused the table's
    /// old schema, with a storage-level message.)
    /// </summary>
    [Fact]
    public async Task Added_element_columns_are_added_to_the_enriched_table_and_a_removed_one_is_kept_for_the_rows_that_have_it()
    {
        var config = await SetUpAsync(events: 3000, days: 2);
        string[] Batch(string from, string to) => ["batch", "--config", config, "--signal", "engagement", "--from", from, "--to", to];
        (await _cli.RunAsync(Batch("2026-11-01", "2026-11-03"))).Exit.Should().Be(0);

        var source = await File.ReadAllTextAsync(Path.Combine(CliHarness.RepoRoot, "examples", "definitions", "catalog.cs"));
        const string elements = """.Element("item_id", "surface", "surface_bucket", "dwell_ms", "long_dwell", "embedding", "category")""";
        source.Should().Contain(elements, "the example's element list, which this test extends");
        Directory.CreateDirectory(_cli.PathOf("defs-added"));
        // Two columns: board_id, nullable; seen, derived on both event types, declared non-null (the rows
        // written before have none, so files of the lake's rows must allow nulls there).
        const string saves = """.Include(save, s => s.Derive("long_dwell", true))""";
        source.Should().Contain(saves);
        var added = source.Replace(elements, elements[..^1] + ", \"board_id\", \"seen\")", StringComparison.Ordinal)
            .Replace(saves, """.Include(save, s => s.Derive("long_dwell", true).Derive("seen", true))""", StringComparison.Ordinal)
            .Replace(""".Derive("long_dwell", Coalesce(""", """.Derive("seen", true).Derive("long_dwell", Coalesce(""", StringComparison.Ordinal);
        await File.WriteAllTextAsync(_cli.PathOf("defs-added/catalog.cs"), added);
        var compiled = await _cli.RunAsync("compile", _cli.PathOf("defs-added"), "--out", _cli.PathOf("signals"));
        compiled.Exit.Should().Be(0, compiled.Err);

        var before = await _cli.RunAsync("snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-03", "--out", _cli.PathOf("before.parquet"));
        before.Exit.Should().Be(0, before.Err);
        var rerun = await _cli.RunAsync(Batch("2026-11-02", "2026-11-03"));
        rerun.Exit.Should().Be(0, rerun.Err);
        var after = await _cli.RunAsync("snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-03", "--out", _cli.PathOf("after.parquet"));
        after.Exit.Should().Be(0, after.Err);

        // Day 1 was written before the column: null. Day 2 recomputed with it: each save's board, as the raw archive holds it.
        string Rows(string file) => $"SELECT e.bucket_day, count(*) FILTER (WHERE e.board_id IS NOT NULL) FROM (SELECT unnest(event_time)::DATE AS bucket_day, unnest(board_id) AS board_id FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(_cli.PathOf(file))})) e GROUP BY ALL ORDER BY ALL";
        var boards = await Weft.Parquet.Tests.DuckDb.RunAsync(Rows("before.parquet"), Rows("after.parquet"),
            $"SELECT count(*) FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(_cli.PathOf("raw/events") + "/**/*.parquet")}) WHERE event_type = 'save' AND board_id IS NOT NULL AND event_time::DATE = DATE '2026-11-02'");
        boards[0].Rows.Select(r => r[1].ToString()).Should().OnlyContain(n => n == "0", "no row had the column yet");
        string Seen(string file) => $"SELECT count(*) FILTER (WHERE s IS NULL), count(*) FILTER (WHERE s) FROM (SELECT unnest(seen) AS s FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(_cli.PathOf(file))}))";
        var seen = await Weft.Parquet.Tests.DuckDb.RunAsync(Seen("before.parquet"), Seen("after.parquet"));
        seen[0].Rows[0][1].ToString().Should().Be("0", "no row had seen yet");
        long.Parse(seen[1].Rows[0][0].ToString(), System.Globalization.CultureInfo.InvariantCulture).Should().BePositive("day 1's rows were written before it");
        long.Parse(seen[1].Rows[0][1].ToString(), System.Globalization.CultureInfo.InvariantCulture).Should().BePositive("day 2 was recomputed with it");
        boards[1].Rows.Single(r => r[0].GetString() == "2026-11-01")[1].ToString().Should().Be("0");
        long saved = long.Parse(boards[2].Rows[0][0].ToString(), System.Globalization.CultureInfo.InvariantCulture);
        saved.Should().BePositive();
        long.Parse(boards[1].Rows.Single(r => r[0].GetString() == "2026-11-02")[1].ToString(), System.Globalization.CultureInfo.InvariantCulture).Should().BeInRange(1, saved);

        // A nullable column removed (or the change rolled back): the table keeps it, the new rows hold null there.
        Directory.CreateDirectory(_cli.PathOf("defs-removed"));
        await File.WriteAllTextAsync(_cli.PathOf("defs-removed/catalog.cs"), source.Replace(elements, elements.Replace("\"dwell_ms\", ", "", StringComparison.Ordinal), StringComparison.Ordinal));
        (await _cli.RunAsync("compile", _cli.PathOf("defs-removed"), "--out", _cli.PathOf("signals"))).Exit.Should().Be(0);
        var removed = await _cli.RunAsync(Batch("2026-11-02", "2026-11-03"));
        removed.Exit.Should().Be(0, removed.Err);
        var table = await EventTable.OpenAsync(_cli.PathOf("lake/enriched/engagement"));
        table.Schema.Select(f => f.Name).Should().Contain(["dwell_ms", "board_id", "seen"]);
        var dwell = await Weft.Parquet.Tests.DuckDb.RunAsync(DeltaTableFormatter.DuckDbQuery(await table.Log.GetSnapshotAsync()).TrimEnd(';')
            .Replace("SELECT *", "SELECT event_time::DATE AS day, count(dwell_ms) AS n", StringComparison.Ordinal) + " WHERE path = 'batch' GROUP BY ALL ORDER BY ALL");
        dwell[0].Rows.Select(r => (r[0].GetString(), r[1].ToString() == "0")).Should().Equal(("2026-11-01", false), ("2026-11-02", true));

        // A column retyped: the writers refuse and the readers say so, each with the way out; nothing is written.
        var versions = (await table.Log.GetHistoryAsync()).Count;
        Directory.CreateDirectory(_cli.PathOf("defs-retyped"));
        await File.WriteAllTextAsync(_cli.PathOf("defs-retyped/catalog.cs"), source.Replace(""".Attribute("dwell_ms", WeftType.Int32)""", """.Attribute("dwell_ms", WeftType.Int64)""", StringComparison.Ordinal));
        (await _cli.RunAsync("compile", _cli.PathOf("defs-retyped"), "--out", _cli.PathOf("signals"))).Exit.Should().Be(0);
        var refused = await _cli.RunAsync(Batch("2026-11-02", "2026-11-03"));
        refused.Exit.Should().Be(2);
        refused.Err.Should().Contain("column 'dwell_ms' has another type there").And.Contain($"weft backfill --config {config} --signal engagement --from ").And.NotContain("   at ");
        var unread = await _cli.RunAsync("snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-03", "--out", _cli.PathOf("retyped.parquet"));
        unread.Exit.Should().Be(2);
        unread.Err.Should().Contain("reads column 'dwell_ms' as int64, but its enriched table").And.Contain("holds it as int32").And.NotContain("   at ");
        (await (await EventTable.OpenAsync(_cli.PathOf("lake/enriched/engagement"))).Log.GetHistoryAsync()).Should().HaveCount(versions);

        // The table taken over by another engine (column mapping on, the column seen dropped there): the
        // definition that adds seen back is refused, and the refusal says the layout is why.
        var log = _cli.PathOf("lake/enriched/engagement/_delta_log");
        var commits = Directory.GetFiles(log, "*.json").Order(StringComparer.Ordinal).ToList();
        var metadata = (await Task.WhenAll(commits.Select(f => File.ReadAllLinesAsync(f)))).SelectMany(lines => lines)
            .Select(line => System.Text.Json.Nodes.JsonNode.Parse(line)!.AsObject()).Last(action => action.ContainsKey("metaData"))["metaData"]!.AsObject();
        var schema = System.Text.Json.Nodes.JsonNode.Parse(metadata["schemaString"]!.GetValue<string>())!.AsObject();
        schema["fields"]!.AsArray().Remove(schema["fields"]!.AsArray().Single(f => f!["name"]!.GetValue<string>() == "seen"));
        metadata["schemaString"] = schema.ToJsonString();
        metadata["configuration"] = new System.Text.Json.Nodes.JsonObject { ["delta.columnMapping.mode"] = "none" };
        await File.WriteAllTextAsync(Path.Combine(log, $"{versions:D20}.json"), new System.Text.Json.Nodes.JsonObject { ["metaData"] = metadata.DeepClone() }.ToJsonString() + "\n");
        (await _cli.RunAsync("compile", _cli.PathOf("defs-added"), "--out", _cli.PathOf("signals"))).Exit.Should().Be(0);
        var foreign = await _cli.RunAsync(Batch("2026-11-02", "2026-11-03"));
        foreign.Exit.Should().Be(2);
        foreign.Err.Should().Contain("column 'seen' is new, and Weft adds columns only to a table in its own layout").And.Contain("delta.columnMapping.mode (none)")
            .And.Contain($"weft backfill --config {config} --signal engagement --from ").And.NotContain("has another type there").And.NotContain("   at ");
        (await (await EventTable.OpenAsync(_cli.PathOf("lake/enriched/engagement"))).Log.GetHistoryAsync()).Should().HaveCount(versions + 1, "the refusal commits nothing");
    }

    [Fact]
    public async Task A_batch_run_killed_mid_way_leaves_only_whole_buckets_and_resumes_to_the_same_table()
    {
        var config = await SetUpAsync(events: 12000, days: 7);
        var reference = await WriteConfigAsync("reference.json", "reference-lake");
        string[] Args(string cfg) => ["batch", "--config", cfg, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-08", "--chunk-buckets", "1"];
        var full = await _cli.RunAsync(Args(reference));
        full.Exit.Should().Be(0, full.Err);
        var expected = await BucketsAsync(_cli.PathOf("reference-lake/enriched/engagement"));

        // A real process, killed with SIGKILL once a few chunks have committed. On a loaded machine the test
        // can be starved long enough for the child to finish every chunk before the kill lands; that attempt
        // shows nothing about a kill, so it starts over on an empty lake.
        var weft = Path.Combine(AppContext.BaseDirectory, "weft.dll");
        Dictionary<string, List<string>> afterKill = [];
        for (int attempt = 0; attempt < 5; attempt++)
        {
            var lake = _cli.PathOf("lake");
            if (Directory.Exists(lake))
            {
                Directory.Delete(lake, recursive: true);
            }

            await KillMidRunAsync(weft, Args(config));
            afterKill = await BucketsAsync(_cli.PathOf("lake/enriched/engagement"));
            if (afterKill.Count < expected.Count)
            {
                break;
            }
        }

        afterKill.Count.Should().BeInRange(1, expected.Count - 1, "the kill must land mid-run");
        foreach (var (bucket, rows) in afterKill)
        {
            rows.Should().Equal(expected[bucket], $"bucket {bucket} is visible, so it must be whole");
        }

        var resumed = await _cli.RunAsync(Args(config));
        resumed.Exit.Should().Be(0, resumed.Err);
        resumed.Out.Should().MatchRegex(@"168 chunk\(s\), ([6-9]|\d\d+) already committed \(resumed\)");
        var final = await BucketsAsync(_cli.PathOf("lake/enriched/engagement"));
        final.Keys.Should().HaveSameItemsAs(expected.Keys);
        foreach (var (bucket, rows) in expected)
        {
            final[bucket].Should().Equal(rows, $"bucket {bucket} after the resume");
        }
    }

    [Fact]
    public async Task Rerunning_a_batch_is_idempotent_and_picks_up_late_events_that_landed_since()
    {
        var config = await SetUpAsync();
        string[] args = ["batch", "--config", config, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-04"];
        (await _cli.RunAsync(args)).Exit.Should().Be(0);
        var first = await BucketsAsync(_cli.PathOf("lake/enriched/engagement"));

        var again = await _cli.RunAsync(args);
        again.Out.Should().Contain("3 already committed (resumed)", "the same inputs need no work");
        (await BucketsAsync(_cli.PathOf("lake/enriched/engagement"))).Should().BeEquivalentTo(first);

        // A late event lands in the archive: a re-run over the changed input recomputes and shows it.
        var archive = await EventTable.OpenAsync(_cli.PathOf("raw/events"));
        var template = await ReadAsync(archive);
        int row = Enumerable.Range(0, template.RowCount).First(r => (string)template[StandardNames.EventType].GetValue(r)! == "save");
        var late = template.Gather([row]);
        var ids = new Weft.Engine.StringColumn(["late-arrival-1"]);
        var columns = late.Columns.ToArray();
        columns[late.Schema.Select((f, i) => (f, i)).First(p => p.f.Name == StandardNames.EventId).i] = ids;
        await archive.AppendAsync(new EventBatch(late.Schema, columns), EventPartitioner.ByTimeBucketOnly(Weft.Definitions.TimeBucket.Day));

        var rerun = await _cli.RunAsync(args);
        rerun.Exit.Should().Be(0, rerun.Err);
        rerun.Out.Should().Contain("0 already committed", "the archive changed, so the run recomputes");
        var after = await BucketsAsync(_cli.PathOf("lake/enriched/engagement"));
        after.Values.SelectMany(v => v).Should().Contain(r => r.Contains("late-arrival-1", StringComparison.Ordinal));
        after.Values.Sum(v => v.Count).Should().Be(first.Values.Sum(v => v.Count) + 1);
    }

    [Fact]
    public async Task Snapshots_of_different_cuts_go_to_different_default_files_each_recording_its_own_cut()
    {
        var config = await SetUpAsync();
        (await _cli.RunAsync("batch", "--config", config, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-04")).Exit.Should().Be(0);
        string[][] cuts =
        [
            ["--as-of", "2026-11-03"],
            ["--as-of", "2026-11-03T12:00:00Z"],
            ["--as-of", "2026-11-03T12:00:00.5Z"],
            ["--as-of", "2026-11-03T12:00:00Z", "--known-at", "2026-11-03T06:00:00Z"],
            ["--as-of", "2026-11-03T12:00:00Z", "--max-length", "3"],
        ];
        foreach (var cut in cuts)
        {
            var run = await _cli.RunAsync(["snapshot", "--config", config, "--signal", "engagement", .. cut]);
            run.Exit.Should().Be(0, run.Err);
        }

        var files = Directory.EnumerateFiles(_cli.PathOf("lake/sequences/engagement"), "*.parquet", SearchOption.AllDirectories).ToList();
        files.Should().HaveCount(cuts.Length, "no cut's file replaced another's");
        var recorded = new HashSet<string>();
        foreach (var file in files)
        {
            await using var reader = await Weft.Parquet.ParquetFileReader.OpenAsync(file);
            recorded.Add($"{reader.Metadata["weft.as_of"]} {reader.Metadata["weft.known_at"]} {reader.Metadata.GetValueOrDefault("weft.max_length")}");
        }

        recorded.Should().HaveCount(cuts.Length);
        files.Should().Contain(f => f.Contains("as_of=2026-11-03" + Path.DirectorySeparatorChar, StringComparison.Ordinal), "a midnight is named by its date, as the demo names its snapshot");
        files.Should().Contain(f => f.Contains("as_of=2026-11-03T12-00-00.5", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_snapshot_from_the_archive_holds_the_rows_of_the_snapshot_of_the_lake_the_batch_path_wrote()
    {
        var config = await SetUpAsync();
        var batch = await _cli.RunAsync("batch", "--config", config, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-04");
        batch.Exit.Should().Be(0, batch.Err);
        string fromLake = _cli.PathOf("from-lake.parquet"), fromArchive = _cli.PathOf("from-archive.parquet");
        string[] snapshot = ["snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-03T23:59:59.999999Z"];

        var lake = await _cli.RunAsync([.. snapshot, "--out", fromLake]);
        var archive = await _cli.RunAsync([.. snapshot, "--out", fromArchive, "--from-archive", "2026-11-01"]);

        lake.Exit.Should().Be(0, lake.Err);
        archive.Exit.Should().Be(0, archive.Err);
        archive.Out.Should().Contain("from the raw archives since 2026-11-01T00:00:00");
        foreach (var file in new[] { fromLake, fromArchive })
        {
            await using var reader = await Weft.Parquet.ParquetFileReader.OpenAsync(file);
            reader.Metadata["weft.as_of"].Should().Be("2026-11-03T23:59:59.999999Z");
            reader.Metadata["weft.known_at"].Should().Be("2026-11-03T23:59:59.999999Z");
        }

        var duck = await Weft.Parquet.Tests.DuckDb.RunAsync(
            $"SELECT count(*), sum(len(item_id)) FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(fromLake)})",
            $"SELECT count(*), sum(len(item_id)) FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(fromArchive)})",
            $"SELECT count(*) FROM (SELECT * FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(fromLake)}) EXCEPT ALL SELECT * FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(fromArchive)}))",
            $"SELECT count(*) FROM (SELECT * FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(fromArchive)}) EXCEPT ALL SELECT * FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(fromLake)}))");
        long.Parse(duck[0].Rows[0][0].GetString()!, System.Globalization.CultureInfo.InvariantCulture).Should().BeGreaterThan(20, "the data must produce sequences");
        duck[1].Rows[0][0].GetString().Should().Be(duck[0].Rows[0][0].GetString(), "one row per user either way");
        duck[1].Rows[0][1].GetString().Should().Be(duck[0].Rows[0][1].GetString(), "as many elements either way");
        duck[2].Rows[0][0].GetString().Should().Be("0", "every row of the lake's snapshot is in the archive's");
        duck[3].Rows[0][0].GetString().Should().Be("0", "and every row of the archive's in the lake's");
    }

    [Fact]
    public async Task A_snapshots_enrichments_are_the_versions_known_at_its_known_at_time_from_the_lake_and_from_the_archive()
    {
        var config = await SetUpAsync(events: 8000, days: 4);
        (await _cli.RunAsync("batch", "--config", config, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-05")).Exit.Should().Be(0);
        string fromLake = _cli.PathOf("lake.parquet"), fromArchive = _cli.PathOf("archive.parquet");
        string[] snapshot = ["snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-04T12:00:00Z", "--known-at", "2026-11-02T00:00:00Z"];

        var lake = await _cli.RunAsync([.. snapshot, "--out", fromLake]);
        var archive = await _cli.RunAsync([.. snapshot, "--out", fromArchive, "--from-archive", "2026-11-01"]);

        lake.Exit.Should().Be(0, lake.Err);
        archive.Exit.Should().Be(0, archive.Err);
        var items = await (await Weft.Storage.DeltaTable.OpenAsync(_cli.PathOf("raw/items"))).GetSnapshotAsync();
        string itemFiles = "[" + string.Join(", ", items.Files().Select(f => Weft.Parquet.Tests.DuckDb.Quote(Path.Combine(_cli.PathOf("raw/items"), Uri.UnescapeDataString(f.Path))))) + "]";
        // DuckDB's own point-in-time join: per item, the newest version at or before the known-at time.
        string Wrong(string file, string knownAt) => $"""
            WITH elements AS (SELECT unnest(item_id) AS item, unnest(category) AS category FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(file)})),
                 known AS (SELECT item_id, arg_max(category, version_time) AS category FROM read_parquet({itemFiles})
                           WHERE version_time <= TIMESTAMPTZ '{knownAt}' GROUP BY item_id)
            SELECT count(*), count(*) FILTER (WHERE e.category IS DISTINCT FROM k.category)
            FROM elements e LEFT JOIN known k ON k.item_id = e.item
            """;

        // Without --known-at: the latest versions, as the lake stores them and serving returns them.
        string plain = _cli.PathOf("plain.parquet"), plainArchive = _cli.PathOf("plain-archive.parquet");
        (await _cli.RunAsync("snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-04T12:00:00Z", "--out", plain)).Exit.Should().Be(0);
        (await _cli.RunAsync("snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-04T12:00:00Z", "--out", plainArchive, "--from-archive", "2026-11-01")).Exit.Should().Be(0);
        var duck = await Weft.Parquet.Tests.DuckDb.RunAsync(
            Wrong(fromLake, "2026-11-02 00:00:00+00"), Wrong(fromArchive, "2026-11-02 00:00:00+00"), Wrong(fromLake, "9999-01-01 00:00:00+00"),
            Wrong(plain, "9999-01-01 00:00:00+00"), Wrong(plainArchive, "9999-01-01 00:00:00+00"));

        long.Parse(duck[0].Rows[0][0].GetString()!, System.Globalization.CultureInfo.InvariantCulture).Should().BeGreaterThan(100, "the data must produce sequences");
        duck[0].Rows[0][1].GetString().Should().Be("0", "every category from the lake is the version known at --known-at");
        duck[1].Rows[0][1].GetString().Should().Be("0", "and every category from the archive");
        long.Parse(duck[2].Rows[0][1].GetString()!, System.Globalization.CultureInfo.InvariantCulture).Should().BeGreaterThan(0, "items corrected after --known-at must show their older version");
        duck[3].Rows[0][1].GetString().Should().Be("0", "without --known-at, every category is the latest version");
        duck[4].Rows[0][1].GetString().Should().Be("0", "from the archive too");
        await using var reader = await Weft.Parquet.ParquetFileReader.OpenAsync(fromLake);
        reader.Metadata["weft.enrichments"].Should().Be("known_at");
    }

    [Fact]
    public async Task A_snapshot_from_the_archive_is_refused_for_a_start_after_the_as_of_naming_both()
    {
        var config = await SetUpAsync(events: 500, days: 1);

        var result = await _cli.RunAsync("snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-01T12:00:00Z", "--from-archive", "2026-11-02", "--out", _cli.PathOf("s.parquet"));

        result.Exit.Should().Be(2);
        result.Err.Should().Contain("--from-archive (2026-11-02T00:00:00").And.Contain("must not be after --as-of (2026-11-01T12:00:00");
        File.Exists(_cli.PathOf("s.parquet")).Should().BeFalse();
    }

    [Fact]
    public async Task A_backfill_split_into_shards_commits_the_table_one_process_would_write()
    {
        var config = await SetUpAsync();
        var reference = await WriteConfigAsync("reference.json", "reference-lake");
        string[] Args(string cfg, params string[] more) => ["backfill", "--config", cfg, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-04", .. more];
        (await _cli.RunAsync(Args(reference))).Exit.Should().Be(0);
        var expected = await BucketsAsync(_cli.PathOf("reference-lake/enriched/engagement"));

        var first = await _cli.RunAsync(Args(config, "--shard", "0/2"));
        first.Exit.Should().Be(0, first.Err);
        first.Out.Should().Contain("shard 0/2: 3 chunk(s) staged, waiting for the other shards");
        (await BucketsAsync(_cli.PathOf("lake/enriched/engagement"))).Should().BeEmpty("half the users' rows are staged, not committed");

        var second = await _cli.RunAsync(Args(config, "--shard", "1/2"));
        second.Exit.Should().Be(0, second.Err);
        second.Out.Should().Contain("shard 1/2: every chunk is committed");
        var sharded = await BucketsAsync(_cli.PathOf("lake/enriched/engagement"));
        sharded.Keys.Should().HaveSameItemsAs(expected.Keys);
        foreach (var (bucket, rows) in expected)
        {
            sharded[bucket].Should().Equal(rows, $"bucket {bucket}");
        }

        // The stream archives an event for the first day after the shards read it: a shard resuming the
        // run does not compute the committed chunk again, and says how to pick the event up.
        var now = DateTime.UtcNow;
        string day = _cli.PathOf("lake/raw/stream/date=" + now.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(day);
        await File.WriteAllTextAsync(Path.Combine(day, $"part-{now.ToString("HHmmssffffff", System.Globalization.CultureInfo.InvariantCulture)}-0.jsonl"),
            """{"event_id":"streamed-late","user_id":7,"event_type":"click","event_time":"2026-11-01T05:00:00Z","item_id":3,"dwell_ms":900}""" + "\n");
        var resumed = await _cli.RunAsync(Args(config, "--shard", "0/2"));
        resumed.Exit.Should().Be(0, resumed.Err);
        resumed.Out.Should().Contain("3 already committed (resumed)");
        resumed.Err.Should().Contain("warning: 1 committed chunk(s) got events in the stream's archive after they were read").And.Contain("without --shard");

        var bad = await _cli.RunAsync(Args(config, "--shard", "2/2"));
        bad.Exit.Should().Be(2);
        bad.Err.Should().Contain("--shard '2/2'");
    }

    [Fact]
    public async Task Batch_fails_fast_on_a_missing_archive_and_a_bad_signal_name()
    {
        var config = await SetUpAsync(events: 500);
        var missing = _cli.PathOf("missing.json");
        await File.WriteAllTextAsync(missing, """{ "signals": "signals", "archives": [ "nowhere" ], "enrichments": { "items": "raw/items" } }""");
        var run = await _cli.RunAsync("batch", "--config", missing, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-02");
        run.Exit.Should().Be(2);
        run.Err.Should().Contain("nowhere").And.Contain("does not exist");

        var unknown = await _cli.RunAsync("batch", "--config", config, "--signal", "nope", "--from", "2026-11-01", "--to", "2026-11-02");
        unknown.Exit.Should().Be(2);
        unknown.Err.Should().Contain("no signal 'nope'").And.Contain("engagement");
    }

    /// <summary>Values that used to hang (a chunk of no buckets), lift the cap (a negative length) or replace the input (labels as output) are usage errors, and write nothing.</summary>
    [Fact]
    public async Task Out_of_range_chunk_and_length_options_and_an_output_over_the_labels_are_refused_writing_nothing()
    {
        var config = await SetUpAsync(events: 500);
        var labels = _cli.PathOf("labels.jsonl");
        await File.WriteAllTextAsync(labels, """{"user_id":1,"label_time":"2026-11-02T00:00:00Z","label":1}""" + "\n");
        var lake = _cli.PathOf("lake");
        bool lakeBefore = Directory.Exists(lake);

        var cases = new (string[] Args, string Message)[]
        {
            (["batch", "--config", config, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-02", "--chunk-buckets", "0"], "--chunk-buckets 0 must be at least 1"),
            (["batch", "--config", config, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-02", "--chunk-buckets", "-3"], "--chunk-buckets -3 must be at least 1"),
            (["snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-02", "--max-length", "-1", "--out", _cli.PathOf("s.parquet")], "--max-length -1 must be at least 1"),
            (["snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-02", "--max-length", "100000", "--out", _cli.PathOf("s.parquet")], "exceeds the max_length of signal 'engagement'"),
            (["training-set", "--config", config, "--signal", "engagement", "--labels", labels, "--mode", "corrected", "--out", labels], "is the --labels file"),
            (["training-set", "--config", config, "--signal", "engagement", "--labels", labels, "--mode", "corrected", "--max-length", "0", "--out", _cli.PathOf("t.parquet")], "--max-length 0 must be at least 1"),
            (["snapshot", "--config", config, "--signal", "engagement", "--as-of", "11/05/2026", "--out", _cli.PathOf("s.parquet")], "--as-of '11/05/2026' is not an instant (ISO 8601"),
            (["batch", "--config", config, "--signal", "engagement", "--from", "2026-11-02", "--to", "2026-11-01"], "must be after --from"),
            (["batch", "--config", config, "--signal", "engagement", "--from", "0001-01-01", "--to", "2026-11-02"], "chunks of 24 bucket(s), more than 100,000: check --from"),
            (["snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-02", "--out", config], "exists and is not a Parquet file"),
            (["training-set", "--config", config, "--signal", "engagement", "--labels", labels, "--mode", "corrected", "--out", config], "exists and is not a Parquet file"),
            (["snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-02", "--out", _cli.PathOf("raw")], "is a folder"),
            (["snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-02", "--out", Path.Combine(config, "s.parquet")], $"its folder '{config}' cannot be created"),
        };
        foreach (var (args, message) in cases)
        {
            var result = await _cli.RunAsync(args).WaitAsync(TimeSpan.FromSeconds(60));
            result.Exit.Should().Be(2, string.Join(' ', args));
            result.Err.Should().Contain(message).And.NotContain("(Parameter '", "the message names the option, not a .NET parameter");
        }

        File.Exists(_cli.PathOf("s.parquet")).Should().BeFalse();
        File.Exists(_cli.PathOf("t.parquet")).Should().BeFalse();
        (await File.ReadAllTextAsync(labels)).Should().StartWith("{\"user_id\":1", "the labels were not overwritten");
        (await File.ReadAllTextAsync(config)).Should().Contain("\"archives\"", "the config was not overwritten");
        Directory.Exists(lake).Should().Be(lakeBefore);
    }

    /// <summary>
    /// A label column named like a column the training set adds, a label time outside the years 1–9999 and
    /// a --to in the last bucket of 9999 are usage errors naming what is wrong (they failed with a bare
    /// "Field name 'length' appears more than once", an overflowed number, "Ticks must be between…").
    /// </summary>
    [Fact]
    public async Task Clashing_label_columns_label_times_past_year_9999_and_a_to_at_the_end_of_time_are_refused_naming_them()
    {
        var config = await SetUpAsync(events: 500);
        (await _cli.RunAsync("batch", "--config", config, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-03")).Exit.Should().Be(0);
        var length = _cli.PathOf("length.jsonl");
        await File.WriteAllTextAsync(length, """{"user_id":1,"label_time":"2026-11-02T00:00:00Z","length":3}""" + "\n");
        var item = _cli.PathOf("item.csv");
        await File.WriteAllTextAsync(item, "user_id,label_time,item_id\n1,2026-11-02T00:00:00Z,5\n");
        var mask = _cli.PathOf("mask.jsonl");
        await File.WriteAllTextAsync(mask, """{"user_id":1,"label_time":"2026-11-02T00:00:00Z","mask":true}""" + "\n");
        var upper = _cli.PathOf("upper.jsonl");
        await File.WriteAllTextAsync(upper, """{"user_id":1,"label_time":"2026-11-02T00:00:00Z","EVENT_ID":"x"}""" + "\n");
        var late = _cli.PathOf("late.jsonl");
        await File.WriteAllTextAsync(late, """{"user_id":1,"label_time":"2026-11-02T00:00:00Z"}""" + "\n" + """{"user_id":1,"label_time":9223372036854775807}""" + "\n");
        var early = _cli.PathOf("early.jsonl");
        await File.WriteAllTextAsync(early, """{"user_id":1,"label_time":-9223372036854775808}""" + "\n");

        string[] TrainingSet(string labels, params string[] more) =>
            ["training-set", "--config", config, "--signal", "engagement", "--labels", labels, "--mode", "corrected", "--out", _cli.PathOf("t.parquet"), .. more];
        var cases = new (string[] Args, string Message)[]
        {
            (TrainingSet(length), "label file '" + length + "': column 'length' has the name of a column the training set adds"),
            (TrainingSet(item), "label file '" + item + "': column 'item_id' has the name of a column the training set adds"),
            (TrainingSet(mask, "--pad", "4"), "column 'mask' has the name of a column the training set adds"),
            (TrainingSet(upper), "column 'EVENT_ID' has the name of a column the training set adds"),
            (TrainingSet(late), "label file '" + late + "': 1 bad row(s), e.g. " + late + ":2: 'label_time': 9223372036854775807 µs lies outside the years 1–9999"),
            (TrainingSet(early), ":1: 'label_time': -9223372036854775808 µs lies outside the years 1–9999"),
            (["batch", "--config", config, "--signal", "engagement", "--from", "2026-11-01", "--to", "9999-12-31T23:59:59Z"], "--to 9999-12-31T23:59:59.000000Z is"),
        };
        foreach (var (args, message) in cases)
        {
            var result = await _cli.RunAsync(args).WaitAsync(TimeSpan.FromSeconds(60));
            result.Exit.Should().Be(2, string.Join(' ', args));
            result.Err.Should().Contain(message);
        }

        File.Exists(_cli.PathOf("t.parquet")).Should().BeFalse();
        var fine = await _cli.RunAsync(TrainingSet(mask));
        fine.Exit.Should().Be(0, "without --pad the file has no mask column: " + fine.Err);
    }

    /// <summary>
    /// <c>--pad N</c> fills a list-valued column (an embedding) with zero vectors as wide as its values,
    /// also where no example of the file (cold-start users, labels before any event) has a real one:
    /// they were empty lists there, so a file's padded embeddings did not stack into one [N, d] tensor.
    /// </summary>
    [Fact]
    public async Task Padding_fills_embeddings_with_zero_vectors_as_wide_as_the_items_even_when_every_sequence_is_empty()
    {
        var config = await SetUpAsync(events: 500);
        (await _cli.RunAsync("batch", "--config", config, "--signal", "engagement", "--from", "2026-11-01", "--to", "2026-11-04")).Exit.Should().Be(0);
        var labels = _cli.PathOf("cold.jsonl");
        // Users the history does not hold, and a known user before any event.
        await File.WriteAllTextAsync(labels, """{"user_id":900001,"label_time":"2026-11-02T12:00:00Z","y":1}""" + "\n"
            + """{"user_id":900002,"label_time":"2026-11-03T12:00:00Z","y":0}""" + "\n"
            + """{"user_id":1,"label_time":"2026-10-01T00:00:00Z","y":0}""" + "\n");
        var output = _cli.PathOf("cold.parquet");

        var result = await _cli.RunAsync("training-set", "--config", config, "--signal", "engagement", "--labels", labels, "--mode", "as-served", "--out", output, "--pad", "3");

        result.Exit.Should().Be(0, result.Err);
        var duck = await Weft.Parquet.Tests.DuckDb.RunAsync(
            $"SELECT DISTINCT len(embedding) AS width FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(_cli.PathOf("raw/items") + "/**/*.parquet")}) WHERE embedding IS NOT NULL",
            $"SELECT length, len(mask), len(embedding), list_transform(embedding, v -> len(v)) FROM read_parquet({Weft.Parquet.Tests.DuckDb.Quote(output)})");
        static long Int(System.Text.Json.JsonElement e) => long.Parse(e.ValueKind == System.Text.Json.JsonValueKind.String ? e.GetString()! : e.GetRawText(), System.Globalization.CultureInfo.InvariantCulture);
        long width = Int(duck[0].Rows.Single()[0]);
        width.Should().BeGreaterThan(0);
        duck[1].Rows.Should().HaveCount(3);
        foreach (var row in duck[1].Rows)
        {
            Int(row[0]).Should().Be(0, "none of these labels has a history");
            Int(row[2]).Should().Be(3, "padded to 3");
            row[3].EnumerateArray().Select(Int).Should().Equal(Enumerable.Repeat(width, 3), "each fill value is a zero vector as wide as the embeddings");
        }
    }

    /// <summary>
    /// An enrichment whose join key the element does not carry cannot be re-read as known at a label time
    /// (the lake stores no key to look it up by): its columns hold the latest versions, corrections made
    /// after the label included. An as-served training set (and a snapshot with --known-at) says so,
    /// naming the columns and the key; it wrote them silently, as if as served.
    /// </summary>
    [Fact]
    public async Task An_as_served_training_set_says_which_enrichment_columns_it_could_not_take_as_known_at_the_label_time()
    {
        var config = await SetUpAsync(events: 500);
        var weft = new Weft.Definitions.DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", Weft.Definitions.WeftType.Int64, nullable: false);
        var items = weft.EnrichmentSource("items", key: "item_id", keyType: Weft.Definitions.WeftType.Int64).Column("category", Weft.Definitions.WeftType.String);
        weft.Signal("categories", tenant: "home-feed").Include(click).Enrich(items, on: "item_id", "category").Element("category")
            .MaxLength(50).Lookback(TimeSpan.FromDays(30)).Bucket(Weft.Definitions.TimeBucket.Hour);
        await File.WriteAllBytesAsync(_cli.PathOf("signals/categories.json"), Weft.Definitions.SignalJsonWriter.Write(weft.Build().Single()));
        (await _cli.RunAsync("batch", "--config", config, "--signal", "categories", "--from", "2026-11-01", "--to", "2026-11-04")).Exit.Should().Be(0);
        var labels = _cli.PathOf("labels.jsonl");
        await File.WriteAllTextAsync(labels, """{"user_id":1,"label_time":"2026-11-03T00:00:00Z","y":1}""" + "\n");
        string[] TrainingSet(string mode) => ["training-set", "--config", config, "--signal", "categories", "--labels", labels, "--mode", mode, "--out", _cli.PathOf(mode + ".parquet")];

        var asServed = await _cli.RunAsync(TrainingSet("as-served"));
        var corrected = await _cli.RunAsync(TrainingSet("corrected"));
        var snapshot = await _cli.RunAsync("snapshot", "--config", config, "--signal", "categories", "--as-of", "2026-11-03", "--known-at", "2026-11-02", "--out", _cli.PathOf("s.parquet"));

        asServed.Exit.Should().Be(0, asServed.Err);
        asServed.Err.Should().Contain("'category'").And.Contain("'item_id'").And.Contain("the latest versions");
        corrected.Exit.Should().Be(0, corrected.Err);
        corrected.Err.Should().NotContain("'category'", "corrected examples take the latest versions anyway");
        snapshot.Exit.Should().Be(0, snapshot.Err);
        snapshot.Err.Should().Contain("'category'").And.Contain("'item_id'");
    }

    /// <summary>Runs weft with <paramref name="args"/> and kills it with SIGKILL once it reports its sixth of 168 chunks.</summary>
    private static async Task KillMidRunAsync(string weft, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(weft);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var child = Process.Start(start)!;
        string? line;
        while ((line = await child.StandardError.ReadLineAsync()) is not null && !line.Contains(" 6/168 chunks", StringComparison.Ordinal))
        {
        }

        line.Should().NotBeNull("the run must report progress before it ends");
        child.Kill(entireProcessTree: true);
        await child.WaitForExitAsync();
    }

    /// <summary>The path=batch rows of an enriched table, per bucket, in a stable text form.</summary>
    private static async Task<Dictionary<string, List<string>>> BucketsAsync(string path)
    {
        var table = await EventTable.OpenAsync(path);
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var filter = PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath);
        await foreach (var batch in table.ReadAsync(null, filter))
        {
            var bucket = (string)batch[EventLayout.BucketColumn].GetValue(0)!;
            var lines = JsonRows.Canonical(batch.Project(table.Schema)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            (result.TryGetValue(bucket, out var list) ? list : result[bucket] = []).AddRange(lines);
        }

        foreach (var list in result.Values)
        {
            list.Sort(StringComparer.Ordinal);
        }

        return result;
    }

    private static async Task<EventBatch> ReadAsync(EventTable table)
    {
        var parts = new List<EventBatch>();
        await foreach (var b in table.ReadAsync(table.Schema.Select(f => f.Name).ToList()))
        {
            parts.Add(b);
        }

        return EventBatch.Concat(parts[0].Schema, parts);
    }
}

internal static class StandardNames
{
    public const string EventId = Weft.Definitions.StandardColumns.EventId;
    public const string EventType = Weft.Definitions.StandardColumns.EventType;
}
