using Microsoft.Extensions.Logging;

namespace Weft.Streaming;

/// <summary>
/// Weft.Streaming's log messages, source-generated, with stable event ids. Ranges: 1000–1099 the
/// Kafka source and producer. Event payloads (user data) are never logged.
/// </summary>
internal static partial class StreamingLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Kafka source {Source} opening with {Options}; librdkafka {Version} from {LibraryPath}")]
    public static partial void KafkaSourceOpening(ILogger logger, string source, string options, string version, string? libraryPath);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Kafka source {Source}: partitions assigned: {Partitions}")]
    public static partial void KafkaPartitionsAssigned(ILogger logger, string source, string partitions);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Kafka source {Source}: partitions revoked: {Partitions}; their buffered records will not be delivered")]
    public static partial void KafkaPartitionsRevoked(ILogger logger, string source, string partitions);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Kafka source {Source}: partitions lost (the group moved on without this consumer): {Partitions}")]
    public static partial void KafkaPartitionsLost(ILogger logger, string source, string partitions);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "Kafka {Client}: librdkafka reported {Code}: {Reason}")]
    public static partial void KafkaError(ILogger logger, string client, string code, string reason);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Error, Message = "Kafka source {Source} failed: fatal librdkafka error {Code}: {Reason}")]
    public static partial void KafkaFatalError(ILogger logger, string source, string code, string reason);

    [LoggerMessage(EventId = 1006, Message = "Kafka {Client}: librdkafka {Facility}: {Text}")]
    public static partial void KafkaLibraryLog(ILogger logger, LogLevel level, string client, string facility, string text);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "Kafka source {Source}: consume error {Code} on {Partition}: {Reason}")]
    public static partial void KafkaConsumeError(ILogger logger, string source, string code, string partition, string reason);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Debug, Message = "Kafka source {Source}: commit of {Partition} skipped: the partition is not assigned to this consumer (its records go to the new owner from the group's last commit)")]
    public static partial void KafkaCommitSkipped(ILogger logger, string source, string partition);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Warning, Message = "Kafka source {Source}: commit not accepted while the group rebalances ({Code}); the records are delivered again to the partitions' next owner")]
    public static partial void KafkaCommitRebalancing(ILogger logger, string source, string code);

    [LoggerMessage(EventId = 1020, Level = LogLevel.Warning, Message = "Kafka source {Source}: commit not made, the group's coordinator is not reachable now ({Code}: {Reason}); the next commit covers these offsets, and a restart before it delivers their records again")]
    public static partial void KafkaCommitCoordinatorUnavailable(ILogger logger, string source, string code, string reason);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Debug, Message = "Kafka source {Source}: channel full, {Count} partitions paused")]
    public static partial void KafkaPaused(ILogger logger, string source, int count);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Debug, Message = "Kafka source {Source}: room in the channel, {Count} partitions resumed")]
    public static partial void KafkaResumed(ILogger logger, string source, int count);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Debug, Message = "Kafka source {Source}: {Count} buffered records of revoked partitions dropped")]
    public static partial void KafkaStaleRecordsDropped(ILogger logger, string source, int count);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Information, Message = "Kafka source {Source} closed")]
    public static partial void KafkaSourceClosed(ILogger logger, string source);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Warning, Message = "Kafka source {Source}: closing the consumer failed")]
    public static partial void KafkaCloseFailed(ILogger logger, string source, Exception exception);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Error, Message = "Kafka source {Source}: the poll thread failed")]
    public static partial void KafkaPollThreadFailed(ILogger logger, string source, Exception exception);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Warning, Message = "Kafka source {Source}: the consumer did not close within {Seconds} s; disposed without it (the group's session timeout moves its partitions on)")]
    public static partial void KafkaCloseTimedOut(ILogger logger, string source, double seconds);

    [LoggerMessage(EventId = 1017, Level = LogLevel.Warning, Message = "Kafka source {Source}: the reader did not finish with the rebalance ({Action}) within {Seconds} s; the rebalance goes on without it")]
    public static partial void KafkaRebalanceHandlerTimedOut(ILogger logger, string source, string action, double seconds);

    [LoggerMessage(EventId = 1018, Level = LogLevel.Warning, Message = "Kafka source {Source}: the reader failed on the rebalance ({Action}); the rebalance goes on without it")]
    public static partial void KafkaRebalanceHandlerFailed(ILogger logger, string source, string action, Exception exception);

    [LoggerMessage(EventId = 1021, Level = LogLevel.Error, Message = "Kafka source {Source}: partition {Partition} refused: it ends at offset {End}, but the reader's tables hold it through offset {Held}; its offsets started over (the topic was created again, or is another cluster's)")]
    public static partial void KafkaOffsetsStartedOver(ILogger logger, string source, string partition, long end, long held);

    [LoggerMessage(EventId = 1022, Level = LogLevel.Warning, Message = "Kafka source {Source}: the end of partition {Partition} could not be learned; it is read without checking that its offsets did not start over")]
    public static partial void KafkaEndUnknown(ILogger logger, string source, string partition);

    [LoggerMessage(EventId = 1019, Level = LogLevel.Warning, Message = "embedded log: the last segment {Segment} ended in a torn record ({Reason}); cut at byte {At}, {Bytes} byte(s) removed and kept in {KeptIn}: the rest of a write a crash stopped before its fsync, which no client was told was stored")]
    public static partial void EmbeddedLogRecovered(ILogger logger, string segment, string reason, long at, long bytes, string keptIn);
}
