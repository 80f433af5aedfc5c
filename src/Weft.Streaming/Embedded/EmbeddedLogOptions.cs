namespace Weft.Streaming.Embedded;

/// <summary>
/// Settings of an <see cref="EmbeddedLog"/>. Immutable; every property has a documented default,
/// and <see cref="EmbeddedLog.OpenAsync"/> rejects an invalid value naming the option.
/// </summary>
public sealed record EmbeddedLogOptions
{
    /// <summary>The default options.</summary>
    public static EmbeddedLogOptions Default { get; } = new();

    /// <summary>
    /// A segment is rolled (a new file started) before a record would take it past this size.
    /// A single record larger than this gets a segment of its own. Default 64 MiB; at least 4 KiB.
    /// </summary>
    public long SegmentBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>The largest key plus payload one record may have. Default 1 MiB; at most 64 MiB.</summary>
    public int MaxRecordBytes { get; init; } = 1024 * 1024;

    /// <summary>
    /// Group commit: the writer takes waiting appends until it holds this many bytes, writes them and
    /// fsyncs once for all of them. Default 4 MiB; at least 64 KiB.
    /// </summary>
    public int MaxBatchBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>
    /// How many <see cref="EmbeddedLog.AppendAsync"/> calls may wait for the writer before further
    /// callers wait to enqueue (backpressure). Default 1024; at least 1.
    /// </summary>
    public int MaxPendingAppends { get; init; } = 1024;

    /// <summary>
    /// Retention deletes a segment only when every record in it is older than this (by its append
    /// timestamp) and below every consumer group's committed offset. Default 7 days;
    /// <see cref="Timeout.InfiniteTimeSpan"/> keeps everything.
    /// </summary>
    public TimeSpan RetentionPeriod { get; init; } = TimeSpan.FromDays(7);

    /// <summary>
    /// How often retention runs by itself. Default 5 minutes; <see cref="Timeout.InfiniteTimeSpan"/>
    /// runs it only through <see cref="EmbeddedLog.EnforceRetentionAsync"/>.
    /// </summary>
    public TimeSpan RetentionCheckInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The read buffer each consumer rents (it grows for a larger record). Default 256 KiB; at least 4 KiB.</summary>
    public int ReadBufferBytes { get; init; } = 256 * 1024;

    /// <summary>The clock for record timestamps, retention and read waits. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option and its value.</summary>
    public void Validate()
    {
        Check(SegmentBytes >= 4096, nameof(SegmentBytes), SegmentBytes, "at least 4096");
        Check(MaxRecordBytes is > 0 and <= 64 * 1024 * 1024, nameof(MaxRecordBytes), MaxRecordBytes, "between 1 and 67108864");
        Check(MaxBatchBytes >= 64 * 1024, nameof(MaxBatchBytes), MaxBatchBytes, "at least 65536");
        Check(MaxPendingAppends >= 1, nameof(MaxPendingAppends), MaxPendingAppends, "at least 1");
        Check(RetentionPeriod > TimeSpan.Zero || RetentionPeriod == Timeout.InfiniteTimeSpan, nameof(RetentionPeriod), RetentionPeriod, "positive or Timeout.InfiniteTimeSpan");
        Check(RetentionCheckInterval > TimeSpan.Zero || RetentionCheckInterval == Timeout.InfiniteTimeSpan, nameof(RetentionCheckInterval), RetentionCheckInterval, "positive or Timeout.InfiniteTimeSpan");
        Check(ReadBufferBytes >= 4096, nameof(ReadBufferBytes), ReadBufferBytes, "at least 4096");
        if (TimeProvider is null)
        {
            throw new ArgumentNullException(nameof(TimeProvider), $"{nameof(EmbeddedLogOptions)}.{nameof(TimeProvider)} must be set.");
        }
    }

    private static void Check<T>(bool valid, string name, T value, string expectation)
    {
        if (!valid)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{nameof(EmbeddedLogOptions)}.{name} must be {expectation}; it is {value}.");
        }
    }
}
