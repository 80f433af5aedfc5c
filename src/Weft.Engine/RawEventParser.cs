using System.Globalization;
using System.Text;
using System.Text.Json;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>One raw event as delivered: UTF-8 JSON and where it came from (file:line, topic/partition@offset).</summary>
public readonly record struct RawRecord(ReadOnlyMemory<byte> Json, string Source);

public sealed record ParseResult(EventBatch Events, IReadOnlyList<DeadLetter> DeadLetters, int SkippedOtherTypes)
{
    /// <summary>For each row of <see cref="Events"/>, the index of the input record (or table row) it came from.</summary>
    public int[] SourceRows { get; init; } = [];

    /// <summary>For each of <see cref="DeadLetters"/>, the index of the input record (or table row) it came from.</summary>
    public int[] DeadLetterRows { get; init; } = [];

    /// <summary>The indexes of the input records skipped as of an event type the signal does not include (JSON input only).</summary>
    public int[] OtherTypeRows { get; init; } = [];
}

public sealed record RawEventParserOptions
{
    /// <summary>Events whose event_time is further ahead of the clock than this are rejected (default 1 day).</summary>
    public TimeSpan MaxFutureSkew { get; init; } = TimeSpan.FromDays(1);

    /// <summary>
    /// Events whose event_time is before this are rejected (default 1971-01-01): epoch seconds or
    /// milliseconds sent where microseconds belong land in January 1970, and would otherwise pass as
    /// events too old to matter.
    /// </summary>
    public DateTimeOffset MinEventTime { get; init; } = new(1971, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Bytes of a bad payload kept in its dead letter (default 4096).</summary>
    public int MaxPayloadBytes { get; init; } = 4096;

    /// <summary>
    /// Whether an event without an ingest_time counts as arriving at its event_time (the batch path,
    /// recomputing history) rather than at the parse (the stream, where the parse is its arrival).
    /// Stamped with the parse, a recompute's rows changed every run, and an archive without the
    /// column (common for CSV and Parquet exports) gave empty as-served training sequences.
    /// </summary>
    public bool AbsentIngestTimeIsEventTime { get; init; }
}

/// <summary>
/// Parses JSON events into a columnar batch with the signal's raw schema. A malformed event becomes a
/// dead letter naming the problem and where the event came from; parsing continues.
/// </summary>
public sealed class RawEventParser
{
    private readonly CompiledSignal _signal;
    private readonly TimeProvider _time;
    private readonly RawEventParserOptions _options;
    private readonly long _minEventTime;
    private readonly Dictionary<string, EventTypeDefinition> _types;
    private readonly Dictionary<string, int> _columnIndex;
    private readonly int _eventIdColumn, _userIdColumn, _eventTypeColumn, _eventTimeColumn, _ingestTimeColumn;

    // The JSON path: property names and type names looked up as UTF-8, per event type.
    private readonly Utf8NameMap<TypePlan> _plans;
    private readonly Utf8NameMap<int> _defaultNames;
    private readonly bool _anyMapping;
    private readonly Utf8NameMap<int> _aliasSlots;
    private readonly int[] _aliasOrder;

    public RawEventParser(CompiledSignal signal, TimeProvider? time = null, RawEventParserOptions? options = null)
    {
        _signal = signal;
        _time = time ?? TimeProvider.System;
        _options = options ?? new RawEventParserOptions();
        _minEventTime = Timestamps.ToMicros(_options.MinEventTime);
        _types = signal.Definition.EventTypes.ToDictionary(e => e.Name, StringComparer.Ordinal);
        _columnIndex = [];
        for (int i = 0; i < signal.RawSchema.Length; i++)
        {
            _columnIndex[signal.RawSchema[i].Name] = i;
        }

        (_eventIdColumn, _userIdColumn, _eventTypeColumn, _eventTimeColumn, _ingestTimeColumn) = (
            _columnIndex[StandardColumns.EventId], _columnIndex[StandardColumns.UserId], _columnIndex[StandardColumns.EventType],
            _columnIndex[StandardColumns.EventTime], _columnIndex[StandardColumns.IngestTime]);
        _defaultNames = new Utf8NameMap<int>(Names(System.Collections.Immutable.ImmutableSortedDictionary<string, string>.Empty));
        var plans = new List<KeyValuePair<string, TypePlan>>();
        var aliases = new List<string>(); // raw names mapped to event_type, in the order the type lookup tries them
        foreach (var et in signal.Definition.EventTypes)
        {
            _anyMapping |= et.ColumnMapping.Count > 0;
            var names = et.ColumnMapping.Count == 0 ? _defaultNames : new Utf8NameMap<int>(Names(et.ColumnMapping));
            int[] required = [.. et.RawSchema.Where(f => !f.Nullable).Select(f => _columnIndex[f.Name])];
            plans.Add(new(et.Name, new TypePlan(et.Name, names, required)));
            aliases.AddRange(et.ColumnMapping.Where(m => m.Value == StandardColumns.EventType).Select(m => m.Key));
        }

        _plans = new Utf8NameMap<TypePlan>(plans);
        var distinct = aliases.Distinct(StringComparer.Ordinal).ToList();
        _aliasSlots = new Utf8NameMap<int>(distinct.Select((a, i) => KeyValuePair.Create(a, i)));
        _aliasOrder = [.. aliases.Select(a => distinct.IndexOf(a))];
    }

    /// <summary>In the name maps: the property is the event_type itself (read for the type, not as a column).</summary>
    private const int TypeProperty = -2;

    /// <summary>The dead-letter reason of an event_id holding U+0000, which PostgreSQL text cannot store.</summary>
    internal const string NulEventIdReason = "event_id contains U+0000, which the online store cannot key on";

    /// <summary>
    /// The longest event_id kept, in UTF-8 bytes. PostgreSQL's B-tree holds an index row of at most
    /// 2,704 bytes, and the online store's key is (signal, user_id, event_time, event_id): an append
    /// holding a longer id failed whole, and the stream stopped at the record again at every start.
    /// </summary>
    internal const int MaxEventIdBytes = 1024;

    internal static readonly string LongEventIdReason = $"event_id is longer than {MaxEventIdBytes} bytes (UTF-8), more than the online store can key on";

    /// <summary>Raw property name → raw-schema column under <paramref name="mapping"/>; targets that are event_type or unknown map to -1 (ignored), event_type itself (unmapped) to <see cref="TypeProperty"/>.</summary>
    private List<KeyValuePair<string, int>> Names(System.Collections.Immutable.ImmutableSortedDictionary<string, string> mapping)
    {
        var names = new List<KeyValuePair<string, int>>();
        for (int i = 0; i < _signal.RawSchema.Length; i++)
        {
            string name = _signal.RawSchema[i].Name;
            if (!mapping.ContainsKey(name))
            {
                names.Add(KeyValuePair.Create(name, name == StandardColumns.EventType ? TypeProperty : i));
            }
        }

        foreach (var (raw, target) in mapping)
        {
            names.Add(KeyValuePair.Create(raw, target != StandardColumns.EventType && _columnIndex.TryGetValue(target, out int c) ? c : -1));
        }

        return names;
    }

    /// <summary>
    /// Parses every record in one forward pass of a <see cref="Utf8JsonReader"/>, writing values straight
    /// into typed column buffers; a row is committed only when its whole event is valid.
    /// <see cref="ParseResult.SourceRows"/> gives, for each output row, the index of the input record it
    /// came from, and <see cref="ParseResult.DeadLetterRows"/> the same for each dead letter.
    /// </summary>
    public ParseResult Parse(IEnumerable<RawRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        long now = Timestamps.ToMicros(_time.GetUtcNow());
        if (records is IReadOnlyList<RawRecord> list)
        {
            return Parse(Records(list, 0, list.Count), now);
        }

        // Read lazily (a file line by line), in chunks: only a chunk of raw records is held at a time.
        var run = new ParseRun(this, 256, now);
        var chunk = new RawRecord[1024];
        int n = 0;
        try
        {
            foreach (var record in records)
            {
                chunk[n++] = record;
                if (n == chunk.Length)
                {
                    run.Add(chunk);
                    n = 0;
                }
            }

            run.Add(chunk.AsSpan(0, n));
        }
        finally
        {
            run.ReturnScratch();
        }

        return run.Finish();
    }

    /// <summary>
    /// Records <paramref name="start"/> to <paramref name="end"/> of <paramref name="records"/> as a span:
    /// the parse loop indexes it directly, where an enumerator cost two interface calls a record.
    /// </summary>
    private static ReadOnlySpan<RawRecord> Records(IReadOnlyList<RawRecord> records, int start, int end) => records switch
    {
        RawRecord[] array => array.AsSpan(start, end - start),
        List<RawRecord> list => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list)[start..end],
        _ => Copy(records, start, end),
    };

    private static RawRecord[] Copy(IReadOnlyList<RawRecord> records, int start, int end)
    {
        var copy = new RawRecord[end - start];
        for (int i = 0; i < copy.Length; i++)
        {
            copy[i] = records[start + i];
        }

        return copy;
    }

    /// <summary>Records per part at least when <see cref="Parse(IReadOnlyList{RawRecord}, int)"/> splits its input.</summary>
    public const int MinRecordsPerPart = 2048;

    /// <summary>
    /// <see cref="Parse(IEnumerable{RawRecord})"/> on up to <paramref name="parallelism"/> threads: the
    /// records are cut into consecutive parts of at least <see cref="MinRecordsPerPart"/>, parsed at
    /// once, and joined in order, so the result is the one a single pass gives. Parsing is most of a
    /// streaming micro-batch's work on the thread that reads the source, while a second core waits.
    /// </summary>
    public ParseResult Parse(IReadOnlyList<RawRecord> records, int parallelism) =>
        Parse(records, parallelism, Timestamps.ToMicros(_time.GetUtcNow())); // one clock for every part, as in one pass

    /// <summary>
    /// <see cref="Parse(IReadOnlyList{RawRecord}, int)"/> at a read time the caller gives: the ingest_time of
    /// events that carry none and the "now" the future check counts from. The stream passes the time it
    /// stamped its raw archive's lines with, so a batch run reading the archive later sees the same
    /// ingest_time the online store has and judges event times against the same clock.
    /// </summary>
    public ParseResult Parse(IReadOnlyList<RawRecord> records, int parallelism, long now)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        int parts = Math.Min(parallelism, records.Count / MinRecordsPerPart);
        if (parts <= 1)
        {
            return Parse(Records(records, 0, records.Count), now);
        }

        var starts = new int[parts + 1];
        for (int p = 0; p <= parts; p++)
        {
            starts[p] = (int)((long)records.Count * p / parts);
        }

        var results = new ParseResult[parts];
        try
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
                results[p] = Parse(Records(records, starts[p], starts[p + 1]), now));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count >= 1)
        {
            // The exception itself, as one pass throws it, not wrapped (which part failed first is not kept).
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }

        return Join(results, starts);
    }

    /// <summary>The parts' results as one: rows, dead letters and skips in part order, record indexes made whole-input.</summary>
    private ParseResult Join(ParseResult[] results, int[] starts)
    {
        var events = new EventBatch[results.Length];
        var deadLetters = new List<DeadLetter>();
        int rows = 0, dead = 0, other = 0, skipped = 0;
        for (int p = 0; p < results.Length; p++)
        {
            events[p] = results[p].Events;
            deadLetters.AddRange(results[p].DeadLetters);
            rows += results[p].SourceRows.Length;
            dead += results[p].DeadLetterRows.Length;
            other += results[p].OtherTypeRows.Length;
            skipped += results[p].SkippedOtherTypes;
        }

        var sourceRows = new int[rows];
        var deadLetterRows = new int[dead];
        var otherTypeRows = new int[other];
        (rows, dead, other) = (0, 0, 0);
        for (int p = 0; p < results.Length; p++)
        {
            rows += Offset(results[p].SourceRows, starts[p], sourceRows.AsSpan(rows));
            dead += Offset(results[p].DeadLetterRows, starts[p], deadLetterRows.AsSpan(dead));
            other += Offset(results[p].OtherTypeRows, starts[p], otherTypeRows.AsSpan(other));
        }

        return new ParseResult(EventBatch.Concat(_signal.RawSchema, events), deadLetters, skipped)
        {
            SourceRows = sourceRows,
            DeadLetterRows = deadLetterRows,
            OtherTypeRows = otherTypeRows,
        };

        static int Offset(int[] indexes, int start, Span<int> destination)
        {
            for (int i = 0; i < indexes.Length; i++)
            {
                destination[i] = indexes[i] + start;
            }

            return indexes.Length;
        }
    }

    private ParseResult Parse(ReadOnlySpan<RawRecord> records, long now)
    {
        var run = new ParseRun(this, records.Length, now);
        try
        {
            run.Add(records);
        }
        finally
        {
            run.ReturnScratch();
        }

        return run.Finish();
    }

    /// <summary>One parse's state: its column buffers and dead letters, fed records in order.</summary>
    private sealed class ParseRun(RawEventParser parser, int capacity, long now)
    {
        private readonly ParseState _state = new(parser._signal.RawSchema, Math.Max(capacity, 1), parser._aliasOrder.Length == 0 ? 0 : parser._aliasOrder.Max() + 1);
        private readonly List<DeadLetter> _deadLetters = [];
        private readonly List<int> _deadLetterRows = [];
        private readonly List<int> _otherTypeRows = [];
        private readonly long _maxFuture = now + (parser._options.MaxFutureSkew.Ticks / 10);
        private int _input;

        public void Add(ReadOnlySpan<RawRecord> records)
        {
            var state = _state;
            foreach (ref readonly var record in records)
            {
                if (state.Count == state.Capacity)
                {
                    state.Grow();
                }

                var outcome = parser.ParseOne(record.Json.Span, state, now, _maxFuture, out var reason, out var identity);
                switch (outcome)
                {
                    case Outcome.Ok:
                        state.Commit(_input);
                        break;
                    case Outcome.OtherType:
                        _otherTypeRows.Add(_input);
                        break;
                    default:
                        _deadLetters.Add(new DeadLetter(identity.EventId, identity.UserId, identity.EventType, "parse", reason!, record.Source, parser.Payload(record.Json)));
                        _deadLetterRows.Add(_input);
                        break;
                }

                _input++;
            }
        }

        public void ReturnScratch() => _state.ReturnScratch();

        public ParseResult Finish()
        {
            var schema = parser._signal.RawSchema;
            var state = _state;
            var built = new Column[schema.Length];
            for (int i = 0; i < built.Length; i++)
            {
                built[i] = state.Buffers[i].Build(state.Count);
            }

            return new ParseResult(new EventBatch(schema, built), _deadLetters, _otherTypeRows.Count)
            {
                SourceRows = state.SourceRows.Length == state.Count ? state.SourceRows : state.SourceRows.AsSpan(0, state.Count).ToArray(),
                DeadLetterRows = [.. _deadLetterRows],
                OtherTypeRows = [.. _otherTypeRows],
            };
        }
    }

    /// <summary>
    /// The same checks for rows read from a raw table (Parquet/Delta archive) instead of JSON: rows of
    /// other event types are skipped; rows without event_id, user_id or event_time, missing a
    /// required attribute, or too far in the future are dead-lettered with <paramref name="source"/>
    /// and their row number; ingest_time defaults to now.
    /// </summary>
    public ParseResult ParseTable(EventBatch table, string source)
    {
        if (!table.TryGetColumn(StandardColumns.EventType, out var typeColumn) || typeColumn is not StringColumn types)
        {
            throw new ArgumentException($"{source}: raw table has no string column '{StandardColumns.EventType}'", nameof(table));
        }

        foreach (var f in _signal.RawSchema)
        {
            if (table.TryGetColumn(f.Name, out var c) && c.Type != f.Type)
            {
                throw new ArgumentException($"{source}: column '{f.Name}' is {c.Type} but the signal's raw schema says {f.Type}", nameof(table));
            }
        }

        long now = Timestamps.ToMicros(_time.GetUtcNow());
        long maxFuture = now + (_options.MaxFutureSkew.Ticks / 10);
        var projected = table.Project(NullableRawSchema());
        var ids = (StringColumn)projected[StandardColumns.EventId];
        var users = projected[StandardColumns.UserId];
        var times = (PrimitiveColumn<long>)projected[StandardColumns.EventTime];
        var ingest = (PrimitiveColumn<long>)projected[StandardColumns.IngestTime];
        var keep = new List<int>(table.RowCount);
        var deadLetters = new List<DeadLetter>();
        var deadLetterRows = new List<int>();
        int skipped = 0;
        for (int i = 0; i < table.RowCount; i++)
        {
            string? type = types.Values[i];
            if (type is null || !_types.TryGetValue(type, out var eventType))
            {
                skipped += type is null ? 0 : 1;
                if (type is null)
                {
                    deadLetters.Add(new DeadLetter(ids.Values[i], (long?)users.GetValue(i), null, "parse", "missing event_type", $"{source}#{i}"));
                    deadLetterRows.Add(i);
                }

                continue;
            }

            string? reason = ids.Values[i] is null or "" ? "missing event_id"
                : users.IsNull(i) ? "missing user_id"
                : times.IsNull(i) ? "missing event_time"
                : TimeProblem(StandardColumns.EventTime, times.Values[i], maxFuture)
                    ?? (ingest.IsNull(i) ? null : TimeProblem(StandardColumns.IngestTime, ingest.Values[i], maxFuture) ?? AheadOfIngest(times.Values[i], ingest.Values[i]));
            if (reason is null)
            {
                foreach (var f in eventType.RawSchema)
                {
                    var column = projected[f.Name];
                    if (!f.Nullable && column.IsNull(i))
                    {
                        reason = $"missing required attribute '{f.Name}' of {type}";
                        break;
                    }

                    if (f.Type.Kind == ScalarKind.Timestamp && !StandardColumns.IsStandard(f.Name) && Undated(column, i) is { } undated)
                    {
                        reason = UndatedReason(f.Name, type, undated);
                        break;
                    }
                }
            }

            if (reason is not null)
            {
                deadLetters.Add(new DeadLetter(ids.Values[i], (long?)users.GetValue(i), type, "parse", reason, $"{source}#{i}"));
                deadLetterRows.Add(i);
                continue;
            }

            keep.Add(i);
        }

        var rows = keep.ToArray();
        var columns = new Column[_signal.RawSchema.Length];
        for (int c = 0; c < columns.Length; c++)
        {
            columns[c] = projected.Columns[c].Gather(rows);
        }

        // Absent ingest times are set as for JSON.
        var ingestValues = ((PrimitiveColumn<long>)columns[_columnIndex[StandardColumns.IngestTime]]).Values;
        var ingestNulls = columns[_columnIndex[StandardColumns.IngestTime]].Nulls;
        if (ingestNulls is not null)
        {
            var eventTimes = _options.AbsentIngestTimeIsEventTime ? ((PrimitiveColumn<long>)columns[_columnIndex[StandardColumns.EventTime]]).Values : null;
            for (int r = 0; r < ingestValues.Length; r++)
            {
                if (ingestNulls[r])
                {
                    ingestValues[r] = eventTimes is null ? now : eventTimes[r];
                }
            }

            columns[_columnIndex[StandardColumns.IngestTime]] = new PrimitiveColumn<long>(WeftType.Timestamp, ingestValues);
        }

        return new ParseResult(new EventBatch(_signal.RawSchema, columns), deadLetters, skipped) { SourceRows = rows, DeadLetterRows = [.. deadLetterRows] };
    }

    private System.Collections.Immutable.ImmutableArray<FieldDefinition> NullableRawSchema() =>
        [.. _signal.RawSchema.Select(f => f with { Nullable = true })];

    private string Payload(ReadOnlyMemory<byte> json)
    {
        var span = json.Span;
        return span.Length <= _options.MaxPayloadBytes ? Encoding.UTF8.GetString(span) : Encoding.UTF8.GetString(span[.._options.MaxPayloadBytes]) + "…";
    }

    private enum Outcome
    {
        Ok,
        OtherType,
        Bad,
    }

    /// <summary>What the last property naming the event type held.</summary>
    private enum TypeKind : byte
    {
        Absent,
        NotString,
        Empty,
        Unknown,
        Known,
    }

    private readonly record struct TypeSeen(TypeKind Kind, TypePlan? Plan);

    /// <summary>An event type's raw property names (after its column mapping) → raw-schema column (-1: ignored), and its required columns.</summary>
    private sealed record TypePlan(string Name, Utf8NameMap<int> Names, int[] Required);

    /// <summary>The buffers and scratch of one <see cref="Parse"/> call; slot <see cref="Count"/> is the row being parsed.</summary>
    private sealed class ParseState
    {
        private byte[]? _scratch;

        public ParseState(System.Collections.Immutable.ImmutableArray<FieldDefinition> schema, int capacity, int aliases)
        {
            Capacity = capacity;
            Buffers = new RawColumnBuffer[schema.Length];
            for (int i = 0; i < Buffers.Length; i++)
            {
                Buffers[i] = RawColumnBuffer.Create(schema[i].Type, capacity, dated: !StandardColumns.IsStandard(schema[i].Name));
            }

            Written = new int[schema.Length];
            SourceRows = new int[capacity];
            Aliases = new TypeSeen[aliases];
            NameHints = new int[Math.Max(16, schema.Length * 2)];
        }

        /// <summary>Per property position in an event, the name-map slot the previous event had there.</summary>
        public int[] NameHints { get; }

        public RawColumnBuffer[] Buffers { get; }

        /// <summary>Per column, the <see cref="Seq"/> of the event that last wrote it: written by this event iff equal.</summary>
        public int[] Written { get; }

        public int Seq { get; set; }

        public int Count { get; private set; }

        public int Capacity { get; private set; }

        public int[] SourceRows { get; private set; }

        public TypeSeen EventType { get; set; }

        /// <summary>Per raw name mapped to event_type, what its last occurrence held.</summary>
        public TypeSeen[] Aliases { get; }

        public ref byte[]? Scratch => ref _scratch;

        public bool IsWritten(int column) => Written[column] == Seq;

        public void Grow()
        {
            Capacity *= 2;
            foreach (var b in Buffers)
            {
                b.Grow(Capacity);
            }

            var rows = SourceRows;
            Array.Resize(ref rows, Capacity);
            SourceRows = rows;
        }

        /// <summary>Makes the row in slot <see cref="Count"/> part of the batch: columns the event did not write are null.</summary>
        public void Commit(int input)
        {
            for (int c = 0; c < Buffers.Length; c++)
            {
                if (Written[c] != Seq)
                {
                    Buffers[c].SetNull(Count);
                }
            }

            SourceRows[Count++] = input;
        }

        public void ReturnScratch()
        {
            if (_scratch is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(_scratch);
                _scratch = null;
            }
        }
    }

    /// <summary>
    /// Why an event_time is refused against its supplied ingest_time, or null: more than the future skew
    /// after it, the check the stream made against its clock when it read the event. A batch run later
    /// reads the event with the stream archive's stamp as its ingest_time, and must refuse what the stream
    /// refused, not judge it by its own, later clock.
    /// </summary>
    private string? AheadOfIngest(long eventTime, long ingestTime) =>
        eventTime - ingestTime > _options.MaxFutureSkew.Ticks / 10
            ? $"event_time {Timestamps.Format(eventTime)} is more than {Durations.Format(_options.MaxFutureSkew)} after its ingest_time {Timestamps.Format(ingestTime)}"
            : null;

    /// <summary>
    /// Why an event_time or a supplied ingest_time is refused (too far ahead of the clock, or before the
    /// minimum), or null. An ingest_time years ahead would keep its event out of every read as served
    /// (known_at), and one in 1970 is the same unit mistake as such an event_time.
    /// </summary>
    private string? TimeProblem(string column, long micros, long maxFuture) =>
        micros > maxFuture ? $"{column} {FormatAny(micros)} is more than {Durations.Format(_options.MaxFutureSkew)} in the future"
        : micros < _minEventTime ? $"{column} {FormatAny(micros)} is before {Timestamps.Format(_minEventTime)}: epoch seconds or milliseconds where microseconds belong? (send µs since the epoch, or ISO-8601 text)"
        : null;

    /// <summary>
    /// A refused time as the reason shows it: a number of µs before year 1 or after 9999 (any long a
    /// producer sends) has no date, and formatting it threw, failing the whole micro-batch. In the
    /// embedded log the record was then read again at every start, and the stream never got past it.
    /// </summary>
    private static string FormatAny(long micros) =>
        micros < Timestamps.MinMicros || micros > Timestamps.MaxMicros
            ? string.Create(CultureInfo.InvariantCulture, $"{micros} µs since the epoch (outside years 1-9999)")
            : Timestamps.Format(micros);

    /// <summary>
    /// Parses one event into the next row. A JSON string escape that decodes to an unpaired surrogate
    /// (<c>"\ud800"</c>) is valid JSON but not text, nor is a string of bytes that are not UTF-8:
    /// System.Text.Json throws when such a string is decoded, wherever that happens. The event is then
    /// parsed again with each such escape read as U+FFFD and each such byte as <c>?</c> (same length, so
    /// byte positions hold), which decides what it is: another signal's type
    /// (skipped), a dead letter for another reason that comes first, or, had it been accepted, a dead
    /// letter naming the bad escape, since storing a repaired value would store text nobody sent.
    /// </summary>
    private Outcome ParseOne(ReadOnlySpan<byte> json, ParseState state, long now, long maxFuture, out string? reason, out (string? EventId, long? UserId, string? EventType) identity)
    {
        try
        {
            return ParseOne(json, json, state, now, maxFuture, out reason, out identity);
        }
        catch (InvalidOperationException) when (NotText.Holds(json))
        {
            var repaired = NotText.Replaced(json);
            var outcome = ParseOne(repaired, json, state, now, maxFuture, out reason, out identity);
            if (outcome != Outcome.Ok)
            {
                return outcome;
            }

            reason = NotText.Reason(json);
            return Outcome.Bad;
        }
    }

    /// <param name="json">The event as parsed.</param>
    /// <param name="original">The event as received, for the raw text a dead letter quotes.</param>
    private Outcome ParseOne(ReadOnlySpan<byte> json, ReadOnlySpan<byte> original, ParseState state, long now, long maxFuture, out string? reason, out (string? EventId, long? UserId, string? EventType) identity)
    {
        identity = default;
        reason = null;
        int row = state.Count;
        int seq = ++state.Seq;
        int failColumn = -1, failStart = 0, failEnd = 0;
        TypeSeen type = default;
        try
        {
            var names = _defaultNames;
            if (_anyMapping)
            {
                // Column mapping applies per event type, so find the type first (it may come after the
                // fields it maps, or be mapped itself): a scan of the top-level properties, values skipped.
                if (!PreScan(json, state))
                {
                    reason = "not a JSON object";
                    return Outcome.Bad;
                }

                type = ResolveType(state);
                if (type.Kind != TypeKind.Known)
                {
                    return Unknown(type, out reason, out identity.EventType);
                }

                names = type.Plan!.Names;
            }

            bool flat = false;
            if (!_anyMapping && FlatPath)
            {
                flat = TryParseFlat(json, state, names, row, seq, ref failColumn, ref failStart, ref failEnd);
                if (!flat)
                {
                    // The reader starts the event afresh: a new sequence number disowns what the fast
                    // path wrote into this row.
                    seq = ++state.Seq;
                    failColumn = -1;
                }
            }

            if (!flat && !ReadObject(json, state, names, row, seq, ref failColumn, ref failStart, ref failEnd))
            {
                reason = "not a JSON object";
                return Outcome.Bad;
            }
        }
        catch (JsonException ex)
        {
            reason = $"malformed JSON at byte {JsonErrors.BytePosition(json, ex)}";
            return Outcome.Bad;
        }

        if (!_anyMapping)
        {
            type = ResolveType(state);
            if (type.Kind != TypeKind.Known)
            {
                return Unknown(type, out reason, out identity.EventType);
            }
        }

        var plan = type.Plan!;
        identity.EventType = plan.Name;
        var schema = _signal.RawSchema;
        if (failColumn >= 0)
        {
            // Name the event in its dead letter when its identity was readable.
            (identity.EventId, identity.UserId, _) = ReadIdentity(json);
            var field = schema[failColumn];
            reason = Undated(field, original[failStart..failEnd]) is { } undated
                ? UndatedReason(field.Name, plan.Name, undated)
                : $"{(StandardColumns.IsStandard(field.Name) ? "" : "attribute ")}'{field.Name}' of {plan.Name}: expected {field.Type}, got {Describe(original[failStart..failEnd])}";
            return Outcome.Bad;
        }

        identity.EventId = state.IsWritten(_eventIdColumn) ? ((StringBuffer)state.Buffers[_eventIdColumn]).Values[row] : null;
        identity.UserId = state.IsWritten(_userIdColumn) ? ((PrimitiveBuffer<long>)state.Buffers[_userIdColumn]).Values[row] : null;
        if (string.IsNullOrEmpty(identity.EventId))
        {
            reason = "missing event_id";
            return Outcome.Bad;
        }

        if (identity.EventId.Contains('\0', StringComparison.Ordinal))
        {
            reason = NulEventIdReason;
            return Outcome.Bad;
        }

        // A UTF-16 unit takes at most 3 bytes (a pair, 4): shorter ids are not counted.
        if (identity.EventId.Length > MaxEventIdBytes / 3 && Encoding.UTF8.GetByteCount(identity.EventId) > MaxEventIdBytes)
        {
            reason = LongEventIdReason;
            return Outcome.Bad;
        }

        if (identity.UserId is null)
        {
            reason = "missing user_id";
            return Outcome.Bad;
        }

        if (!state.IsWritten(_eventTimeColumn))
        {
            reason = "missing event_time";
            return Outcome.Bad;
        }

        long eventTime = ((PrimitiveBuffer<long>)state.Buffers[_eventTimeColumn]).Values[row];
        if ((eventTime > maxFuture || eventTime < _minEventTime) && TimeProblem(StandardColumns.EventTime, eventTime, maxFuture) is { } timeProblem)
        {
            reason = timeProblem;
            return Outcome.Bad;
        }

        if (state.IsWritten(_ingestTimeColumn))
        {
            long ingestTime = ((PrimitiveBuffer<long>)state.Buffers[_ingestTimeColumn]).Values[row];
            if ((ingestTime > maxFuture || ingestTime < _minEventTime) && TimeProblem(StandardColumns.IngestTime, ingestTime, maxFuture) is { } ingestProblem)
            {
                reason = ingestProblem;
                return Outcome.Bad;
            }

            if (AheadOfIngest(eventTime, ingestTime) is { } ahead)
            {
                reason = ahead;
                return Outcome.Bad;
            }
        }
        else
        {
            ((PrimitiveBuffer<long>)state.Buffers[_ingestTimeColumn]).Set(row, _options.AbsentIngestTimeIsEventTime ? eventTime : now);
            state.Written[_ingestTimeColumn] = seq;
        }

        ((StringBuffer)state.Buffers[_eventTypeColumn]).Set(row, plan.Name);
        state.Written[_eventTypeColumn] = seq;
        foreach (int required in plan.Required)
        {
            if (!state.IsWritten(required))
            {
                reason = $"missing required attribute '{schema[required].Name}' of {plan.Name}";
                return Outcome.Bad;
            }
        }

        return Outcome.Ok;
    }

    /// <summary>
    /// Reads an event's properties with a <see cref="Utf8JsonReader"/> into this row under
    /// <paramref name="seq"/>: false when the JSON is not an object; a <see cref="JsonException"/> when
    /// it is malformed.
    /// </summary>
    private bool ReadObject(ReadOnlySpan<byte> json, ParseState state, Utf8NameMap<int> names, int row, int seq, ref int failColumn, ref int failStart, ref int failEnd)
    {
        var reader = new Utf8JsonReader(json);
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            reader.Read(); // throws on content after the value
            return false;
        }

        state.EventType = default;
        var hints = state.NameHints;
        int position = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = JsonText.Unescaped(ref reader, ref state.Scratch);
            int column = -1; // -1: an attribute the signal does not declare
            if (position < hints.Length)
            {
                column = names.TryGetValue(name, ref hints[position++], out int c) ? c : -1;
            }
            else if (names.TryGetValue(name, out int c))
            {
                column = c;
            }

            reader.Read();
            if (column == TypeProperty && !_anyMapping)
            {
                state.EventType = Classify(ref reader, state);
            }

            if (column >= 0 && reader.TokenType == JsonTokenType.Null)
            {
                // A repeated name: the last value counts (as in a DOM lookup), so a null clears an earlier
                // one; but a null ingest_time says "not supplied", which leaves the stream archive's stamp.
                if (column != _ingestTimeColumn)
                {
                    state.Written[column] = 0;
                }

                continue;
            }

            if (column < 0 || failColumn >= 0)
            {
                reader.Skip();
                continue;
            }

            int start = (int)reader.TokenStartIndex;
            if (state.Buffers[column].TryRead(ref reader, row))
            {
                state.Written[column] = seq;
            }
            else
            {
                // The first bad value names the dead letter; read on, as the JSON must still be valid
                // and the type may still come.
                reader.Skip();
                (failColumn, failStart, failEnd) = (column, start, (int)reader.BytesConsumed);
            }
        }

        reader.Read(); // throws on content after the object
        return true;
    }

    /// <summary>
    /// Whether events are first tried on the fast path (<see cref="TryParseFlat"/>); on by default. Off,
    /// every event goes through the reader: the tests compare the two.
    /// </summary>
    internal bool FlatPath { get; set; } = true;

    /// <summary>
    /// The fast path: a flat object of properties whose values are ASCII strings without escapes,
    /// numbers, true, false or null, scanned directly instead of through a <see cref="Utf8JsonReader"/>
    /// (a tokenizer's state machine was a quarter of a stream's parsing). It reads the event exactly as
    /// the reader loop does, name hints, null handling and the first bad value included. It returns
    /// false for anything else (nesting, escapes, non-ASCII, malformed input), having written only into
    /// this row under <paramref name="seq"/>, and the caller parses the event with the reader.
    /// </summary>
    private bool TryParseFlat(ReadOnlySpan<byte> json, ParseState state, Utf8NameMap<int> names, int row, int seq, ref int failColumn, ref int failStart, ref int failEnd)
    {
        int i = FlatJson.SkipWhitespace(json, 0);
        if (i >= json.Length || json[i] != (byte)'{')
        {
            return false;
        }

        state.EventType = default;
        var hints = state.NameHints;
        int position = 0;
        i = FlatJson.SkipWhitespace(json, i + 1);
        if (i < json.Length && json[i] == (byte)'}')
        {
            return FlatJson.SkipWhitespace(json, i + 1) == json.Length;
        }

        while (true)
        {
            if (i >= json.Length || json[i] != (byte)'"')
            {
                return false;
            }

            int nameEnd = FlatJson.StringEnd(json, i + 1);
            if (nameEnd < 0)
            {
                return false;
            }

            var name = json[(i + 1)..nameEnd];
            i = FlatJson.SkipWhitespace(json, nameEnd + 1);
            if (i >= json.Length || json[i] != (byte)':')
            {
                return false;
            }

            i = FlatJson.SkipWhitespace(json, i + 1);
            if (i >= json.Length)
            {
                return false;
            }

            int start = i;
            JsonTokenType kind;
            switch (json[i])
            {
                case (byte)'"':
                    i = FlatJson.StringEnd(json, i + 1);
                    if (i < 0)
                    {
                        return false;
                    }

                    i++;
                    kind = JsonTokenType.String;
                    break;
                case (byte)'t' when json[i..].StartsWith("true"u8):
                    (i, kind) = (i + 4, JsonTokenType.True);
                    break;
                case (byte)'f' when json[i..].StartsWith("false"u8):
                    (i, kind) = (i + 5, JsonTokenType.False);
                    break;
                case (byte)'n' when json[i..].StartsWith("null"u8):
                    (i, kind) = (i + 4, JsonTokenType.Null);
                    break;
                default:
                    i = FlatJson.NumberEnd(json, i);
                    if (i < 0)
                    {
                        return false;
                    }

                    kind = JsonTokenType.Number;
                    break;
            }

            // What follows a value must end it (as the reader requires of "truex" or "12a").
            int next = FlatJson.SkipWhitespace(json, i);
            if (next >= json.Length || json[next] is not ((byte)',' or (byte)'}'))
            {
                return false;
            }

            // As the reader loop, step for step.
            int column = -1;
            if (position < hints.Length)
            {
                column = names.TryGetValue(name, ref hints[position++], out int c) ? c : -1;
            }
            else if (names.TryGetValue(name, out int c))
            {
                column = c;
            }

            var token = json[start..i];
            if (column == TypeProperty)
            {
                state.EventType = kind == JsonTokenType.String ? ClassifyText(token[1..^1]) : new TypeSeen(TypeKind.NotString, null);
            }

            if (column >= 0 && kind == JsonTokenType.Null)
            {
                if (column != _ingestTimeColumn)
                {
                    state.Written[column] = 0;
                }
            }
            else if (column >= 0 && failColumn < 0)
            {
                if (state.Buffers[column].TryReadToken(kind, token, row))
                {
                    state.Written[column] = seq;
                }
                else
                {
                    (failColumn, failStart, failEnd) = (column, start, i);
                }
            }

            if (json[next] == (byte)'}')
            {
                return FlatJson.SkipWhitespace(json, next + 1) == json.Length;
            }

            i = FlatJson.SkipWhitespace(json, next + 1);
        }
    }

    private static Outcome Unknown(TypeSeen type, out string? reason, out string? eventType)
    {
        eventType = type.Kind == TypeKind.Empty ? "" : null;
        reason = type.Kind == TypeKind.Unknown ? null : "missing event_type";
        return type.Kind == TypeKind.Unknown ? Outcome.OtherType : Outcome.Bad;
    }

    /// <summary>Records what every top-level property naming the type holds; false if the value is not an object. Validates the whole input.</summary>
    private bool PreScan(ReadOnlySpan<byte> json, ParseState state)
    {
        state.EventType = default;
        Array.Clear(state.Aliases);
        var reader = new Utf8JsonReader(json);
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            reader.Read();
            return false;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = JsonText.Unescaped(ref reader, ref state.Scratch);
            bool isType = name.SequenceEqual("event_type"u8);
            int alias = _aliasSlots.TryGetValue(name, out int a) ? a : -1;
            reader.Read();
            if (isType || alias >= 0)
            {
                var seen = Classify(ref reader, state);
                if (isType)
                {
                    state.EventType = seen;
                }

                if (alias >= 0)
                {
                    state.Aliases[alias] = seen;
                }
            }

            reader.Skip();
        }

        reader.Read();
        return true;
    }

    private TypeSeen Classify(ref Utf8JsonReader reader, ParseState state)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            return new TypeSeen(TypeKind.NotString, null);
        }

        return ClassifyText(JsonText.Unescaped(ref reader, ref state.Scratch));
    }

    private TypeSeen ClassifyText(ReadOnlySpan<byte> text)
    {
        return text.IsEmpty ? new TypeSeen(TypeKind.Empty, null)
            : _plans.TryGetValue(text, out var plan) ? new TypeSeen(TypeKind.Known, plan)
            : new TypeSeen(TypeKind.Unknown, null);
    }

    /// <summary>
    /// The type is the last event_type property when it is a string; otherwise the last string among the
    /// raw names mapped to event_type, tried in definition order (each at its last occurrence).
    /// </summary>
    private TypeSeen ResolveType(ParseState state)
    {
        var type = state.EventType;
        if (type.Kind > TypeKind.NotString)
        {
            return type;
        }

        for (int a = _aliasOrder.Length - 1; a >= 0; a--)
        {
            var seen = state.Aliases[_aliasOrder[a]];
            if (seen.Kind > TypeKind.NotString)
            {
                return seen;
            }
        }

        return default;
    }

    /// <summary>
    /// What a raw record says of itself, for its dead letter: event_id and event_type (strings) and
    /// user_id (an integer), each at its last occurrence; nulls for what it lacks, and all nulls for a
    /// record that is not a JSON object or not valid JSON.
    /// </summary>
    public static (string? EventId, long? UserId, string? EventType) ReadIdentity(ReadOnlySpan<byte> json)
    {
        string? id = null, type = null;
        long? user = null;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return default;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isId = reader.ValueTextEquals("event_id"u8);
                bool isType = !isId && reader.ValueTextEquals("event_type"u8);
                bool isUser = !isId && !isType && reader.ValueTextEquals("user_id"u8);
                reader.Read();
                if (isId)
                {
                    id = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (isType)
                {
                    type = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (isUser)
                {
                    user = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long u) ? u : null;
                }

                reader.Skip();
            }
        }
        catch (JsonException)
        {
            return default;
        }

        return (id, user, type);
    }

    /// <summary>Whether <paramref name="micros"/> is an instant of years 1-9999, which alone a timestamp can be formatted as.</summary>
    internal static bool IsDated(long micros) => micros >= Timestamps.MinMicros && micros <= Timestamps.MaxMicros;

    /// <summary>The first value of row <paramref name="row"/> of a timestamp (or list of timestamps) column that has no date, or null.</summary>
    private static long? Undated(Column column, int row)
    {
        if (column.IsNull(row))
        {
            return null;
        }

        if (column is PrimitiveColumn<long> scalar)
        {
            return IsDated(scalar.Values[row]) ? null : scalar.Values[row];
        }

        if (column.GetValue(row) is long[] list)
        {
            foreach (long micros in list)
            {
                if (!IsDated(micros))
                {
                    return micros;
                }
            }
        }

        return null;
    }

    /// <summary>Why an attribute's timestamp is refused when it has no date: one reason for JSON and table input alike.</summary>
    private static string UndatedReason(string attribute, string eventType, long micros) =>
        string.Create(CultureInfo.InvariantCulture, $"attribute '{attribute}' of {eventType}: {micros} µs since the epoch has no date (outside years 1-9999)");

    /// <summary>
    /// The instant without a date that made a JSON attribute's value fail to read, or null when something
    /// else did (a string that is no timestamp, a value of another kind): for a list, its first element
    /// that is no timestamp, if that is such an instant.
    /// </summary>
    private static long? Undated(FieldDefinition field, ReadOnlySpan<byte> rawValue)
    {
        if (field.Type.Kind != ScalarKind.Timestamp || StandardColumns.IsStandard(field.Name))
        {
            return null;
        }

        try
        {
            var reader = new Utf8JsonReader(rawValue);
            using var doc = JsonDocument.ParseValue(ref reader);
            var value = doc.RootElement;
            if (!field.Type.IsList)
            {
                return UndatedNumber(value);
            }

            if (value.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            var element = new WeftType(ScalarKind.Timestamp);
            foreach (var item in value.EnumerateArray())
            {
                if (!TryRead(item, element, out _, dated: true))
                {
                    return UndatedNumber(item);
                }
            }

            return null;
        }
        catch (JsonException)
        {
            return null;
        }

        static long? UndatedNumber(JsonElement e) =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long micros) && !IsDated(micros) ? micros : null;
    }

    private static string Describe(ReadOnlySpan<byte> rawValue) => DisplayText.Cut(Encoding.UTF8.GetString(rawValue), 40);

    /// <summary>Reads a JSON value as a column value of <paramref name="type"/> (engine representation).</summary>
    /// <param name="dated">
    /// A timestamp must have a date (years 1-9999), as an attribute's must: one outside (nanoseconds sent
    /// where microseconds belong) is not a timestamp. event_time and ingest_time are read without it and
    /// refused after, with reasons of their own.
    /// </param>
    public static bool TryRead(JsonElement e, WeftType type, out object? value, bool dated = false)
    {
        value = null;
        if (type.IsList)
        {
            if (e.ValueKind != JsonValueKind.Array)
            {
                return false;
            }

            int n = e.GetArrayLength();
            var element = type.Element;
            Array array = type.Kind switch
            {
                ScalarKind.Bool => new bool[n],
                ScalarKind.Int32 => new int[n],
                ScalarKind.Int64 or ScalarKind.Timestamp => new long[n],
                ScalarKind.Float32 => new float[n],
                ScalarKind.Float64 => new double[n],
                _ => new string[n],
            };
            int i = 0;
            foreach (var item in e.EnumerateArray())
            {
                if (!TryRead(item, element, out var v, dated) || v is null)
                {
                    return false;
                }

                switch (array)
                {
                    case int[] a: a[i] = (int)(long)v; break;
                    case float[] a: a[i] = (float)(double)v; break;
                    default: array.SetValue(v, i); break;
                }

                i++;
            }

            value = array;
            return true;
        }

        switch (type.Kind)
        {
            case ScalarKind.Bool when e.ValueKind is JsonValueKind.True or JsonValueKind.False:
                value = e.GetBoolean();
                return true;
            case ScalarKind.Int32 when e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i32):
                value = (long)i32;
                return true;
            case ScalarKind.Int64 when e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long i64):
                value = i64;
                return true;
            case ScalarKind.Int64 when e.ValueKind == JsonValueKind.String && long.TryParse(e.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long s64):
                value = s64;
                return true;
            case ScalarKind.Float32 or ScalarKind.Float64 when e.ValueKind == JsonValueKind.Number
                && (type.Kind == ScalarKind.Float64 || !float.IsInfinity((float)e.GetDouble())):
                value = e.GetDouble();
                return true;
            case ScalarKind.String when e.ValueKind == JsonValueKind.String:
                value = e.GetString();
                return true;
            case ScalarKind.Timestamp when e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long micros) && (!dated || IsDated(micros)):
                value = micros;
                return true;
            case ScalarKind.Timestamp when e.ValueKind == JsonValueKind.String && IsoTimestamp.TryParse(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(e).Trim((byte)'"'), out long iso):
                // The common shape straight from the UTF-8 (the general parser costs a microsecond a value).
                value = iso;
                return true;
            case ScalarKind.Timestamp when e.ValueKind == JsonValueKind.String && IsoTimestamp.TryParseGeneral(e.GetString(), out long general):
                value = general;
                return true;
            default:
                return false;
        }
    }
}
