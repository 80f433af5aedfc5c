using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Weft.Engine.Observability;

/// <summary>
/// Weft's metrics in one registry: counters, gauges and latency histograms keyed by name and labels
/// (signal × event type × path, never mixed), rendered in the Prometheus text format by
/// <see cref="WritePrometheus"/>. Thread-safe; recording is lock-free except for the first use of a
/// series.
/// </summary>
public sealed class WeftMetrics
{
    private readonly ConcurrentDictionary<(string Name, string Labels), Series> _series = new();
    private readonly ConcurrentDictionary<string, (string Type, string Help)> _meta = new(StringComparer.Ordinal);

    /// <summary>Adds <paramref name="value"/> to a counter.</summary>
    public void Count(string name, string help, long value, params (string Key, string Value)[] labels) =>
        Get(name, "counter", help, labels).Add(value);

    /// <summary>Sets a gauge.</summary>
    public void Gauge(string name, string help, double value, params (string Key, string Value)[] labels) =>
        Get(name, "gauge", help, labels).Set(value);

    /// <summary>Records one observation (seconds) in a latency histogram.</summary>
    public void Observe(string name, string help, double seconds, params (string Key, string Value)[] labels) =>
        Get(name, "histogram", help, labels).Observe(seconds);

    /// <summary>
    /// Records many observations (seconds) in one histogram series: the series is looked up once and
    /// each bucket touched is updated once, so a micro-batch costs one call per label set, not one per event.
    /// </summary>
    public void ObserveMany(string name, string help, ReadOnlySpan<double> seconds, params (string Key, string Value)[] labels)
    {
        if (!seconds.IsEmpty)
        {
            Get(name, "histogram", help, labels).ObserveMany(seconds);
        }
    }

    /// <summary>The value of a counter or gauge (0 if never recorded).</summary>
    public double Value(string name, params (string Key, string Value)[] labels) =>
        _series.TryGetValue((name, Format(labels)), out var s) ? s.Current : 0;

    /// <summary>A quantile (0..1) of a histogram, estimated from its buckets (past the last bound, 60 s, up to the largest value observed); null if empty.</summary>
    public double? Quantile(string name, double q, params (string Key, string Value)[] labels) =>
        _series.TryGetValue((name, Format(labels)), out var s) ? s.Quantile(q) : null;

    /// <summary>Every series of <paramref name="name"/> with its labels text.</summary>
    public IEnumerable<string> LabelSets(string name) => _series.Keys.Where(k => k.Name == name).Select(k => k.Labels);

    public void WritePrometheus(StringBuilder output)
    {
        // ToArray copies under the dictionary's locks. Sorting the dictionary itself let LINQ take its
        // Count and then CopyTo into an array of that size, which throws when a series is added in
        // between: a stream making its first series made /metrics answer 500.
        var series = _series.ToArray();
        foreach (var group in series.OrderBy(s => s.Key.Name, StringComparer.Ordinal).ThenBy(s => s.Key.Labels, StringComparer.Ordinal).GroupBy(s => s.Key.Name))
        {
            var (type, help) = _meta[group.Key];
            output.Append("# HELP ").Append(group.Key).Append(' ').Append(help).Append('\n');
            output.Append("# TYPE ").Append(group.Key).Append(' ').Append(type).Append('\n');
            foreach (var (key, one) in group)
            {
                one.Write(output, key.Name, key.Labels);
            }
        }
    }

    private Series Get(string name, string type, string help, (string Key, string Value)[] labels)
    {
        _meta.TryAdd(name, (type, help));
        return _series.GetOrAdd((name, Format(labels)), _ => new Series(type == "histogram"));
    }

    private static string Format((string Key, string Value)[] labels)
    {
        if (labels.Length == 0)
        {
            return "";
        }

        var sb = new StringBuilder();
        foreach (var (key, value) in labels)
        {
            sb.Append(sb.Length == 0 ? "" : ",").Append(key).Append("=\"")
              .Append(value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('"');
        }

        return sb.ToString();
    }

    private sealed class Series(bool histogram)
    {
        // Upper bounds in seconds: 1 ms … 60 s, roughly ×2.5 apart; the last bucket is +Inf.
        private static readonly double[] Bounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
        private readonly long[]? _buckets = histogram ? new long[Bounds.Length + 1] : null;
        private long _count;
        private double _value;
        private double _max; // the largest observation: what a quantile past the last bound is read against

        public double Current => _buckets is null ? Volatile.Read(ref _value) : Interlocked.Read(ref _count);

        public void Add(long value)
        {
            double initial, updated;
            do
            {
                initial = Volatile.Read(ref _value);
                updated = initial + value;
            }
            while (Interlocked.CompareExchange(ref _value, updated, initial) != initial);
        }

        public void Set(double value) => Volatile.Write(ref _value, value);

        public void Observe(double seconds)
        {
            int b = Array.BinarySearch(Bounds, seconds);
            b = b >= 0 ? b : ~b;
            Interlocked.Increment(ref _buckets![b]);
            Interlocked.Increment(ref _count);
            RaiseMax(seconds);
            double initial, updated;
            do
            {
                initial = Volatile.Read(ref _value);
                updated = initial + seconds;
            }
            while (Interlocked.CompareExchange(ref _value, updated, initial) != initial);
        }

        public void ObserveMany(ReadOnlySpan<double> seconds)
        {
            Span<long> counts = stackalloc long[Bounds.Length + 1];
            double sum = 0, max = 0;
            foreach (double v in seconds)
            {
                int b = Array.BinarySearch(Bounds, v);
                counts[b >= 0 ? b : ~b]++;
                sum += v;
                max = Math.Max(max, v);
            }

            RaiseMax(max);

            for (int b = 0; b < counts.Length; b++)
            {
                if (counts[b] > 0)
                {
                    Interlocked.Add(ref _buckets![b], counts[b]);
                }
            }

            Interlocked.Add(ref _count, seconds.Length);
            double initial, updated;
            do
            {
                initial = Volatile.Read(ref _value);
                updated = initial + sum;
            }
            while (Interlocked.CompareExchange(ref _value, updated, initial) != initial);
        }

        private void RaiseMax(double value)
        {
            double initial;
            do
            {
                initial = Volatile.Read(ref _max);
                if (value <= initial)
                {
                    return;
                }
            }
            while (Interlocked.CompareExchange(ref _max, value, initial) != initial);
        }

        public double? Quantile(double q)
        {
            if (_buckets is null)
            {
                return null;
            }

            long total = Interlocked.Read(ref _count);
            if (total == 0)
            {
                return null;
            }

            long rank = (long)Math.Ceiling(q * total), seen = 0;
            for (int b = 0; b < _buckets.Length; b++)
            {
                long inBucket = Interlocked.Read(ref _buckets[b]);
                if (seen + inBucket >= rank)
                {
                    // Past the last bound (+Inf) the bucket runs up to the largest value observed: a
                    // made-up bound (twice the last) read a p99 of ten minutes as under two.
                    double lower = b == 0 ? 0 : Bounds[b - 1];
                    double upper = b < Bounds.Length ? Bounds[b] : Math.Max(Bounds[^1], Volatile.Read(ref _max));
                    return lower + ((upper - lower) * (rank - seen) / Math.Max(1, inBucket)); // linear inside the bucket
                }

                seen += inBucket;
            }

            return Bounds[^1];
        }

        public void Write(StringBuilder o, string name, string labels)
        {
            string Braces(string extra) => labels.Length == 0 && extra.Length == 0 ? "" : "{" + labels + (labels.Length > 0 && extra.Length > 0 ? "," : "") + extra + "}";
            if (_buckets is null)
            {
                o.Append(name).Append(Braces("")).Append(' ').Append(Current.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                return;
            }

            long cumulative = 0;
            for (int b = 0; b < _buckets.Length; b++)
            {
                cumulative += Interlocked.Read(ref _buckets[b]);
                string le = b < Bounds.Length ? Bounds[b].ToString("R", CultureInfo.InvariantCulture) : "+Inf";
                o.Append(name).Append("_bucket").Append(Braces($"le=\"{le}\"")).Append(' ').Append(cumulative).Append('\n');
            }

            o.Append(name).Append("_sum").Append(Braces("")).Append(' ').Append(Volatile.Read(ref _value).ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            // The +Inf bucket's count, not a second read: observations landing between the two reads made
            // _count disagree with +Inf, which the exposition format requires to be equal.
            o.Append(name).Append("_count").Append(Braces("")).Append(' ').Append(cumulative).Append('\n');
        }
    }
}
