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

    private static List<string> Buckets(WeftMetrics metrics)
    {
        var text = new StringBuilder();
        metrics.WritePrometheus(text);
        return [.. text.ToString().Split('\n').Where(l => l.Contains("_bucket", StringComparison.Ordinal) || l.Contains("_count", StringComparison.Ordinal))];
    }
}
