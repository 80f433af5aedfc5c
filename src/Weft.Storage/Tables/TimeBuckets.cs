using System.Globalization;
using Weft.Definitions;

namespace Weft.Storage;

/// <summary>
/// Weft's partition layout for event tables (DESIGN.md, "Tables"): <c>enriched/&lt;signal&gt;</c> is
/// partitioned by <see cref="BucketColumn"/> (a time bucket, see <see cref="TimeBuckets"/>) and
/// <see cref="PathColumn"/> (<see cref="StreamPath"/> or <see cref="BatchPath"/>).
/// </summary>
public static class EventLayout
{
    /// <summary>The time-bucket partition column.</summary>
    public const string BucketColumn = "bucket";

    /// <summary>The partition column naming the path that wrote the rows.</summary>
    public const string PathColumn = "path";

    /// <summary><see cref="PathColumn"/> value of rows the streaming path wrote.</summary>
    public const string StreamPath = "stream";

    /// <summary><see cref="PathColumn"/> value of rows the batch path wrote.</summary>
    public const string BatchPath = "batch";

    /// <summary>The partition columns, in order: <c>bucket</c>, <c>path</c>.</summary>
    public static IReadOnlyList<string> PartitionColumns { get; } = [BucketColumn, PathColumn];

    /// <summary>The partition values <c>{bucket, path}</c>; throws when <paramref name="path"/> is neither stream nor batch.</summary>
    public static IReadOnlyDictionary<string, string?> Partition(string bucket, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(bucket);
        CheckPath(path);
        return new Dictionary<string, string?>(2, StringComparer.Ordinal) { [BucketColumn] = bucket, [PathColumn] = path };
    }

    internal static void CheckPath(string path)
    {
        if (path is not (StreamPath or BatchPath))
        {
            throw new ArgumentOutOfRangeException(nameof(path), path, $"The '{PathColumn}' partition value must be '{StreamPath}' or '{BatchPath}'.");
        }
    }
}

/// <summary>
/// Time buckets as partition values: hourly buckets are <c>yyyy-MM-ddTHH</c> (<c>2026-11-23T10</c>),
/// daily buckets <c>yyyy-MM-dd</c> (<c>2026-11-23</c>), both UTC. Formatted buckets sort (ordinally)
/// in time order, so a time range becomes a <see cref="PartitionFilter.Between"/> condition.
/// Timestamps are microseconds since the Unix epoch (<see cref="Timestamps"/>), within the years 1–9999.
/// </summary>
public static class TimeBuckets
{
    private const long MicrosPerHour = 3_600_000_000L;
    private const long MicrosPerDay = 24 * MicrosPerHour;
    private const string HourFormat = "yyyy'-'MM'-'dd'T'HH";
    private const string DayFormat = "yyyy'-'MM'-'dd";

    /// <summary>The earliest timestamp a bucket can hold (0001-01-01T00:00:00Z), in µs since the epoch.</summary>
    public static readonly long MinMicros = Timestamps.MinMicros;

    /// <summary>The latest timestamp a bucket can hold (9999-12-31T23:59:59.999999Z), in µs since the epoch.</summary>
    public static readonly long MaxMicros = Timestamps.MaxMicros;

    /// <summary>The length of a bucket in µs.</summary>
    public static long LengthMicros(TimeBucket bucket) => bucket switch
    {
        TimeBucket.Hour => MicrosPerHour,
        TimeBucket.Day => MicrosPerDay,
        _ => throw new ArgumentOutOfRangeException(nameof(bucket), bucket, "Unknown time bucket."),
    };

    /// <summary>The start (µs) of the bucket holding <paramref name="micros"/> (floor, also before 1970).</summary>
    public static long StartOf(long micros, TimeBucket bucket)
    {
        var length = LengthMicros(bucket);
        var remainder = micros % length;
        return remainder < 0 ? micros - remainder - length : micros - remainder;
    }

    /// <summary>The partition value of the bucket holding <paramref name="micros"/>, e.g. <c>2026-11-23T10</c>.</summary>
    public static string Format(long micros, TimeBucket bucket)
    {
        if (micros < MinMicros || micros > MaxMicros)
        {
            throw new ArgumentOutOfRangeException(nameof(micros), micros, $"Timestamp {micros} µs lies outside the years 1–9999 that time buckets cover.");
        }

        var start = new DateTime(DateTime.UnixEpoch.Ticks + (StartOf(micros, bucket) * TimeSpan.TicksPerMicrosecond), DateTimeKind.Utc);
        return start.ToString(bucket == TimeBucket.Hour ? HourFormat : DayFormat, CultureInfo.InvariantCulture);
    }

    /// <summary>The partition value of the bucket holding <paramref name="instant"/>.</summary>
    public static string Format(DateTimeOffset instant, TimeBucket bucket) => Format(Timestamps.ToMicros(instant), bucket);

    /// <summary>
    /// Parses a bucket partition value; the shape tells hourly (<c>2026-11-23T10</c>) from daily
    /// (<c>2026-11-23</c>). False when the text is neither.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> text, out TimeBucket bucket, out long startMicros)
    {
        const DateTimeStyles Utc = DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal;
        if (text.Length == 13 && DateTime.TryParseExact(text, HourFormat, CultureInfo.InvariantCulture, Utc, out var hour))
        {
            bucket = TimeBucket.Hour;
            startMicros = (hour.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;
            return true;
        }

        if (text.Length == 10 && DateTime.TryParseExact(text, DayFormat, CultureInfo.InvariantCulture, Utc, out var day))
        {
            bucket = TimeBucket.Day;
            startMicros = (day.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;
            return true;
        }

        bucket = default;
        startMicros = 0;
        return false;
    }

    /// <summary>The bucket's kind and its time range [start, end) in µs; throws <see cref="FormatException"/> for text that is not a bucket.</summary>
    public static (TimeBucket Bucket, long StartMicros, long EndMicros) Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TryParse(text, out var bucket, out var start))
        {
            throw new FormatException($"'{text}' is not a time bucket (expected yyyy-MM-ddTHH for hours or yyyy-MM-dd for days, UTC).");
        }

        return (bucket, start, start + LengthMicros(bucket));
    }

    /// <summary>
    /// The buckets overlapping [<paramref name="fromMicros"/>, <paramref name="toMicros"/>] (inclusive),
    /// in time order; empty when from &gt; to.
    /// </summary>
    public static IReadOnlyList<string> Covering(long fromMicros, long toMicros, TimeBucket bucket)
    {
        var result = new List<string>();
        if (fromMicros > toMicros)
        {
            return result;
        }

        var length = LengthMicros(bucket);
        var last = StartOf(toMicros, bucket);
        for (var start = StartOf(fromMicros, bucket); start <= last; start += length)
        {
            result.Add(Format(start, bucket));
        }

        return result;
    }

    /// <summary>
    /// The partition filter selecting the buckets that overlap [<paramref name="fromMicros"/>,
    /// <paramref name="toMicros"/>] (inclusive), added to <paramref name="within"/> (default: all partitions).
    /// </summary>
    public static PartitionFilter Filter(
        long fromMicros, long toMicros, TimeBucket bucket, PartitionFilter? within = null, string column = EventLayout.BucketColumn)
    {
        ArgumentException.ThrowIfNullOrEmpty(column);
        return (within ?? PartitionFilter.All).Between(column, Format(fromMicros, bucket), Format(toMicros, bucket));
    }
}
