using System.Text;
using FluentAssertions;
using Weft.Engine.Observability;
using Xunit;

namespace Weft.Engine.Tests;

public sealed class WeftMetricsTests
{
    [Fact]
    public void Observing_many_values_at_once_equals_observing_them_one_by_one()
    {
        var random = new Random(7);
        double[] values = [.. Enumerable.Range(0, 500).Select(_ => Math.Round(random.NextDouble() * random.Next(1, 100), 3))];
        var one = new WeftMetrics();
        var many = new WeftMetrics();
        foreach (double v in values)
        {
            one.Observe("lag_seconds", "help", v, ("signal", "s"), ("event_type", "click"));
        }

        many.ObserveMany("lag_seconds", "help", values.AsSpan(0, 200), ("signal", "s"), ("event_type", "click"));
        many.ObserveMany("lag_seconds", "help", values.AsSpan(200), ("signal", "s"), ("event_type", "click"));
        many.ObserveMany("lag_seconds", "help", [], ("signal", "s"), ("event_type", "view"));

        foreach (double q in new[] { 0.1, 0.5, 0.99 })
        {
            many.Quantile("lag_seconds", q, ("signal", "s"), ("event_type", "click")).Should().Be(one.Quantile("lag_seconds", q, ("signal", "s"), ("event_type", "click")));
        }

        many.LabelSets("lag_seconds").Should().ContainSingle("an empty span records nothing");
        Buckets(many).Should().Equal(Buckets(one));
    }

    /// <summary>
    /// A quantile that falls past the last bound (60 s) is read against the largest value observed. It
    /// was read against a made-up bound of twice the last, so a stream whose slowest events reached the
    /// store fifteen minutes after they arrived (a backlog after an outage) showed a freshness p99 under
    /// two minutes on /v1/signals and in the demo.
    /// </summary>
    [Fact]
    public void A_quantile_past_the_last_bound_is_read_up_to_the_largest_value_observed()
    {
        var metrics = new WeftMetrics();
        metrics.ObserveMany("weft_freshness_seconds", "help", [.. Enumerable.Repeat(0.1, 950)], ("signal", "s"), ("event_type", "click"));
        metrics.ObserveMany("weft_freshness_seconds", "help", [.. Enumerable.Repeat(900.0, 49)], ("signal", "s"), ("event_type", "click"));
        metrics.Observe("weft_freshness_seconds", "help", 900.0, ("signal", "s"), ("event_type", "click"));

        metrics.Quantile("weft_freshness_seconds", 0.99, ("signal", "s"), ("event_type", "click")).Should().BeInRange(600, 900);
        metrics.Quantile("weft_freshness_seconds", 1, ("signal", "s"), ("event_type", "click")).Should().Be(900);
        metrics.Quantile("weft_freshness_seconds", 0.5, ("signal", "s"), ("event_type", "click")).Should().BeLessThanOrEqualTo(0.1);

        var small = new WeftMetrics();
        small.Observe("weft_freshness_seconds", "help", 61, ("signal", "s"), ("event_type", "click"));
        small.Quantile("weft_freshness_seconds", 0.99, ("signal", "s"), ("event_type", "click")).Should().BeInRange(60, 61);
    }

    [Fact]
    public async Task A_scrape_while_new_series_appear_renders_a_consistent_text_instead_of_failing()
    {
        // A stream creates series as it meets new signals, event types and partitions, while /metrics
        // renders: the scrape must see each series whole or not at all, never throw.
        var metrics = new WeftMetrics();
        const int Series = 20_000;
        var adding = Task.Run(() =>
        {
            for (int i = 0; i < Series; i++)
            {
                metrics.Count("weft_test_total", "help", 1, ("partition", i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        });
        int scrapes = 0;
        while (!adding.IsCompleted)
        {
            var text = new StringBuilder();
            metrics.WritePrometheus(text);
            // A series just made may not have its first increment yet: 0 or 1, nothing else.
            Samples(text.ToString()).Where(line => !line.EndsWith(" 1", StringComparison.Ordinal) && !line.EndsWith(" 0", StringComparison.Ordinal)).Should().BeEmpty();
            scrapes++;
        }

        await adding;
        var final = new StringBuilder();
        metrics.WritePrometheus(final);
        Samples(final.ToString()).Should().HaveCount(Series);
        scrapes.Should().BePositive();
    }

    private static IEnumerable<string> Samples(string text) => text.Split('\n').Where(l => l.StartsWith("weft_test_total{", StringComparison.Ordinal));

    private static List<string> Buckets(WeftMetrics metrics)
    {
        var text = new StringBuilder();
        metrics.WritePrometheus(text);
        return [.. text.ToString().Split('\n').Where(l => l.Contains("_bucket", StringComparison.Ordinal) || l.Contains("_count", StringComparison.Ordinal))];
    }

    /// <summary>The exposition format requires a histogram's +Inf bucket to equal its _count; two reads while observations landed disagreed.</summary>
    [Fact]
    public async Task A_histograms_count_equals_its_Inf_bucket_while_observations_land()
    {
        var metrics = new WeftMetrics();
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 2).Select(w => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                metrics.Observe("latency_seconds", "help", 0.001 * w, ("route", "r"));
            }
        })).ToArray();

        while (metrics.Value("latency_seconds", ("route", "r")) < 10_000)
        {
            await Task.Yield();
        }

        var mismatches = new List<string>();
        for (int scrape = 0; scrape < 3_000; scrape++)
        {
            var text = new StringBuilder();
            metrics.WritePrometheus(text);
            var lines = text.ToString().Split('\n');
            string? inf = lines.FirstOrDefault(l => l.StartsWith("latency_seconds_bucket{route=\"r\",le=\"+Inf\"}", StringComparison.Ordinal))?.Split(' ')[^1];
            string? count = lines.FirstOrDefault(l => l.StartsWith("latency_seconds_count", StringComparison.Ordinal))?.Split(' ')[^1];
            if (inf is null || inf != count)
            {
                mismatches.Add($"+Inf {inf}, _count {count}");
            }
        }

        await stop.CancelAsync();
        await Task.WhenAll(writers);
        mismatches.Should().BeEmpty();
    }
}
