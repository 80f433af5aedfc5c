using Microsoft.Extensions.Logging;

namespace Weft.Serving;

/// <summary>Every log message of Weft.Serving, source-generated, with stable event ids (6000–6099). No user data is logged.</summary>
internal static partial class ServingLog
{
    [LoggerMessage(EventId = 6000, Level = LogLevel.Information, Message = "weft serve: options {Options}")]
    public static partial void Options(ILogger logger, string options);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "weft serve: {Signals} signal(s) from {Folder}; online store {Store}; stream {Stream}; {Keys} API key(s) for {Tenants} tenant(s)")]
    public static partial void Started(ILogger logger, int signals, string folder, string store, string stream, int keys, int tenants);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Information, Message = "batch history of '{Signal}' loaded: table version {Version}, {Rows} rows, sealed through {SealedThrough}")]
    public static partial void HistoryLoaded(ILogger logger, string signal, long version, int rows, string sealedThrough);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Warning, Message = "batch history of '{Signal}' could not be refreshed; serving the previous one")]
    public static partial void HistoryFailed(ILogger logger, string signal, Exception exception);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Error, Message = "the in-process streaming runtime stopped; reads go on, POST /v1/events is refused until restart")]
    public static partial void StreamFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Warning, Message = "event type '{EventType}' is included by signals of several tenants ({Tenants}); POST /v1/events refuses it for every tenant")]
    public static partial void SharedEventType(ILogger logger, string eventType, string tenants);

    [LoggerMessage(EventId = 6006, Level = LogLevel.Warning, Message = "signal '{Signal}' belongs to tenant '{Tenant}', which has no entry in $.tenants: no key can read it")]
    public static partial void OrphanSignal(ILogger logger, string signal, string tenant);

    [LoggerMessage(EventId = 6007, Level = LogLevel.Error, Message = "request failed: {Method} {Route}")]
    public static partial void RequestFailed(ILogger logger, string method, string route, Exception exception);

    [LoggerMessage(EventId = 6008, Level = LogLevel.Warning, Message = "migration exposures not written yet (kept for the next try): {Reason}")]
    public static partial void ExposureFlushFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 6009, Level = LogLevel.Warning, Message = "stream: {What}")]
    public static partial void OffsetsStartedOver(ILogger logger, string what);

    [LoggerMessage(EventId = 6010, Level = LogLevel.Warning, Message = "stream: {What}")]
    public static partial void DefinitionChanged(ILogger logger, string what);

    [LoggerMessage(EventId = 6011, Level = LogLevel.Warning, Message = "migration ledger {Path} not found: every event type of a legacy pipeline is served by legacy until `weft migrate shadow` creates it (read within seconds, no restart); if it was moved, put it back (\"migration_store\" in weft.json)")]
    public static partial void LedgerMissing(ILogger logger, string path);

    [LoggerMessage(EventId = 6012, Level = LogLevel.Error, Message = "the embedded log refuses appends: POST /v1/events answers 503 and /healthz fails until weft serve restarts (opening the log recovers it)")]
    public static partial void LogFaulted(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6013, Level = LogLevel.Information, Message = "the tail of '{Signal}' is recomputed under definition {Definition}: {Events} events in {Chunks} chunk(s); its sequences are whole again")]
    public static partial void TailRecomputed(ILogger logger, string signal, string definition, long events, int chunks);

    [LoggerMessage(EventId = 6014, Level = LogLevel.Warning, Message = "the tail of '{Signal}' was not recomputed ({Reason}); its events streamed under the earlier definition are not served until: {Command}")]
    public static partial void TailNotRecomputed(ILogger logger, string signal, string reason, string command, Exception? exception);
}
