using System.Collections.Immutable;
using System.Text.Json.Serialization;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Quality;

/// <summary>What <see cref="EventComparer"/> compares and how closely.</summary>
public sealed class ComparisonOptions
{
    /// <summary>Columns left out by default: <c>ingest_time</c> is each path's own read stamp, so it differs by design.</summary>
    public static readonly ImmutableHashSet<string> DefaultIgnored = [StandardColumns.IngestTime];

    /// <summary>Per-column tolerances for numeric columns (and numeric lists); any other is exact.</summary>
    public IReadOnlyDictionary<string, Tolerance> Tolerances { get; init; } = ImmutableDictionary<string, Tolerance>.Empty;

    /// <summary>Columns not compared (the key, <c>event_id</c>, never is).</summary>
    public IReadOnlySet<string> Ignored { get; init; } = DefaultIgnored;

    /// <summary>How many disagreeing event ids a column keeps as examples.</summary>
    public int ExamplesPerColumn { get; init; } = 3;

    public Tolerance ToleranceOf(string column) => Tolerances.TryGetValue(column, out var t) ? t : Tolerance.Exact;

    /// <summary>
    /// These options without <paramref name="columns"/> among the ignored: for a caller that takes those
    /// columns out of both sides before comparing and reports them itself (a legacy output's own columns).
    /// </summary>
    public ComparisonOptions WithoutIgnored(IEnumerable<string> columns) =>
        new() { Tolerances = Tolerances, Ignored = Ignored.Except(columns).ToHashSet(StringComparer.Ordinal), ExamplesPerColumn = ExamplesPerColumn };
}

/// <summary>
/// Two-tier comparison of a <i>reference</i> and a <i>candidate</i> set of enriched events (the batch
/// and the stream path of one signal; a legacy pipeline and Weft): events are matched by
/// <c>event_id</c>, then
/// <list type="bullet">
/// <item>event level, per event type: how many the reference holds, how many the candidate matched
/// (completeness), what only one side holds, ids repeated within a side, and for each column the share
/// of matched events whose values agree (within the column's <see cref="Tolerance"/>), its largest
/// numeric difference and a few example ids;</item>
/// <item>sequence level, per user: whether the user's events are the same on both sides (same ids,
/// same event times, so the same order), and whether every compared value agrees too.</item>
/// </list>
/// Feed it slice by slice (a time bucket at a time) with <see cref="Compare"/>; ids are matched within a
/// slice. Not thread-safe.
/// </summary>
public sealed class EventComparer
{
    private const byte IdsDiffer = 1;
    private const byte ValuesDiffer = 2;

    private readonly ComparisonOptions _options;
    private readonly ColumnComparer[] _columns;
    private readonly Dictionary<string, TypeCounts> _types = new(StringComparer.Ordinal);
    private readonly Dictionary<long, byte> _users = [];

    public EventComparer(ImmutableArray<FieldDefinition> referenceSchema, ImmutableArray<FieldDefinition> candidateSchema, ComparisonOptions? options = null)
    {
        _options = options ?? new ComparisonOptions();
        var candidate = candidateSchema.ToDictionary(f => f.Name, StringComparer.Ordinal);
        var reference = referenceSchema.ToDictionary(f => f.Name, StringComparer.Ordinal);
        foreach (var required in (string[])[StandardColumns.EventId, StandardColumns.UserId, StandardColumns.EventType, StandardColumns.EventTime])
        {
            if (!reference.ContainsKey(required) || !candidate.ContainsKey(required))
            {
                throw new ArgumentException($"Both sides of a comparison need the column '{required}' (the reference has {Names(referenceSchema)}; the candidate {Names(candidateSchema)}).");
            }
        }

        // A misspelt column would leave the intended one compared exactly (or compared at all) without a word.
        foreach (var (what, named) in new[] { ("A tolerance names", _options.Tolerances.Keys), ("The columns to ignore include", _options.Ignored.Except(ComparisonOptions.DefaultIgnored)) })
        {
            if (named.FirstOrDefault(n => !reference.ContainsKey(n) && !candidate.ContainsKey(n)) is { } unknown)
            {
                throw new ArgumentException($"{what} '{unknown}', a column neither side has (the reference has {Names(referenceSchema)}).");
            }
        }

        // Text and booleans are compared exactly whatever the tolerance: one given for them did nothing, without a word.
        foreach (var name in _options.Tolerances.Keys)
        {
            var field = reference.GetValueOrDefault(name) ?? candidate[name];
            if (field.Type.Kind is ScalarKind.String or ScalarKind.Bool)
            {
                throw new ArgumentException($"A tolerance names '{name}', a {field.Type} column: tolerances apply to numbers, timestamps and lists of numbers; {field.Type} values are compared exactly (or left out with --ignore {name}).");
            }
        }

        var columns = new List<ColumnComparer>();
        var onlyReference = new List<string>();
        var mismatched = new List<string>();
        foreach (var field in referenceSchema)
        {
            if (field.Name == StandardColumns.EventId || _options.Ignored.Contains(field.Name))
            {
                continue;
            }

            if (!candidate.TryGetValue(field.Name, out var other))
            {
                onlyReference.Add(field.Name);
            }
            else if (other.Type != field.Type)
            {
                mismatched.Add($"{field.Name} ({field.Type} against {other.Type})");
            }
            else
            {
                columns.Add(ColumnComparer.For(field, _options.ToleranceOf(field.Name)));
            }
        }

        _columns = [.. columns];
        OnlyInReference = onlyReference;
        OnlyInCandidate = [.. candidateSchema.Where(f => !reference.ContainsKey(f.Name) && !_options.Ignored.Contains(f.Name)).Select(f => f.Name)];
        TypeMismatches = mismatched;
    }

    /// <summary>Columns the reference has and the candidate lacks (not compared).</summary>
    public IReadOnlyList<string> OnlyInReference { get; }

    /// <summary>Columns the candidate has and the reference lacks (not compared).</summary>
    public IReadOnlyList<string> OnlyInCandidate { get; }

    /// <summary>Columns of the same name and different types (not compared).</summary>
    public IReadOnlyList<string> TypeMismatches { get; }

    /// <summary>The columns compared, in the reference's order.</summary>
    public IReadOnlyList<string> ComparedColumns => [.. _columns.Select(c => c.Name)];

    /// <summary>
    /// Compares one slice. <paramref name="explained"/>, when given, holds ids known to be absent from
    /// the candidate for a stated reason (the stream's late-event ledger: events it left to batch or
    /// dropped); reference-only events among them are counted as <see cref="EventTypeComparison.ReferenceOnlyExplained"/>.
    /// </summary>
    /// <returns>The slice's own completeness per event type it holds (the totals keep growing in <see cref="Result"/>).</returns>
    public IReadOnlyList<SliceCompleteness> Compare(EventBatch reference, EventBatch candidate, IReadOnlySet<string>? explained = null)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(candidate);
        var before = new Dictionary<string, SliceCompleteness>(_types.Count, StringComparer.Ordinal);
        foreach (var (type, counts) in _types)
        {
            before[type] = counts.Completeness(type);
        }

        var refIds = Strings(reference, StandardColumns.EventId);
        var refTypes = Strings(reference, StandardColumns.EventType);
        var refUsers = Longs(reference, StandardColumns.UserId);
        var refTimes = Longs(reference, StandardColumns.EventTime);
        var candIds = Strings(candidate, StandardColumns.EventId);
        var candTypes = Strings(candidate, StandardColumns.EventType);
        var candUsers = Longs(candidate, StandardColumns.UserId);
        var candTimes = Longs(candidate, StandardColumns.EventTime);

        // The reference's rows by id (first occurrence); a repeat is counted and never matched.
        var byId = new Dictionary<string, int>(reference.RowCount, StringComparer.Ordinal);
        var matched = new bool[reference.RowCount];
        for (int i = 0; i < reference.RowCount; i++)
        {
            var counts = Counts(refTypes[i]);
            counts.ReferenceRows++;
            Touch(refUsers.Values[i], 0);
            if (refIds[i] is not { } id || !byId.TryAdd(id, i))
            {
                counts.ReferenceDuplicates++;
                matched[i] = true; // not reference-only either: its first copy speaks for it
            }
        }

        var refColumns = new Column[_columns.Length];
        var candColumns = new Column[_columns.Length];
        for (int c = 0; c < _columns.Length; c++)
        {
            refColumns[c] = reference[_columns[c].Name];
            candColumns[c] = candidate[_columns[c].Name];
        }

        var seen = new HashSet<string>(candidate.RowCount, StringComparer.Ordinal);
        for (int j = 0; j < candidate.RowCount; j++)
        {
            long user = candUsers.Values[j];
            Touch(user, 0);
            if (candIds[j] is not { } id || !seen.Add(id))
            {
                var repeated = Counts(candTypes[j]);
                repeated.CandidateRows++;
                repeated.CandidateDuplicates++;
                continue;
            }

            if (!byId.TryGetValue(id, out int i))
            {
                var only = Counts(candTypes[j]);
                only.CandidateRows++;
                only.CandidateOnly++;
                Touch(user, IdsDiffer);
                continue;
            }

            matched[i] = true;
            var counts = Counts(refTypes[i]);
            counts.CandidateRows++;
            counts.Matched++;
            long refUser = refUsers.Values[i];
            if (refUser != user || refTimes.Values[i] != candTimes.Values[j])
            {
                Touch(refUser, IdsDiffer);
                Touch(user, IdsDiffer);
            }

            bool allAgree = true;
            for (int c = 0; c < _columns.Length; c++)
            {
                var stats = counts.Column(c, _columns.Length);
                stats.Compared++;
                double difference = 0;
                if (_columns[c].Agree(refColumns[c], i, candColumns[c], j, ref difference))
                {
                    stats.Agreed++;
                }
                else
                {
                    allAgree = false;
                    if (stats.Examples.Count < _options.ExamplesPerColumn)
                    {
                        stats.Examples.Add(id);
                    }
                }

                stats.MaxDifference = ColumnComparer.Larger(stats.MaxDifference, difference);
            }

            if (!allAgree)
            {
                Touch(refUser, ValuesDiffer);
                Touch(user, ValuesDiffer);
            }
        }

        for (int i = 0; i < reference.RowCount; i++)
        {
            if (!matched[i])
            {
                var counts = Counts(refTypes[i]);
                counts.ReferenceOnly++;
                if (explained is not null && explained.Contains(refIds[i]!))
                {
                    counts.ReferenceOnlyExplained++;
                }

                Touch(refUsers.Values[i], IdsDiffer);
            }
        }

        var slice = new List<SliceCompleteness>();
        foreach (var (type, counts) in _types.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var now = counts.Completeness(type);
            var delta = before.TryGetValue(type, out var then)
                ? now with { Matched = now.Matched - then.Matched, ReferenceOnly = now.ReferenceOnly - then.ReferenceOnly, ReferenceOnlyExplained = now.ReferenceOnlyExplained - then.ReferenceOnlyExplained, CandidateOnly = now.CandidateOnly - then.CandidateOnly }
                : now;
            if (delta.Matched + delta.ReferenceOnly + delta.CandidateOnly > 0)
            {
                slice.Add(delta);
            }
        }

        return slice;
    }

    /// <summary>What has been compared so far, per event type (ordinal order) and in total.</summary>
    public ComparisonResult Result()
    {
        var names = ComparedColumns;
        var types = _types.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => t.Value.ToComparison(t.Key, names)).ToList();
        var total = new TypeCounts();
        foreach (var counts in _types.Values)
        {
            total.Add(counts, _columns.Length, _options.ExamplesPerColumn);
        }

        long idsAgree = 0, fullyAgree = 0;
        foreach (var flags in _users.Values)
        {
            idsAgree += (flags & IdsDiffer) == 0 ? 1 : 0;
            fullyAgree += flags == 0 ? 1 : 0;
        }

        return new ComparisonResult(types, total.ToComparison("(all)", names), new SequenceAgreement(_users.Count, idsAgree, fullyAgree), names, OnlyInReference, OnlyInCandidate, TypeMismatches);
    }

    private TypeCounts Counts(string? eventType)
    {
        var key = eventType ?? "";
        if (!_types.TryGetValue(key, out var counts))
        {
            _types[key] = counts = new TypeCounts();
        }

        return counts;
    }

    private void Touch(long user, byte flags)
    {
        _users.TryGetValue(user, out byte existing);
        _users[user] = (byte)(existing | flags);
    }

    private static string?[] Strings(EventBatch batch, string name) =>
        batch[name] is StringColumn strings ? strings.Values : throw new ArgumentException($"Column '{name}' must be a string column.");

    private static PrimitiveColumn<long> Longs(EventBatch batch, string name) =>
        batch[name] is PrimitiveColumn<long> longs ? longs : throw new ArgumentException($"Column '{name}' must be an int64 or timestamp column.");

    private static string Names(ImmutableArray<FieldDefinition> schema) => string.Join(", ", schema.Select(f => f.Name));

    private sealed class TypeCounts
    {
        public long ReferenceRows, CandidateRows, Matched, ReferenceOnly, ReferenceOnlyExplained, CandidateOnly, ReferenceDuplicates, CandidateDuplicates;
        private ColumnCounts[]? _columns;

        public ColumnCounts Column(int index, int count)
        {
            _columns ??= CreateColumns(count);
            return _columns[index];
        }

        public void Add(TypeCounts other, int columnCount, int examples)
        {
            ReferenceRows += other.ReferenceRows;
            CandidateRows += other.CandidateRows;
            Matched += other.Matched;
            ReferenceOnly += other.ReferenceOnly;
            ReferenceOnlyExplained += other.ReferenceOnlyExplained;
            CandidateOnly += other.CandidateOnly;
            ReferenceDuplicates += other.ReferenceDuplicates;
            CandidateDuplicates += other.CandidateDuplicates;
            if (other._columns is null)
            {
                return;
            }

            for (int c = 0; c < columnCount; c++)
            {
                var mine = Column(c, columnCount);
                var theirs = other._columns[c];
                mine.Compared += theirs.Compared;
                mine.Agreed += theirs.Agreed;
                mine.MaxDifference = ColumnComparer.Larger(mine.MaxDifference, theirs.MaxDifference);
                foreach (var id in theirs.Examples)
                {
                    if (mine.Examples.Count < examples)
                    {
                        mine.Examples.Add(id);
                    }
                }
            }
        }

        public SliceCompleteness Completeness(string eventType) => new(eventType, Matched, ReferenceOnly, ReferenceOnlyExplained, CandidateOnly);

        public EventTypeComparison ToComparison(string eventType, IReadOnlyList<string> names)
        {
            var columns = new List<ColumnAgreement>(names.Count);
            for (int c = 0; c < names.Count; c++)
            {
                var stats = _columns?[c] ?? new ColumnCounts();
                columns.Add(new ColumnAgreement(names[c], stats.Compared, stats.Agreed, stats.MaxDifference, [.. stats.Examples]));
            }

            return new EventTypeComparison(eventType, ReferenceRows, CandidateRows, Matched, ReferenceOnly, ReferenceOnlyExplained, CandidateOnly, ReferenceDuplicates, CandidateDuplicates, columns);
        }

        private static ColumnCounts[] CreateColumns(int count)
        {
            var columns = new ColumnCounts[count];
            for (int c = 0; c < count; c++)
            {
                columns[c] = new ColumnCounts();
            }

            return columns;
        }
    }

    private sealed class ColumnCounts
    {
        public long Compared, Agreed;
        public double MaxDifference;
        public List<string> Examples { get; } = [];
    }
}

/// <summary>One column's agreement over the matched events.</summary>
/// <param name="MaxDifference">The largest |reference − candidate| over matched numeric values (list elements included) both sides hold; 0 for other kinds; NaN when one side was NaN and the other not.</param>
/// <param name="Examples">A few event ids whose values disagree.</param>
public sealed record ColumnAgreement(string Column, long Compared, long Agreed, double MaxDifference, IReadOnlyList<string> Examples)
{
    /// <summary>Agreed ÷ compared; 1 when nothing was compared (no gate fails on it; JSON gives <see cref="MeasuredRate"/>).</summary>
    [JsonIgnore]
    public double Rate => Compared == 0 ? 1 : (double)Agreed / Compared;

    /// <summary>The rate in JSON reports: null when nothing was compared, which a reader would take for full agreement as 1.</summary>
    [JsonInclude]
    [JsonPropertyName("rate")]
    internal double? MeasuredRate => Compared == 0 ? null : Rate;
}

/// <summary>Event-level counts of one event type (or of all, <c>(all)</c>).</summary>
/// <param name="ReferenceRows">Rows the reference holds, repeats included.</param>
/// <param name="CandidateRows">Rows the candidate holds, repeats included.</param>
/// <param name="Matched">Distinct ids both hold.</param>
/// <param name="ReferenceOnly">Distinct reference ids the candidate lacks.</param>
/// <param name="ReferenceOnlyExplained">Of those, ids known to be absent for a stated reason (the stream's late-event ledger).</param>
/// <param name="CandidateOnly">Distinct candidate ids the reference lacks.</param>
/// <param name="ReferenceDuplicates">Reference rows repeating an id already seen in the slice (or with no id).</param>
/// <param name="CandidateDuplicates">Likewise in the candidate.</param>
public sealed record EventTypeComparison(
    string EventType,
    long ReferenceRows,
    long CandidateRows,
    long Matched,
    long ReferenceOnly,
    long ReferenceOnlyExplained,
    long CandidateOnly,
    long ReferenceDuplicates,
    long CandidateDuplicates,
    IReadOnlyList<ColumnAgreement> Columns)
{
    /// <summary>Matched ÷ the reference's distinct ids: the share of the reference the candidate holds; 1 when the reference holds none (JSON: null).</summary>
    [JsonIgnore]
    public double Completeness => Matched + ReferenceOnly == 0 ? 1 : (double)Matched / (Matched + ReferenceOnly);

    /// <summary>The lowest column agreement rate (1 with no columns; JSON: null, as when no column compared an event).</summary>
    [JsonIgnore]
    public double WorstAgreement => Columns.Count == 0 ? 1 : Columns.Min(c => c.Rate);

    [JsonInclude]
    [JsonPropertyName("completeness")]
    internal double? MeasuredCompleteness => Matched + ReferenceOnly == 0 ? null : Completeness;

    [JsonInclude]
    [JsonPropertyName("worst_agreement")]
    internal double? MeasuredWorstAgreement => Columns.Min(c => c.MeasuredRate);
}

/// <summary>One slice's (a bucket's) events of one type: distinct ids both sides hold, only the reference, of those the explained, only the candidate.</summary>
public sealed record SliceCompleteness(string EventType, long Matched, long ReferenceOnly, long ReferenceOnlyExplained, long CandidateOnly)
{
    /// <summary>Matched ÷ the reference's distinct ids; 1 when the reference holds none (JSON: null).</summary>
    [JsonIgnore]
    public double Completeness => Matched + ReferenceOnly == 0 ? 1 : (double)Matched / (Matched + ReferenceOnly);

    [JsonInclude]
    [JsonPropertyName("completeness")]
    internal double? MeasuredCompleteness => Matched + ReferenceOnly == 0 ? null : Completeness;
}

/// <summary>Sequence-level agreement: users seen on either side; those whose events are the same ids at the same times; those whose compared values all agree too.</summary>
public sealed record SequenceAgreement(long Users, long IdsAgree, long FullyAgree)
{
    /// <summary>1 with no user (JSON: null, for a reader would take 1 for agreement).</summary>
    [JsonIgnore]
    public double IdsRate => Users == 0 ? 1 : (double)IdsAgree / Users;

    /// <summary>1 with no user (JSON: null).</summary>
    [JsonIgnore]
    public double FullRate => Users == 0 ? 1 : (double)FullyAgree / Users;

    [JsonInclude]
    [JsonPropertyName("ids_rate")]
    internal double? MeasuredIdsRate => Users == 0 ? null : IdsRate;

    [JsonInclude]
    [JsonPropertyName("full_rate")]
    internal double? MeasuredFullRate => Users == 0 ? null : FullRate;
}

/// <summary>Everything an <see cref="EventComparer"/> found.</summary>
public sealed record ComparisonResult(
    IReadOnlyList<EventTypeComparison> EventTypes,
    EventTypeComparison Total,
    SequenceAgreement Sequences,
    IReadOnlyList<string> ComparedColumns,
    IReadOnlyList<string> OnlyInReference,
    IReadOnlyList<string> OnlyInCandidate,
    IReadOnlyList<string> TypeMismatches);
