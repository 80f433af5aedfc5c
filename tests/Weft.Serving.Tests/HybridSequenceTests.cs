using System.Globalization;
using System.Net;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Migration;
using Weft.Tests.Legacy;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>
/// <c>GET …/sequence?consumer=C</c> during a migration: the sequence assembled from Weft's events of
/// the types routed to Weft for the user and a legacy pipeline's HTTP endpoint's events of the others,
/// checked against a reference merge of Weft's whole sequence and the legacy answer; the assembly's
/// version and sources; and the failures that must not be papered over with Weft's data.
/// </summary>
public sealed class HybridSequenceTests
{
    private sealed record Element(string EventId, string EventType, long EventTime, string? Category);

    internal static string Url(long user, string? consumer, int? limit = null) =>
        $"v1/signals/engagement/users/{user.ToString(CultureInfo.InvariantCulture)}/sequence?lookback=7d"
        + (limit is { } l ? $"&limit={l}" : "") + (consumer is null ? "" : $"&consumer={consumer}");

    private static List<Element> Elements(JsonElement body)
    {
        var columns = body.GetProperty("columns");
        var ids = columns.GetProperty("event_id").EnumerateArray().Select(e => e.GetString()!).ToList();
        var types = columns.GetProperty("event_type").EnumerateArray().Select(e => e.GetString()!).ToList();
        var times = columns.GetProperty("event_time").EnumerateArray().Select(e => Timestamps.ToMicros(DateTimeOffset.Parse(e.GetString()!, CultureInfo.InvariantCulture))).ToList();
        var categories = columns.GetProperty("category").EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Null ? null : e.GetString()).ToList();
        return [.. ids.Select((id, i) => new Element(id, types[i], times[i], categories[i]))];
    }

    internal static async Task SetLegacyAsync(ServingWorld world, string legacy)
    {
        string path = Path.Combine(world.Root, "weft.json");
        string config = await File.ReadAllTextAsync(path);
        await File.WriteAllTextAsync(path, config.Replace("\"tenants\":", $"\"legacy\": {{ \"engagement\": {legacy} }},\n  \"tenants\":", StringComparison.Ordinal));
    }

    /// <summary>Legacy's version of a user's click and save events (its own ids, times and category), plus what its answer must not contribute.</summary>
    private static (string Json, List<Element> Usable) LegacyAnswer(IEnumerable<RawEvent> events, long user)
    {
        var usable = new List<Element>();
        var objects = new List<string>();
        // Legacy is not a copy of Weft: it lost every third event and stamps the rest 30 minutes earlier,
        // so Weft's events of legacy's types crowding Weft's own out of a short cut would show.
        int n = 0;
        foreach (var e in events.Where(e => e.UserId == user && e.EventType is "click" or "save").DistinctBy(e => e.EventId))
        {
            if (n++ % 3 == 0)
            {
                continue;
            }

            var element = new Element("L" + e.EventId, e.EventType, e.EventTime - (ServingWorld.Hour / 2), "legacy-" + e.EventType);
            usable.Add(element);
            string obj = $$"""{"event_id":"{{element.EventId}}","event_type":"{{e.EventType}}","event_time":"{{Timestamps.Format(element.EventTime)}}","item_id":{{e.ItemId}},"category":"{{element.Category}}"}""";
            objects.Add(obj);
            if (e.EventId.EndsWith('3'))
            {
                objects.Add(obj); // legacy answered an event twice: it counts once
            }
        }

        // Outside the cut: after as_of, and before the 7-day lookback; and an element with no event_time.
        objects.Add($$"""{"event_id":"Lfuture","event_type":"save","event_time":"{{Timestamps.Format(ServingWorld.Now + ServingWorld.Hour)}}","item_id":1,"category":"x"}""");
        objects.Add($$"""{"event_id":"Lold","event_type":"save","event_time":"{{Timestamps.Format(ServingWorld.Now - (8 * ServingWorld.Day))}}","item_id":1,"category":"x"}""");
        objects.Add("""{"event_id":"Lbroken","event_type":"save","item_id":1}""");
        return ($$"""{"events":[{{string.Join(",", objects)}}]}""", usable);
    }

    internal static async Task ShadowAsync(ServingWorld world, string eventType)
    {
        await using var store = await MigrationStore.OpenAsync(Path.Combine(world.Root, "migration.db"));
        await store.ShadowAsync("engagement", eventType, new EvidenceInput(MigrationStore.ShadowKind, true, "ok", "{}"), null, "test");
    }

    /// <summary>Walks the event type through its gates to a route of <paramref name="percent"/> for <paramref name="consumer"/>; returns the cutover's audit line.</summary>
    internal static async Task<long> CutOverAsync(ServingWorld world, string eventType, string consumer, double percent)
    {
        await ShadowAsync(world, eventType);
        await using var store = await MigrationStore.OpenAsync(Path.Combine(world.Root, "migration.db"));
        await store.RecordComparisonAsync("engagement", eventType, new EvidenceInput(MigrationStore.ComparisonKind, true, "ok", "{}"), "test");
        await store.RecordAbTestAsync("engagement", eventType, new EvidenceInput(MigrationStore.AbTestKind, true, "ok", "{}"), "test");
        return (await store.CutoverAsync("engagement", eventType, consumer, percent, null, "test")).Entry.Seq;
    }

    [Fact]
    public async Task A_consumer_gets_Weft_events_of_the_types_routed_to_Weft_and_legacy_events_of_the_others_merged_newest_first_under_the_cut()
    {
        await using var legacy = await LegacyServer.StartAsync();
        await using var world = new ServingWorld(maxLength: 200);
        var events = ServingWorld.Events(240, seed: 31);
        await world.StreamAsync(events);
        var answers = new Dictionary<long, List<Element>>();
        for (long user = 1; user <= 12; user++)
        {
            var (json, usable) = LegacyAnswer(events, user);
            legacy.Bodies[user] = json;
            answers[user] = usable;
        }

        await SetLegacyAsync(world, $$"""{ "endpoint": "{{legacy.Url}}", "endpoint_timeout": "20s" }""");
        long version = await CutOverAsync(world, "click", "ranker", 50);

        await world.StartAsync();
        using var client = world.Client();
        int legacyClicks = 0, weftClicks = 0;
        for (long user = 1; user <= 12; user++)
        {
            bool clickFromWeft = MigrationRouting.ServedByWeft(50, "engagement", "click", user);
            var weftAll = Elements(await ServingWorld.JsonAsync(await client.GetAsync(Url(user, null))));
            weftAll.Count.Should().BeLessThan(200, "the plain sequence holds all of the user's events: the reference sees everything");
            var reference = weftAll.Where(e => e.EventType == "click" && clickFromWeft)
                .Concat(answers[user].Where(e => e.EventType == "save" || !clickFromWeft))
                .OrderByDescending(e => e.EventTime).ThenBy(e => e.EventId, StringComparer.Ordinal)
                .ToList();

            foreach (int limit in new[] { 4, 200 })
            {
                var response = await client.GetAsync(Url(user, "ranker", limit));
                response.StatusCode.Should().Be(HttpStatusCode.OK);
                var body = await ServingWorld.JsonAsync(response);
                Elements(body).Should().Equal(reference.Take(limit), $"user {user}, limit {limit}");
                var provenance = body.GetProperty("provenance");
                int fromLegacy = reference.Take(limit).Count(e => e.EventId.StartsWith('L'));
                provenance.GetProperty("from_legacy").GetInt32().Should().Be(fromLegacy);
                (provenance.GetProperty("from_stream").GetInt32() + provenance.GetProperty("from_batch").GetInt32()).Should().Be(Math.Min(limit, reference.Count) - fromLegacy);
                provenance.GetProperty("truncated").GetBoolean().Should().Be(reference.Count > limit);
                var assembly = body.GetProperty("assembly");
                assembly.GetProperty("consumer").GetString().Should().Be("ranker");
                assembly.GetProperty("version").GetInt64().Should().Be(version);
                assembly.GetProperty("sources").GetProperty("click").GetString().Should().Be(clickFromWeft ? "weft" : "legacy");
                assembly.GetProperty("sources").GetProperty("save").GetString().Should().Be("legacy", "save has not started its migration");
            }

            (clickFromWeft ? ref weftClicks : ref legacyClicks)++;
        }

        // The multi-get assembles each user's sequence exactly as the single read does.
        var many = await client.PostAsync("v1/signals/engagement/sequences", new StringContent(
            """{"user_ids": [1,2,3,4,5,6,7,8,9,10,11,12], "limit": 4, "lookback": "7d", "consumer": "ranker"}""", System.Text.Encoding.UTF8, "application/json"));
        many.StatusCode.Should().Be(HttpStatusCode.OK);
        var sequences = (await ServingWorld.JsonAsync(many)).GetProperty("sequences").EnumerateArray().ToList();
        sequences.Should().HaveCount(12);
        foreach (var sequence in sequences)
        {
            long user = sequence.GetProperty("user_id").GetInt64();
            var single = await ServingWorld.JsonAsync(await client.GetAsync(Url(user, "ranker", 4)));
            sequence.GetProperty("columns").GetRawText().Should().Be(single.GetProperty("columns").GetRawText(), $"user {user}");
            sequence.GetProperty("assembly").GetRawText().Should().Be(single.GetProperty("assembly").GetRawText());
            sequence.GetProperty("provenance").GetProperty("from_legacy").GetInt32().Should().Be(single.GetProperty("provenance").GetProperty("from_legacy").GetInt32());
        }

        weftClicks.Should().BePositive("the 50 % split sends some users' clicks to Weft");
        legacyClicks.Should().BePositive("and some to legacy");
        string metrics = await (await client.GetAsync("metrics")).Content.ReadAsStringAsync();
        metrics.Should().Contain("weft_legacy_requests_total{signal=\"engagement\",outcome=\"ok\"} 48", "24 single reads, 12 in the multi-get, 12 single reads to check it")
            .And.Contain("weft_legacy_unreadable_elements_total{signal=\"engagement\"} 48", "each answer's element without an event_time, left out");
    }

    [Fact]
    public async Task With_every_type_routed_to_Weft_the_assembled_sequence_is_the_plain_one_and_legacy_is_not_asked()
    {
        await using var legacy = await LegacyServer.StartAsync();
        await using var world = new ServingWorld();
        await world.StreamAsync(ServingWorld.Events(200, seed: 32));
        await SetLegacyAsync(world, $$"""{ "endpoint": "{{legacy.Url}}", "endpoint_timeout": "20s" }""");
        await CutOverAsync(world, "click", MigrationRouting.DefaultConsumer, 100);
        await CutOverAsync(world, "save", MigrationRouting.DefaultConsumer, 100);

        await world.StartAsync();
        using var client = world.Client();
        for (long user = 1; user <= 12; user++)
        {
            var plain = await ServingWorld.JsonAsync(await client.GetAsync(Url(user, null, 5)));
            var assembled = await ServingWorld.JsonAsync(await client.GetAsync(Url(user, "ranker", 5)));
            assembled.GetProperty("columns").GetRawText().Should().Be(plain.GetProperty("columns").GetRawText(), $"user {user}");
            assembled.GetProperty("provenance").GetProperty("truncated").GetBoolean().Should().Be(plain.GetProperty("provenance").GetProperty("truncated").GetBoolean());
            assembled.GetProperty("provenance").GetProperty("from_legacy").GetInt32().Should().Be(0);
            assembled.GetProperty("assembly").GetProperty("sources").EnumerateObject().Should().OnlyContain(p => p.Value.GetString() == "weft");
            plain.TryGetProperty("assembly", out _).Should().BeFalse("a read without a consumer is not assembled");
        }

        legacy.Requests.Should().Be(0);
    }

    [Fact]
    public async Task A_type_routed_to_legacy_is_never_filled_from_Weft_when_legacy_cannot_answer()
    {
        await using var legacy = await LegacyServer.StartAsync();
        await using var world = new ServingWorld();
        await world.StreamAsync(ServingWorld.Events(100, seed: 33));
        // click in shadow, save not started: legacy serves both to every consumer.
        // Long enough for a first, cold request on a loaded machine (150 ms was not, in CI), short enough to wait out.
        await SetLegacyAsync(world, $$"""{ "endpoint": "{{legacy.Url}}", "endpoint_timeout": "2s" }""");
        await ShadowAsync(world, "click");

        await world.StartAsync();
        using var client = world.Client();

        legacy.FailWith = 503;
        var failed = await client.GetAsync(Url(3, "ranker"));
        failed.StatusCode.Should().Be(HttpStatusCode.BadGateway);
        (await ServingWorld.JsonAsync(failed)).GetProperty("error").GetString().Should().Contain("/users/3/sequence").And.Contain("503");

        legacy.FailWith = 0;
        legacy.DelayMs = 6_000;
        var slow = await client.GetAsync(Url(3, "ranker"));
        slow.StatusCode.Should().Be(HttpStatusCode.BadGateway);
        (await ServingWorld.JsonAsync(slow)).GetProperty("error").GetString().Should().Contain("did not answer within 2s");

        legacy.DelayMs = 0;
        legacy.Bodies[3] = "<html>not json</html>";
        var garbage = await client.GetAsync(Url(3, "ranker"));
        garbage.StatusCode.Should().Be(HttpStatusCode.BadGateway);
        (await ServingWorld.JsonAsync(garbage)).GetProperty("error").GetString().Should().Contain("not JSON");

        (await client.GetAsync(Url(3, " "))).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        string metrics = await (await client.GetAsync("metrics")).Content.ReadAsStringAsync();
        metrics.Should().Contain("weft_legacy_requests_total{signal=\"engagement\",outcome=\"failed\"} 3");
    }

    [Fact]
    public async Task Without_a_legacy_endpoint_a_type_routed_to_legacy_is_refused_naming_the_type_and_the_option()
    {
        await using var world = new ServingWorld();
        await world.StreamAsync(ServingWorld.Events(50, seed: 34));
        await ShadowAsync(world, "click");

        await world.StartAsync();
        using var client = world.Client();
        var refused = await client.GetAsync(Url(2, "ranker"));

        refused.StatusCode.Should().Be(HttpStatusCode.Conflict);
        var error = (await ServingWorld.JsonAsync(refused)).GetProperty("error").GetString();
        error.Should().Contain("click, save").And.Contain("'ranker'").And.Contain("legacy.engagement.endpoint");
        var many = await client.PostAsync("v1/signals/engagement/sequences", new StringContent("""{"user_ids": [2, 3], "consumer": "ranker"}""", System.Text.Encoding.UTF8, "application/json"));
        many.StatusCode.Should().Be(HttpStatusCode.Conflict);
        var blank = await client.PostAsync("v1/signals/engagement/sequences", new StringContent("""{"user_ids": [2], "consumer": " "}""", System.Text.Encoding.UTF8, "application/json"));
        blank.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await ServingWorld.JsonAsync(blank)).GetProperty("parameter").GetString().Should().Be("consumer");
        (await client.GetAsync(Url(2, null))).StatusCode.Should().Be(HttpStatusCode.OK, "a read without a consumer is Weft's sequence, as before");
    }

    [Fact]
    public async Task The_status_reports_each_event_types_stage_routes_and_evidence_and_the_legacy_endpoints_breaker()
    {
        await using var legacy = await LegacyServer.StartAsync();
        await using var world = new ServingWorld();
        await world.StreamAsync(ServingWorld.Events(60, seed: 35));
        await SetLegacyAsync(world, $$"""{ "endpoint": "{{legacy.Url}}", "endpoint_timeout": "20s" }""");
        long version = await CutOverAsync(world, "click", "ranker", 10);
        await using (var store = await MigrationStore.OpenAsync(Path.Combine(world.Root, "migration.db")))
        {
            await store.ShadowAsync("engagement", "save", new EvidenceInput(MigrationStore.ShadowKind, false, "legacy holds no save", "{}"), "legacy's saves land next week", "test");
            await store.RecordOutcomeAsync("engagement", "click", "feed", new EvidenceInput(MigrationStore.OutcomeKind, false, "feed: keep collecting", """{"sequential":true,"undecided":true}"""), "test");
            await store.RecordOutcomeAsync("engagement", "click", "ranker", new EvidenceInput(MigrationStore.OutcomeKind, false, "ranker clicked less", "{}"), "test");
        }

        await world.StartAsync();
        using var client = world.Client();
        var migration = (await ServingWorld.JsonAsync(await client.GetAsync("v1/status"))).GetProperty("signals")[0].GetProperty("migration");
        migration.GetProperty("assembly_version").GetInt64().Should().Be(version);
        var endpoint = migration.GetProperty("legacy_endpoint");
        endpoint.GetProperty("url").GetString().Should().Be(legacy.Url);
        endpoint.GetProperty("timeout").GetString().Should().Be("20s");
        endpoint.GetProperty("failures_in_a_row").GetInt32().Should().Be(0);
        endpoint.GetProperty("not_asked_until").ValueKind.Should().Be(JsonValueKind.Null);
        var types = migration.GetProperty("event_types").EnumerateArray().ToDictionary(t => t.GetProperty("event_type").GetString()!);
        types.Keys.Should().BeEquivalentTo(["click", "save"]);
        types["click"].GetProperty("stage").GetString().Should().Be("cutting-over");
        var route = types["click"].GetProperty("routes").EnumerateArray().Should().ContainSingle().Subject;
        route.GetProperty("consumer").GetString().Should().Be("ranker");
        route.GetProperty("percent").GetDouble().Should().Be(10);
        types["click"].GetProperty("evidence").GetProperty("abtest").GetProperty("passed").GetBoolean().Should().BeTrue();
        var outcomes = types["click"].GetProperty("evidence").GetProperty("outcomes").EnumerateArray().ToList();
        outcomes.Select(o => o.GetProperty("consumer").GetString()).Should().Equal("feed", "ranker");
        outcomes[0].GetProperty("passed").GetBoolean().Should().BeFalse();
        outcomes[0].GetProperty("undecided").GetBoolean().Should().BeTrue("a sequential test that needs more users is not a failure");
        var outcome = outcomes[1];
        outcome.GetProperty("passed").GetBoolean().Should().BeFalse();
        outcome.GetProperty("undecided").GetBoolean().Should().BeFalse();
        outcome.GetProperty("summary").GetString().Should().Be("ranker clicked less");
        types["save"].GetProperty("evidence").GetProperty("outcomes").GetArrayLength().Should().Be(0);
        types["save"].GetProperty("stage").GetString().Should().Be("shadow");
        types["save"].GetProperty("routes").GetArrayLength().Should().Be(0);
        types["save"].GetProperty("evidence").GetProperty("shadow").GetProperty("passed").GetBoolean().Should().BeFalse("it was overridden, and the status says so");
        types["save"].GetProperty("evidence").GetProperty("shadow").GetProperty("summary").GetString().Should().Be("legacy holds no save");
        types["save"].GetProperty("evidence").GetProperty("comparison").ValueKind.Should().Be(JsonValueKind.Null);
        legacy.Requests.Should().Be(0, "the status reads the ledger, never the endpoint");

        legacy.FailWith = 503;
        for (int i = 0; i < LegacyEndpoint.OpenAfter; i++)
        {
            (await client.GetAsync(Url(3, "ranker"))).StatusCode.Should().Be(HttpStatusCode.BadGateway);
        }

        endpoint = (await ServingWorld.JsonAsync(await client.GetAsync("v1/status"))).GetProperty("signals")[0].GetProperty("migration").GetProperty("legacy_endpoint");
        endpoint.GetProperty("failures_in_a_row").GetInt32().Should().Be(LegacyEndpoint.OpenAfter);
        endpoint.GetProperty("not_asked_until").ValueKind.Should().Be(JsonValueKind.String, "the breaker is open");
        endpoint.GetProperty("last_failure").GetString().Should().Contain("503");

        // Reads while the breaker is open ask nothing: counted as not asked, not timed (they pulled the latency down).
        for (int i = 0; i < 3; i++)
        {
            (await client.GetAsync(Url(3, "ranker"))).StatusCode.Should().Be(HttpStatusCode.BadGateway);
        }

        var metrics = await (await client.GetAsync("metrics")).Content.ReadAsStringAsync();
        metrics.Should().Contain("weft_legacy_requests_total{signal=\"engagement\",outcome=\"not_asked\"} 3");
        var timed = System.Text.RegularExpressions.Regex.Match(metrics, "weft_legacy_request_duration_seconds_count\\{signal=\"engagement\"\\} (\\d+)");
        timed.Success.Should().BeTrue();
        int.Parse(timed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture).Should().Be(legacy.Requests, "only the requests made are timed");

        using var other = world.Client(ServingWorld.OtherKey);
        var likes = (await ServingWorld.JsonAsync(await other.GetAsync("v1/status"))).GetProperty("signals")[0];
        likes.GetProperty("name").GetString().Should().Be("likes");
        likes.TryGetProperty("migration", out _).Should().BeFalse("nothing migrates 'likes': no legacy endpoint, no event type past not-started");
    }
}
