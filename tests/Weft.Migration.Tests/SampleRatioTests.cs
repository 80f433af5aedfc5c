using FluentAssertions;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

public sealed class SampleRatioTests
{
    [Fact]
    public void The_p_value_is_the_chi_square_tail_of_the_table()
    {
        // 1,000 users at 50 %: 531 against 469 gives chi-square (31² + 31²) / 500 = 3.844, just past the
        // table's 3.841 for p = 0.05 with one degree of freedom.
        var result = SampleRatio.Test(531, 469, 50);
        result.ChiSquare.Should().BeApproximately(3.844, 1e-9);
        result.PValue.Should().BeInRange(0.0495, 0.05);
        result.Mismatch.Should().BeFalse("0.05 is far above the 0.001 a sample-ratio check alarms at");
        result.ObservedPercent.Should().BeApproximately(53.1, 1e-9);
    }

    [Fact]
    public void An_exact_split_passes_and_a_skewed_one_is_a_mismatch()
    {
        SampleRatio.Test(1_000, 9_000, 10).PValue.Should().BeApproximately(1, 1e-9);
        // 10.83 is the table's chi-square for p = 0.001: 1,105 of 10,000 at 10 % is (105² / 1,000) + (105² / 9,000) = 12.25.
        var skewed = SampleRatio.Test(1_105, 8_895, 10);
        skewed.ChiSquare.Should().BeApproximately(12.25, 1e-9);
        skewed.Mismatch.Should().BeTrue();
    }

    [Fact]
    public void The_expected_share_is_the_hash_buckets_share()
    {
        // 33.333 % routes buckets below 3,333 of 10,000: that is the share the split can give.
        SampleRatio.Test(3_333, 6_667, 33.333).ChiSquare.Should().BeApproximately(0, 1e-9);
    }

    [Fact]
    public void Nothing_to_check_and_a_route_that_does_not_split_are_refused()
    {
        var none = () => SampleRatio.Test(0, 0, 10);
        none.Should().Throw<ArgumentException>();
        var full = () => SampleRatio.Test(5, 0, 100);
        full.Should().Throw<ArgumentOutOfRangeException>();
    }
}
