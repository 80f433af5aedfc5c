using System.Buffers;
using System.Diagnostics;
using System.Text;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Engine.Observability;
using Weft.Engine.Sequences;
using Weft.Online;
using Weft.Storage;

namespace Weft.Streaming.Runtime;

// One signal's share of the stream (SignalStream), and the per-type counts of a micro-batch.
public sealed partial class StreamRuntime
{
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
        private readonly HashSet<string> _recordedLate = new(StringComparer.Ordinal); // policy accept: ids an earlier life recorded late (from the ledger, at open, at most the dedup window's capacity)
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
        private long _recordedMaxEventTime; // ... and the newest the lake's stream commits record
        private HashSet<long>? _sealedStarts;
        private long _sealedReadAt;

        private SignalStream(
            SignalEnvironment env, EventTable lake, int lakeRowGroupSize, EventTable deadLetters, EventTable ledger, EnrichedLake lakeView,
            Dictionary<string, long> lakeOffsets, long maxEventTime, Dictionary<string, long> deadHeld, Dictionary<string, long> lateHeld, TimeProvider time)
        {
            _maxEventTime = _appendedMaxEventTime = _recordedMaxEventTime = maxEventTime;
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
            var lake = await EnrichedLake.OpenForWritingAsync(config, env.Signal, cancellationToken).ConfigureAwait(false);
            var dead = await DeadLetterTable.OpenAsync(config.DeadLetterTable(name), cancellationToken).ConfigureAwait(false);
            var ledger = await LateEventLedger.OpenAsync(config.LateEventTable(name), cancellationToken).ConfigureAwait(false);
            var view = await EnrichedLake.OpenAsync(config.EnrichedTable(name), env.Definition, cancellationToken).ConfigureAwait(false);

            var (lakeOffsets, maxEventTime) = await StreamCommitsAsync(lake.Log, cancellationToken).ConfigureAwait(false);
            var stream = new SignalStream(env, lake, lakeRowGroupSize, dead, ledger, view, lakeOffsets, NotAfterNow(maxEventTime, time),
                await HeldOffsetsAsync(dead, cancellationToken).ConfigureAwait(false),
                await HeldOffsetsAsync(ledger, cancellationToken).ConfigureAwait(false),
                time);
            await stream.RecallAsync(cancellationToken).ConfigureAwait(false);
            if (await EnrichedLake.LastStreamedUnderAsync(lake, cancellationToken).ConfigureAwait(false) is { } streamedUnder && streamedUnder != env.Signal.Fingerprint)
            {
                stream.DefinitionChanged = new SignalDefinitionChanged(name, streamedUnder, env.Signal.Fingerprint, (await view.GetStateAsync(cancellationToken).ConfigureAwait(false)).SealedThroughMicros,
                    env.Definition.Lookback.Ticks / TimeSpan.TicksPerMicrosecond);
            }

            stream.TailRecompute = await OwedTailAsync(config.EnrichedTable(name), name, env.Signal.Fingerprint, stream.DefinitionChanged, time, cancellationToken).ConfigureAwait(false);
            if (stream.DefinitionChanged is not null)
            {
                // The record carries the debt now: the lake says the stream runs the new definition, so the
                // next start finds no change (and announces none) even when no event arrives before it.
                var commit = DeltaTransaction.Create(DefinitionOperation)
                    .WithParameter(LakeParameters.Path, EventLayout.StreamPath)
                    .WithParameter(LakeParameters.Fingerprint, env.Signal.Fingerprint);
                await lake.Log.CommitAsync(commit.Build(), cancellationToken).ConfigureAwait(false);
            }

            return stream;
        }

        /// <summary>
        /// The tail recompute this signal is owed: the one <paramref name="changed"/> calls for, the one an
        /// earlier process recorded and did not complete, or both in one range. A new one is recorded
        /// before the runtime exists, so before the stream writes anything under the new definition
        /// (after which the change can no longer be seen in the lake).
        /// </summary>
        private static async Task<TailRecompute?> OwedTailAsync(string table, string signal, string definition, SignalDefinitionChanged? changed, TimeProvider time, CancellationToken cancellationToken) =>
            await PendingTailFile.OweAsync(table, signal, definition, changed?.TailRequest(time.GetUtcNow()), cancellationToken).ConfigureAwait(false) is { } owed
                ? new TailRecompute(signal, definition, owed.Tail, changed, owed.Carried)
                : null;

        /// <summary>Set at open when the stream last wrote this signal under another definition.</summary>
        public SignalDefinitionChanged? DefinitionChanged { get; private set; }

        /// <summary>Set at open when this signal is owed a tail recompute (<see cref="StreamRuntime.TailRecomputes"/>).</summary>
        public TailRecompute? TailRecompute { get; private set; }

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
            Recalled = await RecallNewAsync(cancellationToken, atOpen: true).ConfigureAwait(false);
            RecallTime = Stopwatch.GetElapsedTime(started);
        }

        /// <summary>
        /// Recalls the stream buckets that hold files this run has neither recalled nor committed itself (at open: all), the
        /// newest first, until their new rows reach the dedup window's capacity; returns the rows read.
        /// A bucket is read whole, and rows the window holds already are not counted again
        /// (<see cref="SignalRun.Recall"/>), so this may run again after a rebalance: it then takes in
        /// what other runtimes of the group stored since, for the partitions this one now reads.
        /// </summary>
        private async Task<long> RecallNewAsync(CancellationToken cancellationToken, bool atOpen = false)
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
            // Under accept the ledger holds only events the stages kept, which the lake holds too once
            // their flush commits; its ids are recalled as recorded (a crash between the ledger's commit
            // and the rows' would otherwise record their replay again), but never into the dedup window:
            // the replay must still reach the lake.
            bool accept = Env.Definition.Late == LatePolicy.Accept;
            if ((!accept || atOpen) && buckets.Count > 0 && TimeBuckets.TryParse(buckets[^1], out _, out long since))
            {
                var range = new ColumnRange(LateEventLedger.ObservedAtColumn, since, null);
                var recorded = accept ? new List<(long ObservedAt, string Id)>() : null;
                await foreach (var batch in _ledger.ReadAsync([StandardColumns.EventId, LateEventLedger.ObservedAtColumn], range: range, cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    var ids = ((StringColumn)batch[StandardColumns.EventId]).Values;
                    var observed = ((PrimitiveColumn<long>)batch[LateEventLedger.ObservedAtColumn]).Values;
                    for (int i = 0; i < ids.Length; i++)
                    {
                        if (recorded is not null)
                        {
                            recorded.Add((observed[i], ids[i]!));
                        }
                        else
                        {
                            _run.MarkSeen(ids[i]!);
                        }
                    }
                }

                if (recorded is not null)
                {
                    // Only an earlier life's (read at open): this one's go through its dedup window. The
                    // newest observed, as many as the window holds (files come in bucket order, not arrival).
                    recorded.Sort((a, b) => b.ObservedAt.CompareTo(a.ObservedAt));
                    for (int i = 0; i < recorded.Count && i < capacity; i++)
                    {
                        _recordedLate.Add(recorded[i].Id);
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
            // The definition this stream started with, never the file as it is now: a definition deployed
            // for the next start was taken up here mid-run, its rows then neither served (another
            // fingerprint) nor, after a schema change, writable to the lake.
            var fresh = await SignalEnvironment.LoadAsync(config, Env.Definition, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (fresh.EnrichmentFingerprint != Env.EnrichmentFingerprint)
            {
                // New tables, the same events seen: the dedup memory and hot-user counts go on (a fresh
                // run forgot them at every reload, letting redeliveries and hot users through).
                Env = fresh;
                (_run, _parser, _codec) = Start(fresh, time, continuing: _run);
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
            int pendingLateBefore = _pendingLate.Count;
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
                    bool repeat = _run.HasSeen(ids[i]!) || (_recordedLate.Count > 0 && _recordedLate.Contains(ids[i]!)) || !idsSoFar.Add(ids[i]!);
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

                        if (definition.Late != LatePolicy.Accept)
                        {
                            late.Add(types[i]!, 1); // accept: counted once the stages have kept it (below)
                        }
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
            if (lateHere is { Count: > 0 } && definition.Late == LatePolicy.Accept)
            {
                // Accepted late events are late events the signal serves: one its filters (or another
                // stage: the hot-user cap) leave out was never going to be served, fresh or not, and is
                // no late event of the signal. Recorded, a producer's redelivery of filtered events after a
                // restart (their ids are not in the lake to recall) filled the ledger with "accepted"
                // events that are nowhere.
                var served = new HashSet<string>(enriched.RowCount, StringComparer.Ordinal);
                foreach (var id in ((StringColumn)enriched[StandardColumns.EventId]).Values)
                {
                    served.Add(id!);
                }

                int keptLate = pendingLateBefore;
                for (int i = pendingLateBefore; i < _pendingLate.Count; i++)
                {
                    if (served.Contains(_pendingLate[i].EventId))
                    {
                        _pendingLate[keptLate++] = _pendingLate[i];
                    }
                }

                _pendingLate.RemoveRange(keptLate, _pendingLate.Count - keptLate);
                for (int i = 0; i < n; i++)
                {
                    // Each late id once (a repeat in the batch is the dedup's), as the ledger holds it.
                    if (served.Contains(ids[i]!) && lateHere.Remove(ids[i]!))
                    {
                        late.Add(types[i]!, 1);
                    }
                }
            }

            for (int t = 0; t < late.Count; t++)
            {
                metrics.Count("weft_late_events_total", "Events the stream received late, by signal, event type and action", late.CountAt(t),
                    ("signal", definition.Name), ("event_type", late.TypeAt(t)), ("action", LatePolicyNames.Name(definition.Late)));
            }

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

        /// <summary>The newest event time of the events prepared (stage one), an event time ahead of the clock counted as the time it was read.</summary>
        public long PreparedMaxEventTime => _maxEventTime;

        /// <summary>Stage two: a batch's events are appended (those the stages kept, and those they left out), so a flush records their newest time.</summary>
        public void NoteAppended(long maxEventTime) => _appendedMaxEventTime = Math.Max(_appendedMaxEventTime, maxEventTime);

        /// <summary>Enriched rows, dead letters and late events waiting for the next flush (a count read while an append may add to it).</summary>
        public long PendingRows => Volatile.Read(ref _pendingRows) + _pendingDead.Count + _pendingLate.Count;

        /// <summary>Drops the rows pending since the last flush (the runtime is going away without flushing them).</summary>
        public ValueTask DropPendingAsync() => _pending.DisposeAsync();

        private EventTableWriter OpenLakeWriter() => _lake.OpenWriter(EventPartitioner.ByTimeBucket(Env.Definition.Bucket, EventLayout.StreamPath), _lakeRowGroupSize);

        /// <summary>Takes the pending rows, dead letters and late events for a flush. No append is in flight.</summary>
        public SignalFlush TakeFlush()
        {
            var flush = new SignalFlush(Env.Definition, Env.Signal.Fingerprint, _deadLetters, _ledger, _pending, _pendingDead, _pendingLate, _appendedMaxEventTime,
                _lake, WatermarkOnly: _appendedMaxEventTime > _recordedMaxEventTime);
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
            _recordedMaxEventTime = Math.Max(_recordedMaxEventTime, NotAfterNow(maxEventTime, time));
            Merge(_deadHeld, await HeldOffsetsAsync(_deadLetters, cancellationToken).ConfigureAwait(false));
            Merge(_lateHeld, await HeldOffsetsAsync(_ledger, cancellationToken).ConfigureAwait(false));
            return recalled;
        }

        /// <summary>The newest offset of <paramref name="partition"/> the signal's lake, dead letters or ledger hold, or -1.</summary>
        public long HeldThrough(string partition) =>
            Math.Max(_lakeOffsets.GetValueOrDefault(partition, -1), Math.Max(_deadHeld.GetValueOrDefault(partition, -1), _lateHeld.GetValueOrDefault(partition, -1)));

        /// <summary>Raises each partition's offset in <paramref name="into"/> to the newest the signal's lake, dead letters or ledger hold.</summary>
        public void MergeHeldInto(Dictionary<string, long> into)
        {
            Merge(into, _lakeOffsets);
            Merge(into, _deadHeld);
            Merge(into, _lateHeld);
        }

        /// <summary>Records in the signal's tables that <paramref name="partitions"/>' offsets start over, and forgets what they held of them.</summary>
        public async Task StartOverAsync(IReadOnlyList<string> partitions, CancellationToken cancellationToken)
        {
            foreach (var table in new[] { _lake, _deadLetters, _ledger })
            {
                await CommitOffsetsResetAsync(table, partitions, cancellationToken).ConfigureAwait(false);
            }

            foreach (var partition in partitions)
            {
                _lakeOffsets.Remove(partition);
                _deadHeld.Remove(partition);
                _lateHeld.Remove(partition);
            }
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

            if (flush.Rows.RowCount > 0 || flush.WatermarkOnly)
            {
                _recordedMaxEventTime = Math.Max(_recordedMaxEventTime, flush.MaxEventTime);
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
}
