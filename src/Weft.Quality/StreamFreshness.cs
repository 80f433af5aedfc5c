using Weft.Definitions;
using Weft.Engine;

namespace Weft.Quality;

/// <summary>
/// How soon after an event happened the stream had it, for one event type: <c>ingest_time − event_time</c>
/// of the stream's rows (the stream stamps ingest_time when it reads an event, and the event is servable
/// online within that micro-batch). Unlike the live <c>weft_freshness_seconds</c> (arrival at the source
/// → servable), it includes how long the producer took to send the event, which is what a model reading
/// the sequence experiences; and it can be audited after the fact, bucket by bucket.
/// </summary>
/// <param name="Events">Stream rows of the type in the range.</param>
/// <param name="P50Seconds">Median, within 1 % (a log-scale histogram keeps memory bounded).</param>
/// <param name="MaxSeconds">Exact.</param>
/// <param name="AheadOfIngest">Rows whose event_time is after their ingest_time (a producer's clock ahead), counted as 0.</param>
/// <param name="WorstBucket">The bucket whose rows of the type had the highest p99 (an outage or a backlog shows here).</param>
/// <param name="WorstBucketP99Seconds">That bucket's p99, exact.</param>
public sealed record StreamFreshness(
    string EventType,
    long Events,
    double P50Seconds,
    double P99Seconds,
    double MaxSeconds,
    long AheadOfIngest,
    string? WorstBucket,
    double WorstBucketP99Seconds);

/// <summary>Accumulates <see cref="StreamFreshness"/> per event type, one bucket's stream rows at a time.</summary>
internal sealed class StreamFreshnessMeter
{
    private readonly SortedDictionary<string, TypeState> _types = new(StringComparer.Ordinal);

    /// <summary>One bucket's latencies by event type, reused from bucket to bucket.</summary>
    private readonly Dictionary<string, List<long>> _bucket = new(StringComparer.Ordinal);

    private sealed class TypeState
    {
        public LatencyHistogram Histogram { get; } = new();

        public long Ahead;
        public string? WorstBucket;
        public long WorstP99 = -1;
    }

    /// <summary>Adds one bucket's stream rows (event_type, event_time and ingest_time columns).</summary>
    public void Add(string bucket, EventBatch rows)
    {
        if (rows.RowCount == 0)
        {
            return;
        }

        var types = ((StringColumn)rows[StandardColumns.EventType]).Values;
        var events = (PrimitiveColumn<long>)rows[StandardColumns.EventTime];
        var ingests = (PrimitiveColumn<long>)rows[StandardColumns.IngestTime];
        foreach (var list in _bucket.Values)
        {
            list.Clear();
        }

        string? lastType = null;
        List<long>? last = null;
        for (int i = 0; i < rows.RowCount; i++)
        {
            if (events.IsNull(i) || ingests.IsNull(i))
            {
                continue;
            }

            string type = types[i] ?? "";
            if (!ReferenceEquals(type, lastType) && !_bucket.TryGetValue(type, out last))
            {
                _bucket[type] = last = [];
            }

            lastType = type;
            last!.Add(ingests.Values[i] - events.Values[i]);
        }

        foreach (var (type, latencies) in _bucket)
        {
            if (latencies.Count == 0)
            {
                continue;
            }

            if (!_types.TryGetValue(type, out var state))
            {
                _types[type] = state = new TypeState();
            }

            latencies.Sort();
            int ahead = 0;
            while (ahead < latencies.Count && latencies[ahead] < 0)
            {
                latencies[ahead++] = 0;
            }

            state.Ahead += ahead;
            state.Histogram.AddSorted(latencies);
            long p99 = latencies[(int)NearestRank(latencies.Count, 0.99)];
            if (p99 > state.WorstP99)
            {
                (state.WorstP99, state.WorstBucket) = (p99, bucket);
            }
        }
    }

    public IReadOnlyList<StreamFreshness> Result() =>
        [.. _types.Select(t => new StreamFreshness(
            t.Key,
            t.Value.Histogram.Count,
            Seconds(t.Value.Histogram.Quantile(0.5)),
            Seconds(t.Value.Histogram.Quantile(0.99)),
            Seconds(t.Value.Histogram.Max),
            t.Value.Ahead,
            t.Value.WorstBucket,
            Seconds(Math.Max(0, t.Value.WorstP99))))];

    /// <summary>The index of the nearest-rank q-quantile of n sorted values.</summary>
    internal static long NearestRank(long n, double q) => Math.Clamp((long)Math.Ceiling(q * n) - 1, 0, n - 1);

    private static double Seconds(long micros) => micros / 1e6;
}

/// <summary>
/// Latencies in µs in log-scale buckets 2 % wide from 1 ms (below it, one bucket) to about 3 years: a
/// quantile is the geometric middle of its bucket, within 1 % of the exact nearest-rank value, in fixed memory.
/// </summary>
internal sealed class LatencyHistogram
{
    private const double Floor = 1_000; // µs
    private static readonly double LogWidth = Math.Log(1.02);
    private readonly long[] _counts = new long[1 + (int)Math.Ceiling(Math.Log(1e14 / Floor) / LogWidth)];

    public long Count { get; private set; }

    /// <summary>The smallest latency added (exact).</summary>
    public long Min { get; private set; } = long.MaxValue;

    /// <summary>The largest latency added (exact).</summary>
    public long Max { get; private set; } = long.MinValue;

    /// <summary>Adds ascending latencies, taking a logarithm only where they cross into another bucket.</summary>
    public void AddSorted(List<long> ascending)
    {
        if (ascending.Count > 0)
        {
            Min = Math.Min(Min, ascending[0]);
            Max = Math.Max(Max, ascending[^1]);
        }

        int i = 0;
        while (i < ascending.Count)
        {
            int bucket = BucketOf(ascending[i]);
            double end = bucket == _counts.Length - 1 ? double.PositiveInfinity : Floor * Math.Exp(bucket * LogWidth); // the next bucket's start
            int start = i++; // the first is in the bucket whatever the rounding of its end
            while (i < ascending.Count && ascending[i] < end)
            {
                i++;
            }

            _counts[bucket] += i - start;
            Count += i - start;
        }
    }

    /// <summary>Adds <paramref name="count"/> latencies of <paramref name="micros"/> at once: a run's worth, past int.MaxValue, in tests.</summary>
    internal void AddRepeated(long micros, long count)
    {
        Min = Math.Min(Min, micros);
        Max = Math.Max(Max, micros);
        _counts[BucketOf(micros)] += count;
        Count += count;
    }

    private int BucketOf(long micros) => micros < Floor ? 0 : Math.Min(_counts.Length - 1, 1 + (int)(Math.Log(micros / Floor) / LogWidth));

    /// <summary>
    /// The nearest-rank q-quantile: the least or the greatest latency exactly when the rank is the first
    /// or the last, else the geometric middle of its bucket (0 for the bucket below 1 ms, whose values
    /// are under 1 ms) held within the least and greatest. A bucket's middle lies up to 1 % off the
    /// values in it: one event read 5 s late had a p99 of 5.04 s, above its own maximum and over a 5 s
    /// objective it met; and over at most 100 events the p99 is the largest, which is known.
    /// </summary>
    public long Quantile(double q)
    {
        if (Count == 0)
        {
            return 0;
        }

        long rank = StreamFreshnessMeter.NearestRank(Count, q) + 1; // 64-bit: a long run's count passes int.MaxValue
        if (rank >= Count)
        {
            return Max;
        }

        if (rank == 1)
        {
            return Min;
        }

        long seen = 0;
        for (int b = 0; b < _counts.Length; b++)
        {
            seen += _counts[b];
            if (seen >= rank)
            {
                return Math.Clamp(b == 0 ? 0 : (long)(Floor * Math.Exp((b - 0.5) * LogWidth)), Min, Max);
            }
        }

        return Max;
    }
}
