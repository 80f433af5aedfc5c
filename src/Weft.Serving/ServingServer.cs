using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Migration;
using Weft.Online;
using Weft.Serving.Hosting;
using Weft.Serving.Http;
using Weft.Serving.Security;
using Weft.Serving.Sequences;
using Weft.Streaming.Embedded;
using Weft.Streaming.Runtime;

namespace Weft.Serving;

/// <summary>
/// <c>weft serve</c>: the serving runtime (DESIGN.md, "Runtimes"). Opens the online store, loads every
/// signal's batch history, and on a single node (embedded source) runs the streaming runtime in-process;
/// then serves sequences over HTTP on Kestrel. Start with <see cref="StartAsync"/>; dispose to stop (the
/// runtime flushes, then the store and the log close).
/// </summary>
public sealed class ServingServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly StreamHost? _streamHost;
    private readonly IOnlineStore? _ownedStore;
    private readonly TailRecomputer? _tails;
    private int _disposed;

    private ServingServer(WebApplication app, ServingState state, StreamHost? streamHost, IOnlineStore? ownedStore, TailRecomputer? tails)
    {
        _app = app;
        State = state;
        _streamHost = streamHost;
        _ownedStore = ownedStore;
        _tails = tails;
    }

    /// <summary>The addresses Kestrel listens on (with the real port when 0 was asked for).</summary>
    public IReadOnlyList<string> Urls =>
        [.. _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? []];

    internal ServingState State { get; }

    /// <summary>Every HTTP method and route the server maps (the OpenAPI test checks the document against it).</summary>
    internal IReadOnlyList<(string Method, string Route)> Endpoints =>
        [.. ((IEndpointRouteBuilder)_app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (m, e.RoutePattern.RawText ?? "")))];

    /// <summary>Refreshes every signal's batch history now (the background loop does it every <see cref="ServingOptions.HistoryRefresh"/>).</summary>
    public async Task RefreshHistoryAsync(CancellationToken cancellationToken)
    {
        var logger = _app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Weft.Serving");
        await HistoryRefresher.RefreshAllAsync(State, logger, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Completes when the server stops (<see cref="DisposeAsync"/>; signals are left to the process, see <see cref="NoSignalHostLifetime"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    /// <param name="time">The clock (default the system's): request defaults for as_of, the history window, lag.</param>
    /// <param name="logging">Adjusts logging (default: console, information and above).</param>
    public static async Task<ServingServer> StartAsync(
        WeftConfig config, ServingOptions options, TimeProvider? time = null, Action<ILoggingBuilder>? logging = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        time ??= TimeProvider.System;
        var registry = ExecutorRegistry.CreateDefault();
        var definitions = config.LoadSignals(registry.Contains);
        var signals = new List<ServedSignal>(definitions.Count);
        for (int i = 0; i < definitions.Count; i++)
        {
            var d = definitions[i];
            signals.Add(new ServedSignal(i, d, new BatchHistory(config.EnrichedTable(d.Name), d, options.HistoryHorizon, time)));
        }

        var byName = signals.ToDictionary(s => s.Name, StringComparer.Ordinal);
        bool runStream = options.Stream == ServingStreamMode.Auto && config.Source.Kind == "embedded";
        var cache = runStream && options.CacheUsers > 0 ? new TimelineCache(options.CacheUsers) : null;

        StreamHost? streamHost = null;
        IOnlineStore? ownedStore = null;
        WebApplication? app = null;
        MigrationRouter? router = null;
        TailRecomputer? tails = null; // set when the host starts its services
        bool ledgerMissing = false; // legacy configured and no ledger yet: the router stands in an empty one
        try
        {
            IOnlineStore inner;
            if (runStream)
            {
                streamHost = await StreamHost.OpenAsync(config, new StreamOptions().Consumer, cancellationToken).ConfigureAwait(false);
                inner = streamHost.Store;
            }
            else
            {
                inner = ownedStore = await StreamHost.OpenStoreAsync(config.OnlineStore, cancellationToken).ConfigureAwait(false);
            }

            foreach (var s in signals)
            {
                var stats = await inner.StatsAsync(s.Name, cancellationToken).ConfigureAwait(false);
                if (stats.NewestEventTimeMicros is { } newest)
                {
                    // No later than the newest arrival: a skewed client's future event is stored, but
                    // the stream is not complete up to its time (ServedSignal.ServableTime).
                    s.AdvanceStreamWatermark(Math.Min(newest, stats.NewestIngestTimeMicros ?? newest));
                }
            }

            var store = new ObservedOnlineStore(inner, byName, cache);
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "weft-serve", ContentRootPath = AppContext.BaseDirectory });
            builder.WebHost.UseUrls(options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            NoSignalHostLifetime.Use(builder.Services); // the process's signals are its owner's (weft serve's)
            builder.WebHost.ConfigureKestrel(k =>
            {
                k.AddServerHeader = false;
                // The endpoints enforce serving.max_request_bytes themselves (400 naming the option) and
                // drain the rest of a refused body; Kestrel's own limit (413) sits above that drain budget.
                k.Limits.MaxRequestBodySize = Math.Max(64L * 1024, 17L * options.MaxRequestBytes); // room to drain a refused body (ServingEndpoints.DrainAsync)
            });
            builder.Logging.ClearProviders();
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
            builder.Logging.SetMinimumLevel(LogLevel.Information);
            builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

            // A start that fails (a port in use) is thrown to the caller, who names it; the host's own
            // log of it is a stack trace before that message, so it is left out until the host has started.
            var started = false;
            // The level is checked here too: a rule with a filter and no level let the host's debug lines through.
            builder.Logging.AddFilter((category, level) => level >= LogLevel.Information && (Volatile.Read(ref started) || category != "Microsoft.Extensions.Hosting.Internal.Host"));
            logging?.Invoke(builder.Logging);
            builder.Services.ConfigureHttpJsonOptions(o =>
            {
                // Only the OpenAPI generator reads these; the endpoints write and parse JSON by hand, and
                // refuse numbers in strings (the web default would document them as allowed).
                o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
                o.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
            });
            builder.Services.AddOpenApi(ApiDocument.Configure);

            EmbeddedStream? stream = null;
            if (streamHost is not null)
            {
                var streamOptions = new StreamOptions { MaxWait = options.StreamMaxWait, FlushInterval = options.StreamFlushInterval };
                var runtime = await StreamRuntime.CreateForAsync(config, definitions, streamHost.Source, store, streamOptions, time, cancellationToken).ConfigureAwait(false);
                stream = new EmbeddedStream(runtime, streamHost.EmbeddedLog!, (EmbeddedLogSource)streamHost.Source, time);
            }

            // The migration ledger, when this deployment migrates off a legacy pipeline (docs/migration.md).
            if (config.Legacy.Count > 0 || File.Exists(config.MigrationStore))
            {
                // An existing ledger must have its tables: one missing was damaged, and recreating it empty
                // served a cut-over type from legacy and let the next step act on a blank history. A missing
                // one is not created either (a lost ledger would read as a migration not started, and the
                // next step would act on it): the router routes as before any migration and opens the file
                // once `weft migrate shadow` creates it.
                var ledger = File.Exists(config.MigrationStore)
                    ? await MigrationStore.OpenExistingAsync(config.MigrationStore, time, cancellationToken).ConfigureAwait(false)
                    : await MigrationStore.OpenForReadingAsync(config.MigrationStore, time, cancellationToken).ConfigureAwait(false);
                router = new MigrationRouter(ledger, time);
                ledgerMissing = !ledger.Exists;
            }

            var legacyEndpoints = new Dictionary<string, LegacyEndpoint>(StringComparer.Ordinal);
            foreach (var (name, legacy) in config.Legacy)
            {
                if (legacy.Endpoint is { } url)
                {
                    legacyEndpoints[name] = new LegacyEndpoint(url, legacy.EndpointTimeout, breaks: true, time);
                }
            }

            var state = new ServingState(config, options, signals, new ApiKeys(config.Tenants), new SequenceService(store, cache, cache is not null && options.CacheJsonBytes > 0 ? new RenderCache(options.CacheJsonBytes) : null), stream, time)
            {
                Routes = router,
                LegacyEndpoints = legacyEndpoints,
            };
            builder.Services.AddSingleton(state);
            if (router is not null)
            {
                builder.Services.AddHostedService(sp => new ExposureFlusher(router, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Weft.Serving")));
            }

            if (stream is not null)
            {
                builder.Services.AddHostedService(_ => stream);
                if (stream.Runtime.TailRecomputes.Count > 0)
                {
                    builder.Services.AddHostedService(sp => tails = new TailRecomputer(stream.Runtime, config.ConfigPath, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Weft.Serving")));
                }
            }

            builder.Services.AddHostedService(sp => new HistoryRefresher(state, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Weft.Serving")));
            app = builder.Build();
            ServingEndpoints.Map(app, state);
            app.MapOpenApi("/openapi.json").WithMetadata(new Microsoft.AspNetCore.Routing.HttpMethodMetadata(ServingEndpoints.ReadMethods));

            var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Weft.Serving");
            streamHost?.ReportRecovery(log);
            foreach (var over in stream?.Runtime.StartedOver ?? [])
            {
                ServingLog.OffsetsStartedOver(log, over.Describe(streamHost!.Source.Name));
            }

            foreach (var owed in stream?.Runtime.TailRecomputes ?? [])
            {
                ServingLog.DefinitionChanged(log, owed.Describe(config.ConfigPath));
            }

            stream?.UseLogger(log);
            ServingLog.Options(log, options.Describe());
            if (ledgerMissing)
            {
                ServingLog.LedgerMissing(log, config.MigrationStore);
            }

            await HistoryRefresher.RefreshAllAsync(state, log, cancellationToken).ConfigureAwait(false);
            foreach (var (type, tenants) in state.SharedEventTypes)
            {
                ServingLog.SharedEventType(log, type, string.Join(", ", tenants));
            }

            var tenantNames = config.Tenants.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var s in signals.Where(s => !tenantNames.Contains(s.Definition.Tenant)))
            {
                ServingLog.OrphanSignal(log, s.Name, s.Definition.Tenant);
            }

            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref started, true);
            ServingLog.Started(log, signals.Count, config.Signals, inner.Describe, stream is null ? "not in this process" : $"in-process from {stream.Source.Name}", state.Keys.Count, config.Tenants.Length);
            return new ServingServer(app, state, streamHost, ownedStore, tails);
        }
        catch
        {
            if (app is not null)
            {
                await app.DisposeAsync().ConfigureAwait(false);
            }

            if (router is not null)
            {
                await router.DisposeAsync().ConfigureAwait(false);
            }

            await (tails?.Stopped ?? Task.CompletedTask).ConfigureAwait(false); // the hosted services started before Kestrel failed

            if (streamHost is not null)
            {
                await streamHost.DisposeAsync().ConfigureAwait(false);
            }

            if (ownedStore is not null)
            {
                await ownedStore.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>Stops Kestrel and the background loops (the runtime flushes), then closes the store and the log.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            await _app.DisposeAsync().ConfigureAwait(false);
            // A recompute slower to stop than the host's shutdown budget still reads the stream's tables.
            await (_tails?.Stopped ?? Task.CompletedTask).ConfigureAwait(false);
            if (_streamHost is not null)
            {
                await _streamHost.DisposeAsync().ConfigureAwait(false);
            }

            if (_ownedStore is not null)
            {
                await _ownedStore.DisposeAsync().ConfigureAwait(false);
            }

            if (State.Routes is { } router)
            {
                await router.DisposeAsync().ConfigureAwait(false); // writes the exposures still buffered
            }

            foreach (var endpoint in State.LegacyEndpoints.Values)
            {
                endpoint.Dispose();
            }
        }
    }
}

/// <summary>Writes the migration router's buffered exposures every second.</summary>
internal sealed class ExposureFlusher(MigrationRouter router, ILogger logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await router.FlushAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is Microsoft.Data.Sqlite.SqliteException or IOException)
                {
                    // The ledger is busy or unwritable: the exposures stay buffered for the next tick.
                    ServingLog.ExposureFlushFailed(logger, router.DroppedExposures > 0
                        ? $"{ex.Message}; {router.DroppedExposures:N0} exposures dropped so far, beyond the {router.PendingExposures:N0} buffered"
                        : ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: the server's dispose writes what is left.
        }
    }
}

/// <summary>
/// Recomputes, beside the in-process stream, the streamed tail of each signal whose definition changed
/// (<see cref="StreamRuntime.RecomputeTailAsync"/>): the batch history refresher then serves it.
/// </summary>
internal sealed class TailRecomputer(StreamRuntime runtime, string config, ILogger logger) : BackgroundService
{
    /// <summary>Completes when the runs have ended (or stopped); never faults.</summary>
    public Task Stopped => ExecuteTask ?? Task.CompletedTask;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield(); // the server starts while the batch loads
        var runs = runtime.TailRecomputes;
        for (int i = 0; i < runs.Count; i++)
        {
            var owed = runs[i];
            try
            {
                var result = await runtime.RecomputeTailAsync(owed, stoppingToken).ConfigureAwait(false);
                ServingLog.TailRecomputed(logger, owed.Signal, SignalDefinitionChanged.Short(owed.Definition), result.EventsOut, result.Chunks);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // This one and those not begun: each with its command.
                for (int left = i; left < runs.Count; left++)
                {
                    ServingLog.TailNotRecomputed(logger, runs[left].Signal, "the server stopped first; the chunks it committed stay, and the next start resumes it", runs[left].BatchCommand(config), null);
                }

                return;
            }
            catch (Exception ex)
            {
                // Whatever stopped it, the server goes on: the new events are served either way.
                ServingLog.TailNotRecomputed(logger, owed.Signal, ex.Message + "; the next start tries again", owed.BatchCommand(config), ex);
            }
        }
    }
}

/// <summary>Keeps every signal's batch history current and samples the stream's lag, in the background.</summary>
internal sealed class HistoryRefresher(ServingState state, ILogger logger) : BackgroundService
{
    public static async Task RefreshAllAsync(ServingState state, ILogger logger, CancellationToken cancellationToken)
    {
        foreach (var s in state.Signals)
        {
            try
            {
                if (await s.History.RefreshAsync(cancellationToken).ConfigureAwait(false))
                {
                    // After the swap: a reader that sees the new generation also sees the new history.
                    s.Invalidate();
                    var h = s.History.Current;
                    ServingLog.HistoryLoaded(logger, s.Name, h.Version, h.Rows.RowCount, h.SealedThroughMicros is { } t ? Timestamps.Format(t) : "(nothing sealed)");
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                ServingLog.HistoryFailed(logger, s.Name, ex);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromMilliseconds(100);
        var last = TimeProvider.System.GetTimestamp();
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                state.Stream?.Sample();
                if (TimeProvider.System.GetElapsedTime(last) >= state.Options.HistoryRefresh)
                {
                    last = TimeProvider.System.GetTimestamp();
                    await RefreshAllAsync(state, logger, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }
}
