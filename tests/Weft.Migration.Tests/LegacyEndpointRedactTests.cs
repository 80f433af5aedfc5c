using FluentAssertions;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>An endpoint's URL reaches API clients (502 bodies, /v1/status) and the dashboard: its credentials must not.</summary>
public sealed class LegacyEndpointRedactTests
{
    [Theory]
    [InlineData("http://svc:s3cret@127.0.0.1:18099/users/{user_id}/sequence?token=TOPSECRET", "http://…@127.0.0.1:18099/users/{user_id}/sequence?token=…")]
    [InlineData("http://127.0.0.1:18099/users/7/sequence", "http://127.0.0.1:18099/users/7/sequence")]
    [InlineData("https://user@host/a?x=1&flag#top", "https://…@host/a?x=…&flag#top")]
    [InlineData("http://host/a/b@c", "http://host/a/b@c")]
    [InlineData("http://u:p@host", "http://…@host")]
    [InlineData("http://svc:a%2Fb%40c@host/u/{user_id}", "http://…@host/u/{user_id}")]
    [InlineData("/relative@x?k=v", "/relative@x?k=…")]
    public void A_URL_loses_its_user_info_and_query_values(string url, string shown)
    {
        LegacyEndpoint.Redact(url).Should().Be(shown);
    }

    [Fact]
    public async Task An_endpoints_errors_and_display_never_carry_its_credentials()
    {
        using var endpoint = new LegacyEndpoint("http://svc:s3cret@127.0.0.1:9/users/{user_id}/sequence?token=TOPSECRET", TimeSpan.FromSeconds(2));

        var fetch = () => endpoint.FetchAsync(7, [], CancellationToken.None);

        var error = (await fetch.Should().ThrowAsync<LegacyEndpointException>()).Which.Message;
        error.Should().Contain("http://…@127.0.0.1:9/users/7/sequence?token=…").And.NotContain("s3cret").And.NotContain("TOPSECRET");
        endpoint.DisplayUrl.Should().NotContain("s3cret").And.NotContain("TOPSECRET");

        // Percent-encoded: decoded, "a%2Fb" became "a/b" and hid the user info from the redaction.
        using var encoded = new LegacyEndpoint("http://svc:a%2Fs3cret%40x@127.0.0.1:9/seq?user={user_id}&token=TOPSECRET", TimeSpan.FromSeconds(2));
        var again = () => encoded.FetchAsync(7, [], CancellationToken.None);
        var message = (await again.Should().ThrowAsync<LegacyEndpointException>()).Which.Message;
        message.Should().NotContain("s3cret").And.NotContain("TOPSECRET").And.Contain("?user=…&token=…").And.Contain("(user 7)", "the id the redaction hid is named");
    }
}
