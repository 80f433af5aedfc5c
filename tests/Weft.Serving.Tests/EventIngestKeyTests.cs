using System.Text;
using FluentAssertions;
using Weft.Serving.Http;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>
/// <c>POST /v1/events</c> keys each event in the embedded log by its user_id as the parser reads it,
/// in the decimal text the stream checks keys against: spellings of one user get one key.
/// </summary>
public sealed class EventIngestKeyTests
{
    [Theory]
    [InlineData("7", "7")]
    [InlineData("\"007\"", "7")]
    [InlineData("\" 12 \"", "12")]
    [InlineData("-3", "-3")]
    [InlineData("\"+4\"", "4")]
    [InlineData("9223372036854775807", "9223372036854775807")]
    [InlineData("1e3", "1e3")] // not an integer the parser reads (a dead letter later): keyed as sent
    [InlineData("\"abc\"", "abc")]
    public void An_event_is_keyed_by_its_user_id_as_decimal_text(string userJson, string key)
    {
        var body = Encoding.UTF8.GetBytes($$"""[{"event_id":"e1","user_id":{{userJson}},"event_type":"click","event_time":"2026-11-20T00:00:00Z"}]""");

        var error = EventIngest.TryParse(body, "application/json", "default", new HashSet<string>(StringComparer.Ordinal) { "click" }, 10, out var records);

        error.Should().BeNull();
        records.Should().ContainSingle();
        Encoding.UTF8.GetString(records[0].Key).Should().Be(key);
    }
}
