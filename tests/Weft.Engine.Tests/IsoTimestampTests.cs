using System.Globalization;
using System.Text;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// The fast timestamp reader against the general parser it short-cuts (<see cref="DateTimeOffset.TryParse(string?, IFormatProvider?, DateTimeStyles, out DateTimeOffset)"/>
/// with the parser's styles): wherever it answers, the same instant; on the common shape, it answers.
/// </summary>
public sealed class IsoTimestampTests
{
    private const DateTimeStyles Styles = DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal;

    /// <summary>Near-ISO text: fields at or just past their ranges, 0–9 fraction digits, every zone form, the odd wrong separator.</summary>
    private static readonly Gen<string> Texts =
        from year in Gen.OneOf(Gen.Choose(1, 9999), Gen.Elements(1, 1969, 1970, 2024, 2026, 9999))
        from month in Gen.Choose(0, 13)
        from day in Gen.Choose(0, 32)
        from hour in Gen.Choose(0, 24)
        from minute in Gen.Choose(0, 60)
        from second in Gen.Choose(0, 60)
        from digits in Gen.Choose(0, 9)
        from fraction in Gen.Choose(0, int.MaxValue)
        from zone in Gen.Elements("Z", "z", "", "+00:00", "-00:00", "+05:30", "-08:00", "+14:00", "-14:00", "+14:01", "+15:00", "+01:60", "+0100", "+01")
        from separator in Gen.Elements('T', 'T', 'T', 't', ' ')
        select string.Create(CultureInfo.InvariantCulture,
            $"{year:D4}-{month:D2}-{day:D2}{separator}{hour:D2}:{minute:D2}:{second:D2}{(digits > 0 ? "." + fraction.ToString("D10", CultureInfo.InvariantCulture)[..digits] : "")}{zone}");

    [Fact]
    public void Where_the_fast_reader_answers_it_equals_the_general_parser()
    {
        int answered = 0, total = 0;
        var property = Prop.ForAll(Texts.ToArbitrary(), text =>
        {
            total++;
            bool general = DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, Styles, out var expected);
            if (IsoTimestamp.TryParse(Encoding.UTF8.GetBytes(text), out long micros))
            {
                answered++;
                general.Should().BeTrue($"'{text}' was read by the fast reader");
                micros.Should().Be(Timestamps.ToMicros(expected), text);
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(20_000).WithReplay(0x15A, 0x7153), property);
        answered.Should().BeGreaterThan(total / 10, "the generator must reach the fast path often");
    }

    [Theory]
    [InlineData("2026-11-30T00:00:00Z")]
    [InlineData("2026-11-30T12:34:56.7Z")]
    [InlineData("2026-11-30T12:34:56.123456Z")]
    [InlineData("2026-11-30T12:34:56.1234567Z")]
    [InlineData("1969-12-31T23:59:59.9999999Z")]
    [InlineData("2024-02-29T23:59:59+05:30")]
    [InlineData("0001-01-01T00:00:00Z")]
    [InlineData("0001-01-01T05:00:00+05:00")]
    [InlineData("9999-12-31T23:59:59.9999999Z")]
    [InlineData("9999-12-31T23:00:00-00:59")]
    public void The_common_shape_is_read_by_the_fast_reader_as_the_general_parser_reads_it(string text)
    {
        IsoTimestamp.TryParse(Encoding.UTF8.GetBytes(text), out long micros).Should().BeTrue();
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, Styles, out var expected).Should().BeTrue();
        micros.Should().Be(Timestamps.ToMicros(expected));
    }

    [Theory]
    [InlineData("2026-11-30 00:00:00Z")]
    [InlineData("2026-11-30T00:00:00")]
    [InlineData("2026-11-30T00:00:00.12345678Z")]
    [InlineData("2026-11-30T23:59:60Z")]
    [InlineData("2026-02-29T00:00:00Z")]
    [InlineData("2026-11-30T00:00:00+15:00")]
    [InlineData("0001-01-01T00:00:00+01:00")]
    [InlineData("2026-11-30T00:00:00.Z")]
    [InlineData("20261130T000000Z")]
    public void Other_shapes_are_declined_and_left_to_the_general_parser(string text) =>
        IsoTimestamp.TryParse(Encoding.UTF8.GetBytes(text), out _).Should().BeFalse();
}
