using System.Globalization;
using System.Text;

namespace Weft.Streaming.Kafka;

/// <summary>
/// Configuration of a Kafka event source: one consumer of a consumer group reading one or more
/// topics. Immutable; <see cref="Validate"/> runs when a source opens and names the first bad option.
/// </summary>
/// <remarks>
/// The source always runs with <c>enable.auto.commit=false</c> and <c>enable.auto.offset.store=false</c>:
/// offsets move only through <see cref="IEventSource.CommitAsync"/>, after the sinks are durable.
/// Those keys, <c>group.id</c>, <c>bootstrap.servers</c> and <c>auto.offset.reset</c> are owned by this
/// record and rejected in <see cref="Config"/>.
/// </remarks>
public sealed record KafkaSourceOptions
{
    /// <summary>
    /// Default <see cref="ChannelCapacity"/>: 200 000 records (≈60 MB of 200-byte events). The buffer has
    /// to hold what arrives while the runtime processes a micro-batch, or the poll thread pauses and the
    /// fetch pipeline stalls (the streaming benchmark ran at 37k events/s with 10 000 and 57–63k with
    /// 50 000). Under a backlog it also holds what librdkafka's small prefetch queue no longer does
    /// (<c>queued.min.messages</c> 40 000): the 1,000,000-event benchmark read 345–370k events/s with
    /// 200 000 against 305k with 50 000, at 4.1–4.7 µs of CPU an event against 5.5.
    /// </summary>
    public const int DefaultChannelCapacity = 200_000;

    /// <summary>Default <see cref="PollTimeout"/>: 100 ms.</summary>
    public static readonly TimeSpan DefaultPollTimeout = TimeSpan.FromMilliseconds(100);

    /// <summary>Default <see cref="PauseAfter"/>: 5 s.</summary>
    public static readonly TimeSpan DefaultPauseAfter = TimeSpan.FromSeconds(5);

    /// <summary>Default <see cref="RebalanceTimeout"/>: 60 s.</summary>
    public static readonly TimeSpan DefaultRebalanceTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Default <see cref="CloseTimeout"/>: 60 s.</summary>
    public static readonly TimeSpan DefaultCloseTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Keys of <see cref="Config"/> whose values are never logged.</summary>
    private static readonly string[] SecretMarkers = ["password", "secret", "sasl.oauthbearer.config", "ssl.key.pem", "ssl.keystore", "token"];

    internal static readonly string[] ManagedKeys =
        ["bootstrap.servers", "metadata.broker.list", "group.id", "enable.auto.commit", "enable.auto.offset.store", "auto.offset.reset", "client.id", "dotnet.consumer.consume.result.fields"];

    /// <summary>Required. Brokers to bootstrap from, <c>host:port[,host:port…]</c> (librdkafka <c>bootstrap.servers</c>).</summary>
    public string BootstrapServers { get; init; } = "";

    /// <summary>Required. The topics to subscribe to (at least one; Kafka topic names: letters, digits, <c>.</c>, <c>_</c>, <c>-</c>).</summary>
    public IReadOnlyList<string> Topics { get; init; } = [];

    /// <summary>Required. The consumer group; committed offsets belong to it.</summary>
    public string GroupId { get; init; } = "";

    /// <summary>Client id shown in broker logs and metrics. Default <c>weft</c>.</summary>
    public string ClientId { get; init; } = "weft";

    /// <summary>
    /// Records buffered between the poll thread and the reader (≥ 1). When it is full the poll thread
    /// waits for room, and librdkafka stops fetching once its own prefetch queue is full: this is the
    /// source's backpressure. Default <see cref="DefaultChannelCapacity"/>.
    /// </summary>
    public int ChannelCapacity { get; init; } = DefaultChannelCapacity;

    /// <summary>
    /// Where a group without a committed offset for a partition starts: <c>earliest</c> (default: no
    /// event already in the topic is missed) or <c>latest</c>.
    /// </summary>
    public string AutoOffsetReset { get; init; } = "earliest";

    /// <summary>
    /// How long one blocking poll waits (1 ms … 10 s). Bounds how quickly the poll thread notices
    /// shutdown and room in a full channel. Default <see cref="DefaultPollTimeout"/>.
    /// </summary>
    public TimeSpan PollTimeout { get; init; } = DefaultPollTimeout;

    /// <summary>
    /// How long the channel may stay full before the poll thread pauses the assigned partitions
    /// (0 … 5 min). Until then it waits for room and serves rebalance callbacks every
    /// <see cref="PollTimeout"/> (taking at most one record each time). Pausing makes librdkafka drop
    /// what it has prefetched and fetch it again on resume, which stalls a reader that is merely slower
    /// than the brokers (measured: 0.4–0.6 s per pause), so it is kept for a reader that has stopped.
    /// Default <see cref="DefaultPauseAfter"/>.
    /// </summary>
    public TimeSpan PauseAfter { get; init; } = DefaultPauseAfter;

    /// <summary>
    /// How long a rebalance waits for the reader's handler (<see cref="IEventSource.SetRebalanceHandler"/>:
    /// the stream runtime's flush and commit of what it processed of partitions being revoked) before it
    /// goes on without it (1 s … 10 min). Past it the partitions move on from their last commit, so
    /// their next owner reads the records after it again (at-least-once). Keep it well under the group's
    /// <c>max.poll.interval.ms</c> (5 min by default). Default <see cref="DefaultRebalanceTimeout"/>.
    /// </summary>
    public TimeSpan RebalanceTimeout { get; init; } = DefaultRebalanceTimeout;

    /// <summary>
    /// How long disposing the source waits for its consumer to leave the group and close (1 s … 10 min).
    /// Past it, disposing logs a warning and returns without the close: the group's session timeout
    /// then moves the partitions on, as after a crash, and the offsets committed before stand. Keep it
    /// under the time a supervisor allows a stopping process (Kubernetes' grace period is 30 s by
    /// default). Default <see cref="DefaultCloseTimeout"/>.
    /// </summary>
    public TimeSpan CloseTimeout { get; init; } = DefaultCloseTimeout;

    /// <summary>
    /// Further librdkafka consumer properties (e.g. <c>session.timeout.ms</c>, <c>security.protocol</c>,
    /// <c>fetch.max.bytes</c>), passed through as they are. Values of keys that look secret are
    /// redacted in logs. Default: none.
    /// </summary>
    public IReadOnlyDictionary<string, string> Config { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The librdkafka file to load, e.g. <c>/usr/lib/x86_64-linux-gnu/librdkafka.so.1</c>. Default null:
    /// the <c>WEFT_LIBRDKAFKA</c> environment variable, else the dynamic loader's search for
    /// <c>librdkafka.so.1</c>. Only the first Kafka client of a process loads the library.
    /// </summary>
    public string? LibrdkafkaPath { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option that is missing or out of range, and its value.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(BootstrapServers))
        {
            Fail(nameof(BootstrapServers), BootstrapServers, "is required (host:port[,host:port…])");
        }

        if (Topics is null || Topics.Count == 0)
        {
            Fail(nameof(Topics), "[]", "needs at least one topic");
        }

        foreach (var topic in Topics)
        {
            if (!IsValidTopicName(topic))
            {
                Fail(nameof(Topics), topic, "is not a Kafka topic name (1–249 characters of a-z A-Z 0-9 . _ -)");
            }
        }

        if (string.IsNullOrWhiteSpace(GroupId))
        {
            Fail(nameof(GroupId), GroupId, "is required");
        }

        if (string.IsNullOrWhiteSpace(ClientId))
        {
            Fail(nameof(ClientId), ClientId, "must not be empty");
        }

        if (ChannelCapacity < 1)
        {
            Fail(nameof(ChannelCapacity), ChannelCapacity.ToString(CultureInfo.InvariantCulture), "must be at least 1");
        }

        if (AutoOffsetReset is not ("earliest" or "latest"))
        {
            Fail(nameof(AutoOffsetReset), AutoOffsetReset, "must be \"earliest\" or \"latest\"");
        }

        if (PollTimeout < TimeSpan.FromMilliseconds(1) || PollTimeout > TimeSpan.FromSeconds(10))
        {
            Fail(nameof(PollTimeout), PollTimeout.ToString("c", CultureInfo.InvariantCulture), "must be between 1 ms and 10 s");
        }

        if (PauseAfter < TimeSpan.Zero || PauseAfter > TimeSpan.FromMinutes(5))
        {
            Fail(nameof(PauseAfter), PauseAfter.ToString("c", CultureInfo.InvariantCulture), "must be between 0 and 5 min");
        }

        if (RebalanceTimeout < TimeSpan.FromSeconds(1) || RebalanceTimeout > TimeSpan.FromMinutes(10))
        {
            Fail(nameof(RebalanceTimeout), RebalanceTimeout.ToString("c", CultureInfo.InvariantCulture), "must be between 1 s and 10 min");
        }

        if (CloseTimeout < TimeSpan.FromSeconds(1) || CloseTimeout > TimeSpan.FromMinutes(10))
        {
            Fail(nameof(CloseTimeout), CloseTimeout.ToString("c", CultureInfo.InvariantCulture), "must be between 1 s and 10 min");
        }

        foreach (var (key, value) in Config ?? new Dictionary<string, string>())
        {
            if (string.IsNullOrWhiteSpace(key))
            {
                Fail(nameof(Config), key, "has an empty key");
            }

            if (Array.IndexOf(ManagedKeys, key) >= 0)
            {
                Fail($"{nameof(Config)}[{key}]", Redact(key, value), "is set by the source itself; use the option of the same meaning");
            }

            if (value is null)
            {
                Fail($"{nameof(Config)}[{key}]", "null", "needs a value");
            }
        }
    }

    /// <summary>The options as one log line, with secret-looking <see cref="Config"/> values redacted.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"BootstrapServers={BootstrapServers}, Topics=[{string.Join(",", Topics)}], GroupId={GroupId}, ClientId={ClientId}, ");
        text.Append(CultureInfo.InvariantCulture, $"ChannelCapacity={ChannelCapacity}, AutoOffsetReset={AutoOffsetReset}, PollTimeout={PollTimeout.TotalMilliseconds}ms, PauseAfter={PauseAfter.TotalMilliseconds}ms, RebalanceTimeout={RebalanceTimeout.TotalMilliseconds}ms, CloseTimeout={CloseTimeout.TotalMilliseconds}ms, Config={{");
        var first = true;
        foreach (var (key, value) in Config.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            text.Append(first ? "" : ", ").Append(key).Append('=').Append(Redact(key, value));
            first = false;
        }

        return text.Append('}').ToString();
    }

    internal static string Redact(string key, string? value) =>
        Array.Exists(SecretMarkers, m => key.Contains(m, StringComparison.OrdinalIgnoreCase)) ? "***" : value ?? "null";

    internal static bool IsValidTopicName(string? topic)
    {
        if (string.IsNullOrEmpty(topic) || topic.Length > 249 || topic is "." or "..")
        {
            return false;
        }

        foreach (var c in topic)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Fail(string option, string? value, string problem) =>
        throw new ArgumentException($"KafkaSourceOptions.{option} {problem} (value: \"{value}\").", option);
}
