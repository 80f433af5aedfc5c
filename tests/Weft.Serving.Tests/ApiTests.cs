using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Streaming.Runtime;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>The HTTP API over real HTTP (Kestrel on 127.0.0.1, a free port): ingest, reads, tenants, limits, operations.</summary>
public sealed class ApiTests
{
    private static string Event(string id, long user, string type, long time, long? item = 7, string? extra = null) =>
        $$"""{"event_id":"{{id}}","user_id":{{user}},"event_type":"{{type}}","event_time":"{{Timestamps.Format(time)}}"{{(item is null ? "" : $",\"item_id\":{item}")}}{{extra}}}""";

    /// <summary>Reads until <paramref name="done"/> holds; the in-process runtime needs a micro-batch or two.</summary>
    private static async Task<JsonElement> PollAsync(HttpClient client, string url, Func<JsonElement, bool> done)
    {
        JsonElement body = default;
        for (int attempt = 0; attempt < 200; attempt++)
        {
            body = await ServingWorld.JsonAsync(await client.GetAsync(url));
            if (done(body))
            {
                return body;
            }

            await Task.Delay(50);
        }

        return body;
    }

    [Fact]
    public async Task Posted_events_are_served_once_the_stream_has_them()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;
        var json = "[" + string.Join(",", Event("p1", 500, "click", t, 3, ",\"dwell_ms\":900"), Event("p2", 500, "save", t + 1_000_000, 4), Event("p3", 500, "click", t + 2_000_000, 5, ",\"dwell_ms\":10")) + "]";

        var post = await client.PostAsync("v1/events", new StringContent(json, Encoding.UTF8, "application/json"));

        post.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var accepted = await ServingWorld.JsonAsync(post);
        accepted.GetProperty("accepted").GetInt32().Should().Be(3);
        accepted.GetProperty("partition").GetString().Should().Be("embedded");
        (accepted.GetProperty("last_offset").GetInt64() - accepted.GetProperty("first_offset").GetInt64()).Should().Be(2);

        var body = await PollAsync(client, "v1/signals/engagement/users/500/sequence", b => b.GetProperty("length").GetInt32() >= 2);
        body.GetProperty("signal").GetString().Should().Be("engagement");
        body.GetProperty("user_id").GetInt64().Should().Be(500);
        var columns = body.GetProperty("columns");
        columns.GetProperty("event_id").EnumerateArray().Select(e => e.GetString()).Should().Equal("p2", "p1"); // p3 is filtered out (dwell < 500)
        columns.GetProperty("event_time").EnumerateArray().Select(e => e.GetString()).Should().Equal(Timestamps.Format(t + 1_000_000), Timestamps.Format(t));
        columns.GetProperty("event_type").EnumerateArray().Select(e => e.GetString()).Should().Equal("save", "click");
        columns.GetProperty("item_id").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(4, 3);
        columns.GetProperty("dwell_ms").EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Null ? (int?)null : e.GetInt32()).Should().Equal(null, 900);
        columns.GetProperty("category").EnumerateArray().Select(e => e.GetString()).Should().Equal("c4", "c3");
        var p = body.GetProperty("provenance");
        p.GetProperty("fingerprint").GetString().Should().Be(SignalJsonWriter.Fingerprint(world.Signal));
        p.GetProperty("from_stream").GetInt32().Should().Be(2);
        p.GetProperty("from_batch").GetInt32().Should().Be(0);
        p.GetProperty("truncated").GetBoolean().Should().BeFalse();
        p.GetProperty("stream_watermark").GetString().Should().Be(Timestamps.Format(t + 1_000_000), "p3 was filtered out: not servable");
        p.GetProperty("batch_sealed_through").ValueKind.Should().Be(JsonValueKind.Null);
        p.GetProperty("lag_ms").ValueKind.Should().Be(JsonValueKind.Number);
        p.GetProperty("as_of").GetString().Should().Be(Timestamps.Format(ServingWorld.Now));
        p.GetProperty("lookback").GetString().Should().Be("7d");

        // NDJSON too; a cached sequence is dropped when the user's next event lands.
        var ndjson = Event("p4", 500, "save", t + 3_000_000, 6) + "\n\n" + Event("p5", 501, "save", t, 6) + "\n";
        (await client.PostAsync("v1/events", new StringContent(ndjson, Encoding.UTF8, "application/x-ndjson"))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        body = await PollAsync(client, "v1/signals/engagement/users/500/sequence?columns=item_id", b => b.GetProperty("length").GetInt32() == 3);
        body.GetProperty("columns").GetProperty("event_id").EnumerateArray().Select(e => e.GetString()).Should().Equal("p4", "p2", "p1");
        body.GetProperty("columns").EnumerateObject().Select(c => c.Name).Should().Equal("event_id", "event_time", "item_id");
    }

    [Fact]
    public async Task A_read_needs_a_valid_key_and_sees_only_its_tenants_signals()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        const string url = "v1/signals/engagement/users/1/sequence";

        using (var anonymous = world.Client(key: null))
        {
            var none = await anonymous.GetAsync(url);
            none.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
            none.Headers.WwwAuthenticate.ToString().Should().Be("Bearer");
            (await anonymous.PostAsync("v1/events", new StringContent("[]"))).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
            (await anonymous.GetAsync("v1/status")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
            using var viaHeader = new HttpRequestMessage(HttpMethod.Get, url);
            viaHeader.Headers.Add("X-Api-Key", ServingWorld.HomeKey);
            (await anonymous.SendAsync(viaHeader)).StatusCode.Should().Be(HttpStatusCode.OK);
            using var wrongHeader = new HttpRequestMessage(HttpMethod.Get, url);
            wrongHeader.Headers.Add("X-Api-Key", ServingWorld.HomeKey + "x");
            (await anonymous.SendAsync(wrongHeader)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        }

        using (var wrong = world.Client(key: "not-a-key"))
        {
            (await wrong.GetAsync(url)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        }

        using var other = world.Client(ServingWorld.OtherKey);
        var foreign = await other.GetAsync(url);
        foreign.StatusCode.Should().Be(HttpStatusCode.NotFound);
        var missing = await other.GetAsync("v1/signals/nothing-here/users/1/sequence");
        missing.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await ServingWorld.JsonAsync(foreign)).GetProperty("error").GetString().Should().Be("no signal 'engagement'", "a foreign signal looks exactly like a missing one");
        (await ServingWorld.JsonAsync(missing)).GetProperty("error").GetString().Should().Be("no signal 'nothing-here'");
        (await other.PostAsJsonAsync("v1/signals/engagement/sequences", new { user_ids = new[] { 1 } })).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await other.GetAsync("v1/signals/likes/users/1/sequence")).StatusCode.Should().Be(HttpStatusCode.OK);

        var signals = await ServingWorld.JsonAsync(await other.GetAsync("v1/signals"));
        signals.GetProperty("signals").EnumerateArray().Select(s => s.GetProperty("name").GetString()).Should().Equal("likes");
        var status = await ServingWorld.JsonAsync(await other.GetAsync("v1/status"));
        status.GetProperty("tenant").GetString().Should().Be("other");
        status.GetProperty("signals").EnumerateArray().Select(s => s.GetProperty("name").GetString()).Should().Equal("likes");
    }

    [Fact]
    public async Task A_tenant_posts_only_events_of_its_own_types()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var other = world.Client(ServingWorld.OtherKey);
        long t = ServingWorld.Now - ServingWorld.Hour;

        var click = await other.PostAsync("v1/events", new StringContent(Event("x1", 9, "click", t), Encoding.UTF8, "application/x-ndjson"));
        click.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await ServingWorld.JsonAsync(click)).GetProperty("error").GetString().Should().Be("events[0]: event_type 'click' is not one of tenant 'other''s event types (like)");
        var unknown = await other.PostAsync("v1/events", new StringContent("[" + Event("x2", 9, "like", t) + "," + Event("x3", 9, "purchase", t) + "]"));
        (await ServingWorld.JsonAsync(unknown)).GetProperty("error").GetString().Should().StartWith("events[1]: event_type 'purchase' is not one of tenant 'other''s");
        var spoofed = await other.PostAsync("v1/events", new StringContent(Event("x4", 9, "like", t, 1, ",\"tenant\":\"home-feed\"")));
        spoofed.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await ServingWorld.JsonAsync(spoofed)).GetProperty("error").GetString().Should().Contain("not the tenant of the API key");

        (await other.PostAsync("v1/events", new StringContent(Event("x5", 9, "like", t, 1, ",\"tenant\":\"other\"")))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        var likes = await PollAsync(other, "v1/signals/likes/users/9/sequence", b => b.GetProperty("length").GetInt32() == 1);
        likes.GetProperty("columns").GetProperty("event_id")[0].GetString().Should().Be("x5");
        using var home = world.Client();
        (await ServingWorld.JsonAsync(await home.GetAsync("v1/signals/engagement/users/9/sequence"))).GetProperty("length").GetInt32().Should().Be(0);
    }

    [Fact]
    public async Task Requests_over_a_limit_get_400_naming_the_limit()
    {
        await using var world = new ServingWorld(serving: """
            { "urls": "http://127.0.0.1:0", "max_limit": 15, "max_users_per_request": 3, "max_request_bytes": 2048, "max_events_per_request": 4, "history_horizon": "2d" }
            """);
        await world.StartAsync();
        using var client = world.Client();
        const string url = "v1/signals/engagement/users/1/sequence";

        // The parameter at fault and the cap it exceeded, each only when there is one.
        async Task Expect(HttpResponseMessage response, string? parameter, string? limit, string message)
        {
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
            var body = await ServingWorld.JsonAsync(response);
            (body.TryGetProperty("parameter", out var p) ? p.GetString() : null).Should().Be(parameter, message);
            (body.TryGetProperty("limit", out var l) ? l.GetString() : null).Should().Be(limit, message);
            body.GetProperty("error").GetString().Should().Contain(message);
        }

        await Expect(await client.GetAsync(url + "?limit=16"), "limit", "serving.max_limit", "limit 16 exceeds the server cap serving.max_limit (15)");
        await Expect(await client.GetAsync(url + "?limit=0"), "limit", null, "limit must be a positive integer");
        await Expect(await client.GetAsync(url + "?lookback=8d"), "lookback", "lookback", "lookback 8d exceeds the lookback of signal 'engagement' (7d)");
        await Expect(await client.GetAsync(url + "?as_of=2026-10-20T00:00:00Z"), "as_of", "serving.history_horizon", "serving.history_horizon 2d");
        await Expect(await client.GetAsync(url + "?as_of=yesterday"), "as_of", null, "as_of must be an ISO-8601 time");
        await Expect(await client.GetAsync("v1/signals/engagement/users/abc/sequence"), "user_id", null, "user_id must be a 64-bit integer");
        (await client.GetAsync(url + "?limit=15&lookback=1d&as_of=2026-11-03T00:00:00Z")).StatusCode.Should().Be(HttpStatusCode.OK);

        await Expect(await client.GetAsync(url + "?columns=category,nope"), "columns", null, "unknown column 'nope': signal 'engagement' has event_id, event_type, event_time, item_id, dwell_ms, category");

        await Expect(await client.PostAsJsonAsync("v1/signals/engagement/sequences", new { user_ids = new[] { 1, 2, 3, 4 } }), "user_ids", "serving.max_users_per_request", "4 user_ids exceed serving.max_users_per_request (3)");
        await Expect(await client.PostAsJsonAsync("v1/signals/engagement/sequences", new { user_ids = new[] { 1 }, limit = 99 }), "limit", "serving.max_limit", "serving.max_limit (15)");
        var big = "[" + string.Join(",", Enumerable.Range(0, 40).Select(i => Event($"b{i}", 1, "save", ServingWorld.Now - ServingWorld.Hour))) + "]";
        await Expect(await client.PostAsync("v1/events", new StringContent(big)), null, "serving.max_request_bytes", "the request body exceeds serving.max_request_bytes (2048 bytes)");
        var many = string.Join("\n", Enumerable.Range(0, 5).Select(i => Event($"m{i}", 1, "save", ServingWorld.Now - ServingWorld.Hour)));
        await Expect(await client.PostAsync("v1/events", new StringContent(many)), null, "serving.max_events_per_request", "more than 4 events in one request (serving.max_events_per_request)");
        (await client.PostAsync("v1/events", new StringContent("[{\"event_type\":"))).StatusCode.Should().Be(HttpStatusCode.BadRequest);

        // A second user_ids would be read past the cap (and one user twice); any repeated property is refused.
        await Expect(await client.PostAsync("v1/signals/engagement/sequences", new StringContent("""{"user_ids":[1,2,3],"user_ids":[4,5,6]}""")), "user_ids", null, "property 'user_ids' appears more than once in the body");
        await Expect(await client.PostAsync("v1/signals/engagement/sequences", new StringContent("""{"user_ids":[1],"limit":2,"limit":3}""")), "limit", null, "property 'limit' appears more than once");
    }

    /// <summary>
    /// A query a client got wrong is refused naming the parameter instead of read as something else: a
    /// misspelt parameter (it would read as its default), a repeated one, a time without an offset (it may
    /// be local time), a lookback too long for any signal (the cap, not "malformed"). A signal the caller
    /// does not own is still a plain 404 whatever the query holds.
    /// </summary>
    [Fact]
    public async Task Query_mistakes_are_refused_naming_the_parameter()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        const string url = "v1/signals/engagement/users/1/sequence";

        async Task Expect(string query, string parameter, string? limit, string message)
        {
            var response = await client.GetAsync(url + query);
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest, query);
            var body = await ServingWorld.JsonAsync(response);
            body.GetProperty("parameter").GetString().Should().Be(parameter, query);
            (body.TryGetProperty("limit", out var l) ? l.GetString() : null).Should().Be(limit, query);
            body.GetProperty("error").GetString().Should().Contain(message, query);
        }

        async Task<string> AsOfServed(string query)
        {
            var response = await client.GetAsync(url + query);
            response.StatusCode.Should().Be(HttpStatusCode.OK, query);
            return (await ServingWorld.JsonAsync(response)).GetProperty("provenance").GetProperty("as_of").GetString()!;
        }

        await Expect("?limt=5", "limt", null, "unknown parameter 'limt'; this endpoint takes columns, limit, lookback, as_of, known_at, consumer");
        await Expect("?limit=5&limit=5", "limit", null, "parameter 'limit' appears more than once");
        await Expect("?columns=item_id&columns=category", "columns", null, "parameter 'columns' appears more than once");
        await Expect("?as_of=2026-11-03T00:00:00", "as_of", null, "as_of must be an ISO-8601 time");
        await Expect("?as_of=2026-11-03%20Sat", "as_of", null, "as_of must be an ISO-8601 time");
        await Expect("?as_of=2026-11-03T00:00:00,5Z", "as_of", null, "as_of must be an ISO-8601 time");
        await Expect("?known_at=2026-11-03T00:00", "known_at", null, "known_at must be an ISO-8601 time");
        await Expect("?lookback=99999999999d", "lookback", "lookback", "lookback 99999999999d exceeds the lookback of signal 'engagement'");
        await Expect("?lookback=7x", "lookback", null, "lookback must be a positive duration");
        await Expect("?lookback=0d", "lookback", null, "lookback must be a positive duration");

        (await AsOfServed("?LIMIT=5&as_of=2026-11-03T00:00:00Z")).Should().Be("2026-11-03T00:00:00.000000Z", "names bind without regard to case");
        (await AsOfServed("?as_of=2026-11-03T05:30:00%2B05:30")).Should().Be("2026-11-03T00:00:00.000000Z");
        (await AsOfServed("?as_of=2026-11-02T19:00:00.000000-05:00")).Should().Be("2026-11-03T00:00:00.000000Z");
        (await AsOfServed("?as_of=2026-11-03")).Should().Be("2026-11-03T00:00:00.000000Z", "a date is its midnight UTC");
        (await AsOfServed("?as_of=2026-11-02T23:59Z")).Should().Be("2026-11-02T23:59:00.000000Z");
        (await AsOfServed("?as_of=2026-11-02T23:59:59.99999999Z")).Should().Be("2026-11-02T23:59:59.999999Z", "digits past the microsecond are dropped, not rounded into the next second");
        (await AsOfServed("?as_of=2026-11-03%2000:00:00%2B00:00")).Should().Be("2026-11-03T00:00:00.000000Z", "RFC 3339 lets a space stand for the T");
        var idsOnly = await ServingWorld.JsonAsync(await client.GetAsync(url + "?columns="));
        idsOnly.GetProperty("columns").EnumerateObject().Select(c => c.Name).Should().Equal(["event_id", "event_time"], "an empty columns asks for no other");

        var routes = await client.GetAsync("v1/signals/engagement/users/1/routes?consumer=ranker&consumr=ranker");
        routes.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await ServingWorld.JsonAsync(routes)).GetProperty("parameter").GetString().Should().Be("consumr");

        var foreign = await client.GetAsync("v1/signals/likes/users/1/sequence?limt=5&limit=1&limit=2");
        var unknown = await client.GetAsync("v1/signals/nope/users/1/sequence");
        foreign.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await foreign.Content.ReadAsStringAsync()).Should().Be((await unknown.Content.ReadAsStringAsync()).Replace("nope", "likes", StringComparison.Ordinal));
    }

    /// <summary>
    /// RFC 3339 bounds no fraction of a second: an as_of or known_at with ten or more digits (a clock that
    /// prints picoseconds) is the same instant cut to the microsecond, as one with seven to nine is, in a
    /// GET and in a multi-get body alike; it was refused as not ISO-8601.
    /// </summary>
    [Fact]
    public async Task An_instant_with_more_than_nine_fraction_digits_is_read_to_the_microsecond()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();

        foreach (var (sent, expected) in new[]
        {
            ("2026-11-02T23:59:59.1234567891Z", "2026-11-02T23:59:59.123456Z"),
            ("2026-11-02T23:59:59.999999999999Z", "2026-11-02T23:59:59.999999Z"),
            ("2026-11-03T05:29:59.0000019999999+05:30", "2026-11-02T23:59:59.000001Z"),
        })
        {
            var response = await client.GetAsync("v1/signals/engagement/users/1/sequence?as_of=" + Uri.EscapeDataString(sent) + "&known_at=" + Uri.EscapeDataString(sent));
            response.StatusCode.Should().Be(HttpStatusCode.OK, sent);
            var p = (await ServingWorld.JsonAsync(response)).GetProperty("provenance");
            p.GetProperty("as_of").GetString().Should().Be(expected, sent);
            p.GetProperty("known_at").GetString().Should().Be(expected, sent);

            var many = await client.PostAsync("v1/signals/engagement/sequences", new StringContent($$"""{"user_ids":[1],"as_of":"{{sent}}"}""", Encoding.UTF8, "application/json"));
            many.StatusCode.Should().Be(HttpStatusCode.OK, sent);
            (await ServingWorld.JsonAsync(many)).GetProperty("sequences")[0].GetProperty("provenance").GetProperty("as_of").GetString().Should().Be(expected, sent);
        }

        (await client.GetAsync("v1/signals/engagement/users/1/sequence?as_of=2026-11-02T23:59:59.Z")).StatusCode.Should().Be(HttpStatusCode.BadRequest, "a point needs a digit after it");
    }

    /// <summary>
    /// A multi-get body's misspelt property is the body's form of a misspelt query parameter: the client
    /// learns which one from <c>parameter</c>, as a GET's <c>?limt=5</c> tells it, not only from the prose.
    /// </summary>
    [Fact]
    public async Task An_unknown_multi_get_property_is_refused_naming_it_as_the_parameter()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();

        foreach (var name in new[] { "limt", "Limit", "user_id", new string('x', 70) })
        {
            var body = $$"""{"user_ids":[1],"{{name}}":5}""";
            var response = await client.PostAsync("v1/signals/engagement/sequences", new StringContent(body, Encoding.UTF8, "application/json"));
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest, body);
            var error = await ServingWorld.JsonAsync(response);
            string shown = name.Length <= 64 ? name : name[..64] + "…";
            error.GetProperty("parameter").GetString().Should().Be(shown, body);
            error.GetProperty("error").GetString().Should().Contain($"unknown property '{shown}'", body);
            error.TryGetProperty("limit", out _).Should().BeFalse("no cap was exceeded");
        }

        var get = await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/1/sequence?limt=5"));
        get.GetProperty("parameter").GetString().Should().Be("limt", "a GET names it the same way");
    }

    [Fact]
    public async Task A_multi_get_takes_JSON_with_or_without_a_byte_order_mark_and_refuses_other_media()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        const string url = "v1/signals/engagement/sequences";
        var json = """{"user_ids":[1,2]}""";

        var png = await client.PostAsync(url, new ByteArrayContent(Encoding.UTF8.GetBytes(json)) { Headers = { ContentType = new("image/png") } });
        var ndjson = await client.PostAsync(url, new StringContent(json, Encoding.UTF8, "application/x-ndjson"));
        var withMark = await client.PostAsync(url, new ByteArrayContent([0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(json)]) { Headers = { ContentType = new("application/json") } });
        var curlDefault = await client.PostAsync(url, new StringContent(json, Encoding.UTF8, "application/x-www-form-urlencoded"));
        var textJson = await client.PostAsync(url, new StringContent(json, Encoding.UTF8, "text/json"));

        png.StatusCode.Should().Be(HttpStatusCode.UnsupportedMediaType);
        (await ServingWorld.JsonAsync(png)).GetProperty("error").GetString().Should().Contain("Content-Type 'image/png' cannot hold this request: send application/json");
        ndjson.StatusCode.Should().Be(HttpStatusCode.UnsupportedMediaType);
        withMark.StatusCode.Should().Be(HttpStatusCode.OK);
        (await ServingWorld.JsonAsync(withMark)).GetProperty("sequences").GetArrayLength().Should().Be(2);
        curlDefault.StatusCode.Should().Be(HttpStatusCode.OK, "curl -d sends a form type by default");
        textJson.StatusCode.Should().Be(HttpStatusCode.OK, "text/json is JSON's older name");
    }

    /// <summary>
    /// A signal deployed with another definition after the stream wrote its online elements: those are
    /// not served (another fingerprint), and the server says so: the runtime names the change and the
    /// batch run that recomputes them, and /metrics counts the elements left out.
    /// </summary>
    [Fact]
    public async Task Elements_streamed_under_an_earlier_definition_are_left_out_counted_and_named_at_start()
    {
        await using var world = new ServingWorld();
        var events = ServingWorld.Events(80, seed: 5);
        await world.StreamAsync(events);
        await world.ArchiveAsync(events); // the landing archive the batch path reads
        var next = world.Signal with { Version = 2 };
        await File.WriteAllBytesAsync(Path.Combine(world.Root, "signals", "engagement.json"), SignalJsonWriter.Write(next));
        await world.StartAsync();
        using var client = world.Client();

        var changed = world.Server.State.Stream!.Runtime.DefinitionsChanged.Should().ContainSingle().Which;
        changed.Should().Be(new Weft.Streaming.Runtime.SignalDefinitionChanged("engagement", SignalJsonWriter.Fingerprint(world.Signal), SignalJsonWriter.Fingerprint(next), null, 7 * ServingWorld.Day));
        // Nothing sealed: the tail is the signal's 7-day lookback before now, a command that runs as printed.
        var owed = world.Server.State.Stream!.Runtime.TailRecomputes.Should().ContainSingle().Which;
        owed.Should().Be(new Weft.Streaming.Runtime.TailRecompute("engagement", SignalJsonWriter.Fingerprint(next),
            new Weft.Batch.BatchRequest("engagement", ServingWorld.Now - (7 * ServingWorld.Day), ServingWorld.Now), changed, Carried: false));
        owed.Describe("/srv/weft.json").Should().Contain(
            $"weft batch --config /srv/weft.json --signal engagement --from {Timestamps.Format(ServingWorld.Now - (7 * ServingWorld.Day))} --to {Timestamps.Format(ServingWorld.Now)}");

        long user = events.First(e => e.EventType == "save").UserId;
        var body = await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{user}/sequence"));
        body.GetProperty("provenance").GetProperty("from_stream").GetInt32().Should().Be(0, "the online elements are the earlier definition's");
        await using var store = await Weft.Online.OnlineStores.OpenSqliteAsync(Path.Combine(world.Root, "online.db"), CancellationToken.None);
        int stored = (await store.ReadAsync("engagement", user, Weft.Online.OnlineReadOptions.Default, CancellationToken.None)).Count;
        stored.Should().BePositive();
        (await client.GetStringAsync("metrics")).Should().Contain($"weft_serving_other_definition_elements_total{{signal=\"engagement\"}} {stored}\n");

        // The server runs that batch itself, beside the stream: the events come back from the batch path,
        // as `weft snapshot` computes them from the lake (the stream's rows stand in for chunks not yet
        // recomputed), once the run's last chunk commits; it commits chunk by chunk, so wait for the whole.
        var snapshot = await world.SnapshotAsync(Weft.Engine.Sequences.SequenceCut.For(next, ServingWorld.Now));
        int row = Array.IndexOf(((Weft.Engine.PrimitiveColumn<long>)snapshot.Keys[StandardColumns.UserId]).Values, user);
        var expected = Enumerable.Range(snapshot.Offsets[row], snapshot.Length(row)).Select(k => (string?)snapshot.Elements[StandardColumns.EventId].GetValue(k)).ToList();
        expected.Should().NotBeEmpty();
        List<string?> Ids(JsonElement sequence) => [.. sequence.GetProperty("columns").GetProperty("event_id").EnumerateArray().Select(e => e.GetString())];
        JsonElement after = body;
        for (int i = 0; i < 600 && !Ids(after).SequenceEqual(expected); i++)
        {
            await Task.Delay(100);
            await world.Server.RefreshHistoryAsync(CancellationToken.None);
            after = await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{user}/sequence"));
        }

        Ids(after).Should().Equal(expected, "the recompute brought the user's whole tail back");
        after.GetProperty("provenance").GetProperty("from_batch").GetInt32().Should().Be(expected.Count, "every element comes from the batch path");
        after.GetProperty("provenance").GetProperty("fingerprint").GetString().Should().Be(SignalJsonWriter.Fingerprint(next));
        var lake = await Weft.Storage.EventTable.OpenAsync(Path.Combine(world.Root, "lake", "enriched", "engagement"));
        var batchCommits = (await lake.Log.GetHistoryAsync()).Where(c => c.Parameters.TryGetValue(Weft.Batch.LakeParameters.Run, out _)).ToList();
        batchCommits.Should().NotBeEmpty().And.OnlyContain(c => c.Parameters[Weft.Batch.LakeParameters.Fingerprint] == SignalJsonWriter.Fingerprint(next));
    }

    /// <summary>Every read answers HEAD with GET's status and headers and no body (RFC 9110: a server that supports GET supports HEAD).</summary>
    [Fact]
    public async Task Every_read_answers_HEAD_as_GET_without_a_body()
    {
        await using var world = new ServingWorld();
        await world.StreamAsync(ServingWorld.Events(60, seed: 3));
        await world.StartAsync();
        using var client = world.Client();

        foreach (var path in new[] { "healthz", "metrics", "", "openapi.json", "v1/status", "v1/signals", "v1/signals/engagement/users/3/sequence?limit=2", "v1/signals/engagement/users/3/routes?consumer=ranker", "v1/signals/nope/users/3/sequence" })
        {
            using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
            using var get = await client.GetAsync(path);
            head.StatusCode.Should().Be(get.StatusCode, path);
            (await head.Content.ReadAsByteArrayAsync()).Should().BeEmpty(path);
            head.Content.Headers.ContentType!.MediaType.Should().Be(get.Content.Headers.ContentType!.MediaType, path);
        }

        // A sequence read states its length before it is sent, so HEAD's is the length GET's body has.
        using var sequenceHead = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "v1/signals/engagement/users/3/sequence"));
        using var sequenceGet = await client.GetAsync("v1/signals/engagement/users/3/sequence");
        sequenceHead.Content.Headers.ContentLength.Should().Be((await sequenceGet.Content.ReadAsByteArrayAsync()).Length).And.BeGreaterThan(0);
        using var delete = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "v1/signals/engagement/users/3/sequence"));
        delete.StatusCode.Should().Be(HttpStatusCode.MethodNotAllowed);
        delete.Content.Headers.Allow.Should().BeEquivalentTo("GET", "HEAD");
    }

    /// <summary>One event larger than the embedded log takes is refused naming it and the size, before anything is stored; the others of the request with it.</summary>
    [Fact]
    public async Task An_event_larger_than_the_log_takes_is_refused_naming_it()
    {
        await using var world = new ServingWorld(serving: """{ "urls": "http://127.0.0.1:0", "max_request_bytes": 4194304 }""");
        await world.StartAsync();
        using var client = world.Client();
        string small = Event("small-1", 1, "save", ServingWorld.Now - ServingWorld.Hour);
        string huge = Event("huge-1", 1, "save", ServingWorld.Now - ServingWorld.Hour, extra: $",\"note\":\"{new string('n', 1_100_000)}\"");

        var response = await client.PostAsync("v1/events", new StringContent($"[{small},{huge}]", Encoding.UTF8, "application/json"));

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var body = await ServingWorld.JsonAsync(response);
        body.GetProperty("error").GetString().Should().StartWith("events[1] is 1,100,").And.Contain("bytes, more than the embedded log takes for one event (1,048,576 bytes)");
        body.GetProperty("limit").GetString().Should().Be("embedded log per-event size");
        var ok = await client.PostAsync("v1/events", new StringContent($"[{small}]", Encoding.UTF8, "application/json"));
        (await ServingWorld.JsonAsync(ok)).GetProperty("first_offset").GetInt64().Should().Be(0, "nothing of the refused request was stored");
    }

    /// <summary>
    /// A query parameter an endpoint does not read is refused wherever it comes (a multi-get reads its
    /// parameters from the body: a limit in the query was served at the default); values with bytes past
    /// the digits are malformed, not read as their digits; a number too large for any cap is past the cap.
    /// </summary>
    [Fact]
    public async Task Stray_query_parameters_and_stray_bytes_in_values_are_refused()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();

        async Task Expect(HttpResponseMessage response, string parameter, string? limit, string message)
        {
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest, message);
            var body = await ServingWorld.JsonAsync(response);
            body.GetProperty("parameter").GetString().Should().Be(parameter, message);
            (body.TryGetProperty("limit", out var l) ? l.GetString() : null).Should().Be(limit, message);
            body.GetProperty("error").GetString().Should().Contain(message);
        }

        await Expect(await client.GetAsync("v1/signals?x=1"), "x", null, "unknown parameter 'x'; this endpoint takes no query parameters");
        await Expect(await client.GetAsync("v1/status?tenant=a"), "tenant", null, "this endpoint takes no query parameters");
        await Expect(await client.PostAsync("v1/signals/engagement/sequences?limit=1", new StringContent("""{"user_ids":[1]}""", Encoding.UTF8, "application/json")), "limit", null, "a read's parameters go in the JSON body");
        await Expect(await client.PostAsync("v1/events?dry_run=1", new StringContent("[]", Encoding.UTF8, "application/json")), "dry_run", null, "this endpoint takes no query parameters");

        const string url = "v1/signals/engagement/users/1/sequence";
        await Expect(await client.GetAsync(url + "?limit=5%00"), "limit", null, "limit must be a positive integer");
        (await client.GetAsync("v1/signals/engagement/users/5%00/sequence")).StatusCode.Should().Be(HttpStatusCode.BadRequest, "Kestrel refuses a NUL in the path");
        await Expect(await client.GetAsync("v1/signals/engagement/users/5%20/sequence"), "user_id", null, "user_id must be a 64-bit integer");
        await Expect(await client.GetAsync(url + "?limit=99999999999999999999"), "limit", "serving.max_limit", "limit 99999999999999999999 exceeds the server cap serving.max_limit");
        await Expect(await client.PostAsync("v1/signals/engagement/sequences", new StringContent("""{"user_ids":[1],"limit":99999999999999999999999}""", Encoding.UTF8, "application/json")), "limit", "serving.max_limit", "exceeds the server cap");

        var longId = new string('7', 30) + new string('x', 4_970);
        var longIdAnswer = await client.GetAsync($"v1/signals/engagement/users/{longId}/sequence");
        longIdAnswer.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var error = (await ServingWorld.JsonAsync(longIdAnswer)).GetProperty("error").GetString()!;
        error.Should().StartWith("user_id must be a 64-bit integer, got '7777").And.EndWith("…'");
        error.Length.Should().BeLessThan(200, "a 400 does not echo a 5,000-character value back");

        // Every value quoted back is cut the same way: a column, a signal, a parameter's name (also in "parameter").
        string longName = new('a', 300);
        foreach (var (path, field) in new[] { ($"{url}?columns={longName}", "error"), ($"v1/signals/{longName}/users/1/sequence", "error"), ($"{url}?{longName}=1", "parameter") })
        {
            var answer = await ServingWorld.JsonAsync(await client.GetAsync(path));
            answer.GetProperty(field).GetString().Should().Contain(new string('a', 64) + "…").And.NotContain(new string('a', 65), path);
            answer.GetRawText().Should().NotContain(new string('a', 65), "no field of the answer echoes it whole");
        }

        // Leading zeros are the duration's digits, not a longer duration: 1 day, under the signal's 7.
        var zeros = await client.GetAsync(url + "?lookback=0000000000000001d");
        zeros.StatusCode.Should().Be(HttpStatusCode.OK, await zeros.Content.ReadAsStringAsync());
        (await ServingWorld.JsonAsync(zeros)).GetProperty("provenance").GetProperty("lookback").GetString().Should().Be("1d");
        await Expect(await client.GetAsync(url + "?lookback=00000000000000008d"), "lookback", "lookback", "exceeds the lookback of signal 'engagement'");
    }

    /// <summary>
    /// Text that is not text (a lone surrogate escape), JSON that does not parse, a path or a method the
    /// API does not have: each a 4xx with a JSON error saying what, where a person counts from 1.
    /// </summary>
    [Fact]
    public async Task Malformed_requests_get_JSON_errors_that_say_what_and_where()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;

        async Task<string> Error(HttpResponseMessage response, HttpStatusCode status)
        {
            response.StatusCode.Should().Be(status);
            response.Content.Headers.ContentType!.MediaType.Should().Be("application/json");
            return (await ServingWorld.JsonAsync(response)).GetProperty("error").GetString()!;
        }

        string lone = Event("s1", 1, "save", t).Replace("\"save\"", "\"sa\\ud800ve\"", StringComparison.Ordinal);
        (await Error(await client.PostAsync("v1/events", new StringContent(lone)), HttpStatusCode.BadRequest))
            .Should().Be($"events[0]: a string is not valid Unicode: unpaired surrogate escape \\ud800 at byte {lone.IndexOf('\\', StringComparison.Ordinal) + 1}");
        (await Error(await client.PostAsync("v1/signals/engagement/sequences", new StringContent("""{"user_ids":[1],"lookback":"\udc00"}""")), HttpStatusCode.BadRequest))
            .Should().Be("the body: a string is not valid Unicode: unpaired surrogate escape \\udc00 at byte 29");
        // Bytes that are not UTF-8: the JSON reader finds them only when it decodes the string (an
        // event's, after it is stored; the multi-get's, with a 500).
        var notUtf8 = Encoding.UTF8.GetBytes(Event("s1", 1, "save", t).Replace("\"s1\"", "\"s1~\"", StringComparison.Ordinal)).Select(b => b == (byte)'~' ? (byte)0xFF : b).ToArray();
        (await Error(await client.PostAsync("v1/events", new ByteArrayContent(notUtf8)), HttpStatusCode.BadRequest))
            .Should().Be($"events[0]: a string is not valid UTF-8: byte 0xFF at byte {Array.IndexOf(notUtf8, (byte)0xFF) + 1}");
        (await Error(await client.PostAsync("v1/signals/engagement/sequences", new ByteArrayContent([.. "{\"user_ids\":[1],\"lookback\":\""u8, 0xC3, .. "\"}"u8])), HttpStatusCode.BadRequest))
            .Should().Be("the body: a string is not valid UTF-8: byte 0xC3 at byte 29");
        (await Error(await client.PostAsync("v1/signals/engagement/sequences", new StringContent("{\"user_ids\":\n [1,]}")), HttpStatusCode.BadRequest))
            .Should().StartWith("the body is not valid JSON at line 2, byte 5: ").And.NotContain("LineNumber").And.NotContain("BytePositionInLine").And.NotContain("reader options", "the reader is ours, not the caller's");
        (await Error(await client.PostAsync("v1/events", new StringContent("[" + Event("s2", 1, "save", t) + ",{\"a\":}]")), HttpStatusCode.BadRequest))
            .Should().StartWith("the body is not valid JSON at line 1, byte ").And.NotContain("LineNumber");
        // NDJSON: the line of the body, not "line 1" of the event (a blank line between still counts).
        string lines = Event("s3", 1, "save", t) + "\n\n" + "{\"event_id\": }" + "\n";
        (await Error(await client.PostAsync("v1/events", new StringContent(lines, Encoding.UTF8, "application/x-ndjson")), HttpStatusCode.BadRequest))
            .Should().StartWith("events[1] is not valid JSON at line 3 of the body, byte 14 of that line: ");
        (await Error(await client.PostAsync("v1/events", new StringContent("\n  {\"event_id\": }\n", Encoding.UTF8, "application/x-ndjson")), HttpStatusCode.BadRequest))
            .Should().StartWith("events[0] is not valid JSON at line 2 of the body, byte 16 of that line: ", "the spaces the line starts with count");
        (await Error(await client.GetAsync("v1/nope"), HttpStatusCode.NotFound)).Should().Be("no route GET /v1/nope; the API is described at /openapi.json");
        (await Error(await client.DeleteAsync("v1/status"), HttpStatusCode.MethodNotAllowed)).Should().StartWith("DELETE is not allowed on /v1/status");
        // A made-up method is "other" in the metrics: each was a new series anyone without a key could add.
        using (var made = new HttpRequestMessage(new HttpMethod("XYZZY"), "v1/nope"))
        {
            (await client.SendAsync(made)).IsSuccessStatusCode.Should().BeFalse();
        }

        string exposition = await (await client.GetAsync("metrics")).Content.ReadAsStringAsync();
        exposition.Should().Contain("method=\"other\"").And.NotContain("XYZZY");
        (await Error(await client.GetAsync("v1/signals/nope/users/1/sequence"), HttpStatusCode.NotFound)).Should().Contain("nope", "an endpoint's own 404 keeps its message");
    }

    /// <summary>
    /// A user with exactly max_length events in the stream has a whole sequence; one with a single event
    /// more has a truncated one, after the stream's trims too, as the snapshot of the same events says.
    /// </summary>
    [Fact]
    public async Task Truncated_tells_a_full_stream_sequence_from_one_that_dropped_an_event()
    {
        await using var world = new ServingWorld(maxLength: 5);
        var counts = new Dictionary<long, int> { [601] = 4, [602] = 5, [603] = 6, [604] = 9 };
        var events = counts.SelectMany(c => Enumerable.Range(0, c.Value).Select(i =>
            new RawEvent($"t{c.Key}-{i}", c.Key, "save", ServingWorld.Now - ServingWorld.Hour + (i * 1_000_000L), ServingWorld.Now - ServingWorld.Hour + (i * 1_000_000L), i, null))).ToList();
        await world.StreamAsync(events, new StreamOptions { MaxBatchRecords = 200, MaxWait = TimeSpan.FromMilliseconds(10), TrimInterval = TimeSpan.FromTicks(1) });
        var snapshot = await world.SnapshotAsync(Weft.Engine.Sequences.SequenceCut.For(world.Signal, ServingWorld.Now, ServingWorld.Now, null));
        await world.StartAsync();
        using var client = world.Client();

        foreach (var (user, count) in counts)
        {
            var body = await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{user}/sequence"));
            int row = Array.IndexOf(((PrimitiveColumn<long>)snapshot.Keys[StandardColumns.UserId]).Values, user);
            body.GetProperty("length").GetInt32().Should().Be(Math.Min(count, 5), $"user {user}");
            body.GetProperty("provenance").GetProperty("truncated").GetBoolean().Should().Be(count > 5, $"user {user} streamed {count} events")
                .And.Be(snapshot.Truncated[row], "the snapshot of the same events agrees");
            var limited = await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{user}/sequence?limit=5"));
            limited.GetProperty("provenance").GetProperty("truncated").GetBoolean().Should().Be(count > 5, $"a limit of max_length reads as no limit, user {user}");
        }
    }

    [Fact]
    public async Task A_limit_above_the_signals_max_length_gets_400_naming_max_length()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();

        var response = await client.GetAsync("v1/signals/engagement/users/1/sequence?limit=21");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var body = await ServingWorld.JsonAsync(response);
        body.GetProperty("parameter").GetString().Should().Be("limit");
        body.GetProperty("limit").GetString().Should().Be("max_length");
        (await (await client.GetAsync("v1/signals/engagement/users/1/sequence?limit=21")).Content.ReadAsStringAsync())
            .Should().Contain("of signal 'engagement'", "the quotes a person reads in curl are not escaped to \\u0027");
        body.GetProperty("error").GetString().Should().Be("limit 21 exceeds the max_length of signal 'engagement' (20)");
    }

    /// <summary>
    /// The body is read as its Content-Type declares: application/json holds an array of events or one
    /// (possibly pretty-printed) event, application/x-ndjson one event a line; a type that cannot hold
    /// events is refused with 415, and an empty body with 400, not a server error.
    /// </summary>
    [Fact]
    public async Task Event_bodies_are_read_by_their_declared_type_and_an_empty_or_unsupported_one_is_refused_plainly()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;
        StringContent Body(string text, string type) => new(text, Encoding.UTF8, type);
        async Task<(HttpStatusCode Status, string Text)> PostAsync(string url, HttpContent content)
        {
            var response = await client.PostAsync(url, content);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        string pretty = JsonSerializer.Serialize(JsonDocument.Parse(Event("pp1", 700, "save", t, 3)).RootElement, new JsonSerializerOptions { WriteIndented = true });
        pretty.Should().Contain("\n");
        (await PostAsync("v1/events", Body(pretty, "application/json"))).Status.Should().Be(HttpStatusCode.Accepted);
        (await PostAsync("v1/events", Body(pretty, "text/plain"))).Status.Should().Be(HttpStatusCode.Accepted, "without a JSON type the body is still read for what it holds");

        var lines = Event("nd1", 701, "save", t, 3) + "\n" + Event("nd2", 701, "save", t + 1, 4);
        (await PostAsync("v1/events", Body(lines, "application/x-ndjson"))).Status.Should().Be(HttpStatusCode.Accepted);
        var linesAsJson = await PostAsync("v1/events", Body(lines, "application/json"));
        linesAsJson.Status.Should().Be(HttpStatusCode.BadRequest);
        linesAsJson.Text.Should().Contain("application/x-ndjson");

        var xml = await PostAsync("v1/events", Body("<event/>", "application/xml"));
        xml.Status.Should().Be(HttpStatusCode.UnsupportedMediaType);
        xml.Text.Should().Contain("application/xml").And.Contain("application/json");

        // A compressed body: its bytes were read as JSON ("'0x1F' is an invalid start of a value").
        var zipped = new MemoryStream();
        await using (var gzip = new System.IO.Compression.GZipStream(zipped, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            await gzip.WriteAsync(Encoding.UTF8.GetBytes("[" + Event("gz1", 702, "save", t, 3) + "]"));
        }

        foreach (var url in new[] { "v1/events", "v1/signals/engagement/sequences" })
        {
            var compressed = new ByteArrayContent(zipped.ToArray());
            compressed.Headers.ContentType = new("application/json");
            compressed.Headers.ContentEncoding.Add("gzip");
            var gz = await PostAsync(url, compressed);
            gz.Status.Should().Be(HttpStatusCode.UnsupportedMediaType, url);
            gz.Text.Should().Contain("Content-Encoding 'gzip' is not supported: send the body uncompressed");
        }

        var empty = await PostAsync("v1/events", new ByteArrayContent([]));
        empty.Status.Should().Be(HttpStatusCode.BadRequest);
        empty.Text.Should().Contain("no events in the body");
        (await PostAsync("v1/signals/engagement/sequences", new ByteArrayContent([]))).Status.Should().Be(HttpStatusCode.BadRequest);

        var body = await PollAsync(client, "v1/signals/engagement/users/701/sequence", b => b.GetProperty("length").GetInt32() >= 2);
        body.GetProperty("columns").GetProperty("event_id").EnumerateArray().Select(e => e.GetString()).Should().Equal("nd2", "nd1");
        body = await PollAsync(client, "v1/signals/engagement/users/700/sequence", b => b.GetProperty("length").GetInt32() >= 1);
        body.GetProperty("columns").GetProperty("event_id").EnumerateArray().Select(e => e.GetString()).Should().Equal("pp1");
    }

    /// <summary>An event from a client whose clock runs hours ahead is served, but the watermark counts it at its arrival.</summary>
    [Fact]
    public async Task An_event_from_a_clock_hours_ahead_is_served_without_moving_the_watermark_past_now()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;
        var json = "[" + Event("on-time", 600, "save", t, 3) + "," + Event("ahead", 600, "save", ServingWorld.Now + (20 * ServingWorld.Hour), 4) + "]";
        (await client.PostAsync("v1/events", new StringContent(json, Encoding.UTF8, "application/json"))).StatusCode.Should().Be(HttpStatusCode.Accepted);

        string later = Uri.EscapeDataString(Timestamps.Format(ServingWorld.Now + (21 * ServingWorld.Hour)));
        var body = await PollAsync(client, $"v1/signals/engagement/users/600/sequence?as_of={later}", b => b.GetProperty("length").GetInt32() >= 2);
        body.GetProperty("columns").GetProperty("event_id").EnumerateArray().Select(e => e.GetString()).Should().Equal("ahead", "on-time");
        var watermark = Timestamps.ToMicros(DateTimeOffset.Parse(body.GetProperty("provenance").GetProperty("stream_watermark").GetString()!, CultureInfo.InvariantCulture));
        watermark.Should().BeInRange(t, ServingWorld.Now, "the event from ahead counts at its arrival, no later than now");
    }

    [Fact]
    public async Task Metrics_report_request_latency_per_route_freshness_lag_and_dead_letters()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;
        // Two good events and one the parser dead-letters (a save without its required item_id).
        var ndjson = Event("g1", 42, "save", t) + "\n" + Event("g2", 42, "click", t + 1) + "\n" + Event("bad", 42, "save", t + 2, item: null);
        (await client.PostAsync("v1/events", new StringContent(ndjson))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        await PollAsync(client, "v1/signals/engagement/users/42/sequence", b => b.GetProperty("length").GetInt32() == 2);
        (await client.GetAsync("healthz")).StatusCode.Should().Be(HttpStatusCode.OK);

        string metrics = "";
        for (int i = 0; i < 100 && !metrics.Contains("weft_dead_letters_total{signal=\"engagement\"", StringComparison.Ordinal); i++)
        {
            metrics = await (await client.GetAsync("metrics")).Content.ReadAsStringAsync();
            await Task.Delay(50);
        }

        metrics.Should().Contain("# TYPE weft_http_request_duration_seconds histogram");
        metrics.Should().Contain("weft_http_request_duration_seconds_bucket{route=\"/v1/signals/{signal}/users/{user_id}/sequence\",method=\"GET\",le=\"+Inf\"}");
        metrics.Should().Contain("weft_http_request_duration_seconds_count{route=\"/v1/events\",method=\"POST\"} 1");
        metrics.Should().Contain("weft_http_requests_total{route=\"/healthz\",status=\"200\"} 1");
        metrics.Should().Contain("weft_freshness_seconds_count{signal=\"engagement\",event_type=\"save\"} 1");
        metrics.Should().Contain("weft_dead_letters_total{signal=\"engagement\",stage=\"parse");
        metrics.Should().Contain("weft_stream_lag_records ");
        metrics.Should().Contain($"weft_stream_partition_lag_records{{partition=\"{Weft.Streaming.Embedded.EmbeddedLog.PartitionName}\"}} ", "serve exposes the runtime's lag gauges, as weft stream does");
        metrics.Should().Contain("weft_stream_lag_seconds ");
        metrics.Should().Contain("weft_embedded_log_segments 1").And.Contain("weft_embedded_log_start_offset 0").And.Contain("weft_embedded_log_faulted 0");
        metrics.Should().MatchRegex(@"weft_embedded_log_end_offset [1-9]");
        metrics.Should().Contain("weft_serving_stream_watermark_seconds{signal=\"engagement\"}");
        metrics.Should().Contain("weft_serving_history_version{signal=\"engagement\"}");
        metrics.Should().Contain("weft_serving_events_accepted_total{tenant=\"home-feed\"} 3");
        // Every line is a comment or "name[{labels}] value".
        foreach (var line in metrics.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            (line.StartsWith('#') || double.TryParse(line[(line.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out _)).Should().BeTrue(line);
        }

        var status = await ServingWorld.JsonAsync(await client.GetAsync("v1/status"));
        status.GetProperty("stream").GetProperty("running").GetBoolean().Should().BeTrue();
        status.GetProperty("stream").GetProperty("end_offset").GetInt64().Should().Be(3);
        status.GetProperty("signals")[0].GetProperty("stream_events").GetInt64().Should().Be(2);
    }

    /// <summary>
    /// The in-process runtime stops when a flush fails (here: its raw archive's folder became a file).
    /// Reads go on; /healthz turns 503, so a liveness probe restarts the process. /healthz (public) and
    /// /v1/status (any tenant) say when and where the error is, never the error itself, which names
    /// paths and signals of every tenant: it is in the server's log.
    /// </summary>
    [Fact]
    public async Task Healthz_fails_once_the_in_process_runtime_has_stopped_while_reads_go_on()
    {
        await using var world = new ServingWorld(serving: """{ "urls": "http://127.0.0.1:0", "stream_max_wait": "10ms", "stream_flush_interval": "50ms" }""");
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;
        (await client.PostAsync("v1/events", new StringContent(Event("h1", 42, "save", t)))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        await PollAsync(client, "v1/status", b => b.GetProperty("stream").GetProperty("archive").GetProperty("records").GetInt64() == 1);
        (await client.GetAsync("healthz")).StatusCode.Should().Be(HttpStatusCode.OK);

        string folder = Path.Combine(world.Root, "lake", "raw", "stream");
        Directory.Delete(folder, recursive: true);
        await File.WriteAllTextAsync(folder, "not a folder");
        (await client.PostAsync("v1/events", new StringContent(Event("h2", 42, "click", t + 1)))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        var status = await PollAsync(client, "v1/status", b => !b.GetProperty("stream").GetProperty("running").GetBoolean());

        status.GetProperty("stream").GetProperty("running").GetBoolean().Should().BeFalse("the flush could not write the archive");
        var health = await client.GetAsync("healthz");
        health.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        string shown = status.GetProperty("stream").GetProperty("error").GetString()!;
        shown.Should().MatchRegex(@"^the in-process streaming runtime stopped at \d{4}-\d\d-\d\dT[\d:.]+Z \(\w+\); the error is in weft serve's log \(event 6004\); restart weft serve$")
            .And.NotContain(world.Root, "the error's paths are the server's to know");
        (await health.Content.ReadAsStringAsync()).Should().Be(shown + "\n");
        using var other = world.Client(ServingWorld.OtherKey);
        (await other.GetStringAsync("v1/status")).Should().NotContain("engagement", "another tenant's signal is never named to this one");
        (await client.GetAsync("v1/signals/engagement/users/42/sequence")).StatusCode.Should().Be(HttpStatusCode.OK, "reads do not need the runtime");
        (await (await client.GetAsync("metrics")).Content.ReadAsStringAsync()).Should().Contain("weft_http_requests_total{route=\"/healthz\",status=\"503\"} 1");
    }

    /// <summary>
    /// The in-process stream's raw archive in /v1/status and /metrics: its folder, and the records, bytes
    /// and files its flushes committed, as the folder holds them.
    /// </summary>
    [Fact]
    public async Task Status_and_metrics_report_what_the_stream_committed_to_its_raw_archive()
    {
        await using var world = new ServingWorld(serving: """{ "urls": "http://127.0.0.1:0", "stream_max_wait": "10ms", "stream_flush_interval": "50ms" }""");
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;
        var ndjson = string.Join("\n", Enumerable.Range(0, 25).Select(i => Event($"ar{i}", 40 + (i % 3), "save", t + i)));
        (await client.PostAsync("v1/events", new StringContent(ndjson))).StatusCode.Should().Be(HttpStatusCode.Accepted);

        var status = await PollAsync(client, "v1/status", b => b.GetProperty("stream").TryGetProperty("archive", out var a) && a.GetProperty("records").GetInt64() == 25);

        var archive = status.GetProperty("stream").GetProperty("archive");
        string folder = Path.Combine(world.Root, "lake", "raw", "stream");
        archive.GetProperty("folder").GetString().Should().Be(Path.Combine("lake", "raw", "stream"), "a path as weft.json's folder sees it: tenants do not learn the server's layout");
        status.GetProperty("stream").GetProperty("source").GetString().Should().Be("embedded:" + Path.GetRelativePath(world.Root, world.Server.State.Stream!.Log.Location));
        status.GetRawText().Should().NotContain(world.Root, "no absolute path of the server's");
        archive.GetProperty("records").GetInt64().Should().Be(25);
        var files = Directory.GetFiles(folder, "*.jsonl", SearchOption.AllDirectories);
        files.SelectMany(File.ReadAllLines).Should().HaveCount(25);
        archive.GetProperty("files").GetInt64().Should().Be(files.Length).And.BeGreaterThan(0);
        long bytes = files.Sum(f => new FileInfo(f).Length);
        archive.GetProperty("bytes").GetInt64().Should().Be(bytes);
        archive.GetProperty("last_committed").GetString().Should().Be(status.GetProperty("server_time").GetString(), "the flush ran at the server's clock");
        string metrics = await (await client.GetAsync("metrics")).Content.ReadAsStringAsync();
        metrics.Should().Contain("\nweft_stream_archive_records_total 25\n")
            .And.Contain($"\nweft_stream_archive_bytes_total {bytes}\n")
            .And.Contain($"\nweft_stream_archive_files_total {files.Length}\n");
    }

    [Fact]
    public async Task Without_an_archive_status_and_metrics_name_none()
    {
        await using var world = new ServingWorld();
        string config = Path.Combine(world.Root, "weft.json");
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config)).Replace("\"path\": \"log\" }", "\"path\": \"log\", \"archive\": false }", StringComparison.Ordinal));
        await world.StartAsync();
        using var client = world.Client();
        long t = ServingWorld.Now - ServingWorld.Hour;
        (await client.PostAsync("v1/events", new StringContent(Event("na1", 42, "save", t)))).StatusCode.Should().Be(HttpStatusCode.Accepted);

        var status = await PollAsync(client, "v1/status", b => b.GetProperty("signals")[0].GetProperty("stream_events").GetInt64() == 1);

        status.GetProperty("signals")[0].GetProperty("stream_events").GetInt64().Should().Be(1);
        status.GetProperty("stream").GetProperty("running").GetBoolean().Should().BeTrue();
        status.GetProperty("stream").TryGetProperty("archive", out _).Should().BeFalse("the stream archives nothing");
        (await (await client.GetAsync("metrics")).Content.ReadAsStringAsync()).Should().Contain("weft_stream_records_total 1").And.NotContain("weft_stream_archive_");
    }

    [Fact]
    public async Task The_OpenAPI_document_parses_and_describes_every_endpoint()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client(key: null);

        // A Host header a client set is not written into the document (a shared cache would keep it).
        using var request = new HttpRequestMessage(HttpMethod.Get, "openapi.json");
        request.Headers.Host = "evil.example";
        var response = await client.SendAsync(request);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsStringAsync()).Should().NotContain("evil.example");
        var doc = await ServingWorld.JsonAsync(response);
        doc.GetProperty("openapi").GetString().Should().StartWith("3.1");
        doc.GetProperty("info").GetProperty("title").GetString().Should().Be("Weft serving API");
        var paths = doc.GetProperty("paths");
        var documented = paths.EnumerateObject().SelectMany(p => p.Value.EnumerateObject().Select(m => $"{m.Name.ToUpperInvariant()} {p.Name}")).ToHashSet();
        var endpoints = world.Server.Endpoints.Where(e => e.Route != "/openapi.json").Select(e => $"{e.Method} {e.Route}").ToList();
        endpoints.Should().HaveCount(16);
        endpoints.Where(e => e.StartsWith("GET ", StringComparison.Ordinal)).Select(e => "HEAD " + e[4..]).Should().BeSubsetOf(endpoints, "every read takes HEAD as well");
        documented.Should().BeEquivalentTo(endpoints);
        var ids = paths.EnumerateObject().SelectMany(p => p.Value.EnumerateObject()).Where(m => m.Value.TryGetProperty("operationId", out _)).Select(m => m.Value.GetProperty("operationId").GetString()).ToList();
        ids.Should().OnlyHaveUniqueItems("client generators need one name per operation").And.Contain(["sequence", "sequenceHead"]);
        var routes = paths.GetProperty("/v1/signals/{signal}/users/{user_id}/routes").GetProperty("get");
        routes.GetProperty("parameters").EnumerateArray().Select(p => p.GetProperty("name").GetString()).Should().BeEquivalentTo("signal", "user_id", "consumer");
        routes.GetProperty("responses").EnumerateObject().Select(r => r.Name).Should().BeEquivalentTo("200", "400", "401", "404");
        var sequence = paths.GetProperty("/v1/signals/{signal}/users/{user_id}/sequence").GetProperty("get");
        sequence.GetProperty("parameters").EnumerateArray().Select(p => p.GetProperty("name").GetString())
            .Should().BeEquivalentTo("signal", "user_id", "columns", "limit", "lookback", "as_of", "known_at", "consumer");
        sequence.GetProperty("responses").EnumerateObject().Select(r => r.Name).Should().BeEquivalentTo("200", "400", "401", "404", "409", "429", "502", "503");
        paths.GetProperty("/v1/signals/{signal}/sequences").GetProperty("post").GetProperty("responses").EnumerateObject().Select(r => r.Name)
            .Should().BeEquivalentTo("200", "400", "401", "404", "409", "415", "429", "502", "503");
        var schemas = doc.GetProperty("components").GetProperty("schemas");
        schemas.GetProperty("ProvenanceDoc").GetProperty("properties").EnumerateObject().Select(p => p.Name)
            .Should().Contain(["fingerprint", "stream_watermark", "batch_sealed_through", "from_stream", "from_batch", "truncated", "lag_ms", "from_legacy"]);
        schemas.GetProperty("SequenceDoc").GetProperty("properties").EnumerateObject().Select(p => p.Name).Should().Contain("assembly");
        paths.GetProperty("/v1/events").GetProperty("post").GetProperty("requestBody").GetProperty("content").EnumerateObject().Select(c => c.Name)
            .Should().BeEquivalentTo("application/json", "application/x-ndjson", "application/jsonl");
        paths.GetProperty("/v1/events").GetProperty("post").GetProperty("responses").EnumerateObject().Select(r => r.Name)
            .Should().BeEquivalentTo("202", "400", "401", "409", "415", "429", "503");
    }

    [Fact]
    public void Timestamps_are_written_with_microseconds_in_UTC()
    {
        Span<byte> text = stackalloc byte[32];
        var rng = new Random(7);
        long[] samples = [0, -1, 1, 951_782_400_000_000, Timestamps.ToMicros(new DateTimeOffset(9999, 12, 31, 23, 59, 59, TimeSpan.Zero)) + 999_999,
            Timestamps.ToMicros(new DateTimeOffset(1, 1, 1, 0, 0, 0, TimeSpan.Zero))];
        foreach (long micros in samples.Concat(Enumerable.Range(0, 2000).Select(_ => rng.NextInt64(-62_135_596_800_000_000, 253_402_300_799_999_999))))
        {
            int n = Http.SequenceJson.FormatTimestamp(micros, text);
            Encoding.ASCII.GetString(text[..n]).Should().Be(Timestamps.Format(micros), micros.ToString(CultureInfo.InvariantCulture));
        }
    }
}
