using System.Collections.Immutable;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Quality;

namespace Weft.Migration;

/// <summary>
/// What a comparison of Weft with legacy must reach. A side of legacy's own noise (legacy against a
/// second run of itself) lowers each bar to what legacy reaches against itself: Weft is not asked to
/// agree with legacy better than legacy agrees with itself.
/// </summary>
public sealed record ComparisonGates(double MinCompleteness = 0.99, double MinAgreement = 0.99, double MinSequenceAgreement = 0.95);

/// <summary>One event type of a signal compared with its legacy output over [From, To) (µs; either open: the range legacy's rows of the type cover).</summary>
public sealed record LegacyComparisonRequest(string EventType, long? FromMicros, long? ToMicros, ComparisonOptions Options, ComparisonGates Gates);

/// <summary>One bar of the gate: what was measured, legacy's own level (noise floor) when measured, what was required.</summary>
public sealed record GateCheck(string Measure, double Value, double? NoiseFloor, double Required)
{
    public bool Passed => Value >= Required;
}

/// <summary>
/// A two-tier comparison of Weft (candidate) with legacy (reference) for one event type: the
/// event-level and sequence-level result, the same against a second legacy run when one is
/// configured (the noise floor), and the gate's checks and failures.
/// </summary>
public sealed record LegacyComparisonResult(
    string Signal,
    string EventType,
    long FromMicros,
    long ToMicros,
    long LegacyRows,
    long WeftRows,
    ComparisonResult Comparison,
    ComparisonResult? NoiseFloor,
    IReadOnlyList<string> LegacyOnlyColumns,
    IReadOnlyList<string> UnreadableLegacyRows,
    IReadOnlyList<GateCheck> Checks,
    IReadOnlyList<string> Failures)
{
    public bool Passed => Failures.Count == 0;
}

/// <summary>What Weft and legacy each hold of one event type: the shadow stage's evidence.</summary>
public sealed record ShadowCheck(string Signal, string EventType, long LegacyRows, long WeftRows, long? FromMicros, long? ToMicros)
{
    public bool Passed => LegacyRows > 0 && WeftRows > 0;
}

/// <summary>A comparison that cannot run: no legacy adapter configured, no enriched table, unreadable input.</summary>
public sealed class MigrationInputException(string message) : Exception(message);

/// <summary>Reads legacy output through its table adapter and Weft's enriched table, and compares them per event type.</summary>
public static class LegacyComparison
{
    /// <summary>Counts each side's rows of the event type (the shadow evidence).</summary>
    public static async Task<ShadowCheck> ShadowAsync(WeftConfig config, SignalDefinition signal, string eventType, CancellationToken cancellationToken = default)
    {
        var (_, output) = LegacyOf(config, signal);
        var lake = await OpenLakeAsync(config, signal, cancellationToken).ConfigureAwait(false);
        var (legacyRows, _, _, _) = await ReadLegacyAsync(output, WeftSchema(lake), eventType, null, null, cancellationToken).ConfigureAwait(false);
        long? from = legacyRows.RowCount == 0 ? null : Min(legacyRows), to = legacyRows.RowCount == 0 ? null : Max(legacyRows) + 1;
        var weft = await ReadWeftAsync(lake, eventType, from ?? Timestamps.MinMicros, to ?? Timestamps.MaxMicros, cancellationToken).ConfigureAwait(false);
        return new ShadowCheck(signal.Name, eventType, legacyRows.RowCount, weft.RowCount, from, to);
    }

    /// <summary>
    /// Compares Weft's rows of the event type (what it serves: sealed batch buckets, the stream's where
    /// none is sealed) with legacy's over the range, and legacy with its replica when one is configured.
    /// Events are matched by event_id over the whole range, so an event whose time differs between the
    /// pipelines still matches (and shows as an event_time disagreement).
    /// </summary>
    public static async Task<LegacyComparisonResult> CompareAsync(WeftConfig config, SignalDefinition signal, LegacyComparisonRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (legacy, output) = LegacyOf(config, signal);
        var lake = await OpenLakeAsync(config, signal, cancellationToken).ConfigureAwait(false);
        var weftSchema = WeftSchema(lake);
        var (legacyRows, legacySchema, legacyOnly, unreadable) = await ReadLegacyAsync(output, weftSchema, request.EventType, request.FromMicros, request.ToMicros, cancellationToken).ConfigureAwait(false);
        long from = request.FromMicros ?? (legacyRows.RowCount == 0 ? 0 : Min(legacyRows));
        long to = request.ToMicros ?? (legacyRows.RowCount == 0 ? 0 : Max(legacyRows) + 1);
        var weftRows = to > from ? await ReadWeftAsync(lake, request.EventType, from, to, cancellationToken).ConfigureAwait(false) : EventBatch.Empty(weftSchema);

        var comparer = new EventComparer(legacySchema, weftSchema, request.Options);
        comparer.Compare(legacyRows, weftRows);
        var comparison = comparer.Result();

        ComparisonResult? floor = null;
        if (legacy.Replica is { } replica)
        {
            var (replicaRows, replicaSchema, _, _) = await ReadLegacyAsync(replica, weftSchema, request.EventType, from, to, cancellationToken).ConfigureAwait(false);
            var floorComparer = new EventComparer(legacySchema, replicaSchema, request.Options);
            floorComparer.Compare(legacyRows, replicaRows);
            floor = floorComparer.Result();
        }

        legacyOnly = [.. legacyOnly.Where(c => !request.Options.Ignored.Contains(c))];
        var (checks, failures) = Gate(comparison, floor, request.Gates);
        if (legacyRows.RowCount == 0)
        {
            failures.Insert(0, $"legacy holds no '{request.EventType}' events{(request.FromMicros is null && request.ToMicros is null ? "" : " in the range")}: nothing was compared");
        }

        foreach (var column in legacyOnly)
        {
            failures.Add($"legacy has column '{column}' and Weft's sequences do not: its consumers would lose it (add it to the signal, or --ignore it)");
        }

        if (unreadable.Count > 0)
        {
            failures.Add($"{unreadable.Count:N0} legacy row(s) cannot be read as Weft's column types, e.g. {unreadable[0]}");
        }

        return new LegacyComparisonResult(signal.Name, request.EventType, from, to, legacyRows.RowCount, weftRows.RowCount, comparison, floor, legacyOnly, [.. unreadable.Take(5)], checks, failures);
    }

    /// <summary>The gate: completeness, every compared column's agreement and sequence agreement, each against its bar lowered to legacy's own level.</summary>
    internal static (List<GateCheck> Checks, List<string> Failures) Gate(ComparisonResult comparison, ComparisonResult? floor, ComparisonGates gates)
    {
        var checks = new List<GateCheck>();
        GateCheck Check(string measure, double value, double? noise, double bar) =>
            new(measure, value, noise, noise is { } n ? Math.Min(bar, n) : bar);

        checks.Add(Check("completeness", comparison.Total.Completeness, floor?.Total.Completeness, gates.MinCompleteness));
        foreach (var column in comparison.Total.Columns)
        {
            double? noise = floor?.Total.Columns.FirstOrDefault(c => c.Column == column.Column)?.Rate;
            checks.Add(Check($"column {column.Column}", column.Rate, noise, gates.MinAgreement));
        }

        checks.Add(Check("sequences (same events)", comparison.Sequences.IdsRate, floor?.Sequences.IdsRate, gates.MinSequenceAgreement));
        var failures = checks.Where(c => !c.Passed)
            .Select(c => $"{c.Measure} {c.Value:P2} is below {c.Required:P2}{(c.NoiseFloor is { } n ? $" (legacy against itself: {n:P2})" : "")}")
            .ToList();
        return (checks, failures);
    }

    /// <summary>The signal's legacy pipeline with its output table (what every comparison reads).</summary>
    private static (LegacyConfig Legacy, TableLocation Output) LegacyOf(WeftConfig config, SignalDefinition signal)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(signal);
        if (!config.Legacy.TryGetValue(signal.Name, out var legacy))
        {
            throw new MigrationInputException($"no legacy pipeline is configured for signal '{signal.Name}': add \"legacy\": {{\"{signal.Name}\": {{\"output\": {{\"path\": ..., \"format\": ...}}}}}} to {config.ConfigPath}");
        }

        return legacy.Output is { } output
            ? (legacy, output)
            : throw new MigrationInputException($"legacy.{signal.Name} in {config.ConfigPath} has an endpoint but no output table: comparisons read legacy's enriched events from a table (add \"output\": {{\"path\": ..., \"format\": ...}})");
    }

    /// <summary>The columns consumers read from Weft's enriched table: the signal's sequence columns and user_id.</summary>
    private static ImmutableArray<FieldDefinition> WeftSchema(EnrichedLake lake) =>
        [.. lake.Columns.Where(c => c != StandardColumns.IngestTime).Select(c => lake.Table.Schema.First(f => f.Name == c))];

    private static async Task<EnrichedLake> OpenLakeAsync(WeftConfig config, SignalDefinition signal, CancellationToken cancellationToken)
    {
        try
        {
            return await EnrichedLake.OpenAsync(config.EnrichedTable(signal.Name), signal, cancellationToken).ConfigureAwait(false);
        }
        catch (InputException ex)
        {
            throw new MigrationInputException(ex.Message);
        }
    }

    /// <summary>Weft's admitted rows of the event type with event_time in [from, to).</summary>
    private static async Task<EventBatch> ReadWeftAsync(EnrichedLake lake, string eventType, long from, long to, CancellationToken cancellationToken)
    {
        var rows = await lake.ReadAsync(from, to - 1, cancellationToken).ConfigureAwait(false);
        var types = ((StringColumn)rows.Rows[StandardColumns.EventType]).Values;
        var keep = new List<int>();
        for (int i = 0; i < rows.Rows.RowCount; i++)
        {
            if (rows.Admitted[i] && types[i] == eventType)
            {
                keep.Add(i);
            }
        }

        return rows.Rows.Gather(keep.ToArray()).Project(WeftSchema(lake));
    }

    /// <summary>
    /// Legacy's rows of the event type in the range, typed as Weft's columns of the same names; the
    /// columns only legacy has (not compared), and the rows that cannot be typed.
    /// </summary>
    private static async Task<(EventBatch Rows, ImmutableArray<FieldDefinition> Schema, IReadOnlyList<string> LegacyOnly, IReadOnlyList<string> Unreadable)> ReadLegacyAsync(
        TableLocation location, ImmutableArray<FieldDefinition> weftSchema, string eventType, long? from, long? to, CancellationToken cancellationToken)
    {
        IReadOnlySet<string> names;
        ImmutableArray<FieldDefinition> schema;
        var parts = new List<EventBatch>();
        var unreadable = new List<string>();
        try
        {
            names = await TableInputs.ColumnNamesAsync(location, cancellationToken).ConfigureAwait(false);
            schema = [.. weftSchema.Where(f => names.Contains(f.Name))];
            var missing = ((string[])[StandardColumns.EventId, StandardColumns.UserId, StandardColumns.EventType, StandardColumns.EventTime]).Where(c => !names.Contains(c)).ToList();
            if (missing.Count > 0)
            {
                throw new MigrationInputException($"legacy output '{location.Path}' has no column(s) {string.Join(", ", missing)} (it has: {string.Join(", ", names.Order(StringComparer.Ordinal))}); events are matched by event_id and grouped by user_id, event_type and event_time");
            }

            // Part by part, keeping only the event type's rows in the range: legacy's whole output may be large.
            await foreach (var (part, bad) in TableInputs.ReadTableAsync(location, schema, cancellationToken).ConfigureAwait(false))
            {
                parts.Add(Keep(part, eventType, from, to));
                // A row that cannot be read counts against this event type when it is one of it (or its type is unknown).
                unreadable.AddRange(bad.Where(d => d.EventType is null || d.EventType == eventType).Select(d => $"{d.Source}: {d.Reason}"));
            }
        }
        catch (InputException ex)
        {
            throw new MigrationInputException($"legacy output: {ex.Message}");
        }

        var legacyOnly = names.Where(n => !weftSchema.Any(f => f.Name == n)).Order(StringComparer.Ordinal).ToList();
        var rows = parts.Count == 0 ? EventBatch.Empty(schema) : parts.Count == 1 ? parts[0] : EventBatch.Concat(schema, parts);
        return (rows, schema, legacyOnly, unreadable);
    }

    /// <summary>The rows of <paramref name="eventType"/> with event_time in [from, to) (either end open when null).</summary>
    private static EventBatch Keep(EventBatch rows, string eventType, long? from, long? to)
    {
        var types = ((StringColumn)rows[StandardColumns.EventType]).Values;
        var times = (PrimitiveColumn<long>)rows[StandardColumns.EventTime];
        var keep = new List<int>();
        for (int i = 0; i < rows.RowCount; i++)
        {
            if (types[i] == eventType && (from is null || (!times.IsNull(i) && times.Values[i] >= from)) && (to is null || (!times.IsNull(i) && times.Values[i] < to)))
            {
                keep.Add(i);
            }
        }

        return keep.Count == rows.RowCount ? rows : rows.Gather(keep.ToArray());
    }

    private static long Min(EventBatch rows) => Times(rows).Min();

    private static long Max(EventBatch rows) => Times(rows).Max();

    private static IEnumerable<long> Times(EventBatch rows)
    {
        var times = (PrimitiveColumn<long>)rows[StandardColumns.EventTime];
        for (int i = 0; i < rows.RowCount; i++)
        {
            if (!times.IsNull(i))
            {
                yield return times.Values[i];
            }
        }
    }
}
