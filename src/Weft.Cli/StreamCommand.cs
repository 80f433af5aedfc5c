using System.CommandLine;
using System.Globalization;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Weft.Serving.Hosting;
using Weft.Storage;
using Weft.Streaming.Runtime;
using Weft.Streaming;

namespace Weft.Cli;

/// <summary><c>weft stream --config weft.json</c>: the streaming path, until Ctrl-C (or until idle).</summary>
internal static class StreamCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var config = new Option<string>("--config") { Description = "The deployment config (weft.json)", DefaultValueFactory = _ => "weft.json" };
        var signals = new Option<string?>("--signal") { Description = "Comma-separated signals to run (default: every signal in the config); some of them run as a consumer of their own (weft-stream.<names>), which skips the other signals' event types" };
        var flush = new Option<string>("--flush-interval") { Description = "How often stream buckets are flushed to the lake and offsets committed", DefaultValueFactory = _ => "5s" };
        var maxBatch = new Option<int>("--max-batch") { Description = "Records per micro-batch at most (a batch takes what the source holds)", DefaultValueFactory = _ => new StreamOptions().MaxBatchRecords };
        var maxPending = new Option<int>("--max-pending-rows") { Description = "Rows waiting for the lake at which a flush starts early (bounds the memory a backlog takes)", DefaultValueFactory = _ => new StreamOptions().MaxPendingRows };
        var compact = new Option<string>("--compact-interval") { Description = "How often closed stream buckets' small files are compacted in the background (0s: never)", DefaultValueFactory = _ => Durations.Format(new StreamOptions().CompactInterval) };
        var vacuum = new Option<string>("--vacuum-interval") { Description = "How often the stream's tables are vacuumed in the background: files no longer referenced, older than the retention, deleted (0s: never)", DefaultValueFactory = _ => Durations.Format(new StreamOptions().VacuumInterval) };
        var retention = new Option<string>("--vacuum-retention") { Description = $"How long unreferenced files stay for time travel before a vacuum deletes them (at least {Durations.Format(StreamOptions.MinVacuumRetention)})", DefaultValueFactory = _ => Durations.Format(new StreamOptions().VacuumRetention) };
        var idle = new Option<string?>("--exit-when-idle") { Description = "Stop cleanly once the source has had nothing for this long (e.g. 3s); the wait between a Kafka rebalance's revoke and its assignment does not count, nor the first 15 s of a group's first join. A source that never reached its input (no Kafka partition assigned) exits 2 with the broker's last error" };
        var metricsUrls = new Option<string?>("--metrics-urls") { Description = "Serve GET /metrics (Prometheus text: freshness, lag, dead letters, …) and GET /healthz here, e.g. http://127.0.0.1:9464 (default: not served)" };
        var command = new Command("stream", "Run the streaming path: source → executors → online store + stream partitions, offsets committed after both") { config, signals, flush, maxBatch, maxPending, compact, vacuum, retention, idle, metricsUrls };
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                if (!Durations.TryParse(parse.GetValue(flush), out var flushInterval))
                {
                    throw new ArgumentException($"--flush-interval '{parse.GetValue(flush)}' is not a duration (e.g. 5s)");
                }

                if (!Durations.TryParse(parse.GetValue(compact), out var compactInterval))
                {
                    throw new ArgumentException($"--compact-interval '{parse.GetValue(compact)}' is not a duration (e.g. 10m, or 0s for never)");
                }

                if (!Durations.TryParse(parse.GetValue(vacuum), out var vacuumInterval))
                {
                    throw new ArgumentException($"--vacuum-interval '{parse.GetValue(vacuum)}' is not a duration (e.g. 1d, or 0s for never)");
                }

                if (!Durations.TryParse(parse.GetValue(retention), out var vacuumRetention))
                {
                    throw new ArgumentException($"--vacuum-retention '{parse.GetValue(retention)}' is not a duration (e.g. 7d)");
                }

                if (vacuumRetention < StreamOptions.MinVacuumRetention)
                {
                    throw new ArgumentException($"--vacuum-retention {Durations.Format(vacuumRetention)} is shorter than {Durations.Format(StreamOptions.MinVacuumRetention)}: a vacuum could delete files a writer has not committed yet");
                }

                if (parse.GetValue(maxPending) is var pendingCap and < 1)
                {
                    throw new ArgumentException($"--max-pending-rows {pendingCap} must be at least 1");
                }

                TimeSpan? idleAfter = null;
                if (parse.GetValue(idle) is { } idleText)
                {
                    idleAfter = Durations.TryParse(idleText, out var d) ? d : throw new ArgumentException($"--exit-when-idle '{idleText}' is not a duration (e.g. 3s)");
                }

                if (parse.GetValue(metricsUrls) is { } listen)
                {
                    try
                    {
                        OperatorEndpoints.ParseUrls(listen);
                    }
                    catch (ArgumentException e)
                    {
                        throw new ArgumentException($"--metrics-urls: {CliMessages.Of(e)}", e);
                    }
                }

                if (parse.GetValue(maxBatch) is var batchCap and < 1)
                {
                    throw new ArgumentException($"--max-batch {batchCap} must be at least 1");
                }

                if (flushInterval <= TimeSpan.Zero)
                {
                    throw new ArgumentException($"--flush-interval {Durations.Format(flushInterval)} must be positive (e.g. 5s)");
                }

                var weft = WeftConfig.Load(parse.GetValue(config)!);
                StreamHost.CheckSource(weft);
                // A name given twice is one signal: two runtimes of it would recall its events twice over.
                var names = parse.GetValue(signals)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToArray();
                string consumer = StreamOptions.DefaultConsumer;
                var registry = Weft.Engine.ExecutorRegistry.CreateDefault();
                var configured = weft.LoadSignals(registry.Contains).Select(s => s.Name).ToList();
                if (names is not null)
                {
                    if (names.Length == 0)
                    {
                        throw new ArgumentException($"--signal '{parse.GetValue(signals)}' names no signal (known: {string.Join(", ", configured)})");
                    }

                    if (names.FirstOrDefault(n => !configured.Contains(n)) is { } unknown)
                    {
                        throw new ArgumentException($"--signal: no signal '{unknown}' in '{weft.Signals}' (known: {string.Join(", ", configured)})");
                    }

                    consumer = StreamOptions.ConsumerFor(names, configured);
                }

                // A config mistake fails before the source opens: a Kafka source would join its group
                // (and need librdkafka) only to be torn down again.
                foreach (var name in names ?? (IEnumerable<string>)configured)
                {
                    SignalEnvironment.CheckConfigured(weft, name, registry);
                }

                var options = new StreamOptions { FlushInterval = flushInterval, MaxBatchRecords = parse.GetValue(maxBatch), MaxPendingRows = parse.GetValue(maxPending), CompactInterval = compactInterval,
                    VacuumInterval = vacuumInterval, VacuumRetention = vacuumRetention, Consumer = consumer };
                // The tails' recomputes (below) write beside the loop's progress lines and the source's log.
                var errors = TextWriter.Synchronized(stderr);
                await using var host = await StreamHost.OpenAsync(weft, options.Consumer, new TextWriterLogger(errors, "stream: source: "), ct).ConfigureAwait(false);
                await using var runtime = await StreamRuntime.CreateAsync(weft, host.Source, host.Store, names, options, cancellationToken: ct).ConfigureAwait(false);
                foreach (var over in runtime.StartedOver)
                {
                    await errors.WriteLineAsync("stream: " + over.Describe(host.Source.Name)).ConfigureAwait(false);
                }

                foreach (var owed in runtime.TailRecomputes)
                {
                    await errors.WriteLineAsync("stream: " + owed.Describe(weft.ConfigPath)).ConfigureAwait(false);
                }

                var loop = new StreamLoopWatch(TimeProvider.System);
                await using var endpoints = parse.GetValue(metricsUrls) is { } urls
                    ? await OperatorEndpoints.StartAsync(urls, runtime.Metrics, loop.Problem, runtime.RefreshLag, ct).ConfigureAwait(false)
                    : null;
                if (endpoints is not null)
                {
                    await stdout.WriteLineAsync($"stream: metrics on {string.Join(", ", endpoints.Urls.Select(u => u.TrimEnd('/') + "/metrics"))}, health on /healthz").ConfigureAwait(false);
                }

                await stdout.WriteLineAsync($"stream: {string.Join(", ", runtime.Signals)} from {host.Source.Name} as consumer {options.Consumer}{(weft.Source.Kind == "kafka" && weft.Source.GroupId is { } group ? $" (Kafka group {StreamOptions.KafkaGroupFor(group, options.Consumer)})" : "")} into {weft.OnlineStore.Describe()} and {Path.Combine(weft.Lake, "enriched")}; flush every {Durations.Format(flushInterval)} or at {options.MaxPendingRows:N0} pending rows, {options.MaxBatchRecords} records per micro-batch, {(compactInterval > TimeSpan.Zero ? $"closed buckets compacted every {Durations.Format(compactInterval)}" : "no compaction")}, {(vacuumInterval > TimeSpan.Zero ? $"tables vacuumed every {Durations.Format(vacuumInterval)} (retention {Durations.Format(vacuumRetention)})" : "no vacuum")}").ConfigureAwait(false);
                double recalled = runtime.Signals.Sum(s => runtime.Metrics.Value("weft_stream_recalled_events", ("signal", s)));
                if (recalled > 0)
                {
                    double seconds = runtime.Signals.Sum(s => runtime.Metrics.Value("weft_stream_recall_seconds", ("signal", s)));
                    await stdout.WriteLineAsync($"stream: recalled {recalled:N0} stored events into the dedup windows and hot-user caps in {seconds:F1} s (a redelivery of one is still a duplicate)").ConfigureAwait(false);
                }

                using var tailsStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var tails = new List<Task>();
                try
                {
                    tails.AddRange(runtime.TailRecomputes.Select(owed => RecomputeTailAsync(runtime, owed, weft.ConfigPath, errors, tailsStop.Token)));
                    await RunAsync(runtime, host.Source, idleAfter, loop, errors, ct).ConfigureAwait(false);
                    loop.Finished();
                    await Task.WhenAll(tails).ConfigureAwait(false); // an idle exit waits for them; a stop ends them between chunks
                }
                finally
                {
                    // A stream that failed stops them too: they are the process's work, not to outlive it.
                    await tailsStop.CancelAsync().ConfigureAwait(false);
                    await Task.WhenAll(tails).ConfigureAwait(false);
                }
                if (idleAfter is not null && !ct.IsCancellationRequested && runtime.RecordsIn == 0 && host.Source.NotReadingReason() is { } reason)
                {
                    // Idle because the input was never reached, not because it is empty: a script must not read it as success.
                    throw new IOException($"stopped after {Durations.Format(JoinGrace + idleAfter.Value)} without reading anything: {reason}");
                }

                await stdout.WriteLineAsync(host.Source.WhyLastCommitNotMade is { } why
                    ? $"stream: stopped after reading {runtime.RecordsIn:N0} records (redeliveries included); the lake and the online store hold them, but the last offset commit was not made ({why}), so the group's next reader gets the records since the commit before it again"
                    : $"stream: stopped after reading {runtime.RecordsIn:N0} records (redeliveries included); offsets committed up to what the lake and the online store hold").ConfigureAwait(false);
                return 0;
            }
            // UnauthorizedAccessException: a log, lake or archive folder the process may not create or write
            // (it went unhandled: a stack trace and exit 1).
            catch (Exception ex) when (ex is ConfigException or InputException or DefinitionException or DeltaException or IOException or UnauthorizedAccessException
                                           or ArgumentException or NotSupportedException or Weft.Online.OnlineStoreException or Weft.Streaming.Kafka.KafkaSourceException)
            {
                // A source that failed for good (a fatal librdkafka error, a commit refused): one line and
                // exit 2, the CLI's IO error, not the runtime's stack trace and exit 1 ("problems found").
                await stderr.WriteLineAsync($"stream: {CliMessages.Of(ex)}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }

    /// <summary>The batch run that brings a changed signal's streamed tail back, beside the stream; it says how it ended and never fails the stream.</summary>
    private static async Task RecomputeTailAsync(StreamRuntime runtime, TailRecompute owed, string config, TextWriter errors, CancellationToken ct)
    {
        await Task.Yield(); // the stream starts reading while the batch loads
        try
        {
            var result = await runtime.RecomputeTailAsync(owed, ct).ConfigureAwait(false);
            await errors.WriteLineAsync($"stream: the tail of '{owed.Signal}' is recomputed under definition {SignalDefinitionChanged.Short(owed.Definition)}: {result.EventsOut:N0} events in {result.Chunks} chunk(s) ({result.ChunksResumed} committed before), {result.DeadLetters:N0} dead letters; its sequences are whole again").ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await errors.WriteLineAsync($"stream: the recompute of '{owed.Signal}''s tail stopped with the stream (the chunks it committed stay); the next start resumes it, or run it by hand: {owed.BatchCommand(config)}").ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Whatever stopped it, the stream is not to stop for it: it serves the new events either way.
            await errors.WriteLineAsync($"stream: the tail of '{owed.Signal}' could not be recomputed ({CliMessages.Of(ex)}); the stream goes on; the next start tries again, or run it by hand: {owed.BatchCommand(config)}").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// How long a source that has not reached its input yet (a Kafka group still joining) is not idle:
    /// a first join takes seconds (brokers delay a new group's first rebalance by 3 s by default).
    /// </summary>
    private static readonly TimeSpan JoinGrace = TimeSpan.FromSeconds(15);

    private static async Task RunAsync(StreamRuntime runtime, IEventSource source, TimeSpan? idleAfter, StreamLoopWatch loop, TextWriter stderr, CancellationToken ct)
    {
        var started = TimeProvider.System.GetTimestamp();
        var lastRecord = started;
        var lastReport = lastRecord;
        long reported = 0;
        bool keyMismatchShown = false;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                int read = await runtime.StepAsync(ct).ConfigureAwait(false);
                loop.Stepped();
                if (!keyMismatchShown && runtime.FirstKeyMismatch is { } mismatch)
                {
                    keyMismatchShown = true; // once: a producer that keys otherwise does so for every record
                    await stderr.WriteLineAsync("stream: " + mismatch.Describe()).ConfigureAwait(false);
                }

                long now = TimeProvider.System.GetTimestamp();
                if (read > 0 || runtime.AwaitingAssignment
                    || (runtime.RecordsIn == 0 && TimeProvider.System.GetElapsedTime(started, now) < JoinGrace && source.NotReadingReason() is not null))
                {
                    lastRecord = now; // a rebalance's (or a first join's) silence is not idleness: partitions are on their way
                }
                else if (idleAfter is { } idle && TimeProvider.System.GetElapsedTime(lastRecord, now) >= idle)
                {
                    break;
                }

                if (TimeProvider.System.GetElapsedTime(lastReport, now) >= TimeSpan.FromSeconds(1) && runtime.RecordsIn != reported)
                {
                    lastReport = now;
                    reported = runtime.RecordsIn;
                    var perSignal = string.Join("  ", runtime.Signals.Select(s => $"{s}: {runtime.Metrics.Value("weft_stream_events_total", ("signal", s)):N0} events"));
                    await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"stream: {runtime.RecordsIn:N0} records  {perSignal}")).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Ctrl-C: flush below
        }

        await runtime.FlushAsync(CancellationToken.None).ConfigureAwait(false);
    }
}

/// <summary>
/// When <c>weft stream</c>'s loop last finished a step, for <c>/healthz</c>. A step returns within the
/// runtime's wait even when the source is idle, so a long silence means the loop is stuck (on the
/// store, the lake or the source).
/// </summary>
internal sealed class StreamLoopWatch(TimeProvider time)
{
    internal static readonly TimeSpan StuckAfter = TimeSpan.FromSeconds(60);

    private long _lastStep = time.GetTimestamp();

    private volatile bool _finished;

    public void Stepped() => Volatile.Write(ref _lastStep, time.GetTimestamp());

    /// <summary>The loop has ended (an idle exit waiting for a tail's recompute): its silence is no fault.</summary>
    public void Finished() => _finished = true;

    /// <summary>Null while the loop steps (or after it ended); else how long it has been silent.</summary>
    public string? Problem()
    {
        if (_finished)
        {
            return null;
        }

        var silent = time.GetElapsedTime(Volatile.Read(ref _lastStep));
        return silent < StuckAfter ? null : string.Create(CultureInfo.InvariantCulture, $"the stream loop has not finished a step for {silent.TotalSeconds:F0} s");
    }
}
