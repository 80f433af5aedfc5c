using System.CommandLine;
using Weft.Definitions;

namespace Weft.Cli;

/// <summary>The <c>weft</c> command line (DESIGN.md, "Command line"). Exit codes: 0 ok, 1 problems found, 2 usage or IO error.</summary>
public static class WeftCli
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        var root = new RootCommand("Weft: per-user event sequences for ML, fresh and complete, from one definition.");
        root.Subcommands.Add(DemoCommand(stdout, stderr));
        root.Subcommands.Add(GenCommand(stdout, stderr));
        root.Subcommands.Add(CompileCommand(stdout, stderr));
        root.Subcommands.Add(ValidateCommand(stdout, stderr));
        root.Subcommands.Add(DiffCommand(stdout, stderr));
        root.Subcommands.Add(TableCommands.Create(stdout, stderr));
        root.Subcommands.Add(StreamCommand.Create(stdout, stderr));
        root.Subcommands.Add(ServeCommand.Create(stdout, stderr));
        root.Subcommands.Add(QualityCommand.Create(stdout, stderr));
        root.Subcommands.Add(MigrateCommand.Create(stdout, stderr));
        foreach (var command in BatchCommands.Create(stdout, stderr))
        {
            root.Subcommands.Add(command);
        }

        var config = new InvocationConfiguration
        {
            Output = stdout,
            Error = stderr,
            // Signals are Program's to handle: the parser's own handling gave a stopping command 2 s and
            // then ended the process, cutting a stream's final flush, commit and group leave short.
            ProcessTerminationTimeout = null,
        };
        try
        {
            var parse = root.Parse(args);
            if (parse.Errors.Count > 0)
            {
                // A usage error, like a bad value the commands find themselves: exit 2, not the library's 1 ("problems found").
                foreach (var error in parse.Errors)
                {
                    await stderr.WriteLineAsync(Plain(error.Message)).ConfigureAwait(false);
                }

                await stderr.WriteLineAsync($"see '{string.Join(' ', ["weft", .. CommandPath(parse.CommandResult)])} --help'").ConfigureAwait(false);
                return 2;
            }

            int exit = await parse.InvokeAsync(config, cancellationToken).ConfigureAwait(false);
            await FinishLogWritesAsync(stderr).ConfigureAwait(false);
            return exit;
        }
        catch (OperationCanceledException)
        {
            await FinishLogWritesAsync(stderr).ConfigureAwait(false);
            await stderr.WriteLineAsync("cancelled").ConfigureAwait(false);
            return 130;
        }
    }

    /// <summary>
    /// Lets the checkpoints and log snapshots a command's last commits started finish before the
    /// process exits (a checkpoint of a large table takes seconds); they were killed half-written.
    /// </summary>
    private static async Task FinishLogWritesAsync(TextWriter stderr)
    {
        if (!await Weft.Storage.BackgroundLogWrites.WaitAsync(TimeSpan.FromMinutes(2)).ConfigureAwait(false))
        {
            await stderr.WriteLineAsync("weft: a Delta checkpoint was still being written after 2 minutes and is left unfinished; the table reads as before from its JSON commits (write one with 'weft table checkpoint PATH')").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The parser's "Cannot parse argument 'x' for option '--n' as expected type 'System.Nullable`1[System.Int32]'"
    /// in a user's words: a .NET type name says nothing to someone typing a command.
    /// </summary>
    internal static string Plain(string message)
    {
        var match = System.Text.RegularExpressions.Regex.Match(message, @"^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']+)' as expected type '(?<type>[^']+)'\.?$");
        if (!match.Success)
        {
            return message;
        }

        string type = match.Groups["type"].Value;
        string? expected = type.Contains("Int32", StringComparison.Ordinal) ? $"a whole number (at most {int.MaxValue:N0})"
            : type.Contains("Int64", StringComparison.Ordinal) ? "a whole number (64-bit)"
            : type.Contains("Double", StringComparison.Ordinal) ? "a number"
            : null;
        return expected is null ? message : $"{match.Groups["option"].Value} '{match.Groups["value"].Value}' is not {expected}";
    }

    private static IEnumerable<string> CommandPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new List<string>();
        for (var at = result; at.Parent is System.CommandLine.Parsing.CommandResult parent; at = parent)
        {
            names.Insert(0, at.Command.Name);
        }

        return names;
    }

    private static Command DemoCommand(TextWriter stdout, TextWriter stderr)
    {
        var dir = new Option<string>("--dir") { Description = "Working directory for the demo's data", DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "weft-demo") };
        var events = new Option<int>("--events") { Description = "Events to generate", DefaultValueFactory = _ => 200_000 };
        var command = new Command("demo", "Run Weft end to end on generated data with embedded defaults") { dir, events };
        command.SetAction(async (parse, ct) =>
        {
            int count = parse.GetValue(events);
            if (count < Demo.MinEvents)
            {
                await stderr.WriteLineAsync($"demo: --events {count} is too few: every step needs events to show, so at least {Demo.MinEvents:N0}").ConfigureAwait(false);
                return 2;
            }

            string path = parse.GetValue(dir)!;
            if (Demo.RefuseDirectory(path) is { } problem)
            {
                await stderr.WriteLineAsync($"demo: --dir {problem}").ConfigureAwait(false);
                return 2;
            }

            return await Demo.RunAsync(path, count, stdout, ct).ConfigureAwait(false);
        });
        return command;
    }

    private static Command GenCommand(TextWriter stdout, TextWriter stderr)
    {
        var o = new GenOptions();
        var outDir = new Option<string>("--out") { Description = "Output directory", Required = true };
        var events = new Option<int>("--events") { Description = "Events to generate", DefaultValueFactory = _ => o.Events };
        var users = new Option<int>("--users") { Description = "Distinct users", DefaultValueFactory = _ => o.Users };
        var items = new Option<int>("--items") { Description = "Distinct items", DefaultValueFactory = _ => o.Items };
        var days = new Option<int>("--days") { Description = "Days of history", DefaultValueFactory = _ => o.Days };
        var seed = new Option<int>("--seed") { Description = "Random seed (same seed, same events, item versions and landing file)", DefaultValueFactory = _ => o.Seed };
        var start = new Option<string?>("--start") { Description = $"First instant of the history (ISO 8601; default {o.Start:yyyy-MM-dd}, fixed so a seed gives the same bytes any day); it must end at most a day after now" };
        var command = new Command("gen", "Write synthetic raw events and item features") { outDir, events, users, items, days, seed, start };
        command.SetAction(async (parse, ct) =>
        {
            var options = new GenOptions { Events = parse.GetValue(events), Users = parse.GetValue(users), Items = parse.GetValue(items), Days = parse.GetValue(days), Seed = parse.GetValue(seed) };
            if (options.Events < 0 || options.Users < 1 || options.Items < 1 || options.Days < 1)
            {
                await stderr.WriteLineAsync("gen: --events must be ≥ 0 and --users, --items, --days ≥ 1").ConfigureAwait(false);
                return 2;
            }

            // A run holds its deliveries and samplers in memory: past these it died of an overflow or OutOfMemory with a stack trace.
            if (options.Events > GenOptions.MaxCount || options.Users > GenOptions.MaxCount || options.Items > GenOptions.MaxCount)
            {
                await stderr.WriteLineAsync($"gen: --events, --users and --items must each be at most {GenOptions.MaxCount:N0} (a run holds them in memory); generate more as several --seed runs into separate --out folders").ConfigureAwait(false);
                return 2;
            }

            if (parse.GetValue(start) is { } startText)
            {
                if (!Timestamps.TryParseInstant(startText, out long startMicros))
                {
                    await stderr.WriteLineAsync($"gen: --start '{startText}' is not an instant (ISO 8601, e.g. 2026-10-01 or 2026-10-01T06:00:00Z)").ConfigureAwait(false);
                    return 2;
                }

                options = options with { Start = Timestamps.FromMicros(startMicros) };
                if (options.Start < new DateTimeOffset(1971, 1, 2, 0, 0, 0, TimeSpan.Zero))
                {
                    // Raw events before 1971 are dead letters (epoch seconds mistaken for microseconds), and item versions start a day earlier.
                    await stderr.WriteLineAsync($"gen: --start '{startText}' is before 1971-01-02: Weft dead-letters events before 1971").ConfigureAwait(false);
                    return 2;
                }
            }

            // Events more than a day ahead of the clock are dead letters on the stream and in every batch run:
            // a history running past now generated data Weft itself refused (and past the year 9999 crashed).
            var latest = DateTimeOffset.UtcNow.AddDays(1);
            double fit = (latest - options.Start).TotalDays;
            if (options.Days > fit)
            {
                string earlier = options.Days < (latest - DateTimeOffset.MinValue).TotalDays ? $"an earlier --start (at the latest {latest.AddDays(-options.Days):yyyy-MM-ddTHH:mm}Z for {options.Days} days)" : "an earlier --start";
                await stderr.WriteLineAsync(
                    $"gen: --days {options.Days} from {Timestamps.Format(Timestamps.ToMicros(options.Start))} runs past {latest:yyyy-MM-ddTHH:mm}Z, a day from now, " +
                    $"and Weft dead-letters events over a day in the future: give {((int)fit >= 1 ? $"at most --days {(int)fit}, or " : "")}{earlier}").ConfigureAwait(false);
                return 2;
            }

            string dir = parse.GetValue(outDir)!;
            if (File.Exists(dir))
            {
                await stderr.WriteLineAsync($"gen: --out '{dir}' is a file, not a directory").ConfigureAwait(false);
                return 2;
            }

            // The tables are appended to: a second data set in the same place would mix with the first.
            if (new[] { "events", "items", "landing" }.FirstOrDefault(d => Directory.Exists(Path.Combine(dir, d))) is { } held)
            {
                await stderr.WriteLineAsync($"gen: --out '{dir}' already holds generated data ({held}/): choose an empty directory, or delete it first").ConfigureAwait(false);
                return 2;
            }

            GenSummary summary;
            try
            {
                summary = await SyntheticData.GenerateAsync(dir, options, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await stderr.WriteLineAsync($"gen: {ex.Message}").ConfigureAwait(false);
                return 2;
            }

            await stdout.WriteLineAsync($"wrote {summary.Deliveries} deliveries of {summary.Events} events ({summary.Late} late, {summary.Duplicates} duplicated, {summary.Bad} malformed) to {summary.LandingFile}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"wrote the {summary.Archived} well-formed deliveries to the raw archive table {summary.EventsTable}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"wrote {summary.ItemVersions} item versions ({summary.Corrections} corrections) to the table {summary.ItemsTable}").ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private static Command CompileCommand(TextWriter stdout, TextWriter stderr)
    {
        var defs = new Argument<string>("DEFS") { Description = "Folder of C# definition files" };
        var outDir = new Option<string>("--out") { Description = "Output folder for <signal>.json and <signal>.json.sha256", Required = true };
        var command = new Command("compile", "Compile C# definitions to canonical JSON with fingerprints") { defs, outDir };
        command.SetAction(async (parse, ct) =>
        {
            string folder = parse.GetValue(defs)!;
            if (!Directory.Exists(folder) || !Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories).Any())
            {
                await stderr.WriteLineAsync(Directory.Exists(folder) ? $"compile: no .cs files in '{folder}'" : $"compile: no folder '{folder}'").ConfigureAwait(false);
                return 2;
            }

            var outcome = await DefinitionCompiler.CompileFolderAsync(folder, ct).ConfigureAwait(false);
            if (outcome.Errors.Count > 0)
            {
                foreach (var e in outcome.Errors)
                {
                    await stderr.WriteLineAsync(e).ConfigureAwait(false);
                }

                await stderr.WriteLineAsync($"compile failed: {outcome.Errors.Count} error(s)").ConfigureAwait(false);
                return 1;
            }

            string output = parse.GetValue(outDir)!;
            IReadOnlyList<(string File, string Fingerprint)> written;
            try
            {
                written = await DefinitionCompiler.WriteAsync(outcome.Signals, output, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await stderr.WriteLineAsync($"compile: cannot write to --out '{output}': {ex.Message}").ConfigureAwait(false);
                return 2;
            }

            foreach (var (file, fingerprint) in written)
            {
                await stdout.WriteLineAsync($"{fingerprint}  {file}").ConfigureAwait(false);
            }

            // Signals compiled here before and since removed or renamed stay in --out, and a config
            // pointing at it would still run them: say so (deleting is the user's call; the folder may
            // hold other modules' signals).
            var current = written.Select(w => Path.GetFullPath(w.File)).ToHashSet(StringComparer.Ordinal);
            foreach (var stale in Directory.EnumerateFiles(output, "*.json").Where(f => File.Exists(f + ".sha256") && !current.Contains(Path.GetFullPath(f))).Order(StringComparer.Ordinal))
            {
                await stderr.WriteLineAsync($"compile: warning: {stale} was compiled before but defines none of these signals; delete it, or a config reading '{output}' still runs it").ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    private static Command ValidateCommand(TextWriter stdout, TextWriter stderr)
    {
        var files = new Argument<string[]>("FILE") { Description = "Signal JSON files", Arity = ArgumentArity.OneOrMore };
        var command = new Command("validate", "Check signal JSON files; every problem is reported with its JSON path") { files };
        command.SetAction(async (parse, ct) =>
        {
            var registry = Engine.ExecutorRegistry.CreateDefault();
            int bad = 0, unreadable = 0;
            foreach (var file in parse.GetValue(files)!)
            {
                if (!File.Exists(file))
                {
                    await stderr.WriteLineAsync(NotASignalFile(file)).ConfigureAwait(false);
                    unreadable++;
                    continue;
                }

                var bytes = await File.ReadAllBytesAsync(file, ct).ConfigureAwait(false);
                var result = SignalJsonReader.Read(bytes, registry.Contains);
                if (result.IsValid && DefinitionCompiler.RuntimeProblems(result.Signal!, registry) is { Count: > 0 } refused)
                {
                    result = result with { Signal = null, Problems = refused };
                }

                bool stale = false;
                if (File.Exists(file + ".sha256"))
                {
                    // The sidecar compile wrote: a file edited since no longer matches it.
                    string recorded = (await File.ReadAllTextAsync(file + ".sha256", ct).ConfigureAwait(false)).Split([' ', '\n', '\t'], 2)[0].Trim();
                    string actual = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
                    if (!string.Equals(recorded, actual, StringComparison.OrdinalIgnoreCase))
                    {
                        // Reported beside the file's own problems, not instead of them: an edit is usually where they came from.
                        stale = true;
                        await stderr.WriteLineAsync($"{file}: its .sha256 says {recorded}, its bytes hash to {actual}: edited since `weft compile` wrote it? Compile again, or delete the stale .sha256").ConfigureAwait(false);
                    }
                }

                if (result.IsValid)
                {
                    if (stale)
                    {
                        bad++;
                    }
                    else
                    {
                        await stdout.WriteLineAsync($"{file}: ok (signal '{result.Signal!.Name}' v{result.Signal.Version}, fingerprint {SignalJsonWriter.Fingerprint(result.Signal)})").ConfigureAwait(false);
                    }

                    continue;
                }

                bad++;
                await stderr.WriteLineAsync($"{file}: {result.Problems.Count} problem(s)").ConfigureAwait(false);
                foreach (var p in result.Problems)
                {
                    await stderr.WriteLineAsync($"  {p}").ConfigureAwait(false);
                }
            }

            return unreadable > 0 ? 2 : bad == 0 ? 0 : 1;
        });
        return command;
    }

    private static Command DiffCommand(TextWriter stdout, TextWriter stderr)
    {
        var oldFile = new Argument<string>("OLD") { Description = "Previous signal JSON" };
        var newFile = new Argument<string>("NEW") { Description = "New signal JSON" };
        var command = new Command("diff", "Classify a change: additive, compatible or breaking (exit 1 if breaking without a new version)") { oldFile, newFile };
        command.SetAction(async (parse, ct) =>
        {
            var signals = new SignalDefinition[2];
            string[] paths = [parse.GetValue(oldFile)!, parse.GetValue(newFile)!];
            for (int i = 0; i < 2; i++)
            {
                if (!File.Exists(paths[i]))
                {
                    await stderr.WriteLineAsync(NotASignalFile(paths[i])).ConfigureAwait(false);
                    return 2;
                }

                var read = SignalJsonReader.Read(await File.ReadAllBytesAsync(paths[i], ct).ConfigureAwait(false));
                if (!read.IsValid)
                {
                    await stderr.WriteLineAsync($"{paths[i]}: invalid signal ({read.Problems.Count} problem(s)); run 'weft validate {paths[i]}'").ConfigureAwait(false);
                    return 2;
                }

                signals[i] = read.Signal!;
            }

            var diff = SignalDiff.Compare(signals[0], signals[1]);
            await stdout.WriteLineAsync(diff.Overall.ToString().ToLowerInvariant()).ConfigureAwait(false);
            foreach (var c in diff.Changes)
            {
                await stdout.WriteLineAsync($"  {c}").ConfigureAwait(false);
            }

            if (diff.NeedsNewVersion)
            {
                await stderr.WriteLineAsync($"breaking change without a new version: bump \"version\" above {signals[0].Version}").ConfigureAwait(false);
                return 1;
            }

            return 0;
        });
        return command;
    }

    /// <summary>Why <paramref name="path"/>, which is not a file, cannot be read as signal JSON.</summary>
    private static string NotASignalFile(string path) => Directory.Exists(path) ? $"{path}: a directory, not a signal JSON file" : $"{path}: no such file";
}
