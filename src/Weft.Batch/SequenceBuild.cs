using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Weft.Batch.Sequences;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Engine.Sequences;
using Weft.Parquet;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>What a sequence build reads and cuts.</summary>
/// <param name="FromMicros">Start of the raw events read (rounded down to a bucket), as <see cref="BatchRequest.FromMicros"/>.</param>
/// <param name="ToMicros">End of the raw events read, exclusive (rounded up to a bucket).</param>
/// <param name="Cut">The sequences to cut: as of, known at, lookback, max length.</param>
public sealed record SequenceBuildRequest(long FromMicros, long ToMicros, SequenceCut Cut)
{
    /// <summary>
    /// Enrich at the versions known at this time (an as-served snapshot's <c>--known-at</c>); the default,
    /// <see cref="long.MaxValue"/>, takes the latest, as <c>weft batch</c> stores them. Only an enrichment
    /// whose join key is an element column is re-read so, as a snapshot of the enriched lake can.
    /// </summary>
    public long EnrichmentsKnownAtMicros { get; init; } = long.MaxValue;

    /// <summary>Buckets per chunk, as <see cref="BatchRequest.BucketsPerChunk"/>: deliveries of one event_id are deduplicated within a chunk.</summary>
    public int? BucketsPerChunk { get; init; }

    /// <summary>Worker threads (default: the processor count).</summary>
    public int? Parallelism { get; init; }

    /// <summary>Users per part handed to the writer (default 16,384, one row group).</summary>
    public int UsersPerPart { get; init; } = 16_384;

    /// <summary>
    /// Elements per part, at most (default 131,072; estimated from each user's events and the max length): a
    /// block of heavy users becomes several smaller parts, so the memory a part takes stays bounded.
    /// </summary>
    public int ElementsPerPart { get; init; } = 131_072;
}

/// <summary>What a sequence build did, with its phases.</summary>
/// <param name="EventsParsed">Raw events of the signal's types that passed the parse checks, in the range.</param>
/// <param name="DeadLetters">Raw events the parse checks rejected (not written anywhere by this build; <c>weft batch</c> records them).</param>
/// <param name="Duplicates">Repeated deliveries dropped by the dedup.</param>
/// <param name="ChainRejected">Events the executors rejected with an error (counted before the dedup, so a duplicate may count).</param>
/// <param name="HotUserCapped">Events over the hot-user cap.</param>
/// <param name="Users">Output rows: users with at least one element.</param>
/// <param name="Elements">Elements in all sequences.</param>
/// <param name="TruncatedUsers">Users with more events under the cut than the max length.</param>
public sealed record SequenceBuildResult(
    long EventsParsed, long DeadLetters, long Duplicates, long ChainRejected, long HotUserCapped, int Users, long Elements, int TruncatedUsers,
    IReadOnlyList<SequenceBuildPhase> Phases);

/// <summary>One phase of a sequence build: its wall time, and the process's peak working set when it ended.</summary>
public sealed record SequenceBuildPhase(string Name, double Seconds, long PeakWorkingSetBytes);

/// <summary>
/// Sequence snapshots straight from the raw archives: what <c>weft batch</c> over a range followed by
/// <c>weft snapshot</c> produces (the same parse checks, dedup, hot-user cap, the signal's executors,
/// enrichment at the latest version or those known at <see cref="SequenceBuildRequest.EnrichmentsKnownAtMicros"/>, <see cref="SequenceCut"/> and order), without writing and re-reading
/// the enriched table and without holding every event as objects.
/// </summary>
/// <remarks>
/// <para>Pipeline. (1) Ingest: the archive's row groups are read and parsed by <see cref="TableInputs"/>
/// and <see cref="RawEventParser"/>, run through the signal's event-type router (its filter, map and derive
/// executors) by the engine's <see cref="StageRunner"/>, and appended to an <see cref="EventStore"/>: per
/// event a user, two times, a type byte and the id's UTF-8 bytes, plus the executors' output columns for
/// the events they keep. Reading and parsing, and routing and appending, run as two stages.
/// (2) Dedup by event_id, per chunk, first arrival (see <see cref="Deduplication"/>). (3) A counting sort by
/// user. (4) Per user, in parallel over blocks of users: the hot-user cap, the cut, the order (event_time
/// desc, event_id asc in <see cref="string.CompareOrdinal(string, string)"/> order, then the copy
/// <see cref="MergePolicy"/> prefers), the first max_length kept. Only the kept events become objects: their
/// ids as strings, their enrichments joined by the engine's <see cref="EnrichExecutor"/>. (5) Parts are
/// written in order by <see cref="SequenceFiles"/> while the next ones are cut.</para>
/// <para>The router needs each output row's input row: it gets a copy of the batch whose
/// <c>ingest_time</c> (or <c>event_time</c>, or <c>user_id</c>: the first that no step reads) holds row
/// numbers — executors cannot write standard columns — and, unless a step reads it, a null event_id
/// (the ids live in the store). Signals with custom executors are not supported (see <see cref="Unsupported"/>),
/// except the bundled <c>hash_bucket</c>, which reads one column and adds one, row for row.</para>
/// <para>Same result as the enriched-table path, except for two cases the generic path itself leaves
/// to chance: identical deliveries (same id, ingest time and chunk) whose other columns differ, and an
/// event delivered again after more than the dedup memory (4M distinct ids) of other events in one chunk.</para>
/// </remarks>
public static class SequenceBuild
{
    private static readonly string[] Carriers = [StandardColumns.IngestTime, StandardColumns.EventTime, StandardColumns.UserId];

    /// <summary>Why <paramref name="signal"/> cannot be built this way, or null when it can.</summary>
    public static string? Unsupported(SignalDefinition signal)
    {
        var read = ReadColumns(signal, out bool custom);
        if (custom)
        {
            return "a custom executor may write any column, so rows cannot be traced through the executor chain";
        }

        return Carriers.All(read.Contains) ? "the executor chain reads ingest_time, event_time and user_id, so no column can carry row numbers" : null;
    }

    /// <summary>Builds the sequences and writes them to <paramref name="path"/> (a Parquet file, as <c>weft snapshot</c> writes).</summary>
    public static async Task<SequenceBuildResult> WriteAsync(
        SignalEnvironment env, SequenceBuildRequest request, string path, IReadOnlyDictionary<string, string> metadata, TimeProvider? time, CancellationToken cancellationToken)
    {
        var run = new Run(env, request, time ?? TimeProvider.System);
        await run.PrepareAsync(cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        await SequenceFiles.WriteAsync(path, Run.KeySchema, run.PartsAsync(cancellationToken), env.Definition, metadata, pad: null, nullable: null, cancellationToken).ConfigureAwait(false);
        run.Phase("select, enrich and write", clock);
        return run.Result();
    }

    /// <summary>Builds the sequences in memory (for tests and small inputs).</summary>
    public static async Task<(SequenceTable Table, SequenceBuildResult Result)> BuildAsync(
        SignalEnvironment env, SequenceBuildRequest request, TimeProvider? time, CancellationToken cancellationToken)
    {
        var run = new Run(env, request, time ?? TimeProvider.System);
        await run.PrepareAsync(cancellationToken).ConfigureAwait(false);
        var parts = new List<SequenceTable>();
        await foreach (var part in run.PartsAsync(cancellationToken).ConfigureAwait(false))
        {
            parts.Add(part);
        }

        return (Concat(parts, env.Definition), run.Result());
    }

    private static SequenceTable Concat(List<SequenceTable> parts, SignalDefinition signal)
    {
        if (parts.Count == 0)
        {
            return new SequenceTable(EventBatch.Empty(Run.KeySchema), [0], EventBatch.Empty(signal.SequenceColumns), []);
        }

        var offsets = new List<int> { 0 };
        var truncated = new List<bool>();
        foreach (var p in parts)
        {
            int shift = offsets[^1];
            for (int r = 0; r < p.RowCount; r++)
            {
                offsets.Add(shift + p.Offsets[r + 1]);
                truncated.Add(p.Truncated[r]);
            }
        }

        return new SequenceTable(
            EventBatch.Concat(Run.KeySchema, [.. parts.Select(p => p.Keys)]), [.. offsets],
            EventBatch.Concat(signal.SequenceColumns, [.. parts.Select(p => p.Elements)]), [.. truncated]);
    }

    /// <summary>Every column some step of some event type reads.</summary>
    private static HashSet<string> ReadColumns(SignalDefinition signal, out bool custom)
    {
        var read = new HashSet<string>(StringComparer.Ordinal);
        custom = false;
        foreach (var et in signal.EventTypes)
        {
            foreach (var step in et.Steps)
            {
                switch (step)
                {
                    case FilterStep f:
                        Walk(f.Where, read);
                        break;
                    case DeriveStep d:
                        Walk(d.Expr, read);
                        break;
                    case MapStep m:
                        foreach (var c in m.Columns)
                        {
                            read.Add(c.From);
                        }

                        break;
                    case CustomStep c when c.Executor == HashBucketExecutor.ExecutorName && c.Args.TryGetValue("column", out var column):
                        // Bundled, and known: it reads one column and adds its output, row for row.
                        read.Add(column);
                        break;
                    default:
                        custom = true;
                        break;
                }
            }
        }

        return read;

        static void Walk(Expr expr, HashSet<string> read)
        {
            switch (expr)
            {
                case ColumnExpr c:
                    read.Add(c.Name);
                    break;
                case CallExpr call:
                    foreach (var a in call.Args)
                    {
                        Walk(a, read);
                    }

                    break;
            }
        }
    }

    /// <summary>One build: its store, groups and counters.</summary>
    private sealed class Run
    {
        public static readonly ImmutableArray<FieldDefinition> KeySchema = [new FieldDefinition(StandardColumns.UserId, WeftType.Int64, Nullable: false)];

        private readonly SignalEnvironment _env;
        private readonly SignalDefinition _definition;
        private readonly SequenceBuildRequest _request;
        private readonly TimeProvider _time;
        private readonly int _parallelism;
        private readonly long _from;
        private readonly long _to;
        private readonly long _chunkMicros;
        private readonly string _carrier;
        private readonly bool _idRead;
        private readonly ImmutableArray<FieldDefinition> _elementSchema;
        private readonly ImmutableArray<FieldDefinition> _partSchema;
        private readonly List<SequenceBuildPhase> _phases = [];
        private readonly ConcurrentBag<Scratch> _scratch = [];
        private EventStore _store = null!;
        private UserGroups _groups = null!;
        private ExecutorContext _context = null!;
        private long _parsed;
        private long _deadLetters;
        private long _duplicates;
        private long _capped;
        private int _users;
        private long _elements;
        private int _truncated;

        public Run(SignalEnvironment env, SequenceBuildRequest request, TimeProvider time)
        {
            if (Unsupported(env.Definition) is { } reason)
            {
                throw new NotSupportedException($"signal '{env.Definition.Name}' cannot be built from raw events directly: {reason}; use `weft batch` and `weft snapshot`");
            }

            _env = env;
            _definition = env.Definition;
            _request = request;
            _time = time;
            _parallelism = Math.Max(1, request.Parallelism ?? Environment.ProcessorCount);
            long bucket = TimeBuckets.LengthMicros(_definition.Bucket);
            _from = TimeBuckets.StartOf(request.FromMicros, _definition.Bucket);
            _to = TimeBuckets.StartOf(request.ToMicros - 1, _definition.Bucket) + bucket;
            if (request.ToMicros <= request.FromMicros)
            {
                throw new ArgumentException($"the range end ({Timestamps.Format(request.ToMicros)}) must be after its start ({Timestamps.Format(request.FromMicros)})", nameof(request));
            }

            _chunkMicros = bucket * (request.BucketsPerChunk ?? (_definition.Bucket == TimeBucket.Hour ? 24 : 1));
            var read = ReadColumns(_definition, out _);
            _carrier = Carriers.First(c => !read.Contains(c));
            _idRead = read.Contains(StandardColumns.EventId);
            var needed = _definition.Element.Select(f => f.Name).Concat(_definition.Enrichments.Select(e => e.On)).ToHashSet(StringComparer.Ordinal);
            var routed = _env.Signal.StartRun(new ExecutorContext(_definition, time), new RunOptions { Assemble = false }).Stages.OfType<EventTypeRouter>().Single();
            _elementSchema = [.. routed.OutputSchema(_env.Signal.RawSchema).Where(f => !StandardColumns.IsInAll(f.Name) && needed.Contains(f.Name))];
            _partSchema = [.. StandardColumns.All, .. _elementSchema];
        }

        public void Phase(string name, Stopwatch clock)
        {
            using var process = Process.GetCurrentProcess();
            _phases.Add(new(name, clock.Elapsed.TotalSeconds, process.PeakWorkingSet64));
            clock.Restart();
        }

        public SequenceBuildResult Result() =>
            new(_parsed, _deadLetters, _duplicates, _context.DeadLetters.Count(d => d.Stage != "hot_user_cap"), _capped, _users, _elements, _truncated, _phases);

        /// <summary>Ingest, dedup and group: everything before the per-user selection.</summary>
        public async Task PrepareAsync(CancellationToken cancellationToken)
        {
            var clock = Stopwatch.StartNew();
            await IngestAsync(cancellationToken).ConfigureAwait(false);
            Phase("read, parse and run the executors", clock);
            _duplicates = Deduplication.Run(_store, _from, _chunkMicros, _parallelism);
            Phase("dedup", clock);
            _groups = UserGroups.Build(_store);
            Phase("group by user", clock);
        }

        private async Task IngestAsync(CancellationToken cancellationToken)
        {
            var signal = _env.Signal;
            var parser = new RawEventParser(signal, _time, BatchJob.HistoryParsing);
            _context = new ExecutorContext(_definition, _time);
            var run = signal.StartRun(_context, new RunOptions { Assemble = false });
            var router = run.Stages.OfType<EventTypeRouter>().Single();
            _store = new EventStore([.. _definition.EventTypes.Select(t => t.Name)], _elementSchema, await CapacityAsync(cancellationToken).ConfigureAwait(false));

            // Two stages, one per core: read and parse; route and append.
            var parsed = Channel.CreateBounded<EventBatch>(new BoundedChannelOptions(1) { SingleReader = true, SingleWriter = true });
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var token = cts.Token;
            var read = Task.Run(
                async () =>
                {
                    try
                    {
                        foreach (var archive in _env.Config.ReadableArchives())
                        {
                            var parts = TableInputs.ReadRawEventsAsync(archive, parser, signal.RawSchema, _from, _to, token).GetAsyncEnumerator(token);
                            await using (parts.ConfigureAwait(false))
                            {
                                // Read the next row group only once the router has taken the previous one: two in memory, not three.
                                while (await parsed.Writer.WaitToWriteAsync(token).ConfigureAwait(false) && await parts.MoveNextAsync().ConfigureAwait(false))
                                {
                                    var part = parts.Current;
                                    _deadLetters += part.DeadLetters.Count;
                                    if (part.Events.RowCount > 0)
                                    {
                                        _parsed += part.Events.RowCount;
                                        await parsed.Writer.WriteAsync(part.Events, token).ConfigureAwait(false);
                                    }
                                }
                            }
                        }

                        parsed.Writer.Complete();
                    }
                    catch (Exception e)
                    {
                        parsed.Writer.Complete(e);
                        throw;
                    }
                },
                token);
            var route = Task.Run(
                async () =>
                {
                    var carrierField = signal.RawSchema.First(f => f.Name == _carrier);
                    var idField = signal.RawSchema.First(f => f.Name == StandardColumns.EventId);
                    await foreach (var events in parsed.Reader.ReadAllAsync(token).ConfigureAwait(false))
                    {
                        int n = events.RowCount;
                        var numbers = new long[n];
                        for (int i = 0; i < n; i++)
                        {
                            numbers[i] = i;
                        }

                        var input = events.WithColumn(carrierField, new PrimitiveColumn<long>(carrierField.Type, numbers));
                        if (!_idRead)
                        {
                            input = input.WithColumn(idField, new StringColumn(new string?[n]));
                        }

                        var chained = await StageRunner.ExecuteAsync(router, input, _context, run.Options.Recovery, token).ConfigureAwait(false);
                        var carried = ((PrimitiveColumn<long>)chained[_carrier]).Values;
                        var rows = new int[chained.RowCount];
                        for (int k = 0; k < rows.Length; k++)
                        {
                            rows[k] = (int)carried[k];
                        }

                        _store.Append(events, chained, rows);
                    }
                },
                token);

            var all = Task.WhenAll(read, route);
            try
            {
                await all.ConfigureAwait(false);
            }
            catch
            {
                await cts.CancelAsync().ConfigureAwait(false);
                var root = all.Exception?.InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException and not ChannelClosedException);
                if (root is not null)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(root);
                }

                throw;
            }

            _store.Seal();
        }

        /// <summary>Rows in the archives' Parquet footers (an upper bound of what is stored), or 0 when unknown.</summary>
        private async Task<int> CapacityAsync(CancellationToken cancellationToken)
        {
            long rows = 0;
            foreach (var archive in _env.Config.ReadableArchives())
            {
                if (archive.Format != TableFormat.Parquet)
                {
                    return 0;
                }

                var files = File.Exists(archive.Path) ? [archive.Path]
                    : Directory.Exists(archive.Path) ? Directory.EnumerateFiles(archive.Path, "*.parquet", SearchOption.AllDirectories) : [];
                foreach (var file in files)
                {
                    var reader = await ParquetFileReader.OpenAsync(file, cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        rows += reader.RowCount;
                    }
                }
            }

            return (int)Math.Min(rows, Array.MaxLength - 1);
        }

        /// <summary>The sequences, one part per block of users, cut in parallel and yielded in user order.</summary>
        public async IAsyncEnumerable<SequenceTable> PartsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            // Parts: consecutive users, at most UsersPerPart of them and about ElementsPerPart elements.
            var bounds = new List<int> { 0 };
            int users = Math.Max(1, _request.UsersPerPart), elements = Math.Max(1, _request.ElementsPerPart), max = _request.Cut.MaxLength;
            long planned = 0;
            for (int g = 0; g < _groups.Count; g++)
            {
                int estimate = Math.Min(max, _groups.Starts[g + 1] - _groups.Starts[g]);
                if (g > bounds[^1] && (g - bounds[^1] >= users || planned + estimate > elements))
                {
                    bounds.Add(g);
                    planned = 0;
                }

                planned += estimate;
            }

            bounds.Add(_groups.Count);
            int count = bounds.Count - 1;
            var pending = Channel.CreateBounded<Task<SequenceTable>>(new BoundedChannelOptions(_parallelism) { SingleReader = true, SingleWriter = true });
            var producer = Task.Run(
                async () =>
                {
                    try
                    {
                        for (int p = 0; p < count; p++)
                        {
                            int first = bounds[p];
                            int last = bounds[p + 1];
                            await pending.Writer.WriteAsync(Task.Run(() => BuildPartAsync(first, last, cancellationToken), cancellationToken), cancellationToken).ConfigureAwait(false);
                        }

                        pending.Writer.Complete();
                    }
                    catch (Exception e)
                    {
                        pending.Writer.Complete(e);
                    }
                },
                cancellationToken);

            await foreach (var task in pending.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                var part = await task.ConfigureAwait(false);
                if (part.RowCount > 0)
                {
                    yield return part;
                }
            }

            await producer.ConfigureAwait(false);
        }

        private async Task<SequenceTable> BuildPartAsync(int firstGroup, int lastGroup, CancellationToken cancellationToken)
        {
            if (!_scratch.TryTake(out var s))
            {
                s = new Scratch();
            }

            try
            {
                s.Clear();
                var cut = _request.Cut;
                for (int g = firstGroup; g < lastGroup; g++)
                {
                    var rows = _groups.RowsOf(g);
                    int before = s.Picked.Count;
                    bool truncated = Select(rows, cut, s);
                    if (s.Picked.Count > before)
                    {
                        s.Users.Add(_groups.Users[g]);
                        s.Offsets.Add(s.Picked.Count);
                        s.Truncated.Add(truncated);
                    }
                }

                Interlocked.Add(ref _users, s.Users.Count);
                Interlocked.Add(ref _elements, s.Picked.Count);
                int truncatedUsers = 0;
                foreach (bool t in s.Truncated)
                {
                    truncatedUsers += t ? 1 : 0;
                }

                Interlocked.Add(ref _truncated, truncatedUsers);
                return new SequenceTable(
                    new EventBatch(KeySchema, [new PrimitiveColumn<long>(WeftType.Int64, [.. s.Users])]),
                    [.. s.Offsets],
                    await ElementsAsync(s.Picked, cancellationToken).ConfigureAwait(false),
                    [.. s.Truncated]);
            }
            finally
            {
                _scratch.Add(s);
            }
        }

        /// <summary>
        /// One user's sequence under <paramref name="cut"/>, appended to the scratch's picks: the rows
        /// <c>SequenceIndex.Select</c> would pick from the enriched table. Returns whether it was truncated.
        /// </summary>
        private bool Select(ReadOnlySpan<int> rows, in SequenceCut cut, Scratch s)
        {
            var store = _store;
            var flags = store.Flags;
            int cap = _definition.Budgets.HotUserMaxEventsPerHour;
            if (rows.Length > cap)
            {
                _ = Interlocked.Add(ref _capped, ApplyHotUserCap(rows, cap, s));
            }

            // Candidates: kept by the executors, not capped, inside the cut.
            var keys = s.Keys(rows.Length);
            int n = 0;
            bool repeated = false;
            foreach (int r in rows)
            {
                if (store.ElementRows[r] < 0 || (flags[r] & EventStore.Capped) != 0 || !cut.Admits(store.Times[r], store.Ingest[r]))
                {
                    continue;
                }

                repeated |= (flags[r] & EventStore.RepeatedAcrossChunks) != 0;
                keys[n++] = new SortKey(store.Times[r], EventIds.Prefix(store.Id(r)), store.Ingest[r], r);
            }

            if (n == 0)
            {
                return false;
            }

            var candidates = keys.AsSpan(0, n);
            candidates.Sort(new SequenceOrder(store));
            HashSet<string>? seen = null;
            int kept = 0;
            int previous = -1;
            foreach (var key in candidates)
            {
                int row = key.Row;
                if (previous >= 0 && key.Time == store.Times[previous] && store.Id(row).SequenceEqual(store.Id(previous)))
                {
                    continue; // another copy of the event just kept
                }

                if (repeated && kept > 0)
                {
                    // An id kept in two chunks (another event_time): the newest copy counts, as in SequenceIndex.Select.
                    seen ??= [store.IdString(previous)];
                    if (!seen.Add(store.IdString(row)))
                    {
                        continue;
                    }
                }

                if (kept == cut.MaxLength)
                {
                    return true;
                }

                s.Picked.Add(row);
                kept++;
                previous = row;
            }

            return false;
        }

        /// <summary>
        /// The hot-user cap of one user (<c>HotUserCapExecutor</c>): in each hour of event time, deliveries
        /// after the first <paramref name="cap"/> in arrival order (ingest time, event_id) are flagged. Returns how many.
        /// </summary>
        private int ApplyHotUserCap(ReadOnlySpan<int> rows, int cap, Scratch s)
        {
            const long hourMicros = 3_600_000_000L;
            var store = _store;
            var hours = s.Hours(rows.Length);
            var members = s.Members(rows.Length);
            for (int i = 0; i < rows.Length; i++)
            {
                long t = store.Times[rows[i]];
                hours[i] = Math.DivRem(t, hourMicros, out long rem) - (rem < 0 ? 1 : 0);
                members[i] = rows[i];
            }

            var h = hours.AsSpan(0, rows.Length);
            var m = members.AsSpan(0, rows.Length);
            h.Sort(m);
            int capped = 0;
            for (int i = 0; i < h.Length;)
            {
                int j = i + 1;
                while (j < h.Length && h[j] == h[i])
                {
                    j++;
                }

                if (j - i > cap)
                {
                    var hour = m[i..j];
                    hour.Sort(new ArrivalOrder(store));
                    foreach (int r in hour[cap..])
                    {
                        store.Flags[r] |= EventStore.Capped;
                        capped++;
                    }
                }

                i = j;
            }

            return capped;
        }

        /// <summary>The picked rows as element columns: standard columns from the store, executor outputs gathered, enrichments joined.</summary>
        private async Task<EventBatch> ElementsAsync(List<int> picked, CancellationToken cancellationToken)
        {
            var store = _store;
            int k = picked.Count;
            var ids = new string?[k];
            var users = new long[k];
            var types = new string?[k];
            var times = new long[k];
            var ingest = new long[k];
            var elementRows = new int[k];
            for (int i = 0; i < k; i++)
            {
                int r = picked[i];
                ids[i] = store.IdString(r);
                users[i] = store.Users[r];
                types[i] = store.TypeNames[store.Types[r]];
                times[i] = store.Times[r];
                ingest[i] = store.Ingest[r];
                elementRows[i] = store.ElementRows[r];
            }

            var columns = new Column[_partSchema.Length];
            columns[0] = new StringColumn(ids);
            columns[1] = new PrimitiveColumn<long>(WeftType.Int64, users);
            columns[2] = new StringColumn(types);
            columns[3] = new PrimitiveColumn<long>(WeftType.Timestamp, times);
            columns[4] = new PrimitiveColumn<long>(WeftType.Timestamp, ingest);
            for (int c = 0; c < _elementSchema.Length; c++)
            {
                columns[5 + c] = store.Elements.Columns[c].Gather(elementRows);
            }

            var batch = new EventBatch(_partSchema, columns);
            foreach (var enrichment in _definition.Enrichments)
            {
                // The engine's enrichment stage, on the kept events only, at the versions a snapshot of
                // the enriched lake re-reads: known at the cut when the element carries the join key,
                // else the latest, which is all the lake stores.
                long knownAt = _definition.SequenceColumns.Any(f => f.Name == enrichment.On) ? _request.EnrichmentsKnownAtMicros : long.MaxValue;
                var enrich = new EnrichExecutor(enrichment, _env.Enrichments[enrichment.Source], knownAt);
                batch = await enrich.ExecuteAsync(batch, _context, cancellationToken).ConfigureAwait(false);
            }

            return batch.Project(_definition.SequenceColumns);
        }
    }

    /// <summary>Per-worker buffers, reused across parts.</summary>
    private sealed class Scratch
    {
        private SortKey[] _keys = new SortKey[1024];
        private long[] _hours = [];
        private int[] _members = [];

        public List<int> Picked { get; } = [];

        public List<long> Users { get; } = [];

        public List<int> Offsets { get; } = [0];

        public List<bool> Truncated { get; } = [];

        public void Clear()
        {
            Picked.Clear();
            Users.Clear();
            Offsets.Clear();
            Offsets.Add(0);
            Truncated.Clear();
        }

        public SortKey[] Keys(int n) => _keys.Length >= n ? _keys : _keys = new SortKey[Math.Max(n, _keys.Length * 2)];

        public long[] Hours(int n) => _hours.Length >= n ? _hours : _hours = new long[Math.Max(n, _hours.Length * 2)];

        public int[] Members(int n) => _members.Length >= n ? _members : _members = new int[Math.Max(n, _members.Length * 2)];
    }

    /// <summary>A candidate element: its sort key inline (time, first id bytes, ingest time) and its store row.</summary>
    private readonly record struct SortKey(long Time, ulong Prefix, long Ingest, int Row);

    /// <summary>
    /// <c>SequenceIndex</c>'s order: event_time descending, event_id ascending (ordinal), then the copy the
    /// merge policy prefers between two batch copies (the earliest ingested), then store order.
    /// </summary>
    private readonly struct SequenceOrder(EventStore store) : IComparer<SortKey>
    {
        public int Compare(SortKey a, SortKey b)
        {
            if (a.Time != b.Time)
            {
                return a.Time > b.Time ? -1 : 1;
            }

            int c = EventIds.ComparePrefixes(a.Prefix, b.Prefix);
            if (c == 0)
            {
                c = EventIds.Compare(store.Id(a.Row), store.Id(b.Row));
            }

            if (c != 0)
            {
                return c;
            }

            if (a.Ingest != b.Ingest)
            {
                return MergePolicy.PrefersOver(MergePolicyKind.BatchSealsStreamFills, true, a.Ingest, true, b.Ingest) ? -1 : 1;
            }

            return a.Row.CompareTo(b.Row);
        }
    }

    /// <summary>Arrival order: ingest time, then event_id (ordinal), as <c>weft batch</c> orders a chunk before dedup and the cap.</summary>
    private readonly struct ArrivalOrder(EventStore store) : IComparer<int>
    {
        public int Compare(int a, int b)
        {
            int c = store.Ingest[a].CompareTo(store.Ingest[b]);
            if (c == 0)
            {
                c = EventIds.Compare(store.Id(a), store.Id(b));
            }

            return c != 0 ? c : a.CompareTo(b);
        }
    }
}
