using Microsoft.Extensions.Logging;

namespace Weft.Streaming.Kafka;

/// <summary>Opens Kafka event sources. The only entry point that loads librdkafka for reading.</summary>
public static class KafkaSource
{
    /// <summary>
    /// Opens one consumer of <see cref="KafkaSourceOptions.GroupId"/> on <see cref="KafkaSourceOptions.Topics"/>
    /// as an <see cref="IEventSource"/>. The group join and partition assignment happen in the background;
    /// reads return records as soon as partitions are assigned and fetched.
    /// </summary>
    /// <param name="options">The configuration; validated here.</param>
    /// <param name="logger">Where the source logs (assignments, librdkafka errors); null for none.</param>
    /// <param name="timeProvider">The clock for read timeouts; null for the system clock.</param>
    /// <param name="cancellationToken">Cancels opening.</param>
    /// <exception cref="ArgumentException">An option is invalid; the message names it and its value.</exception>
    /// <exception cref="DllNotFoundException">librdkafka is not installed.</exception>
    public static ValueTask<IEventSource> OpenAsync(
        KafkaSourceOptions options,
        ILogger? logger = null,
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<IEventSource>(KafkaEventSource.Open(options, logger, timeProvider));
    }
}
