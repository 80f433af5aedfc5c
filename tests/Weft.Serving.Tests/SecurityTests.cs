using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Streaming.Embedded;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>
/// <c>weft serve</c> as an attacker or a careless client on the network hits it: keys, tenants, bodies
/// and framing, values quoted back, and what the public endpoints tell.
/// </summary>
public sealed class SecurityTests
{
    private static string Event(string id, long user, string type, long time, string? extra = null) =>
        $$"""{"event_id":"{{id}}","user_id":{{user}},"event_type":"{{type}}","event_time":"{{Timestamps.Format(time)}}","item_id":7{{extra}}}""";

    /// <summary>Sends <paramref name="request"/> as it is on a new connection; the status line and the rest of what came back.</summary>
    private static async Task<string> RawAsync(Uri server, string request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        await stream.FlushAsync();
        using var received = new MemoryStream();
        var buffer = new byte[8192];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                await received.WriteAsync(buffer.AsMemory(0, read));
                string text = Encoding.UTF8.GetString(received.ToArray());
                int head = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (head >= 0 && text.Contains("Content-Length: ", StringComparison.OrdinalIgnoreCase))
                {
                    int at = text.IndexOf("Content-Length: ", StringComparison.OrdinalIgnoreCase) + 16;
                    int length = int.Parse(text[at..text.IndexOf('\r', at)], System.Globalization.CultureInfo.InvariantCulture);
                    if (received.Length >= head + 4 + length)
                    {
                        break;
                    }
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // what came back before the server closed or went quiet
        }

        return Encoding.UTF8.GetString(received.ToArray());
    }

    [Fact]
    public async Task A_body_the_server_cannot_read_gets_400_not_500()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        var server = world.BaseAddress;

        // A malformed chunk size: Kestrel's BadHttpRequestException used to fall into the catch-all (500,
        // and an error with a stack trace in the server's log for every such request).
        foreach (var path in new[] { "/v1/events", "/v1/signals/engagement/sequences" })
        {
            string answer = await RawAsync(server,
                $"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ServingWorld.HomeKey}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n");
            answer.Should().StartWith("HTTP/1.1 400 ", path).And.Contain("the request body could not be read").And.NotContain("internal error");
        }

        using var client = world.Client();
        string metrics = await client.GetStringAsync("metrics");
        metrics.Should().NotContain("status=\"500\"");
    }

    [Fact]
    public async Task A_faulted_log_does_not_tell_clients_the_servers_paths()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;
        (await client.PostAsync("v1/events", new StringContent(Event("f1", 42, "save", t)))).StatusCode.Should().Be(HttpStatusCode.Accepted);

        // As EmbeddedLog faults on a failed write or fsync: its folder and segment, and the system's own message with a path.
        var log = world.Server.State.Stream!.Log;
        string segment = Path.Combine(log.Location, "00000000000000000000.seg");
        var fault = new IOException(
            $"The embedded log at '{log.Location}' failed to write or fsync segment '{segment}'; the records of the failed appends may or may not be on disk. The log refuses appends until it is reopened, which runs recovery.",
            new IOException($"No space left on device : '{segment}'"));
        typeof(EmbeddedLog).GetField("_fault", BindingFlags.NonPublic | BindingFlags.Instance)!.SetValue(log, fault);

        var post = await client.PostAsync("v1/events", new StringContent(Event("f2", 42, "save", t)));
        post.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        string error = (await ServingWorld.JsonAsync(post)).GetProperty("error").GetString()!;
        error.Should().StartWith("the embedded log refuses appends").And.Contain("restart weft serve").And.Contain("IOException")
            .And.NotContain(world.Root, "a tenant learns nothing of the server's paths");

        using var anonymous = world.Client(key: null);
        var health = await anonymous.GetAsync("healthz");
        health.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        string shown = await health.Content.ReadAsStringAsync();
        shown.Should().StartWith("the embedded log refuses appends").And.NotContain(world.Root, "/healthz answers anyone");
        (await client.GetStringAsync("metrics")).Should().Contain("weft_embedded_log_faulted 1");
    }

    [Fact]
    public async Task Values_quoted_back_in_errors_are_cut_short()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;
        string big = new('x', 20_000);

        async Task<string> Error(HttpResponseMessage response)
        {
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
            return (await ServingWorld.JsonAsync(response)).GetProperty("error").GetString()!;
        }

        var errors = new List<string>
        {
            await Error(await client.PostAsync("v1/events", new StringContent(Event("q1", 1, "save", t, $",\"tenant\":\"{big}\"")))),
            await Error(await client.PostAsync("v1/signals/engagement/sequences", new StringContent($$"""{"user_ids":["{{big}}"]}"""))),
            await Error(await client.PostAsync("v1/signals/engagement/sequences", new StringContent($$"""{"user_ids":[1],"limit":1{{new string('0', 5_000)}}.5}"""))),
            await Error(await client.PostAsync("v1/signals/engagement/sequences", new StringContent($$"""{"user_ids":[1],"as_of":["{{big}}"]}"""))),
            await Error(await client.PostAsync("v1/signals/engagement/sequences", new StringContent($$"""{"user_ids":[1],"consumer":["{{big}}"]}"""))),
            await Error(await client.PostAsync("v1/signals/engagement/sequences", new StringContent($$"""{"user_ids":[1],"{{big}}":1}"""))),
            await Error(await client.PostAsync("v1/signals/engagement/sequences", new StringContent($$"""{"user_ids":[1],"{{big}}":1,"{{big}}":1}"""))),
            await Error(await client.GetAsync($"v1/signals/engagement/users/1/sequence?lookback=1{new string('0', 4_000)}d")),
        };

        errors.Should().AllSatisfy(e => e.Length.Should().BeLessThan(300, e[..Math.Min(e.Length, 120)]));
    }

    /// <summary>
    /// A value cut at 64 characters is cut between characters, not inside one: an emoji straddling the cut
    /// was quoted back as U+FFFD (its lone high surrogate), a character the client never sent.
    /// </summary>
    [Fact]
    public async Task A_value_cut_short_in_an_error_keeps_whole_characters()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        string value = new string('x', 63) + "\U0001F600" + "tail";

        foreach (var url in new[]
        {
            "v1/signals/engagement/users/1/sequence?limit=" + Uri.EscapeDataString(value),
            "v1/signals/engagement/users/1/sequence?" + Uri.EscapeDataString(value) + "=1",
            "v1/signals/" + Uri.EscapeDataString(value) + "/users/1/sequence",
        })
        {
            var body = await ServingWorld.JsonAsync(await client.GetAsync(url));
            foreach (var field in body.EnumerateObject())
            {
                field.Value.GetString().Should().NotContain("\uFFFD", url).And.NotContain("tail", "the value is cut at 64 characters");
            }

            body.GetProperty("error").GetString().Should().Contain(new string('x', 63) + "…", url);
        }
    }

    /// <summary>
    /// Every answer, the dashboard's and an error's alike, tells browsers to take it as the type it is
    /// sent as and not to show it in another site's frame.
    /// </summary>
    [Fact]
    public async Task Every_answer_forbids_sniffing_and_framing()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var home = world.Client();
        using var anonymous = world.Client(key: null);
        var answers = new[]
        {
            await anonymous.GetAsync(""), // the dashboard
            await anonymous.GetAsync("healthz"),
            await anonymous.GetAsync("v1/signals"), // 401
            await home.GetAsync("v1/signals/engagement/users/1/sequence"),
            await home.GetAsync("v1/signals/engagement/users/1/sequence?limit=%3Cscript%3E"), // 400 quoting the value
            await home.GetAsync("no/such/route"),
            await home.PostAsync("v1/events", new StringContent("{not json")),
        };
        answers.Select(a => (int)a.StatusCode).Should().Equal(200, 200, 401, 200, 400, 404, 400);
        foreach (var answer in answers)
        {
            answer.Headers.GetValues("X-Content-Type-Options").Should().Equal(["nosniff"], answer.RequestMessage!.RequestUri!.ToString());
            answer.Headers.GetValues("X-Frame-Options").Should().Equal(["DENY"], answer.RequestMessage!.RequestUri!.ToString());
        }
    }

    [Theory]
    [InlineData("/srv/weft", "/srv/weft/lake/raw/stream", "lake/raw/stream")]
    [InlineData("/srv/weft", "/srv/weft/log", "log")]
    [InlineData("/srv/weft", "/var/lib/weft/stream/", "…/stream")]
    [InlineData("/srv/weft", "/srv/other", "…/other")]
    [InlineData("/srv/weft", "/srv", "…/srv")]
    public void Status_paths_are_shown_relative_to_the_configs_folder_and_never_whole_outside_it(string folder, string path, string shown) =>
        Weft.Serving.Http.ServingEndpoints.Shown(folder, path).Should().Be(shown);

    /// <summary>What held: each of these was tried and answered as documented (no bypass, no 500, nothing of another tenant).</summary>
    [Fact]
    public async Task Keys_methods_and_odd_values_hold()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        long t = ServingWorld.Now - ServingWorld.Hour;
        const string read = "v1/signals/engagement/users/1/sequence";
        using var anonymous = world.Client(key: null);

        async Task<HttpStatusCode> Send(HttpMethod method, string url, Action<HttpRequestHeaders>? headers = null)
        {
            using var request = new HttpRequestMessage(method, url);
            headers?.Invoke(request.Headers);
            return (await anonymous.SendAsync(request)).StatusCode;
        }

        // Keys: empty, blank, in the query, duplicated, another scheme, another tenant's.
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("Authorization", "Bearer "))).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("Authorization", "Bearer  \t "))).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("X-Api-Key", " "))).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Get, $"{read}?api_key={ServingWorld.HomeKey}")).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Get, $"{read}?key={ServingWorld.HomeKey}&access_token={ServingWorld.HomeKey}")).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("Authorization", ["Bearer nope", $"Bearer {ServingWorld.HomeKey}"]))).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("X-Api-Key", ["nope", ServingWorld.HomeKey]))).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("Authorization", $"Basic {ServingWorld.HomeKey}"))).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("authorization", $"bearer {ServingWorld.HomeKey}"))).Should().Be(HttpStatusCode.OK, "header names and the scheme are case-insensitive");
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("X-Api-Key", ServingWorld.HomeKey.ToUpperInvariant()))).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("X-Api-Key", ServingWorld.OtherKey))).Should().Be(HttpStatusCode.NotFound);
        (await Send(HttpMethod.Get, read, h => h.TryAddWithoutValidation("X-Api-Key", new string('k', 10_000)))).Should().Be(HttpStatusCode.Unauthorized);

        // Methods: HEAD is authenticated as GET; OPTIONS and made-up ones are 405 before anything is read.
        (await Send(HttpMethod.Head, read)).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Head, "v1/status")).Should().Be(HttpStatusCode.Unauthorized);
        (await Send(HttpMethod.Options, read)).Should().Be(HttpStatusCode.MethodNotAllowed);
        (await Send(new HttpMethod("PROPFIND"), "v1/events")).Should().Be(HttpStatusCode.MethodNotAllowed);
        (await Send(HttpMethod.Put, "v1/events")).Should().Be(HttpStatusCode.MethodNotAllowed);

        // Another tenant's signal, by every route, looks like one that does not exist.
        using var other = world.Client(ServingWorld.OtherKey);
        foreach (var (response, nope) in new[]
        {
            (await other.GetAsync("v1/signals/engagement/users/1/routes?consumer=c"), await other.GetAsync("v1/signals/nope/users/1/routes?consumer=c")),
            (await other.PostAsync("v1/signals/engagement/sequences", new StringContent("""{"user_ids":[1]}""")), await other.PostAsync("v1/signals/nope/sequences", new StringContent("""{"user_ids":[1]}"""))),
            (await other.GetAsync("v1/signals/engagement/users/x/sequence?limt=1"), await other.GetAsync("v1/signals/nope/users/x/sequence?limt=1")),
        })
        {
            response.StatusCode.Should().Be(HttpStatusCode.NotFound);
            (await response.Content.ReadAsStringAsync()).Should().Be((await nope.Content.ReadAsStringAsync()).Replace("nope", "engagement", StringComparison.Ordinal));
        }

        // Writes: another tenant's type, alone or hidden behind a duplicate event_type (the last counts, for the check as for the parser).
        using var home = world.Client();
        (await home.PostAsync("v1/events", new StringContent(Event("w1", 9, "like", t)))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await home.PostAsync("v1/events", new StringContent(Event("w2", 9, "save", t, ",\"event_type\":\"like\"")))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await home.PostAsync("v1/events", new StringContent(Event("w3", 9, "save", t, ",\"event\\u005ftype\":\"like\"")))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await home.PostAsync("v1/events", new StringContent(Event("w4", 9, "save", t, ",\"tenant\":\"other\"")))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await home.PostAsync("v1/events", new StringContent(Event("w5", 9, "like", t, ",\"event_type\":\"save\"")))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        for (int i = 0; i < 100 && (await ServingWorld.JsonAsync(await home.GetAsync("v1/signals/engagement/users/9/sequence"))).GetProperty("length").GetInt32() == 0; i++)
        {
            await Task.Delay(50);
        }

        (await ServingWorld.JsonAsync(await home.GetAsync("v1/signals/engagement/users/9/sequence"))).GetProperty("length").GetInt32().Should().Be(1);
        (await ServingWorld.JsonAsync(await other.GetAsync("v1/signals/likes/users/9/sequence"))).GetProperty("length").GetInt32().Should().Be(0, "the duplicate's last event_type is the one the stream routes by");

        // Bodies: deep nesting, a wide array of tiny events, many blank lines.
        string deep = new string('[', 10_000) + new string(']', 10_000);
        (await home.PostAsync("v1/events", new StringContent(deep))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await home.PostAsync("v1/events", new StringContent(Event("d1", 1, "save", t, $",\"a\":{new string('[', 5_000)}{new string(']', 5_000)}")))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await home.PostAsync("v1/signals/engagement/sequences", new StringContent($$"""{"user_ids":[1],"x":{{new string('[', 5_000)}}{{new string(']', 5_000)}}}"""))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await home.PostAsync("v1/events", new StringContent("[" + string.Join(",", Enumerable.Repeat("{}", 20_000)) + "]"))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await home.PostAsync("v1/events", new StringContent(new string('\n', 900_000), Encoding.UTF8, "application/x-ndjson"))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await home.PostAsync("v1/events", new ByteArrayContent(new byte[2 * 1024 * 1024]))).StatusCode.Should().Be(HttpStatusCode.BadRequest);

        // Numbers and times at and past their ends.
        foreach (var query in new[]
        {
            "limit=99999999999999999999999", "limit=-1", "limit=2147483648", "lookback=9999999999999999999999d", "lookback=-1d",
            "as_of=0001-01-01T00:00:00%2B01:00", "as_of=9999-12-31T23:59:59-01:00", "as_of=0001-01-01", "known_at=9999-12-31T23:59:59Z&as_of=0001-01-01",
        })
        {
            (await home.GetAsync($"{read}?{query}")).StatusCode.Should().Be(HttpStatusCode.BadRequest, query);
        }

        foreach (var user in new[] { "9223372036854775808", "-9223372036854775809", "1e3", "0x10", "%2E%2E%2F%2E%2E%2Fweft.json" })
        {
            (await home.GetAsync($"v1/signals/engagement/users/{user}/sequence")).StatusCode.Should().BeOneOf([HttpStatusCode.BadRequest, HttpStatusCode.NotFound], user);
        }

        (await home.GetAsync("v1/signals/engagement/users/-9223372036854775808/sequence")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await home.GetAsync("v1/signals/..%2F..%2Fweft.json/users/1/sequence")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await home.GetAsync($"v1/signals/engagement/sequences?{new string('a', 10)}=1")).StatusCode.Should().Be(HttpStatusCode.MethodNotAllowed);

        string metrics = await home.GetStringAsync("metrics");
        metrics.Should().NotContain("status=\"500\"");
        JsonDocument.Parse(await home.GetStringAsync("v1/status")).RootElement.GetProperty("signals").EnumerateArray().Select(s => s.GetProperty("name").GetString()).Should().Equal("engagement");
    }
}
