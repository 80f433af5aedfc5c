using System.Collections.Immutable;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Quality;
using Weft.Storage;

namespace Weft.Migration;

/// <summary>
/// What a comparison of Weft with legacy must reach. A side of legacy's own noise (legacy against a
/// second run of itself) lowers each bar to what legacy reaches against itself: Weft is not asked to
/// agree with legacy better than legacy agrees with itself.
/// </summary>
public sealed record ComparisonGates(double MinCompleteness = 0.99, double MinAgreement = 0.99, double MinSequenceAgreement = 0.95);

/// <summary>One event type of a signal compared with its legacy output over [From, To) (µs; either open: the range legacy's rows of the type cover).</summary>
/// <param name="SampleUsers">Through a legacy endpoint (no output table): how many of Weft's users to ask it for.</param>
public sealed record LegacyComparisonRequest(string EventType, long? FromMicros, long? ToMicros, ComparisonOptions Options, ComparisonGates Gates, int SampleUsers = LegacyComparison.DefaultSampleUsers);

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

    /// <summary>Through a legacy endpoint: the users whose sequences legacy answered and were compared; null when legacy's output table was read.</summary>
    public int? SampledUsers { get; init; }
}

/// <summary>What Weft and legacy each hold of one event type: the shadow stage's evidence.</summary>
/// <param name="UnreadableLegacyRows">Legacy's rows of the type (or of no readable type) that cannot be read as Weft's column types, e.g. the first few.</param>
/// <param name="UnreadableLegacyCount">How many there are.</param>
public sealed record ShadowCheck(string Signal, string EventType, long LegacyRows, long WeftRows, long? FromMicros, long? ToMicros, IReadOnlyList<string>? UnreadableLegacyRows = null, long UnreadableLegacyCount = 0)
{
    public bool Passed => LegacyRows > 0 && WeftRows > 0;
}

/// <summary>A comparison that cannot run: no legacy adapter configured, no enriched table, unreadable input.</summary>
public sealed class MigrationInputException(string message) : Exception(message);

/// <summary>
/// Reads legacy output through its adapter — its output table, or (when it has none) its sequence
/// endpoint asked for a sample of users — and Weft's enriched table, and compares them per event type.
/// </summary>
public static class LegacyComparison
{
    public const int DefaultSampleUsers = 1000;

    /// <summary>The least a comparison waits for each of the endpoint's answers.</summary>
    public static readonly TimeSpan ComparisonTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Counts each side's rows of the event type (the shadow evidence).</summary>
    public static async Task<ShadowCheck> ShadowAsync(WeftConfig config, SignalDefinition signal, string eventType, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        var (legacyConfig, output) = LegacyOf(config, signal);
        var lake = await OpenLakeAsync(config, signal, cancellationToken).ConfigureAwait(false);
        if (output is null)
        {
            var sample = await SampleEndpointAsync(config, legacyConfig, signal, lake, eventType, null, null, DefaultSampleUsers, time ?? TimeProvider.System, cancellationToken).ConfigureAwait(false);
            if (sample.Failed.Count > 0 && sample.Failed.Count * 100 > sample.Users.Count + sample.Failed.Count)
            {
                // Not evidence either way: the endpoint could not be read.
                throw new MigrationInputException($"legacy's endpoint failed for {sample.Failed.Count:N0} of {sample.Users.Count + sample.Failed.Count:N0} users asked, e.g. {sample.Failed[0]}");
            }

            return new ShadowCheck(signal.Name, eventType, sample.Legacy.RowCount, sample.Weft.RowCount, sample.From, sample.To);
        }

        var (legacyRows, _, _, unreadable) = await ReadLegacyAsync(output, WeftSchema(lake), eventType, null, null, cancellationToken).ConfigureAwait(false);
        long? from = legacyRows.RowCount == 0 ? null : Min(legacyRows), to = legacyRows.RowCount == 0 ? null : Max(legacyRows) + 1;
        var weft = await ReadWeftAsync(lake, eventType, from ?? Timestamps.MinMicros, to ?? Timestamps.MaxMicros, cancellationToken).ConfigureAwait(false);
        return new ShadowCheck(signal.Name, eventType, legacyRows.RowCount, weft.RowCount, from, to, [.. unreadable.Take(5)], unreadable.Count);
    }

    /// <summary>
    /// Compares Weft's rows of the event type (what it serves: sealed batch buckets, the stream's where
    /// none is sealed) with legacy's over the range, and legacy with its replica when one is configured.
    /// Events are matched by event_id over the whole range, so an event whose time differs between the
    /// pipelines still matches (and shows as an event_time disagreement).
    /// </summary>
    public static async Task<LegacyComparisonResult> CompareAsync(WeftConfig config, SignalDefinition signal, LegacyComparisonRequest request, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (legacy, output) = LegacyOf(config, signal);
        var lake = await OpenLakeAsync(config, signal, cancellationToken).ConfigureAwait(false);
        if (output is null)
        {
            return await CompareEndpointAsync(config, legacy, signal, lake, request, time ?? TimeProvider.System, cancellationToken).ConfigureAwait(false);
        }

        var weftSchema = WeftSchema(lake);
        // Each side is read a day beyond the range: an event one side places inside it and the other just
        // outside (another clock, a time zone, a processing time) is matched by id and shows as an
        // event_time disagreement, not as an event only one side holds.
        var (legacyNear, legacySchema, legacyOnly, unreadable) = await ReadLegacyAsync(
            output, weftSchema, request.EventType, request.FromMicros is { } f ? Earlier(f) : null, request.ToMicros is { } t ? Later(t) : null, cancellationToken).ConfigureAwait(false);
        long from = request.FromMicros ?? (legacyNear.RowCount == 0 ? 0 : Min(legacyNear));
        long to = request.ToMicros ?? (legacyNear.RowCount == 0 ? 0 : Max(legacyNear) + 1);
        var weftNear = to > from
            ? await ReadWeftAsync(lake, request.EventType, Earlier(from), Later(to), cancellationToken).ConfigureAwait(false)
            : EventBatch.Empty(weftSchema);
        var (legacyRows, weftRows) = Overlap(legacyNear, weftNear, from, to);

        // Legacy's own columns are read out of its rows and reported below; --ignore may name them.
        var options = request.Options.WithoutIgnored(legacyOnly);
        var comparer = new EventComparer(legacySchema, weftSchema, options);
        comparer.Compare(legacyRows, weftRows);
        var comparison = comparer.Result();

        ComparisonResult? floor = null;
        IReadOnlyList<string> replicaUnreadable = [];
        if (legacy.Replica is { } replica)
        {
            // Read beyond the range as Weft is: a rerun that timed events later would otherwise lose the last
            // of them to the range's end, and the floor would lower every bar by what it lost.
            (var replicaNear, var replicaSchema, _, replicaUnreadable) = await ReadLegacyAsync(replica, weftSchema, request.EventType, Earlier(from), Later(to), cancellationToken).ConfigureAwait(false);
            var (legacyAgainstReplica, replicaRows) = Overlap(legacyNear, replicaNear, from, to);
            var floorComparer = new EventComparer(legacySchema, replicaSchema, options);
            floorComparer.Compare(legacyAgainstReplica, replicaRows);
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

        if (replicaUnreadable.Count > 0)
        {
            // Left out of the floor, its unreadable rows read as events legacy's second run lost, lowering every bar as if legacy disagreed with itself.
            failures.Add($"{replicaUnreadable.Count:N0} row(s) of legacy's replica cannot be read as Weft's column types, e.g. {replicaUnreadable[0]}: "
                + "the events it could not read would lower the bars as legacy's own noise (mend the replica, or remove it)");
        }

        return new LegacyComparisonResult(signal.Name, request.EventType, from, to, legacyRows.RowCount, weftRows.RowCount, comparison, floor, legacyOnly, [.. unreadable.Take(5)], checks, failures);
    }

    /// <summary>How far beyond the compared range each side is read for the copy of an event the other side places inside it.</summary>
    internal const long MatchSlackMicros = 86_400_000_000L;

    private static long Earlier(long micros) => Math.Max(micros, Timestamps.MinMicros + MatchSlackMicros) - MatchSlackMicros;

    private static long Later(long micros) => Math.Min(micros, Timestamps.MaxMicros - MatchSlackMicros) + MatchSlackMicros;

    /// <summary>
    /// The rows each side places in [from, to), and beside them the rows it places outside whose id the
    /// other side places inside: one event, whatever time each pipeline gave it.
    /// </summary>
    private static (EventBatch Legacy, EventBatch Weft) Overlap(EventBatch legacy, EventBatch weft, long from, long to)
    {
        var legacyIds = InRangeIds(legacy, from, to);
        var weftIds = InRangeIds(weft, from, to);
        return (Near(legacy, weftIds, from, to), Near(weft, legacyIds, from, to));

        static HashSet<string> InRangeIds(EventBatch rows, long from, long to)
        {
            var ids = ((StringColumn)rows[StandardColumns.EventId]).Values;
            var times = ((PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
            var inside = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < rows.RowCount; i++)
            {
                if (times[i] >= from && times[i] < to && ids[i] is { } id)
                {
                    inside.Add(id);
                }
            }

            return inside;
        }

        static EventBatch Near(EventBatch rows, HashSet<string> otherInside, long from, long to)
        {
            var ids = ((StringColumn)rows[StandardColumns.EventId]).Values;
            var times = ((PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
            var keep = new List<int>(rows.RowCount);
            for (int i = 0; i < rows.RowCount; i++)
            {
                if ((times[i] >= from && times[i] < to) || (ids[i] is { } id && otherInside.Contains(id)))
                {
                    keep.Add(i);
                }
            }

            return keep.Count == rows.RowCount ? rows : rows.Gather([.. keep]);
        }
    }

    /// <summary>The least share of legacy's events a replica must hold to count as a second run of it (a noise floor).</summary>
    internal const double MinReplicaOverlap = 0.5;

    /// <summary>The gate: completeness, every compared column's agreement and sequence agreement, each against its bar lowered to legacy's own level.</summary>
    internal static (List<GateCheck> Checks, List<string> Failures) Gate(ComparisonResult comparison, ComparisonResult? floor, ComparisonGates gates)
    {
        // A second run over the same input shares nearly every event with legacy (event ids come from the
        // raw events). One that shares less than half measured another input, not legacy's noise: as a
        // floor it lowered every bar toward 0 % (one shared event of 53,692 passed any Weft). It is
        // refused, not ignored, as a misconfiguration the operator must see (another range, input or type).
        string? noFloor = null;
        if (floor is { Total: { } legacyAgainstReplica } && legacyAgainstReplica.Matched + legacyAgainstReplica.ReferenceOnly > 0 && legacyAgainstReplica.Completeness < MinReplicaOverlap)
        {
            noFloor = $"legacy's replica shares {legacyAgainstReplica.Matched:N0} of legacy's {legacyAgainstReplica.Matched + legacyAgainstReplica.ReferenceOnly:N0} events (by event_id), "
                + $"less than {MinReplicaOverlap:P0}: it is not a second run over the same input, so it gives no noise floor (point the replica at one, or remove it)";
            floor = null;
        }

        var checks = new List<GateCheck>();
        GateCheck Check(string measure, double value, double? noise, double bar) =>
            new(measure, value, noise, noise is { } n ? Math.Min(bar, n) : bar);

        checks.Add(Check("completeness", comparison.Total.Completeness, floor?.Total.Completeness, gates.MinCompleteness));
        // Agreement over no matched event is not 100 %: with nothing matched the columns are not checked,
        // and the failure below says why.
        if (comparison.Total.Matched > 0)
        {
            foreach (var column in comparison.Total.Columns)
            {
                double? noise = floor?.Total.Columns.FirstOrDefault(c => c.Column == column.Column)?.Rate;
                checks.Add(Check($"column {column.Column}", column.Rate, noise, gates.MinAgreement));
            }
        }

        checks.Add(Check("sequences (same events)", comparison.Sequences.IdsRate, floor?.Sequences.IdsRate, gates.MinSequenceAgreement));
        var failures = checks.Where(c => !c.Passed)
            .Select(c => $"{c.Measure} {c.Value:P2} is below {c.Required:P2}{(c.NoiseFloor is { } n ? $" (legacy against itself: {n:P2})" : "")}")
            .ToList();
        if (comparison.Total is { Matched: 0, ReferenceOnly: > 0 } total)
        {
            failures.Insert(0, $"none of legacy's {total.ReferenceOnly:N0} events matched one of Weft's (by event_id): no column or sequence could agree");
        }

        if (noFloor is not null)
        {
            failures.Add(noFloor);
        }

        return (checks, failures);
    }

    /// <summary>The signal's legacy pipeline, and its output table when it has one (else it has an endpoint).</summary>
    private static (LegacyConfig Legacy, TableLocation? Output) LegacyOf(WeftConfig config, SignalDefinition signal)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(signal);
        return config.Legacy.TryGetValue(signal.Name, out var legacy)
            ? (legacy, legacy.Output)
            : throw new MigrationInputException($"no legacy pipeline is configured for signal '{signal.Name}': add \"legacy\": {{\"{signal.Name}\": {{\"output\": {{\"path\": ..., \"format\": ...}}}}}} to {config.ConfigPath}");
    }

    /// <summary>
    /// Through the endpoint: the request's comparison over a sample of Weft's users, with no noise floor
    /// (a second answer of a live service is not a second run of the pipeline).
    /// </summary>
    private static async Task<LegacyComparisonResult> CompareEndpointAsync(
        WeftConfig config, LegacyConfig legacy, SignalDefinition signal, EnrichedLake lake, LegacyComparisonRequest request, TimeProvider time, CancellationToken cancellationToken)
    {
        var sample = await SampleEndpointAsync(config, legacy, signal, lake, request.EventType, request.FromMicros, request.ToMicros, request.SampleUsers, time, cancellationToken).ConfigureAwait(false);
        var comparer = new EventComparer(sample.Legacy.Schema, sample.Weft.Schema, request.Options.WithoutIgnored(sample.LegacyOnly));
        comparer.Compare(sample.Legacy, sample.Weft);
        var comparison = comparer.Result();
        var legacyOnly = sample.LegacyOnly.Where(c => !request.Options.Ignored.Contains(c)).ToList();
        var (checks, failures) = Gate(comparison, null, request.Gates);
        if (sample.Users.Count + sample.Failed.Count == 0)
        {
            failures.Insert(0, $"Weft holds no events of '{signal.Name}' over {Timestamps.Format(sample.From)} .. {Timestamps.Format(sample.To)} to ask legacy about: nothing was compared");
        }
        else if (sample.Legacy.RowCount == 0 && sample.Users.Count > 0)
        {
            failures.Insert(0, $"legacy's endpoint answered no '{request.EventType}' events for the {sample.Users.Count:N0} users asked: nothing was compared");
        }

        if (sample.Failed.Count > 0 && sample.Failed.Count * 100 > sample.Users.Count + sample.Failed.Count)
        {
            failures.Add($"legacy's endpoint failed for {sample.Failed.Count:N0} of {sample.Users.Count + sample.Failed.Count:N0} users asked (more than 1 %), e.g. {sample.Failed[0]}");
        }

        foreach (var column in legacyOnly)
        {
            failures.Add($"legacy has column '{column}' and Weft's sequences do not: its consumers would lose it (add it to the signal, or --ignore it)");
        }

        if (sample.Unreadable.Count > 0)
        {
            failures.Add($"{sample.Unreadable.Count:N0} legacy element(s) cannot be read as Weft's column types, e.g. {sample.Unreadable[0]}");
        }

        return new LegacyComparisonResult(signal.Name, request.EventType, sample.From, sample.To, sample.Legacy.RowCount, sample.Weft.RowCount, comparison, null, legacyOnly, [.. sample.Unreadable.Take(5)], checks, failures)
        {
            SampledUsers = sample.Users.Count,
        };
    }

    /// <summary>
    /// Where a comparison through the endpoint ends by default: the end of the newest bucket Weft's table
    /// holds (now, on a live stream; the end of the data, on a backfilled history), or now when it holds none.
    /// </summary>
    private static async Task<long> NewestBucketEndAsync(EnrichedLake lake, TimeProvider time, CancellationToken cancellationToken)
    {
        var snapshot = await lake.Table.Log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
        long? end = null;
        foreach (var file in snapshot.Files())
        {
            if (file.PartitionValues.TryGetValue(EventLayout.BucketColumn, out var bucket) && bucket is not null)
            {
                long bucketEnd = TimeBuckets.Parse(bucket).EndMicros;
                end = end is { } e ? Math.Max(e, bucketEnd) : bucketEnd;
            }
        }

        return end ?? Timestamps.ToMicros(time.GetUtcNow()) + 1;
    }

    /// <summary>What the endpoint and Weft hold of one event type for a sample of users.</summary>
    private sealed record EndpointSample(
        long From, long To, IReadOnlyList<long> Users, EventBatch Legacy, EventBatch Weft, IReadOnlyList<string> LegacyOnly, IReadOnlyList<string> Unreadable, IReadOnlyList<string> Failed);

    /// <summary>
    /// Asks the endpoint for the sequences of up to <paramref name="users"/> of the users Weft holds events
    /// of the signal for in [from, to) (default: the signal's lookback up to the end of Weft's newest
    /// bucket, <see cref="NewestBucketEndAsync"/>), chosen by a hash of the
    /// user id so that the same users are asked every time. A legacy sequence holds its newest events
    /// only, so each user is compared from the oldest event legacy answered for them (of any type): an
    /// older event only Weft holds is legacy's length cap, not a loss.
    /// </summary>
    private static async Task<EndpointSample> SampleEndpointAsync(
        WeftConfig config, LegacyConfig legacy, SignalDefinition signal, EnrichedLake lake, string eventType, long? fromMicros, long? toMicros, int users, TimeProvider time, CancellationToken cancellationToken)
    {
        if (legacy.Endpoint is not { } url)
        {
            throw new MigrationInputException($"legacy.{signal.Name} in {config.ConfigPath} has neither an output table nor an endpoint");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(users, 1);
        long to = toMicros ?? await NewestBucketEndAsync(lake, time, cancellationToken).ConfigureAwait(false);
        long from = fromMicros ?? to - (signal.Lookback.Ticks / TimeSpan.TicksPerMicrosecond);
        var weftSchema = WeftSchema(lake);
        var read = await lake.ReadAsync(from, to - 1, cancellationToken).ConfigureAwait(false);
        var weftUsers = ((PrimitiveColumn<long>)read.Rows[StandardColumns.UserId]).Values;
        var candidates = new HashSet<long>();
        for (int i = 0; i < read.Rows.RowCount; i++)
        {
            if (read.Admitted[i])
            {
                candidates.Add(weftUsers[i]);
            }
        }

        var sampled = candidates.OrderBy(u => MigrationRouting.Bucket(signal.Name, "compare-sample", u)).ThenBy(u => u).Take(users).ToList();
        var answerSchema = weftSchema.Where(f => f.Name != StandardColumns.UserId).ToImmutableArray();
        var answers = new LegacySequence?[sampled.Count];
        var errors = new string?[sampled.Count];
        // Offline, a slow answer is not a missing one: endpoint_timeout is a serving deadline.
        using (var endpoint = new LegacyEndpoint(url, legacy.EndpointTimeout > ComparisonTimeout ? legacy.EndpointTimeout : ComparisonTimeout))
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, sampled.Count), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (i, ct) =>
            {
                try
                {
                    answers[i] = await endpoint.FetchAsync(sampled[i], answerSchema, ct, withColumns: true).ConfigureAwait(false);
                }
                catch (LegacyEndpointException e)
                {
                    errors[i] = e.Message;
                }
            }).ConfigureAwait(false);
        }

        var legacyParts = new List<EventBatch>();
        var unreadable = new List<string>();
        var columns = new SortedSet<string>(StringComparer.Ordinal);
        var answered = new List<long>();
        var startOf = new Dictionary<long, long>();
        for (int i = 0; i < sampled.Count; i++)
        {
            if (answers[i] is not { } answer)
            {
                continue;
            }

            answered.Add(sampled[i]);
            columns.UnionWith(answer.Columns);
            unreadable.AddRange(answer.Unreadable.Where(d => d.EventType is null || d.EventType == eventType).Select(d => $"{d.Source}: {d.Reason}"));
            var times = ((PrimitiveColumn<long>)answer.Rows[StandardColumns.EventTime]).Values;
            long start = from;
            if (times.Length > 0)
            {
                start = Math.Max(from, times.Min());
            }

            startOf[sampled[i]] = start;
            var rows = Keep(answer.Rows, eventType, start, to);
            var user = new PrimitiveColumn<long>(WeftType.Int64, Enumerable.Repeat(sampled[i], rows.RowCount).ToArray());
            legacyParts.Add(rows.WithColumn(new FieldDefinition(StandardColumns.UserId, WeftType.Int64, Nullable: false), user).Project(weftSchema));
        }

        var types = ((StringColumn)read.Rows[StandardColumns.EventType]).Values;
        var eventTimes = ((PrimitiveColumn<long>)read.Rows[StandardColumns.EventTime]).Values;
        // One copy of each event, as the served sequence takes it: both paths may hold one.
        var keep = read.OneCopyEach(lake.Signal.Merge, i => types[i] == eventType && startOf.TryGetValue(weftUsers[i], out long start) && eventTimes[i] >= start);

        var weft = read.Rows.Gather(keep).Project(weftSchema);
        // As with a table: only the columns legacy answers are compared; the others are Weft's additions.
        string[] keys = [StandardColumns.EventId, StandardColumns.UserId, StandardColumns.EventType, StandardColumns.EventTime];
        var legacySchema = weftSchema.Where(f => keys.Contains(f.Name) || columns.Contains(f.Name)).ToImmutableArray();
        var legacyRows = legacyParts.Count == 0 ? EventBatch.Empty(legacySchema) : EventBatch.Concat(legacySchema, legacyParts);
        // The user id is the endpoint's URL, not a column it must answer.
        var legacyOnly = columns.Where(c => c != StandardColumns.UserId && !weftSchema.Any(f => f.Name == c)).ToList();
        return new EndpointSample(from, to, answered, legacyRows, weft, legacyOnly, unreadable, [.. errors.OfType<string>()]);
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
        // One copy of each event, as the served sequence takes it: both paths may hold one.
        return rows.Rows.Gather(rows.OneCopyEach(lake.Signal.Merge, i => types[i] == eventType)).Project(WeftSchema(lake));
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
            int partNumber = 0;
            await foreach (var (part, bad) in TableInputs.ReadTableAsync(location, schema, cancellationToken).ConfigureAwait(false))
            {
                partNumber++;
                parts.Add(Keep(WithKeys(part, eventType, from, to, location.Path, partNumber, unreadable), eventType, from, to));
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

    /// <summary>
    /// The rows that have every key column. JSON lines and CSV refuse a row without one as unreadable (the
    /// columns are required); Parquet and Delta hand back a null, which the comparison read as a repeat
    /// (no event_id: neither matched nor missing, so completeness never saw it), as user 0 or as time 0.
    /// A row of <paramref name="eventType"/>, or of no type, without one is reported unreadable the same
    /// way when its time lies in [<paramref name="from"/>, <paramref name="to"/>), the rows compared; one
    /// whose time is missing counts whatever the range, as its time cannot place it outside.
    /// </summary>
    private static EventBatch WithKeys(EventBatch rows, string eventType, long? from, long? to, string path, int partNumber, List<string> unreadable)
    {
        var ids = ((StringColumn)rows[StandardColumns.EventId]).Values;
        var types = ((StringColumn)rows[StandardColumns.EventType]).Values;
        var users = (PrimitiveColumn<long>)rows[StandardColumns.UserId];
        var times = (PrimitiveColumn<long>)rows[StandardColumns.EventTime];
        List<int>? keep = null;
        for (int i = 0; i < rows.RowCount; i++)
        {
            string? missing = ids[i] is null ? StandardColumns.EventId
                : types[i] is null ? StandardColumns.EventType
                : users.IsNull(i) ? StandardColumns.UserId
                : times.IsNull(i) ? StandardColumns.EventTime
                : null;
            if (missing is null)
            {
                keep?.Add(i);
                continue;
            }

            keep ??= [.. Enumerable.Range(0, i)];
            bool inRange = times.IsNull(i) || ((from is null || times.Values[i] >= from) && (to is null || times.Values[i] < to));
            if ((types[i] is null || types[i] == eventType) && inRange)
            {
                string what = string.Join(", ", new[]
                {
                    ids[i] is { } id ? $"event_id '{id}'" : null,
                    users.IsNull(i) ? null : $"user_id {users.Values[i]}",
                    times.IsNull(i) ? null : $"event_time {Timestamps.Format(times.Values[i])}",
                }.OfType<string>());
                unreadable.Add($"{path} (part {partNumber}, row {i + 1}{(what.Length > 0 ? ": " + what : "")}): {missing} is null, and every legacy row needs one");
            }
        }

        return keep is null ? rows : rows.Gather([.. keep]);
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
