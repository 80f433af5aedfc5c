using System.Collections.Immutable;

namespace Weft.Definitions;

/// <summary>A typed column: a raw attribute, an enrichment feature or an element column.</summary>
public sealed record FieldDefinition(string Name, WeftType Type, bool Nullable = true);

/// <summary>The standard columns every event carries (DESIGN.md, "Event").</summary>
public static class StandardColumns
{
    public const string EventId = "event_id";
    public const string UserId = "user_id";
    public const string EventType = "event_type";
    public const string EventTime = "event_time";
    public const string IngestTime = "ingest_time";
    public const string Tenant = "tenant";

    public static readonly ImmutableArray<FieldDefinition> All =
    [
        new(EventId, WeftType.String, Nullable: false),
        new(UserId, WeftType.Int64, Nullable: false),
        new(EventType, WeftType.String, Nullable: false),
        new(EventTime, WeftType.Timestamp, Nullable: false),
        new(IngestTime, WeftType.Timestamp, Nullable: false),
    ];

    public static bool IsStandard(string name) =>
        name is EventId or UserId or EventType or EventTime or IngestTime or Tenant;

    /// <summary>
    /// A column of <see cref="All"/>, which every enriched row carries in place. <c>tenant</c> is standard
    /// but optional: an element or enrichment key that names it takes it as any other column.
    /// </summary>
    public static bool IsInAll(string name) =>
        name is EventId or UserId or EventType or EventTime or IngestTime;
}

/// <summary>One step of an event type's executor chain.</summary>
public abstract record StepDefinition;

/// <summary>Keep rows whose predicate is true (null counts as false).</summary>
public sealed record FilterStep(Expr Where) : StepDefinition;

/// <summary>Rename and/or cast columns: each output column comes from an input column.</summary>
public sealed record MapStep(ImmutableArray<MapColumn> Columns) : StepDefinition;

public sealed record MapColumn(string Name, string From, WeftType? Cast);

/// <summary>Add (or replace) a column computed from an expression; <see cref="Type"/> is inferred.</summary>
public sealed record DeriveStep(string Name, Expr Expr, WeftType Type) : StepDefinition;

/// <summary>A custom executor resolved by name from the registry; arguments are strings.</summary>
public sealed record CustomStep(string Executor, ImmutableSortedDictionary<string, string> Args, ImmutableArray<FieldDefinition> Produces) : StepDefinition;

/// <summary>An event type as a signal includes it: its raw schema and its executor chain.</summary>
public sealed record EventTypeDefinition(
    string Name,
    ImmutableArray<FieldDefinition> RawSchema,
    ImmutableSortedDictionary<string, string> ColumnMapping,
    ImmutableArray<StepDefinition> Steps);

/// <summary>A table keyed by an entity key with feature columns and a version time.</summary>
public sealed record EnrichmentSourceDefinition(
    string Name,
    FieldDefinition Key,
    ImmutableArray<FieldDefinition> Columns,
    string VersionColumn = "version_time");

/// <summary>Attach columns of a source to events whose <see cref="On"/> column matches the source key.</summary>
public sealed record EnrichmentDefinition(
    string Source,
    string On,
    ImmutableArray<string> Columns,
    ImmutableArray<string> EventTypes);

public enum TimeBucket
{
    Hour,
    Day,
}

public enum MergePolicyKind
{
    /// <summary>Sealed buckets come from batch, later buckets from the stream (the default).</summary>
    BatchSealsStreamFills,
    /// <summary>Per event, the copy with the latest version (ingest time) wins, whichever path wrote it.</summary>
    LastWriteWins,
}

/// <summary>
/// What the stream does with an event that arrives late: older than the stream's watermark (the
/// newest event time seen, less one bucket) or in a bucket the batch path has already sealed. Every
/// such event is recorded in the late-event ledger whatever the policy.
/// </summary>
public enum LatePolicy
{
    /// <summary>Add it online and to the stream partitions, like any event; the batch path fixes history later.</summary>
    Accept,
    /// <summary>Leave it to the batch path: not added online nor to the stream partitions.</summary>
    BatchOnly,
    /// <summary>Drop it: not online, not in the stream partitions (the batch path still sees the raw archive).</summary>
    Drop,
}

/// <summary>The names of <see cref="LatePolicy"/> values in signal JSON and in the late-event ledger.</summary>
public static class LatePolicyNames
{
    public static string Name(LatePolicy late) => late switch
    {
        LatePolicy.Accept => "accept",
        LatePolicy.BatchOnly => "batch_only",
        LatePolicy.Drop => "drop",
        _ => throw new ArgumentOutOfRangeException(nameof(late)),
    };

    public static bool TryParse(string? name, out LatePolicy late)
    {
        (bool known, late) = name switch
        {
            "accept" => (true, LatePolicy.Accept),
            "batch_only" => (true, LatePolicy.BatchOnly),
            "drop" => (true, LatePolicy.Drop),
            _ => (false, LatePolicy.Accept),
        };
        return known;
    }
}

/// <summary>Resource budgets, validated at compile time and enforced by the runtimes.</summary>
/// <param name="MaxElements">Ceiling on max_length for this signal's tenant.</param>
/// <param name="MaxBytesPerUser">Ceiling on the estimated bytes of one user's full sequence.</param>
/// <param name="HotUserMaxEventsPerHour">Events per user and hour beyond which further events are dead-lettered as bot-like.</param>
public sealed record Budgets(int MaxElements, long MaxBytesPerUser, int HotUserMaxEventsPerHour)
{
    public static readonly Budgets Default = new(16_384, 64L * 1024 * 1024, 3_600);
}

/// <summary>A sequence definition, frozen. Built by <see cref="SignalBuilder"/> or read from JSON.</summary>
public sealed record SignalDefinition(
    string Name,
    int Version,
    string Tenant,
    string Description,
    ImmutableArray<EventTypeDefinition> EventTypes,
    ImmutableArray<EnrichmentSourceDefinition> EnrichmentSources,
    ImmutableArray<EnrichmentDefinition> Enrichments,
    ImmutableArray<FieldDefinition> Element,
    int MaxLength,
    TimeSpan Lookback,
    TimeBucket Bucket,
    TimeSpan LateAllowance,
    MergePolicyKind Merge,
    TimeSpan FreshnessObjective,
    Budgets Budgets,
    LatePolicy Late = LatePolicy.Accept)
{
    /// <summary>Order is fixed by the design: event_time descending, ties by event_id ascending.</summary>
    public const string OrderBy = "event_time desc, event_id asc";

    /// <summary>Deduplication key (fixed by the design).</summary>
    public const string DedupBy = StandardColumns.EventId;

    public TimeSpan BucketLength => Bucket == TimeBucket.Hour ? TimeSpan.FromHours(1) : TimeSpan.FromDays(1);

    /// <summary>Columns of an element of the assembled sequence: identity and order columns, then the declared ones.</summary>
    public ImmutableArray<FieldDefinition> SequenceColumns =>
    [
        StandardColumns.All[0], StandardColumns.All[2], StandardColumns.All[3], .. Element,
    ];
}
