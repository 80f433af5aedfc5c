using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

public sealed class EquivalenceTests
{
    private static Dictionary<string, double> Scores(params double[] values) =>
        values.Select((v, i) => (Key: $"e{i}", Value: v)).ToDictionary(p => p.Key, p => p.Value);

    [Fact]
    public void A_small_textbook_case_matches_the_t_table()
    {
        // Differences 0.1, -0.1, 0.2, 0, -0.2: mean 0, s = sqrt(0.025), se = s / sqrt(5), 4 degrees of freedom.
        var control = Scores(0.5, 0.5, 0.5, 0.5, 0.5);
        var treatment = Scores(0.6, 0.4, 0.7, 0.5, 0.3);
        var result = Equivalence.Test(control, treatment, margin: 0.3, alpha: 0.05);

        result.Pairs.Should().Be(5);
        result.MeanDifference.Should().BeApproximately(0, 1e-12);
        result.StdDifference.Should().BeApproximately(Math.Sqrt(0.025), 1e-12);
        // t = 0.3 / se = 4.243 lies between the table's 3.747 (p = 0.01) and 4.604 (p = 0.005) for 4 df.
        result.PValue.Should().BeInRange(0.005, 0.01);
        // The 90 % interval is mean ± t(0.95, 4) × se, with t(0.95, 4) = 2.132 from the table.
        double se = Math.Sqrt(0.025) / Math.Sqrt(5);
        result.Lower.Should().BeApproximately(-2.132 * se, 1e-3);
        result.Upper.Should().BeApproximately(2.132 * se, 1e-3);
        result.Passed.Should().BeTrue();

        // The same data with a margin inside the interval's reach: not shown equivalent.
        Equivalence.Test(control, treatment, margin: 0.1).Passed.Should().BeFalse();
    }

    [Property(MaxTest = 50)]
    public bool Scores_shifted_by_twice_the_margin_are_never_equivalent(PositiveInt seed)
    {
        var random = new Random(seed.Get);
        var control = Enumerable.Range(0, 500).ToDictionary(i => $"u{i}", _ => random.NextDouble());
        var treatment = control.ToDictionary(p => p.Key, p => p.Value + 0.02 + ((random.NextDouble() - 0.5) * 0.01));
        return !Equivalence.Test(control, treatment, margin: 0.01).Passed;
    }

    [Property(MaxTest = 50)]
    public bool Scores_with_small_unbiased_noise_are_equivalent(PositiveInt seed)
    {
        var random = new Random(seed.Get);
        var control = Enumerable.Range(0, 2000).ToDictionary(i => $"u{i}", _ => random.NextDouble());
        var treatment = control.ToDictionary(p => p.Key, p => p.Value + ((random.NextDouble() - 0.5) * 0.01));
        var result = Equivalence.Test(control, treatment, margin: 0.005);
        return result.Passed && result.Lower > -0.005 && result.Upper < 0.005 && result.Correlation > 0.99;
    }

    [Fact]
    public void Identical_replays_are_equivalent_with_an_exact_zero_difference()
    {
        var scores = Scores(0.1, 0.9, 0.4);
        var result = Equivalence.Test(scores, new Dictionary<string, double>(scores), margin: 1e-9);
        result.Passed.Should().BeTrue();
        result.MeanDifference.Should().Be(0);
        result.Lower.Should().Be(0);
        result.Upper.Should().Be(0);
    }

    [Fact]
    public void Replays_of_different_examples_fail_even_when_the_paired_ones_agree()
    {
        var control = Enumerable.Range(0, 1000).ToDictionary(i => $"u{i}", i => i / 1000.0);
        var treatment = Enumerable.Range(20, 1000).ToDictionary(i => $"u{i}", i => i / 1000.0);
        var result = Equivalence.Test(control, treatment, margin: 0.01);
        result.Pairs.Should().Be(980);
        result.ControlOnly.Should().Be(20);
        result.TreatmentOnly.Should().Be(20);
        result.Failures.Should().ContainSingle().Which.Should().Contain("did not score the same examples");
    }

    [Fact]
    public void Too_few_pairs_and_bad_parameters_are_refused()
    {
        Equivalence.Test(Scores(0.5), Scores(0.5), margin: 0.1).Failures.Should().ContainSingle().Which.Should().Contain("at least 2");
        var zeroMargin = () => Equivalence.Test(Scores(0.5, 0.6), Scores(0.5, 0.6), margin: 0);
        zeroMargin.Should().Throw<ArgumentOutOfRangeException>();
        var badAlpha = () => Equivalence.Test(Scores(0.5, 0.6), Scores(0.5, 0.6), margin: 0.1, alpha: 0.5);
        badAlpha.Should().Throw<ArgumentOutOfRangeException>();
    }
}
