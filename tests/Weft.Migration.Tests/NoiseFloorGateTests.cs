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
        failures.Should().Contain(f => f.Contains("replica shares none of legacy's 5 events") && f.Contains("no noise floor"));
        checks.Should().NotContain(c => c.Measure.StartsWith("column", StringComparison.Ordinal), "agreement over no matched event is not 100 %");
        checks.Should().OnlyContain(c => c.NoiseFloor == null && c.Required > 0.9, "the bars are not lowered by a replica that measured nothing");
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
