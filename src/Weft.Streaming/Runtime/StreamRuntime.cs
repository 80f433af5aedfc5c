using System.Buffers;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Engine.Observability;
using Weft.Engine.Sequences;
using Weft.Online;
using Weft.Storage;

namespace Weft.Streaming.Runtime;

/// <summary>Options of the streaming runtime, with their defaults.</summary>
public sealed record StreamOptions
{
    /// <summary>
    /// Records per micro-batch at most (default 10,000). A batch takes what the source holds, so this
    /// bounds batches only under a backlog, where larger ones mean fewer commits and fewer,
    /// larger runs for the online store to merge.
    /// </summary>
    public int MaxBatchRecords { get; init; } = 10_000;

    /// <summary>How long a read waits for the first record of a micro-batch (default 50 ms).</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How often stream partitions are flushed to the lake and source offsets committed (default 5 s).</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Rows waiting for the lake (enriched rows, dead letters and late events of every signal) at which a
    /// flush starts before <see cref="FlushInterval"/> is up (default 500,000). It bounds the memory a
    /// backlog takes: read at 300,000 events/s, a 5 s interval would hold 1.5 M rows. When the previous
    /// flush is still writing, the loop waits for it rather than holding more.
    /// </summary>
    public int MaxPendingRows { get; init; } = 500_000;

    /// <summary>
    /// Rows per row group of the stream's lake files (default 32,768). Between flushes, each bucket's
    /// rows are encoded into its uncommitted file a row group at a time as they arrive, in the background,
    /// so a flush has only the last part-filled row group to encode and the rows wait as encoded bytes,
    /// not objects. Smaller groups leave a flush less to do; compaction rewrites the files later.
    /// </summary>
    public int LakeRowGroupSize { get; init; } = 32_768;

    /// <summary>How often the online store is trimmed to each signal's max_length (default 60 s).</summary>
    public TimeSpan TrimInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How often enrichment tables are checked for new versions (default 30 s).</summary>
    public TimeSpan EnrichmentRefresh { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often the stream re-reads which time buckets the batch path has sealed (default 5 s). A bucket
    /// sealed by batch is treated as sealed by the stream at most this long (plus one micro-batch) later;
    /// until then, events for it are judged against the stream watermark only.
    /// </summary>
    public TimeSpan SealRefresh { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often the stream compacts the small files of its closed buckets, in the background (default
    /// 10 min; zero turns it off). A flush writes one small file per bucket it touched, ~720 an hour at the
    /// default flush interval. Once a bucket is closed (it ends before the stream's watermark, so only
    /// late events still reach it), its <c>path=stream</c> files are packed into files of up to 128 MiB
    /// (<see cref="EventTable.CompactAsync(PartitionFilter?, int, long, CancellationToken)"/>): the same rows, fewer files for
    /// batch jobs, serving and DuckDB to open. The dead-letter and late-event tables' stream files too.
    /// A failed compaction is counted (<c>weft_stream_compaction_failures_total</c>) and tried again at
    /// the next interval; it never stops the stream.
    /// </summary>
    public TimeSpan CompactInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Small files a closed bucket must hold before a compaction rewrites them (default 16, at least 2).</summary>
    public int CompactMinFiles { get; init; } = 16;

    /// <summary>
    /// How often the stream vacuums the tables it writes, in the background (default 1 day; zero turns it
    /// off). Compactions, and batch rewrites of the same tables, leave the files they replaced on disk
    /// for time travel: a stream compacting every 10 minutes would otherwise keep every small file it
    /// ever flushed. A vacuum deletes the files no version within <see cref="VacuumRetention"/>
    /// references (<see cref="DeltaTable.VacuumAsync"/>, the same as <c>weft table vacuum</c>): the
    /// <c>enriched/&lt;signal&gt;</c>, dead-letter and late-event tables of every signal, and the
    /// unrouted dead letters. A failed vacuum is counted (<c>weft_stream_vacuum_failures_total</c>) and
    /// tried again at the next interval; it never stops the stream.
    /// </summary>
    public TimeSpan VacuumInterval { get; init; } = TimeSpan.FromDays(1);

    /// <summary>
    /// How long a file the tables no longer reference stays on disk (default 7 days, Delta's default;
    /// at least 1 day): time travel to any instant within it keeps working, and a file younger than it
    /// is never deleted, so a writer still writing files it has not committed (a long batch backfill
    /// of the same table) keeps them.
    /// </summary>
    public TimeSpan VacuumRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>The shortest <see cref="VacuumRetention"/> allowed.</summary>
    public static readonly TimeSpan MinVacuumRetention = TimeSpan.FromDays(1);

    /// <summary>The consumer name offsets are checkpointed under (default "weft-stream"; see <see cref="ConsumerFor"/>).</summary>
    public string Consumer { get; init; } = DefaultConsumer;

    public const string DefaultConsumer = "weft-stream";

    /// <summary>
    /// The consumer a stream of some of the config's signals reads as: one of its own, so that it neither
    /// takes records from the stream of every signal (which would then never see them) nor shares its
    /// position. Every signal: <see cref="DefaultConsumer"/>; some: "weft-stream." and their sorted names
    /// joined by dots, or, when that is no valid consumer name (1–100 of <c>[A-Za-z0-9._-]</c>), a hash of them.
    /// </summary>
    public static string ConsumerFor(IReadOnlyCollection<string> signals, IReadOnlyCollection<string> configured)
    {
        var chosen = signals.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (configured.All(chosen.Contains))
        {
            return DefaultConsumer;
        }

        string named = DefaultConsumer + "." + string.Join('.', chosen);
        if (Embedded.LogFormat.IsValidGroupName(named))
        {
            return named;
        }

        var hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', chosen)));
        return DefaultConsumer + ".h" + Convert.ToHexStringLower(hash.AsSpan(0, 8));
    }

    public void Validate()
    {
        if (MaxBatchRecords < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBatchRecords), MaxBatchRecords, "StreamOptions.MaxBatchRecords must be at least 1");
        }

        if (LakeRowGroupSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(LakeRowGroupSize), LakeRowGroupSize, "StreamOptions.LakeRowGroupSize must be at least 1");
        }

        if (MaxPendingRows < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPendingRows), MaxPendingRows, "StreamOptions.MaxPendingRows must be at least 1");
        }

        if (FlushInterval <= TimeSpan.Zero || MaxWait < TimeSpan.Zero || TrimInterval <= TimeSpan.Zero || EnrichmentRefresh <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(FlushInterval), "StreamOptions intervals must be positive");
        }

        if (CompactInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(CompactInterval), CompactInterval, "StreamOptions.CompactInterval must not be negative (zero turns compaction off)");
        }

        if (CompactMinFiles < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(CompactMinFiles), CompactMinFiles, "StreamOptions.CompactMinFiles must be at least 2");
        }

        if (VacuumInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(VacuumInterval), VacuumInterval, "StreamOptions.VacuumInterval must not be negative (zero turns vacuuming off)");
        }

        if (VacuumRetention < MinVacuumRetention)
        {
            throw new ArgumentOutOfRangeException(nameof(VacuumRetention), VacuumRetention,
                $"StreamOptions.VacuumRetention must be at least {Durations.Format(MinVacuumRetention)}: a shorter one could delete the files of a writer that has not committed them yet");
        }

        if (SealRefresh < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(SealRefresh), SealRefresh, "StreamOptions.SealRefresh must not be negative (zero re-reads every micro-batch)");
        }
    }
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
public sealed class StreamRuntime : IAsyncDisposable
{
    /// <summary>Dead letters no signal could own (malformed JSON, no user_id, an event type no signal includes).</summary>
    public const string UnroutedDeadLetters = "_stream";

    private readonly WeftConfig _config;
    private readonly IEventSource _source;
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
    public static async Task<StreamRuntime> CreateAsync(
        WeftConfig config, IEventSource source, IOnlineStore store, IReadOnlyList<string>? signals = null, StreamOptions? options = null,
        TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        options ??= new StreamOptions();
        options.Validate();
        time ??= TimeProvider.System;
        var registry = ExecutorRegistry.CreateDefault();
        var configured = config.LoadSignals(registry.Contains);
        var names = signals ?? configured.Select(s => s.Name).ToList();
        var running = names.ToHashSet(StringComparer.Ordinal);
        var otherSignalsTypes = configured.Where(s => !running.Contains(s.Name)).SelectMany(s => s.EventTypes).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        otherSignalsTypes.ExceptWith(configured.Where(s => running.Contains(s.Name)).SelectMany(s => s.EventTypes).Select(t => t.Name));
        var streams = new List<SignalStream>();
        foreach (var name in names)
        {
            var env = await SignalEnvironment.LoadAsync(config, name, registry, cancellationToken).ConfigureAwait(false);
            streams.Add(await SignalStream.OpenAsync(config, env, options.LakeRowGroupSize, time, cancellationToken).ConfigureAwait(false));
        }

        var unrouted = await DeadLetterTable.OpenAsync(config.DeadLetterTable(UnroutedDeadLetters), cancellationToken).ConfigureAwait(false);
        var unroutedHeld = await HeldOffsetsAsync(unrouted, cancellationToken).ConfigureAwait(false);
        var archive = config.Source.Archive is { } folder ? RawArchive.Open(folder, time) : null;
        return new StreamRuntime(config, source, store, options, time, streams, otherSignalsTypes, unrouted, unroutedHeld, archive);
    }

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
    /// Compacts the small files of every signal's closed stream buckets, and the stream files of the
    /// dead-letter and late-event tables, now (see <see cref="StreamOptions.CompactInterval"/>); waits
    /// for the background maintenance in flight first. Returns the files removed.
    /// </summary>
    public async Task<int> CompactAsync(CancellationToken cancellationToken)
    {
        if (_maintaining is { } running)
        {
            await running.ConfigureAwait(false);
        }

        return await CompactAsync(CompactionTargets(), cancellationToken).ConfigureAwait(false);
    }

    private async Task StopMaintenanceAsync()
    {
        if (_maintaining is { } running)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await running.ConfigureAwait(false); // it ends quietly when cancelled
            _maintaining = null;
        }
    }

    /// <summary>What a compaction covers, read on the loop (the watermarks are the loop's).</summary>
    private List<(string Table, string Path, PartitionFilter Partitions)> CompactionTargets()
    {
        var stream = PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.StreamPath);
        var targets = new List<(string, string, PartitionFilter)>();
        foreach (var s in _signals)
        {
            var name = s.Env.Definition.Name;
            if (s.LastClosedBucket() is { } closed)
            {
                Add(_config.EnrichedTable(name), stream.Between(EventLayout.BucketColumn, null, closed));
            }

            Add(_config.DeadLetterTable(name), stream);
            Add(_config.LateEventTable(name), PartitionFilter.All); // partitioned by bucket only: every row is the stream's
        }

        Add(_config.DeadLetterTable(UnroutedDeadLetters), stream);
        return targets;

        void Add(string path, PartitionFilter partitions) =>
            targets.Add((Path.GetRelativePath(_config.Lake, path).Replace('\\', '/'), path, partitions));
    }

    /// <summary>
    /// Vacuums the stream's tables now (see <see cref="StreamOptions.VacuumInterval"/>), even when the
    /// interval turns background vacuuming off; waits for the background maintenance in flight first.
    /// Returns the files deleted.
    /// </summary>
    public async Task<int> VacuumAsync(CancellationToken cancellationToken)
    {
        if (_maintaining is { } running)
        {
            await running.ConfigureAwait(false);
        }

        return await VacuumAsync(VacuumTargets(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every table the stream writes: each signal's enriched, dead-letter and late-event tables, and the unrouted dead letters.</summary>
    private List<(string Table, string Path)> VacuumTargets()
    {
        var tables = new List<(string, string)>();
        foreach (var s in _signals)
        {
            var name = s.Env.Definition.Name;
            Add(_config.EnrichedTable(name));
            Add(_config.DeadLetterTable(name));
            Add(_config.LateEventTable(name));
        }

        Add(_config.DeadLetterTable(UnroutedDeadLetters));
        return tables;

        void Add(string path) => tables.Add((Path.GetRelativePath(_config.Lake, path).Replace('\\', '/'), path));
    }

    /// <summary>
    /// Each table through a handle of its own, on the runtime's clock, kept for the next vacuum, which then
    /// replays only the commits since this one's horizon. A table that fails is counted and left for next time.
    /// </summary>
    private async Task<int> VacuumAsync(List<(string Table, string Path)> tables, CancellationToken cancellationToken)
    {
        int deleted = 0;
        foreach (var (name, path) in tables)
        {
            try
            {
                if (!Directory.Exists(Path.Combine(path, "_delta_log")))
                {
                    continue;
                }

                DeltaTable? table;
                lock (_vacuumed)
                {
                    _vacuumed.TryGetValue(path, out table);
                }

                if (table is null)
                {
                    table = await DeltaTable.OpenAsync(path, new DeltaTableOptions { TimeProvider = _time }, cancellationToken).ConfigureAwait(false);
                    lock (_vacuumed)
                    {
                        _vacuumed[path] = table;
                    }
                }

                var result = await table.VacuumAsync(_options.VacuumRetention, dryRun: false, cancellationToken).ConfigureAwait(false);

                // Moves the table's fold of stream commits on, so that a restart reads at most the commits since.
                await StreamCommitsAsync(table, cancellationToken).ConfigureAwait(false);
                deleted += result.Files.Count;
                Metrics.Count("weft_stream_vacuumed_files_total", "Files no longer referenced, past the retention, deleted by the stream's vacuum, by table", result.Files.Count, ("table", name));
                Metrics.Count("weft_stream_vacuumed_bytes_total", "Bytes of the files the stream's vacuum deleted, by table", result.Files.Sum(f => f.Size), ("table", name));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                LastVacuumFailure = e;
                Metrics.Count("weft_stream_vacuum_failures_total", "Vacuums of a table that failed (tried again at the next interval)", 1, ("table", name));
            }
        }

        return deleted;
    }

    /// <summary>
    /// Each table through its own handle (the flushes keep theirs): the log's optimistic concurrency
    /// keeps a flush that commits meanwhile, and a table that fails is counted and left for next time.
    /// </summary>
    private async Task<int> CompactAsync(List<(string Table, string Path, PartitionFilter Partitions)> targets, CancellationToken cancellationToken)
    {
        int removed = 0;
        foreach (var (name, path, partitions) in targets)
        {
            try
            {
                if (!Directory.Exists(Path.Combine(path, "_delta_log")))
                {
                    continue;
                }

                var table = await EventTable.OpenAsync(path, cancellationToken).ConfigureAwait(false);
                var result = await table.CompactAsync(partitions, _options.CompactMinFiles, cancellationToken).ConfigureAwait(false);
                removed += result.FilesRemoved;
                Metrics.Count("weft_stream_compacted_files_total", "Small stream files rewritten into larger ones, by table", result.FilesRemoved, ("table", name));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                LastCompactionFailure = e;
                Metrics.Count("weft_stream_compaction_failures_total", "Background compactions of a table that failed (tried again at the next interval)", 1, ("table", name));
            }
        }

        return removed;
    }

    private async Task MaintainInBackgroundAsync(List<(string Table, string Path, PartitionFilter Partitions)> compactions, List<(string Table, string Path)> vacuums)
    {
        try
        {
            await CompactAsync(compactions, _stopping.Token).ConfigureAwait(false);
            await VacuumAsync(vacuums, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // stopped: what was not committed is left as it was
        }
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
        for (int s = 0; s < parsed.Length; s++)
        {
            if (await _signals[s].PrepareAsync(parsed[s], _routedSources, Metrics, nowMicros, _time, _options.SealRefresh, cancellationToken).ConfigureAwait(false) is { } batch)
            {
                batches.Add((_signals[s], batch));
            }
        }

        if (unrouted > 0)
        {
            Metrics.Count("weft_dead_letters_total", "Events rejected, by signal and stage", unrouted, ("signal", UnroutedDeadLetters), ("stage", "route"));
        }

        Metrics.Count("weft_stream_records_total", "Raw records read from the source", records.Count);

        return new PreparedBatch(offsets, batches);
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
    /// </summary>
    private int RouteUntaken(ParseResult[] parsed)
    {
        int n = _routedSources.Count;
        var taken = ArrayPool<byte>.Shared.Rent(n); // 0: untaken, 1: taken, 2: dead-lettered by a signal, 3: refused by the route
        try
        {
            taken.AsSpan(0, n).Clear();
            int untaken = n;
            foreach (var p in parsed)
            {
                foreach (int row in p.SourceRows)
                {
                    untaken -= taken[row] == 1 ? 0 : 1;
                    taken[row] = 1;
                }
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
            reason = $"malformed JSON: {ex.Message}";
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

    /// <summary>A micro-batch after stage one: its offsets (newest per partition) and each signal's elements.</summary>
    private sealed record PreparedBatch(Dictionary<string, long> Offsets, List<(SignalStream Signal, SignalBatch Batch)> Signals);

    /// <summary>What one flush writes and then commits.</summary>
    private sealed record Flush(Dictionary<string, long> Offsets, string Tag, long NowMicros, List<SignalFlush> Signals, List<DeadLetter> Unrouted, RawArchive.PendingFile? Archived);

    /// <summary>One signal's part of a micro-batch, ready to append: elements, what freshness needs, the rows for the lake.</summary>
    private sealed record SignalBatch(OnlineElement[] Elements, string?[] Types, long[] ArrivedMicros, EventBatch? LakeRows, long WatermarkMicros);

    /// <summary>One signal's part of a flush: its tables and the rows taken from its pending lists.</summary>
    private sealed record SignalFlush(
        SignalDefinition Definition, string Fingerprint, EventTable DeadLetters, EventTable Ledger,
        EventTableWriter Rows, List<DeadLetter> Dead, List<LateEvent> Late, long MaxEventTime)
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

            await using (Rows)
            {
                if (Rows.RowCount > 0)
                {
                    FilesAdded = (await Rows.CommitAsync(parameters, CancellationToken.None, commitAfter: onlineSynced).ConfigureAwait(false)).FilesAdded;
                    metrics.Count("weft_lake_rows_total", "Rows written to the lake, by signal and path", Rows.RowCount, ("signal", Definition.Name), ("path", EventLayout.StreamPath));
                }
            }

            // Both record the offsets they cover, so a replay after a crash before the source commit
            // does not record the same dead letters and late events again.
            var covered = new Dictionary<string, string> { [LakeParameters.Offsets] = parameters[LakeParameters.Offsets] };
            await DeadLetterTable.AppendAsync(DeadLetters, EventLayout.StreamPath, "stream", tag, onlyOnce: false, Dead, nowMicros, CancellationToken.None, covered).ConfigureAwait(false);
            await LateEventLedger.AppendAsync(Ledger, Definition.Bucket, Late, new Dictionary<string, string>(covered) { ["weft.tag"] = tag }, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>One signal's share of the stream: its compiled chain, pending lake rows, watermark and ledgers.</summary>
    private sealed class SignalStream
    {
        private readonly EventTable _lake;
        private readonly EventTable _deadLetters;
        private readonly EventTable _ledger;
        private readonly EnrichedLake _lakeView;
        private readonly Dictionary<string, long> _lakeOffsets;
        private readonly Dictionary<string, long> _deadHeld; // offsets whose dead letters the table holds
        private readonly Dictionary<string, long> _lateHeld; // ... and whose late events the ledger holds
        private readonly HashSet<string> _recalledFiles = new(StringComparer.Ordinal); // stream files whose rows the run has recalled
        private readonly int _lakeRowGroupSize;
        private EventTableWriter _pending; // filled by appends (stage two), taken by flushes
        private long _pendingRows; // rows in _pending; written by the append stage, read by the loop
        private List<DeadLetter> _pendingDead = [];
        private List<LateEvent> _pendingLate = [];
        private readonly ArrayBufferWriter<byte> _scratch = new(256);
        private SignalRun _run;
        private RawEventParser _parser;
        private ElementCodec _codec;
        private long _maxEventTime; // of the events prepared (stage one)
        private long _appendedMaxEventTime; // ... and of those appended (stage two): what a flush records
        private HashSet<long>? _sealedStarts;
        private long _sealedReadAt;

        private SignalStream(
            SignalEnvironment env, EventTable lake, int lakeRowGroupSize, EventTable deadLetters, EventTable ledger, EnrichedLake lakeView,
            Dictionary<string, long> lakeOffsets, long maxEventTime, Dictionary<string, long> deadHeld, Dictionary<string, long> lateHeld, TimeProvider time)
        {
            _maxEventTime = _appendedMaxEventTime = maxEventTime;
            _deadHeld = deadHeld;
            _lateHeld = lateHeld;
            Env = env;
            _lake = lake;
            _lakeRowGroupSize = lakeRowGroupSize;
            _pending = OpenLakeWriter();
            _deadLetters = deadLetters;
            _ledger = ledger;
            _lakeView = lakeView;
            _lakeOffsets = lakeOffsets;
            (_run, _parser, _codec) = Start(env, time);
        }

        public SignalEnvironment Env { get; private set; }

        public static async Task<SignalStream> OpenAsync(WeftConfig config, SignalEnvironment env, int lakeRowGroupSize, TimeProvider time, CancellationToken cancellationToken)
        {
            var name = env.Definition.Name;
            var lake = await EventTable.OpenOrCreateAsync(config.EnrichedTable(name), env.Signal.EnrichedSchema, EventLayout.PartitionColumns, cancellationToken: cancellationToken).ConfigureAwait(false);
            var dead = await DeadLetterTable.OpenAsync(config.DeadLetterTable(name), cancellationToken).ConfigureAwait(false);
            var ledger = await LateEventLedger.OpenAsync(config.LateEventTable(name), cancellationToken).ConfigureAwait(false);
            var view = await EnrichedLake.OpenAsync(config.EnrichedTable(name), env.Definition, cancellationToken).ConfigureAwait(false);

            var (lakeOffsets, maxEventTime) = await StreamCommitsAsync(lake.Log, cancellationToken).ConfigureAwait(false);
            var stream = new SignalStream(env, lake, lakeRowGroupSize, dead, ledger, view, lakeOffsets, NotAfterNow(maxEventTime, time),
                await HeldOffsetsAsync(dead, cancellationToken).ConfigureAwait(false),
                await HeldOffsetsAsync(ledger, cancellationToken).ConfigureAwait(false),
                time);
            await stream.RecallAsync(cancellationToken).ConfigureAwait(false);
            return stream;
        }

        /// <summary>
        /// The newest event time a lake's stream commits recorded, no later than now: lakes written before
        /// the watermark was held to the clock may record a skewed client's future time.
        /// </summary>
        private static long NotAfterNow(long maxEventTime, TimeProvider time) =>
            Math.Min(maxEventTime, Timestamps.ToMicros(time.GetUtcNow()));

        /// <summary>Events of the lake's stream rows the run was given back at open (<see cref="RecallAsync"/>).</summary>
        public long Recalled { get; private set; }

        /// <summary>How long that took.</summary>
        public TimeSpan RecallTime { get; private set; }

        /// <summary>
        /// Gives a new run the raw-event memory the stopped stream had: the lake's newest stream rows, up
        /// to the dedup window's capacity, whole buckets from the oldest chosen to the newest, recalled into
        /// the run (<see cref="SignalRun.Recall"/>). Within a bucket the rows come in the log's file order,
        /// not arrival order, so which of a bucket's ids the window lets go first may differ from before.
        /// Without it a restart let every redelivery of an event already stored through to the lake
        /// again, and a hot user's next events through the cap. Every row in the lake is durable online
        /// (a flush commits the lake after the store's sync), so dropping its replays loses nothing.
        /// </summary>
        private async Task RecallAsync(CancellationToken cancellationToken)
        {
            long started = Stopwatch.GetTimestamp();
            Recalled = await RecallNewAsync(cancellationToken).ConfigureAwait(false);
            RecallTime = Stopwatch.GetElapsedTime(started);
        }

        /// <summary>
        /// Recalls the stream buckets that hold files this run has neither recalled nor committed itself (at open: all), the
        /// newest first, until their new rows reach the dedup window's capacity; returns the rows read.
        /// A bucket is read whole, and rows the window holds already are not counted again
        /// (<see cref="SignalRun.Recall"/>), so this may run again after a rebalance: it then takes in
        /// what other runtimes of the group stored since, for the partitions this one now reads.
        /// </summary>
        private async Task<long> RecallNewAsync(CancellationToken cancellationToken)
        {
            var snapshot = await _lake.Log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
            var streamRows = PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.StreamPath);
            var newRowsByBucket = new SortedDictionary<string, long>(StringComparer.Ordinal); // bucket values sort as their times
            var files = new List<string>();
            foreach (var file in snapshot.Files(streamRows))
            {
                files.Add(file.Path);
                if (!_recalledFiles.Contains(file.Path))
                {
                    string bucket = file.PartitionValues.GetValueOrDefault(EventLayout.BucketColumn) ?? "";
                    newRowsByBucket[bucket] = newRowsByBucket.GetValueOrDefault(bucket) + (file.NumRecords ?? int.MaxValue);
                }
            }

            int capacity = _run.Options.DedupCapacity;
            var buckets = new List<string>();
            long rows = 0;
            foreach (var (bucket, count) in newRowsByBucket.Reverse())
            {
                if (rows >= capacity)
                {
                    break;
                }

                buckets.Add(bucket);
                rows += count;
            }

            string[] columns = [StandardColumns.EventId, StandardColumns.UserId, StandardColumns.EventTime];
            long read = 0;
            for (int b = buckets.Count - 1; b >= 0; b--)
            {
                var filter = streamRows.Equal(EventLayout.BucketColumn, buckets[b]);
                await foreach (var batch in _lake.ReadAsync(columns, filter, version: snapshot.Version, cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    _run.Recall(batch);
                    read += batch.RowCount;
                }
            }

            // The late events a policy drop or batch_only left out went into the dedup window (their
            // redeliveries are repeats, not late events again), but no lake table holds them: take the
            // ledger's ids observed since the oldest bucket recalled, as the window held them before.
            if (Env.Definition.Late != LatePolicy.Accept && buckets.Count > 0
                && TimeBuckets.TryParse(buckets[^1], out _, out long since))
            {
                var range = new ColumnRange(LateEventLedger.ObservedAtColumn, since, null);
                await foreach (var batch in _ledger.ReadAsync([StandardColumns.EventId], range: range, cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    foreach (var id in ((StringColumn)batch[StandardColumns.EventId]).Values)
                    {
                        _run.MarkSeen(id!);
                    }
                }
            }

            _recalledFiles.UnionWith(files);
            return read;
        }

        private static (SignalRun, RawEventParser, ElementCodec) Start(SignalEnvironment env, TimeProvider time, SignalRun? continuing = null) =>
            (env.Signal.StartRun(new ExecutorContext(env.Definition, time), new RunOptions { Assemble = false }, continuing),
             new RawEventParser(env.Signal, time),
             new ElementCodec(env.Definition, env.Signal.Fingerprint));

        public async Task RefreshEnrichmentsAsync(WeftConfig config, TimeProvider time, CancellationToken cancellationToken)
        {
            var fresh = await SignalEnvironment.LoadAsync(config, Env.Definition.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (fresh.EnrichmentFingerprint != Env.EnrichmentFingerprint)
            {
                // New tables, the same events seen: the dedup memory and hot-user counts go on (a fresh
                // run forgot them at every reload, letting redeliveries and hot users through).
                var continuing = fresh.Signal.Fingerprint == _run.Signal.Fingerprint ? _run : null;
                Env = fresh;
                (_run, _parser, _codec) = Start(fresh, time, continuing);
            }
        }

        /// <summary>Stage one for this signal begins with the parse of the routed records.</summary>
        public ParseResult Parse(List<RawRecord> routed, long nowMicros) => _parser.Parse(routed, Environment.ProcessorCount, nowMicros);

        /// <summary>Stage one for this signal after its parse: dead letters, late check, executors, encoding. Null when no element is left.</summary>
        public async Task<SignalBatch?> PrepareAsync(ParseResult parsed, List<SourceRecord> sources, WeftMetrics metrics, long nowMicros, TimeProvider time, TimeSpan sealRefresh, CancellationToken cancellationToken)
        {
            var definition = Env.Definition;
            for (int d = 0; d < parsed.DeadLetters.Count; d++)
            {
                var source = sources[parsed.DeadLetterRows[d]];
                if (!Holds(_deadHeld, source))
                {
                    _pendingDead.Add(parsed.DeadLetters[d] with { Source = SourceOf(source) });
                }
            }

            var events = parsed.Events;
            if (events.RowCount == 0)
            {
                Count(metrics, parsed.DeadLetters.Count, "parse");
                return null;
            }

            // Late events: older than the watermark, or in a bucket the batch path sealed.
            var sealedStarts = await SealedBucketStartsAsync(time, sealRefresh, cancellationToken).ConfigureAwait(false);
            long bucketLength = TimeBuckets.LengthMicros(definition.Bucket);
            var ids = ((StringColumn)events[StandardColumns.EventId]).Values;
            var users = ((PrimitiveColumn<long>)events[StandardColumns.UserId]).Values;
            var types = ((StringColumn)events[StandardColumns.EventType]).Values;
            var times = ((PrimitiveColumn<long>)events[StandardColumns.EventTime]).Values;
            var ingest = ((PrimitiveColumn<long>)events[StandardColumns.IngestTime]).Values;
            int n = events.RowCount;
            int[]? keep = null; // allocated at the first dropped row
            int kept = 0;
            var late = new TypeCounts();
            // From the batch's first late row on (most batches have none): its ids so far, and its late
            // ids not seen before.
            HashSet<string>? idsSoFar = null, lateHere = null;
            for (int i = 0; i < n; i++)
            {
                long watermark = _maxEventTime == long.MinValue ? long.MinValue : _maxEventTime - bucketLength;
                bool sealedBucket = sealedStarts.Count > 0 && sealedStarts.Contains(TimeBuckets.StartOf(times[i], definition.Bucket));
                if (times[i] < watermark || sealedBucket)
                {
                    if (idsSoFar is null)
                    {
                        (idsSoFar, lateHere) = (new HashSet<string>(n, StringComparer.Ordinal), new HashSet<string>(StringComparer.Ordinal));
                        for (int k = 0; k < i; k++)
                        {
                            idsSoFar.Add(ids[k]!);
                        }
                    }

                    // A repeated delivery of an event the stream has taken (before, or earlier in this
                    // batch), or has recorded late and left out, is the dedup's to drop, not another late
                    // event: the ledger holds each once. Left-out events go into the dedup window for that
                    // once the stages have run (their redeliveries are as late); the rest reach it through them.
                    bool repeat = _run.HasSeen(ids[i]!) || !idsSoFar.Add(ids[i]!);
                    if (!repeat)
                    {
                        lateHere!.Add(ids[i]!);
                        long lateness = sealedBucket
                            ? nowMicros - (TimeBuckets.StartOf(times[i], definition.Bucket) + bucketLength)
                            : watermark - times[i];
                        if (!Holds(_lateHeld, sources[parsed.SourceRows[i]]))
                        {
                            _pendingLate.Add(new LateEvent(ids[i]!, users[i], types[i]!, times[i], ingest[i], nowMicros, lateness,
                                sealedBucket ? "bucket sealed by batch" : "older than the stream watermark", definition.Late));
                        }

                        late.Add(types[i]!, 1);
                    }

                    if (definition.Late != LatePolicy.Accept)
                    {
                        if (keep is null)
                        {
                            keep = new int[n];
                            for (kept = 0; kept < i; kept++)
                            {
                                keep[kept] = kept;
                            }
                        }

                        continue;
                    }
                }

                // An event time ahead of the clock (a skewed client's, accepted up to the parser's future
                // skew) raises the watermark only to now: otherwise one such event would make every
                // on-time event after it late, until the clock caught up.
                _maxEventTime = Math.Max(_maxEventTime, Math.Min(times[i], nowMicros));
                idsSoFar?.Add(ids[i]!);
                if (keep is not null)
                {
                    keep[kept++] = i;
                }
            }

            for (int t = 0; t < late.Count; t++)
            {
                metrics.Count("weft_late_events_total", "Events the stream received late, by signal, event type and action", late.CountAt(t),
                    ("signal", definition.Name), ("event_type", late.TypeAt(t)), ("action", LatePolicyNames.Name(definition.Late)));
            }

            // For each row of `events`, the index of its record in `routed`/`sources`.
            var origins = parsed.SourceRows;
            if (keep is not null)
            {
                events = events.Gather(keep.AsSpan(0, kept));
                var gathered = new int[kept];
                for (int i = 0; i < kept; i++)
                {
                    gathered[i] = origins[keep[i]];
                }

                origins = gathered;
            }

            var enriched = await _run.ProcessTableAsync(events, cancellationToken).ConfigureAwait(false);
            if (lateHere is not null && definition.Late != LatePolicy.Accept)
            {
                // Only now: an on-time delivery of the same event earlier in this batch must first pass
                // the dedup, or it would be dropped as a repeat of the late one left out.
                foreach (var id in lateHere)
                {
                    _run.MarkSeen(id);
                }
            }

            var rejects = new List<DeadLetter>();
            int rejected = _run.Context.DrainDeadLetters(rejects);
            if (rejected > 0)
            {
                AddRejected(rejects, events, origins, sources);
            }

            Count(metrics, parsed.DeadLetters.Count, "parse");
            for (int r = 0; r < rejects.Count;)
            {
                // By the executor that rejected them, as the dead-letter table's stage column says; one
                // executor's rejects come together.
                int from = r;
                string stage = rejects[r].Stage;
                while (r < rejects.Count && string.Equals(rejects[r].Stage, stage, StringComparison.Ordinal))
                {
                    r++;
                }

                Count(metrics, r - from, stage);
            }

            if (enriched.RowCount == 0)
            {
                return null;
            }

            int m = enriched.RowCount;
            var elements = new OnlineElement[m];
            var eIds = ((StringColumn)enriched[StandardColumns.EventId]).Values;
            var eUsers = ((PrimitiveColumn<long>)enriched[StandardColumns.UserId]).Values;
            var eTimes = ((PrimitiveColumn<long>)enriched[StandardColumns.EventTime]).Values;
            var eIngest = ((PrimitiveColumn<long>)enriched[StandardColumns.IngestTime]).Values;
            var eTypes = ((StringColumn)enriched[StandardColumns.EventType]).Values;
            var payloads = _codec.EncodeAll(enriched, _scratch);
            for (int i = 0; i < elements.Length; i++)
            {
                elements[i] = new OnlineElement(eUsers[i], eTimes[i], eIds[i]!, eIngest[i], payloads[i]);
            }

            // Freshness is measured from when the source received the event (its append time; the
            // payload's ingest_time when the source has none).
            var rows = EnrichedRows(events, enriched);
            var arrived = new long[m];
            for (int i = 0; i < m; i++)
            {
                long at = rows[i] >= 0 ? sources[origins[rows[i]]].TimestampMicros : 0;
                arrived[i] = at > 0 ? at : eIngest[i];
            }

            // Lake: only rows beyond the offsets the lake already holds (a replay after a crash).
            int[]? fresh = null; // allocated at the first row the lake already holds
            int freshCount = 0;
            if (_lakeOffsets.Count > 0)
            {
                string? partition = null;
                long held = 0;
                bool hasHeld = false;
                for (int i = 0; i < m; i++)
                {
                    bool isFresh = true;
                    if (rows[i] >= 0)
                    {
                        var at = sources[origins[rows[i]]];
                        if (!string.Equals(at.Partition, partition, StringComparison.Ordinal))
                        {
                            partition = at.Partition;
                            hasHeld = _lakeOffsets.TryGetValue(partition, out held);
                        }

                        isFresh = !hasHeld || at.Offset > held;
                    }

                    if (!isFresh && fresh is null)
                    {
                        fresh = new int[m];
                        for (freshCount = 0; freshCount < i; freshCount++)
                        {
                            fresh[freshCount] = freshCount;
                        }
                    }
                    else if (isFresh && fresh is not null)
                    {
                        fresh[freshCount++] = i;
                    }
                }
            }

            var lakeRows = fresh is null ? enriched : freshCount > 0 ? enriched.Gather(fresh.AsSpan(0, freshCount)) : null;
            return new SignalBatch(elements, eTypes, arrived, lakeRows, _maxEventTime);
        }

        /// <summary>
        /// Executor rejects name the event only: its record gives the source, the raw payload and whether
        /// the dead-letter table already holds it (a replay after a crash).
        /// </summary>
        private void AddRejected(List<DeadLetter> rejects, EventBatch events, int[] origins, List<SourceRecord> sources)
        {
            var ids = ((StringColumn)events[StandardColumns.EventId]).Values;
            var byId = new Dictionary<string, int>(events.RowCount, StringComparer.Ordinal);
            for (int i = 0; i < events.RowCount; i++)
            {
                byId.TryAdd(ids[i]!, origins[i]);
            }

            foreach (var reject in rejects)
            {
                if (reject.EventId is { } id && byId.TryGetValue(id, out int origin))
                {
                    var source = sources[origin];
                    if (!Holds(_deadHeld, source))
                    {
                        var payload = source.Payload.Span[..Math.Min(source.Payload.Length, MaxDeadLetterPayloadBytes)];
                        _pendingDead.Add(reject with { Source = SourceOf(source), Payload = reject.Payload ?? Encoding.UTF8.GetString(payload) });
                    }
                }
                else
                {
                    _pendingDead.Add(reject);
                }
            }
        }

        /// <summary>
        /// Stage two for this signal: the idempotent online append (readable when it returns, durable at the next flush), freshness,
        /// and the rows kept for the next lake flush. Runs in the background, one batch at a time.
        /// </summary>
        public async Task AppendAsync(SignalBatch batch, IOnlineStore store, WeftMetrics metrics, TimeProvider time, CancellationToken cancellationToken)
        {
            var name = Env.Definition.Name;
            await store.AppendAsync(name, batch.Elements, null, OnlineDurability.Deferred, cancellationToken).ConfigureAwait(false);
            long servable = Timestamps.ToMicros(time.GetUtcNow());
            int m = batch.Elements.Length;
            var seconds = ArrayPool<double>.Shared.Rent(m);
            try
            {
                for (int i = 0; i < m; i++)
                {
                    seconds[i] = Math.Max(0, servable - batch.ArrivedMicros[i]) / 1e6;
                }

                ObservePerType(metrics, name, batch.Types, seconds.AsSpan(0, m));
            }
            finally
            {
                ArrayPool<double>.Shared.Return(seconds);
            }

            metrics.Count("weft_stream_events_total", "Enriched events appended online, by signal", m, ("signal", name));
            metrics.Gauge("weft_stream_watermark_seconds", "Newest event time the stream has seen, by signal, an event time ahead of the clock counted as the time it was read (Unix seconds)", batch.WatermarkMicros / 1e6, ("signal", name));
            _appendedMaxEventTime = Math.Max(_appendedMaxEventTime, batch.WatermarkMicros);
            if (batch.LakeRows is { } rows)
            {
                _pending.Add(rows.Project(Env.Signal.EnrichedSchema));
                Interlocked.Add(ref _pendingRows, rows.RowCount);
            }
        }

        /// <summary>
        /// The newest bucket that ends before the watermark (the newest event time less one bucket: older
        /// events are late), formatted as its partition value; null before the first event.
        /// </summary>
        public string? LastClosedBucket()
        {
            var bucket = Env.Definition.Bucket;
            long length = TimeBuckets.LengthMicros(bucket);
            if (_maxEventTime == long.MinValue || _maxEventTime - (2 * length) < TimeBuckets.MinMicros)
            {
                return null;
            }

            return TimeBuckets.Format(TimeBuckets.StartOf(_maxEventTime - length, bucket) - length, bucket);
        }

        /// <summary>Enriched rows, dead letters and late events waiting for the next flush (a count read while an append may add to it).</summary>
        public long PendingRows => Volatile.Read(ref _pendingRows) + _pendingDead.Count + _pendingLate.Count;

        /// <summary>Drops the rows pending since the last flush (the runtime is going away without flushing them).</summary>
        public ValueTask DropPendingAsync() => _pending.DisposeAsync();

        private EventTableWriter OpenLakeWriter() => _lake.OpenWriter(EventPartitioner.ByTimeBucket(Env.Definition.Bucket, EventLayout.StreamPath), _lakeRowGroupSize);

        /// <summary>Takes the pending rows, dead letters and late events for a flush. No append is in flight.</summary>
        public SignalFlush TakeFlush()
        {
            var flush = new SignalFlush(Env.Definition, Env.Signal.Fingerprint, _deadLetters, _ledger, _pending, _pendingDead, _pendingLate, _appendedMaxEventTime);
            (_pending, _pendingDead, _pendingLate) = (OpenLakeWriter(), [], []);
            Interlocked.Exchange(ref _pendingRows, 0);
            return flush;
        }

        /// <summary>
        /// Raises the offsets held by the lake, dead-letter and late-event tables to what their logs say
        /// now, and the watermark to the newest event time stored, and recalls the stream rows stored
        /// since the last recall: other runtimes of the group commit to them too, and the partitions
        /// they read may now be this one's. So a runtime taking partitions over judges lateness, drops
        /// redeliveries and caps hot users as a runtime restarted on the same lake would.
        /// </summary>
        /// <returns>The stored rows read back (<see cref="RecallNewAsync"/>).</returns>
        public async Task<long> RefreshHeldAsync(TimeProvider time, CancellationToken cancellationToken)
        {
            long recalled = await RecallNewAsync(cancellationToken).ConfigureAwait(false);
            var (lakeOffsets, maxEventTime) = await StreamCommitsAsync(_lake.Log, cancellationToken).ConfigureAwait(false);
            Merge(_lakeOffsets, lakeOffsets);
            _maxEventTime = Math.Max(_maxEventTime, NotAfterNow(maxEventTime, time)); // the prepare stage's; a flush records the append stage's
            Merge(_deadHeld, await HeldOffsetsAsync(_deadLetters, cancellationToken).ConfigureAwait(false));
            Merge(_lateHeld, await HeldOffsetsAsync(_ledger, cancellationToken).ConfigureAwait(false));
            return recalled;
        }

        /// <summary>After a flush's writes: the lake holds its rows up to its offsets.</summary>
        public void NoteWritten(SignalFlush flush, IReadOnlyDictionary<string, long> offsets)
        {
            // Its rows went through this run: a recall after a rebalance has nothing to learn from them.
            foreach (var file in flush.FilesAdded)
            {
                _recalledFiles.Add(file.Path);
            }

            if (flush.Rows.RowCount > 0)
            {
                Merge(_lakeOffsets, offsets);
            }
        }

        /// <summary>
        /// The start (µs) of every bucket the batch path has sealed, read from the lake at most every
        /// <paramref name="refresh"/> (a Delta log check is too dear for every micro-batch).
        /// </summary>
        private async ValueTask<HashSet<long>> SealedBucketStartsAsync(TimeProvider time, TimeSpan refresh, CancellationToken cancellationToken)
        {
            if (_sealedStarts is null || time.GetElapsedTime(_sealedReadAt) >= refresh)
            {
                var state = await _lakeView.GetStateAsync(cancellationToken).ConfigureAwait(false);
                var starts = new HashSet<long>();
                foreach (var bucket in state.SealedBuckets)
                {
                    // A bucket of another length never equals one of this signal's buckets.
                    if (TimeBuckets.TryParse(bucket, out var kind, out long start) && kind == Env.Definition.Bucket)
                    {
                        starts.Add(start);
                    }
                }

                (_sealedStarts, _sealedReadAt) = (starts, time.GetTimestamp());
            }

            return _sealedStarts;
        }

        /// <summary>
        /// For each enriched row, its row in <paramref name="events"/> (-1 if none). The router keeps each
        /// event type's rows in order and the steps only drop rows, so each enriched row is found by walking
        /// forward over the rows of its type; if a step reordered or made rows, falls back to the event id.
        /// </summary>
        private int[] EnrichedRows(EventBatch events, EventBatch enriched)
        {
            var ids = ((StringColumn)events[StandardColumns.EventId]).Values;
            var types = ((StringColumn)events[StandardColumns.EventType]).Values;
            var eIds = ((StringColumn)enriched[StandardColumns.EventId]).Values;
            var eTypes = ((StringColumn)enriched[StandardColumns.EventType]).Values;
            var rows = new int[enriched.RowCount];
            var cursors = new TypeCounts(); // per event type, the next row of `events` to look at
            for (int i = 0; i < rows.Length; i++)
            {
                string type = eTypes[i]!;
                int slot = cursors.IndexOf(type);
                if (slot < 0)
                {
                    slot = cursors.Add(type, 0);
                }

                int r = cursors.CountAt(slot);
                while (r < ids.Length && !(string.Equals(types[r], type, StringComparison.Ordinal) && string.Equals(ids[r], eIds[i], StringComparison.Ordinal)))
                {
                    r++;
                }

                if (r == ids.Length)
                {
                    return EnrichedRowsById(ids, eIds);
                }

                rows[i] = r;
                cursors.Set(slot, r + 1);
            }

            return rows;
        }

        private static int[] EnrichedRowsById(string?[] ids, string?[] eIds)
        {
            var byId = new Dictionary<string, int>(ids.Length, StringComparer.Ordinal);
            for (int r = 0; r < ids.Length; r++)
            {
                byId[ids[r]!] = r;
            }

            var rows = new int[eIds.Length];
            for (int i = 0; i < rows.Length; i++)
            {
                rows[i] = eIds[i] is { } id && byId.TryGetValue(id, out int r) ? r : -1;
            }

            return rows;
        }

        /// <summary>Observes each event type's values with one histogram call (a counting sort by type first).</summary>
        private static void ObservePerType(WeftMetrics metrics, string signal, string?[] types, Span<double> seconds)
        {
            var groups = new TypeCounts();
            var group = ArrayPool<int>.Shared.Rent(seconds.Length);
            var sorted = ArrayPool<double>.Shared.Rent(seconds.Length);
            try
            {
                for (int i = 0; i < seconds.Length; i++)
                {
                    group[i] = groups.Add(types[i]!, 1);
                }

                Span<int> next = groups.Count <= 64 ? stackalloc int[groups.Count] : new int[groups.Count];
                for (int g = 1; g < next.Length; g++)
                {
                    next[g] = next[g - 1] + groups.CountAt(g - 1);
                }

                for (int i = 0; i < seconds.Length; i++)
                {
                    sorted[next[group[i]]++] = seconds[i];
                }

                int start = 0;
                for (int g = 0; g < groups.Count; g++)
                {
                    metrics.ObserveMany("weft_freshness_seconds", "Event arrival at the source to servable online, by signal and event type",
                        sorted.AsSpan(start, groups.CountAt(g)), ("signal", signal), ("event_type", groups.TypeAt(g)));
                    start += groups.CountAt(g);
                }
            }
            finally
            {
                ArrayPool<int>.Shared.Return(group);
                ArrayPool<double>.Shared.Return(sorted);
            }
        }

        private void Count(WeftMetrics metrics, int rejected, string stage)
        {
            if (rejected > 0)
            {
                metrics.Count("weft_dead_letters_total", "Events rejected, by signal and stage", rejected, ("signal", Env.Definition.Name), ("stage", stage));
            }
        }
    }

    /// <summary>
    /// Counts per event type for one micro-batch: a signal has a handful of types, so a linear scan (by
    /// reference first: the parser hands out the definition's type strings) beats a dictionary.
    /// </summary>
    private sealed class TypeCounts
    {
        private string[] _types = new string[4];
        private int[] _counts = new int[4];

        public int Count { get; private set; }

        public string TypeAt(int slot) => _types[slot];

        public int CountAt(int slot) => _counts[slot];

        public void Set(int slot, int value) => _counts[slot] = value;

        public int IndexOf(string type)
        {
            for (int i = 0; i < Count; i++)
            {
                if (ReferenceEquals(_types[i], type) || string.Equals(_types[i], type, StringComparison.Ordinal))
                {
                    return i;
                }
            }

            return -1;
        }

        /// <summary>Adds <paramref name="by"/> to <paramref name="type"/>'s count (a new slot for a new type); returns its slot.</summary>
        public int Add(string type, int by)
        {
            int slot = IndexOf(type);
            if (slot < 0)
            {
                if (Count == _types.Length)
                {
                    Array.Resize(ref _types, Count * 2);
                    Array.Resize(ref _counts, Count * 2);
                }

                slot = Count++;
                _types[slot] = type;
                _counts[slot] = 0;
            }

            _counts[slot] += by;
            return slot;
        }
    }

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
