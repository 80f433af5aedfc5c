using System.Net;
using System.Text;
using FluentAssertions;
using Microsoft.Playwright;
using Weft.Definitions;
using Weft.Tests.Legacy;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace Weft.Serving.Tests;

/// <summary>The dashboard page in real headless Chromium (Debian's, driven by Playwright), against a running server.</summary>
public sealed class DashboardTests
{
    private const string Chromium = "/usr/bin/chromium";

    // The page polls every 2 s and CI's two cores are busy: Playwright's default 5 s for each
    // expectation is a poll or two on a loaded machine.
    public DashboardTests() => SetDefaultExpectTimeout(20_000);

    [Fact]
    public async Task The_dashboard_shows_the_tenants_signals_the_stream_freshness_the_migration_and_request_latency()
    {
        File.Exists(Chromium).Should().BeTrue($"{Chromium} is needed (Debian package chromium; ./test.sh installs it)");
        await using var legacy = await LegacyServer.StartAsync();
        await using var world = new ServingWorld(serving: """{ "urls": "http://127.0.0.1:0", "history_refresh": "200ms", "history_horizon": "3d", "stream_max_wait": "10ms", "stream_flush_interval": "100ms" }""");
        // click split 10 % to Weft for the ranker; save in shadow (legacy serves it to everyone).
        await HybridSequenceTests.SetLegacyAsync(world, $$"""{ "endpoint": "{{legacy.Url}}", "endpoint_timeout": "20s" }""");
        await HybridSequenceTests.CutOverAsync(world, "click", "ranker", 10);
        await HybridSequenceTests.ShadowAsync(world, "save");
        await using (var store = await Weft.Migration.MigrationStore.OpenAsync(Path.Combine(world.Root, "migration.db")))
        {
            await store.RecordOutcomeAsync("engagement", "click", "ranker", new Weft.Migration.EvidenceInput(Weft.Migration.MigrationStore.OutcomeKind, true, "ranker's clicks held", "{}"), "test");
            // A sequential test of another consumer's split that needs more users: neither passed nor failed.
            await store.RecordOutcomeAsync("engagement", "click", "feed", new Weft.Migration.EvidenceInput(Weft.Migration.MigrationStore.OutcomeKind, false, "feed: keep collecting", """{"sequential":true,"undecided":true}"""), "test");
        }

        await world.StartAsync();
        using var client = world.Client();
        string line = $$"""{"event_id":"d1","user_id":3,"event_type":"save","event_time":"{{Timestamps.Format(ServingWorld.Now - ServingWorld.Hour)}}","item_id":2}""";
        (await client.PostAsync("v1/events", new StringContent(line, Encoding.UTF8, "application/x-ndjson"))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        for (int i = 0; i < 200; i++)
        {
            var body = await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/3/sequence"));
            if (body.GetProperty("length").GetInt32() == 1)
            {
                break;
            }

            await Task.Delay(50);
        }

        (await client.GetAsync(HybridSequenceTests.Url(3, "ranker"))).StatusCode.Should().Be(HttpStatusCode.OK);

        await using var browser = await Browser.OpenAsync();
        var (page, errors) = (browser.Page, browser.Errors);

        await page.GotoAsync(world.BaseAddress.ToString());

        await Expect(page.Locator("h1")).ToHaveTextAsync("Weft serving");
        await Expect(page.Locator("#signals")).ToContainTextAsync("enter an API key");
        await Expect(page.Locator("#routes")).ToContainTextAsync("/v1/signals/{signal}/users/{user_id}/sequence");
        await Expect(page.Locator("#stream-running")).ToHaveTextAsync("yes");
        await Expect(page.Locator("#stream-records")).ToHaveTextAsync("1");
        await Expect(page.Locator("#stream-archive")).ToHaveTextAsync("1 (1)"); // records (files) the flushes committed to the raw archive
        var fresh = page.Locator("#freshness tr").Filter(new LocatorFilterOptions { HasText = "save" });
        await Expect(fresh.Locator("td")).ToHaveCountAsync(6);
        await Expect(fresh.Locator("td").Nth(0)).ToHaveTextAsync("engagement");
        await Expect(fresh.Locator("td").Nth(2)).ToHaveTextAsync("1"); // the one event streamed, of type save
        await Expect(page.Locator("#migration")).ToContainTextAsync("enter an API key");

        await page.FillAsync("#api-key", "not-a-key");
        await page.DispatchEventAsync("#api-key", "change");
        await Expect(page.Locator("#signals")).ToContainTextAsync("that API key is not valid");

        await page.FillAsync("#api-key", ServingWorld.HomeKey);
        await page.DispatchEventAsync("#api-key", "change");
        var row = page.Locator("#signals tr").Filter(new LocatorFilterOptions { HasText = "engagement" });
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row).ToContainTextAsync(SignalJsonWriter.Fingerprint(world.Signal)[..12]);
        await Expect(page.Locator("#signals")).Not.ToContainTextAsync("likes");

        var click = page.Locator("#migration tr").Filter(new LocatorFilterOptions { HasText = "click" });
        await Expect(click.Locator("td").Nth(2)).ToHaveTextAsync("cutting-over");
        await Expect(click.Locator("td").Nth(4)).ToHaveTextAsync("ranker: 10%");
        await Expect(click.Locator("td").Nth(5)).ToHaveTextAsync("shadow passed, comparison passed, A/B passed, online feed undecided, online ranker passed");
        var save = page.Locator("#migration tr").Filter(new LocatorFilterOptions { HasText = "save" });
        await Expect(save.Locator("td").Nth(2)).ToHaveTextAsync("shadow");
        await Expect(save.Locator("td").Nth(4)).ToHaveTextAsync("legacy serves every consumer");
        var endpoint = page.Locator("#legacy tr");
        await Expect(endpoint.Locator("td").Nth(1)).ToHaveTextAsync(legacy.Url);
        await Expect(endpoint.Locator("td").Nth(3)).ToHaveTextAsync("closed");
        await Expect(endpoint.Locator("td").Nth(4)).ToHaveTextAsync("1"); // the hybrid read's answer

        legacy.FailWith = 503;
        for (int i = 0; i < Weft.Migration.LegacyEndpoint.OpenAfter; i++)
        {
            (await client.GetAsync(HybridSequenceTests.Url(3, "ranker"))).StatusCode.Should().Be(HttpStatusCode.BadGateway);
        }

        var slow = new LocatorAssertionsToHaveTextOptions { Timeout = 20_000 };
        await Expect(endpoint.Locator("td").Nth(3)).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^open until \\d\\d:\\d\\d:\\d\\d UTC \\(5 failures\\)$"), slow);
        await Expect(endpoint.Locator("td").Nth(5)).ToHaveTextAsync("5", slow);
        var screenshot = Path.Combine(world.Root, "dashboard.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        new FileInfo(screenshot).Length.Should().BeGreaterThan(10_000);
        if (Environment.GetEnvironmentVariable("WEFT_DASHBOARD_SCREENSHOT") is { Length: > 0 } keep)
        {
            File.Copy(screenshot, keep, overwrite: true);
        }

        errors.Should().BeEmpty();
    }

    /// <summary>
    /// A server that stops answering: the page says its figures are stale, since when and why, and takes
    /// back the green "running" (it kept both as they were, a stopped server looking healthy), and comes
    /// back by itself. An answer with an error status is a failure too, not an empty server.
    /// </summary>
    [Fact]
    public async Task A_server_that_stops_answering_leaves_the_page_marked_stale_not_green()
    {
        await using var world = new ServingWorld(serving: """{ "urls": "http://127.0.0.1:0", "stream_max_wait": "10ms", "stream_flush_interval": "100ms" }""");
        await world.StartAsync();

        await using var browser = await Browser.OpenAsync();
        var (page, errors) = (browser.Page, browser.Errors);
        await page.GotoAsync(world.BaseAddress.ToString());
        await Expect(page.Locator("#stream-running")).ToHaveTextAsync("yes");
        await Expect(page.Locator("#updated")).ToContainTextAsync("updated ");
        await Expect(page.Locator("#dead-letters")).ToContainTextAsync("none since this process started");

        // /metrics answering 502, as a proxy in front of a sick server does.
        await page.RouteAsync("**/metrics", route => route.FulfillAsync(new RouteFulfillOptions { Status = 502, Body = "<html>bad gateway</html>" }));
        var slow = new LocatorAssertionsToContainTextOptions { Timeout = 15_000 };
        await Expect(page.Locator("#updated")).ToContainTextAsync("STALE since", slow);
        await Expect(page.Locator("#updated")).ToContainTextAsync("/metrics: HTTP 502");
        await Expect(page.Locator("#stream-running")).ToHaveTextAsync("unknown");
        await Expect(page.Locator("body")).ToHaveClassAsync("stale");

        await page.UnrouteAsync("**/metrics");
        await Expect(page.Locator("#updated")).ToContainTextAsync("updated ", slow);
        await Expect(page.Locator("#stream-running")).ToHaveTextAsync("yes");

        // With a key: each route's 4xx/5xx answers; and /v1/status failing fast while /metrics answers is
        // stale too, the metrics' green not painted over the failure.
        using (var client = world.Client())
        {
            (await client.GetAsync("v1/signals/nope/users/1/sequence")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        }

        await page.FillAsync("#api-key", ServingWorld.HomeKey);
        await page.DispatchEventAsync("#api-key", "change");
        await Expect(page.Locator("#signals")).ToContainTextAsync("engagement", slow);
        var sequenceRoute = page.Locator("#routes tr").Filter(new LocatorFilterOptions { HasText = "/v1/signals/{signal}/users/{user_id}/sequence" });
        await Expect(sequenceRoute.Locator("td").Nth(6)).ToHaveTextAsync("1 / 0", new LocatorAssertionsToHaveTextOptions { Timeout = 15_000 });

        // Cells are kept across polls and changed in place: a selection being copied and a tooltip
        // being read survive the next poll (every table was rebuilt each poll), and a count still moves.
        var fingerprint = page.Locator("#signals tr").Filter(new LocatorFilterOptions { HasText = "engagement" }).Locator("td").Nth(2);
        await fingerprint.EvaluateAsync("td => { td.dataset.kept = 'yes'; const r = document.createRange(); r.selectNodeContents(td); getSelection().removeAllRanges(); getSelection().addRange(r); }");
        var statusCount = page.Locator("#routes tr").Filter(new LocatorFilterOptions { HasText = "/v1/status" }).Locator("td").Nth(2);
        await Expect(statusCount).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^\\d+$"), new LocatorAssertionsToHaveTextOptions { Timeout = 15_000 });
        await statusCount.EvaluateAsync("td => td.dataset.kept = 'yes'");
        string countBefore = (await statusCount.TextContentAsync())!;
        await Expect(statusCount).Not.ToHaveTextAsync(countBefore, new LocatorAssertionsToHaveTextOptions { Timeout = 15_000 });
        await Expect(statusCount).ToHaveAttributeAsync("data-kept", "yes");
        await Expect(fingerprint).ToHaveAttributeAsync("data-kept", "yes");
        (await page.EvaluateAsync<string>("() => getSelection().toString()")).Should().Be(SignalJsonWriter.Fingerprint(world.Signal)[..12]);
        await page.RouteAsync("**/v1/status", route => route.FulfillAsync(new RouteFulfillOptions { Status = 503, ContentType = "application/json", Body = "{\"error\":\"the online store is unavailable for the moment; retry\"}" }));
        await Expect(page.Locator("#updated")).ToContainTextAsync("/v1/status: HTTP 503 (the online store is unavailable for the moment; retry)", slow);
        await page.WaitForTimeoutAsync(4_500); // two more polls
        await Expect(page.Locator("#stream-running")).ToHaveTextAsync("unknown");
        await page.UnrouteAsync("**/v1/status");
        await Expect(page.Locator("#stream-running")).ToHaveTextAsync("yes", new LocatorAssertionsToHaveTextOptions { Timeout = 15_000 });

        await world.Server.DisposeAsync();
        await Expect(page.Locator("#updated")).ToContainTextAsync("STALE since", slow);
        await Expect(page.Locator("#stream-running")).ToHaveTextAsync("unknown");
        errors.Should().BeEmpty();
    }

    /// <summary>
    /// The last minute's percentiles are taken from the buckets' growth since a poll up to a minute ago
    /// (a slow minute was hidden behind every fast request since the process started), the since-start
    /// p99 from the buckets as they are, and a server restarted under the page (counts gone down) counts
    /// from its start. <c>/metrics</c> is answered by the test with known buckets, so each figure follows
    /// from Prometheus' linear interpolation inside a bucket.
    /// </summary>
    [Fact]
    public async Task Request_percentiles_of_the_last_minute_follow_the_buckets_growth_not_the_whole_process()
    {
        await using var world = new ServingWorld(serving: """{ "urls": "http://127.0.0.1:0", "stream_max_wait": "10ms", "stream_flush_interval": "100ms" }""");
        await world.StartAsync();
        await using var browser = await Browser.OpenAsync();
        var page = browser.Page;

        static string Buckets(long fast, long slow) => string.Join('\n',
            "# TYPE weft_http_request_duration_seconds histogram",
            $$"""weft_http_request_duration_seconds_bucket{route="/v1/x",method="GET",le="0.005"} {{fast}}""",
            $$"""weft_http_request_duration_seconds_bucket{route="/v1/x",method="GET",le="1"} {{fast}}""",
            $$"""weft_http_request_duration_seconds_bucket{route="/v1/x",method="GET",le="2.5"} {{fast + slow}}""",
            $$"""weft_http_request_duration_seconds_bucket{route="/v1/x",method="GET",le="+Inf"} {{fast + slow}}""",
            $$"""weft_http_request_duration_seconds_count{route="/v1/x",method="GET"} {{fast + slow}}""",
            "");
        string body = Buckets(fast: 100, slow: 0);
        await page.RouteAsync("**/metrics", route => route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "text/plain", Body = body }));
        await page.GotoAsync(world.BaseAddress.ToString());
        var row = page.Locator("#routes tr").Filter(new LocatorFilterOptions { HasText = "/v1/x" }).Locator("td");
        await Expect(row.Nth(2)).ToHaveTextAsync("100");

        // 100 more requests, all between 1 s and 2.5 s: the last minute holds only them.
        body = Buckets(fast: 100, slow: 100);
        var slow = new LocatorAssertionsToHaveTextOptions { Timeout = 15_000 };
        await Expect(row.Nth(2)).ToHaveTextAsync("200", slow);
        await Expect(row.Nth(3)).ToHaveTextAsync(Ms(1 + (2.5 - 1) * 50 / 100), slow); // p50 of the minute: rank 50 of the 100 slow ones
        await Expect(row.Nth(4)).ToHaveTextAsync(Ms(1 + (2.5 - 1) * 99 / 100));
        await Expect(row.Nth(5)).ToHaveTextAsync(Ms(1 + (2.5 - 1) * (198 - 100) / 100.0)); // p99 since start: rank 198 of 200

        // Restarted: 10 fast requests since, fewer than the page saw before.
        body = Buckets(fast: 10, slow: 0);
        await Expect(row.Nth(2)).ToHaveTextAsync("10", slow);
        await Expect(row.Nth(3)).ToHaveTextAsync(Ms(0.005 * 5 / 10), slow);
        await Expect(row.Nth(5)).ToHaveTextAsync(Ms(0.005 * 9.9 / 10));
        browser.Errors.Should().BeEmpty();

        static string Ms(double seconds) => (seconds * 1000).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Debian's Chromium through Playwright, one page, and the script errors the page raises.</summary>
    private sealed class Browser : IAsyncDisposable
    {
        private readonly IPlaywright _playwright;
        private readonly IBrowser _browser;

        private Browser(IPlaywright playwright, IBrowser browser, IPage page)
        {
            (_playwright, _browser, Page) = (playwright, browser, page);
            page.PageError += (_, e) => Errors.Add(e);
        }

        public IPage Page { get; }

        public List<string> Errors { get; } = [];

        public static async Task<Browser> OpenAsync()
        {
            var playwright = await Playwright.CreateAsync();
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = Chromium,
                Headless = true,
                Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            });
            return new Browser(playwright, browser, await browser.NewPageAsync());
        }

        public async ValueTask DisposeAsync()
        {
            await _browser.DisposeAsync();
            _playwright.Dispose();
        }
    }
}
