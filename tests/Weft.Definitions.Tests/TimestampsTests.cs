using FluentAssertions;
using Xunit;

namespace Weft.Definitions.Tests;

/// <summary>Instants users type: ISO 8601 only, UTC unless an offset says otherwise.</summary>
public sealed class TimestampsTests
{
    [Theory]
    [InlineData("2026-11-05", "2026-11-05T00:00:00.000000Z")]
    [InlineData("2026-11-05T06:30:00Z", "2026-11-05T06:30:00.000000Z")]
    [InlineData("2026-11-05T06:30:00", "2026-11-05T06:30:00.000000Z")]
    [InlineData("2026-11-05 06:30:00.123456Z", "2026-11-05T06:30:00.123456Z")]
    [InlineData("2026-11-05T08:30:00+02:00", "2026-11-05T06:30:00.000000Z")]
    [InlineData("2026-11-05T06:30:00.5-01:00", "2026-11-05T07:30:00.500000Z")]
    public void ISO_8601_dates_and_times_are_instants_in_UTC(string text, string expected)
    {
        Timestamps.TryParseInstant(text, out long micros).Should().BeTrue();
        Timestamps.Format(micros).Should().Be(expected);
    }

    [Theory]
    [InlineData("11/05/2026")]
    [InlineData("05.11.2026")]
    [InlineData("Thu, 05 Nov 2026 00:00:00 GMT")]
    [InlineData("2026-11-5")]
    [InlineData("2026-13-05")]
    [InlineData("2026-11-05X06:30")]
    [InlineData("yesterday")]
    [InlineData("")]
    [InlineData(null)]
    public void Other_forms_are_not_instants(string? text)
    {
        Timestamps.TryParseInstant(text, out _).Should().BeFalse();
    }
}
