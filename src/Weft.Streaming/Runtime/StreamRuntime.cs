using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Engine.Observability;
using Weft.Online;
using Weft.Storage;

namespace Weft.Streaming.Runtime;

/// <summary>A partition whose offsets started over (<see cref="StreamRuntime.StartedOver"/>): the tables held it through <paramref name="HeldThrough"/>, the source ends at <paramref name="End"/>.</summary>
public sealed record OffsetsStartedOver(string Partition, long HeldThrough, long End)
{
    /// <summary>What an operator is told, <paramref name="source"/> being the source's name.</summary>
    public string Describe(string source) =>
        $"the lake held partition '{Partition}' through offset {HeldThrough}, but {source} ends at offset {End}: it is another log than the one the lake was written from (replaced, or a new source.path), so the partition's offsets start over; the events of the earlier log stay in the lake";
}

/// <summary>
/// The first record a runtime read whose key is not its user_id as decimal text (<see cref="StreamRuntime.FirstKeyMismatch"/>).
/// Such a producer's events are stored all the same, but a user's events may then come through several
/// partitions, read by several consumers in no one order.
/// </summary>
/// <param name="Key">The record's key as text (invalid UTF-8 replaced), empty for a record without one.</param>
public sealed record KeyMismatch(string Partition, long Offset, string Key, long UserId)
{
    /// <summary>What an operator is told.</summary>
    public string Describe() =>
        string.Create(CultureInfo.InvariantCulture, $"{Partition}@{Offset} is {(Key.Length == 0 ? "not keyed" : $"keyed '{DisplayText.Escaped(DisplayText.Cut(Key))}'")}, but its user_id is {UserId}: a producer keys otherwise than by user_id (as decimal text), so a user's events may come through several partitions in no one order; such records are counted in weft_stream_key_mismatch_total");
}

/// <summary>
/// A signal whose definition changed since the stream last wrote it (<see cref="StreamRuntime.DefinitionsChanged"/>):
/// the online store's elements of <paramref name="StreamedUnder"/> are not served under <paramref name="Now"/>
/// (another fingerprint), so the events streamed after the batch path's last sealed bucket are missing
/// from served sequences until a batch run recomputes them (<see cref="StreamRuntime.TailRecomputes"/>).
/// </summary>
/// <param name="LookbackMicros">The signal's lookback: with no bucket sealed, the tail is the lookback before now (what reads serve).</param>
public sealed record SignalDefinitionChanged(string Signal, string StreamedUnder, string Now, long? SealedThroughMicros, long LookbackMicros)
{
    /// <summary>What an operator is told, with the command that brings the events back: <paramref name="tail"/>.</summary>
    public string Describe(string config, BatchRequest tail)
    {
        ArgumentNullException.ThrowIfNull(tail);
        string from = SealedThroughMicros is null && tail.FromMicros == tail.ToMicros - LookbackMicros
            ? $"{Timestamps.Format(tail.FromMicros)} (the lookback before now; no bucket is sealed)"
            : Timestamps.Format(tail.FromMicros);
        return $"signal '{Signal}' is now definition {Short(Now)}, but the stream last wrote it under {Short(StreamedUnder)}: the events it streamed since {from} " +
            $"(past the last sealed batch bucket) are not served (the online store's elements of another definition are skipped) until a batch run recomputes them: " +
            BatchCommandFor(config, tail);
    }

    /// <summary>The batch run over the streamed tail as of <paramref name="now"/>: from the last sealed bucket (or the lookback before now) to now.</summary>
    public BatchRequest TailRequest(DateTimeOffset now)
    {
        long to = Timestamps.ToMicros(now);
        long from = SealedThroughMicros ?? to - LookbackMicros;
        return new BatchRequest(Signal, from, Math.Max(to, from + 1));
    }

    /// <summary>The command that runs <paramref name="tail"/> (its signal and range): the same range, so it resumes a run of it that stopped.</summary>
    public static string BatchCommandFor(string config, BatchRequest tail)
    {
        ArgumentNullException.ThrowIfNull(tail);
        return $"weft batch --config {config} --signal {tail.Signal} --from {Timestamps.Format(tail.FromMicros)} --to {Timestamps.Format(tail.ToMicros)}";
    }

    /// <summary>A fingerprint's first 12 characters (a commit parameter another tool wrote may be shorter).</summary>
    public static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] : fingerprint;
}

/// <summary>
/// The streaming path (DESIGN.md, "Runtimes"): reads raw events from a source in micro-batches, runs
/// every configured signal's executors (the same compiled chain the batch path runs), appends the
/// enriched elements to the online store (idempotent), and every <see cref="StreamOptions.FlushInterval"/>
/// writes them to the <c>path=stream</c> buckets of <c>enriched/&lt;signal&gt;</c> with the source offsets
/// they cover, then commits those offsets to the source. At-least-once delivery plus idempotent writes:
/// after a crash the source replays from its committed offsets, the online store collapses the
/// duplicates, and records the lake already holds (by the offsets its last stream commit recorded) are
/// not written again. Bad events go to dead-letter tables, late ones to the late-event ledger.
/// </summary>
/// <remarks>
/// <para><b>Pipelined.</b> A micro-batch is prepared (routed, parsed, run through the executors, encoded)
/// on the caller's loop, and its online append runs in the background while the next micro-batch is
/// read and prepared: on two cores the store's writes overlap the parsing. At most one append is in
/// flight, so appends stay in order. The lake flush runs in the background too, so a flush never holds
/// up the micro-batches behind it.</para>
/// <para><b>Offsets.</b> A batch's offsets become <i>appended</i> when its online append returns: its
/// elements are readable, and durable at the next store sync (<see cref="OnlineDurability.Deferred"/>:
/// one disk sync per flush, not one per micro-batch). A flush first waits for the append in flight,
/// then takes every pending row (all of them appended) with the appended offsets; in the background it
/// syncs the online store and writes the lake, and once that is done the next step commits those
/// offsets to the source. A batch whose append failed or was cancelled never reaches the appended
/// offsets: its records are read again after a restart, as are those a power cut took from the store
/// before its sync.</para>
/// </remarks>
public sealed partial class StreamRuntime : IAsyncDisposable
{
    /// <summary>Dead letters no signal could own (malformed JSON, no user_id, an event type no signal includes).</summary>
    public const string UnroutedDeadLetters = "_stream";

    private readonly WeftConfig _config;
    private readonly IEventSource _source;
    private readonly bool _checkKeys; // the embedded log has one partition: no key decides where a user's events go
    private readonly IOnlineStore _store;
    private readonly StreamOptions _options;
    private readonly TimeProvider _time;
    private readonly List<SignalStream> _signals;
    private readonly EventTable _unrouted;
    private readonly Dictionary<string, long> _unroutedHeld; // offsets whose dead letters _stream already holds (a replay after a crash)
    private readonly Dictionary<string, long> _processed = new(StringComparer.Ordinal);
    private volatile bool _awaitingAssignment; // set on the source's poll thread, read by the loop's caller
    private readonly Dictionary<string, long> _appended = new(StringComparer.Ordinal); // per partition, the newest offset appended online (durable at the next store sync)
    private List<DeadLetter> _unroutedPending = [];
    private Task? _appending; // the newest append in flight; it starts once the one before it is done
    private Task? _appendingBefore; // the one before it, while the newest may still be waiting for it
    private Task<Flush>? _flushing;
    private Exception? _failure; // an append or a lake flush that did not complete: no step runs after it
    private bool _flushFailed; // ... and when a flush's writes failed, no flush either
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _knownTypes;
    private readonly HashSet<string> _otherSignalsTypes; // types only signals of the config this runtime does not run include
    private readonly byte[][] _userAliases; // raw property names some event type maps to user_id
    private readonly byte[][] _typeAliases; // ... and to event_type
    private readonly List<RawRecord> _routedRaw = [];
    private readonly SignalTypeFilter? _typeFilter; // null with one signal (its parser is the filter) or more than the filter tells apart
    private readonly List<RawRecord>[] _signalRecords = []; // with the filter, per signal, the records it gives the signal's parser ...
    private readonly List<int>[] _signalRows = []; // ... and their indexes in the batch
    private ulong[] _signalsOf = []; // per record of the batch, the filter's answer
    private readonly List<SourceRecord> _routedSources = [];
    private readonly RawArchive? _archive;
    private long _archiveCommittedAt = long.MinValue; // µs, when the last archive file was committed
    private long _lastFlush;
    private long _lastTrim;
    private long _lastRefresh;
    private long _lastCompact;
    private long _lastVacuum;
    private Task? _maintaining; // the background maintenance in flight: a compaction, a vacuum, or both
    private readonly Dictionary<string, DeltaTable> _vacuumed = new(StringComparer.Ordinal); // kept open: a vacuum replays only the commits since the last one's horizon
    private readonly CancellationTokenSource _stopping = new(); // cancels the background maintenance at dispose
    private readonly SemaphoreSlim _turn = new(1, 1); // held by a step, a flush, or a rebalance the source waits on

    private StreamRuntime(WeftConfig config, IEventSource source, IOnlineStore store, StreamOptions options, TimeProvider time, List<SignalStream> signals, HashSet<string> otherSignalsTypes, EventTable unrouted, Dictionary<string, long> unroutedHeld, RawArchive? archive)
    {
        _otherSignalsTypes = otherSignalsTypes;
        _unroutedHeld = unroutedHeld;
        _config = config;
        _source = source;
        _checkKeys = source is not Embedded.EmbeddedLogSource;
        _store = store;
        _options = options;
        _time = time;
        _signals = signals;
        _unrouted = unrouted;
        _archive = archive;
        if (_archive is not null)
        {
            // At 0 from the start, so a rate over them has a first sample; absent without an archive.
            Metrics.Count("weft_stream_archive_records_total", ArchiveRecordsHelp, 0);
            Metrics.Count("weft_stream_archive_bytes_total", ArchiveBytesHelp, 0);
            Metrics.Count("weft_stream_archive_files_total", ArchiveFilesHelp, 0);
        }

        _knownTypes = signals.SelectMany(s => s.Env.Definition.EventTypes.Select(t => t.Name)).ToHashSet(StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
        _userAliases = Aliases(signals, StandardColumns.UserId);
        _typeAliases = Aliases(signals, StandardColumns.EventType);
        if (signals.Count is > 1 and <= SignalTypeFilter.MaxSignals)
        {
            _typeFilter = new SignalTypeFilter(
                [.. signals.Select(s => s.Env.Definition.EventTypes.Select(t => t.Name))],
                _typeAliases.Select(Encoding.UTF8.GetString));
            _signalRecords = [.. signals.Select(_ => new List<RawRecord>())];
            _signalRows = [.. signals.Select(_ => new List<int>())];
        }

        _lastFlush = _lastTrim = _lastRefresh = _lastCompact = _lastVacuum = time.GetTimestamp();
        // Before the handler: an assignment's refresh must not change the offsets while they are copied here.
        source.SetHeldOffsets(HeldOffsets());
        source.SetRebalanceHandler(OnRebalanceAsync);
        foreach (var s in signals)
        {
            Metrics.Gauge("weft_stream_recalled_events", "Stored stream events whose ids and counts a signal took back into its dedup window and hot-user cap at start", s.Recalled, ("signal", s.Env.Definition.Name));
            Metrics.Gauge("weft_stream_recall_seconds", "How long a signal's recall of stored stream events took at start", s.RecallTime.TotalSeconds, ("signal", s.Env.Definition.Name));
        }
    }

    public WeftMetrics Metrics { get; } = new();

    private readonly Lock _backlogGate = new();
    private readonly HashSet<string> _backlogPartitions = new(StringComparer.Ordinal);
    private const string PartitionLagHelp = "Records the source holds beyond those the runtime has read, by partition";

    private const string ArchiveRecordsHelp = "Records committed to the stream's raw archive ($.source.archive), counted when a flush's file is durable";
    private const string ArchiveBytesHelp = "Bytes of the files committed to the stream's raw archive";
    private const string ArchiveFilesHelp = "Files committed to the stream's raw archive (one per flush that read records)";

    /// <summary>
    /// Sets the source's lag gauges from <see cref="IEventSource.Backlog"/>: <c>weft_stream_lag_records</c>
    /// (all partitions) and <c>weft_stream_partition_lag_records{partition}</c> (0 for a partition no
    /// longer reported, e.g. after a rebalance). Meant for scrape time, from any thread; the loop does
    /// not pay for it.
    /// </summary>
    public void RefreshLag()
    {
        // Read at scrape time, like the lag: a stream whose commits are not being made replays more on every restart.
        Metrics.Gauge("weft_stream_commits_not_made", "Source commits not made since the stream started (a Kafka group rebalancing, or its coordinator unreachable); each is covered by the next one made", _source.CommitsNotMade);
        var backlog = _source.Backlog();
        lock (_backlogGate)
        {
            long total = 0;
            foreach (var (partition, records) in backlog)
            {
                Metrics.Gauge("weft_stream_partition_lag_records", PartitionLagHelp, records, ("partition", partition));
                total += records;
            }

            foreach (var gone in _backlogPartitions)
            {
                if (!backlog.ContainsKey(gone))
                {
                    Metrics.Gauge("weft_stream_partition_lag_records", PartitionLagHelp, 0, ("partition", gone));
                }
            }

            _backlogPartitions.UnionWith(backlog.Keys);
            Metrics.Gauge("weft_stream_lag_records", "Records the source holds beyond those the runtime has read", total);
        }
    }

    /// <summary>The signals this runtime runs.</summary>
    public IReadOnlyList<string> Signals => _signals.Select(s => s.Env.Definition.Name).ToList();

    /// <summary>Records read from the source since start.</summary>
    public long RecordsIn { get; private set; }

    /// <summary>
    /// The folder of the stream's raw archive (<c>$.source.archive</c>), or null when the stream archives
    /// nothing. What it committed since start is in <c>weft_stream_archive_records_total</c>, <c>weft_stream_archive_bytes_total</c>
    /// and <c>weft_stream_archive_files_total</c>.
    /// </summary>
    public string? ArchiveFolder => _archive?.Folder;

    /// <summary>The time (µs since the epoch, the flush's) of the last file committed to the raw archive; null before the first, or without an archive.</summary>
    public long? ArchiveCommittedAtMicros => Interlocked.Read(ref _archiveCommittedAt) is var at && at != long.MinValue ? at : null;

    /// <summary>
    /// True from a rebalance's revoke until its assignment has been taken in: the source reads nothing
    /// meanwhile, but the group is about to hand this runtime partitions (perhaps a dead member's), so
    /// a caller waiting for the stream to go idle must not take the silence for it.
    /// </summary>
    public bool AwaitingAssignment => _awaitingAssignment;

    /// <summary>Why the last background compaction of a table failed (null when none has); the stream kept running.</summary>
    public Exception? LastCompactionFailure { get; private set; }

    /// <summary>Why the last vacuum of a table failed (null when none has); the stream kept running.</summary>
    public Exception? LastVacuumFailure { get; private set; }

    /// <summary>Loads the signals (all in the config's signal folder, or <paramref name="signals"/>) and the lake state.</summary>
    public static Task<StreamRuntime> CreateAsync(
        WeftConfig config, IEventSource source, IOnlineStore store, IReadOnlyList<string>? signals = null, StreamOptions? options = null,
        TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        return CreateAsync(config, config.LoadSignals(ExecutorRegistry.CreateDefault().Contains), source, store, signals, options, time, cancellationToken);
    }

    /// <summary>
    /// A runtime of every signal in <paramref name="configured"/>, the definitions a process has already
    /// read from <c>signals</c> (<see cref="WeftConfig.LoadSignals"/>): <c>weft serve</c>'s, so that its
    /// reads and its stream run one definition of each signal, whatever a compile writes meanwhile.
    /// </summary>
    public static Task<StreamRuntime> CreateForAsync(
        WeftConfig config, IReadOnlyList<SignalDefinition> configured, IEventSource source, IOnlineStore store, StreamOptions? options = null,
        TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(configured);
        return CreateAsync(config, configured, source, store, null, options, time, cancellationToken);
    }

    private static async Task<StreamRuntime> CreateAsync(
        WeftConfig config, IReadOnlyList<SignalDefinition> configured, IEventSource source, IOnlineStore store, IReadOnlyList<string>? signals, StreamOptions? options,
        TimeProvider? time, CancellationToken cancellationToken)
    {
        options ??= new StreamOptions();
        options.Validate();
        time ??= TimeProvider.System;
        var registry = ExecutorRegistry.CreateDefault();
        var names = signals ?? configured.Select(s => s.Name).ToList();
        var running = names.ToHashSet(StringComparer.Ordinal);
        var otherSignalsTypes = configured.Where(s => !running.Contains(s.Name)).SelectMany(s => s.EventTypes).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        otherSignalsTypes.ExceptWith(configured.Where(s => running.Contains(s.Name)).SelectMany(s => s.EventTypes).Select(t => t.Name));
        var streams = new List<SignalStream>();
        foreach (var name in names)
        {
            // The definitions read above, not the files again: a compile landing between two reads
            // gave the runtime and the routing (or serving) different definitions of one signal.
            var definition = configured.FirstOrDefault(s => s.Name == name)
                ?? throw new ConfigException(config.ConfigPath, [new DefinitionProblem("--signal", $"no signal '{name}' in '{config.Signals}'", $"known: {string.Join(", ", configured.Select(s => s.Name))}")]);
            var env = await SignalEnvironment.LoadAsync(config, definition, registry, cancellationToken).ConfigureAwait(false);
            streams.Add(await SignalStream.OpenAsync(config, env, options.LakeRowGroupSize, time, cancellationToken).ConfigureAwait(false));
        }

        var unrouted = await DeadLetterTable.OpenAsync(config.DeadLetterTable(UnroutedDeadLetters), cancellationToken).ConfigureAwait(false);
        var unroutedHeld = await HeldOffsetsAsync(unrouted, cancellationToken).ConfigureAwait(false);
        var startedOver = await StartOverReplacedPartitionsAsync(source, streams, unrouted, unroutedHeld,
            configured.Where(s => !running.Contains(s.Name)).Select(s => s.Name), config, cancellationToken).ConfigureAwait(false);
        var archive = config.Source.Archive is { } folder ? RawArchive.Open(folder, time) : null;
        return new StreamRuntime(config, source, store, options, time, streams, otherSignalsTypes, unrouted, unroutedHeld, archive)
        {
            StartedOver = startedOver,
            DefinitionsChanged = [.. streams.Select(s => s.DefinitionChanged).OfType<SignalDefinitionChanged>()],
            TailRecomputes = [.. streams.Select(s => s.TailRecompute).OfType<TailRecompute>()],
        };
    }

    /// <summary>
    /// Signals whose definition is not the one the stream last wrote them under (a deployment since):
    /// their streamed tail is not served until a batch run recomputes it (<see cref="SignalDefinitionChanged.Describe"/>).
    /// </summary>
    public IReadOnlyList<SignalDefinitionChanged> DefinitionsChanged { get; private init; } = [];

    /// <summary>
    /// The tail recomputes this runtime's signals are owed (<see cref="TailRecompute"/>): one per signal
    /// whose definition changed since the stream last wrote it, or whose recompute an earlier process
    /// recorded and did not complete. Each is recorded in the signal's table until it completes
    /// (<see cref="RecomputeTailAsync"/>), so a process that stops first leaves it to the next.
    /// </summary>
    public IReadOnlyList<TailRecompute> TailRecomputes { get; private init; } = [];

    /// <summary>
    /// Runs one of <see cref="TailRecomputes"/>: the batch run over the signal's streamed tail under the
    /// definition this runtime runs. Reads serve its rows beside the stream's new ones, so the sequences
    /// are whole again without an operator. It runs beside the stream (it replaces <c>path=batch</c>
    /// buckets, the stream appends to <c>path=stream</c>) and is a batch run like any: resumable, stopped
    /// by <paramref name="cancellationToken"/>. Once it completes its record is cleared.
    /// </summary>
    public async Task<BatchResult> RecomputeTailAsync(TailRecompute owed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(owed);
        var stream = _signals.Find(s => s.Env.Definition.Name == owed.Signal)
            ?? throw new ArgumentException($"signal '{owed.Signal}' is not run by this stream", nameof(owed));
        // Its own environment: the stream's is swapped when enrichments refresh.
        var env = await SignalEnvironment.LoadAsync(_config, stream.Env.Definition, cancellationToken: cancellationToken).ConfigureAwait(false);
        var result = await new BatchJob(env, _time).RunAsync(owed.Tail, null, cancellationToken).ConfigureAwait(false);
        await PendingTailFile.ClearAsync(_config.EnrichedTable(owed.Signal), owed.Definition, owed.Tail, cancellationToken).ConfigureAwait(false);

        return result;
    }

    /// <summary>
    /// Partitions whose offsets the tables held past the source's end when the runtime opened: the log
    /// the tables were written from was replaced (a new <c>source.path</c>), so its offsets start over
    /// (<see cref="LakeParameters.OffsetsReset"/>). Empty when none did.
    /// </summary>
    public IReadOnlyList<OffsetsStartedOver> StartedOver { get; private init; } = [];

    /// <summary>
    /// The first record read whose key is not its user_id's decimal text; null while none was. Kafka's
    /// records only: the embedded log has one partition, so its keys decide nothing and are not checked.
    /// </summary>
    public KeyMismatch? FirstKeyMismatch { get; private set; }

    /// <summary>
    /// A table holding records of a partition at or past the source's end holds another log's records
    /// (a reader sees only records that are there to stay, so no table of this log's can be ahead of it):
    /// left as it was, it took the new log's records up to those offsets for replays and left them out
    /// of the lake, the dead letters and the ledger. Each table records that the partition's offsets
    /// start over, so later readers of its commits know too.
    /// </summary>
    /// <remarks>
    /// The tables of the configured signals this runtime does not run (<c>weft stream --signal</c>) start
    /// over too: left behind, they would take the new log's records for replays once it ran them.
    /// </remarks>
    private static async Task<IReadOnlyList<OffsetsStartedOver>> StartOverReplacedPartitionsAsync(
        IEventSource source, List<SignalStream> streams, EventTable unrouted, Dictionary<string, long> unroutedHeld,
        IEnumerable<string> notRunning, WeftConfig config, CancellationToken cancellationToken)
    {
        var ends = source.EndOffsets();
        var startedOver = new List<OffsetsStartedOver>();
        if (ends.Count == 0)
        {
            return startedOver;
        }

        var others = new List<(EventTable Table, Dictionary<string, long> Held)>();
        foreach (var name in notRunning)
        {
            foreach (var path in new[] { config.EnrichedTable(name), config.DeadLetterTable(name), config.LateEventTable(name) })
            {
                if (Directory.Exists(Path.Combine(path, "_delta_log")))
                {
                    var table = await EventTable.OpenAsync(path, cancellationToken).ConfigureAwait(false);
                    others.Add((table, await HeldOffsetsAsync(table, cancellationToken).ConfigureAwait(false)));
                }
            }
        }

        foreach (var (partition, end) in ends)
        {
            long held = unroutedHeld.GetValueOrDefault(partition, -1);
            foreach (var stream in streams)
            {
                held = Math.Max(held, stream.HeldThrough(partition));
            }

            foreach (var (_, heldOther) in others)
            {
                held = Math.Max(held, heldOther.GetValueOrDefault(partition, -1));
            }

            if (held >= end)
            {
                startedOver.Add(new OffsetsStartedOver(partition, held, end));
            }
        }

        if (startedOver.Count == 0)
        {
            return startedOver;
        }

        string[] partitions = [.. startedOver.Select(s => s.Partition)];
        foreach (var stream in streams)
        {
            await stream.StartOverAsync(partitions, cancellationToken).ConfigureAwait(false);
        }

        await CommitOffsetsResetAsync(unrouted, partitions, cancellationToken).ConfigureAwait(false);
        foreach (var (table, _) in others)
        {
            await CommitOffsetsResetAsync(table, partitions, cancellationToken).ConfigureAwait(false);
        }

        foreach (var partition in partitions)
        {
            unroutedHeld.Remove(partition);
        }

        return startedOver;
    }

    /// <summary>A commit of no rows that says <paramref name="partitions"/>' offsets start over from here.</summary>
    private static Task CommitOffsetsResetAsync(EventTable table, IReadOnlyList<string> partitions, CancellationToken cancellationToken) =>
        table.Log.CommitAsync(DeltaTransaction.Create("WEFT OFFSETS RESET").WithParameter(LakeParameters.OffsetsReset, string.Join(',', partitions)).Build(), cancellationToken);

    /// <summary>Runs until cancelled; on cancellation flushes what it holds (a clean stop) and returns.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await StepAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // a clean stop: fall through to the final flush
        }
        catch
        {
            await StopMaintenanceAsync().ConfigureAwait(false);
            throw;
        }

        await StopMaintenanceAsync().ConfigureAwait(false);
        await FlushAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Stops the background maintenance (a compaction's unfinished partition is left as it was; a vacuum stops between files). Does not flush: see <see cref="FlushAsync"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        _source.SetRebalanceHandler(null);
        await _turn.WaitAsync().ConfigureAwait(false); // a rebalance being served finishes first
        await StopMaintenanceAsync().ConfigureAwait(false);
        if (_appending is { } appending)
        {
            // The append stage may be adding to the lake writers being dropped below.
            await appending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        foreach (var signal in _signals)
        {
            // Rows since the last flush were never committed: their files go, their offsets are read again.
            await signal.DropPendingAsync().ConfigureAwait(false);
        }

        _archive?.Dispose(); // likewise the archive lines since the last flush
        _stopping.Dispose();
        _turn.Release();
    }

    /// <summary>
    /// One micro-batch: read and prepare it, wait for the previous batch's online append, start this
    /// one's; start a flush, trim and refresh when due. Returns the records read. The batch's append
    /// may still be running when this returns: the next step, or <see cref="FlushAsync"/>, waits for it.
    /// </summary>
    public async Task<int> StepAsync(CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await StepInTurnAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _turn.Release();
        }
    }

    private async Task<int> StepInTurnAsync(CancellationToken cancellationToken)
    {
        ThrowIfFailed();
        if (_flushing is { IsCompleted: true })
        {
            await FinishFlushAsync(cancellationToken).ConfigureAwait(false);
        }

        var records = await _source.ReadBatchAsync(_options.MaxBatchRecords, _options.MaxWait, cancellationToken).ConfigureAwait(false);
        if (records.Count > 0)
        {
            PreparedBatch prepared;
            try
            {
                prepared = await PrepareAsync(records, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _failure ??= e; // the batch counts as processed but was never appended: as a failed append
                throw;
            }

            // Two batches may wait for the store while the loop prepares a third: prepare and append
            // take turns being the slower, and a single slot left each idle whenever the other was.
            await WaitForAppendAsync(all: false).ConfigureAwait(false);
            var previous = _appending;
            _appendingBefore = previous;
            _appending = Task.Run(
                async () =>
                {
                    if (previous is not null)
                    {
                        await previous.ConfigureAwait(false); // a failed batch fails every batch after it, unappended
                    }

                    await AppendAsync(prepared, cancellationToken).ConfigureAwait(false);
                },
                CancellationToken.None);
        }

        long now = _time.GetTimestamp();
        bool full = PendingRows() >= _options.MaxPendingRows;
        if (full || _time.GetElapsedTime(_lastFlush, now) >= _options.FlushInterval)
        {
            await StartFlushAsync(waitForPrevious: full, cancellationToken).ConfigureAwait(false);
        }

        if (_time.GetElapsedTime(_lastTrim, now) >= _options.TrimInterval)
        {
            _lastTrim = now;
            foreach (var s in _signals)
            {
                await _store.TrimAsync(s.Env.Definition.Name, OnlineStores.KeptPerUser(s.Env.Definition.MaxLength), cancellationToken).ConfigureAwait(false);
            }
        }

        if (_maintaining is not { IsCompleted: false })
        {
            bool compact = _options.CompactInterval > TimeSpan.Zero && _time.GetElapsedTime(_lastCompact, now) >= _options.CompactInterval;
            bool vacuum = _options.VacuumInterval > TimeSpan.Zero && _time.GetElapsedTime(_lastVacuum, now) >= _options.VacuumInterval;
            if (compact || vacuum)
            {
                _lastCompact = compact ? now : _lastCompact;
                _lastVacuum = vacuum ? now : _lastVacuum;
                var targets = compact ? CompactionTargets() : [];
                var tables = vacuum ? VacuumTargets() : [];
                _maintaining = Task.Run(() => MaintainInBackgroundAsync(targets, tables), CancellationToken.None);
            }
        }

        if (_time.GetElapsedTime(_lastRefresh, now) >= _options.EnrichmentRefresh)
        {
            _lastRefresh = now;
            for (int i = 0; i < _signals.Count; i++)
            {
                await _signals[i].RefreshEnrichmentsAsync(_config, _time, cancellationToken).ConfigureAwait(false);
            }
        }

        return records.Count;
    }

    /// <summary>
    /// The source's rebalance handler (its poll thread waits on the task), served between two steps.
    /// Partitions being revoked: everything processed is flushed (online sync, lake, commit) while they
    /// are still this consumer's, so their next owner starts after it (where the coordinator takes the
    /// commit) and finds the rows in the lake. Partitions assigned: what the lake, dead-letter and
    /// late-event tables hold of each partition is read again, and the stream rows other runtimes
    /// stored are recalled: another runtime of the group may have written rows of a partition this one
    /// now reads, and they must not be written twice.
    /// </summary>
    private async Task OnRebalanceAsync(bool revoking)
    {
        if (revoking)
        {
            _awaitingAssignment = true;
        }

        await _turn.WaitAsync().ConfigureAwait(false);
        long started = Stopwatch.GetTimestamp();
        var action = ("action", revoking ? "revoke" : "assign");
        try
        {
            if (_failure is not null)
            {
                return; // stopped: a new runtime reads from the last commit
            }

            if (revoking)
            {
                await FlushInTurnAsync(CancellationToken.None).ConfigureAwait(false);
                // Committed: a partition that comes back is read from its owner's commits, never from these.
                _appended.Clear();
            }
            else
            {
                foreach (var signal in _signals)
                {
                    long recalled = await signal.RefreshHeldAsync(_time, CancellationToken.None).ConfigureAwait(false);
                    Metrics.Gauge("weft_stream_rebalance_recalled_events", "Stored stream rows the last assignment read back into a signal's dedup window and hot-user cap (buckets other runtimes added files to)", recalled, ("signal", signal.Env.Definition.Name));
                }

                Merge(_unroutedHeld, await HeldOffsetsAsync(_unrouted, CancellationToken.None).ConfigureAwait(false));
                _source.SetHeldOffsets(HeldOffsets());
            }

            Metrics.Count("weft_stream_rebalances_total", "Rebalances the source let the runtime take part in, by action (revoke: flushed and committed; assign: read what the group stored)", 1, action);
            Metrics.Gauge("weft_stream_rebalance_seconds", "How long the runtime held the source's last rebalance, by action", Stopwatch.GetElapsedTime(started).TotalSeconds, action);
        }
        finally
        {
            if (!revoking)
            {
                _awaitingAssignment = false;
            }

            _turn.Release();
        }
    }

    /// <summary>
    /// Per partition, the newest offset the signals' tables and the unrouted dead letters hold, for the
    /// source (<see cref="IEventSource.SetHeldOffsets"/>): a Kafka topic whose offsets started over
    /// is told apart from a replay only by its end, which the source learns once a partition is assigned.
    /// </summary>
    private Dictionary<string, long> HeldOffsets()
    {
        var held = new Dictionary<string, long>(_unroutedHeld, StringComparer.Ordinal);
        foreach (var signal in _signals)
        {
            signal.MergeHeldInto(held);
        }

        return held;
    }

    /// <summary>Raises each partition's offset in <paramref name="into"/> to the one in <paramref name="from"/> where that is higher.</summary>
    private static void Merge(Dictionary<string, long> into, IReadOnlyDictionary<string, long> from)
    {
        foreach (var (partition, offset) in from)
        {
            into[partition] = Math.Max(offset, into.GetValueOrDefault(partition, -1));
        }
    }

    /// <summary>Stage one of a micro-batch, on the loop: route, then each signal's parse, late check, executors and encoding.</summary>
    private async Task<PreparedBatch> PrepareAsync(IReadOnlyList<SourceRecord> records, CancellationToken cancellationToken)
    {
        RecordsIn += records.Count;
        var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
        long nowMicros = Timestamps.ToMicros(_time.GetUtcNow());
        _routedRaw.Clear();
        _routedSources.Clear();
        int unrouted = 0;

        // The newest offset handled per partition, kept in locals while a run of one partition lasts.
        string? partition = null;
        long seen = 0;
        bool hasSeen = false;
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i];
            if (!string.Equals(r.Partition, partition, StringComparison.Ordinal))
            {
                if (partition is not null && hasSeen)
                {
                    _processed[partition] = seen;
                    offsets[partition] = seen;
                }

                partition = r.Partition;
                hasSeen = _processed.TryGetValue(partition, out seen);
            }

            if (hasSeen && r.Offset <= seen)
            {
                continue; // redelivered within this process (e.g. a rebalance): already handled
            }

            (seen, hasSeen) = (r.Offset, true);
            _archive?.Add(r.Payload.Span, nowMicros);

            // Every signal's parser reads every record; the route judges only those no signal took
            // (RouteUntaken), instead of a JSON pass of its own over every record. The source text
            // (partition@offset) is only made for the few records that become dead letters.
            _routedRaw.Add(new RawRecord(r.Payload, r.Partition));
            _routedSources.Add(r);
        }

        if (partition is not null && hasSeen)
        {
            _processed[partition] = seen;
            offsets[partition] = seen;
        }

        var parsed = ParseEach(nowMicros);

        unrouted += RouteUntaken(parsed);
        var batches = new List<(SignalStream, SignalBatch)>(_signals.Count);
        var maxEventTimes = new long[_signals.Count];
        for (int s = 0; s < parsed.Length; s++)
        {
            if (await _signals[s].PrepareAsync(parsed[s], _routedSources, Metrics, nowMicros, _time, _options.SealRefresh, cancellationToken).ConfigureAwait(false) is { } batch)
            {
                batches.Add((_signals[s], batch));
            }

            maxEventTimes[s] = _signals[s].PreparedMaxEventTime;
        }

        if (unrouted > 0)
        {
            Metrics.Count("weft_dead_letters_total", "Events rejected, by signal and stage", unrouted, ("signal", UnroutedDeadLetters), ("stage", "route"));
        }

        Metrics.Count("weft_stream_records_total", "Raw records read from the source", records.Count);

        return new PreparedBatch(offsets, batches, maxEventTimes);
    }

    /// <summary>
    /// Each signal's parse of the batch's records: with several signals, each parses only those that
    /// name one of its event types (<see cref="SignalTypeFilter"/>), and its result's row indexes are
    /// mapped back to the batch's.
    /// </summary>
    private ParseResult[] ParseEach(long nowMicros)
    {
        var parsed = new ParseResult[_signals.Count];
        if (_typeFilter is null)
        {
            for (int s = 0; s < parsed.Length; s++)
            {
                parsed[s] = _signals[s].Parse(_routedRaw, nowMicros);
            }

            return parsed;
        }

        int n = _routedRaw.Count;
        if (_signalsOf.Length < n)
        {
            _signalsOf = new ulong[Math.Max(n, _signalsOf.Length * 2)];
        }

        for (int i = 0; i < n; i++)
        {
            _signalsOf[i] = _typeFilter.SignalsFor(_routedRaw[i].Json.Span);
        }

        for (int s = 0; s < parsed.Length; s++)
        {
            ulong bit = 1UL << s;
            var records = _signalRecords[s];
            var rows = _signalRows[s];
            records.Clear();
            rows.Clear();
            for (int i = 0; i < n; i++)
            {
                if ((_signalsOf[i] & bit) != 0)
                {
                    records.Add(_routedRaw[i]);
                    rows.Add(i);
                }
            }

            if (records.Count == n)
            {
                parsed[s] = _signals[s].Parse(_routedRaw, nowMicros);
                continue;
            }

            var part = _signals[s].Parse(records, nowMicros);
            parsed[s] = part with
            {
                SourceRows = ToBatchRows(part.SourceRows, rows),
                DeadLetterRows = ToBatchRows(part.DeadLetterRows, rows),
                OtherTypeRows = ToBatchRows(part.OtherTypeRows, rows),
            };
        }

        return parsed;

        static int[] ToBatchRows(int[] partRows, List<int> rows)
        {
            for (int i = 0; i < partRows.Length; i++)
            {
                partRows[i] = rows[partRows[i]];
            }

            return partRows;
        }
    }

    /// <summary>Stage two, in the background: the online appends (readable at once, made durable by the next flush's store sync).</summary>
    private async Task AppendAsync(PreparedBatch prepared, CancellationToken cancellationToken)
    {
        foreach (var (signal, batch) in prepared.Signals)
        {
            await signal.AppendAsync(batch, _store, Metrics, _time, cancellationToken).ConfigureAwait(false);
        }

        // Also a signal's events that left no element (filtered, dead-lettered) raised its watermark:
        // the flush that covers their offsets records it.
        for (int s = 0; s < prepared.MaxEventTimes.Length; s++)
        {
            _signals[s].NoteAppended(prepared.MaxEventTimes[s]);
        }

        Merge(_appended, prepared.Offsets);
    }

    /// <summary>
    /// Waits for every append in flight (<paramref name="all"/>), or for all but the newest, rethrowing a
    /// failure. A batch that was not appended (failed, cancelled, or failed while being prepared) stops
    /// the runtime: its records count as processed, so a later batch must never make offsets beyond them
    /// appended (each append waits for the one before it, and fails with it). A new runtime reads them
    /// again from the last commit.
    /// </summary>
    private async Task WaitForAppendAsync(bool all = true)
    {
        var waited = all ? _appending : _appendingBefore;
        _appendingBefore = null;
        _appending = all ? null : _appending;
        if (waited is { } appending)
        {
            try
            {
                await appending.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _failure ??= e;
                if (_appending is { } rest)
                {
                    // The newest waits for the failed one and fails with it, having appended nothing.
                    _appending = null;
                    await rest.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                throw;
            }
        }
    }

    private void ThrowIfFailed()
    {
        if (_failure is { } failure)
        {
            throw new InvalidOperationException(
                $"The stream runtime stopped after a failed {(_flushFailed ? "lake flush" : "online append")} ({failure.Message}); records after its last commit are read again by a new runtime.",
                failure);
        }
    }

    /// <summary>
    /// The route's verdict on the records no signal's parser took (each signal refused or skipped them),
    /// in record order; returns how many it refused. Those it refuses (not a JSON object, no user, no
    /// event type any signal includes) become one unrouted dead letter each and leave every signal's
    /// dead letters. Those it lets through stay as the signals' dead letters; one no signal dead-lettered
    /// either (every signal skipped it: its type is known, but not under the column mapping of the event
    /// type that includes it) becomes an unrouted dead letter too, so no record vanishes unrecorded.
    /// On the way it checks each taken record's key against its user_id (<see cref="FirstKeyMismatch"/>).
    /// </summary>
    private int RouteUntaken(ParseResult[] parsed)
    {
        int n = _routedSources.Count;
        var taken = ArrayPool<byte>.Shared.Rent(n); // 0: untaken, 1: taken, 2: dead-lettered by a signal, 3: refused by the route
        try
        {
            taken.AsSpan(0, n).Clear();
            int untaken = n, mismatched = 0;
            foreach (var p in parsed)
            {
                var rows = p.SourceRows;
                long[]? users = _checkKeys ? ((PrimitiveColumn<long>)p.Events[StandardColumns.UserId]).Values : null;
                for (int i = 0; i < rows.Length; i++)
                {
                    int row = rows[i];
                    if (taken[row] == 1)
                    {
                        continue;
                    }

                    untaken--;
                    taken[row] = 1;

                    // Checked once a record, by the first signal that took it (each parses its user_id alike).
                    if (users is not null && !IsUserKey(_routedSources[row].Key.Span, users[i]))
                    {
                        mismatched++;
                        FirstKeyMismatch ??= new KeyMismatch(_routedSources[row].Partition, _routedSources[row].Offset, Encoding.UTF8.GetString(_routedSources[row].Key.Span), users[i]);
                    }
                }
            }

            if (mismatched > 0)
            {
                Metrics.Count("weft_stream_key_mismatch_total", "Records whose key is not their user_id as decimal text: a user's events may come through several partitions in no one order", mismatched);
            }

            if (untaken == 0)
            {
                return 0;
            }

            foreach (var p in parsed)
            {
                foreach (int row in p.DeadLetterRows)
                {
                    taken[row] = taken[row] == 1 ? (byte)1 : (byte)2;
                }
            }

            int refused = 0, othersSkipped = 0;
            for (int row = 0; row < n; row++)
            {
                if (taken[row] == 1)
                {
                    continue;
                }

                var record = _routedSources[row];
                if (!Route(record.Payload.Span, out string? reason, out bool otherSignals))
                {
                    taken[row] = 3;
                    if (otherSignals)
                    {
                        othersSkipped++; // the stream of the config's other signals takes it (StreamOptions.ConsumerFor)
                        continue;
                    }

                    Unrouted(record, reason!);
                    refused++;
                }
                else if (taken[row] == 0)
                {
                    Unrouted(record, "no signal takes it: its event_type is not one a signal includes under that event type's column mapping");
                    refused++;
                }
            }

            for (int s = 0; s < parsed.Length; s++)
            {
                var p = parsed[s];
                if (Array.Exists(p.DeadLetterRows, row => taken[row] == 3))
                {
                    var dead = new List<DeadLetter>(p.DeadLetters.Count);
                    var rows = new List<int>(p.DeadLetters.Count);
                    for (int d = 0; d < p.DeadLetterRows.Length; d++)
                    {
                        if (taken[p.DeadLetterRows[d]] != 3)
                        {
                            dead.Add(p.DeadLetters[d]);
                            rows.Add(p.DeadLetterRows[d]);
                        }
                    }

                    parsed[s] = p with { DeadLetters = dead, DeadLetterRows = [.. rows] };
                }
            }

            if (othersSkipped > 0)
            {
                Metrics.Count("weft_stream_other_signals_records_total", "Records skipped because only signals of the config this stream does not run include their event type", othersSkipped);
            }

            return refused;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(taken);
        }
    }

    /// <summary>Whether <paramref name="key"/> is <paramref name="userId"/> as decimal text (the key a Kafka producer of Weft's events sets).</summary>
    private static bool IsUserKey(ReadOnlySpan<byte> key, long userId)
    {
        Span<byte> text = stackalloc byte[20];
        return System.Buffers.Text.Utf8Formatter.TryFormat(userId, text, out int written) && key.SequenceEqual(text[..written]);
    }

    private void Unrouted(SourceRecord record, string reason)
    {
        if (!Holds(_unroutedHeld, record))
        {
            var payload = record.Payload.Span;
            var (eventId, userId, eventType) = RawEventParser.ReadIdentity(NotText.Holds(payload) ? NotText.Replaced(payload) : payload);
            _unroutedPending.Add(new DeadLetter(eventId, userId, eventType, "route", reason, SourceOf(record), Encoding.UTF8.GetString(record.Payload.Span)));
        }
    }

    /// <summary>
    /// Whether some signal may own the record: a valid JSON object, a user, an event type some signal
    /// includes. One pass over the top-level properties (nested values skipped, but still validated).
    /// <paramref name="otherSignals"/>: refused only because its event type is one that only signals of
    /// the config this runtime does not run include; theirs, not a dead letter.
    /// </summary>
    private bool Route(ReadOnlySpan<byte> payload, out string? reason, out bool otherSignals)
    {
        otherSignals = false;
        try
        {
            var reader = new Utf8JsonReader(payload);
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                reader.Read(); // throws on content after the value
                reason = "not a JSON object";
                return false;
            }

            // What the last user_id and event_type properties held (the DOM lookup's answer for duplicates),
            // or any property an event type maps to them: the route only has to tell whether some signal
            // may take the record (its parser decides).
            bool hasUser = false, hasType = false, knownType = false;
            bool aliasUser = false, aliasType = false, aliasKnown = false;
            string? unknownType = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isUser = reader.ValueTextEquals("user_id"u8);
                bool isType = !isUser && reader.ValueTextEquals("event_type"u8);
                bool isUserAlias = !isUser && !isType && Is(ref reader, _userAliases);
                bool isTypeAlias = !isUser && !isType && Is(ref reader, _typeAliases);
                reader.Read();
                if (isUser)
                {
                    hasUser = reader.TokenType != JsonTokenType.Null;
                }
                else if (isType)
                {
                    hasType = reader.TokenType == JsonTokenType.String;
                    knownType = hasType && IsKnownType(ref reader, out unknownType);
                }

                aliasUser |= isUserAlias && reader.TokenType != JsonTokenType.Null;
                if (isTypeAlias && reader.TokenType == JsonTokenType.String)
                {
                    aliasType = true;
                    aliasKnown |= IsKnownType(ref reader, out string? unknownAlias);
                    unknownType ??= unknownAlias;
                }

                reader.Skip();
            }

            reader.Read(); // throws on content after the object
            reason = !hasUser && !aliasUser ? "missing user_id"
                : !hasType && !aliasType ? "missing event_type"
                : !knownType && !aliasKnown ? $"unknown event_type '{unknownType}': no signal includes it"
                : null;
            otherSignals = (hasUser || aliasUser) && (hasType || aliasType) && !knownType && !aliasKnown
                && unknownType is not null && _otherSignalsTypes.Contains(unknownType);
            return reason is null;
        }
        catch (JsonException ex)
        {
            reason = $"malformed JSON at byte {JsonErrors.BytePosition(payload, ex)}: {JsonErrors.Message(ex)}";
            return false;
        }
        catch (InvalidOperationException) when (NotText.Holds(payload))
        {
            // A name or event_type that is not text: route the event as if each such escape were
            // U+FFFD (each byte that is not UTF-8, '?'); the signal's parser dead-letters it if it would keep it.
            return Route(NotText.Replaced(payload), out reason, out otherSignals);
        }
    }

    private static bool Is(ref Utf8JsonReader reader, byte[][] names)
    {
        foreach (var name in names)
        {
            if (reader.ValueTextEquals(name))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The raw property names the signals' event types map to <paramref name="column"/> (other than its own name), as UTF-8.</summary>
    private static byte[][] Aliases(List<SignalStream> signals, string column) =>
        [.. signals.SelectMany(s => s.Env.Definition.EventTypes).SelectMany(t => t.ColumnMapping)
            .Where(m => m.Value == column && m.Key != column).Select(m => m.Key).Distinct(StringComparer.Ordinal).Select(Encoding.UTF8.GetBytes)];

    private bool IsKnownType(ref Utf8JsonReader reader, out string? unknown)
    {
        unknown = null;
        if (reader.ValueSpan.Length <= 128)
        {
            Span<char> chars = stackalloc char[128];
            int n = reader.CopyString(chars);
            if (_knownTypes.Contains(chars[..n]))
            {
                return true;
            }

            unknown = new string(chars[..n]);
            return false;
        }

        unknown = reader.GetString()!;
        if (_knownTypes.Set.Contains(unknown))
        {
            unknown = null;
            return true;
        }

        return false;
    }

    private static string SourceOf(SourceRecord r) => $"{r.Partition}@{r.Offset.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Syncs the online store and writes every signal's pending stream rows, dead letters and late events
    /// to the lake, then commits the appended offsets: only once both the online store and the lake hold
    /// them durably. Waits for the append
    /// and the background flush in flight first; when it returns, everything read so far is stored.
    /// </summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await FlushInTurnAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _turn.Release();
        }
    }

    private async Task FlushInTurnAsync(CancellationToken cancellationToken)
    {
        if (_flushFailed)
        {
            ThrowIfFailed();
        }

        if (_flushing is not null)
        {
            await FinishFlushAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            await WaitForAppendAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The append running when an earlier step was cancelled (a stop): its offsets are not
            // appended, so they are neither flushed nor committed, and its records are read again.
        }

        _flushing = WriteAsync(TakeFlush());
        await FinishFlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Rows the signals hold for the next flush; the append in flight may be adding to them.</summary>
    private long PendingRows()
    {
        long rows = _unroutedPending.Count;
        foreach (var signal in _signals)
        {
            rows += signal.PendingRows;
        }

        return rows;
    }

    /// <summary>
    /// A due flush, in the background. If the previous one is still writing, a later step starts it,
    /// unless <paramref name="waitForPrevious"/> (too many rows pending): then this waits for it.
    /// </summary>
    private async Task StartFlushAsync(bool waitForPrevious, CancellationToken cancellationToken)
    {
        if (_flushing is not null)
        {
            if (!_flushing.IsCompleted && !waitForPrevious)
            {
                return;
            }

            await FinishFlushAsync(cancellationToken).ConfigureAwait(false);
        }

        await WaitForAppendAsync().ConfigureAwait(false);
        var flush = TakeFlush();
        _flushing = Task.Run(() => WriteAsync(flush), CancellationToken.None);
    }

    /// <summary>Waits for the background flush (rethrowing its failure), then commits its offsets.</summary>
    private async Task FinishFlushAsync(CancellationToken cancellationToken)
    {
        var flushing = _flushing!;
        _flushing = null;
        Flush flush;
        try
        {
            flush = await flushing.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Its rows left the pending lists: a later flush would commit offsets past rows the lake lacks.
            (_failure, _flushFailed) = (e, true);
            throw;
        }

        await CommitAsync(flush, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Everything pending, with the appended offsets it covers. No append is in flight.</summary>
    private Flush TakeFlush()
    {
        _lastFlush = _time.GetTimestamp();
        var signals = new List<SignalFlush>(_signals.Count);
        foreach (var signal in _signals)
        {
            signals.Add(signal.TakeFlush());
        }

        var unrouted = _unroutedPending;
        _unroutedPending = [];
        return new Flush(new Dictionary<string, long>(_appended, StringComparer.Ordinal), $"stream:{Guid.NewGuid():N}", Timestamps.ToMicros(_time.GetUtcNow()), signals, unrouted, _archive?.Take());
    }

    /// <summary>
    /// The lake writes of a flush. Not cancellable: the rows were taken from the pending lists, so a
    /// write given up half-way would leave the lake without rows whose offsets a later flush commits.
    /// </summary>
    private async Task<Flush> WriteAsync(Flush flush)
    {
        // The appends are deferred: one sync makes every append behind the flush's offsets durable,
        // where a sync per micro-batch held the append stage on the disk. It waits on the disk while
        // the lake writes encode, so it runs alongside them, but each lake commit waits for it: rows
        // in the lake are durable online, so a restarted stream may recall their ids into its dedup
        // window and drop their replays (RecallAsync) without losing them online.
        var synced = Task.Run(() => _store.SyncAsync(CancellationToken.None).AsTask());
        try
        {
            if (flush.Archived is { } archived)
            {
                archived.Commit(flush.Tag, flush.NowMicros);
                // Records last: a reader that sees a flush's records sees its file and bytes too.
                Metrics.Count("weft_stream_archive_files_total", ArchiveFilesHelp, 1);
                Metrics.Count("weft_stream_archive_bytes_total", ArchiveBytesHelp, archived.Bytes);
                Metrics.Count("weft_stream_archive_records_total", ArchiveRecordsHelp, archived.Records);
                Interlocked.Exchange(ref _archiveCommittedAt, flush.NowMicros);
            }

            foreach (var signal in flush.Signals)
            {
                await signal.WriteAsync(flush.Offsets, flush.Tag, flush.NowMicros, Metrics, synced).ConfigureAwait(false);
            }

            await DeadLetterTable.AppendAsync(_unrouted, EventLayout.StreamPath, _options.Consumer, flush.Tag, onlyOnce: false, flush.Unrouted, flush.NowMicros, CancellationToken.None,
                new Dictionary<string, string> { [LakeParameters.Offsets] = FormatOffsets(flush.Offsets) }).ConfigureAwait(false);
        }
        finally
        {
            await synced.ConfigureAwait(false);
        }

        return flush;
    }

    private async Task CommitAsync(Flush flush, CancellationToken cancellationToken)
    {
        for (int i = 0; i < _signals.Count; i++)
        {
            _signals[i].NoteWritten(flush.Signals[i], flush.Offsets);
        }

        if (flush.Offsets.Count > 0)
        {
            await _source.CommitAsync(flush.Offsets, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A micro-batch after stage one: its offsets (newest per partition), each signal's elements, and each signal's newest event time after it.</summary>
    private sealed record PreparedBatch(Dictionary<string, long> Offsets, List<(SignalStream Signal, SignalBatch Batch)> Signals, long[] MaxEventTimes);

    /// <summary>What one flush writes and then commits.</summary>
    private sealed record Flush(Dictionary<string, long> Offsets, string Tag, long NowMicros, List<SignalFlush> Signals, List<DeadLetter> Unrouted, RawArchive.PendingFile? Archived);

    /// <summary>One signal's part of a micro-batch, ready to append: elements, what freshness needs, the rows for the lake.</summary>
    private sealed record SignalBatch(OnlineElement[] Elements, string?[] Types, long[] ArrivedMicros, EventBatch? LakeRows, long WatermarkMicros);

    /// <summary>One signal's part of a flush: its tables and the rows taken from its pending lists.</summary>
    private sealed record SignalFlush(
        SignalDefinition Definition, string Fingerprint, EventTable DeadLetters, EventTable Ledger,
        EventTableWriter Rows, List<DeadLetter> Dead, List<LateEvent> Late, long MaxEventTime, EventTable Lake, bool WatermarkOnly)
    {
        /// <summary>The lake files the flush committed (none before <see cref="WriteAsync"/> has).</summary>
        public IReadOnlyList<AddFile> FilesAdded { get; private set; } = [];

        public async Task WriteAsync(IReadOnlyDictionary<string, long> offsets, string tag, long nowMicros, WeftMetrics metrics, Task onlineSynced)
        {
            var parameters = new Dictionary<string, string>
            {
                [LakeParameters.Path] = EventLayout.StreamPath,
                [LakeParameters.Fingerprint] = Fingerprint,
                [LakeParameters.Offsets] = FormatOffsets(offsets),
            };
            if (MaxEventTime != long.MinValue)
            {
                parameters[LakeParameters.MaxEventTime] = MaxEventTime.ToString(CultureInfo.InvariantCulture);
            }

            // Dead letters and late events first, each commit recording the offsets it covers, so a replay
            // after a crash before the source commit does not record them again. Then the rows: a crash
            // between the rows' commit and the ledger's lost the late events for good, since the replay
            // took the rows' ids back from the lake and judged their deliveries repeats, not late.
            await using (Rows)
            {
                var covered = new Dictionary<string, string> { [LakeParameters.Offsets] = parameters[LakeParameters.Offsets] };
                await DeadLetterTable.AppendAsync(DeadLetters, EventLayout.StreamPath, "stream", tag, onlyOnce: false, Dead, nowMicros, CancellationToken.None, covered).ConfigureAwait(false);
                await LateEventLedger.AppendAsync(Ledger, Definition.Bucket, Late, new Dictionary<string, string>(covered) { ["weft.tag"] = tag }, CancellationToken.None).ConfigureAwait(false);
                if (Rows.RowCount > 0)
                {
                    FilesAdded = (await Rows.CommitAsync(parameters, CancellationToken.None, commitAfter: onlineSynced).ConfigureAwait(false)).FilesAdded;
                    metrics.Count("weft_lake_rows_total", "Rows written to the lake, by signal and path", Rows.RowCount, ("signal", Definition.Name), ("path", EventLayout.StreamPath));
                }
                else if (WatermarkOnly)
                {
                    // No rows, but events the stages left out (filtered, dead-lettered) raised the watermark:
                    // a commit of no rows records it, or a restart judged against an older one and let through
                    // events one process would have found late (dropped or left to batch).
                    var commit = DeltaTransaction.Create(WatermarkOperation);
                    foreach (var (key, value) in parameters)
                    {
                        commit = commit.WithParameter(key, value);
                    }

                    await Lake.Log.CommitAsync(commit.Build(), CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>The operation of a stream commit of no rows that records the definition the stream runs from then on, after a change (<see cref="TailRecomputes"/>).</summary>
    internal const string DefinitionOperation = "WEFT STREAM DEFINITION";

    /// <summary>The operation of a stream commit of no rows that records a risen watermark (<see cref="LakeParameters.MaxEventTime"/>).</summary>
    internal const string WatermarkOperation = "WEFT STREAM WATERMARK";

    /// <summary>Raw payload bytes kept in an executor's dead letter (as the parser keeps for its own).</summary>
    private const int MaxDeadLetterPayloadBytes = 4096;

    /// <summary>The newest offset per partition over a table's stream commits: records up to it are already written there.</summary>
    private static async Task<Dictionary<string, long>> HeldOffsetsAsync(EventTable table, CancellationToken cancellationToken) =>
        (await StreamCommitsAsync(table.Log, cancellationToken).ConfigureAwait(false)).Offsets;

    /// <summary>The name of the fold <see cref="StreamCommitsAsync"/> keeps in each table it reads.</summary>
    internal const string CommitsFold = "stream-commits";

    /// <summary>Commits folded before <see cref="StreamCommitsAsync"/> keeps its result for the next reader.</summary>
    internal const int FoldKeepAfter = DeltaTable.FoldWorthKeeping;

    /// <summary>
    /// Over a table's stream commits: the newest offset per partition, and the newest event time
    /// recorded (<see cref="long.MinValue"/> when none is). Starts from the fold a previous reader kept
    /// (<see cref="DeltaTable.ReadFoldAsync"/>) and reads only the commits after it, and keeps its own
    /// when it read many: a stream that restarts, or refreshes it at its daily maintenance, reads the
    /// commits since then, not the table's whole history (~17,000 a day).
    /// </summary>
    private static async Task<(Dictionary<string, long> Offsets, long MaxEventTime)> StreamCommitsAsync(DeltaTable table, CancellationToken cancellationToken)
    {
        var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
        long maxEventTime = long.MinValue;
        long after = -1;
        if (await table.ReadFoldAsync(CommitsFold, cancellationToken).ConfigureAwait(false) is { } fold && TryParseFold(fold.Value, offsets, out maxEventTime))
        {
            after = fold.Version;
        }

        var commits = await table.GetCommitsAfterAsync(after, cancellationToken).ConfigureAwait(false);
        foreach (var commit in commits)
        {
            if (commit.Parameters.TryGetValue(LakeParameters.OffsetsReset, out var reset))
            {
                foreach (var partition in reset.Split(',', StringSplitOptions.RemoveEmptyEntries))
                {
                    offsets.Remove(partition);
                }
            }

            if (commit.Parameters.TryGetValue(LakeParameters.Offsets, out var text))
            {
                foreach (var (partition, offset) in ParseOffsets(text))
                {
                    offsets[partition] = Math.Max(offset, offsets.GetValueOrDefault(partition, -1));
                }
            }

            if (commit.Parameters.TryGetValue(LakeParameters.MaxEventTime, out var time)
                && long.TryParse(time, NumberStyles.Integer, CultureInfo.InvariantCulture, out long micros))
            {
                maxEventTime = Math.Max(maxEventTime, micros);
            }
        }

        if (commits.Count >= FoldKeepAfter)
        {
            await table.WriteFoldAsync(CommitsFold, commits[^1].Version, FormatFold(offsets, maxEventTime), cancellationToken).ConfigureAwait(false);
        }

        return (offsets, maxEventTime);
    }

    /// <summary>The fold's text: the offsets as a commit records them, then the newest event time.</summary>
    private static string FormatFold(Dictionary<string, long> offsets, long maxEventTime) =>
        $"{maxEventTime.ToString(CultureInfo.InvariantCulture)};{FormatOffsets(offsets)}";

    private static bool TryParseFold(string text, Dictionary<string, long> offsets, out long maxEventTime)
    {
        int semicolon = text.IndexOf(';', StringComparison.Ordinal);
        if (semicolon < 0 || !long.TryParse(text.AsSpan(0, semicolon), NumberStyles.Integer, CultureInfo.InvariantCulture, out maxEventTime))
        {
            maxEventTime = long.MinValue;
            return false;
        }

        foreach (var (partition, offset) in ParseOffsets(text[(semicolon + 1)..]))
        {
            offsets[partition] = offset;
        }

        return true;
    }

    /// <summary>Whether a table whose stream commits cover <paramref name="held"/> already holds what <paramref name="record"/> produced.</summary>
    private static bool Holds(Dictionary<string, long> held, SourceRecord record) =>
        held.Count > 0 && held.TryGetValue(record.Partition, out long offset) && record.Offset <= offset;

    internal static string FormatOffsets(IReadOnlyDictionary<string, long> offsets) =>
        string.Join(',', offsets.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}={o.Value.ToString(CultureInfo.InvariantCulture)}"));

    internal static IEnumerable<(string Partition, long Offset)> ParseOffsets(string text)
    {
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.LastIndexOf('=');
            if (eq > 0 && long.TryParse(part.AsSpan(eq + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out long offset))
            {
                yield return (part[..eq], offset);
            }
        }
    }
}
