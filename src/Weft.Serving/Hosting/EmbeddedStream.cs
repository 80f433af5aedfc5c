using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Weft.Definitions;
using Weft.Streaming.Embedded;
using Weft.Streaming.Runtime;

namespace Weft.Serving.Hosting;

/// <summary>
/// The streaming runtime inside <c>weft serve</c> on a single node: <see cref="StreamRuntime.RunAsync"/>
/// in a hosted background loop, reading the embedded log that <c>POST /v1/events</c> appends to. Stopping
/// the host cancels the loop, and the runtime flushes what it holds (lake, dead letters, offsets).
/// </summary>
internal sealed class EmbeddedStream(StreamRuntime runtime, EmbeddedLog log, EmbeddedLogSource source, TimeProvider time) : BackgroundService
{
    private ILogger _logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    private long _caughtUpAtMicros = Timestamps.ToMicros(time.GetUtcNow());
    private Exception? _failure;
    private long _failedAtMicros;
    private int _logFaultReported;

    public StreamRuntime Runtime => runtime;

    public EmbeddedLog Log => log;

    public EmbeddedLogSource Source => source;

    /// <summary>The error that stopped the runtime, or null while it runs.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>
    /// What a client is told of <see cref="Failure"/> (null while the runtime runs): when, and where the
    /// error is. The error itself names signals, tables and paths of every tenant, so it goes to the
    /// server's log only, never to a tenant's /v1/status or the public /healthz.
    /// </summary>
    public string? FailureShown => Failure is { } failure
        ? $"the in-process streaming runtime stopped at {Timestamps.Format(Volatile.Read(ref _failedAtMicros))} ({failure.GetType().Name}); the error is in weft serve's log (event 6004); restart weft serve"
        : null;

    /// <summary>
    /// What a client is told once the embedded log refuses appends (null while it takes them): that, and
    /// where the error is. The error names the log's folder and segment file (and the system's own
    /// message, often with a path), so, as for <see cref="FailureShown"/>, it goes to the server's log
    /// (event 6012, once), never to a tenant's 503 or the public /healthz.
    /// </summary>
    public string? LogFaultShown
    {
        get
        {
            if (log.Fault is not { } fault)
            {
                return null;
            }

            if (Interlocked.Exchange(ref _logFaultReported, 1) == 0)
            {
                ServingLog.LogFaulted(_logger, fault);
            }

            return $"the embedded log refuses appends since a write or fsync failed ({(fault.InnerException ?? fault).GetType().Name}); the error is in weft serve's log (event 6012); restart weft serve (opening the log recovers it)";
        }
    }

    /// <summary>Records appended to the log and not yet read by the runtime.</summary>
    public long LagRecords => Math.Max(0, log.EndOffset - source.Position);

    /// <summary>
    /// How far the runtime is behind the log, in ms: 0 when it has read everything appended, else the time
    /// since it was last seen caught up (sampled by <see cref="Sample"/> at least every 100 ms and on each call).
    /// </summary>
    public long LagMs
    {
        get
        {
            Sample();
            return LagRecords == 0 ? 0 : Math.Max(0, (Timestamps.ToMicros(time.GetUtcNow()) - Volatile.Read(ref _caughtUpAtMicros)) / 1000);
        }
    }

    public void UseLogger(ILogger logger) => _logger = logger;

    public void Sample()
    {
        if (LagRecords == 0)
        {
            Volatile.Write(ref _caughtUpAtMicros, Timestamps.ToMicros(time.GetUtcNow()));
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        try
        {
            await runtime.RunAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            Volatile.Write(ref _failedAtMicros, Timestamps.ToMicros(time.GetUtcNow()));
            Volatile.Write(ref _failure, ex);
            ServingLog.StreamFailed(_logger, ex);
        }
    }
}
