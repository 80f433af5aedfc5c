using Weft.Definitions;
using Weft.Engine;

namespace Weft.Storage;

/// <summary>
/// Decides which partition each row of a batch goes to. <see cref="EventTable"/> writes one data file
/// per partition. Built-in partitioners: <see cref="Single"/> (every row to one partition) and
/// <see cref="ByTimeBucket"/> (Weft's <c>bucket</c>/<c>path</c> layout). Implementations must be
/// safe to call from several writers at once (the built-in ones hold no mutable state).
/// </summary>
public abstract class EventPartitioner
{
    /// <summary>
    /// Assigns every row of <paramref name="batch"/> to a partition: sets
    /// <paramref name="partitionOfRow"/>[i] to an index into the returned list of partition values.
    /// Each entry must name exactly the table's partition columns (null = the null partition).
    /// Throws <see cref="ArgumentException"/> naming the row when a row cannot be placed.
    /// </summary>
    public abstract IReadOnlyList<IReadOnlyDictionary<string, string?>> Assign(EventBatch batch, Span<int> partitionOfRow);

    /// <summary>Every row goes to the partition <paramref name="partitionValues"/> (copied).</summary>
    public static EventPartitioner Single(IReadOnlyDictionary<string, string?> partitionValues)
    {
        ArgumentNullException.ThrowIfNull(partitionValues);
        return new SinglePartitioner(new Dictionary<string, string?>(partitionValues, StringComparer.Ordinal));
    }

    /// <summary>
    /// Weft's layout: <c>bucket</c> = the <paramref name="bucket"/> (hour or day) holding the row's
    /// <paramref name="timeColumn"/> (a non-null timestamp column), <c>path</c> = <paramref name="path"/>
    /// (<c>stream</c> or <c>batch</c>).
    /// </summary>
    public static EventPartitioner ByTimeBucket(TimeBucket bucket, string path, string timeColumn = StandardColumns.EventTime)
    {
        _ = TimeBuckets.LengthMicros(bucket);
        EventLayout.CheckPath(path);
        ArgumentException.ThrowIfNullOrEmpty(timeColumn);
        return new TimeBucketPartitioner(bucket, path, timeColumn);
    }

    /// <summary>Only a <c>bucket</c> partition column (raw archives, which have no stream/batch path).</summary>
    public static EventPartitioner ByTimeBucketOnly(TimeBucket bucket, string timeColumn = StandardColumns.EventTime)
    {
        _ = TimeBuckets.LengthMicros(bucket);
        ArgumentException.ThrowIfNullOrEmpty(timeColumn);
        return new TimeBucketPartitioner(bucket, null, timeColumn);
    }

    private sealed class SinglePartitioner(IReadOnlyDictionary<string, string?> values) : EventPartitioner
    {
        private readonly IReadOnlyDictionary<string, string?>[] _partitions = [values];

        public override IReadOnlyList<IReadOnlyDictionary<string, string?>> Assign(EventBatch batch, Span<int> partitionOfRow)
        {
            partitionOfRow.Clear();
            return _partitions;
        }
    }

    private sealed class TimeBucketPartitioner(TimeBucket bucket, string? path, string timeColumn) : EventPartitioner
    {
        public override IReadOnlyList<IReadOnlyDictionary<string, string?>> Assign(EventBatch batch, Span<int> partitionOfRow)
        {
            ArgumentNullException.ThrowIfNull(batch);
            if (!batch.TryGetColumn(timeColumn, out var column))
            {
                throw new ArgumentException($"Cannot assign time buckets: the batch has no column '{timeColumn}'.", nameof(batch));
            }

            if (column is not PrimitiveColumn<long> times || column.Type != WeftType.Timestamp)
            {
                throw new ArgumentException($"Cannot assign time buckets: column '{timeColumn}' is {column.Type}, not timestamp.", nameof(batch));
            }

            var values = times.Values;
            var nulls = times.Nulls;
            var length = TimeBuckets.LengthMicros(bucket);
            var index = new Dictionary<long, int>();
            var starts = new List<long>();
            var lastStart = long.MinValue;
            var lastIndex = -1;
            for (var row = 0; row < values.Length; row++)
            {
                if (nulls is not null && nulls[row])
                {
                    ThrowNullTime(row);
                }

                var micros = values[row];
                if (micros < TimeBuckets.MinMicros || micros > TimeBuckets.MaxMicros)
                {
                    ThrowOutOfRange(row, micros);
                }

                var remainder = micros % length;
                var start = remainder < 0 ? micros - remainder - length : micros - remainder;
                if (start != lastStart)
                {
                    // Events mostly arrive in time order: the dictionary is only consulted when the bucket changes.
                    if (!index.TryGetValue(start, out lastIndex))
                    {
                        lastIndex = starts.Count;
                        index.Add(start, lastIndex);
                        starts.Add(start);
                    }

                    lastStart = start;
                }

                partitionOfRow[row] = lastIndex;
            }

            var partitions = new IReadOnlyDictionary<string, string?>[starts.Count];
            for (var i = 0; i < partitions.Length; i++)
            {
                string formatted = TimeBuckets.Format(starts[i], bucket);
                partitions[i] = path is null
                    ? new Dictionary<string, string?>(1, StringComparer.Ordinal) { [EventLayout.BucketColumn] = formatted }
                    : EventLayout.Partition(formatted, path);
            }

            return partitions;
        }

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        private void ThrowNullTime(int row) =>
            throw new ArgumentException($"Cannot assign a time bucket to row {row}: its '{timeColumn}' is null.", "batch");

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        private void ThrowOutOfRange(int row, long micros) =>
            throw new ArgumentException($"Cannot assign a time bucket to row {row}: its '{timeColumn}' ({micros} µs) lies outside the years 1–9999.", "batch");
    }
}
