using Microsoft.Extensions.Logging;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Weft.Streaming.Kafka;

namespace Weft.Streaming.Runtime;

/// <summary>Creates configured sources; the Kafka one lives behind this so librdkafka loads only when used.</summary>
internal static class SourceFactory
{
    /// <summary>
    /// Opens a Kafka consumer as <c>$.source</c> describes it, with the defaults of
    /// <see cref="KafkaSourceOptions"/> for the rest. Throws <see cref="ConfigException"/> naming the
    /// JSON path of a property librdkafka refuses or an environment variable that is not set.
    /// </summary>
    public static IEventSource OpenKafka(WeftConfig config, string consumer, ILogger? logger)
    {
        var options = KafkaOptionsOf(config, consumer);
        try
        {
            return KafkaEventSource.Open(options, logger, timeProvider: null);
        }
        catch (ArgumentException e)
        {
            throw new ConfigException(config.ConfigPath, [new DefinitionProblem(JsonPathOf(e.ParamName, config.Source), ProblemOf(e))]);
        }
    }

    /// <summary>Where in weft.json the option an <see cref="ArgumentException"/> names is set.</summary>
    private static string JsonPathOf(string? option, SourceConfig source) => option switch
    {
        nameof(KafkaSourceOptions.BootstrapServers) => "$.source.bootstrap_servers",
        nameof(KafkaSourceOptions.Topics) => source.Topics.Length > 1 ? "$.source.topics" : "$.source.topic",
        nameof(KafkaSourceOptions.GroupId) => "$.source.group_id",
        nameof(KafkaSourceOptions.ClientId) => "$.source.client_id",
        nameof(KafkaSourceOptions.AutoOffsetReset) => "$.source.auto_offset_reset",
        { } o when o.StartsWith("Config[", StringComparison.Ordinal) && o.EndsWith(']') => $"$.source.config[\"{o[7..^1]}\"]",
        _ => "$.source.config", // librdkafka refused a property: its message names it
    };

    /// <summary>The exception's message in weft.json's terms, without the parameter name .NET appends.</summary>
    private static string ProblemOf(ArgumentException e)
    {
        var message = e.ParamName is { } name ? e.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : e.Message;
        return message.Replace("KafkaSourceOptions.Config", "$.source.config", StringComparison.Ordinal);
    }

    /// <summary>The Kafka source's options as <c>$.source</c> sets them, environment references resolved.</summary>
    internal static KafkaSourceOptions KafkaOptionsOf(WeftConfig config, string consumer = StreamOptions.DefaultConsumer)
    {
        var source = config.Source;
        return new KafkaSourceOptions
        {
            BootstrapServers = source.BootstrapServers ?? "",
            Topics = source.Topics,
            GroupId = source.GroupId is null ? "" : StreamOptions.KafkaGroupFor(source.GroupId, consumer),
            ClientId = source.ClientId,
            AutoOffsetReset = source.AutoOffsetReset,
            CloseTimeout = source.CloseTimeout,
            RebalanceTimeout = source.RebalanceTimeout,
            Config = KafkaProperties(config),
        };
    }

    /// <summary><c>$.source.config</c> with each <c>${NAME}</c> replaced by the environment variable's value.</summary>
    private static Dictionary<string, string> KafkaProperties(WeftConfig config)
    {
        var properties = new Dictionary<string, string>(StringComparer.Ordinal);
        List<DefinitionProblem>? unset = null;
        foreach (var (key, value) in config.Source.Config)
        {
            if (SourceConfig.EnvironmentReference(value) is not { } name)
            {
                properties[key] = value;
            }
            else if (Environment.GetEnvironmentVariable(name) is { } fromEnvironment)
            {
                properties[key] = fromEnvironment;
            }
            else
            {
                (unset ??= []).Add(new DefinitionProblem($"$.source.config[\"{key}\"]", $"environment variable {name} is not set", $"export {name} before starting the stream"));
            }
        }

        return unset is null ? properties : throw new ConfigException(config.ConfigPath, unset);
    }
}
