using System.Globalization;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Storage;
using Weft.Streaming.Runtime;
using Xunit;
using Weft.Testing;

namespace Weft.Cli.Tests;

/// <summary>
/// <c>weft quality</c> as a user runs it: a batch run seals buckets, the test writes what a stream would
/// have written for them (some events missing, one recorded late, some values different, one bucket the
/// batch path has not sealed), and the report must say exactly that.
/// </summary>
public sealed class QualityCommandTests : IDisposable
{
    private const string Signal = "engagement";
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public async Task The_report_counts_what_the_stream_missed_changed_and_recorded_late_and_the_gates_fail_on_it()
    {
        var config = await SetUpAsync();
        var batch = await _cli.RunAsync("batch", "--config", config, "--signal", Signal, "--from", "2026-11-01", "--to", "2026-11-03");
        batch.Exit.Should().Be(0, batch.Err);

        var table = await EventTable.OpenAsync(_cli.PathOf($"lake/enriched/{Signal}"));
        var buckets = await BatchBucketsAsync(table);
        var (busiest, busiestRows) = buckets.MaxBy(b => b.Value.RowCount);
        var (other, otherRows) = buckets.Where(b => b.Key != busiest).MaxBy(b => b.Value.RowCount);
        busiestRows.RowCount.Should().BeGreaterThan(10, "the test needs events to drop and change");

        // The busiest bucket: three events missing (one of them in the late ledger as left to batch), two
        // with another category. The next one: exactly the batch rows. A later bucket: stream rows only.
        var ids = (StringColumn)busiestRows[StandardColumns.EventId];
        var missing = new[] { ids.Values[0]!, ids.Values[1]!, ids.Values[2]! };
        var changed = new[] { ids.Values[3]!, ids.Values[4]! };
        var kept = Enumerable.Range(3, busiestRows.RowCount - 3).ToArray();
        var streamed = busiestRows.Gather(kept);
        var categories = ((StringColumn)streamed["category"]).Values.ToArray();
        categories[0] = categories[0] + "-stale";
        categories[1] = categories[1] is null ? "c-stale" : null;
        streamed = Replace(streamed, "category", new StringColumn(categories));
        await table.AppendAsync(streamed, EventPartitioner.Single(EventLayout.Partition(busiest, EventLayout.StreamPath)));
        await table.AppendAsync(otherRows, EventPartitioner.Single(EventLayout.Partition(other, EventLayout.StreamPath)));
        const string Unsealed = "2026-11-05T10";
        await table.AppendAsync(otherRows.Slice(0, 1), EventPartitioner.Single(EventLayout.Partition(Unsealed, EventLayout.StreamPath)));
        // A bucket a batch run wrote without sealing it (still open, the stream writing on): not compared either.
        const string OpenWithBatch = "2026-11-05T11";
        await table.AppendAsync(otherRows.Slice(0, 1), EventPartitioner.Single(EventLayout.Partition(OpenWithBatch, EventLayout.BatchPath)));
        await table.AppendAsync(otherRows.Slice(0, 2), EventPartitioner.Single(EventLayout.Partition(OpenWithBatch, EventLayout.StreamPath)));

        var ledger = await LateEventLedger.OpenAsync(_cli.PathOf($"lake/late_events/{Signal}"), CancellationToken.None);
        long time = ((PrimitiveColumn<long>)busiestRows[StandardColumns.EventTime]).Values[0];
        await LateEventLedger.AppendAsync(ledger, TimeBucket.Hour,
            [new LateEvent(missing[0], 1, ((StringColumn)busiestRows[StandardColumns.EventType]).Values[0]!, time, time, time, 1, "older than the watermark", LatePolicy.BatchOnly)],
            new Dictionary<string, string>(), CancellationToken.None);
        // A late event dropped in a bucket no path wrote a row to: counted all the same.
        long quiet = TimeBuckets.Parse("2026-11-06T03").StartMicros + 1;
        await LateEventLedger.AppendAsync(ledger, TimeBucket.Hour,
            [new LateEvent("dropped-1", 2, "click", quiet, quiet, quiet, 1, "older than the watermark", LatePolicy.Drop)],
            new Dictionary<string, string>(), CancellationToken.None);

        var run = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--json");
        run.Exit.Should().Be(0, run.Err);
        using var report = JsonDocument.Parse(run.Out);
        var root = report.RootElement;
        Strings(root.GetProperty("buckets").GetProperty("compared")).Should().Equal(new[] { busiest, other }.Order(StringComparer.Ordinal));
        Strings(root.GetProperty("buckets").GetProperty("stream_only")).Should().Equal(Unsealed, OpenWithBatch);
        var total = root.GetProperty("comparison").GetProperty("total");
        long batchRows = busiestRows.RowCount + otherRows.RowCount;
        total.GetProperty("reference_rows").GetInt64().Should().Be(batchRows);
        total.GetProperty("matched").GetInt64().Should().Be(batchRows - 3);
        total.GetProperty("reference_only").GetInt64().Should().Be(3);
        total.GetProperty("reference_only_explained").GetInt64().Should().Be(1);
        total.GetProperty("candidate_only").GetInt64().Should().Be(0);
        foreach (var column in total.GetProperty("columns").EnumerateArray())
        {
            var name = column.GetProperty("column").GetString();
            long disagree = column.GetProperty("compared").GetInt64() - column.GetProperty("agreed").GetInt64();
            disagree.Should().Be(name == "category" ? 2 : 0, $"column {name}");
            if (name == "category")
            {
                Strings(column.GetProperty("examples")).Should().BeEquivalentTo(changed);
            }
        }

        var sequences = root.GetProperty("comparison").GetProperty("sequences");
        long users = sequences.GetProperty("users").GetInt64();
        long missingUsers = Users(busiestRows, [0, 1, 2]);
        sequences.GetProperty("ids_agree").GetInt64().Should().Be(users - missingUsers);
        sequences.GetProperty("fully_agree").GetInt64().Should().Be(users - Users(busiestRows, [0, 1, 2, 3, 4]));
        // Per bucket: only the busiest bucket's types lack events, and they add up to the three missing.
        var perBucket = root.GetProperty("per_bucket").EnumerateArray().Select(p => (Bucket: p.GetProperty("bucket").GetString(), Events: p.GetProperty("events"))).ToList();
        perBucket.Where(p => p.Events.GetProperty("reference_only").GetInt64() > 0).Select(p => p.Bucket).Distinct().Should().Equal(busiest);
        perBucket.Sum(p => p.Events.GetProperty("reference_only").GetInt64()).Should().Be(3);
        perBucket.Sum(p => p.Events.GetProperty("matched").GetInt64()).Should().Be(batchRows - 3);
        root.GetProperty("late").EnumerateArray().Sum(l => l.GetProperty("left_to_batch").GetInt64()).Should().Be(1);
        root.GetProperty("late").EnumerateArray().Sum(l => l.GetProperty("dropped").GetInt64()).Should().Be(1);

        var text = await _cli.RunAsync("quality", "--config", config, "--signal", Signal);
        text.Exit.Should().Be(0, text.Err);
        text.Out.Should().Contain("buckets: 2 compared").And.Contain("2 stream-only, not sealed yet (3 rows)").And.Contain("category").And.Contain($"lowest: {busiest} ");

        var gated = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--min-completeness", "0.999", "--min-agreement", "1");
        gated.Exit.Should().Be(1);
        // Per event type: the three missing events, one of them late, over the types they fall to.
        var perType = System.Text.RegularExpressions.Regex.Matches(gated.Err, @"'(\w+)' completeness .*? \((\d+) of the batch path's events are missing from the stream, (\d+) of them recorded late\)");
        perType.Sum(m => int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)).Should().Be(3);
        perType.Sum(m => int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)).Should().Be(1);
        gated.Err.Should().Contain("column 'category'").And.NotContain("column 'item_id'");

        var loose = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--min-completeness", "0.5", "--ignore", "category", "--min-agreement", "1");
        loose.Exit.Should().Be(0, loose.Err);

        var window = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--from", Iso(other), "--to", Iso(other, plusHours: 1), "--json");
        window.Exit.Should().Be(0, window.Err);
        using (var windowed = JsonDocument.Parse(window.Out))
        {
            Strings(windowed.RootElement.GetProperty("buckets").GetProperty("compared")).Should().Equal(other);
            windowed.RootElement.GetProperty("comparison").GetProperty("total").GetProperty("reference_only").GetInt64().Should().Be(0);
            windowed.RootElement.GetProperty("late").EnumerateArray().Sum(l => l.GetProperty("dropped").GetInt64()).Should().Be(0, "the dropped event's bucket is outside the range");
        }
    }

    /// <summary>
    /// A bucket a batch commit sealed with no rows of its own (an hour without events) was reported as
    /// "not sealed yet", and its stream rows, which reads of the sealed bucket do not show, were not counted.
    /// The completeness gate holds each event type on its own: one the stream lost whole fails it.
    /// </summary>
    [Fact]
    public async Task A_sealed_bucket_without_batch_rows_counts_its_stream_rows_and_a_type_the_stream_lost_fails_the_gate_alone()
    {
        var config = await SetUpAsync();
        (await _cli.RunAsync("batch", "--config", config, "--signal", Signal, "--from", "2026-11-01", "--to", "2026-11-03")).Exit.Should().Be(0);
        var table = await EventTable.OpenAsync(_cli.PathOf($"lake/enriched/{Signal}"));
        var buckets = await BatchBucketsAsync(table);
        var (busiest, rows) = buckets.MaxBy(b => b.Value.RowCount);
        var types = (StringColumn)rows[StandardColumns.EventType];
        string lost = types.Values.GroupBy(t => t).OrderBy(g => g.Count()).First().Key!;
        int[] keep = [.. Enumerable.Range(0, rows.RowCount).Where(i => types.Values[i] != lost)];
        keep.Length.Should().BeGreaterThan(rows.RowCount / 2, "the lost type is the rarer one");
        await table.AppendAsync(rows.Gather(keep), EventPartitioner.Single(EventLayout.Partition(busiest, EventLayout.StreamPath)));
        const string Quiet = "2026-11-04T05";
        await table.AppendAsync(rows.Slice(0, 2), EventPartitioner.Single(EventLayout.Partition(Quiet, EventLayout.StreamPath)));
        await table.Log.CommitAsync(Weft.Storage.DeltaTransaction.Create("WRITE").WithParameter(Weft.Batch.LakeParameters.Sealed, Quiet).Build());

        var run = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--json");

        run.Exit.Should().Be(0, run.Err);
        using var report = JsonDocument.Parse(run.Out);
        Strings(report.RootElement.GetProperty("buckets").GetProperty("compared")).Should().Equal(new[] { busiest, Quiet }.Order(StringComparer.Ordinal));
        Strings(report.RootElement.GetProperty("buckets").GetProperty("stream_only")).Should().BeEmpty();
        report.RootElement.GetProperty("comparison").GetProperty("total").GetProperty("candidate_only").GetInt64().Should().Be(2, "the sealed hour's stream rows are not served (its seal records no read time)");
        double total = report.RootElement.GetProperty("comparison").GetProperty("total").GetProperty("matched").GetInt64()
            / (double)report.RootElement.GetProperty("comparison").GetProperty("total").GetProperty("reference_rows").GetInt64();
        total.Should().BeGreaterThan(0.5, "the test's gate would pass on the total");
        var gated = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--min-completeness", "0.5");
        gated.Exit.Should().Be(1);
        gated.Err.Should().Contain($"'{lost}' completeness 0% is below --min-completeness 50%");
    }

    /// <summary>
    /// Stream rows of a sealed bucket that arrived after the run that sealed it began reading are events
    /// that run could not have (served from the stream): counted apart, not as the stream's extras. One
    /// that arrived before it read, and that the batch lacks, is the stream's extra.
    /// </summary>
    [Fact]
    public async Task Stream_rows_that_arrived_after_the_sealing_run_read_are_counted_apart_not_compared()
    {
        var config = await SetUpAsync();
        (await _cli.RunAsync("batch", "--config", config, "--signal", Signal, "--from", "2026-11-01", "--to", "2026-11-03")).Exit.Should().Be(0);
        var table = await EventTable.OpenAsync(_cli.PathOf($"lake/enriched/{Signal}"));
        var (busiest, rows) = (await BatchBucketsAsync(table)).MaxBy(b => b.Value.RowCount);
        var state = await Weft.Batch.EnrichedLake.ReadStateAsync(table, null, CancellationToken.None);
        long readAt = state.SealReadAtMicros(busiest);
        readAt.Should().BeLessThan(long.MaxValue, "the batch run's sealing commit records when it read");
        var ids = ((StringColumn)rows[StandardColumns.EventId]).Values.ToArray();
        var ingest = new long[rows.RowCount];
        Array.Fill(ingest, readAt - 1_000_000); // the stream's copies, all there before the run read
        var extras = rows.Slice(0, 3);
        extras = Replace(Replace(extras, StandardColumns.EventId, new StringColumn(["after-1", "after-2", "before-1"])),
            StandardColumns.IngestTime, new PrimitiveColumn<long>(WeftType.Timestamp, [readAt + 1, readAt + 5_000_000, readAt - 1]));
        await table.AppendAsync(Replace(rows, StandardColumns.IngestTime, new PrimitiveColumn<long>(WeftType.Timestamp, ingest)), EventPartitioner.Single(EventLayout.Partition(busiest, EventLayout.StreamPath)));
        await table.AppendAsync(extras, EventPartitioner.Single(EventLayout.Partition(busiest, EventLayout.StreamPath)));

        var run = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--json");

        run.Exit.Should().Be(0, run.Err);
        using var report = JsonDocument.Parse(run.Out);
        report.RootElement.GetProperty("buckets").GetProperty("arrived_after_seal_rows").GetInt64().Should().Be(2);
        var total = report.RootElement.GetProperty("comparison").GetProperty("total");
        total.GetProperty("candidate_only").GetInt64().Should().Be(1, "before-1 arrived before the run read, and the batch path lacks it");
        total.GetProperty("matched").GetInt64().Should().Be(rows.RowCount);
    }

    [Fact]
    public async Task Freshness_is_each_event_types_delay_from_event_to_the_stream_with_its_worst_bucket_and_a_gate()
    {
        var config = await SetUpAsync();
        (await _cli.RunAsync("batch", "--config", config, "--signal", Signal, "--from", "2026-11-01", "--to", "2026-11-03")).Exit.Should().Be(0);
        var table = await EventTable.OpenAsync(_cli.PathOf($"lake/enriched/{Signal}"));
        var buckets = await BatchBucketsAsync(table);
        string outage = buckets.Keys.Order(StringComparer.Ordinal).ElementAt(buckets.Count / 2);

        // The stream's copy of every bucket, read 1–30 s after the events happened (by a hash of the row),
        // clicks a second slower than saves; during the outage hour, 40 minutes late; one event ahead of its ingest.
        var expected = new Dictionary<string, List<long>>(StringComparer.Ordinal);
        long ahead = 0;
        int row = 0;
        foreach (var (bucket, rows) in buckets.OrderBy(b => b.Key, StringComparer.Ordinal))
        {
            var times = ((PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
            var types = ((StringColumn)rows[StandardColumns.EventType]).Values;
            var ingest = new long[rows.RowCount];
            for (int i = 0; i < rows.RowCount; i++, row++)
            {
                long latency = (1 + (row * 7919 % 30)) * 1_000_000L + (types[i] == "click" ? 1_000_000 : 0) + (bucket == outage ? 2_400_000_000 : 0);
                if (row == 5)
                {
                    latency = -3_000_000; // a producer's clock ahead: counted as 0
                    ahead++;
                }

                ingest[i] = times[i] + latency;
                (expected.TryGetValue(types[i]!, out var list) ? list : expected[types[i]!] = []).Add(Math.Max(0, latency));
            }

            await table.AppendAsync(Replace(rows, StandardColumns.IngestTime, new PrimitiveColumn<long>(WeftType.Timestamp, ingest)), EventPartitioner.Single(EventLayout.Partition(bucket, EventLayout.StreamPath)));
        }

        var run = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--json");
        run.Exit.Should().Be(0, run.Err);
        using (var report = JsonDocument.Parse(run.Out))
        {
            var freshness = report.RootElement.GetProperty("freshness").EnumerateArray().ToDictionary(f => f.GetProperty("event_type").GetString()!);
            freshness.Keys.Should().HaveSameItemsAs(expected.Keys);
            foreach (var (type, latencies) in expected)
            {
                latencies.Sort();
                double Rank(double q) => latencies[Math.Max(0, (int)Math.Ceiling(q * latencies.Count) - 1)] / 1e6;
                var f = freshness[type];
                f.GetProperty("events").GetInt64().Should().Be(latencies.Count);
                f.GetProperty("p50_seconds").GetDouble().Should().BeApproximately(Rank(0.5), Rank(0.5) * 0.011, type);
                f.GetProperty("p99_seconds").GetDouble().Should().BeApproximately(Rank(0.99), Rank(0.99) * 0.011, type);
                f.GetProperty("max_seconds").GetDouble().Should().Be(latencies[^1] / 1e6);
                f.GetProperty("worst_bucket").GetString().Should().Be(outage);
            }

            freshness.Values.Sum(f => f.GetProperty("ahead_of_ingest").GetInt64()).Should().Be(ahead);
        }

        var text = await _cli.RunAsync("quality", "--config", config, "--signal", Signal);
        text.Out.Should().Contain("freshness (path=stream").And.MatchRegex($@"click +[\d,]+ +[\d.]+ s .*{outage}");
        var gated = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--max-freshness-p99", "30m");
        gated.Exit.Should().Be(1, "40 minutes late in one hour of " + buckets.Count);
        gated.Err.Should().Contain("above --max-freshness-p99 30m").And.Contain($"worst bucket {outage}");
        (await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--max-freshness-p99", "1h")).Exit.Should().Be(0);
        (await _cli.RunAsync("quality", "--config", config, "--signal", Signal, "--max-freshness-p99", "soon")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 2 && r.Err.Contains("--max-freshness-p99 'soon'"));
    }

    [Theory]
    [InlineData("--tolerance", "score")]
    [InlineData("--tolerance", "score=-1")]
    [InlineData("--min-completeness", "1.5")]
    [InlineData("--min-completeness", "abc")]
    [InlineData("--min-agreement", "0,5")]
    [InlineData("--from", "yesterday")]
    public async Task Bad_options_are_refused_with_exit_2_naming_them(string option, string value)
    {
        var config = await SetUpAsync(events: 200);
        var run = await _cli.RunAsync("quality", "--config", config, "--signal", Signal, option, value);
        run.Exit.Should().Be(2);
        run.Err.Should().Contain(option).And.NotContain("System.", "a user reads the option, not a .NET type");
    }

    [Theory]
    [InlineData(0.9999999, ">99.99%")]
    [InlineData(0.99994, "99.99%")]
    [InlineData(1.0, "100%")]
    [InlineData(0.00001, "<0.01%")]
    [InlineData(0.0, "0%")]
    [InlineData(0.5775, "57.75%")]
    public void A_share_is_never_shown_as_100_or_0_percent_when_it_is_not(double share, string shown)
    {
        QualityCommand.Percent(share).Should().Be(shown);
    }

    /// <summary>A latency's unit is chosen after rounding: 0.99996 s printed "1000 ms", 119.999 s "120 s".</summary>
    [Theory]
    [InlineData(0.5, "500 ms")]
    [InlineData(0.99994, "999.9 ms")]
    [InlineData(0.99996, "1 s")]
    [InlineData(1.5, "1.5 s")]
    [InlineData(119.994, "119.99 s")]
    [InlineData(119.999, "2 min")]
    [InlineData(7199.0, "2 h")]
    [InlineData(5400.0, "90 min")]
    [InlineData(172_790.0, "2 days")]
    [InlineData(36_000.0, "10 h")]
    public void A_latency_is_shown_in_the_unit_its_rounded_value_belongs_to(double seconds, string shown)
    {
        QualityCommand.Seconds(seconds).Should().Be(shown);
    }

    /// <summary>A failed gate printed the share rounded onto the gate ("99.8%, below 99.8%").</summary>
    [Theory]
    [InlineData(0.99798, 0.998, "99.798%")]
    [InlineData(0.9979999, 0.998, "99.79999%")]
    [InlineData(0.95, 0.998, "95%")]
    [InlineData(0.5, 0.75, "50%")]
    [InlineData(0.95995, 0.96, "95.99%")]
    public void A_share_below_a_gate_is_shown_below_it(double share, double gate, string shown)
    {
        QualityCommand.Below(share, gate).Should().Be(shown);
    }

    /// <summary>
    /// The text report printed a share of nothing as 100 %: completeness of a type the batch path held
    /// none of, a column no event was compared in, and "all agree" for a type the stream lost whole. The
    /// JSON report gives null there (docs/quality.md); a reader of the text took them for measured.
    /// </summary>
    [Fact]
    public async Task The_text_report_prints_a_share_of_nothing_as_unmeasured()
    {
        System.Collections.Immutable.ImmutableArray<FieldDefinition> schema = [.. StandardColumns.All, new("score", WeftType.Float64)];
        EventBatch Rows(params (string Id, string Type)[] rows) => new(schema,
        [
            new StringColumn([.. rows.Select(r => (string?)r.Id)]),
            new PrimitiveColumn<long>(WeftType.Int64, [.. rows.Select(_ => 1L)]),
            new StringColumn([.. rows.Select(r => (string?)r.Type)]),
            new PrimitiveColumn<long>(WeftType.Timestamp, [.. rows.Select(_ => 10L)]),
            new PrimitiveColumn<long>(WeftType.Timestamp, [.. rows.Select(_ => 20L)]),
            new PrimitiveColumn<double>(WeftType.Float64, [.. rows.Select(_ => 1.0)]),
        ]);
        var comparer = new Weft.Quality.EventComparer(schema, schema);
        // click: on both paths; save: the stream lost it; view: only the stream has it.
        comparer.Compare(Rows(("a", "click"), ("s", "save")), Rows(("a", "click"), ("v", "view")));
        var report = new Weft.Quality.QualityReport(Signal, "f", 1, new Weft.Quality.BucketCoverage(["2026-11-01T00"], [], 0, [], 0), comparer.Result(), [], [], [], []);
        var output = new StringWriter();

        await QualityCommand.WriteAsync(report, output);

        var lines = output.ToString().Split('\n').Select(l => l.TrimEnd()).ToList();
        string[] Cells(string type) => lines.Single(l => l.StartsWith("    " + type + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Cells("click")[^3..].Should().Equal("100%", "all", "agree");
        Cells("save")[^2..].Should().Equal(["0%", "-"], "no save was compared, so no column agreed or not");
        Cells("view")[^2..].Should().Equal(["-", "-"], "the batch path held no view: a share of nothing");

        // Nothing matched at all: no column compared an event.
        var lost = new Weft.Quality.EventComparer(schema, schema);
        lost.Compare(Rows(("s", "save")), Rows());
        output = new StringWriter();
        await QualityCommand.WriteAsync(report with { Comparison = lost.Result() }, output);
        lines = output.ToString().Split('\n').Select(l => l.TrimEnd()).ToList();
        Cells("score").Should().Equal(["score", "-", "-"], "the column was compared in no event");
    }

    [Fact]
    public async Task A_signal_without_an_enriched_table_says_what_to_run_first()
    {
        var config = await SetUpAsync(events: 200);
        var run = await _cli.RunAsync("quality", "--config", config, "--signal", Signal);
        run.Exit.Should().Be(2);
        run.Err.Should().Contain("no enriched table for signal 'engagement'").And.Contain("weft batch");
    }

    private async Task<string> SetUpAsync(int events = 3000)
    {
        (await _cli.RunAsync("gen", "--out", _cli.PathOf("raw"), "--events", events.ToString(CultureInfo.InvariantCulture), "--users", "40", "--items", "50", "--days", "2")).Exit.Should().Be(0);
        var compile = await _cli.RunAsync("compile", Path.Combine(CliHarness.RepoRoot, "examples", "definitions"), "--out", _cli.PathOf("signals"));
        compile.Exit.Should().Be(0, compile.Err);
        var path = _cli.PathOf("weft.json");
        await File.WriteAllTextAsync(path, """
            {
              "lake": "lake",
              "signals": "signals",
              "archives": [ { "path": "raw/events", "format": "delta" } ],
              "enrichments": { "items": "raw/items" }
            }
            """);
        return path;
    }

    private static async Task<Dictionary<string, EventBatch>> BatchBucketsAsync(EventTable table)
    {
        var snapshot = await table.Log.GetSnapshotAsync();
        var result = new Dictionary<string, EventBatch>(StringComparer.Ordinal);
        foreach (var bucket in snapshot.Files().Select(f => f.PartitionValues[EventLayout.BucketColumn]!).Distinct())
        {
            var parts = new List<EventBatch>();
            var filter = PartitionFilter.All.Equal(EventLayout.BucketColumn, bucket).Equal(EventLayout.PathColumn, EventLayout.BatchPath);
            await foreach (var part in table.ReadAsync([.. table.Schema.Select(f => f.Name)], filter))
            {
                parts.Add(part);
            }

            result[bucket] = EventBatch.Concat(table.Schema, parts);
        }

        return result;
    }

    private static EventBatch Replace(EventBatch batch, string name, Column column) =>
        new(batch.Schema, [.. batch.Schema.Select((f, i) => f.Name == name ? column : batch.Columns[i])]);

    private static long Users(EventBatch rows, int[] at)
    {
        var users = ((PrimitiveColumn<long>)rows[StandardColumns.UserId]).Values;
        return at.Select(i => users[i]).Distinct().Count();
    }

    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];

    private static string Iso(string bucket, int plusHours = 0) =>
        Timestamps.Format(TimeBuckets.Parse(bucket).StartMicros + (plusHours * 3_600_000_000L));
}
