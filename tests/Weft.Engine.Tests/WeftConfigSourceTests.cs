using System.Text;
using FluentAssertions;
using Weft.Engine.Configuration;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary><c>$.source</c> of weft.json: the embedded log by default, or Kafka with its settings.</summary>
public sealed class WeftConfigSourceTests
{
    private static WeftConfig Parse(string source) =>
        WeftConfig.Parse(Encoding.UTF8.GetBytes($$"""{ "signals": "signals", "source": {{source}} }"""), "/srv/weft/weft.json");

    private static List<string> Problems(string source)
    {
        var parse = () => Parse(source);
        return parse.Should().Throw<ConfigException>().Which.Problems.Select(p => p.ToString()).ToList();
    }

    [Fact]
    public void A_Kafka_source_reads_its_client_id_offset_reset_and_librdkafka_properties_as_text()
    {
        var source = Parse("""
            {
              "kind": "kafka", "bootstrap_servers": "k1:9092,k2:9092", "topic": "events", "group_id": "ranking",
              "client_id": "weft-ranking", "auto_offset_reset": "latest", "close_timeout": "20s", "rebalance_timeout": "2m",
              "config": { "security.protocol": "SASL_SSL", "session.timeout.ms": 6000, "enable.partition.eof": false, "sasl.password": "${KAFKA_PASSWORD}" }
            }
            """).Source;

        (source.Kind, source.BootstrapServers, source.GroupId, source.ClientId, source.AutoOffsetReset)
            .Should().Be(("kafka", "k1:9092,k2:9092", "ranking", "weft-ranking", "latest"));
        source.Topics.Should().Equal("events");
        source.CloseTimeout.Should().Be(TimeSpan.FromSeconds(20));
        source.RebalanceTimeout.Should().Be(TimeSpan.FromMinutes(2));
        source.Config.Should().Equal(new Dictionary<string, string>
        {
            ["enable.partition.eof"] = "false",
            ["sasl.password"] = "${KAFKA_PASSWORD}", // read from the environment when the source opens, not here
            ["security.protocol"] = "SASL_SSL",
            ["session.timeout.ms"] = "6000",
        });
    }

    /// <summary>The embedded log's retention is the config's (7 days unless set), within 1 hour and 10 years.</summary>
    [Fact]
    public void The_embedded_logs_retention_is_read_and_bounded()
    {
        Parse("""{ "kind": "embedded", "path": "log" }""").Source.Retention.Should().Be(TimeSpan.FromDays(7));
        Parse("""{ "kind": "embedded", "path": "log", "retention": "36h" }""").Source.Retention.Should().Be(TimeSpan.FromHours(36));
        foreach (var bad in new[] { "30m", "3651d", "two days" })
        {
            Problems($$"""{ "kind": "embedded", "retention": "{{bad}}" }""")
                .Should().ContainSingle(p => p.StartsWith($"$.source.retention: '{bad}' is not a duration between 1h and 3650d", StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// The embedded log is archived for the batch path by default, under the lake; Kafka is not unless
    /// asked; the archive is one of the batch path's raw archives (optional until it holds lines), once.
    /// </summary>
    [Fact]
    public void The_streams_raw_archive_is_a_batch_archive_by_default_for_the_embedded_log_only()
    {
        static WeftConfig Config(string json) => WeftConfig.Parse(Encoding.UTF8.GetBytes(json), "/srv/weft/weft.json");

        var embedded = Config("""{ "signals": "signals", "lake": "data" }""");
        embedded.Source.Archive.Should().Be("/srv/weft/data/raw/stream");
        embedded.Archives.Should().Equal(new TableLocation("/srv/weft/data/raw/stream", TableFormat.Jsonl) { Optional = true });

        var listed = Config("""{ "signals": "signals", "archives": [ "raw/events", { "path": "lake/raw/stream/", "format": "jsonl" } ] }""");
        listed.Archives.Select(a => (a.Path, a.Optional)).Should().Equal(("/srv/weft/raw/events", false), ("/srv/weft/lake/raw/stream/", false));

        Config("""{ "signals": "signals", "source": { "archive": false } }""").Archives.Should().BeEmpty();
        Config("""{ "signals": "signals", "source": { "archive": "elsewhere" } }""").Source.Archive.Should().Be("/srv/weft/elsewhere");
        var kafka = Parse("""{ "kind": "kafka", "bootstrap_servers": "k:9092", "topic": "events" }""");
        (kafka.Source.Archive, kafka.Archives.Length).Should().Be((null, 0));
        Parse("""{ "kind": "kafka", "bootstrap_servers": "k:9092", "topic": "events", "archive": "raw/kafka" }""").Archives.Single().Path.Should().Be("/srv/weft/raw/kafka");
        Problems("""{ "archive": true }""").Should().ContainSingle().Which.Should().StartWith("$.source.archive: 'archive' must be a folder path or false, got true");

        var conflicts = () => Config("""{ "signals": "signals", "archives": [ "raw/events" ], "source": { "archive": "raw/events" } }""");
        conflicts.Should().Throw<ConfigException>().Which.Problems.Should().ContainSingle()
            .Which.ToString().Should().StartWith("$.source.archive: the stream's archive '/srv/weft/raw/events' is also listed in $.archives as delta: the stream writes JSON lines there");
        var nested = () => Config("""{ "signals": "signals", "archives": [ { "path": "lake/raw", "format": "jsonl" } ] }""");
        nested.Should().Throw<ConfigException>().Which.Problems.Should().ContainSingle()
            .Which.ToString().Should().Contain("lie one inside the other: the batch path would read the same files twice");
        Config("""{ "signals": "signals", "archives": [ { "path": "lake/raw-events", "format": "jsonl" } ] }""").Archives.Should().HaveCount(2, "a sibling whose name starts alike is not a parent");
    }

    [Fact]
    public void Readable_archives_leave_out_the_streams_until_it_holds_lines()
    {
        var dir = Directory.CreateTempSubdirectory("weft-archive-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "weft.json"), """{ "signals": "signals", "archives": [ { "path": "raw/events", "format": "jsonl" } ] }""");
            var config = WeftConfig.Load(Path.Combine(dir, "weft.json"));
            config.ReadableArchives().Should().ContainSingle().Which.Path.Should().Be(Path.Combine(dir, "raw", "events"), "a listed archive is read, or its absence reported");

            Directory.CreateDirectory(Path.Combine(dir, "lake", "raw", "stream", "date=2026-12-05"));
            File.WriteAllText(Path.Combine(dir, "lake", "raw", "stream", "date=2026-12-05", "part-1.jsonl.tmp"), "{}\n");
            config.ReadableArchives().Should().HaveCount(1, "a folder with only a file being written holds nothing yet");

            File.WriteAllText(Path.Combine(dir, "lake", "raw", "stream", "date=2026-12-05", "part-1.jsonl"), "{}\n");
            config.ReadableArchives().Select(a => a.Path).Should().Equal(Path.Combine(dir, "raw", "events"), Path.Combine(dir, "lake", "raw", "stream"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Settings_left_out_take_their_defaults()
    {
        var kafka = Parse("""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topic": "events" }""").Source;
        (kafka.GroupId, kafka.ClientId, kafka.AutoOffsetReset, kafka.CloseTimeout).Should().Be(("weft-stream", "weft", "earliest", TimeSpan.FromSeconds(60)));
        kafka.Config.Should().BeEmpty();

        var embedded = Parse("{}").Source;
        (embedded.Kind, embedded.Path).Should().Be(("embedded", "/srv/weft/log"));
        embedded.Config.Should().BeEmpty();
    }

    [Fact]
    public void Each_bad_Kafka_setting_is_reported_with_its_JSON_path()
    {
        var problems = Problems("""
            {
              "kind": "kafka", "bootstrap_servers": "k1:9092", "topic": "events", "auto_offset_reset": "middle", "close_timeout": "500ms", "rebalance_timeout": "11m",
              "config": { "fetch.max.bytes": [1], "sasl.password": "${1PASSWORD}", "ssl.key.password": "${KEY-PASSWORD}", "group.id": "other" }
            }
            """);

        problems.Should().HaveCount(7);
        problems.Should().Contain(p => p.StartsWith("$.source.rebalance_timeout: '11m' is not a duration between 1s and 10m", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("$.source.close_timeout: '500ms' is not a duration between 1s and 10m", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("$.source.auto_offset_reset: unknown offset reset 'middle'", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("$.source.config[\"fetch.max.bytes\"]: a property's value must be a string, number or boolean", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("$.source.config[\"sasl.password\"]: '${1PASSWORD}' is not an environment variable reference", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("$.source.config[\"ssl.key.password\"]: '${KEY-PASSWORD}' is not an environment variable reference", StringComparison.Ordinal));
        problems.Should().Contain(p => p == "$.source.config[\"group.id\"]: 'group.id' is set by the stream itself (hint: set $.source.group_id)");
        Problems("""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topic": "events", "config": { "dotnet.cancellation.delay.max.ms": 10 } }""")
            .Should().ContainSingle(p => p.StartsWith("$.source.config[\"dotnet.cancellation.delay.max.ms\"]: 'dotnet.cancellation.delay.max.ms' is set by the stream itself", StringComparison.Ordinal));
        Problems("""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topic": "events", "config": "security.protocol=SSL" }""")
            .Should().ContainSingle(p => p.StartsWith("$.source.config: 'config' must be an object of librdkafka consumer properties", StringComparison.Ordinal));
    }

    [Fact]
    public void Several_topics_are_read_from_topics_and_one_of_topic_or_topics_is_required()
    {
        Parse("""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topics": ["clicks", "searches"] }""").Source.Topics.Should().Equal("clicks", "searches");

        Problems("""{ "kind": "kafka", "bootstrap_servers": "k1:9092" }""")
            .Should().ContainSingle(p => p.StartsWith("$.source.topic: 'topic' is required", StringComparison.Ordinal));
        Problems("""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topic": "clicks", "topics": ["searches"] }""")
            .Should().ContainSingle(p => p == "$.source.topics: set 'topic' or 'topics', not both");
        Problems("""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topics": [] }""")
            .Should().ContainSingle(p => p == "$.source.topics: 'topics' must be a non-empty array of topic names");
        Problems("""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topics": ["clicks", 3, "clicks"] }""")
            .Should().BeEquivalentTo("$.source.topics[1]: a topic must be a non-empty string", "$.source.topics[2]: 'clicks' is listed twice");
        Problems("""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topic": "" }""")
            .Should().ContainSingle(p => p == "$.source.topic: 'topic' must be a non-empty string");
    }

    [Fact]
    public void Every_reserved_key_is_refused_with_where_to_set_it_instead()
    {
        foreach (var (key, instead) in SourceConfig.ReservedKafkaKeys)
        {
            Problems($$"""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topic": "events", "config": { "{{key}}": "x" } }""")
                .Should().ContainSingle().Which.Should().Be($"$.source.config[\"{key}\"]: '{key}' is set by the stream itself (hint: {instead})");
        }
    }

    [Theory]
    [InlineData("${KAFKA_PASSWORD}", "KAFKA_PASSWORD")]
    [InlineData("${_x9}", "_x9")]
    [InlineData("${}", null)]
    [InlineData("${9X}", null)]
    [InlineData("${A B}", null)]
    [InlineData("$KAFKA_PASSWORD", null)]
    [InlineData("pre${KAFKA_PASSWORD}", null)]
    [InlineData("${KAFKA_PASSWORD}post", null)]
    public void An_environment_reference_is_a_whole_value_naming_one_variable(string value, string? variable) =>
        SourceConfig.EnvironmentReference(value).Should().Be(variable);
}
