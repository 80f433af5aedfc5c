using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Engine.Sequences;
using Xunit;

namespace Weft.Engine.Tests;

public sealed class SequenceCutTests
{
    /// <summary>
    /// <see cref="SequenceCut.FromMicros"/> is as_of − lookback + 1 in exact arithmetic, clipped to
    /// long.MinValue, for every as_of and positive lookback: the edges of the int64 range included
    /// (long.MaxValue as "now" kept its lookback only by accident of the numbers chosen).
    /// </summary>
    [Fact]
    public void From_is_as_of_minus_lookback_plus_one_clipped_at_the_int64_minimum()
    {
        var edge = Gen.Elements(long.MinValue, long.MinValue + 1, long.MinValue / 2, -1L, 0L, 1L, long.MaxValue / 2, (long.MaxValue / 2) + 2, long.MaxValue - 1, long.MaxValue);
        var asOf = Gen.OneOf(edge, Gen.Choose(int.MinValue, int.MaxValue).Select(x => (long)x * 4_294_967_311L));
        var lookback = Gen.OneOf(Gen.Elements(1L, 2L, 2_592_000_000_000L, long.MaxValue / 2, long.MaxValue - 1, long.MaxValue), Gen.Choose(1, int.MaxValue).Select(x => (long)x * 4_294_967_291L));
        var property = Prop.ForAll(asOf.ToArbitrary(), lookback.ToArbitrary(), (a, l) =>
        {
            Int128 exact = (Int128)a - l + 1;
            long expected = exact < long.MinValue ? long.MinValue : (long)exact;
            var cut = new SequenceCut(a, a, l, 10);
            cut.FromMicros.Should().Be(expected, $"as_of {a}, lookback {l}");
            cut.Admits(a, a).Should().BeTrue("as_of itself is inside any positive lookback");
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2_000).WithReplay(0xC07, 0x9), property);
    }
}
