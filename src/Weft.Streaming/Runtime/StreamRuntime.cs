using System.Buffers;
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
    /// <summary>Records per micro-batch (default 2,000).</summary>
    public int MaxBatchRecords { get; init; } = 2_000;

    /// <summary>How long a read waits for the first record of a micro-batch (default 50 ms).</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How often stream partitions are flushed to the lake and source offsets committed (default 5 s).</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the online store is trimmed to each signal's max_length (default 60 s).</summary>
    public TimeSpan TrimInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How often enrichment tables are checked for new versions (default 30 s).</summary>
    public TimeSpan EnrichmentRefresh { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The consumer name offsets are checkpointed under (default "weft-stream").</summary>
    public string Consumer { get; init; } = "weft-stream";

    public void Validate()
    {
        if (MaxBatchRecords < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBatchRecords), MaxBatchRecords, "StreamOptions.MaxBatchRecords must be at least 1");
        }

        if (FlushInterval <= TimeSpan.Zero || MaxWait < TimeSpan.Zero || TrimInterval <= TimeSpan.Zero || EnrichmentRefresh <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(FlushInterval), "StreamOptions intervals must be positive");
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
public sealed class StreamRuntime
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
    private readonly List<DeadLetter> _unroutedPending = [];
    private readonly Dictionary<string, long> _processed = new(StringComparer.Ordinal);
    private readonly HashSet<string> _knownTypes;
    private long _lastFlush;
    private long _lastTrim;
    private long _lastRefresh;
    private int _flushes;

    private StreamRuntime(WeftConfig config, IEventSource source, IOnlineStore store, StreamOptions options, TimeProvider time, List<SignalStream> signals, EventTable unrouted)
    {
        _config = config;
        _source = source;
        _store = store;
        _options = options;
        _time = time;
        _signals = signals;
        _unrouted = unrouted;
        _knownTypes = signals.SelectMany(s => s.Env.Definition.EventTypes.Select(t => t.Name)).ToHashSet(StringComparer.Ordinal);
        _lastFlush = _lastTrim = _lastRefresh = time.GetTimestamp();
    }

    public WeftMetrics Metrics { get; } = new();

    /// <summary>The signals this runtime runs.</summary>
    public IReadOnlyList<string> Signals => _signals.Select(s => s.Env.Definition.Name).ToList();

    /// <summary>Records read from the source since start.</summary>
    public long RecordsIn { get; private set; }

    /// <summary>Loads the signals (all in the config's signal folder, or <paramref name="signals"/>) and the lake state.</summary>
    public static async Task<StreamRuntime> CreateAsync(
        WeftConfig config, IEventSource source, IOnlineStore store, IReadOnlyList<string>? signals = null, StreamOptions? options = null,
        TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        options ??= new StreamOptions();
        options.Validate();
        time ??= TimeProvider.System;
        var registry = ExecutorRegistry.CreateDefault();
        var names = signals ?? config.LoadSignals(registry.Contains).Select(s => s.Name).ToList();
        var streams = new List<SignalStream>();
        foreach (var name in names)
        {
            var env = await SignalEnvironment.LoadAsync(config, name, registry, cancellationToken).ConfigureAwait(false);
            streams.Add(await SignalStream.OpenAsync(config, env, time, cancellationToken).ConfigureAwait(false));
        }

        var unrouted = await DeadLetterTable.OpenAsync(config.DeadLetterTable(UnroutedDeadLetters), cancellationToken).ConfigureAwait(false);
        return new StreamRuntime(config, source, store, options, time, streams, unrouted);
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

        await FlushAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>One micro-batch: read, process, append online; flush, trim and refresh when due. Returns the records read.</summary>
    public async Task<int> StepAsync(CancellationToken cancellationToken)
    {
        var records = await _source.ReadBatchAsync(_options.MaxBatchRecords, _options.MaxWait, cancellationToken).ConfigureAwait(false);
        if (records.Count > 0)
        {
            await ProcessAsync(records, cancellationToken).ConfigureAwait(false);
        }

        long now = _time.GetTimestamp();
        if (_time.GetElapsedTime(_lastFlush, now) >= _options.FlushInterval)
        {
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        if (_time.GetElapsedTime(_lastTrim, now) >= _options.TrimInterval)
        {
            _lastTrim = now;
            foreach (var s in _signals)
            {
                await _store.TrimAsync(s.Env.Definition.Name, s.Env.Definition.MaxLength, cancellationToken).ConfigureAwait(false);
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

    private async Task ProcessAsync(IReadOnlyList<SourceRecord> records, CancellationToken cancellationToken)
    {
        RecordsIn += records.Count;
        long nowMicros = Timestamps.ToMicros(_time.GetUtcNow());
        var routed = new List<Routed>(records.Count);
        foreach (var r in records)
        {
            if (_processed.TryGetValue(r.Partition, out long seen) && r.Offset <= seen)
            {
                continue; // redelivered within this process (e.g. a rebalance): already handled
            }

            _processed[r.Partition] = r.Offset;
            var source = $"{r.Partition}@{r.Offset.ToString(CultureInfo.InvariantCulture)}";
            if (Route(r.Payload, out string? eventId, out string? reason))
            {
                routed.Add(new Routed(new RawRecord(r.Payload, source), r, eventId));
            }
            else
            {
                _unroutedPending.Add(new DeadLetter(null, null, null, "route", reason!, source, Encoding.UTF8.GetString(r.Payload)));
                Metrics.Count("weft_dead_letters_total", "Events rejected, by signal and stage", 1, ("signal", UnroutedDeadLetters), ("stage", "route"));
            }
        }

        Metrics.Count("weft_stream_records_total", "Raw records read from the source", records.Count);
        foreach (var signal in _signals)
        {
            await signal.ProcessAsync(routed, _store, Metrics, nowMicros, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A cheap check before any signal parses: valid JSON object, a user_id, an event type some signal includes.</summary>
    private bool Route(byte[] payload, out string? eventId, out string? reason)
    {
        eventId = null;
        try
        {
            using var doc = JsonDocument.Parse(payload);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                reason = "not a JSON object";
                return false;
            }

            if (!root.TryGetProperty(StandardColumns.UserId, out var user) || user.ValueKind == JsonValueKind.Null)
            {
                reason = "missing user_id";
                return false;
            }

            if (!root.TryGetProperty(StandardColumns.EventType, out var type) || type.ValueKind != JsonValueKind.String)
            {
                reason = "missing event_type";
                return false;
            }

            if (root.TryGetProperty(StandardColumns.EventId, out var id) && id.ValueKind == JsonValueKind.String)
            {
                eventId = id.GetString();
            }

            if (!_knownTypes.Contains(type.GetString()!))
            {
                reason = $"unknown event_type '{type.GetString()}': no signal includes it";
                return false;
            }

            reason = null;
            return true;
        }
        catch (JsonException ex)
        {
            reason = $"malformed JSON: {ex.Message}";
            return false;
        }
    }

    /// <summary>
    /// Writes every signal's pending stream rows, dead letters and late events to the lake, then commits
    /// the source offsets processed so far: only once both the online store and the lake hold them.
    /// </summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        _lastFlush = _time.GetTimestamp();
        _flushes++;
        var offsets = new Dictionary<string, long>(_processed, StringComparer.Ordinal);
        string tag = $"stream:{Guid.NewGuid():N}";
        long nowMicros = Timestamps.ToMicros(_time.GetUtcNow());
        foreach (var signal in _signals)
        {
            await signal.FlushAsync(offsets, tag, nowMicros, Metrics, cancellationToken).ConfigureAwait(false);
        }

        await DeadLetterTable.AppendAsync(_unrouted, EventLayout.StreamPath, _options.Consumer, tag, _unroutedPending, nowMicros, cancellationToken).ConfigureAwait(false);
        _unroutedPending.Clear();
        if (offsets.Count > 0)
        {
            await _source.CommitAsync(offsets, cancellationToken).ConfigureAwait(false);
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
        private readonly List<EventBatch> _pending = [];
        private readonly List<DeadLetter> _pendingDead = [];
        private readonly List<LateEvent> _pendingLate = [];
        private readonly ArrayBufferWriter<byte> _scratch = new(256);
        private SignalRun _run;
        private RawEventParser _parser;
        private ElementCodec _codec;
        private long _maxEventTime = long.MinValue;

        private SignalStream(SignalEnvironment env, EventTable lake, EventTable deadLetters, EventTable ledger, EnrichedLake lakeView, Dictionary<string, long> lakeOffsets, TimeProvider time)
        {
            Env = env;
            _lake = lake;
            _deadLetters = deadLetters;
            _ledger = ledger;
            _lakeView = lakeView;
            _lakeOffsets = lakeOffsets;
            (_run, _parser, _codec) = Start(env, time);
        }

        public SignalEnvironment Env { get; private set; }

        public static async Task<SignalStream> OpenAsync(WeftConfig config, SignalEnvironment env, TimeProvider time, CancellationToken cancellationToken)
        {
            var name = env.Definition.Name;
            var lake = await EventTable.OpenOrCreateAsync(config.EnrichedTable(name), env.Signal.EnrichedSchema, EventLayout.PartitionColumns, cancellationToken: cancellationToken).ConfigureAwait(false);
            var dead = await DeadLetterTable.OpenAsync(config.DeadLetterTable(name), cancellationToken).ConfigureAwait(false);
            var ledger = await LateEventLedger.OpenAsync(config.LateEventTable(name), cancellationToken).ConfigureAwait(false);
            var view = await EnrichedLake.OpenAsync(config.EnrichedTable(name), env.Definition, cancellationToken).ConfigureAwait(false);

            // Offsets the lake already holds: the newest value per partition over the stream commits.
            var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var commit in await lake.Log.GetHistoryAsync(cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                if (commit.Parameters.TryGetValue(LakeParameters.Offsets, out var text))
                {
                    foreach (var (partition, offset) in ParseOffsets(text))
                    {
                        offsets[partition] = Math.Max(offset, offsets.GetValueOrDefault(partition, -1));
                    }
                }
            }

            return new SignalStream(env, lake, dead, ledger, view, offsets, time);
        }

        private static (SignalRun, RawEventParser, ElementCodec) Start(SignalEnvironment env, TimeProvider time) =>
            (env.Signal.StartRun(new ExecutorContext(env.Definition, time), new RunOptions { Assemble = false }),
             new RawEventParser(env.Signal, time),
             new ElementCodec(env.Definition, env.Signal.Fingerprint));

        public async Task RefreshEnrichmentsAsync(WeftConfig config, TimeProvider time, CancellationToken cancellationToken)
        {
            var fresh = await SignalEnvironment.LoadAsync(config, Env.Definition.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (fresh.EnrichmentFingerprint != Env.EnrichmentFingerprint)
            {
                Env = fresh;
                (_run, _parser, _codec) = Start(fresh, time);
            }
        }

        public async Task ProcessAsync(List<Routed> routed, IOnlineStore store, WeftMetrics metrics, long nowMicros, TimeProvider time, CancellationToken cancellationToken)
        {
            var definition = Env.Definition;
            var parsed = _parser.Parse(routed.Select(r => r.Raw));
            foreach (var d in parsed.DeadLetters)
            {
                _pendingDead.Add(d);
            }

            var events = parsed.Events;
            if (events.RowCount == 0)
            {
                Count(metrics, parsed.DeadLetters.Count, "parse");
                return;
            }

            // Late events: older than the watermark, or in a bucket the batch path sealed.
            var state = await _lakeView.GetStateAsync(cancellationToken).ConfigureAwait(false);
            long bucketLength = TimeBuckets.LengthMicros(definition.Bucket);
            var ids = ((StringColumn)events[StandardColumns.EventId]).Values;
            var users = ((PrimitiveColumn<long>)events[StandardColumns.UserId]).Values;
            var types = ((StringColumn)events[StandardColumns.EventType]).Values;
            var times = ((PrimitiveColumn<long>)events[StandardColumns.EventTime]).Values;
            var ingest = ((PrimitiveColumn<long>)events[StandardColumns.IngestTime]).Values;
            var keep = new List<int>(events.RowCount);
            for (int i = 0; i < events.RowCount; i++)
            {
                long watermark = _maxEventTime == long.MinValue ? long.MinValue : _maxEventTime - bucketLength;
                bool sealedBucket = state.SealedBuckets.Contains(TimeBuckets.Format(times[i], definition.Bucket));
                if (times[i] < watermark || sealedBucket)
                {
                    long lateness = sealedBucket
                        ? nowMicros - (TimeBuckets.StartOf(times[i], definition.Bucket) + bucketLength)
                        : watermark - times[i];
                    _pendingLate.Add(new LateEvent(ids[i]!, users[i], types[i]!, times[i], ingest[i], nowMicros, lateness,
                        sealedBucket ? "bucket sealed by batch" : "older than the stream watermark", definition.Late));
                    metrics.Count("weft_late_events_total", "Events the stream received late, by signal, event type and action", 1,
                        ("signal", definition.Name), ("event_type", types[i]!), ("action", SignalJsonNames.Late(definition.Late)));
                    if (definition.Late != LatePolicy.Accept)
                    {
                        continue;
                    }
                }

                _maxEventTime = Math.Max(_maxEventTime, times[i]);
                keep.Add(i);
            }

            if (keep.Count < events.RowCount)
            {
                events = events.Gather(keep.ToArray());
            }

            var context = _run.Context;
            int deadBefore = context.DeadLetters.Count;
            var enriched = await _run.ProcessTableAsync(events, cancellationToken).ConfigureAwait(false);
            var rejected = context.DeadLetters.Skip(deadBefore).ToList();
            _pendingDead.AddRange(rejected);
            Count(metrics, parsed.DeadLetters.Count + rejected.Count, "parse+executors");
            if (enriched.RowCount == 0)
            {
                return;
            }

            // Online: idempotent append, durable when it returns.
            var elements = new OnlineElement[enriched.RowCount];
            var eIds = ((StringColumn)enriched[StandardColumns.EventId]).Values;
            var eUsers = ((PrimitiveColumn<long>)enriched[StandardColumns.UserId]).Values;
            var eTimes = ((PrimitiveColumn<long>)enriched[StandardColumns.EventTime]).Values;
            var eIngest = ((PrimitiveColumn<long>)enriched[StandardColumns.IngestTime]).Values;
            var eTypes = ((StringColumn)enriched[StandardColumns.EventType]).Values;
            for (int i = 0; i < elements.Length; i++)
            {
                elements[i] = new OnlineElement(eUsers[i], eTimes[i], eIds[i]!, eIngest[i], _codec.Encode(enriched, i, _scratch));
            }

            await store.AppendAsync(definition.Name, elements, null, cancellationToken).ConfigureAwait(false);
            long servable = Timestamps.ToMicros(time.GetUtcNow());
            var arrivals = new Dictionary<string, long>(routed.Count, StringComparer.Ordinal);
            foreach (var r in routed)
            {
                if (r.EventId is not null)
                {
                    arrivals[r.EventId] = r.Record.TimestampMicros;
                }
            }

            for (int i = 0; i < elements.Length; i++)
            {
                // Freshness: from when the source received the event (its append time; the payload's
                // ingest_time when the source has none) to when a read can see it.
                long arrived = arrivals.TryGetValue(eIds[i]!, out long at) && at > 0 ? at : eIngest[i];
                metrics.Observe("weft_freshness_seconds", "Event arrival at the source to servable online, by signal and event type", Math.Max(0, servable - arrived) / 1e6,
                    ("signal", definition.Name), ("event_type", eTypes[i]!));
            }

            metrics.Count("weft_stream_events_total", "Enriched events appended online, by signal", elements.Length, ("signal", definition.Name));
            metrics.Gauge("weft_stream_watermark_seconds", "Newest event time the stream has seen, by signal (Unix seconds)", _maxEventTime / 1e6, ("signal", definition.Name));

            // Lake: only rows beyond the offsets the lake already holds (a replay after a crash).
            var fresh = new List<int>(enriched.RowCount);
            Dictionary<string, SourceRecord>? positions = null;
            if (_lakeOffsets.Count > 0)
            {
                positions = new Dictionary<string, SourceRecord>(StringComparer.Ordinal);
                foreach (var r in routed)
                {
                    if (r.EventId is not null)
                    {
                        positions[r.EventId] = r.Record;
                    }
                }
            }

            for (int i = 0; i < enriched.RowCount; i++)
            {
                if (positions is null || !positions.TryGetValue(eIds[i]!, out var at)
                    || !_lakeOffsets.TryGetValue(at.Partition, out long held) || at.Offset > held)
                {
                    fresh.Add(i);
                }
            }

            if (fresh.Count > 0)
            {
                _pending.Add(fresh.Count == enriched.RowCount ? enriched : enriched.Gather(fresh.ToArray()));
            }
        }

        private void Count(WeftMetrics metrics, int rejected, string stage)
        {
            if (rejected > 0)
            {
                metrics.Count("weft_dead_letters_total", "Events rejected, by signal and stage", rejected, ("signal", Env.Definition.Name), ("stage", stage));
            }
        }

        public async Task FlushAsync(IReadOnlyDictionary<string, long> offsets, string tag, long nowMicros, WeftMetrics metrics, CancellationToken cancellationToken)
        {
            var definition = Env.Definition;
            var parameters = new Dictionary<string, string>
            {
                [LakeParameters.Path] = EventLayout.StreamPath,
                [LakeParameters.Fingerprint] = Env.Signal.Fingerprint,
                [LakeParameters.Offsets] = FormatOffsets(offsets),
            };
            if (_pending.Count > 0)
            {
                var rows = EventBatch.Concat(Env.Signal.EnrichedSchema, _pending);
                await _lake.AppendAsync(rows, EventPartitioner.ByTimeBucket(definition.Bucket, EventLayout.StreamPath), parameters, cancellationToken).ConfigureAwait(false);
                metrics.Count("weft_lake_rows_total", "Rows written to the lake, by signal and path", rows.RowCount, ("signal", definition.Name), ("path", EventLayout.StreamPath));
                _pending.Clear();
                foreach (var (partition, offset) in offsets)
                {
                    _lakeOffsets[partition] = Math.Max(offset, _lakeOffsets.GetValueOrDefault(partition, -1));
                }
            }

            await DeadLetterTable.AppendAsync(_deadLetters, EventLayout.StreamPath, "stream", tag, _pendingDead, nowMicros, cancellationToken).ConfigureAwait(false);
            _pendingDead.Clear();
            await LateEventLedger.AppendAsync(_ledger, definition.Bucket, _pendingLate, new Dictionary<string, string> { ["weft.tag"] = tag }, cancellationToken).ConfigureAwait(false);
            _pendingLate.Clear();
        }
    }

    /// <summary>A record that passed routing, with the event id read while routing (for the lake's replay check).</summary>
    private readonly record struct Routed(RawRecord Raw, SourceRecord Record, string? EventId);

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
