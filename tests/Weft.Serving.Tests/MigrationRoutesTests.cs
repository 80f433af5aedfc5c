using System.Globalization;
using System.Net;
using System.Text.Json;
using FluentAssertions;
using Weft.Migration;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>
/// <c>GET …/routes</c> during a migration: the sticky split a consumer's route asks for, user by user;
/// a rollback reaching the server within its refresh; exposures logged once per user for the
/// sample-ratio check; and, without a migration ledger, Weft for everything.
/// </summary>
public sealed class MigrationRoutesTests
{
    private static string RoutesUrl(long user, string? consumer) =>
        $"v1/signals/engagement/users/{user.ToString(CultureInfo.InvariantCulture)}/routes" + (consumer is null ? "" : $"?consumer={consumer}");

    private static Dictionary<string, JsonElement> ByType(JsonElement body) =>
        body.GetProperty("routes").EnumerateArray().ToDictionary(r => r.GetProperty("event_type").GetString()!, r => r);

    private static async Task CutClickOverAsync(string ledger, double percent, string consumer)
    {
        await using var store = await MigrationStore.OpenAsync(ledger);
        await store.ShadowAsync("engagement", "click", new EvidenceInput(MigrationStore.ShadowKind, true, "ok", "{}"), null, "test");
        await store.RecordComparisonAsync("engagement", "click", new EvidenceInput(MigrationStore.ComparisonKind, true, "ok", "{}"), "test");
        await store.RecordAbTestAsync("engagement", "click", new EvidenceInput(MigrationStore.AbTestKind, true, "ok", "{}"), "test");
        await store.CutoverAsync("engagement", "click", consumer, percent, null, "test");
    }

    [Fact]
    public async Task Each_user_is_routed_by_the_sticky_hash_and_exposures_are_logged_once_per_user()
    {
        await using var world = new ServingWorld();
        var ledger = Path.Combine(world.Root, "migration.db");
        await CutClickOverAsync(ledger, 30, "ranker");
        await world.StartAsync();
        using var client = world.Client();

        int weft = 0;
        for (long user = 1; user <= 300; user++)
        {
            var response = await client.GetAsync(RoutesUrl(user, "ranker"));
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            var routes = ByType(await ServingWorld.JsonAsync(response));
            bool expected = MigrationRouting.ServedByWeft(30, "engagement", "click", user);
            weft += expected ? 1 : 0;
            routes["click"].GetProperty("source").GetString().Should().Be(expected ? "weft" : "legacy", $"user {user}");
            routes["click"].GetProperty("stage").GetString().Should().Be("cutting-over");
            routes["click"].GetProperty("percent").GetDouble().Should().Be(30);
            routes["click"].GetProperty("bucket").GetInt32().Should().Be(MigrationRouting.Bucket("engagement", "click", user));
            routes["save"].GetProperty("source").GetString().Should().Be("legacy", "save has not started");
            routes["save"].GetProperty("stage").GetString().Should().Be("not-started");
            routes["save"].TryGetProperty("percent", out _).Should().BeFalse();
        }

        weft.Should().BeInRange(60, 120, "about 30 % of 300");
        // A user asking again is the same exposure; another consumer has no route of its own and no default.
        (await client.GetAsync(RoutesUrl(1, "ranker"))).EnsureSuccessStatusCode();
        var other = ByType(await ServingWorld.JsonAsync(await client.GetAsync(RoutesUrl(1, "search-ranker"))));
        other["click"].GetProperty("source").GetString().Should().Be("legacy");

        // A HEAD (a probe) serves nothing: it is no exposure, or the sample-ratio check would count probes.
        for (long user = 301; user <= 320; user++)
        {
            (await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, RoutesUrl(user, "ranker")))).StatusCode.Should().Be(HttpStatusCode.OK);
        }

        await world.Server.DisposeAsync(); // writes the buffered exposures
        await using var store = await MigrationStore.OpenAsync(ledger);
        var (weftUsers, legacyUsers) = await store.ExposureCountsAsync("engagement", "click", "ranker", 30);
        weftUsers.Should().Be(weft);
        legacyUsers.Should().Be(300 - weft);
        (await store.ExposureCountsAsync("engagement", "click", "search-ranker", 30)).Should().Be((0L, 0L));
    }

    [Fact]
    public async Task A_rollback_reaches_the_server_within_its_refresh_interval()
    {
        await using var world = new ServingWorld();
        var ledger = Path.Combine(world.Root, "migration.db");
        await CutClickOverAsync(ledger, 100, MigrationRouting.DefaultConsumer);
        await world.StartAsync();
        using var client = world.Client();
        ByType(await ServingWorld.JsonAsync(await client.GetAsync(RoutesUrl(5, "ranker"))))["click"].GetProperty("source").GetString().Should().Be("weft");

        await using (var store = await MigrationStore.OpenAsync(ledger))
        {
            await store.RollbackAsync("engagement", "click", null, "regression", "test");
        }

        world.Clock.Advance(TimeSpan.FromSeconds(3));
        var after = ByType(await ServingWorld.JsonAsync(await client.GetAsync(RoutesUrl(5, "ranker"))));
        after["click"].GetProperty("source").GetString().Should().Be("legacy");
        after["click"].GetProperty("stage").GetString().Should().Be("ab-tested");
    }

    /// <summary>
    /// A ledger damaged while the server runs (here a route's percent edited to text): reads that need
    /// the routes answer 503 saying the ledger cannot be read, without its path, and not a bare 500.
    /// </summary>
    [Fact]
    public async Task A_ledger_that_cannot_be_read_is_a_503_that_says_so()
    {
        await using var world = new ServingWorld();
        var ledger = Path.Combine(world.Root, "migration.db");
        await CutClickOverAsync(ledger, 30, "ranker");
        await world.StartAsync();
        using var client = world.Client();
        (await client.GetAsync(RoutesUrl(5, "ranker"))).StatusCode.Should().Be(HttpStatusCode.OK);

        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={ledger};Pooling=False"))
        {
            await connection.OpenAsync();
            using var edit = connection.CreateCommand();
            edit.CommandText = "UPDATE routes SET percent = 'abc'";
            (await edit.ExecuteNonQueryAsync()).Should().BePositive();
        }

        world.Clock.Advance(TimeSpan.FromSeconds(3));
        foreach (var url in new[] { RoutesUrl(5, "ranker"), "v1/signals/engagement/users/5/sequence?consumer=ranker" })
        {
            var response = await client.GetAsync(url);
            response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, url);
            var error = (await ServingWorld.JsonAsync(response)).GetProperty("error").GetString();
            error.Should().Contain("the migration ledger cannot be read").And.Contain("weft migrate status").And.NotContain(world.Root);
        }
    }

    /// <summary>
    /// A ledger missing a table (damaged, edited by hand) stops the server at start, naming it: it was
    /// recreated empty, which served a cut-over type from legacy and let the next step act on a blank history.
    /// </summary>
    [Fact]
    public async Task A_ledger_missing_a_table_stops_the_server_at_start_and_is_not_recreated()
    {
        await using var world = new ServingWorld();
        var ledger = Path.Combine(world.Root, "migration.db");
        await CutClickOverAsync(ledger, 100, MigrationRouting.DefaultConsumer);
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={ledger};Pooling=False"))
        {
            await connection.OpenAsync();
            using var drop = connection.CreateCommand();
            drop.CommandText = "DROP TABLE routes";
            await drop.ExecuteNonQueryAsync();
        }

        var start = () => world.StartAsync();

        (await start.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain("has no table 'routes'");
        await using var check = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={ledger};Mode=ReadOnly;Pooling=False");
        await check.OpenAsync();
        using var tables = check.CreateCommand();
        tables.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'routes'";
        ((long)(await tables.ExecuteScalarAsync())!).Should().Be(0, "the server recreated nothing");
    }

    /// <summary>
    /// A legacy pipeline configured and no ledger yet: the server creates none (it created an empty one,
    /// so a lost ledger read as a migration not started and the next step acted on a blank history).
    /// Legacy serves every type, and the ledger <c>weft migrate shadow</c> creates later is read at the
    /// next refresh, with no restart, exposures written to it.
    /// </summary>
    [Fact]
    public async Task A_missing_ledger_is_not_created_and_the_one_created_later_is_read_without_a_restart()
    {
        await using var world = new ServingWorld();
        await HybridSequenceTests.SetLegacyAsync(world, """{ "endpoint": "http://127.0.0.1:9/users/{user_id}" }""");
        var ledger = Path.Combine(world.Root, "migration.db");
        await world.StartAsync();
        using var client = world.Client();
        var before = ByType(await ServingWorld.JsonAsync(await client.GetAsync(RoutesUrl(5, "ranker"))));
        before.Keys.Should().BeEquivalentTo(["click", "save"]);
        before.Values.Should().OnlyContain(r => r.GetProperty("source").GetString() == "legacy" && r.GetProperty("stage").GetString() == "not-started");
        File.Exists(ledger).Should().BeFalse("serving creates no ledger");
        var laterStep = () => MigrationStore.OpenExistingAsync(ledger);
        await laterStep.Should().ThrowAsync<FileNotFoundException>("a step after shadow finds no ledger to act on");

        await CutClickOverAsync(ledger, 30, "ranker");
        world.Clock.Advance(TimeSpan.FromSeconds(3));
        int weft = 0;
        for (long user = 1; user <= 100; user++)
        {
            var routes = ByType(await ServingWorld.JsonAsync(await client.GetAsync(RoutesUrl(user, "ranker"))));
            bool expected = MigrationRouting.ServedByWeft(30, "engagement", "click", user);
            weft += expected ? 1 : 0;
            routes["click"].GetProperty("source").GetString().Should().Be(expected ? "weft" : "legacy", $"user {user}");
            routes["click"].GetProperty("stage").GetString().Should().Be("cutting-over");
        }

        await world.Server.DisposeAsync(); // writes the buffered exposures, to the ledger created after the start
        await using var store = await MigrationStore.OpenExistingAsync(ledger);
        (await store.ExposureCountsAsync("engagement", "click", "ranker", 30)).Should().Be(((long)weft, 100L - weft));
    }

    /// <summary>
    /// Consumer names come from requests and land in the ledger's exposures while a route splits: one
    /// that is not a name (too long, spaces, control characters, markup) is refused on every route that
    /// takes one, naming the parameter, and logs no exposure; a name does.
    /// </summary>
    [Theory]
    [InlineData("ranker%20v2")]
    [InlineData("ranker%0Aexposed")]
    [InlineData("%3Cscript%3E")]
    [InlineData("ré")]
    [InlineData("long")]
    public async Task A_consumer_that_is_not_a_name_is_refused_and_logs_no_exposure(string consumer)
    {
        if (consumer == "long")
        {
            consumer = new string('a', MigrationRouting.MaxConsumerLength + 1);
        }

        await using var world = new ServingWorld();
        await world.StreamAsync(ServingWorld.Events(30, seed: 41));
        var ledger = Path.Combine(world.Root, "migration.db");
        await CutClickOverAsync(ledger, 50, MigrationRouting.DefaultConsumer); // every consumer splits: exposures are logged
        await world.StartAsync();
        using var client = world.Client();

        var routes = await client.GetAsync(RoutesUrl(3, consumer));
        var single = await client.GetAsync($"v1/signals/engagement/users/3/sequence?consumer={consumer}");
        var many = await client.PostAsync("v1/signals/engagement/sequences", new StringContent(
            JsonSerializer.Serialize(new { user_ids = new[] { 3 }, consumer = Uri.UnescapeDataString(consumer) }), System.Text.Encoding.UTF8, "application/json"));
        foreach (var refused in new[] { routes, single, many })
        {
            refused.StatusCode.Should().Be(HttpStatusCode.BadRequest, refused.RequestMessage!.RequestUri!.ToString());
            var body = await ServingWorld.JsonAsync(refused);
            body.GetProperty("parameter").GetString().Should().Be("consumer");
            body.GetProperty("error").GetString().Should().StartWith("a consumer name");
        }

        (await client.GetAsync(RoutesUrl(3, "ranker-v2.1"))).StatusCode.Should().Be(HttpStatusCode.OK);
        await world.Server.DisposeAsync(); // writes the buffered exposures
        await using var store = await MigrationStore.OpenExistingAsync(ledger);
        var (weft, legacy) = await store.ExposureCountsAsync("engagement", "click", MigrationRouting.DefaultConsumer, 50);
        (weft + legacy).Should().Be(1, "only the named consumer's read was an exposure");
    }

    [Fact]
    public async Task Without_a_migration_ledger_Weft_serves_every_event_type_and_bad_requests_are_named()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        var routes = ByType(await ServingWorld.JsonAsync(await client.GetAsync(RoutesUrl(9, "ranker"))));
        routes.Values.Should().OnlyContain(r => r.GetProperty("source").GetString() == "weft" && r.GetProperty("stage").GetString() == "not-migrating");
        File.Exists(Path.Combine(world.Root, "migration.db")).Should().BeFalse("serving does not create a ledger");

        var noConsumer = await client.GetAsync(RoutesUrl(9, null));
        noConsumer.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await ServingWorld.JsonAsync(noConsumer)).GetProperty("parameter").GetString().Should().Be("consumer");
        (await client.GetAsync("v1/signals/engagement/users/abc/routes?consumer=r")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await client.GetAsync("v1/signals/nope/users/1/routes?consumer=r")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        using var stranger = world.Client(ServingWorld.OtherKey);
        (await stranger.GetAsync(RoutesUrl(9, "ranker"))).StatusCode.Should().Be(HttpStatusCode.NotFound, "another tenant's signal");
        using var anonymous = world.Client(null);
        (await anonymous.GetAsync(RoutesUrl(9, "ranker"))).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }
}
