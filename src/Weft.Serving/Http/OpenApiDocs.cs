using System.Text.Json;

namespace Weft.Serving.Http;

// Shapes of the JSON the endpoints write by hand, for the OpenAPI document only (names are snake_case there).
#pragma warning disable CA1812 // only the OpenAPI generator looks at these types

/// <summary>A sequence: one array per projected column, newest element first.</summary>
internal sealed record SequenceDoc(string Signal, long UserId, Dictionary<string, JsonElement[]> Columns, int Length, ProvenanceDoc Provenance);

/// <summary>Where a sequence came from and how fresh and complete it is (docs/serving.md).</summary>
internal sealed record ProvenanceDoc(
    string Fingerprint, string? StreamWatermark, string? BatchSealedThrough, int FromStream, int FromBatch, bool Truncated,
    long? LagMs, string AsOf, string KnownAt, string Lookback, long HistoryVersion);

/// <summary>The body of a multi-get.</summary>
internal sealed record MultiGetRequestDoc(long[] UserIds, string[]? Columns, int? Limit, string? Lookback, string? AsOf, string? KnownAt);

/// <summary>Sequences of many users (no signal field inside each).</summary>
internal sealed record MultiGetDoc(string Signal, SequenceDoc[] Sequences);

/// <summary>A raw event: the standard columns and the event type's attributes.</summary>
internal sealed record EventDoc(string EventId, long UserId, string EventType, string EventTime, string? IngestTime, string? Tenant);

/// <summary>Offsets the events got in the embedded log; they are durable.</summary>
internal sealed record EventsAcceptedDoc(int Accepted, string Partition, long FirstOffset, long LastOffset);

/// <summary>An error; <c>parameter</c> names the request parameter at fault, <c>limit</c> the cap it exceeded (a serving option or a property of the signal).</summary>
internal sealed record ErrorDoc(string Error, string? Parameter, string? Limit);

/// <summary>The caller's signals.</summary>
internal sealed record SignalListDoc(string Tenant, SignalDoc[] Signals);

internal sealed record SignalDoc(string Name, int Version, string Fingerprint, int MaxLength, string Lookback, ColumnDoc[] Columns, string[] EventTypes);

internal sealed record ColumnDoc(string Name, string Type);

/// <summary>Status of the caller's signals, the stream and the cache.</summary>
internal sealed record StatusDoc(string Tenant, string ServerTime, SignalStatusDoc[] Signals, StreamStatusDoc Stream, CacheStatusDoc Cache);

internal sealed record SignalStatusDoc(
    string Name, int Version, string Fingerprint, int MaxLength, string Lookback, string FreshnessObjective, long HistoryVersion, int HistoryRows,
    string HistoryFrom, string? BatchSealedThrough, string? StreamWatermark, long? StreamEvents, double? FreshnessP99Seconds);

internal sealed record StreamStatusDoc(bool Running, string? Source, long? EndOffset, long? Position, long? CommittedOffset, long? LagRecords, long? LagMs, string? Error);

internal sealed record CacheStatusDoc(int? Users, int? Capacity, long? Hits, long? Misses);
#pragma warning restore CA1812
