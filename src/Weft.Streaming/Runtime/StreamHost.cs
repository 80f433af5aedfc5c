using Microsoft.Extensions.Logging;
using Weft.Engine.Configuration;
using Weft.Online;
using Weft.Streaming.Embedded;

namespace Weft.Streaming.Runtime;

/// <summary>The pieces a <c>weft.json</c> names for the streaming path, opened and owned together.</summary>
public sealed class StreamHost : IAsyncDisposable
{
    private readonly IAsyncDisposable? _log;

    private StreamHost(IEventSource source, IOnlineStore store, EmbeddedLog? log)
    {
        Source = source;
        Store = store;
        EmbeddedLog = log;
        _log = log;
    }

    public IEventSource Source { get; }

    public IOnlineStore Store { get; }

    /// <summary>The embedded log when the source is embedded (serving appends <c>POST /v1/events</c> to it), else null.</summary>
    public EmbeddedLog? EmbeddedLog { get; }

    /// <summary>
    /// Checks what of <c>$.source</c> can be checked without opening it (a Kafka source's
    /// <c>${NAME}</c> references are set), so a command fails on it before it creates anything.
    /// </summary>
    /// <exception cref="ConfigException">A referenced environment variable is not set.</exception>
    public static void CheckSource(WeftConfig config)
    {
        if (config.Source.Kind == "kafka")
        {
            _ = SourceFactory.KafkaOptionsOf(config);
        }
    }

    /// <summary>Opens the online store and the source. Kafka is only touched when the source is Kafka.</summary>
    public static Task<StreamHost> OpenAsync(WeftConfig config, string consumer, CancellationToken cancellationToken) =>
        OpenAsync(config, consumer, logger: null, cancellationToken);

    /// <summary>
    /// Opens the online store and the source, whose events (a Kafka source's rebalances, broker errors,
    /// a close that timed out) go to <paramref name="logger"/>. Kafka is only touched when the source is Kafka.
    /// </summary>
    public static async Task<StreamHost> OpenAsync(WeftConfig config, string consumer, ILogger? logger, CancellationToken cancellationToken)
    {
        CheckSource(config);
        var store = await OpenStoreAsync(config.OnlineStore, cancellationToken).ConfigureAwait(false);
        try
        {
            if (config.Source.Kind == "kafka")
            {
                var source = SourceFactory.OpenKafka(config, consumer, logger);
                return new StreamHost(source, store, null);
            }

            var log = await EmbeddedLog.OpenAsync(config.Source.Path!, EmbeddedLogOptions.Default with { RetentionPeriod = config.Source.Retention }, cancellationToken).ConfigureAwait(false);
            try
            {
                var reader = await log.OpenSourceAsync(consumer, cancellationToken).ConfigureAwait(false);
                var host = new StreamHost(reader, store, log);
                if (logger is not null)
                {
                    host.ReportRecovery(logger);
                }

                return host;
            }
            catch
            {
                await log.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public static async Task<IOnlineStore> OpenStoreAsync(OnlineStoreConfig config, CancellationToken cancellationToken) =>
        config.Kind == "postgres"
            ? await OnlineStores.OpenPostgresAsync(config.ConnectionString!, cancellationToken).ConfigureAwait(false)
            : await OnlineStores.OpenSqliteAsync(config.Path!, cancellationToken).ConfigureAwait(false);

    /// <summary>Logs what opening the embedded log cut off as a torn tail, if anything (a server logs it once its logger exists).</summary>
    public void ReportRecovery(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        if ((_log as EmbeddedLog)?.Recovery is { } cut)
        {
            StreamingLog.EmbeddedLogRecovered(logger, cut.SegmentPath, cut.Reason, cut.TruncatedAtByte, cut.BytesRemoved, cut.KeptIn ?? "(nothing)");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Source.DisposeAsync().ConfigureAwait(false);
        await Store.DisposeAsync().ConfigureAwait(false);
        if (_log is not null)
        {
            await _log.DisposeAsync().ConfigureAwait(false);
        }
    }
}
