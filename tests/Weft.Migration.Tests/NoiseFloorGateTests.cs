using FluentAssertions;
using Weft.Migration;
using Weft.Quality;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>The comparison gate when nothing matched: neither Weft against legacy, nor legacy against its replica.</summary>
public sealed class NoiseFloorGateTests
{
    private static ComparisonResult Result(long matched, long legacyOnly, long agreed, long users, long usersAgree)
    {
        var column = new ColumnAgreement("item_id", matched, agreed, 0, []);
        var total = new EventTypeComparison("click", matched + legacyOnly, matched, matched, legacyOnly, 0, 0, 0, 0, [column]);
        return new ComparisonResult([total], total, new SequenceAgreement(users, usersAgree, usersAgree), ["item_id"], [], [], []);
    }

    [Fact]
    public void A_replica_sharing_no_event_with_legacy_gives_no_noise_floor_and_fails_the_gate()
    {
        var weft = Result(matched: 0, legacyOnly: 5, agreed: 0, users: 3, usersAgree: 0);
        var replica = Result(matched: 0, legacyOnly: 5, agreed: 0, users: 3, usersAgree: 0);

        var (checks, failures) = LegacyComparison.Gate(weft, replica, new ComparisonGates());

        failures.Should().Contain(f => f.Contains("none of legacy's 5 events matched one of Weft's"));
        failures.Should().Contain(f => f.Contains("replica shares 0 of legacy's 5 events") && f.Contains("no noise floor"));
        checks.Should().NotContain(c => c.Measure.StartsWith("column", StringComparison.Ordinal), "agreement over no matched event is not 100 %");
        checks.Should().OnlyContain(c => c.NoiseFloor == null && c.Required > 0.9, "the bars are not lowered by a replica that measured nothing");
    }

    /// <summary>
    /// One shared event of thousands lowered every bar toward 0 % and passed a Weft that fails without the
    /// replica: a replica sharing less than half of legacy's events is no floor either. Half or more is.
    /// </summary>
    [Theory]
    [InlineData(1, 53_691, false)]
    [InlineData(499, 501, false)]
    [InlineData(500, 500, true)]
    public void A_replica_sharing_less_than_half_of_legacys_events_gives_no_noise_floor(long shared, long notShared, bool floor)
    {
        var weft = Result(matched: 9_000, legacyOnly: 1_000, agreed: 9_000, users: 100, usersAgree: 90);
        var replica = Result(matched: shared, legacyOnly: notShared, agreed: shared, users: 100, usersAgree: 1);

        var (checks, failures) = LegacyComparison.Gate(weft, replica, new ComparisonGates());

        checks.Any(c => c.NoiseFloor is not null).Should().Be(floor);
        failures.Any(f => f.Contains("no noise floor", StringComparison.Ordinal)).Should().Be(!floor);
        if (!floor)
        {
            checks.Should().OnlyContain(c => c.Required > 0.9, "the bars are not lowered by a replica of another input");
        }
    }

    [Fact]
    public void A_comparison_with_no_matched_event_fails_even_without_a_replica()
    {
        var weft = Result(matched: 0, legacyOnly: 5, agreed: 0, users: 0, usersAgree: 0);

        var (checks, failures) = LegacyComparison.Gate(weft, null, new ComparisonGates(MinCompleteness: 0, MinAgreement: 0.99, MinSequenceAgreement: 0));

        failures.Should().ContainSingle().Which.Should().Contain("none of legacy's 5 events matched");
        checks.Should().NotContain(c => c.Measure == "column item_id");
    }

    [Fact]
    public void A_replica_with_matched_events_still_lowers_the_bars_to_legacys_own_level()
    {
        var weft = Result(matched: 95, legacyOnly: 5, agreed: 90, users: 10, usersAgree: 9);
        var replica = Result(matched: 94, legacyOnly: 6, agreed: 89, users: 10, usersAgree: 9);

        var (_, failures) = LegacyComparison.Gate(weft, replica, new ComparisonGates());

        failures.Should().BeEmpty();
    }
}
