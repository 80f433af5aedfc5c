using System.Text;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Weft.Engine;
using Xunit;

namespace Weft.Storage.Tests.Tables;

/// <summary>String bounds of a data file's statistics against the bounds of the values' UTF-8 bytes.</summary>
public sealed class DataFileStatisticsTests
{
    [Fact]
    public void String_bounds_are_the_bounds_in_utf8_byte_order()
    {
        // Short strings over characters whose UTF-16 and UTF-8 orders disagree (surrogate pairs against
        // U+E000–U+FFFD), with repeats drawn from a few shared instances, as a parsed column holds them.
        var chars = Gen.Elements("a", "Z", "é", "\uFFFD", "\uE000", "\U0001F600", "\U00010000", "中");
        var text = chars.ArrayOf().Select(parts => string.Concat(parts));
        var column = Gen.OneOf(text, Gen.Elements<string>("m", "\uFFFD", "\U0001F600"), Gen.Constant<string>(null!)).ArrayOf();
        var property = Prop.ForAll(column.ToArbitrary(), values =>
        {
            var json = DataFileStatistics.Build([new FieldDefinition("s", WeftType.String)], [new StringColumn(values)], Enumerable.Range(0, values.Length).ToArray());
            FileStatistics.TryParse(json, out var stats).Should().BeTrue();
            var present = values.Where(v => v is not null).OrderBy(v => Encoding.UTF8.GetBytes(v!), Comparer<byte[]>.Create((x, y) => x.AsSpan().SequenceCompareTo(y))).ToList();
            stats!.NullCount!["s"]!.GetValue<int>().Should().Be(values.Length - present.Count);
            if (present.Count == 0)
            {
                stats.MinValues!.ContainsKey("s").Should().BeFalse();
                return;
            }

            // A long minimum is cut to a prefix, still a lower bound.
            var min = stats.MinValues!["s"]!.GetValue<string>();
            min.Length.Should().BeLessThanOrEqualTo(DataFileStatistics.MaxStringStatLength);
            present[0]!.Should().StartWith(min);
            if (present[0]!.Length <= DataFileStatistics.MaxStringStatLength)
            {
                min.Should().Be(present[0], "the minimum");
            }

            if (present[^1]!.Length <= DataFileStatistics.MaxStringStatLength)
            {
                stats.MaxValues!["s"]!.GetValue<string>().Should().Be(present[^1], "the maximum");
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2_000).WithReplay(0x57A75, 0x3), property);
    }
}
