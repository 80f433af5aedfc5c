using Weft.Engine.Configuration;
using Weft.Streaming.Kafka;

namespace Weft.Streaming.Runtime;

/// <summary>Creates configured sources; the Kafka one lives behind this so librdkafka loads only when used.</summary>
internal static class SourceFactory
{
    /// <summary>Opens a Kafka consumer of <c>$.source.group_id</c> on <c>$.source.topic</c>, with the defaults of <see cref="KafkaSourceOptions"/>.</summary>
    public static IEventSource OpenKafka(SourceConfig config) =>
        KafkaEventSource.Open(
            new KafkaSourceOptions
            {
                BootstrapServers = config.BootstrapServers ?? "",
                Topics = config.Topic is null ? [] : [config.Topic],
                GroupId = config.GroupId ?? "",
            },
            logger: null,
            timeProvider: null);
}
