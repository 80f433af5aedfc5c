using Weft.Engine.Configuration;

namespace Weft.Streaming.Runtime;

/// <summary>Creates configured sources; the Kafka one lives behind this so librdkafka loads only when used.</summary>
internal static class SourceFactory
{
    public static IEventSource OpenKafka(SourceConfig config) =>
        throw new NotSupportedException($"source kind '{config.Kind}' needs the Kafka source, which this build does not include yet");
}
