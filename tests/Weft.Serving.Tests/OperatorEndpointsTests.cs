using System.Net;
using System.Net.Sockets;
using FluentAssertions;
using Weft.Engine.Observability;
using Weft.Serving.Hosting;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>The operator endpoints <c>weft stream --metrics-urls</c> serves: /metrics and /healthz.</summary>
public sealed class OperatorEndpointsTests
{
    [Fact]
    public async Task Metrics_render_the_registry_after_the_scrape_hook_and_health_follows_the_problem_reported()
    {
        var metrics = new WeftMetrics();
        metrics.Count("weft_test_events_total", "Events", 3, ("signal", "clicks"));
        int scrapes = 0;
        string? problem = null;
        await using var endpoints = await OperatorEndpoints.StartAsync("http://127.0.0.1:0", metrics, () => problem,
            () => metrics.Gauge("weft_test_scrapes", "Scrapes", ++scrapes), CancellationToken.None);
        endpoints.Urls.Should().ContainSingle().Which.Should().MatchRegex(@"^http://127\.0\.0\.1:\d+$");
        string origin = endpoints.Urls[0];
        using var client = new HttpClient();

        var first = await client.GetStringAsync(origin + "/metrics");
        var second = await client.GetStringAsync(origin + "/metrics");

        first.Should().Contain("weft_test_events_total{signal=\"clicks\"} 3").And.Contain("weft_test_scrapes 1");
        second.Should().Contain("weft_test_scrapes 2", "the hook runs before every scrape");

        var healthy = await client.GetAsync(origin + "/healthz");
        healthy.StatusCode.Should().Be(HttpStatusCode.OK);
        healthy.Headers.GetValues("X-Content-Type-Options").Should().Equal("nosniff");
        healthy.Headers.GetValues("X-Frame-Options").Should().Equal("DENY");
        (await healthy.Content.ReadAsStringAsync()).Should().Be("ok");

        problem = "the stream loop has not finished a step for 61 s";
        var stuck = await client.GetAsync(origin + "/healthz");
        stuck.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        (await stuck.Content.ReadAsStringAsync()).Should().Be(problem);
        using var probe = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, origin + "/healthz"));
        probe.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, "a load balancer probing with HEAD hears the same");
        (await probe.Content.ReadAsByteArrayAsync()).Should().BeEmpty();

        (await client.GetAsync(origin + "/v1/signals")).StatusCode.Should().Be(HttpStatusCode.NotFound, "no sequence data is served here");
    }

    [Theory]
    [InlineData("127.0.0.1:9464", "'127.0.0.1:9464' is not an http:// address")]
    [InlineData("https://127.0.0.1:9464", "'https://127.0.0.1:9464' is not an http:// address")]
    [InlineData(" ; ", "no address to listen on")]
    [InlineData("http://127.0.0.1:9464/metrics", "'http://127.0.0.1:9464/metrics' is not an http:// address to listen on")] // Kestrel threw its own
    [InlineData("http://127.0.0.1:9464?x=1", "'http://127.0.0.1:9464?x=1' is not an http:// address")]
    [InlineData("http://127.0.0.1:9464;garbage", "'garbage' is not an http:// address")]
    [InlineData("http://metrics.example:9464", "'http://metrics.example:9464' is not an http:// address to listen on: an IP address or localhost (another host name would listen on every interface")] // Kestrel would bind every interface
    public async Task An_address_that_is_not_an_http_url_is_refused_naming_it(string urls, string message)
    {
        var start = async () => await OperatorEndpoints.StartAsync(urls, new WeftMetrics(), () => null, null, CancellationToken.None);

        (await start.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain(message);
    }

    [Fact]
    public async Task An_address_in_use_fails_with_an_IOException_naming_it()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        string urls = $"http://127.0.0.1:{port}";

        var start = async () => await OperatorEndpoints.StartAsync(urls, new WeftMetrics(), () => null, null, CancellationToken.None);

        (await start.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain(urls);
    }
}
