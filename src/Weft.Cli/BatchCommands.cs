using System.CommandLine;
using System.Globalization;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Weft.Engine.Sequences;
using Weft.Storage;

namespace Weft.Cli;

/// <summary>
/// The batch path's commands: <c>weft batch</c>, <c>weft backfill</c>, <c>weft snapshot</c> and
/// <c>weft training-set</c>, all driven by a <c>weft.json</c>.
/// </summary>
internal static class BatchCommands
{
    public static IEnumerable<Command> Create(TextWriter stdout, TextWriter stderr)
    {
        yield return BatchCommand("batch", "Recompute path=batch buckets of enriched/<signal> from the raw archives (atomic per chunk, resumable)", stdout, stderr);
        yield return BatchCommand("backfill", "Run a signal (new, or with a new enrichment) over a long history, chunk by chunk, with progress; resumable", stdout, stderr);
        yield return SnapshotCommand(stdout, stderr);
        yield return TrainingSetCommand(stdout, stderr);
    }

    private static Option<string> ConfigOption() => new("--config") { Description = "The deployment config (weft.json)", DefaultValueFactory = _ => "weft.json" };

    private static Option<string> SignalOption() => new("--signal") { Description = "Signal name", Required = true };

    private static Command BatchCommand(string name, string description, TextWriter stdout, TextWriter stderr)
    {
        var config = ConfigOption();
        var signal = SignalOption();
        var from = new Option<string>("--from") { Description = "First instant to recompute (ISO 8601, UTC), rounded down to a bucket", Required = true };
        var to = new Option<string>("--to") { Description = "End of the range (exclusive), rounded up to a bucket", Required = true };
        var chunk = new Option<int?>("--chunk-buckets") { Description = "Buckets per atomic commit (default: a day's worth)" };
        var shard = new Option<string?>("--shard") { Description = "i/n: this process's share of the users (by user-id hash) when n processes split one job into the same table; the last shard to finish a chunk commits it whole" };
        var allowEmpty = new Option<bool>("--allow-empty") { Description = "Recompute a chunk whose archives hold no events even where the lake holds rows for it, emptying its buckets (without it such a chunk stops the run: a wrong archive path, or archives past their retention)" };
        var command = new Command(name, description) { config, signal, from, to, chunk, shard, allowEmpty };
        command.SetAction((parse, ct) => RunAsync(name, stderr, async () =>
        {
            var weft = WeftConfig.Load(parse.GetValue(config)!);
            var env = await SignalEnvironment.LoadAsync(weft, parse.GetValue(signal)!, cancellationToken: ct).ConfigureAwait(false);
            var request = new BatchRequest(env.Definition.Name, ParseTime("--from", parse.GetValue(from)!), ParseTime("--to", parse.GetValue(to)!))
            {
                BucketsPerChunk = parse.GetValue(chunk),
                Shard = parse.GetValue(shard) is { } text ? BatchShard.Parse(text) : null,
                AllowEmptyChunks = parse.GetValue(allowEmpty),
            };
            var bar = new ProgressBar(stderr);
            var result = await new BatchJob(env).RunAsync(request, bar, ct).ConfigureAwait(false);
            bar.Finish();
            await stdout.WriteLineAsync($"{name} '{env.Definition.Name}' run {result.RunId}: {result.Chunks} chunk(s), {result.ChunksResumed} already committed (resumed){(result.ChunksRecomputed > 0 ? $", {result.ChunksRecomputed} recomputed for events the stream archived after they were read" : "")}").ConfigureAwait(false);
            if (request.Shard is { Count: > 1 } part)
            {
                await stdout.WriteLineAsync(result.ChunksWaiting == 0
                    ? $"  shard {part}: every chunk is committed"
                    : $"  shard {part}: {result.ChunksWaiting} chunk(s) staged, waiting for the other shards (the last one to finish a chunk commits it)").ConfigureAwait(false);
                if (result.ChunksStale > 0)
                {
                    await stderr.WriteLineAsync($"{name}: warning: {result.ChunksStale} committed chunk(s) got events in the stream's archive after they were read; shards do not compute a committed chunk again: run the same range without --shard to pick them up").ConfigureAwait(false);
                }
            }

            await stdout.WriteLineAsync($"  {result.EventsIn:N0} raw events in, {result.EventsOut:N0} enriched events out, {result.DeadLetters:N0} dead letters ({result.DeadLettersRecorded:N0} not recorded before) → {weft.DeadLetterTable(env.Definition.Name)}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"  {result.SealedBuckets.Count} bucket(s) sealed; table {weft.EnrichedTable(env.Definition.Name)} at version {result.TableVersion?.ToString(CultureInfo.InvariantCulture) ?? "(unchanged)"}").ConfigureAwait(false);
            var table = weft.EnrichedTable(env.Definition.Name);
            if (result.ChunksWaiting == 0 && await OwedTailAsync(table, env.Definition.Name, stderr, $"{name}: warning: ", ct).ConfigureAwait(false) is { } owed
                && request.FromMicros <= owed.Tail.FromMicros && request.ToMicros >= owed.Tail.ToMicros
                && await Weft.Streaming.Runtime.PendingTailFile.ClearAsync(table, env.Signal.Fingerprint, request, ct).ConfigureAwait(false))
            {
                // The command the stream printed, run by hand: the stream need not run it again at its next start.
                await stdout.WriteLineAsync($"  the tail recompute the stream owed '{env.Definition.Name}' ({Timestamps.Format(owed.Tail.FromMicros)} to {Timestamps.Format(owed.Tail.ToMicros)}) is done by this run: its record is cleared").ConfigureAwait(false);
            }
        }));
        return command;
    }

    private static Command SnapshotCommand(TextWriter stdout, TextWriter stderr)
    {
        var config = ConfigOption();
        var signal = SignalOption();
        var asOf = new Option<string>("--as-of") { Description = "Event-time cut (ISO 8601, UTC)", Required = true };
        var knownAt = new Option<string?>("--known-at") { Description = "Ingest-time cut: what the system knew then, events and enrichment versions both (default: events ingested by --as-of, enrichments as the lake stored them, the latest)" };
        var maxLength = new Option<int?>("--max-length") { Description = "Elements per user (default: the signal's max_length)" };
        var output = new Option<string?>("--out") { Description = "Output Parquet file (default: <lake>/sequences/<signal>/as_of=<as-of>[/known_at=<known-at>][/max_length=<n>]/part-00000.parquet, a folder per cut)" };
        var fromArchive = new Option<string?>("--from-archive")
        {
            Description = "Build from the raw archives read from this instant (ISO 8601) to --as-of, not from the enriched lake: what `weft batch --from it --to --as-of` followed by `weft snapshot` gives, without writing the enriched table (not for signals with custom executors)",
        };
        var command = new Command("snapshot", "Write one row per user with list columns: the last N enriched events as of a time") { config, signal, asOf, knownAt, maxLength, output, fromArchive };
        command.SetAction((parse, ct) => RunAsync("snapshot", stderr, async () =>
        {
            var weft = WeftConfig.Load(parse.GetValue(config)!);
            var definition = weft.LoadSignal(parse.GetValue(signal)!);
            long asOfMicros = ParseTime("--as-of", parse.GetValue(asOf)!);
            long? givenKnownAt = parse.GetValue(knownAt) is { } k ? ParseTime("--known-at", k) : null;
            long knownAtMicros = givenKnownAt ?? asOfMicros;
            var cut = SequenceCut.For(definition, asOfMicros, knownAtMicros, MaxLength(definition, parse.GetValue(maxLength)));
            var path = parse.GetValue(output) ?? DefaultSnapshotPath(weft.SequencesTable(definition.Name), asOfMicros, givenKnownAt, parse.GetValue(maxLength));
            SequenceFiles.CheckOutput(path); // before the work, not after it
            if (givenKnownAt is not null)
            {
                await NoteLatestEnrichmentsAsync(stderr, definition, "this snapshot").ConfigureAwait(false);
            }

            if (parse.GetValue(fromArchive) is { } archiveFrom)
            {
                await FromArchiveAsync(weft, definition, cut, givenKnownAt, ParseTime("--from-archive", archiveFrom), path, stdout, ct).ConfigureAwait(false);
                return;
            }

            var lake = await EnrichedLake.OpenAsync(weft.EnrichedTable(definition.Name), definition, ct).ConfigureAwait(false);
            var rows = await lake.ReadAsync(cut.FromMicros, cut.AsOfMicros, ct).ConfigureAwait(false);
            // With --known-at, enrichments as known then, like the events (the lake stores the latest
            // versions, which a snapshot as of a past time showed); without, as stored, as serving reads them.
            var enrichments = givenKnownAt is null || definition.Enrichments.IsDefaultOrEmpty ? null
                : (await SignalEnvironment.LoadAsync(weft, definition.Name, cancellationToken: ct).ConfigureAwait(false)).Enrichments;
            var sequences = SequenceBuilder.Snapshot(rows, definition, cut, enrichments);
            var state = await lake.GetStateAsync(ct).ConfigureAwait(false);
            var provenance = Provenance(definition, cut, state);
            provenance["weft.as_of"] = Timestamps.Format(cut.AsOfMicros);
            provenance["weft.known_at"] = Timestamps.Format(cut.KnownAtMicros);
            provenance[EnrichmentsKey] = givenKnownAt is null ? "latest" : "known_at";
            await SequenceFiles.WriteAsync(path, sequences, definition, provenance, pad: null, rows.NullableColumns, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync($"snapshot '{definition.Name}' as of {Timestamps.Format(asOfMicros)} (known at {Timestamps.Format(knownAtMicros)}): {sequences.RowCount:N0} users, {sequences.Elements.RowCount:N0} elements ({rows.BatchRows:N0} batch rows, {rows.StreamRows:N0} stream rows read) → {path}").ConfigureAwait(false);
            await NoteOtherDefinitionAsync(stderr, weft, definition, lake, state, rows.StreamRows, (cut.FromMicros, cut.AsOfMicros), ct).ConfigureAwait(false);
        }));
        return command;
    }

    /// <summary>
    /// <c>weft snapshot --from-archive</c>: the sequences built straight from the raw archives over
    /// [<paramref name="fromMicros"/>, as-of] (<see cref="SequenceBuild"/>), as the batch path over that
    /// range and then a snapshot of the enriched lake would give them.
    /// </summary>
    private static async Task FromArchiveAsync(WeftConfig weft, SignalDefinition definition, SequenceCut cut, long? givenKnownAt, long fromMicros, string path, TextWriter stdout, CancellationToken ct)
    {
        if (SequenceBuild.Unsupported(definition) is { } why)
        {
            throw new ArgumentException($"--from-archive cannot build '{definition.Name}': {why}; run weft batch, then weft snapshot without it");
        }

        if (fromMicros > cut.AsOfMicros)
        {
            throw new ArgumentException($"--from-archive ({Timestamps.Format(fromMicros)}) must not be after --as-of ({Timestamps.Format(cut.AsOfMicros)})");
        }

        var env = await SignalEnvironment.LoadAsync(weft, definition.Name, cancellationToken: ct).ConfigureAwait(false);
        var metadata = new Dictionary<string, string>
        {
            ["weft.signal"] = definition.Name,
            ["weft.fingerprint"] = SignalJsonWriter.Fingerprint(definition),
            ["weft.max_length"] = cut.MaxLength.ToString(CultureInfo.InvariantCulture),
            ["weft.source"] = "archive",
            ["weft.archive_from"] = Timestamps.Format(fromMicros),
            ["weft.as_of"] = Timestamps.Format(cut.AsOfMicros),
            ["weft.known_at"] = Timestamps.Format(cut.KnownAtMicros),
            [EnrichmentsKey] = givenKnownAt is null ? "latest" : "known_at",
        };
        var request = new SequenceBuildRequest(fromMicros, cut.AsOfMicros + 1, cut) { EnrichmentsKnownAtMicros = givenKnownAt ?? long.MaxValue };
        var result = await SequenceBuild.WriteAsync(env, request, path, metadata, null, ct).ConfigureAwait(false);
        await stdout.WriteLineAsync(
            $"snapshot '{definition.Name}' as of {Timestamps.Format(cut.AsOfMicros)} (known at {Timestamps.Format(cut.KnownAtMicros)}) from the raw archives since {Timestamps.Format(fromMicros)}: " +
            $"{result.Users:N0} users, {result.Elements:N0} elements ({result.EventsParsed:N0} events parsed, {result.Duplicates:N0} repeated deliveries dropped, {result.HotUserCapped:N0} over the hot-user cap, {result.DeadLetters:N0} unparsable, not recorded) → {path}").ConfigureAwait(false);
    }

    /// <summary>The tail recompute the stream owes the signal, or null; a record the stream did not write is a warning here (the command's work is done and written).</summary>
    private static async Task<(string Definition, BatchRequest Tail)?> OwedTailAsync(string table, string signal, TextWriter stderr, string warning, CancellationToken ct)
    {
        var (owed, problem) = await Weft.Streaming.Runtime.PendingTailFile.PeekAsync(table, signal, ct).ConfigureAwait(false);
        if (problem is not null)
        {
            await stderr.WriteLineAsync(warning + problem).ConfigureAwait(false);
        }

        return owed;
    }

    /// <summary>
    /// Stream rows the lake's newest stream commits wrote under another definition (one deployed since,
    /// no batch run over their buckets yet) are in the file as that definition computed them, while
    /// serving leaves them out: said, with the batch run that recomputes them.
    /// </summary>
    private static async Task NoteOtherDefinitionAsync(TextWriter stderr, WeftConfig weft, SignalDefinition definition, EnrichedLake lake, LakeState state, long streamRows, (long From, long To) window, CancellationToken ct)
    {
        string current = SignalJsonWriter.Fingerprint(definition);
        if (streamRows == 0)
        {
            return;
        }

        if (await OwedTailAsync(weft.EnrichedTable(definition.Name), definition.Name, stderr, "warning: ", ct).ConfigureAwait(false) is { } owed
            && owed.Tail.FromMicros <= window.To && window.From < owed.Tail.ToMicros)
        {
            var tail = owed.Tail;
            // The stream may have written under the current definition since: the record, not the lake's newest commit, says the tail is not recomputed yet.
            await stderr.WriteLineAsync(
                $"note: the stream's tail recompute of '{definition.Name}' (events streamed under an earlier definition) has not completed: this file holds those events as the earlier definition computed them (serving leaves them out); " +
                $"to have them as the current one computes them, run first: {Weft.Streaming.Runtime.SignalDefinitionChanged.BatchCommandFor(weft.ConfigPath, tail)}").ConfigureAwait(false);
            return;
        }

        if (await lake.LastStreamedUnderAsync(ct).ConfigureAwait(false) is not { } other || other == current)
        {
            return;
        }

        var changed = new Weft.Streaming.Runtime.SignalDefinitionChanged(definition.Name, other, current, state.SealedThroughMicros, definition.Lookback.Ticks / TimeSpan.TicksPerMicrosecond);
        await stderr.WriteLineAsync(
            $"note: the lake's newest stream rows were written by definition {Weft.Streaming.Runtime.SignalDefinitionChanged.Short(other)}, not the current {Weft.Streaming.Runtime.SignalDefinitionChanged.Short(current)}: " +
            $"this file holds them as that definition computed them (serving leaves them out); to have them as the current one computes them, run first: {Weft.Streaming.Runtime.SignalDefinitionChanged.BatchCommandFor(weft.ConfigPath, changed.TailRequest(DateTimeOffset.UtcNow))}").ConfigureAwait(false);
    }

    private static Command TrainingSetCommand(TextWriter stdout, TextWriter stderr)
    {
        var config = ConfigOption();
        var signal = SignalOption();
        var labels = new Option<string>("--labels") { Description = "Label file (Parquet, JSONL or CSV) with user_id and label_time columns, and any label columns (carried into the training set as they are)", Required = true };
        var mode = new Option<string>("--mode") { Description = "as-served (only what was ingested by label_time, enrichments as then known) or corrected (late events and corrections included)", Required = true };
        var output = new Option<string>("--out") { Description = "Output Parquet file", Required = true };
        var pad = new Option<int?>("--pad") { Description = "Pad (or cut) every sequence to exactly N elements, with a mask column" };
        var maxLength = new Option<int?>("--max-length") { Description = "Elements per example (default: the signal's max_length)" };
        var command = new Command("training-set", "For each label row, the sequence as it stood at label_time; point-in-time correct") { config, signal, labels, mode, output, pad, maxLength };
        command.SetAction((parse, ct) => RunAsync("training-set", stderr, async () =>
        {
            string modeText = parse.GetValue(mode)!;
            if (modeText is not ("as-served" or "corrected"))
            {
                throw new ArgumentException($"--mode must be as-served or corrected, not '{modeText}'");
            }

            if (Path.GetFullPath(parse.GetValue(output)!) == Path.GetFullPath(parse.GetValue(labels)!))
            {
                throw new ArgumentException($"--out '{parse.GetValue(output)}' is the --labels file: writing it would replace the labels");
            }

            SequenceFiles.CheckOutput(parse.GetValue(output)!);
            var weft = WeftConfig.Load(parse.GetValue(config)!);
            var (labelRows, users, times) = await Labels.ReadAsync(parse.GetValue(labels)!, ct).ConfigureAwait(false);
            bool asServed = modeText == "as-served";
            var env = await SignalEnvironment.LoadAsync(weft, parse.GetValue(signal)!, cancellationToken: ct).ConfigureAwait(false);
            var definition = env.Definition;
            if (asServed)
            {
                await NoteLatestEnrichmentsAsync(stderr, definition, "these as-served examples").ConfigureAwait(false);
            }

            int? maxElements = MaxLength(definition, parse.GetValue(maxLength));
            // The file puts these beside the label columns: a label column of the same name failed the
            // write at the very end with a bare "Field name 'length' appears more than once". Case aside
            // too: DuckDB and Spark match names without case, so 'EVENT_ID' renamed Weft's column.
            var added = new List<string> { SequenceFiles.LengthColumn, SequenceFiles.TruncatedColumn };
            if (parse.GetValue(pad) is not null)
            {
                added.Add(SequenceFiles.MaskColumn);
            }

            added.AddRange(definition.SequenceColumns.Select(c => c.Name));
            if (labelRows.Schema.FirstOrDefault(f => added.Contains(f.Name, StringComparer.OrdinalIgnoreCase)) is { } clash)
            {
                throw new ArgumentException($"label file '{parse.GetValue(labels)}': column '{clash.Name}' has the name of a column the training set adds ({string.Join(", ", added)}; names match whatever their case, as DuckDB and Spark read them); rename it in the label file");
            }

            var lake = await EnrichedLake.OpenAsync(weft.EnrichedTable(definition.Name), definition, ct).ConfigureAwait(false);
            long lookback = definition.Lookback.Ticks / TimeSpan.TicksPerMicrosecond;
            long min = times.Length == 0 ? 0 : times.Min() - lookback;
            long max = times.Length == 0 ? 0 : times.Max();
            var rows = await lake.ReadAsync(min, max, ct).ConfigureAwait(false);
            var state = await lake.GetStateAsync(ct).ConfigureAwait(false);
            var provenance = Provenance(definition, SequenceCut.For(definition, max, asServed ? max : long.MaxValue, maxElements), state);
            provenance["weft.mode"] = modeText;
            long examples = 0, elements = 0, empty = 0;
            async IAsyncEnumerable<SequenceTable> Parts()
            {
                // Part by part: each label repeats its user's history, so the whole set can be many times the lake rows.
                foreach (var part in SequenceBuilder.ForLabelsInParts(rows, definition, labelRows, users, times, asServed, env.Enrichments, maxElements))
                {
                    examples += part.RowCount;
                    elements += part.Elements.RowCount;
                    for (int i = 0; i < part.RowCount; i++)
                    {
                        empty += part.Length(i) == 0 ? 1 : 0;
                    }

                    yield return part;
                    await Task.Yield();
                }
            }

            // A padded embedding's fill is a zero vector as wide as the enrichment's vectors, also in row groups without a real one.
            var widths = parse.GetValue(pad) is null ? null : SequenceFiles.ListWidths(definition, env.Enrichments);
            await SequenceFiles.WriteAsync(parse.GetValue(output)!, labelRows.Schema, Parts(), definition, provenance, parse.GetValue(pad), rows.NullableColumns, widths, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync($"training set '{definition.Name}' ({modeText}): {examples:N0} examples, {elements:N0} elements{(parse.GetValue(pad) is { } width ? $" (the file pads or cuts each to {width}, with a mask)" : "")}, {empty:N0} with an empty sequence → {parse.GetValue(output)}").ConfigureAwait(false);
            await NoteOtherDefinitionAsync(stderr, weft, definition, lake, state, rows.StreamRows, (min, max), ct).ConfigureAwait(false);
        }));
        return command;
    }

    /// <summary>
    /// An enrichment whose join key the element does not carry cannot be re-read as known at a past time:
    /// the lake stores no key to look it up by, so its columns hold the versions the lake stored (the
    /// latest, corrections made after the label or known-at time included). A cut that promises versions
    /// as known then (an as-served training set, a snapshot with --known-at) says so, with the remedy,
    /// rather than hand over later versions as if they had been served.
    /// </summary>
    private static async Task NoteLatestEnrichmentsAsync(TextWriter stderr, SignalDefinition definition, string what)
    {
        foreach (var enrichment in definition.Enrichments)
        {
            var columns = enrichment.Columns.Where(c => definition.SequenceColumns.Any(f => f.Name == c)).ToList();
            if (columns.Count == 0 || definition.SequenceColumns.Any(f => f.Name == enrichment.On))
            {
                continue;
            }

            await stderr.WriteLineAsync(
                $"note: enrichment '{enrichment.Source}' joins on '{enrichment.On}', which the element of '{definition.Name}' does not carry, so in {what} " +
                $"{string.Join(", ", columns.Select(c => $"'{c}'"))} {(columns.Count == 1 ? "holds" : "hold")} the latest versions the lake stored, not those known then; " +
                $"add '{enrichment.On}' to the signal's element to have them as known then").ConfigureAwait(false);
        }
    }

    /// <summary>Which enrichment versions a snapshot file holds: <c>latest</c> (as the lake stored them) or <c>known_at</c>.</summary>
    private const string EnrichmentsKey = "weft.enrichments";

    /// <summary>
    /// Where a snapshot goes without <c>--out</c>: a folder per cut, so snapshots of different cuts never
    /// replace each other. <c>as_of=2026-11-08</c> for a midnight, else the instant to the microsecond
    /// it was given with (':' as '-', which folder names on every system can hold); a <c>known_at=</c>
    /// folder whenever <c>--known-at</c> was given (its enrichments are those known then, so it is another
    /// file than the as-of cut's, even at the same instant); <c>max_length=</c> when given.
    /// </summary>
    internal static string DefaultSnapshotPath(string sequencesTable, long asOfMicros, long? knownAtMicros, int? maxLength)
    {
        var path = Path.Combine(sequencesTable, $"as_of={FolderInstant(asOfMicros)}");
        if (knownAtMicros is { } knownAt)
        {
            path = Path.Combine(path, $"known_at={FolderInstant(knownAt)}");
        }

        if (maxLength is { } n)
        {
            path = Path.Combine(path, string.Create(CultureInfo.InvariantCulture, $"max_length={n}"));
        }

        return Path.Combine(path, "part-00000.parquet");

        static string FolderInstant(long micros)
        {
            string text = Timestamps.Format(micros); // yyyy-MM-ddTHH:mm:ss.ffffffZ
            return text[11..] == "00:00:00.000000Z" ? text[..10] : text[..19].Replace(':', '-') + (text[20..26] == "000000" ? "" : text[19..26].TrimEnd('0'));
        }
    }

    private static Dictionary<string, string> Provenance(SignalDefinition definition, SequenceCut cut, LakeState state) => new()
    {
        ["weft.signal"] = definition.Name,
        ["weft.fingerprint"] = SignalJsonWriter.Fingerprint(definition),
        ["weft.max_length"] = cut.MaxLength.ToString(CultureInfo.InvariantCulture),
        ["weft.lake_version"] = state.Version.ToString(CultureInfo.InvariantCulture),
        ["weft.sealed_through"] = state.SealedThroughMicros is { } s ? Timestamps.Format(s) : "",
    };

    /// <summary>--max-length checked as serving checks a read's limit: at least 1 and no more than the signal keeps.</summary>
    private static int? MaxLength(SignalDefinition definition, int? requested)
    {
        int kept = Math.Min(definition.MaxLength, definition.Budgets.MaxElements);
        return requested switch
        {
            null => null,
            < 1 => throw new ArgumentException($"--max-length {requested} must be at least 1"),
            _ when requested > kept => throw new ArgumentException($"--max-length {requested} exceeds the max_length of signal '{definition.Name}' ({kept})"),
            _ => requested,
        };
    }

    internal static long ParseTime(string option, string text)
    {
        if (Timestamps.TryParseInstant(text, out long micros))
        {
            return micros;
        }

        throw new ArgumentException($"{option} '{text}' is not an instant (ISO 8601, e.g. 2026-11-01 or 2026-11-01T06:00:00Z)");
    }

    private static async Task<int> RunAsync(string command, TextWriter stderr, Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
            return 0;
        }
        catch (Exception ex) when (ex is ConfigException or InputException or DefinitionException or DeltaException or IOException or ArgumentException or UnauthorizedAccessException or Weft.Parquet.ParquetFormatException or NotSupportedException)
        {
            await stderr.WriteLineAsync($"{command}: {CliMessages.Of(ex)}").ConfigureAwait(false);
            return 2;
        }
    }
}

/// <summary>
/// Progress on stderr: on a terminal one line redrawn in place, cut to the terminal's width (a wrapped
/// line cannot be redrawn); otherwise a line per chunk computed (chunks a run resumes past are counted
/// in the next line, not listed). The share done, the time taken and, from the pace of the chunks
/// computed so far, the time left.
/// </summary>
internal sealed class ProgressBar(TextWriter writer, TimeProvider? time = null, bool? interactive = null, int? width = null) : IProgress<BatchProgress>
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly bool _interactive = interactive ?? (!Console.IsErrorRedirected && ReferenceEquals(writer, Console.Error));
    private readonly long _started = (time ?? TimeProvider.System).GetTimestamp(); // made just before the run starts
    private int _lastLength;

    public void Report(BatchProgress value)
    {
        ArgumentNullException.ThrowIfNull(value);
        long now = _time.GetTimestamp();
        bool resumed = value.ChunksDone == value.ChunksSkipped; // this report is one more chunk skipped, none computed yet
        if (!_interactive && resumed && value.ChunksDone < value.ChunksTotal)
        {
            return;
        }

        var elapsed = _time.GetElapsedTime(_started, now);
        int computed = value.ChunksDone - value.ChunksSkipped;
        int left = value.ChunksTotal - value.ChunksDone;
        string eta = left == 0 ? "" : computed == 0 ? "  left: ?" : $"  left ~{Clock(elapsed * left / computed)}";
        int percent = value.ChunksTotal == 0 ? 100 : (int)(100L * value.ChunksDone / value.ChunksTotal);
        const int bar = 20;
        int filled = percent * bar / 100;
        string line = string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', bar - filled)}] {percent,3}% {value.ChunksDone}/{value.ChunksTotal} chunks{(value.ChunksSkipped > 0 ? $" ({value.ChunksSkipped} resumed)" : "")}  {Clock(elapsed)}{eta}  {value.EventsIn:N0} in, {value.EventsOut:N0} out, {value.DeadLetters:N0} dead  {value.LastChunk}");
        if (_interactive)
        {
            int columns = width ?? (Console.IsErrorRedirected ? 120 : Math.Max(40, Console.WindowWidth));
            if (line.Length >= columns)
            {
                line = line[..(columns - 1)];
            }

            // Spaces over what a longer line before left behind.
            writer.Write("\r" + line + new string(' ', Math.Max(0, _lastLength - line.Length)));
            _lastLength = line.Length;
        }
        else
        {
            writer.WriteLine(line);
        }
    }

    public void Finish()
    {
        if (_interactive)
        {
            writer.WriteLine();
        }
    }

    /// <summary>"42s", "3m05s", "2h07m": to the second, at least one ("left ~0ms" said nothing).</summary>
    internal static string Clock(TimeSpan span)
    {
        long seconds = Math.Max(1, (long)Math.Round(span.TotalSeconds));
        return seconds < 60 ? $"{seconds}s"
            : seconds < 3600 ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 60}m{seconds % 60:00}s")
            : string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600}h{seconds % 3600 / 60:00}m");
    }
}
