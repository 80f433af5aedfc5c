using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Weft.Quality;
using Weft.Storage;

namespace Weft.Cli;

/// <summary>
/// <c>weft quality</c>: a signal's stream path measured against its batch path over the sealed buckets,
/// per event type (completeness, column agreement, sequence agreement, late arrivals, fingerprints).
/// Exit 1 when a <c>--min-*</c> gate fails.
/// </summary>
internal static class QualityCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var config = new Option<string>("--config") { Description = "The deployment config (weft.json)", DefaultValueFactory = _ => "weft.json" };
        var signal = new Option<string>("--signal") { Description = "Signal name", Required = true };
        var from = new Option<string?>("--from") { Description = "Compare buckets overlapping [--from, --to) (ISO 8601, UTC; default: all)" };
        var to = new Option<string?>("--to") { Description = "End of the range (exclusive)" };
        var tolerance = new Option<string[]>("--tolerance")
        {
            Description = "COLUMN=ABS[,REL]: numeric values agree when |a-b| <= ABS + REL*max(|a|,|b|) (repeatable; default exact)",
            AllowMultipleArgumentsPerToken = true,
        };
        var ignore = new Option<string[]>("--ignore") { Description = "A column not to compare (repeatable; ingest_time is never compared: each path stamps its own)", AllowMultipleArgumentsPerToken = true };
        var minCompleteness = new Option<string?>("--min-completeness") { Description = "Exit 1 when the stream holds less than this share of any event type's batch events (0..1)" };
        var minAgreement = new Option<string?>("--min-agreement") { Description = "Exit 1 when any column of any event type agrees on less than this share of matched events (0..1)" };
        var maxFreshness = new Option<string?>("--max-freshness-p99")
        {
            Description = "Exit 1 when any event type's stream rows had a p99 of ingest_time − event_time above this (e.g. 30s, 5m; 'objective': the signal's freshness_objective)",
        };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON" };
        var command = new Command("quality", "Measure a signal's stream path against its batch path over sealed buckets: completeness, enrichment agreement, late arrivals, freshness, per event type")
        {
            config, signal, from, to, tolerance, ignore, minCompleteness, minAgreement, maxFreshness, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            QualityReport report;
            double? completenessGate = null, agreementGate = null;
            TimeSpan? freshnessGate = null, objective = null;
            try
            {
                completenessGate = Share("--min-completeness", parse.GetValue(minCompleteness));
                agreementGate = Share("--min-agreement", parse.GetValue(minAgreement));
                var weft = WeftConfig.Load(parse.GetValue(config)!);
                var definition = weft.LoadSignal(parse.GetValue(signal)!);
                objective = definition.FreshnessObjective;
                if (parse.GetValue(maxFreshness) is { } text)
                {
                    freshnessGate = text == "objective" ? definition.FreshnessObjective
                        : Durations.TryParse(text, out var d) && d > TimeSpan.Zero ? d
                        : throw new ArgumentException($"--max-freshness-p99 '{text}' must be a positive duration (e.g. 30s, 5m, 1h) or 'objective'");
                }

                var request = new QualityRequest(
                    parse.GetValue(from) is { } f ? BatchCommands.ParseTime("--from", f) : null,
                    parse.GetValue(to) is { } t ? BatchCommands.ParseTime("--to", t) : null,
                    Options(parse.GetValue(tolerance) ?? [], parse.GetValue(ignore) ?? []));
                if (request is { FromMicros: { } a, ToMicros: { } b } && a >= b)
                {
                    throw new ArgumentException($"--from must be before --to");
                }

                report = await StreamBatchQuality.RunAsync(weft, definition, SignalJsonWriter.Fingerprint(definition), request, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is QualityException or ConfigException or DefinitionException or DeltaException or IOException or ArgumentException or UnauthorizedAccessException or Weft.Parquet.ParquetFormatException)
            {
                await stderr.WriteLineAsync($"quality: {CliMessages.Of(ex)}").ConfigureAwait(false);
                return 2;
            }

            if (parse.GetValue(json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(report, CliJson.Report)).ConfigureAwait(false);
            }
            else
            {
                await WriteAsync(report, stdout, objective).ConfigureAwait(false);
            }

            var failed = Gates(report, completenessGate, agreementGate, freshnessGate);
            foreach (var failure in failed)
            {
                await stderr.WriteLineAsync($"quality: {failure}").ConfigureAwait(false);
            }

            return failed.Count == 0 ? 0 : 1;
        });
        return command;
    }

    internal static ComparisonOptions Options(IReadOnlyList<string> tolerances, IReadOnlyList<string> ignored)
    {
        var byColumn = new Dictionary<string, Tolerance>(StringComparer.Ordinal);
        foreach (var text in tolerances)
        {
            int eq = text.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new ArgumentException($"--tolerance '{text}' must be COLUMN=ABS[,REL], e.g. score=0.001");
            }

            if (!Tolerance.TryParse(text[(eq + 1)..], out var parsed, out var problem))
            {
                throw new ArgumentException($"--tolerance for '{text[..eq]}': {problem}");
            }

            byColumn[text[..eq]] = parsed;
        }

        return new ComparisonOptions { Tolerances = byColumn, Ignored = ComparisonOptions.DefaultIgnored.Union(ignored) };
    }

    /// <summary>The gates that failed, each as a sentence; empty when all hold (or none were asked for).</summary>
    internal static List<string> Gates(QualityReport report, double? minCompleteness, double? minAgreement, TimeSpan? maxFreshnessP99 = null)
    {
        // Each event type on its own, as the report is: a type the stream lost whole hid behind a
        // busier one's total (save at 0 % passed a 50 % gate on a 58 % total).
        var failed = new List<string>();
        foreach (var type in report.Comparison.EventTypes)
        {
            if (minCompleteness is { } c && type.Completeness < c)
            {
                failed.Add($"'{type.EventType}' completeness {Below(type.Completeness, c)} is below --min-completeness {Gate(c)} ({type.ReferenceOnly:N0} of the batch path's events are missing from the stream, {type.ReferenceOnlyExplained:N0} of them recorded late)");
            }

            if (minAgreement is { } a)
            {
                foreach (var column in type.Columns)
                {
                    if (column.Rate < a)
                    {
                        failed.Add($"'{type.EventType}' column '{column.Column}' agrees on {Below(column.Rate, a)} of matched events, below --min-agreement {Gate(a)} (e.g. {string.Join(", ", column.Examples)})");
                    }
                }
            }
        }

        if (report.Buckets.Compared.Count == 0 && (minCompleteness is not null || minAgreement is not null))
        {
            failed.Add("no sealed bucket holds rows of both paths, so nothing was compared: run `weft batch` over buckets the stream has written, once their late allowance has passed (it seals only those)");
        }

        if (maxFreshnessP99 is { } limit)
        {
            foreach (var f in report.Freshness.Where(f => f.P99Seconds > limit.TotalSeconds))
            {
                failed.Add($"'{f.EventType}' reached the stream {Seconds(f.P99Seconds)} after it happened at p99, above --max-freshness-p99 {Durations.Format(limit)} (worst bucket {f.WorstBucket}: p99 {Seconds(f.WorstBucketP99Seconds)})");
            }

            if (report.Freshness.Count == 0)
            {
                failed.Add("the stream wrote no rows in these buckets, so freshness was not measured: run `weft stream` for the signal");
            }
        }

        return failed;
    }

    internal static async Task WriteAsync(QualityReport report, TextWriter output, TimeSpan? objective = null)
    {
        var result = report.Comparison;
        var b = report.Buckets;
        await output.WriteLineAsync($"quality of '{report.Signal}' (fingerprint {Short(report.Fingerprint)}, enriched table version {report.TableVersion}): path=stream against path=batch").ConfigureAwait(false);
        await output.WriteLineAsync($"  buckets: {b.Compared.Count} compared{Range(b.Compared)}; {b.StreamOnly.Count} stream-only, not sealed yet ({b.StreamOnlyRows:N0} rows){Range(b.StreamOnly)}; {b.BatchOnly.Count} batch-only, no stream rows ({b.BatchOnlyRows:N0} rows){Range(b.BatchOnly)}{(b.ArrivedAfterSealRows > 0 ? $"; {b.ArrivedAfterSealRows:N0} stream rows of compared buckets arrived after the run that sealed them read (served from the stream, not compared)" : "")}").ConfigureAwait(false);
        if (b.Compared.Count > 0)
        {
            var rows = new List<string[]> { new[] { "event type", "batch", "stream", "matched", "batch-only", "of them late", "stream-only", "repeats", "completeness", "worst column" } };
            foreach (var t in result.EventTypes.Append(result.Total))
            {
                // A share of nothing is '-', as JSON's null: 100 % (or "all agree") read as measured.
                var worst = t.Columns.Where(c => c.Compared > 0).MinBy(c => c.Rate);
                rows.Add([
                    t.EventType, N(t.ReferenceRows), N(t.CandidateRows), N(t.Matched), N(t.ReferenceOnly), N(t.ReferenceOnlyExplained), N(t.CandidateOnly),
                    N(t.ReferenceDuplicates + t.CandidateDuplicates), t.Matched + t.ReferenceOnly == 0 ? "-" : Percent(t.Completeness),
                    t.Matched == 0 && t.Columns.Count > 0 ? "-" : worst is null || worst.Rate == 1 ? "all agree" : $"{worst.Column} {Percent(worst.Rate)}",
                ]);
            }

            await WriteTableAsync(output, rows).ConfigureAwait(false);
            var incomplete = report.PerBucket.Where(p => p.Events.Completeness < 1).ToList();
            if (incomplete.Count > 0)
            {
                var lowest = incomplete.OrderBy(p => p.Events.Completeness).ThenBy(p => p.Bucket, StringComparer.Ordinal).Take(5)
                    .Select(p => $"{p.Bucket} {p.Events.EventType} {Percent(p.Events.Completeness)} ({N(p.Events.ReferenceOnly)} missing, {N(p.Events.ReferenceOnlyExplained)} late)");
                await output.WriteLineAsync($"  incomplete: {incomplete.Count} of {report.PerBucket.Count} bucket × event type pairs; lowest: {string.Join("; ", lowest)}").ConfigureAwait(false);
            }

            await output.WriteLineAsync("  columns (matched events of every type):").ConfigureAwait(false);
            var columns = new List<string[]> { new[] { "column", "agree", "max difference", "examples" } };
            foreach (var c in result.Total.Columns)
            {
                columns.Add([c.Column, c.Compared == 0 ? "-" : Percent(c.Rate), c.MaxDifference == 0 ? "-" : c.MaxDifference.ToString("G6", CultureInfo.InvariantCulture), string.Join(", ", c.Examples)]);
            }

            await WriteTableAsync(output, columns).ConfigureAwait(false);
            var s = result.Sequences;
            await output.WriteLineAsync($"  sequences: {s.Users:N0} users; same events (ids and times) for {(s.Users == 0 ? "-" : Percent(s.IdsRate))}, same events and values for {(s.Users == 0 ? "-" : Percent(s.FullRate))}").ConfigureAwait(false);
        }

        foreach (var note in result.OnlyInReference.Select(c => $"only path=batch has column '{c}'")
            .Concat(result.OnlyInCandidate.Select(c => $"only path=stream has column '{c}'"))
            .Concat(result.TypeMismatches.Select(c => $"column types differ: {c}")))
        {
            await output.WriteLineAsync($"  not compared: {note}").ConfigureAwait(false);
        }

        if (report.Freshness.Count > 0)
        {
            await output.WriteLineAsync("  freshness (path=stream, every bucket it wrote: ingest_time − event_time, how soon after an event the stream read it; servable within that micro-batch"
                + (objective is { } o ? $"; the signal's objective {Durations.Format(o)}" : "") + "):").ConfigureAwait(false);
            var rows = new List<string[]> { new[] { "event type", "events", "p50", "p99", "max", "ahead of ingest", "worst bucket (its p99)" } };
            foreach (var f in report.Freshness)
            {
                rows.Add([
                    f.EventType, N(f.Events), Seconds(f.P50Seconds), Seconds(f.P99Seconds) + (objective is { } ob && f.P99Seconds > ob.TotalSeconds ? " (over)" : ""),
                    Seconds(f.MaxSeconds), N(f.AheadOfIngest), $"{f.WorstBucket} ({Seconds(f.WorstBucketP99Seconds)})",
                ]);
            }

            await WriteTableAsync(output, rows).ConfigureAwait(false);
        }

        await output.WriteLineAsync(report.Late.Count == 0
            ? "  late arrivals (late_events ledger): none in these buckets"
            : "  late arrivals (late_events ledger): " + string.Join("; ", report.Late.Select(l => $"{l.EventType} {l.Accepted:N0} accepted, {l.LeftToBatch:N0} left to batch, {l.Dropped:N0} dropped"))).ConfigureAwait(false);
        await output.WriteLineAsync("  fingerprints written: " + (report.Fingerprints.Count == 0 ? "none recorded"
            : string.Join("; ", report.Fingerprints.Select(f => $"path={f.Path} {Short(f.Fingerprint)} (versions {f.FirstVersion}..{f.LastVersion})")))).ConfigureAwait(false);
        if (report.Fingerprints.Any(f => f.Fingerprint != report.Fingerprint))
        {
            var others = report.Fingerprints.Where(f => f.Fingerprint != report.Fingerprint).Select(f => $"path={f.Path} versions {f.FirstVersion}..{f.LastVersion} by {Short(f.Fingerprint)}");
            await output.WriteLineAsync($"  note: some rows were written by another definition than the current one ({Short(report.Fingerprint)}): {string.Join("; ", others)}; a column difference may be that change").ConfigureAwait(false);
        }
    }

    /// <summary>A share option as typed (the framework's own parse error named a .NET type), checked to lie in 0..1.</summary>
    internal static double? Share(string option, string? text)
    {
        if (text is null)
        {
            return null;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
        {
            throw new ArgumentException($"{option} '{text}' is not a number: give a share between 0 and 1 (e.g. 0.99)");
        }

        CheckShare(option, value);
        return value;
    }

    internal static void CheckShare(string option, double? value)
    {
        if (value is { } v && !(v >= 0 && v <= 1))
        {
            throw new ArgumentException($"{option} {v.ToString(CultureInfo.InvariantCulture)} must be a share between 0 and 1 (e.g. 0.99)");
        }
    }

    internal static async Task WriteTableAsync(TextWriter output, List<string[]> rows)
    {
        var widths = new int[rows[0].Length];
        foreach (var row in rows)
        {
            for (int i = 0; i < row.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        foreach (var row in rows)
        {
            // Names left-aligned, figures right-aligned; the last column (free text) is not padded.
            var cells = row.Select((cell, i) => i == row.Length - 1 ? cell : i == 0 ? cell.PadRight(widths[i]) : cell.PadLeft(widths[i]));
            await output.WriteLineAsync("    " + string.Join("  ", cells).TrimEnd()).ConfigureAwait(false);
        }
    }

    private static string Range(IReadOnlyList<string> buckets) => buckets.Count switch
    {
        0 => "",
        1 => $" ({buckets[0]})",
        _ => $" ({buckets[0]} .. {buckets[^1]})",
    };

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>
    /// A latency as a person reads it: ms under a second, then s (under 2 min), min (under 2 h), h (under
    /// 2 days), days. The unit is chosen after rounding, so 0.99996 s is "1 s", not "1000 ms".
    /// </summary>
    internal static string Seconds(double seconds)
    {
        if (Rounded(seconds * 1000, 1) is var ms && ms < 1000)
        {
            return Shown(ms, "0.#") + " ms";
        }

        if (Rounded(seconds, 2) is var s && s < 120)
        {
            return Shown(s, "0.##") + " s";
        }

        if (Rounded(seconds / 60, 1) is var min && min < 120)
        {
            return Shown(min, "0.#") + " min";
        }

        return Rounded(seconds / 3600, 1) is var h && h < 48 ? Shown(h, "0.#") + " h" : Shown(Rounded(seconds / 86_400, 1), "0.#") + " days";

        static double Rounded(double value, int digits) => Math.Round(value, digits, MidpointRounding.AwayFromZero);
        static string Shown(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
    }

    /// <summary>A gate as asked, to as many digits as it has (0.99999 is not ">99.99%").</summary>
    private static string Gate(double share) => share.ToString("0.#####%", CultureInfo.InvariantCulture);

    /// <summary>
    /// A share that failed a gate, with the digits that show it below the gate as <see cref="Gate"/>
    /// prints it ("99.798%" under 99.8%, where two decimals printed the gate's own figure).
    /// </summary>
    internal static string Below(double share, double gate)
    {
        // The figure printed is the one compared: formatting the share itself rounds its decimal digits
        // again (95.99499999999999 compared as 95.99 printed as 96).
        for (int digits = 2; digits < 8; digits++)
        {
            double shown = Math.Round(share * 100, digits, MidpointRounding.AwayFromZero);
            if (shown < Math.Round(gate * 100, 5))
            {
                return shown.ToString("0." + new string('#', digits), CultureInfo.InvariantCulture) + "%";
            }
        }

        return (share * 100).ToString("0.#########", CultureInfo.InvariantCulture) + "%";
    }

    /// <summary>A share to two decimals of a percent, never rounded onto 0 % or 100 % it is not: "100%" for 3 events missing of 92,182 contradicted the gate it failed.</summary>
    internal static string Percent(double share) => share switch
    {
        < 1 and >= 0.99995 => ">99.99%",
        > 0 and < 0.00005 => "<0.01%",
        _ => share.ToString("0.##%", CultureInfo.InvariantCulture),
    };

    private static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] : fingerprint;
}
