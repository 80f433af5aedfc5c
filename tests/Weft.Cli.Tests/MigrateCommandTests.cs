using System.Globalization;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Migration;
using Weft.Parquet.Tests;
using Weft.Tests.Legacy;
using Xunit;

namespace Weft.Cli.Tests;

/// <summary>
/// <c>weft migrate</c> as a team runs it: Weft's batch output for a signal, a legacy pipeline's output
/// built from it with known differences (events lost, values changed, a column Weft lacks, an event
/// Weft lacks) and a second legacy run for the noise floor; the comparison must count exactly those
/// differences, and every gate, override and route must hold from the command line.
/// </summary>
public sealed class MigrateCommandTests : IDisposable
{
    private const string Signal = "engagement";
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public async Task The_comparison_counts_exactly_the_legacy_differences_and_the_noise_floor_lowers_the_bar()
    {
        var world = await SetUpAsync();
        var shadow = await Migrate("shadow", world.Config, "--event-type", "click");
        shadow.Exit.Should().Be(0, shadow.Err);
        shadow.Out.Should().Contain($"legacy holds {world.LegacyClicks:N0} 'click' events and Weft {world.WeftClicks:N0}");

        // Without a replica: the column only legacy has fails the gate, and so does category at --min-agreement 1.
        var strict = await Migrate("compare", world.NoReplicaConfig, "--event-type", "click", "--min-agreement", "1", "--json");
        strict.Exit.Should().Be(1, strict.Err);
        using (var doc = JsonDocument.Parse(strict.Out))
        {
            var result = doc.RootElement.GetProperty("result");
            var total = result.GetProperty("comparison").GetProperty("total");
            total.GetProperty("reference_rows").GetInt64().Should().Be(world.LegacyClicks);
            total.GetProperty("candidate_rows").GetInt64().Should().Be(world.WeftClicks, "the stream's copy of a sealed bucket is not what Weft serves");
            total.GetProperty("candidate_duplicates").GetInt64().Should().Be(0);
            total.GetProperty("matched").GetInt64().Should().Be(world.WeftClicks - 3);
            total.GetProperty("reference_only").GetInt64().Should().Be(1, "the one event only legacy has");
            total.GetProperty("candidate_only").GetInt64().Should().Be(3, "the three events legacy lost");
            foreach (var column in total.GetProperty("columns").EnumerateArray())
            {
                long disagree = column.GetProperty("compared").GetInt64() - column.GetProperty("agreed").GetInt64();
                disagree.Should().Be(column.GetProperty("column").GetString() == "category" ? 2 : 0, column.GetProperty("column").GetString());
            }

            var sequences = result.GetProperty("comparison").GetProperty("sequences");
            sequences.GetProperty("users").GetInt64().Should().Be(world.ClickUsers);
            sequences.GetProperty("ids_agree").GetInt64().Should().Be(world.ClickUsers - world.UsersWithDifferentIds);
            result.GetProperty("legacy_only_columns").EnumerateArray().Select(c => c.GetString()).Should().Equal("legacy_rank");
            result.GetProperty("noise_floor").ValueKind.Should().Be(JsonValueKind.Null);
            doc.RootElement.GetProperty("transition").GetProperty("entry").GetProperty("to").GetString().Should().Be("shadow", "a failed comparison leaves it in shadow");
        }

        strict.Err.Should().Contain("legacy has column 'legacy_rank'").And.Contain("column category").And.NotContain("column item_id");

        // With the replica: legacy disagrees with itself on 4 categories, so Weft's 2 pass even at --min-agreement 1.
        // (40 users, 4 with events only one side has: 90 % of sequences agree, below the default 95 %.)
        var floored = await Migrate("compare", world.Config, "--event-type", "click", "--min-agreement", "1", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8", "--json");
        floored.Exit.Should().Be(0, floored.Err);
        using (var doc = JsonDocument.Parse(floored.Out))
        {
            var result = doc.RootElement.GetProperty("result");
            var category = result.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("measure").GetString() == "column category");
            long legacyMatched = world.LegacyClicks; // the replica holds every event legacy does
            category.GetProperty("noise_floor").GetDouble().Should().BeApproximately((legacyMatched - 4.0) / legacyMatched, 1e-12);
            category.GetProperty("required").GetDouble().Should().Be(category.GetProperty("noise_floor").GetDouble());
            category.GetProperty("value").GetDouble().Should().BeApproximately((world.WeftClicks - 5.0) / (world.WeftClicks - 3), 1e-12);
            result.GetProperty("noise_floor").GetProperty("total").GetProperty("matched").GetInt64().Should().Be(world.LegacyClicks);
            doc.RootElement.GetProperty("transition").GetProperty("status").GetProperty("stage").GetString().Should().Be("compared");
        }

        // DuckDB reads legacy's Parquet file as the comparison did.
        var duck = await DuckDb.RunAsync($"SELECT count(*), count(DISTINCT user_id) FROM read_parquet({DuckDb.Quote(world.LegacyPath)}) WHERE event_type = 'click'");
        duck[0].Rows[0][0].GetString().Should().Be(world.LegacyClicks.ToString(CultureInfo.InvariantCulture));

        var window = await Migrate("compare", world.Config, "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8", "--from", "2026-11-02", "--to", "2026-11-02T06:00:00Z", "--json");
        using (var doc = JsonDocument.Parse(window.Out))
        {
            var result = doc.RootElement.GetProperty("result");
            result.GetProperty("legacy_rows").GetInt64().Should().Be(world.LegacyClicksIn(Timestamps.ToMicros(new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero)), Timestamps.ToMicros(new DateTimeOffset(2026, 11, 2, 6, 0, 0, TimeSpan.Zero))));
        }
    }

    /// <summary>
    /// A legacy pipeline known only by its sequence endpoint: shadow and compare ask it for a sample of
    /// Weft's users, and the comparison counts the same known differences as through its table.
    /// </summary>
    [Fact]
    public async Task Through_the_legacy_endpoint_the_comparison_counts_the_same_differences_over_the_users_asked()
    {
        var world = await SetUpAsync();
        await using var legacy = await LegacyServer.StartAsync();
        var users = ((PrimitiveColumn<long>)world.Legacy[StandardColumns.UserId]).Values;
        void Answer(int cap)
        {
            foreach (var group in Enumerable.Range(0, world.Legacy.RowCount).GroupBy(i => users[i]))
            {
                // Legacy's answer: the user's newest events.
                legacy.Bodies[group.Key] = Sequence([.. group.OrderByDescending(i => ((PrimitiveColumn<long>)world.Legacy[StandardColumns.EventTime]).Values[i]).Take(cap)]);
            }
        }

        string Sequence(int[] newestFirst)
        {
            var rows = world.Legacy.Gather(newestFirst);
            // Without user_id (the URL names the user), and without long_dwell: legacy never had it.
            rows = rows.Project([.. rows.Schema.Where(f => f.Name != StandardColumns.UserId && f.Name != "long_dwell")]);
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartArray();
                for (int r = 0; r < rows.RowCount; r++)
                {
                    JsonRows.WriteRow(w, rows, r);
                }

                w.WriteEndArray();
            }

            return Encoding.UTF8.GetString(buffer.ToArray());
        }

        Answer(int.MaxValue);

        var config = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(world.Config))!;
        config["legacy"]![Signal] = new System.Text.Json.Nodes.JsonObject { ["endpoint"] = legacy.Url };
        string endpointConfig = _cli.PathOf("endpoint.json");
        await File.WriteAllTextAsync(endpointConfig, config.ToJsonString());
        string[] range = ["--from", "2026-11-01", "--to", "2026-11-03"];

        var shadow = await Migrate("shadow", endpointConfig, "--event-type", "click");
        shadow.Exit.Should().Be(0, shadow.Err);
        var compare = await Migrate("compare", endpointConfig, ["--event-type", "click", .. range, "--json"]);
        compare.Exit.Should().Be(1, "legacy_rank is legacy's only, as through the table");
        int allUsers = users.Distinct().Count();
        using (var doc = JsonDocument.Parse(compare.Out))
        {
            var result = doc.RootElement.GetProperty("result");
            result.GetProperty("sampled_users").GetInt32().Should().Be(allUsers, "every user Weft holds is asked: fewer than --users");
            var total = result.GetProperty("comparison").GetProperty("total");
            total.GetProperty("reference_rows").GetInt64().Should().Be(world.LegacyClicks);
            total.GetProperty("candidate_rows").GetInt64().Should().Be(world.WeftClicks);
            total.GetProperty("matched").GetInt64().Should().Be(world.WeftClicks - 3);
            total.GetProperty("reference_only").GetInt64().Should().Be(1);
            total.GetProperty("candidate_only").GetInt64().Should().Be(3, "the three events legacy lost, none its user's oldest");
            total.GetProperty("columns").EnumerateArray().Single(c => c.GetProperty("column").GetString() == "category")
                .Should().Match<JsonElement>(c => c.GetProperty("compared").GetInt64() - c.GetProperty("agreed").GetInt64() == 2);
            result.GetProperty("legacy_only_columns").EnumerateArray().Select(c => c.GetString()).Should().Equal("legacy_rank");
            result.GetProperty("noise_floor").ValueKind.Should().Be(JsonValueKind.Null, "a live service has no second run");
            result.GetProperty("comparison").GetProperty("only_in_candidate").EnumerateArray().Select(c => c.GetString()).Should().Contain("long_dwell", "a column legacy does not answer is Weft's addition, not a disagreement");
            total.GetProperty("columns").EnumerateArray().Select(c => c.GetProperty("column").GetString()).Should().NotContain("long_dwell");
        }

        var passed = await Migrate("compare", endpointConfig, ["--event-type", "click", .. range, "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8"]);
        passed.Exit.Should().Be(0, passed.Err);
        passed.Out.Should().Contain($"through legacy's endpoint: the sequences of {allUsers:N0} users");

        // A sample: the same ten users every time; and an endpoint failing for one user in ten fails the gate.
        var ten = await Migrate("compare", endpointConfig, ["--event-type", "click", .. range, "--ignore", "legacy_rank", "--users", "10", "--json"]);
        var again = await Migrate("compare", endpointConfig, ["--event-type", "click", .. range, "--ignore", "legacy_rank", "--users", "10", "--json"]);
        using (var a = JsonDocument.Parse(ten.Out))
        using (var b = JsonDocument.Parse(again.Out))
        {
            a.RootElement.GetProperty("result").GetProperty("sampled_users").GetInt32().Should().Be(10);
            a.RootElement.GetProperty("result").GetProperty("comparison").GetRawText().Should().Be(b.RootElement.GetProperty("result").GetProperty("comparison").GetRawText());
            a.RootElement.GetProperty("result").GetProperty("legacy_rows").GetInt64().Should().BeLessThan(world.LegacyClicks);
        }

        // Legacy's sequences capped at 20 events: each user is compared from the oldest event legacy
        // answered, so Weft's older events are not counted as legacy's losses.
        Answer(20);
        var capped = await Migrate("compare", endpointConfig, ["--event-type", "click", .. range, "--ignore", "legacy_rank", "--json"]);
        using (var doc = JsonDocument.Parse(capped.Out))
        {
            var total = doc.RootElement.GetProperty("result").GetProperty("comparison").GetProperty("total");
            total.GetProperty("reference_rows").GetInt64().Should().BeLessThan(world.LegacyClicks / 2, "20 of ~75 events a user");
            total.GetProperty("candidate_only").GetInt64().Should().BeLessThanOrEqualTo(3, "only events legacy lost can be Weft's alone");
            total.GetProperty("reference_only").GetInt64().Should().BeLessThanOrEqualTo(1);
        }

        Answer(int.MaxValue);
        legacy.FailFor[users[0]] = 503;
        var failing = await Migrate("compare", endpointConfig, ["--event-type", "click", .. range, "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8"]);
        failing.Exit.Should().Be(1);
        failing.Err.Should().Contain($"legacy's endpoint failed for 1 of {allUsers} users asked").And.Contain($"/users/{users[0]}/sequence answered 503");
    }

    [Fact]
    public async Task A_team_walks_one_event_type_to_deprecation_through_every_gate()
    {
        var world = await SetUpAsync();
        (await Migrate("status", world.Config)).Out.Should().Contain("does not exist yet");
        (await Migrate("compare", world.Config, "--event-type", "click")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 2 && r.Err.Contains("does not exist: a migration starts with `weft migrate shadow`"),
            "only shadow creates the ledger; status, a read, did not");
        (await Migrate("shadow", world.Config, "--event-type", "click")).Exit.Should().Be(0);
        (await Migrate("compare", world.Config, "--event-type", "save")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 1 && r.Err.Contains("not in shadow"));
        (await Migrate("status", world.Config, "--event-type", "clik")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 2 && r.Err.Contains("no event type 'clik'"));
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "10")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 1 && r.Err.Contains("no comparison with legacy is stored"));
        var compared = await Migrate("compare", world.Config, "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8");
        compared.Exit.Should().Be(0);
        compared.Err.Should().NotContain("warning", "the table was written under the definition loaded");


        // The signal's file edited after the table was written: the comparison says it judges the old definition's rows.
        string signalFile = _cli.PathOf("signals/engagement.json");
        string original = await File.ReadAllTextAsync(signalFile);
        await File.WriteAllTextAsync(signalFile, original.Replace("\"max_length\": 500", "\"max_length\": 400", StringComparison.Ordinal));
        File.Delete(signalFile + ".sha256");
        (await File.ReadAllTextAsync(signalFile)).Should().NotBe(original, "the test edits max_length");
        var stale = await Migrate("compare", world.Config, "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8");
        stale.Err.Should().Contain("warning:").And.Contain("was last written under definition").And.Contain("run `weft batch`");
        await File.WriteAllTextAsync(signalFile, original);
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "10"))
            .Err.Should().Contain("gathered under definition", "that comparison tested another definition than the one loaded now");
        // A tail the stream owes (its record): the stream runs the loaded definition, but rows it streamed under an earlier one are not recomputed yet.
        var owedTail = new BatchRequest(Signal, Timestamps.ToMicros(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero)), Timestamps.ToMicros(new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero)));
        await Weft.Streaming.Runtime.PendingTailFile.WriteAsync(_cli.PathOf($"lake/enriched/{Signal}"), "an-earlier-definition", owedTail, CancellationToken.None);
        var owing = await Migrate("compare", world.Config, "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8");
        owing.Exit.Should().Be(0);
        owing.Err.Should().Contain("warning: the stream's tail recompute of 'engagement' has not completed").And.Contain(Weft.Streaming.Runtime.SignalDefinitionChanged.BatchCommandFor(world.Config, owedTail));
        File.Delete(Weft.Streaming.Runtime.PendingTailFile.PathIn(_cli.PathOf($"lake/enriched/{Signal}")));

        // A/B: the treatment replay shifted beyond the margin fails (stored, stage unchanged); a close one passes.
        var control = Enumerable.Range(0, 60).ToDictionary(i => $"req-{i}", i => 0.2 + (i % 7 / 10.0));
        await File.WriteAllTextAsync(_cli.PathOf("control.csv"), "example_id,score\n" + string.Concat(control.Select(p => $"{p.Key},{p.Value.ToString("R", CultureInfo.InvariantCulture)}\n")));
        await File.WriteAllTextAsync(_cli.PathOf("shifted.jsonl"), string.Concat(control.Select(p => $"{{\"example_id\":\"{p.Key}\",\"score\":{(p.Value + 0.1).ToString("R", CultureInfo.InvariantCulture)}}}\n")));
        await File.WriteAllTextAsync(_cli.PathOf("close.jsonl"), string.Concat(control.Select((p, i) => $"{{\"example_id\":\"{p.Key}\",\"score\":{(p.Value + ((i % 2 == 0 ? 1 : -1) * 0.001)).ToString("R", CultureInfo.InvariantCulture)}}}\n")));
        var shifted = await Migrate("abtest", world.Config, "--event-type", "click", "--control", _cli.PathOf("control.csv"), "--treatment", _cli.PathOf("shifted.jsonl"), "--margin", "0.02");
        shifted.Exit.Should().Be(1);
        shifted.Err.Should().Contain("not shown to lie within");
        shifted.Out.Should().Contain("stays compared");
        var close = await Migrate("abtest", world.Config, "--event-type", "click", "--control", _cli.PathOf("control.csv"), "--treatment", _cli.PathOf("close.jsonl"), "--margin", "0.02");
        close.Exit.Should().Be(0, close.Err);
        close.Out.Should().Contain("60 paired examples").And.Contain("compared → ab-tested");

        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "150")).Exit.Should().Be(2);
        var unnamed = await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "10", "--consumer", "ranker v2");
        unnamed.Exit.Should().Be(2, unnamed.Err);
        unnamed.Err.Should().Contain("--consumer 'ranker v2': a consumer name has ASCII letters, digits");
        var controlled = await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "10", "--consumer", "r\u001b[2Jx");
        controlled.Exit.Should().Be(2);
        controlled.Err.Should().Contain("--consumer 'r\\u001b[2Jx'", "a control character is shown escaped, not sent to the terminal");
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "10", "--consumer", "ranker")).Exit.Should().Be(0);
        (await Migrate("status", world.Config)).Out.Should().MatchRegex(@"(?m)click\s+cutting-over.*cutover --consumer ranker --percent 100\s*$", "ranker's is the only route");

        // The route command answers what the sticky hash says, user by user.
        for (long user = 1000; user < 1040; user++)
        {
            var route = await Migrate("route", world.Config, "--consumer", "ranker", "--user", user.ToString(CultureInfo.InvariantCulture), "--json");
            using var doc = JsonDocument.Parse(route.Out);
            doc.RootElement.GetProperty("click").GetString().Should().Be(MigrationRouting.ServedByWeft(10, Signal, "click", user) ? "weft" : "legacy");
            doc.RootElement.GetProperty("save").GetString().Should().Be("legacy", "save has not started");
        }

        (await Migrate("rollback", world.Config, "--event-type", "click")).Exit.Should().Be(2, "a rollback needs --reason");
        var rollback = await Migrate("rollback", world.Config, "--event-type", "click", "--reason", "ranker CTR -3 %\n\u001b[2J", "--actor", "ops\rbot");
        rollback.Exit.Should().Be(0, rollback.Err);
        rollback.Out.Should().Contain("cutting-over → ab-tested").And.Contain("ranker 0 %");

        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "100")).Out.Should().Contain("→ cutting-over", "ranker's own route is still at 0 %");

        // A comparison that fails during the cutover, then one that passes: the A/B test before them no
        // longer stands, and status says to test again (it said to raise the route, which the gate refuses).
        (await Migrate("compare", world.Config, "--event-type", "click", "--from", "2030-01-01", "--to", "2030-01-02")).Exit.Should().Be(1);
        (await Migrate("compare", world.Config, "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8")).Exit.Should().Be(0);
        (await Migrate("status", world.Config)).Out.Should().MatchRegex(@"click\s+cutting-over.*abtest \(the last predates a failed comparison\)");
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "100", "--consumer", "ranker")).Err.Should().Contain("predates a comparison that failed since");
        (await Migrate("abtest", world.Config, "--event-type", "click", "--control", _cli.PathOf("control.csv"), "--treatment", _cli.PathOf("close.jsonl"), "--margin", "0.02")).Exit.Should().Be(0);
        // `*` is at 100 % and ranker's own route at 0 %: the route to raise is ranker's (raising `*` changes nothing).
        (await Migrate("status", world.Config)).Out.Should().MatchRegex(@"(?m)click\s+cutting-over.*cutover --consumer ranker --percent 100\s*$");
        var deprecateEarly = await Migrate("deprecate", world.Config, "--event-type", "click", "--min-soak", "0s");
        deprecateEarly.Exit.Should().Be(1);
        deprecateEarly.Err.Should().Contain("not cut-over").And.Contain("ranker 0 %");
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "100", "--consumer", "ranker")).Out.Should().Contain("cutting-over → cut-over");
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "100", "--consumer", "ranker")).Out
            .Should().Contain("ranker is at 100 % already: nothing recorded", "a repeated command writes no audit line (the log below counts them)");
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "99.9999999999", "--consumer", "ranker")).Out
            .Should().Contain("already: nothing recorded", "a percent a hair off the bucket is the bucket the route holds");
        (await Migrate("deprecate", world.Config, "--event-type", "click")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 1 && r.Err.Contains("soak of 7 days"));
        var deprecated = await Migrate("deprecate", world.Config, "--event-type", "click", "--min-soak", "0s", "--actor", "dana");
        deprecated.Exit.Should().Be(0, deprecated.Err);
        deprecated.Out.Should().Contain("cut-over → legacy-deprecated");
        (await Migrate("deprecate", world.Config, "--event-type", "click", "--min-soak", "0s")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 1 && r.Err.Contains("legacy-deprecated already"));
        (await Migrate("compare", world.Config, "--event-type", "click")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 1 && r.Err.Contains("nothing to compare against"));

        var text = await Migrate("log", world.Config);
        text.Out.Should().NotContain("\u001b").And.NotContain("\r");
        text.Out.Split('\n').Should().ContainSingle(l => l.Contains("rollback", StringComparison.Ordinal))
            .Which.Should().Contain("reason: ranker CTR -3 %\\u000a\\u001b[2J").And.EndWith("by ops\\u000dbot", "one line an entry, control characters shown escaped");
        var log = await Migrate("log", world.Config, "--json");
        using (var doc = JsonDocument.Parse(log.Out))
        {
            var entries = doc.RootElement.EnumerateArray().ToList();
            entries.Select(e => e.GetProperty("action").GetString()).Should().Equal(
                "shadow", "compare", "compare", "compare", "abtest", "abtest", "cutover", "rollback", "cutover", "compare", "compare", "abtest", "cutover", "deprecate");
            entries[^1].GetProperty("actor").GetString().Should().Be("dana");
            entries[7].GetProperty("reason").GetString().Should().Be("ranker CTR -3 %\n\u001b[2J", "JSON holds the text as given");
            entries[7].GetProperty("actor").GetString().Should().Be("ops\rbot");
        }

        var status = await Migrate("status", world.Config);
        status.Out.Should().MatchRegex(@"click\s+legacy-deprecated").And.MatchRegex(@"save\s+not-started");
    }

    [Fact]
    public async Task A_route_recorded_before_the_consumer_name_rule_can_still_be_raised_to_cut_over()
    {
        var world = await SetUpAsync();
        (await Migrate("shadow", world.Config, "--event-type", "click")).Exit.Should().Be(0);
        (await Migrate("compare", world.Config, "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8")).Exit.Should().Be(0);
        var scores = Enumerable.Range(0, 60).Select(i => (Id: $"req-{i}", Score: 0.2 + (i % 7 / 10.0))).ToList();
        await File.WriteAllTextAsync(_cli.PathOf("control.csv"), "example_id,score\n" + string.Concat(scores.Select(p => $"{p.Id},{p.Score.ToString("R", CultureInfo.InvariantCulture)}\n")));
        await File.WriteAllTextAsync(_cli.PathOf("treatment.csv"), "example_id,score\n" + string.Concat(scores.Select((p, i) => $"{p.Id},{(p.Score + ((i % 2 == 0 ? 1 : -1) * 0.001)).ToString("R", CultureInfo.InvariantCulture)}\n")));
        (await Migrate("abtest", world.Config, "--event-type", "click", "--control", _cli.PathOf("control.csv"), "--treatment", _cli.PathOf("treatment.csv"), "--margin", "0.02")).Exit.Should().Be(0);
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "100")).Exit.Should().Be(0);

        // The ledger's own API records any name: the route an older release let a name with a space and a quote take.
        const string oldName = "ranker v2's";
        await using (var store = await MigrationStore.OpenAsync(_cli.PathOf("migration.db")))
        {
            await store.CutoverAsync(Signal, "click", oldName, 10, "recorded before the rule", "test");
        }

        var status = await Migrate("status", world.Config);
        status.Out.Should().Contain("cutover --consumer 'ranker v2'\\''s' --percent 100", "the suggestion is one shell word for the name");
        var tested = await Migrate("outcome", world.Config, "--event-type", "click", "--consumer", oldName, "--outcomes", _cli.PathOf("control.csv"), "--margin", "0.05");
        tested.Exit.Should().Be(2);
        tested.Err.Should().Contain($"no exposures of 'click' to consumer '{oldName}' at 10 %", "the name passed; the old route has no exposures logged");
        var raised = await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "100", "--consumer", oldName);
        raised.Exit.Should().Be(0, raised.Err);
        raised.Out.Should().Contain("cutting-over → cut-over", "the route that held the stage rose");

        // A name with a control character is suggested escaped (bash's $'…'), never sent to the terminal raw;
        // one that starts with '-' is joined to the option, or it would be read as one.
        await using (var store = await MigrationStore.OpenAsync(_cli.PathOf("migration.db")))
        {
            await store.CutoverAsync(Signal, "click", "r\u001b[2Jx", 10, "recorded before the rule", "test");
            await store.CutoverAsync(Signal, "click", "-ranker", 10, "a name the rule allows", "test");
        }

        var listed = await Migrate("status", world.Config);
        listed.Out.Should().Contain("cutover --consumer=-ranker --percent 100 (below 100 %: -ranker, r\\u001b[2Jx)");
        var dashed = await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "100", "--consumer=-ranker");
        dashed.Exit.Should().Be(0, dashed.Err);
        var escaped = await Migrate("status", world.Config);
        escaped.Out.Should().Contain("cutover --consumer $'r\\u001b[2Jx' --percent 100").And.NotContain("\u001b");
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "100", "--consumer", "r\u001b[2Jx")).Out.Should().Contain("→ cut-over");

        var fresh = await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "10", "--consumer", "ranker v3");
        fresh.Exit.Should().Be(2, "a name without a route is held to the rule");
        fresh.Err.Should().Contain("--consumer 'ranker v3': a consumer name has ASCII letters, digits");
        (await Migrate("outcome", world.Config, "--event-type", "click", "--consumer", "ranker v3", "--outcomes", _cli.PathOf("control.csv"), "--margin", "0.05")).Err
            .Should().Contain("--consumer 'ranker v3': a consumer name has");
        (await Migrate("status", world.Config)).Out.Should().MatchRegex(@"click\s+cut-over", "the refused cutover recorded nothing");
    }

    [Fact]
    public async Task The_sample_ratio_check_passes_an_honest_split_and_catches_a_skewed_one()
    {
        var world = await SetUpAsync();
        (await Migrate("shadow", world.Config, "--event-type", "click")).Exit.Should().Be(0);
        (await Migrate("srm", world.Config, "--event-type", "click", "--consumer", "ranker")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 2 && r.Err.Contains("no split route"));
        var forced = await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "10", "--consumer", "ranker", "--override", "ranker has no offline replay");
        forced.Exit.Should().Be(0, forced.Err);
        forced.Out.Should().Contain("OVERRIDE: ranker has no offline replay");
        (await Migrate("srm", world.Config, "--event-type", "click", "--consumer", "ranker")).Should().Match<(int Exit, string Out, string Err)>(r => r.Exit == 2 && r.Err.Contains("no exposures"));

        // What weft serve logs when 20,000 users ask for their routes: each lands where the hash says.
        var at = DateTimeOffset.UtcNow;
        await using (var store = await MigrationStore.OpenAsync(_cli.PathOf("migration.db")))
        {
            await store.RecordExposuresAsync([.. Enumerable.Range(0, 20_000).Select(u => new Exposure(Signal, "click", "ranker", 10, u, MigrationRouting.ServedByWeft(10, Signal, "click", u), at))]);
        }

        var honest = await Migrate("srm", world.Config, "--event-type", "click", "--consumer", "ranker", "--json");
        honest.Exit.Should().Be(0, honest.Out + honest.Err);
        using (var doc = JsonDocument.Parse(honest.Out))
        {
            long served = Enumerable.Range(0, 20_000).Count(u => MigrationRouting.ServedByWeft(10, Signal, "click", u));
            doc.RootElement.GetProperty("weft_users").GetInt64().Should().Be(served);
            doc.RootElement.GetProperty("legacy_users").GetInt64().Should().Be(20_000 - served);
        }

        // A consumer that sends 2,000 more users to legacy than the route says (its own fallback, say).
        await using (var store = await MigrationStore.OpenAsync(_cli.PathOf("migration.db")))
        {
            await store.RecordExposuresAsync([.. Enumerable.Range(100_000, 2_000).Select(u => new Exposure(Signal, "click", "ranker", 10, u, false, at))]);
        }

        var skewed = await Migrate("srm", world.Config, "--event-type", "click", "--consumer", "ranker");
        skewed.Exit.Should().Be(1);
        skewed.Out.Should().Contain("SAMPLE RATIO MISMATCH");

        // The always-valid check, for a team that runs it every hour: 2,000 of 22,000 users astray is found too, with a larger p.
        var always = await Migrate("srm", world.Config, "--event-type", "click", "--consumer", "ranker", "--sequential", "--json");
        always.Exit.Should().Be(1);
        using (var doc = JsonDocument.Parse(always.Out))
        {
            doc.RootElement.GetProperty("sequential").GetBoolean().Should().BeTrue();
            doc.RootElement.GetProperty("p_value").GetDouble().Should().BeLessThan(0.001).And.BeGreaterThan(JsonDocument.Parse((await Migrate("srm", world.Config, "--event-type", "click", "--consumer", "ranker", "--json")).Out).RootElement.GetProperty("p_value").GetDouble());
        }

        (await Migrate("srm", world.Config, "--event-type", "click", "--consumer", "ranker", "--sequential")).Out.Should().Contain("always-valid p = ");
    }

    [Fact]
    public async Task The_online_outcome_test_compares_the_consumers_metric_across_its_split_and_a_failure_holds_its_route()
    {
        var world = await SetUpAsync();
        (await Migrate("shadow", world.Config, "--event-type", "click")).Exit.Should().Be(0);
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "10", "--consumer", "ranker", "--override", "no replay for ranker")).Exit.Should().Be(0);
        string outcomes = _cli.PathOf("ranker-clicks.csv");
        await File.WriteAllTextAsync(outcomes, "user_id,clicked\n1,1\n");
        var none = await Migrate("outcome", world.Config, "--event-type", "click", "--consumer", "ranker", "--outcomes", outcomes, "--metric", "clicked", "--margin", "0.05");
        none.Exit.Should().Be(2);
        none.Err.Should().Contain("no exposures of 'click' to consumer 'ranker' at 10 %");
        foreach (string bad in new[] { "NaN", "0", "100", "1e300", "-5" })
        {
            var refused = await Migrate("outcome", world.Config, "--event-type", "click", "--consumer", "ranker", "--outcomes", outcomes, "--metric", "clicked", "--margin", "0.05", "--percent", bad);
            refused.Exit.Should().Be(2, bad);
            refused.Err.Should().Contain($"--percent {double.Parse(bad, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture)} must lie strictly between 0 and 100", bad);
        }

        // What weft serve logs when 20,000 users ask for ranker's routes, and ranker's own click log:
        // one to three impressions a user, clicked with probability 0.3 (Weft's users: weftRate).
        var at = DateTimeOffset.UtcNow;
        await using (var store = await MigrationStore.OpenAsync(_cli.PathOf("migration.db")))
        {
            await store.RecordExposuresAsync([.. Enumerable.Range(0, 20_000).Select(u => new Exposure(Signal, "click", "ranker", 10, u, MigrationRouting.ServedByWeft(10, Signal, "click", u), at))]);
        }

        async Task WriteClicksAsync(double weftRate)
        {
            var random = new Random(5);
            var csv = new StringBuilder("user_id,clicked\n");
            for (int u = 0; u < 20_000; u++)
            {
                double rate = MigrationRouting.ServedByWeft(10, Signal, "click", u) ? weftRate : 0.3;
                for (int n = 1 + random.Next(3); n > 0; n--)
                {
                    csv.Append(u.ToString(CultureInfo.InvariantCulture)).Append(',').Append(random.NextDouble() < rate ? '1' : '0').Append('\n');
                }
            }

            await File.WriteAllTextAsync(outcomes, csv.ToString());
        }

        await WriteClicksAsync(0.3);
        double fixedStandardError;
        var same = await Migrate("outcome", world.Config, "--event-type", "click", "--consumer", "ranker", "--outcomes", outcomes, "--metric", "clicked", "--margin", "0.03", "--json");
        same.Exit.Should().Be(0, same.Out + same.Err);
        using (var doc = JsonDocument.Parse(same.Out))
        {
            var result = doc.RootElement.GetProperty("result");
            long served = Enumerable.Range(0, 20_000).Count(u => MigrationRouting.ServedByWeft(10, Signal, "click", u));
            result.GetProperty("weft_users").GetInt64().Should().Be(served);
            result.GetProperty("legacy_users").GetInt64().Should().Be(20_000 - served);
            result.GetProperty("exposed_without_outcome").GetInt64().Should().Be(0);
            doc.RootElement.GetProperty("transition").GetProperty("entry").GetProperty("action").GetString().Should().Be("outcome");

            // DuckDB, from the same log and the hash's arms: per-user means, each arm's mean and variance, Welch's degrees of freedom.
            string arms = _cli.PathOf("arms.csv");
            await File.WriteAllLinesAsync(arms, ["user_id,weft", .. Enumerable.Range(0, 20_000).Select(u => $"{u},{(MigrationRouting.ServedByWeft(10, Signal, "click", u) ? 1 : 0)}")]);
            var duck = (await DuckDb.RunAsync($"""
                WITH per_user AS (SELECT user_id, avg(clicked) AS m FROM read_csv({DuckDb.Quote(outcomes)}) GROUP BY user_id),
                     arm AS (SELECT a.weft, count(*) AS n, avg(m) AS mean, var_samp(m) / count(*) AS v FROM per_user JOIN read_csv({DuckDb.Quote(arms)}) a USING (user_id) GROUP BY a.weft),
                     w AS (SELECT * FROM arm WHERE weft = 1), l AS (SELECT * FROM arm WHERE weft = 0)
                SELECT CAST(w.mean AS VARCHAR), CAST(l.mean AS VARCHAR), CAST(w.mean - l.mean AS VARCHAR), CAST(sqrt(w.v + l.v) AS VARCHAR),
                       CAST(power(w.v + l.v, 2) / (power(w.v, 2) / (w.n - 1) + power(l.v, 2) / (l.n - 1)) AS VARCHAR)
                FROM w, l
                """))[0].Rows[0].Select(v => double.Parse(v.GetString()!, CultureInfo.InvariantCulture)).ToArray();
            result.GetProperty("weft_mean").GetDouble().Should().BeApproximately(duck[0], 1e-12);
            result.GetProperty("legacy_mean").GetDouble().Should().BeApproximately(duck[1], 1e-12);
            result.GetProperty("difference").GetDouble().Should().BeApproximately(duck[2], 1e-12);
            fixedStandardError = duck[3];
            double df = result.GetProperty("degrees_of_freedom").GetDouble();
            df.Should().BeApproximately(duck[4], duck[4] * 1e-9);
            double halfWidth = (result.GetProperty("upper").GetDouble() - result.GetProperty("lower").GetDouble()) / 2;
            halfWidth.Should().BeApproximately(MathNet.Numerics.Distributions.StudentT.InvCDF(0, 1, df, 0.95) * duck[3], 1e-9, "the 90 % interval is the difference ± t(0.95, df) standard errors");
        }

        // The same log, tested so that ranker may look again every day: the always-valid interval is the
        // normal mixture's (τ² from the margin, r = −2 ln α + ln(1 + r)), wider than the fixed one, and at
        // ~2,000 of Weft's users it cannot yet tell; the result is stored as undecided and holds the route.
        var sequential = await Migrate("outcome", world.Config, "--event-type", "click", "--consumer", "ranker", "--outcomes", outcomes, "--metric", "clicked", "--margin", "0.03", "--sequential", "--json");
        using (var doc = JsonDocument.Parse(sequential.Out))
        {
            var result = doc.RootElement.GetProperty("result");
            result.GetProperty("sequential").GetBoolean().Should().BeTrue();
            result.GetProperty("exposed").GetProperty("sequential").GetBoolean().Should().BeTrue();
            double difference = result.GetProperty("difference").GetDouble();
            double lower = result.GetProperty("lower").GetDouble(), upper = result.GetProperty("upper").GetDouble();
            double r = 1;
            for (int i = 0; i < 100; i++)
            {
                r = (-2 * Math.Log(0.05)) + Math.Log(1 + r);
            }

            double tau2 = r / (1 + r) * 0.03 * 0.03;
            double se2 = Math.Pow(fixedStandardError, 2);
            double expected = Math.Sqrt(2 * se2 * (se2 + tau2) / tau2 * (Math.Log(20) + (0.5 * Math.Log((se2 + tau2) / se2))));
            ((upper - lower) / 2).Should().BeApproximately(expected, 1e-9);
            (Math.Abs(difference) + expected).Should().BeGreaterThan(0.03, "so the interval reaches past a margin");
            (lower > 0.03 || upper < -0.03).Should().BeFalse("nor lies beyond one");
            result.GetProperty("undecided").GetBoolean().Should().BeTrue();
        }

        sequential.Exit.Should().Be(1);
        (await Migrate("status", world.Config)).Out.Should().MatchRegex(@"click\s+cutting-over.*ranker #\d+ undecided.*outcome undecided: collect, test again");
        var notYet = await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "50", "--consumer", "ranker");
        notYet.Exit.Should().Be(1);
        notYet.Err.Should().Contain("did not pass").And.Contain("not yet shown");

        // Weft's sequences cost ranker a third of its clicks: the test fails, is stored, and holds ranker's route.
        await WriteClicksAsync(0.2);
        var worse = await Migrate("outcome", world.Config, "--event-type", "click", "--consumer", "ranker", "--outcomes", outcomes, "--metric", "clicked", "--margin", "0.03");
        worse.Exit.Should().Be(1, worse.Out + worse.Err);
        worse.Out.Should().Contain("online A/B outcome of 'click' for ranker at 10 %").And.Contain("not shown");
        worse.Err.Should().Contain("outcome: the difference in mean clicked");
        var raise = await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "50", "--consumer", "ranker", "--override", "");
        raise.Exit.Should().Be(2, "an override without a reason explains nothing");
        raise.Err.Should().Contain("An override needs a reason");
        var held = await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "50", "--consumer", "ranker");
        held.Exit.Should().Be(1);
        held.Err.Should().Contain("online outcome test of consumer 'ranker'");
        var status = await Migrate("status", world.Config);
        status.Out.Should().MatchRegex(@"click\s+cutting-over.*ranker #\d+ FAILED.*outcome failed: rollback\?");
        (await Migrate("rollback", world.Config, "--event-type", "click", "--consumer", "ranker", "--reason", "ranker lost clicks")).Exit.Should().Be(0);
        var gone = await Migrate("outcome", world.Config, "--event-type", "click", "--consumer", "ranker", "--outcomes", outcomes, "--metric", "clicked", "--margin", "0.03");
        gone.Exit.Should().Be(2, "ranker is back at 0 %: name the split measured");
        (await Migrate("outcome", world.Config, "--event-type", "click", "--consumer", "ranker", "--outcomes", outcomes, "--metric", "clicked", "--margin", "0.03", "--percent", "10")).Exit.Should().Be(1);
    }

    [Fact]
    public async Task The_sample_ratio_check_of_a_consumer_on_the_default_route_reads_that_consumers_exposures()
    {
        var world = await SetUpAsync();
        (await Migrate("shadow", world.Config, "--event-type", "click")).Exit.Should().Be(0);
        (await Migrate("cutover", world.Config, "--event-type", "click", "--percent", "10", "--override", "every consumer")).Exit.Should().Be(0);
        var at = DateTimeOffset.UtcNow;
        await using (var store = await MigrationStore.OpenAsync(_cli.PathOf("migration.db")))
        {
            await store.RecordExposuresAsync([.. Enumerable.Range(0, 5_000).Select(u => new Exposure(Signal, "click", "feed", 10, u, MigrationRouting.ServedByWeft(10, Signal, "click", u), at))]);
            // mail, also on the default route, falls back to legacy for 1,000 users of its own: its split is broken, feed's is not.
            await store.RecordExposuresAsync([.. Enumerable.Range(50_000, 1_000).Select(u => new Exposure(Signal, "click", "mail", 10, u, false, at))]);
        }

        var feed = await Migrate("srm", world.Config, "--event-type", "click", "--consumer", "feed");
        feed.Exit.Should().Be(0, feed.Err);
        feed.Out.Should().Contain("consumer 'feed' (on the default route) at 10 %").And.Contain($"{Enumerable.Range(0, 5_000).Count(u => MigrationRouting.ServedByWeft(10, Signal, "click", u)):N0} users served by Weft");
        var all = await Migrate("srm", world.Config, "--event-type", "click");
        all.Exit.Should().Be(1, "* reads every consumer the default route serves, mail included");
        all.Out.Should().Contain("SAMPLE RATIO MISMATCH");
    }

    [Fact]
    public async Task Legacy_as_JSON_lines_compares_the_same_and_its_unreadable_rows_of_the_type_fail_the_gate()
    {
        var world = await SetUpAsync();
        // The same legacy output as JSON lines; then one click and one save whose dwell_ms is not a number.
        var lines = new List<string>();
        var types = ((StringColumn)world.Legacy[StandardColumns.EventType]).Values;
        for (int i = 0; i < world.Legacy.RowCount; i++)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                JsonRows.WriteRow(writer, world.Legacy, i);
            }

            lines.Add(Encoding.UTF8.GetString(buffer.WrittenSpan));
        }

        int click = Array.IndexOf(types, "click"), save = Array.IndexOf(types, "save");
        var corrupted = lines.ToList();
        foreach (int row in (int[])[click, save])
        {
            using var doc = JsonDocument.Parse(lines[row]);
            var fields = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
            fields["dwell_ms"] = "not a number";
            corrupted[row] = JsonSerializer.Serialize(fields);
        }

        await File.WriteAllLinesAsync(_cli.PathOf("legacy/clean.jsonl"), lines);
        await File.WriteAllLinesAsync(_cli.PathOf("legacy/corrupted.jsonl"), corrupted);
        foreach (var name in (string[])["clean", "corrupted"])
        {
            await File.WriteAllTextAsync(_cli.PathOf($"{name}.json"), (await File.ReadAllTextAsync(world.NoReplicaConfig))
                .Replace("\"path\": \"legacy/out.parquet\", \"format\": \"parquet\"", $"\"path\": \"legacy/{name}.jsonl\", \"format\": \"jsonl\"", StringComparison.Ordinal));
        }

        (await _cli.RunAsync("migrate", "shadow", "--config", _cli.PathOf("clean.json"), "--signal", Signal, "--event-type", "click")).Exit.Should().Be(0);
        var fromParquet = await Migrate("compare", world.NoReplicaConfig, "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8", "--json");
        var fromJson = await Migrate("compare", _cli.PathOf("clean.json"), "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8", "--json");
        fromJson.Exit.Should().Be(0, fromJson.Err);
        using (var a = JsonDocument.Parse(fromParquet.Out))
        using (var b = JsonDocument.Parse(fromJson.Out))
        {
            b.RootElement.GetProperty("result").GetProperty("comparison").GetRawText()
                .Should().Be(a.RootElement.GetProperty("result").GetProperty("comparison").GetRawText(), "the adapter's format does not change the comparison");
        }

        var bad = await Migrate("compare", _cli.PathOf("corrupted.json"), "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8", "--json");
        bad.Exit.Should().Be(1);
        bad.Err.Should().Contain("1 legacy row(s) cannot be read as Weft's column types").And.Contain("corrupted.jsonl");
    }

    [Fact]
    public async Task Legacy_Parquet_rows_without_a_key_fail_the_gate_naming_each_as_JSON_lines_does_not_count_as_repeats()
    {
        var world = await SetUpAsync();
        (await Migrate("shadow", world.NoReplicaConfig, "--event-type", "click")).Exit.Should().Be(0);
        var types = ((StringColumn)world.Legacy[StandardColumns.EventType]).Values;
        var clicks = Enumerable.Range(0, world.Legacy.RowCount).Where(i => types[i] == "click").ToList();
        var noId = clicks.Take(2).ToHashSet();
        int noTime = clicks[2];

        // Parquet holds nulls where JSON lines has no value: two clicks without an event_id, one without an event_time.
        var ids = ((StringColumn)world.Legacy[StandardColumns.EventId]).Values.Select((id, i) => noId.Contains(i) ? null : id).ToArray();
        var times = (PrimitiveColumn<long>)world.Legacy[StandardColumns.EventTime];
        var timeNulls = Enumerable.Range(0, world.Legacy.RowCount).Select(i => i == noTime).ToArray();
        await ParquetExport.WriteAsync(_cli.PathOf("legacy/out.parquet"), Keyless(world.Legacy,
            (StandardColumns.EventId, new StringColumn(ids)), (StandardColumns.EventTime, new PrimitiveColumn<long>(times.Type, times.Values.ToArray(), timeNulls))));

        var compare = await Migrate("compare", world.NoReplicaConfig, "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8", "--json");

        compare.Exit.Should().Be(1, compare.Err);
        compare.Err.Should().Contain("3 legacy row(s) cannot be read").And.Contain("out.parquet").And.Contain("event_id is null");
        using (var doc = JsonDocument.Parse(compare.Out))
        {
            var total = doc.RootElement.GetProperty("result").GetProperty("comparison").GetProperty("total");
            total.GetProperty("reference_duplicates").GetInt64().Should().Be(0, "a row without an id is not a repeat of another");
            total.GetProperty("reference_rows").GetInt64().Should().Be(world.LegacyClicks - 3);
            doc.RootElement.GetProperty("result").GetProperty("unreadable_legacy_rows").EnumerateArray().Select(r => r.GetString())
                .Should().ContainSingle(r => r!.Contains("event_time is null", StringComparison.Ordinal));
        }

        // A range far from those rows: they are not compared, so not reported (the timeless one excepted, which no time places outside).
        var elsewhere = await Migrate("compare", world.NoReplicaConfig, "--event-type", "click", "--from", "2001-01-01", "--to", "2001-01-02", "--json");
        elsewhere.Err.Should().NotContain("event_id is null", "the rows without an id lie outside the range compared");
        (elsewhere.Err + elsewhere.Out).Should().Contain("event_time is null");

        // Every click without a time: the range legacy covers cannot be taken from them, and that is said, not thrown.
        var allTimeNulls = Enumerable.Range(0, world.Legacy.RowCount).Select(i => types[i] == "click").ToArray();
        await ParquetExport.WriteAsync(_cli.PathOf("legacy/out.parquet"), Keyless(world.Legacy,
            (StandardColumns.EventTime, new PrimitiveColumn<long>(times.Type, times.Values.ToArray(), allTimeNulls))));
        var untimed = await Migrate("compare", world.NoReplicaConfig, "--event-type", "click", "--ignore", "legacy_rank");
        untimed.Exit.Should().Be(1, untimed.Err);
        untimed.Err.Should().Contain($"{world.LegacyClicks:N0} legacy row(s) cannot be read").And.Contain("event_time is null").And.Contain("legacy holds no 'click' events");
    }

    [Fact]
    public async Task A_replica_with_rows_that_cannot_be_read_fails_the_gate_instead_of_lowering_its_bars()
    {
        var world = await SetUpAsync();
        (await Migrate("shadow", world.Config, "--event-type", "click")).Exit.Should().Be(0);
        var types = ((StringColumn)world.Legacy[StandardColumns.EventType]).Values;
        var clicks = Enumerable.Range(0, world.Legacy.RowCount).Where(i => types[i] == "click").ToList();
        // A fifth of the rerun's clicks have no event_id: left out, they read as events legacy's second run lost.
        var unreadable = clicks.Where((_, k) => k % 5 == 0).ToHashSet();
        var ids = ((StringColumn)world.Legacy[StandardColumns.EventId]).Values.Select((id, i) => unreadable.Contains(i) ? null : id).ToArray();
        await ParquetExport.WriteAsync(_cli.PathOf("legacy/rerun.parquet"), Keyless(world.Legacy, (StandardColumns.EventId, new StringColumn(ids))));

        var compare = await Migrate("compare", world.Config, "--event-type", "click", "--min-agreement", "0.9", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8");

        compare.Exit.Should().Be(1, "a floor measured on a replica that could not be read measures the reading, not legacy's noise");
        compare.Err.Should().Contain($"{unreadable.Count:N0} row(s) of legacy's replica cannot be read").And.Contain("rerun.parquet").And.Contain("event_id is null");
    }

    [Fact]
    public async Task Events_legacy_timed_an_hour_later_match_by_id_at_the_ends_of_the_range_and_show_as_event_time_disagreements()
    {
        var world = await SetUpAsync();
        (await Migrate("shadow", world.NoReplicaConfig, "--event-type", "click")).Exit.Should().Be(0);
        // Legacy stamps every event an hour later (a time zone, a processing time): its range starts an
        // hour after Weft's first click, whose copy is then outside it.
        const long hour = 3_600_000_000L;
        var times = (PrimitiveColumn<long>)world.Legacy[StandardColumns.EventTime];
        await ParquetExport.WriteAsync(_cli.PathOf("legacy/out.parquet"), Keyless(world.Legacy,
            (StandardColumns.EventTime, new PrimitiveColumn<long>(times.Type, [.. times.Values.Select(t => t + hour)]))));

        foreach (var range in new[] { Array.Empty<string>(), ["--from", "2026-11-01T12:00:00Z", "--to", "2026-11-02T00:00:00Z"] })
        {
            var compare = await Migrate("compare", world.NoReplicaConfig, ["--event-type", "click", "--ignore", "legacy_rank", "--json", .. range]);
            using var doc = JsonDocument.Parse(compare.Out);
            var result = doc.RootElement.GetProperty("result");
            long from = result.GetProperty("from_micros").GetInt64(), to = result.GetProperty("to_micros").GetInt64();
            var total = result.GetProperty("comparison").GetProperty("total");
            // The clicks either side places in the range: Weft's at their own times, legacy's an hour later.
            // Each is one event, but for the one only legacy has (and the three only Weft has).
            long eitherSide = world.LegacyClicksIn(from - hour, to);
            total.GetProperty("reference_only").GetInt64().Should().BeLessThanOrEqualTo(1, $"range {string.Join(' ', range)}: an event legacy timed later is still Weft's");
            total.GetProperty("matched").GetInt64().Should().BeInRange(eitherSide - 1, eitherSide);
            var eventTime = total.GetProperty("columns").EnumerateArray().Single(c => c.GetProperty("column").GetString() == "event_time");
            eventTime.GetProperty("agreed").GetInt64().Should().Be(0, "every matched event's time differs by the hour");
            eventTime.GetProperty("max_difference").GetDouble().Should().Be(hour);
        }
    }

    [Fact]
    public async Task A_replica_that_timed_events_an_hour_later_gives_a_floor_of_every_event_not_of_those_left_inside_the_range()
    {
        var world = await SetUpAsync();
        (await Migrate("shadow", world.Config, "--event-type", "click")).Exit.Should().Be(0);
        // The rerun is legacy itself, every event stamped an hour later: it holds all of legacy's events.
        const long hour = 3_600_000_000L;
        var times = (PrimitiveColumn<long>)world.Legacy[StandardColumns.EventTime];
        await ParquetExport.WriteAsync(_cli.PathOf("legacy/rerun.parquet"), Keyless(world.Legacy,
            (StandardColumns.EventTime, new PrimitiveColumn<long>(times.Type, [.. times.Values.Select(t => t + hour)]))));

        var compare = await Migrate("compare", world.Config, "--event-type", "click", "--ignore", "legacy_rank", "--json");

        using var doc = JsonDocument.Parse(compare.Out);
        var result = doc.RootElement.GetProperty("result");
        var floor = result.GetProperty("noise_floor").GetProperty("total");
        floor.GetProperty("reference_only").GetInt64().Should().Be(0, "the rerun holds every event legacy does, the last hour's too");
        floor.GetProperty("matched").GetInt64().Should().Be(world.LegacyClicks);
        result.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("measure").GetString() == "completeness")
            .GetProperty("required").GetDouble().Should().Be(0.99, "a floor of 100 % completeness lowers no bar");
    }

    /// <summary>The batch with the named columns replaced, each made nullable so that the Parquet file holds its nulls.</summary>
    private static EventBatch Keyless(EventBatch batch, params (string Name, Column Column)[] replaced) =>
        new([.. batch.Schema.Select(f => replaced.Any(r => r.Name == f.Name) ? f with { Nullable = true } : f)],
            [.. batch.Schema.Select((f, i) => replaced.FirstOrDefault(r => r.Name == f.Name).Column ?? batch.Columns[i])]);

    [Fact]
    public async Task Shadow_of_a_type_whose_legacy_rows_are_all_unreadable_says_so_as_compare_does()
    {
        var world = await SetUpAsync();
        var types = ((StringColumn)world.Legacy[StandardColumns.EventType]).Values;
        var lines = new List<string>();
        int saves = 0;
        for (int i = 0; i < world.Legacy.RowCount; i++)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                JsonRows.WriteRow(writer, world.Legacy, i);
            }

            string line = Encoding.UTF8.GetString(buffer.WrittenSpan);
            if (types[i] == "save")
            {
                using var doc = JsonDocument.Parse(line);
                var fields = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
                fields["dwell_ms"] = "not a number";
                line = JsonSerializer.Serialize(fields);
                saves++;
            }

            lines.Add(line);
        }

        await File.WriteAllLinesAsync(_cli.PathOf("legacy/unreadable.jsonl"), lines);
        await File.WriteAllTextAsync(_cli.PathOf("unreadable.json"), (await File.ReadAllTextAsync(world.NoReplicaConfig))
            .Replace("\"path\": \"legacy/out.parquet\", \"format\": \"parquet\"", "\"path\": \"legacy/unreadable.jsonl\", \"format\": \"jsonl\"", StringComparison.Ordinal));

        var shadow = await _cli.RunAsync("migrate", "shadow", "--config", _cli.PathOf("unreadable.json"), "--signal", Signal, "--event-type", "save");

        shadow.Exit.Should().Be(1);
        shadow.Err.Should().Contain($"{saves} legacy row(s) cannot be read as Weft's column types").And.Contain("unreadable.jsonl").And.NotContain("holds no 'save' events");
    }

    [Fact]
    public async Task Bad_input_is_refused_with_exit_2_naming_what_and_where()
    {
        var world = await SetUpAsync();
        var unknown = await Migrate("shadow", world.Config, "--event-type", "purchase");
        unknown.Exit.Should().Be(2);
        unknown.Err.Should().Contain("no event type 'purchase'").And.Contain("click");

        var noLegacy = await _cli.RunAsync("migrate", "shadow", "--config", world.Config, "--signal", "searches", "--event-type", "search");
        noLegacy.Exit.Should().Be(2);
        noLegacy.Err.Should().Contain("no legacy pipeline is configured for signal 'searches'");
        var endpointOnly = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(world.Config))!;
        endpointOnly["legacy"]![Signal] = new System.Text.Json.Nodes.JsonObject { ["endpoint"] = "http://127.0.0.1:9/users/{user_id}" };
        await File.WriteAllTextAsync(_cli.PathOf("endpoint-only.json"), endpointOnly.ToJsonString());
        var unreachable = await Migrate("shadow", _cli.PathOf("endpoint-only.json"), "--event-type", "click");
        unreachable.Exit.Should().Be(2, "nothing listens on port 9: no evidence either way");
        unreachable.Err.Should().Contain("legacy's endpoint failed for").And.Contain("http://127.0.0.1:9/users/");

        await File.WriteAllTextAsync(_cli.PathOf("twice.csv"), "example_id,score\na,0.5\nb,0.4\na,0.6\n");
        (await Migrate("shadow", world.Config, "--event-type", "click")).Exit.Should().Be(0);
        (await Migrate("compare", world.Config, "--event-type", "click", "--ignore", "legacy_rank", "--min-sequence-agreement", "0.8")).Exit.Should().Be(0);
        var audited = (await Migrate("log", world.Config)).Out;
        foreach (var (option, value, named) in new[] { ("--ignore", "legacy_rnak", "'legacy_rnak'"), ("--tolerance", "dwel_ms=1", "'dwel_ms'") })
        {
            var typo = await Migrate("compare", world.Config, "--event-type", "click", option, value, "--min-sequence-agreement", "0.8");
            typo.Exit.Should().Be(2, "a misspelt column would leave the intended one compared as it was");
            typo.Err.Should().Contain(named).And.Contain("neither side").And.Contain("dwell_ms");
        }

        (await Migrate("log", world.Config)).Out.Should().Be(audited, "a refused comparison records no evidence");
        var twice = await Migrate("abtest", world.Config, "--event-type", "click", "--control", _cli.PathOf("twice.csv"), "--treatment", _cli.PathOf("twice.csv"), "--margin", "0.1");
        twice.Exit.Should().Be(2);
        twice.Err.Should().Contain("twice.csv").And.Contain("'a' is scored twice");
        var noScore = await Migrate("abtest", world.Config, "--event-type", "click", "--control", _cli.PathOf("twice.csv"), "--treatment", _cli.PathOf("twice.csv"), "--margin", "0.1", "--score", "p");
        noScore.Exit.Should().Be(2);
        noScore.Err.Should().Contain("no column 'p'");

        File.Delete(world.LegacyPath);
        var gone = await Migrate("compare", world.Config, "--event-type", "click");
        gone.Exit.Should().Be(2);
        gone.Err.Should().Contain(world.LegacyPath).And.Contain("does not exist");
        (await Migrate("status", world.Config, "--json")).Out.Should().Contain("\"compared\"", "a refused run stores nothing and moves nothing");
    }

    private Task<(int Exit, string Out, string Err)> Migrate(string action, string config, params string[] args) =>
        _cli.RunAsync(["migrate", action, "--config", config, "--signal", Signal, .. args]);

    private sealed record World(string Config, string NoReplicaConfig, string LegacyPath, long WeftClicks, long LegacyClicks, long ClickUsers, long UsersWithDifferentIds, EventBatch Legacy)
    {
        public long LegacyClicksIn(long from, long to)
        {
            var types = ((StringColumn)Legacy[StandardColumns.EventType]).Values;
            var times = ((PrimitiveColumn<long>)Legacy[StandardColumns.EventTime]).Values;
            return Enumerable.Range(0, Legacy.RowCount).Count(i => types[i] == "click" && times[i] >= from && times[i] < to);
        }
    }

    /// <summary>
    /// gen + compile + batch, then legacy's output from Weft's served rows: three clicks lost, two
    /// categories changed, one click Weft lacks, an extra column; the replica changes four other categories.
    /// </summary>
    private async Task<World> SetUpAsync()
    {
        (await _cli.RunAsync("gen", "--out", _cli.PathOf("raw"), "--events", "3000", "--users", "40", "--items", "50", "--days", "2")).Exit.Should().Be(0);
        var compile = await _cli.RunAsync("compile", Path.Combine(CliHarness.RepoRoot, "examples", "definitions"), "--out", _cli.PathOf("signals"));
        compile.Exit.Should().Be(0, compile.Err);
        const string Common = """
              "lake": "lake",
              "signals": "signals",
              "archives": [ { "path": "raw/events", "format": "delta" } ],
              "enrichments": { "items": "raw/items" },
            """;
        var config = _cli.PathOf("weft.json");
        await File.WriteAllTextAsync(config, "{" + Common + """
              "legacy": { "engagement": { "output": { "path": "legacy/out.parquet", "format": "parquet" }, "replica": { "path": "legacy/rerun.parquet", "format": "parquet" } } }
            }
            """);
        var noReplica = _cli.PathOf("weft-no-replica.json");
        await File.WriteAllTextAsync(noReplica, "{" + Common + """
              "legacy": { "engagement": { "output": { "path": "legacy/out.parquet", "format": "parquet" } } }
            }
            """);
        var batch = await _cli.RunAsync("batch", "--config", config, "--signal", Signal, "--from", "2026-11-01", "--to", "2026-11-03");
        batch.Exit.Should().Be(0, batch.Err);

        // The stream wrote a sealed bucket again: its rows are not served (batch seals), so not compared.
        var table = await Weft.Storage.EventTable.OpenAsync(_cli.PathOf($"lake/enriched/{Signal}"));
        var sealedBucket = (await table.Log.GetSnapshotAsync()).Files().Select(f => f.PartitionValues[Weft.Storage.EventLayout.BucketColumn]!).Order(StringComparer.Ordinal).First();
        var sealedRows = new List<EventBatch>();
        await foreach (var part in table.ReadAsync([.. table.Schema.Select(f => f.Name)], Weft.Storage.PartitionFilter.All.Equal(Weft.Storage.EventLayout.BucketColumn, sealedBucket)))
        {
            sealedRows.Add(part);
        }

        await table.AppendAsync(EventBatch.Concat(table.Schema, sealedRows), Weft.Storage.EventPartitioner.Single(Weft.Storage.EventLayout.Partition(sealedBucket, Weft.Storage.EventLayout.StreamPath)));

        var weft = WeftConfig.Load(config);
        var lake = await EnrichedLake.OpenAsync(weft.EnrichedTable(Signal), weft.LoadSignal(Signal), CancellationToken.None);
        var served = await lake.ReadAsync(Timestamps.MinMicros, Timestamps.MaxMicros, CancellationToken.None);
        var rows = served.Rows.Gather([.. Enumerable.Range(0, served.Rows.RowCount).Where(i => served.Admitted[i])]);
        rows = rows.Project([.. rows.Schema.Where(f => f.Name != StandardColumns.IngestTime)]);

        var types = ((StringColumn)rows[StandardColumns.EventType]).Values;
        var times = ((PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
        var users = ((PrimitiveColumn<long>)rows[StandardColumns.UserId]).Values;
        // Differences from the middle of the time range, so the range legacy covers is Weft's too.
        var clicks = Enumerable.Range(0, rows.RowCount).Where(i => types[i] == "click").OrderBy(i => times[i]).ToList();
        clicks.Count.Should().BeGreaterThan(200, "the data must hold enough clicks");
        int mid = clicks.Count / 2;
        var lost = clicks.GetRange(mid, 3);
        var changed = clicks.GetRange(mid + 3, 2);
        int copied = clicks[mid + 5];
        var replicaChanged = clicks.GetRange(mid + 6, 4);

        var keep = Enumerable.Range(0, rows.RowCount).Where(i => !lost.Contains(i)).Append(copied).ToArray();
        var legacy = rows.Gather(keep);
        var ids = ((StringColumn)legacy[StandardColumns.EventId]).Values.ToArray();
        ids[^1] = "legacy-only-1";
        var categories = ((StringColumn)legacy["category"]).Values.ToArray();
        int At(int row) => Array.IndexOf(keep, row);
        foreach (int row in changed)
        {
            categories[At(row)] = categories[At(row)] + "-legacy";
        }

        legacy = Replace(legacy, StandardColumns.EventId, new StringColumn(ids));
        var replicaCategories = categories.ToArray();
        foreach (int row in replicaChanged)
        {
            replicaCategories[At(row)] = replicaCategories[At(row)] + "-rerun";
        }

        var replica = Replace(legacy, "category", new StringColumn(replicaCategories));
        legacy = Replace(legacy, "category", new StringColumn(categories));
        var rank = new PrimitiveColumn<long>(WeftType.Int64, [.. Enumerable.Range(0, legacy.RowCount).Select(i => (long)i)]);
        legacy = legacy.WithColumn(new FieldDefinition("legacy_rank", WeftType.Int64), rank);
        replica = replica.WithColumn(new FieldDefinition("legacy_rank", WeftType.Int64), rank);
        var legacyPath = _cli.PathOf("legacy/out.parquet");
        await ParquetExport.WriteAsync(legacyPath, legacy);
        await ParquetExport.WriteAsync(_cli.PathOf("legacy/rerun.parquet"), replica);

        long weftClicks = clicks.Count;
        long clickUsers = clicks.Select(i => users[i]).Distinct().Count();
        long differentIds = lost.Append(copied).Select(i => users[i]).Distinct().Count();
        return new World(config, noReplica, legacyPath, weftClicks, weftClicks - 3 + 1, clickUsers, differentIds, legacy);
    }

    private static EventBatch Replace(EventBatch batch, string name, Column column) =>
        new(batch.Schema, [.. batch.Schema.Select((f, i) => f.Name == name ? column : batch.Columns[i])]);
}
