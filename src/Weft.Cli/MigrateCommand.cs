using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Migration;
using Weft.Quality;
using Weft.Storage;

namespace Weft.Cli;

/// <summary>
/// <c>weft migrate</c>: moving a signal off a legacy pipeline one event type at a time (DESIGN.md,
/// "Migration"): shadow → compared → ab-tested → cutting-over → cut-over → legacy-deprecated, each
/// step gated by stored evidence or an override with a reason, all in an audit log. Exit 0 done,
/// 1 a gate refused or the evidence failed (it is stored all the same), 2 bad options or input.
/// </summary>
internal static class MigrateCommand
{
    private sealed class Common
    {
        public Option<string> Config { get; } = new("--config") { Description = "The deployment config (weft.json)", DefaultValueFactory = _ => "weft.json" };

        public Option<string> Signal { get; } = new("--signal") { Description = "The signal that replaces the legacy pipeline", Required = true };

        public Option<string> EventType { get; } = new("--event-type") { Description = "The event type being migrated", Required = true };

        public Option<string> Actor { get; } = new("--actor") { Description = "Who acts, for the audit log (default: the OS user)", DefaultValueFactory = _ => Environment.UserName };

        public Option<string?> Override { get; } = new("--override") { Description = "Pass the gate anyway; the reason goes in the audit log" };

        public Option<bool> Json { get; } = new("--json") { Description = "Print the result as JSON" };
    }

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var command = new Command("migrate", "Move a signal off a legacy pipeline event type by event type: shadow, compare, A/B test, cut over, roll back, deprecate");
        command.Subcommands.Add(Status(stdout, stderr));
        command.Subcommands.Add(Shadow(stdout, stderr));
        command.Subcommands.Add(Compare(stdout, stderr));
        command.Subcommands.Add(AbTest(stdout, stderr));
        command.Subcommands.Add(Cutover(stdout, stderr));
        command.Subcommands.Add(Rollback(stdout, stderr));
        command.Subcommands.Add(Deprecate(stdout, stderr));
        command.Subcommands.Add(Log(stdout, stderr));
        command.Subcommands.Add(Route(stdout, stderr));
        command.Subcommands.Add(Srm(stdout, stderr));
        command.Subcommands.Add(Outcome(stdout, stderr));
        return command;
    }

    private static Command Status(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var eventType = new Option<string?>("--event-type") { Description = "One event type (default: the signal's, and any the ledger holds)" };
        var command = new Command("status", "Each event type's stage, routes and latest evidence") { c.Config, c.Signal, eventType, c.Json };
        command.SetAction((parse, ct) => RunAsync("status", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Read, ct).ConfigureAwait(false);
            var types = await KnownEventTypeAsync(store, signal, parse.GetValue(eventType), ct).ConfigureAwait(false) is { } one ? [one]
                : signal.EventTypes.Select(t => t.Name).Union(await store.EventTypesAsync(signal.Name, ct).ConfigureAwait(false)).ToList();
            var statuses = new List<MigrationStatus>();
            foreach (var type in types)
            {
                statuses.Add(await store.StatusAsync(signal.Name, type, ct).ConfigureAwait(false));
            }

            if (parse.GetValue(c.Json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(statuses, CliJson.Report)).ConfigureAwait(false);
                return 0;
            }

            var legacy = weft.Legacy.TryGetValue(signal.Name, out var l) ? string.Join(", ", new[] { l.Output?.Path, l.Replica is null ? null : $"replica {l.Replica.Path}", l.Endpoint is null ? null : $"endpoint {LegacyConfig.Redact(l.Endpoint)}" }.OfType<string>()) : "none configured";
            await stdout.WriteLineAsync($"migration of '{signal.Name}' (legacy output: {legacy}; ledger: {store.Path}{(store.Exists ? "" : ", which does not exist yet: nothing is recorded")})").ConfigureAwait(false);
            var rows = new List<string[]> { new[] { "event type", "stage", "since", "routes", "comparison", "A/B test", "online outcomes", "next" } };
            foreach (var s in statuses)
            {
                rows.Add([
                    s.EventType, MigrationStages.Name(s.Stage), s.Since is { } since ? since.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) : "-",
                    MigrationStore.DescribeRoutes(s.Routes), Verdict(s.Comparison), Verdict(s.AbTest),
                    s.Outcomes.Count == 0 ? "-" : string.Join(", ", s.Outcomes.Select(o => $"{o.Consumer} {Verdict(o, OnlineOutcome.IsUndecided(o))}")), Next(s),
                ]);
            }

            await QualityCommand.WriteTableAsync(stdout, rows).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Shadow(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var command = new Command("shadow", "not-started → shadow: Weft produces the event type in parallel with legacy (gate: both hold events of it)")
        {
            c.Config, c.Signal, c.EventType, c.Override, c.Actor, c.Json,
        };
        command.SetAction((parse, ct) => RunAsync("shadow", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            string eventType = parse.GetValue(c.EventType)!;
            var check = await LegacyComparison.ShadowAsync(weft, signal, eventType, cancellationToken: ct).ConfigureAwait(false);
            string summary = check.Passed
                ? $"legacy holds {check.LegacyRows:N0} '{eventType}' events and Weft {check.WeftRows:N0} over {Range(check.FromMicros, check.ToMicros)}"
                : check.LegacyRows == 0 ? (weft.Legacy.TryGetValue(signal.Name, out var l) && l.Output is null ? $"legacy's endpoint answered no '{eventType}' events for the users asked"
                    // Unreadable rows are not missing ones: say what compare would say of them.
                    : check.UnreadableLegacyRows is [var first, ..] ? $"legacy's output holds no readable '{eventType}' events: {check.UnreadableLegacyCount:N0} legacy row(s) cannot be read as Weft's column types, e.g. {first}"
                    : $"legacy's output holds no '{eventType}' events") : $"Weft holds no '{eventType}' events over {Range(check.FromMicros, check.ToMicros)}: run `weft batch` or `weft stream` for '{signal.Name}' first";
            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Create, ct).ConfigureAwait(false);
            var transition = await store.ShadowAsync(signal.Name, eventType, new EvidenceInput(MigrationStore.ShadowKind, check.Passed, summary, JsonSerializer.Serialize(check, CliJson.Compact)),
                parse.GetValue(c.Override), parse.GetValue(c.Actor)!, ct).ConfigureAwait(false);
            await ReportAsync(stdout, parse.GetValue(c.Json), transition, summary).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Compare(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var from = new Option<string?>("--from") { Description = "Compare events with event_time in [--from, --to) (ISO 8601, UTC; default: the range legacy's events of the type cover)" };
        var to = new Option<string?>("--to") { Description = "End of the range (exclusive)" };
        var tolerance = new Option<string[]>("--tolerance") { Description = "COLUMN=ABS[,REL]: numeric values agree when |a-b| <= ABS + REL*max(|a|,|b|) (repeatable)", AllowMultipleArgumentsPerToken = true };
        var ignore = new Option<string[]>("--ignore") { Description = "A column not to compare (repeatable)", AllowMultipleArgumentsPerToken = true };
        var gates = new ComparisonGates();
        var minCompleteness = new Option<double>("--min-completeness") { Description = "Share of legacy's events Weft must hold", DefaultValueFactory = _ => gates.MinCompleteness };
        var minAgreement = new Option<double>("--min-agreement") { Description = "Share of matched events each column must agree on", DefaultValueFactory = _ => gates.MinAgreement };
        var minSequence = new Option<double>("--min-sequence-agreement") { Description = "Share of users whose events (ids and times) must be the same", DefaultValueFactory = _ => gates.MinSequenceAgreement };
        var users = new Option<int>("--users") { Description = "Through a legacy endpoint (legacy.<signal>.endpoint, no output table): how many of Weft's users to ask it for (default range: the signal's lookback up to the end of Weft's newest bucket)", DefaultValueFactory = _ => LegacyComparison.DefaultSampleUsers };
        var command = new Command("compare", "Two-tier comparison with legacy (event level, sequence level), against legacy's own noise floor when a replica is configured; stored as evidence")
        {
            c.Config, c.Signal, c.EventType, from, to, tolerance, ignore, minCompleteness, minAgreement, minSequence, users, c.Actor, c.Json,
        };
        command.SetAction((parse, ct) => RunAsync("compare", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            string eventType = parse.GetValue(c.EventType)!;
            var requestGates = new ComparisonGates(Share("--min-completeness", parse.GetValue(minCompleteness)), Share("--min-agreement", parse.GetValue(minAgreement)), Share("--min-sequence-agreement", parse.GetValue(minSequence)));
            long? fromMicros = parse.GetValue(from) is { } f ? BatchCommands.ParseTime("--from", f) : null;
            long? toMicros = parse.GetValue(to) is { } t ? BatchCommands.ParseTime("--to", t) : null;
            if (fromMicros >= toMicros)
            {
                throw new ArgumentException("--from must be before --to");
            }

            if (parse.GetValue(users) < 1)
            {
                throw new ArgumentException($"--users must be at least 1, got {parse.GetValue(users)}");
            }

            var request = new LegacyComparisonRequest(eventType, fromMicros, toMicros, QualityCommand.Options(parse.GetValue(tolerance) ?? [], parse.GetValue(ignore) ?? []), requestGates, parse.GetValue(users));
            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Existing, ct).ConfigureAwait(false);
            // A comparison reads both sides whole: refuse what the ledger will refuse before spending it.
            var stage = (await store.StatusAsync(signal.Name, eventType, ct).ConfigureAwait(false)).Stage;
            if (stage is MigrationStage.NotStarted or MigrationStage.LegacyDeprecated)
            {
                throw new MigrationGateException(stage == MigrationStage.NotStarted
                    ? $"'{eventType}' is not in shadow: run `weft migrate shadow` for it first."
                    : $"'{eventType}' is legacy-deprecated: legacy no longer produces it, so there is nothing to compare against.");
            }

            if (await WrittenUnderAsync(weft.EnrichedTable(signal.Name), ct).ConfigureAwait(false) is { } written && written != SignalJsonWriter.Fingerprint(signal))
            {
                // The evidence is recorded under the definition loaded now; the rows compared may be another's.
                await stderr.WriteLineAsync($"migrate compare: warning: {weft.EnrichedTable(signal.Name)} was last written under definition {written[..Math.Min(12, written.Length)]}, not {SignalJsonWriter.Fingerprint(signal)[..12]} (the one loaded now): unless only its description or tenant changed, run `weft batch` for '{signal.Name}' first, or this comparison judges the old definition's rows").ConfigureAwait(false);
            }
            else if ((await Weft.Streaming.Runtime.PendingTailFile.PeekAsync(weft.EnrichedTable(signal.Name), signal.Name, ct).ConfigureAwait(false)).Owed is { } owed)
            {
                // The stream runs the loaded definition, but the events it streamed under the earlier one are not recomputed yet.
                await stderr.WriteLineAsync($"migrate compare: warning: the stream's tail recompute of '{signal.Name}' has not completed, so the rows it streamed under an earlier definition are compared as that definition computed them; run first: {Weft.Streaming.Runtime.SignalDefinitionChanged.BatchCommandFor(weft.ConfigPath, owed.Tail)}").ConfigureAwait(false);
            }

            var result = await LegacyComparison.CompareAsync(weft, signal, request, cancellationToken: ct).ConfigureAwait(false);
            var total = result.Comparison.Total;
            string summary = $"completeness {total.Completeness:P2}, worst column {Worst(total)}, same sequences {result.Comparison.Sequences.IdsRate:P2}"
                + (result.Passed ? "" : $"; {result.Failures.Count} gate(s) failed: {result.Failures[0]}");
            var transition = await store.RecordComparisonAsync(signal.Name, eventType, new EvidenceInput(MigrationStore.ComparisonKind, result.Passed, summary, JsonSerializer.Serialize(result, CliJson.Compact)),
                parse.GetValue(c.Actor)!, ct).ConfigureAwait(false);
            if (parse.GetValue(c.Json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(new { result, transition }, CliJson.Report)).ConfigureAwait(false);
            }
            else
            {
                await WriteComparisonAsync(stdout, result).ConfigureAwait(false);
                await stdout.WriteLineAsync(Transition(transition)).ConfigureAwait(false);
            }

            foreach (var failure in result.Failures)
            {
                await stderr.WriteLineAsync($"compare: {failure}").ConfigureAwait(false);
            }

            return result.Passed ? 0 : 1;
        }));
        return command;
    }

    private static Command AbTest(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var control = new Option<string>("--control") { Description = "The consuming model's scores replayed on legacy sequences (.parquet, .csv or .jsonl)", Required = true };
        var treatment = new Option<string>("--treatment") { Description = "The same model's scores of the same examples replayed on Weft's sequences", Required = true };
        var margin = new Option<double>("--margin") { Description = "Equivalence margin: a mean score difference within ±MARGIN is no effect", Required = true };
        var alpha = new Option<double>("--alpha") { Description = "Significance level of each one-sided test", DefaultValueFactory = _ => 0.05 };
        var key = new Option<string>("--key") { Description = "Column naming the example in both files", DefaultValueFactory = _ => "example_id" };
        var score = new Option<string>("--score") { Description = "Column holding the model's score", DefaultValueFactory = _ => "score" };
        var command = new Command("abtest", "Offline replay A/B: a paired equivalence test (TOST) of a consuming model's scores on legacy vs Weft sequences; stored as evidence")
        {
            c.Config, c.Signal, c.EventType, control, treatment, margin, alpha, key, score, c.Actor, c.Json,
        };
        command.SetAction((parse, ct) => RunAsync("abtest", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            string eventType = parse.GetValue(c.EventType)!;
            var controlScores = await ReplayScores.ReadAsync(parse.GetValue(control)!, parse.GetValue(key)!, parse.GetValue(score)!, ct).ConfigureAwait(false);
            var treatmentScores = await ReplayScores.ReadAsync(parse.GetValue(treatment)!, parse.GetValue(key)!, parse.GetValue(score)!, ct).ConfigureAwait(false);
            var result = Equivalence.Test(controlScores, treatmentScores, parse.GetValue(margin), parse.GetValue(alpha));
            string summary = $"{result.Pairs:N0} paired examples, mean difference {result.MeanDifference:G4} (interval {result.Lower:G4} .. {result.Upper:G4}) within ±{result.Margin:G4}: "
                + (result.Passed ? $"equivalent (p {(result.PValue < 1e-4 ? "< 0.0001" : $"= {result.PValue:G3}")})" : $"not shown: {result.Failures[0]}");
            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Existing, ct).ConfigureAwait(false);
            var transition = await store.RecordAbTestAsync(signal.Name, eventType, new EvidenceInput(MigrationStore.AbTestKind, result.Passed, summary, JsonSerializer.Serialize(result, CliJson.Compact)),
                parse.GetValue(c.Actor)!, ct).ConfigureAwait(false);
            if (parse.GetValue(c.Json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(new { result, transition }, CliJson.Report)).ConfigureAwait(false);
            }
            else
            {
                await stdout.WriteLineAsync($"A/B (offline replay) of '{eventType}': {summary}; score correlation {result.Correlation:F4}").ConfigureAwait(false);
                await stdout.WriteLineAsync(Transition(transition)).ConfigureAwait(false);
            }

            foreach (var failure in result.Failures)
            {
                await stderr.WriteLineAsync($"abtest: {failure}").ConfigureAwait(false);
            }

            return result.Passed ? 0 : 1;
        }));
        return command;
    }

    private static Command Cutover(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var percent = new Option<double>("--percent") { Description = "Share of users (0–100, by a sticky hash of the user id) who read the event type from Weft", Required = true };
        var consumer = new Option<string>("--consumer") { Description = "The consumer whose route changes (default: *, every consumer without a route of its own)", DefaultValueFactory = _ => MigrationRouting.DefaultConsumer };
        var command = new Command("cutover", "Route a share of users' reads of the event type to Weft, per consumer (gate on raising: the latest comparison and A/B test passed)")
        {
            c.Config, c.Signal, c.EventType, percent, consumer, c.Override, c.Actor, c.Json,
        };
        command.SetAction((parse, ct) => RunAsync("cutover", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            double share = parse.GetValue(percent);
            if (!(share >= 0 && share <= 100))
            {
                throw new ArgumentException($"--percent {share.ToString(CultureInfo.InvariantCulture)} must lie between 0 and 100");
            }

            if (!MigrationRouting.IsWholeBucket(share))
            {
                throw new ArgumentException($"--percent {share.ToString(CultureInfo.InvariantCulture)} is finer than the 0.01 % steps users are routed in (one bucket of 10,000)");
            }

            share = MigrationRouting.OnBucket(share); // as the route stores it: 99.9999999999 repeated on a route at 100 changes nothing

            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Existing, ct).ConfigureAwait(false);
            string eventType = parse.GetValue(c.EventType)!, who = parse.GetValue(consumer)!;
            var before = await store.StatusAsync(signal.Name, eventType, ct).ConfigureAwait(false);
            CheckConsumer(who, before);
            if (before.Routes.FirstOrDefault(r => r.Consumer == who) is { } own && own.Percent == share)
            {
                // A repeated command (a script run twice) changes nothing: no audit line, no new assembly version.
                await stdout.WriteLineAsync(parse.GetValue(c.Json)
                    ? JsonSerializer.Serialize(new { unchanged = true, status = before }, CliJson.Report)
                    : $"'{eventType}' stays {MigrationStages.Name(before.Stage)}; routes: {MigrationStore.DescribeRoutes(before.Routes)} ({who} is at {share.ToString("0.##", CultureInfo.InvariantCulture)} % already: nothing recorded)").ConfigureAwait(false);
                return 0;
            }

            var transition = await store.CutoverAsync(signal.Name, eventType, who, share, parse.GetValue(c.Override), parse.GetValue(c.Actor)!, ct).ConfigureAwait(false);
            await ReportAsync(stdout, parse.GetValue(c.Json), transition, null).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Rollback(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var consumer = new Option<string?>("--consumer") { Description = "Roll back one consumer's route (default: every route)" };
        var reason = new Option<string>("--reason") { Description = "Why (goes in the audit log)", Required = true };
        var command = new Command("rollback", "Send the event type's reads back to legacy at once (routes to 0 %)") { c.Config, c.Signal, c.EventType, consumer, reason, c.Actor, c.Json };
        command.SetAction((parse, ct) => RunAsync("rollback", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Existing, ct).ConfigureAwait(false);
            var transition = await store.RollbackAsync(signal.Name, parse.GetValue(c.EventType)!, parse.GetValue(consumer), parse.GetValue(reason)!, parse.GetValue(c.Actor)!, ct).ConfigureAwait(false);
            await ReportAsync(stdout, parse.GetValue(c.Json), transition, null).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Deprecate(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var soak = new Option<string>("--min-soak") { Description = "How long the event type must have been cut over (e.g. 7d, 12h)", DefaultValueFactory = _ => "7d" };
        var command = new Command("deprecate", "cut-over → legacy-deprecated: legacy may stop producing the event type (gate: soaked and the latest comparison passed)")
        {
            c.Config, c.Signal, c.EventType, soak, c.Override, c.Actor, c.Json,
        };
        command.SetAction((parse, ct) => RunAsync("deprecate", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            if (!Durations.TryParse(parse.GetValue(soak), out var minSoak) || minSoak < TimeSpan.Zero)
            {
                throw new ArgumentException($"--min-soak '{parse.GetValue(soak)}' is not a duration (e.g. 7d, 12h, 0s)");
            }

            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Existing, ct).ConfigureAwait(false);
            var transition = await store.DeprecateAsync(signal.Name, parse.GetValue(c.EventType)!, minSoak, parse.GetValue(c.Override), parse.GetValue(c.Actor)!, ct).ConfigureAwait(false);
            await ReportAsync(stdout, parse.GetValue(c.Json), transition, null).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Log(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var eventType = new Option<string?>("--event-type") { Description = "One event type (default: all)" };
        var command = new Command("log", "The audit log: every transition, its evidence or override, who and when") { c.Config, c.Signal, eventType, c.Json };
        command.SetAction((parse, ct) => RunAsync("log", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Read, ct).ConfigureAwait(false);
            var entries = await store.AuditAsync(signal.Name, await KnownEventTypeAsync(store, signal, parse.GetValue(eventType), ct).ConfigureAwait(false), ct).ConfigureAwait(false);
            if (parse.GetValue(c.Json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(entries, CliJson.Report)).ConfigureAwait(false);
                return 0;
            }

            foreach (var e in entries)
            {
                await stdout.WriteLineAsync(Line(e)).ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static Command Route(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var consumer = new Option<string>("--consumer") { Description = "The consumer reading", Required = true };
        var user = new Option<long>("--user") { Description = "The user id", Required = true };
        var command = new Command("route", "Which source serves each event type of the signal to a consumer for a user (sticky by user hash)") { c.Config, c.Signal, consumer, user, c.Json };
        command.SetAction((parse, ct) => RunAsync("route", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Read, ct).ConfigureAwait(false);
            var routes = new SortedDictionary<string, string>(StringComparer.Ordinal);
            var lines = new List<string>();
            foreach (var type in signal.EventTypes.Select(t => t.Name).Union(await store.EventTypesAsync(signal.Name, ct).ConfigureAwait(false)).Order(StringComparer.Ordinal))
            {
                var status = await store.StatusAsync(signal.Name, type, ct).ConfigureAwait(false);
                routes[type] = MigrationStore.ServedByWeft(status, parse.GetValue(consumer)!, parse.GetValue(user)) ? "weft" : "legacy";
                var route = MigrationStore.RouteOf(status, parse.GetValue(consumer)!);
                string why = status.Stage == MigrationStage.LegacyDeprecated ? "legacy deprecated"
                    : route is null ? "no route"
                    : $"route {route.Consumer} {route.Percent.ToString("0.##", CultureInfo.InvariantCulture)} %, user in bucket {MigrationRouting.Bucket(signal.Name, type, parse.GetValue(user)):N0} of {MigrationRouting.Buckets:N0}";
                lines.Add($"{type}\t{routes[type]}\t({why})");
            }

            await stdout.WriteLineAsync(parse.GetValue(c.Json) ? JsonSerializer.Serialize(routes, CliJson.Report) : string.Join(Environment.NewLine, lines)).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Srm(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var consumer = new Option<string>("--consumer") { Description = "The consumer whose split is checked (default: *)", DefaultValueFactory = _ => MigrationRouting.DefaultConsumer };
        var sequential = new Option<bool>("--sequential") { Description = "An always-valid check (a beta-binomial mixture): valid however often it is repeated while the split grows" };
        var command = new Command("srm", "Sample-ratio check of an online split: did weft serve's exposures split users as the route's percent says? (exit 1 on a mismatch)")
        {
            c.Config, c.Signal, c.EventType, consumer, sequential, c.Json,
        };
        command.SetAction((parse, ct) => RunAsync("srm", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            string eventType = parse.GetValue(c.EventType)!, who = parse.GetValue(consumer)!;
            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Read, ct).ConfigureAwait(false);
            var status = await store.StatusAsync(signal.Name, eventType, ct).ConfigureAwait(false);
            if (MigrationStore.RouteOf(status, who) is not { Percent: > 0 and < 100 } route)
            {
                throw new ArgumentException($"consumer '{who}' has no split route for '{eventType}' (routes: {MigrationStore.DescribeRoutes(status.Routes)}): a sample-ratio check needs one strictly between 0 and 100 %");
            }

            // The consumer's own exposures, whichever route it follows (a consumer without a route of its own follows the default one).
            var (weftUsers, legacyUsers) = await store.ExposureCountsAsync(signal.Name, eventType, who, route.Percent, ct).ConfigureAwait(false);
            if (weftUsers + legacyUsers == 0)
            {
                throw new ArgumentException($"no exposures of '{eventType}' to consumer '{who}' at {route.Percent.ToString("0.##", CultureInfo.InvariantCulture)} % yet: consumers ask `weft serve` (GET /v1/signals/{signal.Name}/users/{{user_id}}/routes?consumer={who}) for their routes");
            }

            var result = SampleRatio.Test(weftUsers, legacyUsers, route.Percent, parse.GetValue(sequential));
            await stdout.WriteLineAsync(parse.GetValue(c.Json) ? JsonSerializer.Serialize(result, CliJson.Report)
                : $"'{eventType}' for consumer '{who}'{(route.Consumer == who ? "" : " (on the default route)")} at {result.Percent.ToString("0.##", CultureInfo.InvariantCulture)} %: {weftUsers:N0} users served by Weft, {legacyUsers:N0} by legacy ({result.ObservedPercent.ToString("0.##", CultureInfo.InvariantCulture)} %); "
                  + $"chi-square {result.ChiSquare:F2}, {(result.Sequential ? "always-valid " : "")}p = {result.PValue:G3}: {(result.Mismatch ? "SAMPLE RATIO MISMATCH, the split is broken; do not trust an A/B result over it" : "the split is as expected")}").ConfigureAwait(false);
            return result.Mismatch ? 1 : 0;
        }));
        return command;
    }

    private static Command Outcome(TextWriter stdout, TextWriter stderr)
    {
        var c = new Common();
        var consumer = new Option<string>("--consumer") { Description = "The consumer whose online split is tested (its exposures as it asked; * for every consumer on the default route)", Required = true };
        var outcomes = new Option<string>("--outcomes") { Description = "The consumer's own metric, one row per observation (.parquet, .csv or .jsonl): a user id and a number", Required = true };
        var metric = new Option<string>("--metric") { Description = "Column holding the metric (each user's rows are averaged)", DefaultValueFactory = _ => "value" };
        var userColumn = new Option<string>("--user-column") { Description = "Column holding the user id", DefaultValueFactory = _ => "user_id" };
        var margin = new Option<double>("--margin") { Description = "Equivalence margin: a difference of the arms' means within ±MARGIN is no effect", Required = true };
        var alpha = new Option<double>("--alpha") { Description = "Significance level of each one-sided test", DefaultValueFactory = _ => 0.05 };
        var percent = new Option<double?>("--percent") { Description = "The split measured (default: the consumer's route now); exposures are kept per percent" };
        var sequential = new Option<bool>("--sequential") { Description = "Always-valid tests (a confidence sequence, a sequential sample-ratio check): valid however often the growing log is tested, at the price of a wider interval" };
        var command = new Command("outcome", "Online A/B: the consumer's own metric, Weft's users against legacy's in its split (Welch TOST after sample-ratio checks; --sequential: always-valid); stored as evidence, a failure blocks raising its route")
        {
            c.Config, c.Signal, c.EventType, consumer, outcomes, metric, userColumn, margin, alpha, percent, sequential, c.Actor, c.Json,
        };
        command.SetAction((parse, ct) => RunAsync("outcome", stderr, async () =>
        {
            var (weft, signal) = Load(parse, c);
            string eventType = parse.GetValue(c.EventType)!, who = parse.GetValue(consumer)!;
            await using var store = await OpenLedgerAsync(weft, signal, Ledger.Existing, ct).ConfigureAwait(false);
            var status = await store.StatusAsync(signal.Name, eventType, ct).ConfigureAwait(false);
            CheckConsumer(who, status);
            if (parse.GetValue(percent) is { } given && !(given > 0 && given < 100))
            {
                // Checked before it goes on a bucket: NaN or 1e300 there is an int overflow's nonsense percent.
                throw new ArgumentException($"--percent {given.ToString(CultureInfo.InvariantCulture)} must lie strictly between 0 and 100: an online outcome test measures a split");
            }

            // On the bucket, as routes and exposures hold it: 10.004 measured the users of the 10 % split.
            double split = MigrationRouting.OnBucket(parse.GetValue(percent) ?? MigrationStore.RouteOf(status, who)?.Percent ?? 0);
            if (!(split > 0 && split < 100))
            {
                throw new ArgumentException($"consumer '{who}' of '{eventType}' is at {split.ToString("0.##", CultureInfo.InvariantCulture)} % (routes: {MigrationStore.DescribeRoutes(status.Routes)}): "
                    + "an online outcome test needs a split strictly between 0 and 100 %; name the split measured with --percent");
            }

            var (weftUsers, legacyUsers) = await store.ExposedUsersAsync(signal.Name, eventType, who, split, ct).ConfigureAwait(false);
            if (weftUsers.Count + legacyUsers.Count == 0)
            {
                throw new ArgumentException($"no exposures of '{eventType}' to consumer '{who}' at {split.ToString("0.##", CultureInfo.InvariantCulture)} %: consumers ask `weft serve` for their routes (or hybrid sequences) with consumer={who}, and each user served is logged");
            }

            string metricName = parse.GetValue(metric)!;
            var values = await OnlineOutcome.ReadAsync(parse.GetValue(outcomes)!, parse.GetValue(userColumn)!, metricName, ct).ConfigureAwait(false);
            var result = OnlineOutcome.Test(metricName, values, weftUsers, legacyUsers, split, parse.GetValue(margin), parse.GetValue(alpha), parse.GetValue(sequential));
            string Num(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
            string summary = $"{who} at {split.ToString("0.##", CultureInfo.InvariantCulture)} %: mean {metricName} Weft {Num(result.WeftMean)} ({result.WeftUsers:N0} users) against legacy {Num(result.LegacyMean)} ({result.LegacyUsers:N0}), "
                + $"difference {Num(result.Difference)} ({(result.Sequential ? "always-valid interval" : "interval")} {Num(result.Lower)} .. {Num(result.Upper)}) within ±{Num(result.Margin)}: "
                + (result.Passed ? $"equivalent ({(result.Sequential ? "always-valid " : "")}p {(result.PValue < 1e-4 ? "< 0.0001" : $"= {result.PValue:G3}")})" : $"not shown: {result.Failures[0]}");
            var transition = await store.RecordOutcomeAsync(signal.Name, eventType, who,
                new EvidenceInput(MigrationStore.OutcomeKind, result.Passed, summary, JsonSerializer.Serialize(result, CliJson.Compact), Percent: split), parse.GetValue(c.Actor)!, ct).ConfigureAwait(false);
            if (parse.GetValue(c.Json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(new { result, transition }, CliJson.Report)).ConfigureAwait(false);
            }
            else
            {
                await stdout.WriteLineAsync($"online A/B outcome of '{eventType}' for {summary}").ConfigureAwait(false);
                await stdout.WriteLineAsync($"  exposed users: {result.Exposed.WeftUsers:N0} Weft, {result.Exposed.LegacyUsers:N0} legacy ({(result.Sequential ? "always-valid " : "")}sample ratio p = {result.Exposed.PValue:G3}); "
                    + $"{result.ExposedWithoutOutcome:N0} without an outcome, {result.UnexposedWithOutcome:N0} users with outcomes not exposed to this split (both left out)").ConfigureAwait(false);
                await stdout.WriteLineAsync(Transition(transition)).ConfigureAwait(false);
            }

            foreach (var failure in result.Failures)
            {
                await stderr.WriteLineAsync($"outcome: {failure}").ConfigureAwait(false);
            }

            return result.Passed ? 0 : 1;
        }));
        return command;
    }

    private enum Ledger
    {
        /// <summary>The first step (shadow) creates the ledger.</summary>
        Create,

        /// <summary>Every later step acts on a ledger that exists.</summary>
        Existing,

        /// <summary>Reading never creates one: a missing ledger reads as an empty one.</summary>
        Read,
    }

    /// <summary>The deployment's ledger, told what the signal computes now (evidence gathered under another definition's contents holds no gate; a new description does not matter).</summary>
    private static async Task<MigrationStore> OpenLedgerAsync(WeftConfig weft, SignalDefinition signal, Ledger use, CancellationToken ct)
    {
        var store = use switch
        {
            Ledger.Create => await MigrationStore.OpenAsync(weft.MigrationStore, cancellationToken: ct).ConfigureAwait(false),
            Ledger.Existing => await MigrationStore.OpenExistingAsync(weft.MigrationStore, cancellationToken: ct).ConfigureAwait(false),
            _ => await MigrationStore.OpenForReadingAsync(weft.MigrationStore, cancellationToken: ct).ConfigureAwait(false),
        };
        store.UseDefinition(signal.Name, SignalJsonWriter.ContentFingerprint(signal));
        return store;
    }

    /// <summary>An optional --event-type of status or log: one the signal or the ledger knows (a typo read as an empty answer).</summary>
    private static async Task<string?> KnownEventTypeAsync(MigrationStore store, SignalDefinition signal, string? type, CancellationToken ct)
    {
        if (type is null)
        {
            return null;
        }

        var known = signal.EventTypes.Select(t => t.Name).Union(await store.EventTypesAsync(signal.Name, ct).ConfigureAwait(false)).ToList();
        return known.Contains(type) ? type : throw new ArgumentException($"signal '{signal.Name}' has no event type '{type}', and the ledger holds none (known: {string.Join(", ", known)})");
    }

    /// <summary>The definition fingerprint the enriched table's latest batch or stream commit recorded; null when none is found.</summary>
    private static async Task<string?> WrittenUnderAsync(string table, CancellationToken ct)
    {
        if (!Directory.Exists(Path.Combine(table, "_delta_log")))
        {
            return null;
        }

        var delta = await DeltaTable.OpenAsync(table, cancellationToken: ct).ConfigureAwait(false);
        foreach (var commit in await delta.GetHistoryAsync(200, ct).ConfigureAwait(false))
        {
            if (commit.Parameters.TryGetValue(Weft.Batch.LakeParameters.Fingerprint, out var fingerprint))
            {
                return fingerprint;
            }
        }

        return null;
    }

    /// <summary>
    /// Holds the --consumer name of a command that records one (a route, an outcome) to what names a
    /// consumer (<see cref="MigrationRouting.ConsumerProblem"/>), unless the event type has a route of that
    /// name already: checked against the ledger, not at parsing, so a route recorded before the rule can
    /// still be raised and tested (it would hold the event type short of cut-over for ever). Commands that
    /// only read or lower routes take any name.
    /// </summary>
    private static void CheckConsumer(string consumer, MigrationStatus status)
    {
        if (ConsumerNameError(consumer) is { } error && !status.Routes.Any(r => r.Consumer == consumer))
        {
            throw new ArgumentException(error);
        }
    }

    /// <summary>Why a --consumer name breaks the rule, the name shown with its control characters escaped; null when it passes.</summary>
    private static string? ConsumerNameError(string name) =>
        MigrationRouting.ConsumerProblem(name) is { } problem
            ? $"--consumer '{MigrationRouting.Printable(DisplayText.Cut(name))}': {problem}"
            : null;


    private static (WeftConfig Config, SignalDefinition Signal) Load(System.CommandLine.ParseResult parse, Common c)
    {
        var weft = WeftConfig.Load(parse.GetValue(c.Config)!);
        var signal = weft.LoadSignal(parse.GetValue(c.Signal)!);
        // Status and log take an optional --event-type of their own; the others must name one Weft produces.
        if (parse.GetResult(c.EventType) is not null && parse.GetValue(c.EventType) is { } type && !signal.EventTypes.Any(t => t.Name == type))
        {
            throw new ArgumentException($"signal '{signal.Name}' has no event type '{type}' (it has: {string.Join(", ", signal.EventTypes.Select(t => t.Name))})");
        }

        return (weft, signal);
    }

    private static async Task<int> RunAsync(string name, TextWriter stderr, Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (MigrationGateException ex)
        {
            await stderr.WriteLineAsync($"migrate {name}: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (Exception ex) when (ex is MigrationInputException or ConfigException or DefinitionException or DeltaException or IOException or ArgumentException
            or UnauthorizedAccessException or Weft.Parquet.ParquetFormatException or Weft.Batch.InputException)
        {
            await stderr.WriteLineAsync($"migrate {name}: {CliMessages.Of(ex)}").ConfigureAwait(false);
            return 2;
        }
    }

    private static async Task ReportAsync(TextWriter stdout, bool json, MigrationTransition transition, string? evidence)
    {
        if (json)
        {
            await stdout.WriteLineAsync(JsonSerializer.Serialize(transition, CliJson.Report)).ConfigureAwait(false);
            return;
        }

        if (evidence is not null)
        {
            await stdout.WriteLineAsync(evidence).ConfigureAwait(false);
        }

        await stdout.WriteLineAsync(Transition(transition)).ConfigureAwait(false);
    }

    private static string Transition(MigrationTransition t)
    {
        var e = t.Entry;
        string stages = e.From == e.To ? $"stays {MigrationStages.Name(e.To)}" : $"{MigrationStages.Name(e.From)} → {MigrationStages.Name(e.To)}";
        return $"'{e.EventType}' {stages}; routes: {MigrationStore.DescribeRoutes(t.Status.Routes)} (audit #{e.Seq}{(e.Overridden ? $", OVERRIDE: {MigrationRouting.Printable(e.Reason ?? "")}" : "")})";
    }

    private static string Line(AuditEntry e)
    {
        var parts = new List<string>
        {
            $"#{e.Seq}", e.At.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture), e.EventType, e.Action,
            e.From == e.To ? MigrationStages.Name(e.To) : $"{MigrationStages.Name(e.From)} → {MigrationStages.Name(e.To)}",
        };
        if (e.Percent is { } p)
        {
            parts.Add($"{(e.Consumer is { } consumer ? MigrationRouting.Printable(consumer) : "all routes")} {p.ToString("0.##", CultureInfo.InvariantCulture)} %");
        }

        if (e.EvidenceId is { } id)
        {
            parts.Add($"evidence #{id}");
        }

        if (e.Reason is not null)
        {
            // Free text from the command line: a newline would split the entry's one line, an escape sequence reach the terminal.
            parts.Add((e.Overridden ? "OVERRIDE: " : "reason: ") + MigrationRouting.Printable(e.Reason));
        }

        parts.Add($"by {MigrationRouting.Printable(e.Actor)}");
        return string.Join("  ", parts);
    }

    private static async Task WriteComparisonAsync(TextWriter output, LegacyComparisonResult r)
    {
        var t = r.Comparison.Total;
        await output.WriteLineAsync($"'{r.EventType}' of '{r.Signal}' over {Range(r.FromMicros, r.ToMicros)}: legacy {r.LegacyRows:N0} events, Weft {r.WeftRows:N0}"
            + (r.SampledUsers is { } sampled ? $" (through legacy's endpoint: the sequences of {sampled:N0} users, each from the oldest event legacy answered)" : "")).ConfigureAwait(false);
        await output.WriteLineAsync($"  events: {t.Matched:N0} matched, {t.ReferenceOnly:N0} only in legacy, {t.CandidateOnly:N0} only in Weft, {t.ReferenceDuplicates + t.CandidateDuplicates:N0} repeats").ConfigureAwait(false);
        var rows = new List<string[]> { new[] { "gate", "Weft vs legacy", "legacy vs itself", "required", "" } };
        foreach (var check in r.Checks)
        {
            rows.Add([check.Measure, check.Value.ToString("P2", CultureInfo.InvariantCulture), check.NoiseFloor?.ToString("P2", CultureInfo.InvariantCulture) ?? "-", check.Required.ToString("P2", CultureInfo.InvariantCulture), check.Passed ? "ok" : "FAIL"]);
        }

        await QualityCommand.WriteTableAsync(output, rows).ConfigureAwait(false);
        foreach (var column in t.Columns.Where(c => c.Rate < 1))
        {
            await output.WriteLineAsync($"  {column.Column}: largest difference {column.MaxDifference:G6}, e.g. {string.Join(", ", column.Examples)}").ConfigureAwait(false);
        }

        foreach (var column in r.Comparison.OnlyInCandidate)
        {
            await output.WriteLineAsync($"  only Weft has column '{column}' (additive)").ConfigureAwait(false);
        }

        await output.WriteLineAsync(r.Passed ? "  passed" : $"  FAILED: {string.Join("; ", r.Failures)}").ConfigureAwait(false);
    }

    /// <param name="undecided">A sequential outcome test that needs more users: neither passed nor failed.</param>
    private static string Verdict(MigrationEvidence? evidence, bool undecided = false) =>
        evidence is null ? "-" : $"#{evidence.Id} {(evidence.Passed ? "passed" : undecided ? "undecided" : "FAILED")} {evidence.At:yyyy-MM-dd}";

    private static string Next(MigrationStatus s) => s.Stage switch
    {
        MigrationStage.NotStarted => "shadow",
        MigrationStage.Shadow => "compare",
        MigrationStage.Compared => "abtest",
        MigrationStage.AbTested => "cutover",
        MigrationStage.CuttingOver when s.Comparison is { Passed: false } => "compare failed: rollback?",
        MigrationStage.CuttingOver when s.Outcomes.Any(o => !o.Passed && !OnlineOutcome.IsUndecided(o)) => "outcome failed: rollback?",
        MigrationStage.CuttingOver when s.Outcomes.Any(o => !o.Passed) => "outcome undecided: collect, test again",
        MigrationStage.CuttingOver when s.AbTest is { Passed: true } abTest && s.LastFailedComparisonId > abTest.Id => "abtest (the last predates a failed comparison)",
        MigrationStage.CuttingOver when s.AbTest is not { Passed: true } => "abtest (none has passed: the route rose by override)",
        MigrationStage.CuttingOver => RaiseNext(s.Routes),
        MigrationStage.CutOver when s.Comparison is { Passed: false } => "compare failed: rollback?",
        MigrationStage.CutOver => "deprecate after the soak",
        _ => "-",
    };

    /// <summary>The cutover that moves the split on: of the routes below 100 %, the one to raise (a consumer's own route at 0 % beside `*` at 100 % holds the stage, and raising `*` changes nothing).</summary>
    private static string RaiseNext(IReadOnlyList<MigrationRoute> routes)
    {
        var below = routes.Where(r => r.Percent < 100).Select(r => r.Consumer).Order(StringComparer.Ordinal).ToList();
        string command = below.Count == 0 || below[0] == MigrationRouting.DefaultConsumer && below.Count == 1
            ? "cutover --percent 100"
            : $"cutover {ConsumerArgument(below.Find(c => c != MigrationRouting.DefaultConsumer)!)} --percent 100";
        return below.Count > 1 ? $"{command} (below 100 %: {string.Join(", ", below.Select(MigrationRouting.Printable))})" : command;
    }

    /// <summary>
    /// <c>--consumer NAME</c> as a shell command takes it: a name that keeps to the rule as it is (joined by
    /// <c>=</c> when it starts with <c>-</c>, which would be read as an option), one recorded before the
    /// rule single-quoted, or with control characters in bash's <c>$'…'</c> (escaped, not sent to the terminal).
    /// </summary>
    private static string ConsumerArgument(string name)
    {
        string word = MigrationRouting.ConsumerProblem(name) is null ? name
            : !name.Any(char.IsControl) ? "'" + name.Replace("'", "'\\''", StringComparison.Ordinal) + "'"
            : "$'" + string.Concat(name.Select(ch => ch switch
            {
                '\\' => "\\\\",
                '\'' => "\\'",
                _ when char.IsControl(ch) => $"\\u{(int)ch:x4}",
                _ => ch.ToString(),
            })) + "'";
        return name.StartsWith('-') ? "--consumer=" + word : "--consumer " + word;
    }

    private static string Worst(EventTypeComparison total) =>
        total.Columns.Count == 0 || total.Matched == 0 ? "none compared" : total.Columns.MinBy(c => c.Rate) is { } w && w.Rate < 1 ? $"{w.Column} {w.Rate:P2}" : "all agree";

    private static string Range(long? from, long? to) =>
        from is { } f && to is { } t ? $"[{Timestamps.Format(f)}, {Timestamps.Format(t)})" : "no range";

    private static double Share(string option, double value)
    {
        QualityCommand.CheckShare(option, value);
        return value;
    }
}
