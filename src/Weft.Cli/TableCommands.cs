using System.CommandLine;
using Weft.Definitions;
using Weft.Storage;

namespace Weft.Cli;

/// <summary><c>weft table ls|history|vacuum|compact|checkpoint PATH</c>: inspect and maintain a Weft (Delta Lake) table.</summary>
internal static class TableCommands
{
    /// <summary>The shortest vacuum retention without --allow-short-retention (the stream's own minimum).</summary>
    internal static readonly TimeSpan MinRetention = Weft.Streaming.Runtime.StreamOptions.MinVacuumRetention;

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var table = new Command("table", "Inspect and maintain a table (Parquet files under a Delta Lake log)");

        var lsPath = new Argument<string>("PATH") { Description = "Table directory" };
        var version = new Option<long?>("--version") { Description = "Time travel: list the files of this version" };
        var duckdb = new Option<bool>("--duckdb") { Description = "Print one DuckDB statement reading exactly these files (a glob over the directory would also read removed and uncommitted ones)" };
        var ls = new Command("ls", "List the active files with partition values, sizes and row counts") { lsPath, version, duckdb };
        ls.SetAction((parse, ct) => RunAsync(stderr, async () =>
        {
            var log = await DeltaTable.OpenAsync(parse.GetValue(lsPath)!, cancellationToken: ct).ConfigureAwait(false);
            DeltaSnapshot snapshot;
            try
            {
                snapshot = parse.GetValue(version) is { } v ? await log.GetSnapshotAsync(v, ct).ConfigureAwait(false) : await log.GetSnapshotAsync(ct).ConfigureAwait(false);
            }
            catch (ArgumentOutOfRangeException ex) when (ex.ParamName == "version")
            {
                throw new ArgumentException($"--version {parse.GetValue(version)}: {CliMessages.Of(ex)}", ex);
            }

            var missing = snapshot.Files().Where(f => !File.Exists(snapshot.FullPath(f))).ToList();
            string? gone = null;
            bool current = false;
            if (missing.Count > 0)
            {
                // An old version's files may be gone by design (a vacuum deletes replaced files past the
                // retention); the current version's cannot be, unless something outside the table's
                // writers deleted or moved them.
                current = snapshot.Version == (await log.GetSnapshotAsync(ct).ConfigureAwait(false)).Version;
                gone = $"{missing.Count:N0} of the {snapshot.FileCount:N0} files of version {snapshot.Version} are gone, e.g. {missing[0].Path}: " + (current
                    ? "this is the table's current version, so they were deleted or moved outside Weft and the table cannot be read whole; restore them, or move the table aside and recompute it (weft backfill)"
                    : "a vacuum deletes the files a later version replaced, once past the retention, so this version can no longer be read whole");
            }

            if (gone is not null && parse.GetValue(duckdb))
            {
                throw new IOException($"{gone}; DuckDB could not read this version");
            }

            await PrintAsync(stdout, parse.GetValue(duckdb) ? [DeltaTableFormatter.DuckDbQuery(snapshot)] : DeltaTableFormatter.Ls(snapshot)).ConfigureAwait(false);
            if (gone is not null)
            {
                // The current version damaged is a problem found; an old version a vacuum thinned is what
                // vacuums do (a script listing one goes on).
                await stderr.WriteLineAsync($"table: {(current ? "" : "warning: ")}{gone}").ConfigureAwait(false);
                return current ? 1 : 0;
            }

            return 0;
        }));

        var historyPath = new Argument<string>("PATH") { Description = "Table directory" };
        var limit = new Option<int?>("--limit") { Description = "Newest N commits only" };
        var history = new Command("history", "List the commits: version, time, operation, files added and removed") { historyPath, limit };
        history.SetAction((parse, ct) => RunAsync(stderr, async () =>
        {
            if (parse.GetValue(limit) is < 1 and var n)
            {
                throw new ArgumentException($"--limit {n} must be at least 1");
            }

            var log = await DeltaTable.OpenAsync(parse.GetValue(historyPath)!, cancellationToken: ct).ConfigureAwait(false);
            await PrintAsync(stdout, DeltaTableFormatter.History(await log.GetHistoryAsync(parse.GetValue(limit), ct).ConfigureAwait(false))).ConfigureAwait(false);
        }));

        var vacuumPath = new Argument<string>("PATH") { Description = "Table directory" };
        var retention = new Option<string>("--retention") { Description = "Keep files any version newer than this needs (e.g. 7d; under 1d only with --allow-short-retention, except with --dry-run, which deletes nothing)", DefaultValueFactory = _ => "7d" };
        var dryRun = new Option<bool>("--dry-run") { Description = "List what would be deleted, delete nothing" };
        var shortRetention = new Option<bool>("--allow-short-retention") { Description = $"Allow a retention under {Durations.Format(MinRetention)}: only when no batch or stream writes to the table (it could delete files they have written but not committed yet)" };
        var vacuum = new Command("vacuum", "Delete data files no version within the retention references") { vacuumPath, retention, dryRun, shortRetention };
        vacuum.SetAction((parse, ct) => RunAsync(stderr, async () =>
        {
            if (!Durations.TryParse(parse.GetValue(retention), out var keep))
            {
                throw new ArgumentException($"--retention '{parse.GetValue(retention)}' is not a duration (e.g. 7d, 12h, 0s)");
            }

            // As Delta's retention check: a writer stages files before its commit, and a vacuum with a
            // short horizon takes them, leaving a commit that names missing files.
            if (keep < MinRetention && !parse.GetValue(dryRun) && !parse.GetValue(shortRetention))
            {
                throw new ArgumentException($"--retention {parse.GetValue(retention)} is shorter than {Durations.Format(MinRetention)}: it could delete files a running batch or stream has written but not committed yet, and its commit would then name missing files. If nothing writes to the table now, add --allow-short-retention");
            }

            var log = await DeltaTable.OpenAsync(parse.GetValue(vacuumPath)!, cancellationToken: ct).ConfigureAwait(false);
            await PrintAsync(stdout, DeltaTableFormatter.Vacuum(await log.VacuumAsync(keep, parse.GetValue(dryRun), ct).ConfigureAwait(false))).ConfigureAwait(false);
        }));

        var compactPath = new Argument<string>("PATH") { Description = "Table directory" };
        var minFiles = new Option<int>("--min-files") { Description = "Rewrite a partition holding at least this many files (default 2)", DefaultValueFactory = _ => 2 };
        var targetMb = new Option<int>("--target-file-mb") { Description = "Pack small files into files of at most this many MiB (default 128); larger files are left alone", DefaultValueFactory = _ => (int)(EventTable.DefaultCompactionTargetBytes >> 20) };
        var compact = new Command("compact", "Rewrite each partition's small files (a stream's flushes) into files of up to --target-file-mb; rows unchanged, old files kept for time travel until vacuum") { compactPath, minFiles, targetMb };
        compact.SetAction((parse, ct) => RunAsync(stderr, async () =>
        {
            if (parse.GetValue(minFiles) < 2)
            {
                throw new ArgumentException($"--min-files must be at least 2, not {parse.GetValue(minFiles)}");
            }

            if (parse.GetValue(targetMb) < 1)
            {
                throw new ArgumentException($"--target-file-mb must be at least 1, not {parse.GetValue(targetMb)}");
            }

            var events = await EventTable.OpenAsync(parse.GetValue(compactPath)!, ct).ConfigureAwait(false);
            var result = await events.CompactAsync(null, parse.GetValue(minFiles), (long)parse.GetValue(targetMb) << 20, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync($"compacted {result.Partitions} partition(s): {result.FilesRemoved} file(s) into {result.FilesAdded}"
                + (result.PartitionsSkipped > 0 ? $"; {result.PartitionsSkipped} skipped (changed by another writer meanwhile)" : "")).ConfigureAwait(false);
        }));

        var checkpointPath = new Argument<string>("PATH") { Description = "Table directory" };
        var checkpoint = new Command("checkpoint", "Write a Delta checkpoint of the latest version now (writers write one every 100 commits), so that Spark, delta-rs or DuckDB open the table from it") { checkpointPath };
        checkpoint.SetAction((parse, ct) => RunAsync(stderr, async () =>
        {
            var log = await DeltaTable.OpenAsync(parse.GetValue(checkpointPath)!, cancellationToken: ct).ConfigureAwait(false);
            var written = await log.WriteCheckpointAsync(ct).ConfigureAwait(false);
            await stdout.WriteLineAsync($"checkpoint of version {written.Version}: {written.Path} ({written.Files:N0} files, {written.Tombstones:N0} tombstones, {written.Bytes:N0} bytes)").ConfigureAwait(false);
        }));

        table.Subcommands.Add(ls);
        table.Subcommands.Add(history);
        table.Subcommands.Add(vacuum);
        table.Subcommands.Add(compact);
        table.Subcommands.Add(checkpoint);
        return table;
    }

    private static async Task<int> RunAsync(TextWriter stderr, Func<Task> action) =>
        await RunAsync(stderr, async () =>
        {
            await action().ConfigureAwait(false);
            return 0;
        }).ConfigureAwait(false);

    /// <summary>Runs a command whose action returns its exit code; an expected failure is exit 2 with its message.</summary>
    private static async Task<int> RunAsync(TextWriter stderr, Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DeltaException or IOException or ArgumentException or UnauthorizedAccessException or Weft.Parquet.ParquetFormatException or NotSupportedException)
        {
            await stderr.WriteLineAsync($"table: {CliMessages.Of(ex)}").ConfigureAwait(false);
            return 2;
        }
    }

    private static async Task PrintAsync(TextWriter stdout, IReadOnlyList<string> lines)
    {
        foreach (var line in lines)
        {
            await stdout.WriteLineAsync(line).ConfigureAwait(false);
        }
    }
}
