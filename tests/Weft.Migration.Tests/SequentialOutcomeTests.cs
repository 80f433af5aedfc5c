using FluentAssertions;
using MathNet.Numerics.Distributions;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>
/// The always-valid (sequential) online outcome test: a team tests the consumer's growing log after
/// every day and acts on the first pass. Checked by simulating exactly that — splits whose users arrive
/// one by one, tested at many looks — against the error rates the test promises, with the
/// fixed-horizon test under the same peeking as the contrast that shows why the sequential one exists.
/// </summary>
public sealed class SequentialOutcomeTests
{
    private const double Percent = 20;
    private const double Alpha = 0.05;

    /// <summary>Running per-arm summaries of users arriving in order, hash-split at <see cref="Percent"/>, tested every <paramref name="lookEvery"/> users.</summary>
    private static IEnumerable<(ArmSummary Weft, ArmSummary Legacy)> Looks(int users, int lookEvery, Func<Random, bool, double> outcome, int seed)
    {
        var random = new Random(seed);
        var weft = new Welford();
        var legacy = new Welford();
        // Each replication takes its own users, so the hash split differs between them as between real splits.
        long first = (long)seed * users;
        for (long user = first; user < first + users; user++)
        {
            bool fromWeft = MigrationRouting.ServedByWeft(Percent, "engagement", "click", user);
            (fromWeft ? weft : legacy).Add(outcome(random, fromWeft));
            if ((user - first + 1) % lookEvery == 0)
            {
                yield return (weft.Summary, legacy.Summary);
            }
        }
    }

    private sealed class Welford
    {
        private long _n;
        private double _mean, _m2;

        public void Add(double x)
        {
            _n++;
            double delta = x - _mean;
            _mean += delta / _n;
            _m2 += delta * (x - _mean);
        }

        public ArmSummary Summary => new(_n, _mean, _n > 1 ? _m2 / (_n - 1) : 0);
    }

    /// <summary>Replications of a split tested at every look in which some look passed the equivalence test (or, with <paramref name="coverage"/>, missed the true difference).</summary>
    private static int Replications(int replications, Func<Random, bool, double> outcome, double margin, bool sequential, Func<Comparison, bool> failsAt)
    {
        int failed = 0;
        for (int seed = 0; seed < replications; seed++)
        {
            foreach (var (weft, legacy) in Looks(4_000, 40, outcome, seed))
            {
                if (weft.Count >= 2 && legacy.Count >= 2 && failsAt(OnlineOutcome.Compare("ctr", weft, legacy, margin, Alpha, sequential)))
                {
                    failed++;
                    break;
                }
            }
        }

        return failed;
    }

    [Fact]
    public void Peeking_after_every_look_and_stopping_at_the_first_pass_keeps_false_equivalence_under_alpha_only_when_sequential()
    {
        // The hardest case for the test: Weft's arm really is worse by exactly the margin, so calling the
        // arms equivalent is wrong. Normal outcomes, 100 looks over 4,000 users, 400 replications.
        const double margin = 0.05;
        Func<Random, bool, double> outcome = (random, fromWeft) => Normal.Sample(random, fromWeft ? 1 - margin : 1, 0.3);
        int fixedPasses = Replications(400, outcome, margin, sequential: false, c => c.Failure is null);
        int sequentialPasses = Replications(400, outcome, margin, sequential: true, c => c.Failure is null);

        // Binomial(400, 0.05) is at most 20 ± 4.4; the fixed test under peeking is far above its nominal rate.
        fixedPasses.Should().BeGreaterThan(40, "the fixed-horizon test is valid at one look, not at 100: peeked at, it errs at more than twice its level");
        sequentialPasses.Should().BeLessThanOrEqualTo(29, "the always-valid test keeps its level however often it is looked at");
    }

    [Fact]
    public void Peeking_at_clicks_keeps_false_equivalence_under_alpha_when_sequential()
    {
        // Clicks (0 or 1), the metric consumers log most: the normal limit must hold for them too,
        // including the early looks with few users. Weft's click rate is above legacy's by the margin.
        const double margin = 0.04;
        Func<Random, bool, double> outcome = (random, fromWeft) => random.NextDouble() < (fromWeft ? 0.34 : 0.30) ? 1 : 0;
        Replications(400, outcome, margin, sequential: true, c => c.Failure is null).Should().BeLessThanOrEqualTo(29);
    }

    [Fact]
    public void The_always_valid_interval_covers_the_true_difference_at_every_look_at_once_with_probability_at_least_one_minus_alpha()
    {
        // Unequal spreads (Weft's arm small and noisy), a difference that is not at either margin.
        const double difference = 0.02;
        Func<Random, bool, double> outcome = (random, fromWeft) => fromWeft ? Normal.Sample(random, 1 + difference, 0.8) : Normal.Sample(random, 1, 0.2);
        int missed = Replications(400, outcome, margin: 0.1, sequential: true, c => !(c.Lower <= difference && difference <= c.Upper));
        missed.Should().BeLessThanOrEqualTo(29);

        // The fixed interval, looked at 100 times, misses the truth at some look far more often.
        Replications(400, outcome, margin: 0.1, sequential: false, c => !(c.Lower <= difference && difference <= c.Upper)).Should().BeGreaterThan(80);
    }

    [Fact]
    public void Identical_arms_are_shown_equivalent_once_enough_users_arrive_with_a_wider_interval_than_the_fixed_test()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var (weft, legacy) = Looks(20_000, 20_000, (random, _) => Normal.Sample(random, 1, 0.5), seed).Single();
            var fixedTest = OnlineOutcome.Compare("ctr", weft, legacy, 0.05, Alpha, sequential: false);
            var sequential = OnlineOutcome.Compare("ctr", weft, legacy, 0.05, Alpha, sequential: true);
            sequential.Failure.Should().BeNull($"seed {seed}");
            sequential.Difference.Should().Be(fixedTest.Difference);
            sequential.Lower.Should().BeLessThan(fixedTest.Lower);
            sequential.Upper.Should().BeGreaterThan(fixedTest.Upper);
            sequential.PValue.Should().BeGreaterThan(fixedTest.PValue, "an always-valid p-value pays for the looks it allows");
        }
    }

    [Fact]
    public void Arms_apart_by_more_than_the_margin_are_shown_to_differ_and_arms_too_few_to_tell_are_undecided()
    {
        var (apartWeft, apartLegacy) = Looks(20_000, 20_000, (random, fromWeft) => Normal.Sample(random, fromWeft ? 1.2 : 1, 0.5), 3).Single();
        var apart = OnlineOutcome.Compare("ctr", apartWeft, apartLegacy, 0.05, Alpha, sequential: true);
        apart.Failure.Should().Contain("differs on Weft's sequences by more than the margin");
        apart.Lower.Should().BeGreaterThan(0.05);

        var (fewWeft, fewLegacy) = Looks(200, 200, (random, _) => Normal.Sample(random, 1, 0.5), 3).Single();
        var few = OnlineOutcome.Compare("ctr", fewWeft, fewLegacy, 0.05, Alpha, sequential: true);
        few.Failure.Should().Contain("not yet shown").And.Contain("keep collecting");
        few.Lower.Should().BeLessThan(-0.05);
        few.Upper.Should().BeGreaterThan(0.05);
    }

    [Fact]
    public void Arms_without_spread_are_undecided_when_sequential_and_not_shown_by_the_fixed_test()
    {
        var weft = new ArmSummary(3, 1, 0);
        var legacy = new ArmSummary(12, 1, 0);
        var fixedTest = OnlineOutcome.Compare("ctr", weft, legacy, 0.05, Alpha, sequential: false);
        fixedTest.Failure.Should().Contain("has had the same ctr").And.Contain("test again once both arms vary");
        fixedTest.Undecided.Should().BeFalse("a fixed-horizon look passes or fails");
        var sequential = OnlineOutcome.Compare("ctr", weft, legacy, 0.05, Alpha, sequential: true);
        sequential.Failure.Should().Contain("has had the same ctr").And.Contain("keep collecting");
        sequential.Undecided.Should().BeTrue();
    }

    [Fact]
    public void The_sequential_p_value_is_below_alpha_exactly_when_the_always_valid_interval_lies_inside_the_margins()
    {
        var random = new Random(5);
        int inside = 0, outside = 0;
        for (int i = 0; i < 2_000; i++)
        {
            var weft = new ArmSummary(random.Next(2, 5_000), random.NextDouble() * 0.2, 0.01 + random.NextDouble());
            var legacy = new ArmSummary(random.Next(2, 20_000), random.NextDouble() * 0.2, 0.01 + random.NextDouble());
            double margin = 0.01 + (random.NextDouble() * 0.2);
            var result = OnlineOutcome.Compare("ctr", weft, legacy, margin, Alpha, sequential: true);
            bool within = result.Lower > -margin && result.Upper < margin;
            (result.PValue < Alpha).Should().Be(within, $"case {i}: interval {result.Lower} .. {result.Upper}, margin {margin}, p {result.PValue}");
            (result.Failure is null).Should().Be(within);
            if (within)
            {
                inside++;
            }
            else
            {
                outside++;
            }
        }

        inside.Should().BeGreaterThan(100);
        outside.Should().BeGreaterThan(100);
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.01)]
    [InlineData(0.2)]
    public void The_mixture_makes_the_interval_tightest_where_its_half_width_equals_the_margin(double alpha)
    {
        const double margin = 0.03;
        double tau2 = OnlineOutcome.MixtureVariance(margin, alpha);
        // The variance of the difference at which the interval is exactly ±margin wide…
        double low = 1e-12, high = margin * margin;
        for (int i = 0; i < 200; i++)
        {
            double mid = (low + high) / 2;
            (OnlineOutcome.MixtureHalfWidth(mid, tau2, alpha) < margin ? ref low : ref high) = mid;
        }

        // …is where no other mixture gives a narrower interval.
        double v = low;
        OnlineOutcome.MixtureHalfWidth(v, tau2, alpha).Should().BeApproximately(margin, 1e-9);
        foreach (double factor in new[] { 0.5, 0.8, 0.95, 1.05, 1.25, 2 })
        {
            OnlineOutcome.MixtureHalfWidth(v, tau2 * factor, alpha).Should().BeGreaterThan(margin, $"τ² × {factor}");
        }
    }

    [Fact]
    public void The_sequential_sample_ratio_check_keeps_false_alarms_under_its_level_at_every_look_and_still_finds_a_broken_split()
    {
        // Under a correct 20 % split, checked after every 50 users up to 10,000: how often does any look
        // call it broken at level 0.05? The χ² test, repeated, far more often than 5 %.
        const double level = 0.05;
        int chiAlarms = 0, sequentialAlarms = 0;
        for (int seed = 0; seed < 400; seed++)
        {
            var random = new Random(seed);
            long weft = 0, legacy = 0;
            bool chi = false, sequential = false;
            for (int user = 1; user <= 10_000; user++)
            {
                if (random.NextDouble() < Percent / 100)
                {
                    weft++;
                }
                else
                {
                    legacy++;
                }

                if (user % 50 == 0)
                {
                    chi |= SampleRatio.Test(weft, legacy, Percent).PValue < level;
                    sequential |= SampleRatio.Test(weft, legacy, Percent, sequential: true).PValue < level;
                }
            }

            chiAlarms += chi ? 1 : 0;
            sequentialAlarms += sequential ? 1 : 0;
        }

        chiAlarms.Should().BeGreaterThan(60);
        sequentialAlarms.Should().BeLessThanOrEqualTo(29);

        // A consumer that falls back to legacy for one user in ten of Weft's: 18 % instead of 20 %, over 20,000 users.
        var broken = SampleRatio.Test(3_600, 16_400, Percent, sequential: true);
        broken.Sequential.Should().BeTrue();
        broken.Mismatch.Should().BeTrue();
        SampleRatio.Test(4_000, 16_000, Percent, sequential: true).Mismatch.Should().BeFalse();
    }

    [Fact]
    public void A_split_of_less_than_one_bucket_is_refused()
    {
        var tiny = () => SampleRatio.Test(0, 100, 0.001);
        tiny.Should().Throw<ArgumentOutOfRangeException>().Which.Message.Should().Contain("every user to one side");
    }
}
