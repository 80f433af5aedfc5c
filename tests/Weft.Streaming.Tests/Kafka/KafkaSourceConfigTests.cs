using System.Text;
using FluentAssertions;
using Weft.Engine.Configuration;
using Weft.Streaming.Kafka;
using Weft.Streaming.Runtime;
using Xunit;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>From <c>$.source</c> in weft.json to the Kafka source's options, and the errors on the way named by JSON path.</summary>
public sealed class KafkaSourceConfigTests
{
    private static WeftConfig Config(string source) =>
        WeftConfig.Parse(Encoding.UTF8.GetBytes($$"""{ "signals": "signals", "source": {{source}} }"""), "/srv/weft/weft.json");

    /// <summary>A variable name no other test uses: the environment is the process's.</summary>
    private static string UniqueVariable() => $"WEFT_TEST_{Guid.NewGuid():N}".ToUpperInvariant();

    [Fact]
    public void Every_setting_reaches_the_source_options_with_environment_references_read_at_open()
    {
        var variable = UniqueVariable();
        var config = Config($$"""
            {
              "kind": "kafka", "bootstrap_servers": "k1:9092", "topics": ["clicks", "searches"], "group_id": "ranking", "client_id": "weft-ranking",
              "auto_offset_reset": "latest", "close_timeout": "20s", "rebalance_timeout": "45s", "config": { "sasl.password": "${{{variable}}}", "session.timeout.ms": 6000 }
            }
            """);

        Environment.SetEnvironmentVariable(variable, "s3cret");
        try
        {
            var options = SourceFactory.KafkaOptionsOf(config);
            (options.BootstrapServers, options.GroupId, options.ClientId, options.AutoOffsetReset).Should().Be(("k1:9092", "ranking", "weft-ranking", "latest"));
            options.Topics.Should().Equal("clicks", "searches");
            options.CloseTimeout.Should().Be(TimeSpan.FromSeconds(20));
            options.RebalanceTimeout.Should().Be(TimeSpan.FromSeconds(45));
            options.Config.Should().Equal(new Dictionary<string, string> { ["sasl.password"] = "s3cret", ["session.timeout.ms"] = "6000" });
            options.ToString().Should().Contain("sasl.password=***").And.NotContain("s3cret");

            Environment.SetEnvironmentVariable(variable, "rotated");
            SourceFactory.KafkaOptionsOf(config).Config["sasl.password"].Should().Be("rotated", "the variable is read when the source opens, not when the file is loaded");
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void An_environment_variable_that_is_not_set_is_named_with_the_property_that_needs_it()
    {
        var variable = UniqueVariable();
        var config = Config($$"""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topic": "events", "config": { "sasl.password": "${{{variable}}}" } }""");

        var open = () => SourceFactory.KafkaOptionsOf(config);

        open.Should().Throw<ConfigException>().Which.Problems.Should().ContainSingle()
            .Which.ToString().Should().Be($"$.source.config[\"sasl.password\"]: environment variable {variable} is not set (hint: export {variable} before starting the stream)");
    }

    [Fact]
    public void Every_key_the_source_manages_is_refused_in_weft_json_before_anything_opens()
    {
        foreach (var key in KafkaSourceOptions.ManagedKeys)
        {
            var parse = () => Config($$"""{ "kind": "kafka", "bootstrap_servers": "k1:9092", "topic": "events", "config": { "{{key}}": "x" } }""");
            parse.Should().Throw<ConfigException>().Which.Problems.Should().ContainSingle()
                .Which.Path.Should().Be($"$.source.config[\"{key}\"]");
        }
    }

    [Fact]
    public void A_property_librdkafka_refuses_fails_the_open_with_the_property_named()
    {
        var config = Config("""{ "kind": "kafka", "bootstrap_servers": "127.0.0.1:9", "topic": "events", "config": { "fetch.max.bytes": "lots" } }""");

        var open = () => SourceFactory.OpenKafka(config, StreamOptions.DefaultConsumer, logger: null);

        var problem = open.Should().Throw<ConfigException>().Which.Problems.Should().ContainSingle().Subject;
        problem.Path.Should().Be("$.source.config");
        problem.Message.Should().Contain("fetch.max.bytes").And.Contain("$.source.config").And.NotContain("KafkaSourceOptions").And.NotContain("(Parameter");
    }

    [Fact]
    public void A_topic_Kafka_does_not_allow_fails_the_open_at_its_JSON_path()
    {
        var config = Config("""{ "kind": "kafka", "bootstrap_servers": "127.0.0.1:9", "topic": "click events" }""");

        var open = () => SourceFactory.OpenKafka(config, StreamOptions.DefaultConsumer, logger: null);

        var problem = open.Should().Throw<ConfigException>().Which.Problems.Should().ContainSingle().Subject;
        problem.Path.Should().Be("$.source.topic");
        problem.Message.Should().Contain("click events").And.NotContain("(Parameter");

        var several = () => SourceFactory.OpenKafka(Config("""{ "kind": "kafka", "bootstrap_servers": "127.0.0.1:9", "topics": ["clicks", "search results"] }"""), StreamOptions.DefaultConsumer, logger: null);
        several.Should().Throw<ConfigException>().Which.Problems.Should().ContainSingle()
            .Which.Should().Match<Weft.Definitions.DefinitionProblem>(p => p.Path == "$.source.topics" && p.Message.Contains("search results"));
    }
}
