using System.Text.Json;
using FluentAssertions;
using Weft.Engine.Configuration;
using Weft.Serving.Security;
using Xunit;

namespace Weft.Serving.Tests;

public sealed class OptionsAndKeysTests
{
    private static ServingOptions Parse(string serving)
    {
        using var doc = JsonDocument.Parse($$"""{ "signals": "s", "serving": {{serving}} }""");
        return ServingOptions.FromJson(doc.RootElement, "/x/weft.json");
    }

    [Fact]
    public void Options_left_out_take_their_documented_defaults()
    {
        Parse("{}").Should().Be(ServingOptions.Default);
        var o = ServingOptions.Default;
        (o.Urls, o.MaxRequestBytes, o.MaxEventsPerRequest, o.MaxUsersPerRequest, o.MaxLimit, o.CacheUsers, o.Stream)
            .Should().Be(("http://127.0.0.1:8080", 1_048_576, 10_000, 1_000, 16_384, 100_000, ServingStreamMode.Auto));
        (o.HistoryHorizon, o.HistoryRefresh, o.StreamMaxWait, o.StreamFlushInterval, o.CacheJsonBytes)
            .Should().Be((TimeSpan.FromDays(1), TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(5), 268_435_456L));
        Parse("""{ "max_limit": 500, "history_horizon": "6h", "stream": "off", "cache_users": 0 }""")
            .Should().Be(o with { MaxLimit = 500, HistoryHorizon = TimeSpan.FromHours(6), Stream = ServingStreamMode.Off, CacheUsers = 0 });
    }

    [Fact]
    public void Every_invalid_option_is_reported_with_its_JSON_path_and_value()
    {
        var act = () => Parse("""{ "max_limit": 0, "max_request_bytes": "big", "history_refresh": "soon", "stream": "on", "cache_size": 3, "max_users_per_request": -1 }""");

        var problems = act.Should().Throw<ConfigException>().Which.Problems.Select(p => p.ToString()).ToList();
        problems.Should().Contain(p => p.StartsWith("$.serving.max_request_bytes: 'max_request_bytes' must be an integer, got \"big\"", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("$.serving.history_refresh: 'history_refresh' must be a duration, got \"soon\"", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("$.serving.stream: 'stream' must be \"auto\" or \"off\", got \"on\"", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("$.serving.cache_size: unknown option 'cache_size'", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("$.serving.max_limit: serving.max_limit was 0; it must be at least 1", StringComparison.Ordinal), "a range problem is reported with the type problems, not after they are fixed");
        problems.Should().Contain(p => p.StartsWith("$.serving.max_users_per_request: serving.max_users_per_request was -1", StringComparison.Ordinal));
        problems.Should().HaveCount(6, "one problem per bad option: those with a type problem are not range-checked on their default");

        var ranges = () => Parse("""{ "max_limit": 0, "max_users_per_request": -1, "history_refresh": "0ms", "max_request_bytes": 2147483647 }""");
        ranges.Should().Throw<ConfigException>().Which.Problems.Select(p => p.ToString())
            .Should().Contain(p => p.StartsWith("$.serving.max_limit: serving.max_limit was 0; it must be at least 1", StringComparison.Ordinal))
            .And.Contain(p => p.StartsWith("$.serving.max_request_bytes: serving.max_request_bytes was 2147483647; it must be between 1024 and 1073741824", StringComparison.Ordinal), "a body that size cannot be held, and every POST failed")
            .And.Contain(p => p.StartsWith("$.serving.max_users_per_request: serving.max_users_per_request was -1; it must be at least 1", StringComparison.Ordinal));
        var huge = () => Parse("""{ "max_limit": 3000000000, "cache_json_bytes": 1e30 }""");
        huge.Should().Throw<ConfigException>().Which.Problems.Select(p => p.ToString())
            .Should().Contain(p => p.StartsWith("$.serving.max_limit: 'max_limit' must be a 32-bit integer, got 3000000000", StringComparison.Ordinal), "3000000000 is an integer, just too large")
            .And.Contain(p => p.StartsWith("$.serving.cache_json_bytes: 'cache_json_bytes' must be a 64-bit integer, got 1e30", StringComparison.Ordinal));
        // Addresses Kestrel cannot listen on as given: it threw from deep inside start-up, and weft serve printed its stack trace.
        foreach (var urls in new[] { "http://127.0.0.1:8080/v1", "https://127.0.0.1:8443", "ftp://127.0.0.1:21", "http://127.0.0.1:8080;garbage", ";", "http://my-host:8080" })
        {
            var listen = () => Parse($$"""{ "urls": "{{urls}}" }""");
            listen.Should().Throw<ConfigException>().Which.Problems.Select(p => p.ToString())
                .Should().ContainSingle().Which.Should().StartWith($"$.serving.urls: serving.urls was {urls}; it must be absolute http URLs without a path", urls);
        }

        Parse("""{ "urls": "http://127.0.0.1:8080/;http://[::1]:8081" }""").Urls.Should().Be("http://127.0.0.1:8080/;http://[::1]:8081", "a lone '/' is no path");
        Parse("""{ "urls": "http://localhost:8080;http://0.0.0.0:8081;http://[::]:8082" }""").Urls.Should().Be("http://localhost:8080;http://0.0.0.0:8081;http://[::]:8082", "localhost is loopback; 0.0.0.0 and [::] ask for every interface");
        var direct = () => (ServingOptions.Default with { MaxEventsPerRequest = 0 }).Validate();
        direct.Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("max_events_per_request");
    }

    [Fact]
    public void A_key_authenticates_its_tenant_only_by_its_SHA256_digest()
    {
        var keys = new ApiKeys([
            new TenantConfig("a", [ApiKeys.Digest("key-a1"), ApiKeys.Digest("key-a2")]),
            new TenantConfig("b", [ApiKeys.Digest("key-b")]),
        ]);

        keys.Authenticate("key-a1").Should().Be("a");
        keys.Authenticate("key-a2").Should().Be("a");
        keys.Authenticate("key-b").Should().Be("b");
        keys.Authenticate("key-b ").Should().BeNull();
        keys.Authenticate(ApiKeys.Digest("key-b")).Should().BeNull("the digest itself is not a key");
        keys.Authenticate("").Should().BeNull();
        keys.Authenticate(null).Should().BeNull();
        ApiKeys.Digest("abc").Should().Be("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
