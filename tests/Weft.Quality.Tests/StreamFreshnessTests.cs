using System.Collections.Immutable;
using System.Globalization;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet.Tests;
using Xunit;

namespace Weft.Quality.Tests;

/// <summary>
/// Freshness percentiles against DuckDB's <c>quantile_disc</c> (nearest rank) over the same latencies,
/// at the small counts where a histogram's bucket middle is not the value a reader expects.
/// </summary>
public sealed class StreamFreshnessTests
{
    private const long Start = 1_700_000_000_000_000L;

    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new(StandardColumns.EventType, WeftType.String, Nullable: false),
        new(StandardColumns.EventTime, WeftType.Timestamp, Nullable: false),
        new(StandardColumns.IngestTime, WeftType.Timestamp, Nullable: false),
    ];

    /// <summary>
    /// A long run's latencies pass int.MaxValue: the rank is taken in 64 bits (the count was capped at
    /// int.MaxValue, so the p50 of 3 billion events was the rank of 2.1 billion's). Reference: the
    /// nearest rank ⌈q·n⌉ in exact decimal arithmetic.
    /// </summary>
    [Theory]
    [InlineData(3_000_000_000L, "0.5")]
    [InlineData(3_000_000_000L, "0.99")]
    [InlineData(9_000_000_000_000L, "0.99")]
    [InlineData(2_147_483_648L, "0.5")]
    [InlineData(7L, "0.99")]
    public void The_nearest_rank_of_a_count_beyond_int32_is_exact(long n, string q)
    {
        decimal exact = decimal.Parse(q, CultureInfo.InvariantCulture) * n;
        long expected = (long)decimal.Ceiling(exact) - 1;

        StreamFreshnessMeter.NearestRank(n, double.Parse(q, CultureInfo.InvariantCulture)).Should().Be(expected);
    }

    /// <summary>
    /// The histogram's percentiles past int.MaxValue events: 1.2 billion at 10 ms and 1.8 billion at 1 s
    /// have their median at 1 s (rank 1.5 billion); a count capped at int.MaxValue ranked it 1.07 billion, 10 ms.
    /// </summary>
    [Fact]
    public void A_histogram_of_more_than_int32_events_ranks_them_all()
    {
        var histogram = new LatencyHistogram();
        histogram.AddRepeated(10_000, 1_200_000_000);
        histogram.AddRepeated(1_000_000, 1_800_000_000);

        histogram.Count.Should().Be(3_000_000_000);
        histogram.Quantile(0.5).Should().BeInRange(990_000, 1_010_000);
        histogram.Quantile(0.3).Should().BeInRange(9_900, 10_100, "rank 900 million: among the 10 ms ones");
    }

    /// <summary>
    /// One event read 5 s after it happened had a p99 of 5.04 s: above its own maximum, and "(over)" a
    /// 5 s objective (failing <c>--max-freshness-p99 objective</c>) that every event met. Over at most
    /// 100 events the nearest-rank p99 is the largest, which the meter knows exactly.
    /// </summary>
    [Fact]
    public async Task Percentiles_at_small_counts_match_DuckDB_and_never_leave_the_measured_range()
    {
        var cases = new List<long[]>
        {
            new[] { 5_000_000L },                                  // one event, exactly at a 5 s objective
            Enumerable.Repeat(10_000_000L, 7).ToArray(),          // equal latencies
            new[] { 1_000L, 1_000L },                              // the lowest latency the histogram resolves
            new[] { 2_000_000L, -3_000_000L },                     // a producer's clock ahead: counted as 0
        };
        var random = new Random(7);
        for (int n = 1; n <= 120; n += 1 + (n / 8))
        {
            // Log-uniform from 1 ms to 30 h, now and then a latency repeated.
            var latencies = new long[n];
            for (int i = 0; i < n; i++)
            {
                latencies[i] = i > 0 && random.Next(5) == 0 ? latencies[random.Next(i)] : (long)(1_000 * Math.Exp(random.NextDouble() * Math.Log(108_000_000)));
            }

            cases.Add(latencies);
        }

        var measured = cases.Select(latencies =>
        {
            var meter = new StreamFreshnessMeter();
            // Two buckets, to cover the per-type totals across buckets.
            int half = latencies.Length / 2;
            meter.Add("2026-11-01T00", Rows(latencies[..half]));
            meter.Add("2026-11-01T01", Rows(latencies[half..]));
            return meter.Result().Single();
        }).ToList();

        var statements = cases.Select(latencies => $"""
            SELECT quantile_disc(x, 0.5) AS p50, quantile_disc(x, 0.99) AS p99, min(x) AS lo, max(x) AS hi, count(*) FILTER (WHERE ahead) AS ahead
            FROM (SELECT greatest(i - e, 0) AS x, i < e AS ahead FROM (SELECT unnest({Micros(latencies.Select(_ => Start))}) AS e, unnest({Micros(latencies.Select(l => Start + l))}) AS i))
            """).ToArray();
        var results = await DuckDb.RunAsync(statements);
        for (int k = 0; k < cases.Count; k++)
        {
            var row = results[k].Rows.Single();
            double Seconds(string column) => long.Parse(row[results[k].Index(column)].ToString(), CultureInfo.InvariantCulture) / 1e6;
            var f = measured[k];
            var because = $"case {k + 1}: {cases[k].Length} latencies {string.Join(", ", cases[k].Take(8))}{(cases[k].Length > 8 ? ", …" : "")}";
            f.Events.Should().Be(cases[k].Length, because);
            f.AheadOfIngest.Should().Be(long.Parse(row[results[k].Index("ahead")].ToString(), CultureInfo.InvariantCulture), because);
            f.MaxSeconds.Should().Be(Seconds("hi"), because);
            f.P50Seconds.Should().BeApproximately(Seconds("p50"), Seconds("p50") * 0.01, because);
            f.P99Seconds.Should().BeApproximately(Seconds("p99"), Seconds("p99") * 0.01, because);
            foreach (var p in (double[])[f.P50Seconds, f.P99Seconds])
            {
                p.Should().BeInRange(Seconds("lo"), Seconds("hi"), $"{because}: a percentile lies among the latencies measured");
            }

            if (cases[k].Length <= 100)
            {
                f.P99Seconds.Should().Be(Seconds("p99"), $"{because}: over at most 100 events the p99 is the largest, known exactly");
            }
        }
    }

    private static EventBatch Rows(long[] latencies) => new(Schema,
    [
        new StringColumn([.. latencies.Select(_ => (string?)"click")]),
        new PrimitiveColumn<long>(WeftType.Timestamp, [.. latencies.Select(_ => Start)]),
        new PrimitiveColumn<long>(WeftType.Timestamp, [.. latencies.Select(l => Start + l)]),
    ]);

    private static string Micros(IEnumerable<long> values) => "[" + string.Join(", ", values.Select(v => v.ToString(CultureInfo.InvariantCulture))) + "]::BIGINT[]";
}
