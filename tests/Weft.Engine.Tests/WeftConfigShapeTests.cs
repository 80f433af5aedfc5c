using System.Text;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>weft.json of the wrong shape: every problem named by its JSON path, none a crash or a silent default.</summary>
public sealed class WeftConfigShapeTests
{
    private static List<string> Problems(string json)
    {
        var parse = () => WeftConfig.Parse(Encoding.UTF8.GetBytes(json), "/srv/weft/weft.json");
        return parse.Should().Throw<ConfigException>().Which.Problems.Select(p => p.ToString()).ToList();
    }

    /// <summary>The message gave a one-based line and then System.Text.Json's zero-based one.</summary>
    [Fact]
    public void Json_that_does_not_parse_is_one_problem_at_its_one_based_line_and_byte()
    {
        // Line 4 is `  "lake": ,`: the comma is its 11th byte.
        var problems = Problems("{\n  \"signals\": \"s\",\n\n  \"lake\": ,\n}\n");

        problems.Should().ContainSingle().Which.Should().StartWith("$: not valid JSON at line 4, byte 11: ")
            .And.NotContain("LineNumber").And.NotContain("BytePositionInLine").And.NotContain("Path:");
    }

    [Fact]
    public void A_misspelt_top_level_key_is_a_problem_with_a_suggestion_not_a_fallback_to_the_default()
    {
        var problems = Problems("""{ "signals": "signals", "lakee": "/data/lake", "onlinestore": { "kind": "postgres" } }""");

        problems.Should().Contain(p => p.Contains("$.lakee") && p.Contains("did you mean 'lake'"));
        problems.Should().Contain(p => p.Contains("$.onlinestore") && p.Contains("did you mean 'online_store'"));
    }

    /// <summary>Inside a section a typo fell back to the default: the log and store went to the default paths, a tenant had no keys.</summary>
    [Theory]
    [InlineData("""{ "signals": "s", "source": { "kind": "embedded", "pth": "/data/log" } }""", "$.source.pth", "did you mean 'path'")]
    [InlineData("""{ "signals": "s", "source": { "kind": "embedded", "segment_bytes": 1048576 } }""", "$.source.segment_bytes", "available: archive, kind, path, retention")]
    [InlineData("""{ "signals": "s", "source": { "kind": "kafka", "bootstrap_servers": "b:9092", "topic": "t", "groupid": "g" } }""", "$.source.groupid", "did you mean 'group_id'")]
    [InlineData("""{ "signals": "s", "online_store": { "kind": "sqlite", "file": "/data/online.db" } }""", "$.online_store.file", "available: kind, path")]
    [InlineData("""{ "signals": "s", "online_store": { "kind": "postgres", "connection_string": "Host=h", "pool": 5 } }""", "$.online_store.pool", "available: connection_string, kind")]
    [InlineData("""{ "signals": "s", "tenants": [ { "name": "t", "api_key_sha256": [] } ] }""", "$.tenants[0].api_key_sha256", "did you mean 'api_keys_sha256'")]
    [InlineData("""{ "signals": "s", "archives": [ { "path": "raw", "fromat": "csv" } ] }""", "$.archives[0].fromat", "did you mean 'format'")]
    public void A_misspelt_key_inside_a_section_is_a_problem_at_its_path(string json, string path, string hint)
    {
        Problems(json).Should().Contain(p => p.StartsWith(path + ": unknown key", StringComparison.Ordinal) && p.Contains(hint));
    }

    /// <summary>These failed later, at the first write, with the framework's or SQLite's words and no config key.</summary>
    [Fact]
    public void A_lake_that_is_a_file_and_an_online_store_that_is_a_folder_are_problems_at_their_keys()
    {
        var dir = Directory.CreateTempSubdirectory("weft-config-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "lake"), "");
            Directory.CreateDirectory(Path.Combine(dir.FullName, "store"));
            var parse = () => WeftConfig.Parse("""{ "signals": "s", "lake": "lake", "online_store": { "kind": "sqlite", "path": "store" } }"""u8, Path.Combine(dir.FullName, "weft.json"));

            var problems = parse.Should().Throw<ConfigException>().Which.Problems.Select(p => p.ToString()).ToList();

            problems.Should().Contain(p => p.StartsWith("$.lake: ", StringComparison.Ordinal) && p.Contains("is a file"));
            problems.Should().Contain(p => p.StartsWith("$.online_store.path: ", StringComparison.Ordinal) && p.Contains("is a folder"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_key_given_twice_is_a_problem_not_a_silent_last_one_wins()
    {
        Problems("""{ "signals": "s", "source": { "kind": "embedded", "path": "a" }, "source": { "kind": "embedded", "path": "b" } }""")
            .Should().ContainSingle().Which.Should().StartWith("$.source: duplicate property 'source'");
    }

    [Theory]
    [InlineData("""{ "signals": "s", "lake": "${WEFT_LAKE}" }""", "$.lake")]
    [InlineData("""{ "signals": "s", "online_store": "sqlite" }""", "$.online_store")]
    [InlineData("""{ "signals": "s", "source": "embedded" }""", "$.source")]
    [InlineData("""{ "signals": "s", "tenants": { "name": "home-feed" } }""", "$.tenants")]
    [InlineData("""{ "signals": "s", "tenants": [ "home-feed" ] }""", "$.tenants[0]")]
    [InlineData("""{ "signals": "s", "tenants": [ { "name": "t", "api_keys_sha256": "abc" } ] }""", "$.tenants[0].api_keys_sha256")]
    public void A_section_of_the_wrong_type_is_a_problem_at_its_path_not_a_crash(string json, string path)
    {
        Problems(json).Should().Contain(p => p.StartsWith(path + ":", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{ "signals": "s", "legacy": [] }""", "$.legacy")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": "out.parquet" } }""", "$.legacy.engagement")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": { } } }""", "$.legacy.engagement.output")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": { "output": { "path": "o", "format": "orc" } } } }""", "$.legacy.engagement.output.format")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": { "output": "o", "replika": "r" } } }""", "$.legacy.engagement.replika")]
    [InlineData("""{ "signals": "s", "migration_store": 3 }""", "$.migration_store")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": { "endpoint": "http://legacy/users/sequence" } } }""", "$.legacy.engagement.endpoint")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": { "endpoint": "ftp://legacy/{user_id}" } } }""", "$.legacy.engagement.endpoint")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": { "endpoint": "/users/{user_id}" } } }""", "$.legacy.engagement.endpoint")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": { "endpoint": 7 } } }""", "$.legacy.engagement.endpoint")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": { "endpoint": "http://l/{user_id}", "endpoint_timeout": "2m" } } }""", "$.legacy.engagement.endpoint_timeout")]
    [InlineData("""{ "signals": "s", "legacy": { "engagement": { "endpoint": "http://l/{user_id}", "replica": "r" } } }""", "$.legacy.engagement.replica")]
    public void A_legacy_section_of_the_wrong_shape_is_a_problem_at_its_path(string json, string path)
    {
        Problems(json).Should().Contain(p => p.StartsWith(path + ":", StringComparison.Ordinal));
    }

    [Fact]
    public void Legacy_tables_and_the_migration_store_resolve_against_the_config_folder()
    {
        var config = WeftConfig.Parse(Encoding.UTF8.GetBytes("""
            { "signals": "s", "migration_store": "state/migration.db",
              "legacy": { "engagement": { "output": { "path": "legacy/out", "format": "csv" }, "replica": "legacy/rerun" } } }
            """), "/srv/weft/weft.json");
        config.MigrationStore.Should().Be("/srv/weft/state/migration.db");
        config.Legacy["engagement"].Output.Should().Be(new TableLocation("/srv/weft/legacy/out", TableFormat.Csv));
        config.Legacy["engagement"].Replica.Should().Be(new TableLocation("/srv/weft/legacy/rerun", TableFormat.Delta));
        WeftConfig.Parse(Encoding.UTF8.GetBytes("""{ "signals": "s" }"""), "/srv/weft/weft.json").MigrationStore.Should().Be("/srv/weft/migration.db");
    }

    [Fact]
    public void A_legacy_pipeline_may_come_in_through_an_HTTP_endpoint_alone_with_its_timeout()
    {
        var config = WeftConfig.Parse(Encoding.UTF8.GetBytes("""
            { "signals": "s", "legacy": {
              "engagement": { "endpoint": "http://legacy.internal:8080/v2/users/{user_id}/history", "endpoint_timeout": "200ms" },
              "search": { "output": "legacy/search", "endpoint": "https://legacy.internal/search/{user_id}" } } }
            """), "/srv/weft/weft.json");

        var engagement = config.Legacy["engagement"];
        engagement.Output.Should().BeNull();
        engagement.Endpoint.Should().Be("http://legacy.internal:8080/v2/users/{user_id}/history");
        engagement.EndpointTimeout.Should().Be(TimeSpan.FromMilliseconds(200));
        config.Legacy["search"].Output.Should().Be(new TableLocation("/srv/weft/legacy/search", TableFormat.Delta));
        config.Legacy["search"].EndpointTimeout.Should().Be(TimeSpan.FromMilliseconds(500), "the default");
        WeftConfig.Parse(Encoding.UTF8.GetBytes("""{ "signals": "s", "legacy": { "engagement": { "endpoint": "http://l/{user_id}" } } }"""), "/w/weft.json")
            .Legacy["engagement"].Replica.Should().BeNull();
    }

    [Fact]
    public void A_key_under_two_tenants_or_a_tenant_listed_twice_is_a_problem_not_a_last_one_wins()
    {
        string key = new('a', 64), other = new('b', 64);
        var problems = Problems($$"""
            { "signals": "s", "tenants": [
              { "name": "home-feed", "api_keys_sha256": ["{{key}}"] },
              { "name": "search", "api_keys_sha256": ["{{other}}", "{{key.ToUpperInvariant()}}"] },
              { "name": "home-feed", "api_keys_sha256": [] } ] }
            """);

        problems.Should().Contain(p => p.StartsWith("$.tenants[1].api_keys_sha256[1]:", StringComparison.Ordinal) && p.Contains("already a key of tenant 'home-feed' ($.tenants[0])"));
        problems.Should().Contain(p => p.StartsWith("$.tenants[2].name:", StringComparison.Ordinal) && p.Contains("already defined at $.tenants[0]"));
        problems.Should().HaveCount(2);

        var distinct = WeftConfig.Parse(Encoding.UTF8.GetBytes($$"""{ "signals": "s", "tenants": [ { "name": "a", "api_keys_sha256": ["{{key}}"] }, { "name": "b", "api_keys_sha256": ["{{other}}"] } ] }"""), "/srv/weft/weft.json");
        distinct.Tenants.Select(t => t.Name).Should().Equal("a", "b");
    }

    [Fact]
    public void Two_files_defining_one_signal_are_refused_naming_both()
    {
        var dir = Path.Combine(Path.GetTempPath(), "weft-config-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(dir, "signals"));
        try
        {
            var catalog = new DefinitionCatalog();
            var click = catalog.EventType("click").Attribute("item_id", WeftType.Int64);
            catalog.Signal("engagement", tenant: "t").Include(click).Element("item_id").MaxLength(10).Lookback(TimeSpan.FromDays(1)).Bucket(TimeBucket.Hour);
            var json = SignalJsonWriter.Write(catalog.Build().Single());
            File.WriteAllBytes(Path.Combine(dir, "signals", "engagement.json"), json);
            File.WriteAllBytes(Path.Combine(dir, "signals", "copy-of-engagement.json"), json);
            File.WriteAllText(Path.Combine(dir, "weft.json"), """{ "signals": "signals" }""");

            var load = () => WeftConfig.Load(Path.Combine(dir, "weft.json")).LoadSignals();

            load.Should().Throw<ConfigException>().WithMessage("*'engagement' is defined twice*copy-of-engagement.json and engagement.json*");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void One_signal_loads_past_another_signals_broken_file_but_not_past_a_broken_file_of_its_own()
    {
        var dir = Path.Combine(Path.GetTempPath(), "weft-config-tests", Guid.NewGuid().ToString("N"));
        var signals = Path.Combine(dir, "signals");
        Directory.CreateDirectory(signals);
        try
        {
            var catalog = new DefinitionCatalog();
            var click = catalog.EventType("click").Attribute("item_id", WeftType.Int64);
            catalog.Signal("engagement", tenant: "t").Include(click).Element("item_id").MaxLength(10).Lookback(TimeSpan.FromDays(1)).Bucket(TimeBucket.Hour);
            var json = SignalJsonWriter.Write(catalog.Build().Single());
            File.WriteAllBytes(Path.Combine(signals, "engagement.json"), json);
            File.WriteAllText(Path.Combine(dir, "weft.json"), """{ "signals": "signals" }""");
            var config = WeftConfig.Load(Path.Combine(dir, "weft.json"));

            // Another team's half-edited signal: valid JSON with a name, and a file cut short.
            File.WriteAllText(Path.Combine(signals, "search.json"), """{ "name": "search", "version": 1 }""");
            File.WriteAllText(Path.Combine(signals, "zzz.json"), """{ "name": "sea""");

            config.LoadSignal("engagement").Name.Should().Be("engagement");
            config.Invoking(c => c.LoadSignals()).Should().Throw<DefinitionException>().WithMessage("*search.json*");
            config.Invoking(c => c.LoadSignal("search")).Should().Throw<DefinitionException>().WithMessage("*search.json has*");
            config.Invoking(c => c.LoadSignal("impressions")).Should().Throw<ConfigException>()
                .WithMessage("*no signal 'impressions'*known: engagement; 2 file(s) do not load: search.json (*), zzz.json (*)*");

            // The only file that does not load may be the one asked for, under a name that cannot be read.
            File.Delete(Path.Combine(signals, "search.json"));
            config.Invoking(c => c.LoadSignal("impressions")).Should().Throw<DefinitionException>().WithMessage("*zzz.json has*");

            // A broken copy of the signal itself is not passed over for the good one.
            File.WriteAllText(Path.Combine(signals, "engagement-old.json"), """{ "name": "engagement", "version": "one" }""");
            config.Invoking(c => c.LoadSignal("engagement")).Should().Throw<DefinitionException>().WithMessage("*engagement-old.json has*");

            File.Delete(Path.Combine(signals, "engagement-old.json"));
            File.WriteAllBytes(Path.Combine(signals, "engagement-copy.json"), json);
            config.Invoking(c => c.LoadSignal("engagement")).Should().Throw<ConfigException>().WithMessage("*'engagement' is defined twice*engagement-copy.json and engagement.json*");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// A config problem names where it is without echoing a secret: a connection string written with
    /// ${…} holds its password beside it, and a legacy endpoint's user info and query values credentials.
    /// </summary>
    [Fact]
    public void Config_problems_do_not_echo_a_password_or_an_endpoint_credential()
    {
        var problems = Problems("""
            { "signals": "s",
              "online_store": { "kind": "postgres", "connection_string": "Host=${PGHOST};Username=weft;Password=S3cretPw6" },
              "legacy": { "engagement": { "endpoint": "http://leguser:LegacyPassw0rd@legacy.internal/users/seq?token=LegacyTok3n&x=1" } } }
            """);

        problems.Should().Contain(p => p.StartsWith("$.online_store.connection_string:", StringComparison.Ordinal) && p.Contains("is not expanded here"));
        problems.Should().Contain(p => p.StartsWith("$.legacy.engagement.endpoint:", StringComparison.Ordinal) && p.Contains("http://…@legacy.internal/users/seq?token=…&x=…"));
        string.Join('\n', problems).Should().NotContain("S3cretPw6").And.NotContain("LegacyPassw0rd").And.NotContain("LegacyTok3n");
    }

    /// <summary>The store's log line showed the connection string with only keys starting "password" masked.</summary>
    [Theory]
    [InlineData("Host=db.internal;Port=6432;Username=weft;Pwd=S3cretPw!x;Database=online", "postgres:db.internal:6432/online")]
    [InlineData("Host=db.internal;Username=weft;PSW=S3cretPw!x;Database=online", "postgres:db.internal:5432/online")]
    [InlineData("Server=db.internal;Username=weft;Password='S3cret;Pw!x';DB=online", "postgres:db.internal:5432/online")]
    [InlineData("Host=db.internal;Username=weft;Password=\"S3cret;Pw!x\"", "postgres:db.internal:5432/weft")]
    [InlineData("Host=db.internal;Password='S3cretPw!x", "postgres:(connection string not shown: it does not parse)")]
    public void A_postgres_store_is_described_by_host_port_and_database_never_any_part_of_its_password(string connection, string expected)
    {
        var store = new OnlineStoreConfig("postgres", null, connection);

        store.Describe().Should().Be(expected).And.NotContain("S3cret").And.NotContain("Pw!x");
    }
}
