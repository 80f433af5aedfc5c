using System.Collections.Immutable;
using Weft.Definitions;
using Weft.Engine;
using Weft.Storage;

namespace Weft.Streaming.Runtime;

/// <summary>One late event the stream saw: how late, why, and what the signal's policy did with it.</summary>
public sealed record LateEvent(string EventId, long UserId, string EventType, long EventTimeMicros, long IngestTimeMicros, long ObservedAtMicros, long LatenessMicros, string Reason, LatePolicy Action);

/// <summary>
/// <c>late_events/&lt;signal&gt;</c>: every event the stream received late — older than its watermark or
/// in a bucket the batch path had sealed — with its lateness and the action taken, so completeness can
/// be audited with any Parquet reader.
/// </summary>
public static class LateEventLedger
{
    /// <summary>When the stream saw the late event (its micro-batch's clock).</summary>
    public const string ObservedAtColumn = "observed_at";

    /// <summary>What the signal's late policy did with the event: <c>accept</c>, <c>batch_only</c> or <c>drop</c>.</summary>
    public const string ActionColumn = "action";

    public static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new(ObservedAtColumn, WeftType.Timestamp, Nullable: false),
        new(StandardColumns.EventId, WeftType.String, Nullable: false),
        new(StandardColumns.UserId, WeftType.Int64, Nullable: false),
        new(StandardColumns.EventType, WeftType.String, Nullable: false),
        new(StandardColumns.EventTime, WeftType.Timestamp, Nullable: false),
        new(StandardColumns.IngestTime, WeftType.Timestamp, Nullable: false),
        new("lateness_us", WeftType.Int64, Nullable: false),
        new("reason", WeftType.String, Nullable: false),
        new(ActionColumn, WeftType.String, Nullable: false),
    ];

    public static Task<EventTable> OpenAsync(string path, CancellationToken cancellationToken) =>
        EventTable.OpenOrCreateAsync(path, Schema, [EventLayout.BucketColumn], cancellationToken: cancellationToken);

    public static async Task AppendAsync(EventTable table, TimeBucket bucket, IReadOnlyList<LateEvent> events, IReadOnlyDictionary<string, string> commitParameters, CancellationToken cancellationToken)
    {
        if (events.Count == 0)
        {
            return;
        }

        var batch = new EventBatch(Schema,
        [
            new PrimitiveColumn<long>(WeftType.Timestamp, events.Select(e => e.ObservedAtMicros).ToArray()),
            new StringColumn(events.Select(e => (string?)e.EventId).ToArray()),
            new PrimitiveColumn<long>(WeftType.Int64, events.Select(e => e.UserId).ToArray()),
            new StringColumn(events.Select(e => (string?)e.EventType).ToArray()),
            new PrimitiveColumn<long>(WeftType.Timestamp, events.Select(e => e.EventTimeMicros).ToArray()),
            new PrimitiveColumn<long>(WeftType.Timestamp, events.Select(e => e.IngestTimeMicros).ToArray()),
            new PrimitiveColumn<long>(WeftType.Int64, events.Select(e => e.LatenessMicros).ToArray()),
            new StringColumn(events.Select(e => (string?)e.Reason).ToArray()),
            new StringColumn(events.Select(e => (string?)LatePolicyNames.Name(e.Action)).ToArray()),
        ]);
        await table.AppendAsync(batch, EventPartitioner.ByTimeBucketOnly(bucket), commitParameters, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The policy an <see cref="ActionColumn"/> value names; <see cref="FormatException"/> for any other text.</summary>
    public static LatePolicy ParseAction(string? action) =>
        LatePolicyNames.TryParse(action, out var late) ? late : throw new FormatException($"'{action}' is not a late-event action (accept, batch_only or drop).");
}
