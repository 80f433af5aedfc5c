using FluentAssertions;
using Xunit;

namespace Weft.Online.Tests;

public sealed class OnlineReadOptionsTests
{
    [Fact]
    public void The_defaults_read_the_newest_500_elements_with_no_time_bound()
    {
        var options = new OnlineReadOptions();

        options.Should().Be(OnlineReadOptions.Default);
        options.Limit.Should().Be(500);
        options.AsOfMicros.Should().Be(long.MaxValue);
        options.LookbackMicros.Should().Be(long.MaxValue);
        options.KnownAtMicros.Should().Be(long.MaxValue);
        options.FromMicros.Should().Be(long.MinValue);
    }

    [Fact]
    public void A_negative_limit_or_lookback_is_rejected_naming_the_option_and_the_value()
    {
        var limit = () => new OnlineReadOptions { Limit = -1 };
        var lookback = () => new OnlineReadOptions { LookbackMicros = -5 };

        limit.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*Limit was -1*");
        lookback.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*LookbackMicros was -5*");
    }

    [Theory]
    [InlineData(100L, 30L, 71L)]
    [InlineData(100L, 0L, 101L)]
    [InlineData(-100L, long.MaxValue, long.MinValue)]
    [InlineData(long.MinValue, 1L, long.MinValue)]
    [InlineData(long.MaxValue, long.MaxValue, long.MinValue)] // the unbounded lookback
    [InlineData(long.MaxValue, long.MaxValue - 1, 2L)]
    public void The_lookback_window_starts_just_after_as_of_minus_lookback_and_saturates_and_the_largest_lookback_is_unbounded(long asOf, long lookback, long from)
    {
        new OnlineReadOptions { AsOfMicros = asOf, LookbackMicros = lookback }.FromMicros.Should().Be(from);
    }
}
