using FluentAssertions;
using MathNet.Numerics.Distributions;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>
/// The online outcome test of a split: Welch's TOST on per-user means, after sample-ratio checks of the
/// exposed users and of those with an outcome. Checked by its properties over simulated splits
/// (coverage of the interval, the verdict on equal and on shifted arms, symmetry), not by fixed numbers.
/// </summary>
public sealed class OnlineOutcomeTests
{
    private const double Percent = 20;

    /// <summary>Users 0..n−1 split by the route's hash at <see cref="Percent"/>, each with an outcome drawn from their arm's normal distribution.</summary>
    private static (Dictionary<long, double> Outcomes, HashSet<long> Weft, HashSet<long> Legacy) Split(int users, double weftMean, double legacyMean, double weftSd, double legacySd, int seed)
    {
        var random = new Random(seed);
        var outcomes = new Dictionary<long, double>();
        var weft = new HashSet<long>();
        var legacy = new HashSet<long>();
        for (long user = 0; user < users; user++)
        {
            bool fromWeft = MigrationRouting.ServedByWeft(Percent, "engagement", "click", user);
            (fromWeft ? weft : legacy).Add(user);
            outcomes[user] = fromWeft ? Normal.Sample(random, weftMean, weftSd) : Normal.Sample(random, legacyMean, legacySd);
        }

        return (outcomes, weft, legacy);
    }

    [Fact]
    public void Arms_with_the_same_outcome_distribution_are_equivalent_and_arms_apart_by_twice_the_margin_are_not()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var (same, weft, legacy) = Split(4_000, 1.0, 1.0, 0.5, 0.5, seed);
            var equal = OnlineOutcome.Test("ctr", same, weft, legacy, Percent, margin: 0.1);
            equal.Passed.Should().BeTrue($"seed {seed}: {string.Join("; ", equal.Failures)}");
            equal.Lower.Should().BeGreaterThan(-0.1);
            equal.Upper.Should().BeLessThan(0.1);

            var (apart, weft2, legacy2) = Split(4_000, 1.2, 1.0, 0.5, 0.5, seed);
            var shifted = OnlineOutcome.Test("ctr", apart, weft2, legacy2, Percent, margin: 0.1);
            shifted.Passed.Should().BeFalse($"seed {seed}");
            shifted.Failures.Should().ContainSingle().Which.Should().Contain("not shown to lie within ±0.1");
            shifted.Difference.Should().BeInRange(0.1, 0.3);
        }
    }

    [Theory]
    // Nearly every Weft user clicks, so Weft's 10 often all do: Weft really is 0.07 below legacy.
    [InlineData(0.90, 0.97, 10, 1_000, 0.05)]
    // Rare conversions, so both arms often have none at all: Weft really converts 0.003 more.
    [InlineData(0.004, 0.001, 100, 900, 0.002)]
    public void Binary_outcomes_apart_by_more_than_the_margin_are_called_equivalent_at_one_look_at_most_at_alpha(double weftRate, double legacyRate, int weftUsers, int legacyUsers, double margin)
    {
        // The fixed test's promise at its one planned look: arms that are not equivalent pass at most at
        // rate alpha. Checked by simulating the looks themselves, not against the test's own formulas.
        const double alpha = 0.05;
        const int runs = 2_000;
        Math.Abs(weftRate - legacyRate).Should().BeGreaterThan(margin, "the arms must really differ by more than the margin");
        var random = new Random(11);
        int passed = 0;
        for (int run = 0; run < runs; run++)
        {
            if (OnlineOutcome.Compare("clicked", Arm(weftRate, weftUsers), Arm(legacyRate, legacyUsers), margin, alpha, sequential: false).Failure is null)
            {
                passed++;
            }
        }

        // Binomial(2,000, 0.05): 100 ± 9.7; 4 sd above.
        passed.Should().BeLessThanOrEqualTo(139, $"{passed} of {runs} splits were called equivalent");

        ArmSummary Arm(double rate, int users)
        {
            long ones = 0;
            for (int i = 0; i < users; i++)
            {
                ones += random.NextDouble() < rate ? 1 : 0;
            }

            double mean = (double)ones / users;
            return new ArmSummary(users, mean, ones * (1 - mean) * (1 - mean) / (users - 1) + (users - ones) * mean * mean / (users - 1));
        }
    }

    [Fact]
    public void The_interval_covers_the_true_difference_at_its_nominal_rate_with_unequal_variances()
    {
        // A 90 % interval (alpha 0.05 each side) with arms of unequal size and spread, where a pooled
        // variance would be wrong: over 600 simulated splits it must cover the truth about 90 % of the time.
        const double trueDifference = 0.05;
        int covered = 0, runs = 600;
        for (int seed = 0; seed < runs; seed++)
        {
            var (outcomes, weft, legacy) = Split(300, 1.0 + trueDifference, 1.0, 2.0, 0.3, 1_000 + seed);
            var result = OnlineOutcome.Test("dwell", outcomes, weft, legacy, Percent, margin: 10);
            if (result.Lower <= trueDifference && trueDifference <= result.Upper)
            {
                covered++;
            }
        }

        // Binomial(600, 0.9): sd ≈ 7.3 runs; ±4 sd.
        covered.Should().BeInRange(511, 569);
    }

    [Fact]
    public void Swapping_the_arms_negates_the_difference_and_keeps_the_verdict()
    {
        var (outcomes, weft, legacy) = Split(2_000, 1.03, 1.0, 0.4, 0.6, 7);
        var forward = OnlineOutcome.Test("ctr", outcomes, weft, legacy, Percent, margin: 0.08);
        var backward = OnlineOutcome.Test("ctr", outcomes, legacy, weft, 100 - Percent, margin: 0.08);
        backward.Difference.Should().BeApproximately(-forward.Difference, 1e-12);
        backward.Lower.Should().BeApproximately(-forward.Upper, 1e-12);
        backward.PValue.Should().BeApproximately(forward.PValue, 1e-12);
        backward.DegreesOfFreedom.Should().BeApproximately(forward.DegreesOfFreedom, 1e-9);
        backward.Passed.Should().Be(forward.Passed);
    }

    [Fact]
    public void A_broken_split_fails_whatever_the_outcomes_say()
    {
        var (outcomes, weft, legacy) = Split(5_000, 1.0, 1.0, 0.5, 0.5, 11);
        // A consumer that fell back to legacy for 600 more users than the hash sent there.
        foreach (long user in Enumerable.Range(100_000, 600))
        {
            legacy.Add(user);
            outcomes[user] = 1.0;
        }

        var result = OnlineOutcome.Test("ctr", outcomes, weft, legacy, Percent, margin: 0.1);
        result.Exposed.Mismatch.Should().BeTrue();
        result.Passed.Should().BeFalse();
        result.Failures[0].Should().Contain("the split is broken");

        // The always-valid check, which pays for its looks with power, finds it once 1,000 more users fell
        // back; and a broken split is a failure, not a call to collect more users.
        foreach (long user in Enumerable.Range(200_000, 1_000))
        {
            legacy.Add(user);
            outcomes[user] = 1.0;
        }

        SampleRatio.Test(weft.Count, legacy.Count, Percent, sequential: true).PValue.Should().BeGreaterThan(SampleRatio.Test(weft.Count, legacy.Count, Percent).PValue);
        var sequential = OnlineOutcome.Test("ctr", outcomes, weft, legacy, Percent, margin: 0.1, sequential: true);
        sequential.Exposed.Sequential.Should().BeTrue();
        sequential.Exposed.Mismatch.Should().BeTrue();
        sequential.Failures[0].Should().Contain("the split is broken");
        sequential.Undecided.Should().BeFalse();
    }

    [Fact]
    public void Outcomes_logged_for_one_arms_users_more_than_the_others_fail_as_a_measured_split_mismatch()
    {
        var (outcomes, weft, legacy) = Split(5_000, 1.0, 1.0, 0.5, 0.5, 12);
        foreach (long user in legacy.Where(u => u % 3 == 0))
        {
            outcomes.Remove(user); // the consumer's logs lost a third of legacy's users
        }

        outcomes[999_999] = 5; // and a user not in the split, left out
        var result = OnlineOutcome.Test("ctr", outcomes, weft, legacy, Percent, margin: 0.1);
        result.Exposed.Mismatch.Should().BeFalse();
        result.Measured!.Mismatch.Should().BeTrue();
        result.ExposedWithoutOutcome.Should().Be(legacy.Count(u => u % 3 == 0));
        result.UnexposedWithOutcome.Should().Be(1);
        result.Failures.Should().ContainSingle().Which.Should().Contain("cover one arm's users more");
    }

    [Fact]
    public void An_arm_with_fewer_than_two_measured_users_cannot_be_tested()
    {
        var outcomes = new Dictionary<long, double> { [1] = 1, [2] = 2, [3] = 3 };
        var result = OnlineOutcome.Test("ctr", outcomes, new HashSet<long> { 1 }, new HashSet<long> { 2, 3 }, 50, margin: 1);
        result.Passed.Should().BeFalse();
        result.Failures.Should().Contain(f => f.Contains("at least 2 in each arm"));
        double.IsNaN(result.Difference).Should().BeTrue();
    }

    [Fact]
    public async Task A_users_rows_are_averaged_and_a_bad_row_is_an_error_naming_the_file_and_row()
    {
        string dir = Path.Combine(Path.GetTempPath(), "weft-outcome-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string csv = Path.Combine(dir, "clicks.csv");
            await File.WriteAllTextAsync(csv, "user_id,clicked\n1,1\n1,0\n1,0\n1,1\n2,1\n3,0\n");
            var means = await OnlineOutcome.ReadAsync(csv, "user_id", "clicked");
            means.Should().BeEquivalentTo(new Dictionary<long, double> { [1] = 0.5, [2] = 1, [3] = 0 });

            string jsonl = Path.Combine(dir, "dwell.jsonl");
            await File.WriteAllTextAsync(jsonl, "{\"uid\":7,\"dwell\":2.5}\n{\"uid\":7,\"dwell\":3.5}\n");
            (await OnlineOutcome.ReadAsync(jsonl, "uid", "dwell"))[7].Should().Be(3);

            await File.WriteAllTextAsync(csv, "user_id,clicked\n1,1\n2,\n");
            var missing = () => OnlineOutcome.ReadAsync(csv, "user_id", "clicked");
            (await missing.Should().ThrowAsync<MigrationInputException>()).Which.Message.Should().Contain("clicks.csv:3: missing 'clicked'", "the file's line, as other input errors name it");

            var noColumn = () => OnlineOutcome.ReadAsync(csv, "user_id", "value");
            (await noColumn.Should().ThrowAsync<MigrationInputException>()).Which.Message.Should().Contain("no column 'value'").And.Contain("--metric");

            await File.WriteAllTextAsync(csv, "user_id,clicked\nalice,1\n");
            var text = () => OnlineOutcome.ReadAsync(csv, "user_id", "clicked");
            (await text.Should().ThrowAsync<MigrationInputException>()).Which.Message.Should().Contain("cannot be read");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
