using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Weft.Serving.Http;

// Shapes of the JSON the endpoints write by hand, for the OpenAPI document only (names are snake_case there).
// Primary constructor parameters are the properties always present (null only where typed T?); init
// properties are the ones a response or a request may leave out. The generator would read an omitted
// property's T? as "may be null": ApiDocument.OptionalIsAbsentNotNull says otherwise.
#pragma warning disable CA1812 // only the OpenAPI generator looks at these types

/// <summary>A sequence: one array per projected column, newest element first.</summary>
internal sealed record SequenceDoc(string Signal, long UserId, Dictionary<string, JsonElement[]> Columns, int Length, ProvenanceDoc Provenance)
{
    [Description("Only when the request names a consumer: which side each event type came from, and the version of the routes that chose it.")]
    public AssemblyDoc? Assembly { get; init; }
}

/// <summary>A hybrid sequence's assembly (docs/migration.md).</summary>
internal sealed record AssemblyDoc(
    [property: Description("The consumer the routes were followed for.")] string Consumer,
    [property: Description("The migration ledger's audit line of the signal's latest route change (0 before any): the same routes give the same version on every server.")] long Version,
    [property: Description("Event type → \"weft\" or \"legacy\".")] Dictionary<string, string> Sources);

/// <summary>One user's sequence inside a multi-get: a <see cref="SequenceDoc"/> without <c>signal</c>, which the response states once.</summary>
internal sealed record SequenceItemDoc(long UserId, Dictionary<string, JsonElement[]> Columns, int Length, ProvenanceDoc Provenance)
{
    [Description("Only when the request names a consumer: which side each event type came from for this user, and the version of the routes that chose it.")]
    public AssemblyDoc? Assembly { get; init; }
}

/// <summary>Where a sequence came from and how fresh and complete it is (docs/serving.md).</summary>
internal sealed record ProvenanceDoc(
    string Fingerprint, string? StreamWatermark, string? BatchSealedThrough, int FromStream, int FromBatch, bool Truncated,
    long? LagMs, string AsOf, string KnownAt, string Lookback, long HistoryVersion)
{
    [Description("Elements from the legacy pipeline's endpoint; only in a sequence assembled for a consumer.")]
    public int? FromLegacy { get; init; }
}

/// <summary>The body of a multi-get; the endpoint refuses other properties, and null for any of them.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record MultiGetRequestDoc(long[] UserIds)
{
    [Description("Sequence columns to return (event_id and event_time always come); all when left out.")]
    public string[]? Columns { get; init; }

    [Range(1, int.MaxValue)]
    [Description("At most this many elements, newest first: ≤ the signal's max_length and serving.max_limit.")]
    public int? Limit { get; init; }

    [Description("A duration such as 7d, 6h or 30m, ≤ the signal's lookback; the signal's when left out.")]
    public string? Lookback { get; init; }

    [Description("ISO-8601; now when left out.")]
    public string? AsOf { get; init; }

    [Description("ISO-8601; as_of when left out.")]
    public string? KnownAt { get; init; }

    [Description("During a migration off a legacy pipeline: the model or service reading; each user's sequence is then assembled from Weft and the legacy endpoint by the consumer's routes.")]
    public string? Consumer { get; init; }
}

/// <summary>Sequences of many users of one signal.</summary>
internal sealed record MultiGetDoc(string Signal, SequenceItemDoc[] Sequences);

/// <summary>A raw event: the standard columns and the event type's attributes.</summary>
internal sealed record EventDoc(string EventId, long UserId, string EventType, string EventTime)
{
    [Description("ISO-8601; set when the stream reads the event, when left out.")]
    public string? IngestTime { get; init; }

    [Description("The API key's tenant, if given at all.")]
    public string? Tenant { get; init; }
}

/// <summary>Offsets the events got in the embedded log; they are durable.</summary>
internal sealed record EventsAcceptedDoc(int Accepted, string Partition, long FirstOffset, long LastOffset);

/// <summary>An error (ServingEndpoints.WriteErrorAsync).</summary>
internal sealed record ErrorDoc(string Error)
{
    [Description("The request parameter at fault, when one is.")]
    public string? Parameter { get; init; }

    [Description("The cap the request exceeded, when it did: a serving option or a property of the signal.")]
    public string? Limit { get; init; }
}

/// <summary>Which side serves each event type of a signal to a consumer for a user, during a migration off a legacy pipeline.</summary>
internal sealed record RoutesDoc(string Signal, long UserId, string Consumer, RouteDoc[] Routes);

internal sealed record RouteDoc(string EventType, string Source, string Stage, int Bucket)
{
    [Description("The percent of users the consumer's route (its own, else the default one) sends to Weft; absent when there is none.")]
    public double? Percent { get; init; }
}

/// <summary>The caller's signals.</summary>
internal sealed record SignalListDoc(string Tenant, SignalDoc[] Signals);

internal sealed record SignalDoc(string Name, int Version, string Fingerprint, int MaxLength, string Lookback, ColumnDoc[] Columns, string[] EventTypes);

internal sealed record ColumnDoc(string Name, string Type);

/// <summary>Status of the caller's signals, the stream and the cache (ServingEndpoints.StatusAsync).</summary>
internal sealed record StatusDoc(string Tenant, string ServerTime, SignalStatusDoc[] Signals, StreamStatusDoc Stream, CacheStatusDoc Cache);

internal sealed record SignalStatusDoc(
    string Name, int Version, string Fingerprint, int MaxLength, string Lookback, string FreshnessObjective, long HistoryVersion, int HistoryRows,
    string HistoryFrom, string? BatchSealedThrough, string? StreamWatermark)
{
    [Description("Events the in-process stream has read for the signal; only while this process runs the stream.")]
    public long? StreamEvents { get; init; }

    [Description("The slowest event type's p99 freshness; only once the in-process stream has measured one.")]
    public double? FreshnessP99Seconds { get; init; }

    [Description("The signal's migration off a legacy pipeline (docs/migration.md), as this server routes it now; only for a signal with an event type past not-started or a legacy endpoint configured.")]
    public MigrationStatusDoc? Migration { get; init; }
}

/// <summary>A signal's migration: the assembly version, the legacy endpoint's breaker and each event type's stage, routes and evidence.</summary>
internal sealed record MigrationStatusDoc(
    [property: Description("The audit line of the signal's latest route change (cutover, rollback, deprecate); 0 before any.")] long AssemblyVersion,
    [property: Description("legacy.<signal>.endpoint and its circuit breaker; null when none is configured.")] LegacyEndpointStatusDoc? LegacyEndpoint,
    [property: Description("Every event type of the signal, not-started ones too.")] MigrationEventTypeDoc[] EventTypes);

internal sealed record LegacyEndpointStatusDoc(
    string Url,
    string Timeout,
    [property: Description("Failures in a row; the breaker opens at 5.")] int FailuresInARow,
    [property: Description("While the breaker is open, when the endpoint is asked again; null while it is closed.")] string? NotAskedUntil,
    [property: Description("The last failure's message; it stays after a recovery.")] string? LastFailure);

internal sealed record MigrationEventTypeDoc(
    string EventType,
    [property: Description("not-started, shadow, compared, ab-tested, cutting-over, cut-over or legacy-deprecated.")] string Stage,
    string? Since,
    [property: Description("Per consumer (* for every consumer without its own), the percent of users who read the type from Weft; empty: legacy serves every consumer.")] MigrationRouteDoc[] Routes,
    MigrationEvidenceSetDoc Evidence);

internal sealed record MigrationRouteDoc(string Consumer, double Percent, string Since);

/// <summary>The latest evidence of each kind (null when none is stored), and each consumer's latest online outcome test.</summary>
internal sealed record MigrationEvidenceSetDoc(EvidenceDoc? Shadow, EvidenceDoc? Comparison, EvidenceDoc? Abtest, EvidenceDoc[] Outcomes);

internal sealed record EvidenceDoc(long Id, bool Passed, string At, string Summary)
{
    [Description("The consumer an online outcome test measured.")]
    public string? Consumer { get; init; }

    [Description("An online outcome test only: a sequential (always-valid) test that has neither passed nor failed yet; collect more users and test again.")]
    public bool? Undecided { get; init; }
}

/// <summary>The in-process stream; only <c>running</c> when this process runs none.</summary>
internal sealed record StreamStatusDoc(bool Running)
{
    public string? Source { get; init; }

    public long? EndOffset { get; init; }

    public long? Position { get; init; }

    public long? CommittedOffset { get; init; }

    public long? LagRecords { get; init; }

    public long? LagMs { get; init; }

    [Description("The stream's raw archive ($.source.archive); left out when the stream archives nothing (\"archive\": false).")]
    public StreamArchiveStatusDoc? Archive { get; init; }

    [Description("Why the stream stopped, when it has.")]
    public string? Error { get; init; }
}

/// <summary>The in-process stream's raw archive: what its flushes committed since the server started.</summary>
internal sealed record StreamArchiveStatusDoc(
    [property: Description("The archive's folder.")] string Folder,
    [property: Description("Records committed to the archive (fsync'd and renamed into place) since start.")] long Records,
    [property: Description("Bytes of the files committed since start.")] long Bytes,
    [property: Description("Files committed since start: one per flush that read records.")] long Files,
    [property: Description("The flush time of the last file committed; null before the first.")] string? LastCommitted);

/// <summary>The sequence cache; empty when serving.cache_users is 0; rendered_* only when serving.cache_json_bytes is not 0 either.</summary>
internal sealed record CacheStatusDoc
{
    public int? Users { get; init; }

    public int? Capacity { get; init; }

    public long? Hits { get; init; }

    public long? Misses { get; init; }

    public int? RenderedUsers { get; init; }

    public long? RenderedBytes { get; init; }
}
#pragma warning restore CA1812
