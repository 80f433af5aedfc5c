using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Weft.Engine.Observability;
using Weft.Online;
using Weft.Storage;
using Weft.Streaming.Kafka;
using Weft.Streaming.Runtime;

namespace Weft.Bench.Streaming.Modes;

/// <summary>
/// Freshness (event → servable latency) at a steady produce rate. A producer thread writes generated
/// click events to an empty topic at <c>--rate</c> events/s (paced in 5 ms ticks, linger.ms=5) while
/// Weft's StreamRuntime (built as in <see cref="RuntimeMode"/>: Kafka source → executors → SQLite online
/// store, or PostgreSQL with <c>--postgres</c>; lake flushes every 5 s) consumes concurrently. Produced =
/// the Stopwatch time just before <c>Produce</c>; servable = just after the online store's append that
/// holds the event returned (<see cref="TimingOnlineStore"/>). Only events produced in the steady window (after <c>--warmup</c>,
/// for <c>--duration</c> seconds) count; events the signal filters out (clicks with dwell_ms &lt; 500)
/// never reach the store and are left out. Not part of <c>all</c>: it produces its own topic.
/// </summary>
internal sealed class FreshnessMode(Program.Options options)
{
    private const int TickMilliseconds = 5;
    private const int SlowStepMs = 200;

    /// <summary>
    /// Partitions unless <c>--partitions</c> says otherwise. The mock broker finds a fetch's offset by
    /// walking the partition's list of message sets from the start ("FIXME: Maintain an index" in
    /// rdkafka_mock.c), and a steady producer with linger.ms=5 writes many small message sets, so each
    /// fetch costs O(partitions × message sets kept) on the mock's single thread: with 16 partitions
    /// at 5 000 events/s that starves the brokers within ~15 s (acks and fetches seconds late) and the
    /// figures measure the mock, not Weft. With 4, the mock keeps ~5 MB per partition, i.e.
    /// <see cref="RetentionSeconds"/> of lag before it drops unread events (counted as never servable).
    /// </summary>
    private const int DefaultPartitions = 4;

    /// <summary>Seconds of produced data the mock keeps (~5 MB per partition, ~240 bytes per event on the wire).</summary>
    private static double RetentionSeconds(int partitions, double rate) => partitions * 5e6 / (rate * 240);
    private const string TopicName = "clicks";
    private const string Signal = "clicks";
    private static readonly string[] EventTypes = ["click", "save", "impression"];
    private static readonly double[] Quantiles = [0.5, 0.9, 0.99, 0.999];
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Consumer settings this mode applies unless <c>--set</c> overrides them. librdkafka's mock broker
    /// answers a fetch that finds no data only after the full <c>fetch.wait.max.ms</c> (default 500 ms)
    /// and does not cut the wait short when data arrives meanwhile (rdkafka_mock_handlers.c, Fetch), as a
    /// real broker does once <c>fetch.min.bytes</c> (1) is there; with the default, up to 500 ms of each
    /// event's latency is the mock's. 10 ms keeps that artefact small.
    /// </summary>
    private static readonly Dictionary<string, string> MockConsumerDefaults = new(StringComparer.Ordinal) { ["fetch.wait.max.ms"] = "10" };

    private long _produced; // events handed to the producer so far (sequence numbers 0 … _produced-1)
    private long _deliveryErrors;
    private int _stopRuntime;

    private static void Log(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    public async Task<JsonObject> RunAsync(CancellationToken cancellationToken)
    {
        double rate = options.Rate, warmup = options.Warmup, duration = options.Duration;
        var capacity = (long)Math.Ceiling(rate * (warmup + duration)) + 16;
        var partitions = options.Partitions > 0 ? options.Partitions : DefaultPartitions;
        var batchSize = Math.Max(options.BatchSize, new StreamOptions().MaxBatchRecords); // the runtime's default unless --batch asks for more
        var producedAt = new long[capacity];
        var servableAt = new long[capacity];
        var ackedAt = new long[capacity]; // the producer's delivery report (the brokers hold the event)
        var reachesStore = new bool[capacity]; // passes the signal's hot-user cap and filter (not a click with dwell_ms < 500)
        var hotUserCap = new HotUserCap(RuntimeMode.Signal().Budgets.HotUserMaxEventsPerHour);
        var consumerConfig = new Dictionary<string, string>(MockConsumerDefaults, StringComparer.Ordinal);
        foreach (var (key, value) in options.ConsumerConfig)
        {
            consumerConfig[key] = value;
        }

        var loadBefore = LoadAverage();
        Log($"freshness: {rate:N0} events/s for {warmup:0.#} s warm-up + {duration:0.#} s measured, {partitions} partitions on {options.Brokers} mock brokers");
        await using var cluster = KafkaMockCluster.Start(options.Brokers);
        cluster.CreateTopic(TopicName, partitions);

        var dir = Path.Combine(Path.GetTempPath(), "weft-bench-freshness", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var config = await RuntimeMode.WriteConfigAsync(dir, signalPerType: false, cancellationToken);
            await using var source = await KafkaSource.OpenAsync(
                new KafkaSourceOptions { BootstrapServers = cluster.BootstrapServers, Topics = [TopicName], GroupId = $"bench-freshness-{Guid.NewGuid():N}", Config = consumerConfig },
                cancellationToken: cancellationToken);
            await using var inner = await BenchStore.OpenAsync(dir, options.Postgres, cancellationToken);
            var store = new TimingOnlineStore(inner.Store, servableAt); // not disposed itself: it would dispose the inner store twice
            var runtime = await StreamRuntime.CreateAsync(config, source, store, null, new StreamOptions { MaxBatchRecords = batchSize }, cancellationToken: cancellationToken);

            using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig
            {
                BootstrapServers = cluster.BootstrapServers,
                LingerMs = 5,
                Acks = Acks.All,
                QueueBufferingMaxMessages = 1_000_000,
                CompressionType = Enum.Parse<CompressionType>(options.Compression, ignoreCase: true),
            }).SetLogHandler((_, _) => { }).Build();
            Action<DeliveryReport<byte[], byte[]>> delivered = r =>
            {
                if (r.Error.IsError)
                {
                    Interlocked.Increment(ref _deliveryErrors);
                }
                else if (SequenceOf(r.Message.Value) is { } seq && seq < capacity)
                {
                    ackedAt[seq] = Stopwatch.GetTimestamp();
                }
            };
            using var events = ClickEvents.Generate(capacity, options.Seed).GetEnumerator();
            void ProduceNext(long seq)
            {
                events.MoveNext();
                var (userId, json) = events.Current;
                reachesStore[seq] = hotUserCap.Admits(userId, json) && ReachesStore(json);
                var message = new Message<byte[], byte[]> { Key = KafkaEventProducer.KeyOf(userId), Value = json };
                while (true)
                {
                    producedAt[seq] = Stopwatch.GetTimestamp();
                    try
                    {
                        producer.Produce(TopicName, message, delivered);
                        return;
                    }
                    catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                    {
                        Thread.Sleep(1);
                    }
                }
            }

            // Each step's start and length, and whether a lake flush (in the background) completed during it: where stalls come from.
            var steps = new List<(long Start, double Ms, bool Flushed)>();
            double LakeRows() => runtime.Metrics.Value("weft_lake_rows_total", ("signal", Signal), ("path", EventLayout.StreamPath));
            var runtimeLoop = Task.Run(
                async () =>
                {
                    while (Volatile.Read(ref _stopRuntime) == 0)
                    {
                        var (began, lake) = (Stopwatch.GetTimestamp(), LakeRows());
                        await runtime.StepAsync(cancellationToken);
                        steps.Add((began, Stopwatch.GetElapsedTime(began).TotalMilliseconds, LakeRows() != lake));
                    }
                },
                cancellationToken);

            // Primer: one event (sequence 0), so the group join and first fetch are over before the clock starts.
            var created = Stopwatch.StartNew();
            ProduceNext(0);
            Volatile.Write(ref _produced, 1);
            while (runtime.RecordsIn == 0)
            {
                ThrowIfFailed(runtimeLoop);
                if (created.Elapsed > TimeSpan.FromMinutes(2))
                {
                    throw new TimeoutException("The runtime read nothing within 2 minutes.");
                }

                await Task.Delay(5, cancellationToken);
            }

            var startup = created.Elapsed.TotalSeconds;
            Log($"consumer ready after {startup:F1} s; producing");

            var t0 = Stopwatch.GetTimestamp();
            long At(double seconds) => t0 + (long)(seconds * Stopwatch.Frequency);
            double Since(long timestamp) => (timestamp - t0) / (double)Stopwatch.Frequency;
            long windowStart = At(warmup), windowEnd = At(warmup + duration);
            var producing = Task.Factory.StartNew(
                () =>
                {
                    long next = 1;
                    while (true)
                    {
                        var now = Stopwatch.GetTimestamp();
                        if (now >= windowEnd)
                        {
                            break;
                        }

                        var due = Math.Min(capacity, 1 + (long)(Since(now) * rate));
                        for (; next < due; next++)
                        {
                            ProduceNext(next);
                        }

                        Volatile.Write(ref _produced, next);
                        Thread.Sleep(TickMilliseconds);
                    }
                },
                cancellationToken,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default);

            // The runtime metric's window starts once every event produced before the window is servable,
            // so warm-up events served late do not count in it (a few early window events are left out instead).
            var metricWindowStart = Task.Run(
                async () =>
                {
                    var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), windowStart);
                    if (wait > TimeSpan.Zero)
                    {
                        await Task.Delay(wait, cancellationToken);
                    }

                    long boundary = Volatile.Read(ref _produced), next = 0;
                    while (next < boundary && Volatile.Read(ref _stopRuntime) == 0)
                    {
                        if (!reachesStore[next] || Volatile.Read(ref servableAt[next]) != 0)
                        {
                            next++;
                        }
                        else
                        {
                            await Task.Delay(2, cancellationToken);
                        }
                    }

                    return (Buckets: FreshnessBuckets(runtime.Metrics), LagSeconds: Since(Stopwatch.GetTimestamp()) - warmup);
                },
                cancellationToken);

            // Samples every second (and at the window's edges): produced, read by the runtime, appended.
            var offsets = Enumerable.Range(1, (int)Math.Floor(warmup + duration)).Select(s => (double)s)
                .Append(warmup).Append(warmup + duration).Where(s => s >= 0).Distinct().Order().ToList();
            var samples = new List<(double Seconds, long Produced, long Read, long Appended)>();
            TimeSpan cpuAtStart = default, windowCpu = default, gcPauseAtStart = default, gcPause = default;
            int gen2AtStart = 0, gen2 = 0;
            foreach (var offset in offsets)
            {
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), At(offset));
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken);
                }

                ThrowIfFailed(runtimeLoop);
                ThrowIfFailed(producing);
                (double Seconds, long Produced, long Read, long Appended) sample = (offset, Volatile.Read(ref _produced), runtime.RecordsIn, store.Appended);
                samples.Add(sample);
                if (offset == warmup)
                {
                    cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
                    (gcPauseAtStart, gen2AtStart) = (GC.GetTotalPauseDuration(), GC.CollectionCount(2));
                }

                if (offset == warmup + duration)
                {
                    windowCpu = Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart;
                    (gcPause, gen2) = (GC.GetTotalPauseDuration() - gcPauseAtStart, GC.CollectionCount(2) - gen2AtStart);
                }

                if (Math.Abs(offset % 5) < 1e-9)
                {
                    Log($"t={offset:F0} s: produced {sample.Produced:N0}, read {sample.Read:N0} (backlog {sample.Produced - sample.Read:N0}), appended {sample.Appended:N0}");
                }
            }

            await producing;
            var total = Volatile.Read(ref _produced);
            var undelivered = producer.Flush(TimeSpan.FromSeconds(30));

            // Drain: the runtime reads what is left, so every window event gets its servable time.
            var drain = Stopwatch.StartNew();
            while (runtime.RecordsIn < total && drain.Elapsed < DrainTimeout)
            {
                ThrowIfFailed(runtimeLoop);
                await Task.Delay(10, cancellationToken);
            }

            var drainSeconds = drain.Elapsed.TotalSeconds;
            var drained = runtime.RecordsIn >= total;
            Volatile.Write(ref _stopRuntime, 1);
            await runtimeLoop; // finishes the step in progress: its append has returned
            var bucketsAtEnd = FreshnessBuckets(runtime.Metrics);
            var (bucketsAtStart, metricStartLag) = await metricWindowStart;
            await runtime.FlushAsync(cancellationToken);
            Log($"produced {total:N0}, read {runtime.RecordsIn:N0}, drained in {drainSeconds:F1} s{(drained ? "" : " (timed out)")}");

            // The steady window, by produce time.
            var latencies = new List<double>();
            var acks = new List<double>();
            var ackToServable = new List<double>();
            long inWindow = 0, expected = 0, unserved = 0, servedButFiltered = 0;
            for (long i = 0; i < total; i++)
            {
                if (producedAt[i] < windowStart || producedAt[i] >= windowEnd)
                {
                    continue;
                }

                inWindow++;
                if (servableAt[i] != 0)
                {
                    latencies.Add((servableAt[i] - producedAt[i]) * 1000.0 / Stopwatch.Frequency);
                    if (ackedAt[i] != 0)
                    {
                        acks.Add((ackedAt[i] - producedAt[i]) * 1000.0 / Stopwatch.Frequency);
                        ackToServable.Add((servableAt[i] - ackedAt[i]) * 1000.0 / Stopwatch.Frequency);
                    }
                    servedButFiltered += reachesStore[i] ? 0 : 1;
                }

                if (reachesStore[i])
                {
                    expected++;
                    unserved += servableAt[i] == 0 ? 1 : 0;
                }
            }

            latencies.Sort();
            acks.Sort();
            ackToServable.Sort();
            var start = samples.Single(s => s.Seconds == warmup);
            var end = samples.Single(s => s.Seconds == warmup + duration);
            var produceRate = inWindow / duration;
            var consumeRate = (end.Read - start.Read) / duration;
            var window = samples.Where(s => s.Seconds >= warmup && s.Seconds <= warmup + duration).ToList();
            var backlogSlope = Slope(window.Select(s => (s.Seconds, (double)(s.Produced - s.Read))).ToList()); // events/s
            var backlogGrowth = backlogSlope * duration;
            var keptUp = consumeRate >= 0.95 * produceRate && backlogGrowth <= Math.Max(rate * 1.0, 2.0 * batchSize) && drained && unserved == 0;
            var freshness = Percentiles(latencies);
            var windowSteps = steps.Where(st => st.Start >= windowStart && st.Start < windowEnd).ToList();
            var stepMs = windowSteps.Select(st => st.Ms).Order().ToList();
            var slow = windowSteps.Where(st => st.Ms >= SlowStepMs).ToList();

            var result = new JsonObject
            {
                ["benchmark"] = "weft-streaming-freshness",
                ["description"] = "event produced to Kafka → the online-store append holding it has returned (a read sees it); steady window only, filtered-out events excluded",
                ["onlineStore"] = BenchStore.Kind(options.Postgres),
                ["runtime"] = RuntimeInformation.FrameworkDescription,
                ["librdkafka"] = Library.VersionString,
                ["processors"] = Environment.ProcessorCount,
                ["partitions"] = partitions,
                ["mockRetentionSeconds"] = Math.Round(RetentionSeconds(partitions, rate), 1),
                ["backlogExceededMockRetention"] = samples.Max(st => st.Produced - st.Read) / rate > RetentionSeconds(partitions, rate), // then the mock dropped unread events
                ["brokers"] = options.Brokers,
                ["compression"] = options.Compression,
                ["seed"] = options.Seed,
                ["microBatchRecords"] = batchSize,
                ["consumerConfig"] = new JsonObject(consumerConfig.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
                ["targetEventsPerSecond"] = rate,
                ["warmupSeconds"] = warmup,
                ["durationSeconds"] = duration,
                ["startupSeconds"] = Math.Round(startup, 2),
                ["producedEventsPerSecond"] = Math.Round(produceRate),
                ["consumedEventsPerSecond"] = Math.Round(consumeRate),
                ["cpuPerWall"] = Math.Round(windowCpu.TotalSeconds / duration, 2),
                ["gcInWindow"] = new JsonObject { ["pauseMs"] = Math.Round(gcPause.TotalMilliseconds), ["gen2Collections"] = gen2 },
                ["loadAverage1m"] = new JsonObject { ["before"] = loadBefore, ["after"] = LoadAverage() }, // other work on the machine
                ["backlogEvents"] = new JsonObject
                {
                    ["atWindowStart"] = start.Produced - start.Read,
                    ["atWindowEnd"] = end.Produced - end.Read,
                    ["max"] = window.Max(s => s.Produced - s.Read),
                    ["growthPerSecond"] = Math.Round(backlogSlope),
                    ["perSecond"] = new JsonArray(samples.Where(s => s.Seconds == Math.Floor(s.Seconds)).Select(s => (JsonNode)(s.Produced - s.Read)).ToArray()),
                },
                ["runtimeSteps"] = new JsonObject
                {
                    ["description"] = $"StepAsync calls begun in the window; slow = at least {SlowStepMs} ms; flush = a background lake flush completed during the step",
                    ["count"] = windowSteps.Count,
                    ["ms"] = Percentiles(stepMs),
                    ["slow"] = slow.Count,
                    ["slowWithFlush"] = slow.Count(st => st.Flushed),
                    ["slowSeconds"] = Math.Round(slow.Sum(st => st.Ms) / 1000, 2),
                    ["flushes"] = windowSteps.Count(st => st.Flushed),
                    ["flushMs"] = Percentiles(windowSteps.Where(st => st.Flushed).Select(st => st.Ms).Order().ToList()),
                    ["slowestAt"] = new JsonArray(slow.OrderByDescending(st => st.Ms).Take(8)
                        .Select(st => (JsonNode)$"t={Since(st.Start):F1}s {st.Ms:F0}ms{(st.Flushed ? " flush" : "")}").ToArray()),
                },
                ["drainSeconds"] = Math.Round(drainSeconds, 2),
                ["eventsProducedInWindow"] = inWindow,
                ["eventsExpectedInStore"] = expected,
                ["eventsMeasured"] = latencies.Count,
                ["eventsNeverServable"] = unserved,
                ["eventsServedThoughFiltered"] = servedButFiltered,
                ["deliveryErrors"] = Interlocked.Read(ref _deliveryErrors),
                ["undeliveredAtClose"] = undelivered,
                ["keptUp"] = keptUp,
                ["freshnessMs"] = keptUp ? freshness : null,
                ["p99WithinTarget"] = keptUp ? latencies.Count > 0 && Rank(latencies, 0.99) <= 500 : null,
                ["targetP99Ms"] = 500,
            };
            if (!keptUp)
            {
                result["notKeptUpReason"] = $"consumed {consumeRate:N0}/s vs produced {produceRate:N0}/s, backlog grew {backlogGrowth:N0} events over the window"
                    + (drained ? "" : $", not drained within {DrainTimeout.TotalSeconds:F0} s") + (unserved > 0 ? $", {unserved} events never servable" : "");
                result["freshnessMsWhileFallingBehind"] = freshness; // grows with the backlog: not a steady-state figure
            }

            // The split, per measured event: produce call → delivery report (linger, mock brokers), then
            // delivery report → servable (fetch, source channel, runtime). Not additive across percentiles.
            result["produceToAckMs"] = Percentiles(acks);
            result["ackToServableMs"] = Percentiles(ackToServable);
            result["runtimeMetric"] = RuntimeMetric(runtime.Metrics, bucketsAtStart, bucketsAtEnd, metricStartLag);
            return result;
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The sequence number in a generated event's JSON (<c>{"event_id":"{seed:x4}-{i:x12}",…</c>); null if not found.</summary>
    private static long? SequenceOf(byte[] json)
    {
        var span = json.AsSpan();
        var at = span.IndexOf("\"event_id\":\""u8);
        if (at < 0)
        {
            return null;
        }

        span = span[(at + 12)..];
        var quote = span.IndexOf((byte)'"');
        var dash = quote < 0 ? -1 : span[..quote].LastIndexOf((byte)'-');
        return dash >= 0 && long.TryParse(span[(dash + 1)..quote], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var seq) ? seq : null;
    }

    /// <summary>Whether the signal keeps the event: clicks need dwell_ms ≥ 500 (saves and impressions always pass).</summary>
    /// <summary>
    /// The signal's hot-user cap as the runtime applies it (HotUserCapExecutor: per user and hour of
    /// event time, events beyond the cap are dead-lettered, before the filter). A user's events share
    /// a partition, so the runtime sees them in the order produced, as this does. At high rates the
    /// heaviest generated user passes the cap (3,600 an hour of event time), and its later events are
    /// expected never to reach the store.
    /// </summary>
    private sealed class HotUserCap(int maxPerHour)
    {
        private readonly Dictionary<(long User, long Hour), int> _counts = [];

        public bool Admits(long userId, byte[] json)
        {
            var span = json.AsSpan();
            var at = span.IndexOf("\"event_time\":\""u8) + "\"event_time\":\""u8.Length;
            var text = System.Text.Encoding.UTF8.GetString(span.Slice(at, span[at..].IndexOf((byte)'"')));
            var time = DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
            long hour = time.ToUnixTimeSeconds() / 3600;
            ref int count = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_counts, (userId, hour), out _);
            return ++count <= maxPerHour;
        }
    }

    private static bool ReachesStore(byte[] json)
    {
        var span = json.AsSpan();
        if (span.IndexOf("\"event_type\":\"click\""u8) < 0)
        {
            return true;
        }

        var at = span.IndexOf("\"dwell_ms\":"u8);
        if (at < 0)
        {
            return true; // null dwell passes
        }

        long dwell = 0;
        for (var i = at + "\"dwell_ms\":"u8.Length; i < span.Length && span[i] is >= (byte)'0' and <= (byte)'9'; i++)
        {
            dwell = (dwell * 10) + (span[i] - '0');
        }

        return dwell >= 500;
    }

    /// <summary>The 1-minute load average (Linux), or null.</summary>
    private static double? LoadAverage()
    {
        try
        {
            return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    private static void ThrowIfFailed(Task task)
    {
        if (task.IsFaulted || task.IsCanceled)
        {
            task.GetAwaiter().GetResult();
        }
    }

    /// <summary>Nearest-rank quantile of a sorted sample.</summary>
    private static double Rank(List<double> sorted, double q) => sorted[(int)Math.Clamp(Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static JsonObject? Percentiles(List<double> sorted)
    {
        if (sorted.Count == 0)
        {
            return null;
        }

        var o = new JsonObject();
        foreach (var q in Quantiles)
        {
            o[Label(q)] = Math.Round(Rank(sorted, q), 1);
        }

        o["max"] = Math.Round(sorted[^1], 1);
        o["mean"] = Math.Round(sorted.Average(), 1);
        return o;
    }

    private static string Label(double q) => "p" + (q * 100).ToString("0.#", CultureInfo.InvariantCulture).Replace(".", "", StringComparison.Ordinal);

    /// <summary>Least-squares slope of y over x.</summary>
    private static double Slope(List<(double X, double Y)> points)
    {
        if (points.Count < 2)
        {
            return 0;
        }

        double mx = points.Average(p => p.X), my = points.Average(p => p.Y);
        double sxy = points.Sum(p => (p.X - mx) * (p.Y - my)), sxx = points.Sum(p => (p.X - mx) * (p.X - mx));
        return sxx == 0 ? 0 : sxy / sxx;
    }

    /// <summary>
    /// The runtime's own <c>weft_freshness_seconds</c> (Kafka record timestamp → after the append; bucketed,
    /// 0.25/0.5/1 s bounds near the target and linear inside a bucket, so coarse): per event type over
    /// the whole run (warm-up included) via <see cref="WeftMetrics.Quantile"/>, and all types over the
    /// steady window from bucket differences of the Prometheus text.
    /// </summary>
    private static JsonObject RuntimeMetric(WeftMetrics metrics, Dictionary<double, long> atStart, Dictionary<double, long> atEnd, double startLagSeconds)
    {
        var byType = new JsonObject();
        foreach (var type in EventTypes)
        {
            var o = new JsonObject();
            foreach (var q in Quantiles)
            {
                o[Label(q)] = metrics.Quantile("weft_freshness_seconds", q, ("signal", Signal), ("event_type", type)) is { } s ? Math.Round(s * 1000, 1) : null;
            }

            byType[type] = o;
        }

        var delta = atEnd.ToDictionary(p => p.Key, p => p.Value - atStart.GetValueOrDefault(p.Key));
        var window = new JsonObject
        {
            ["from"] = $"{startLagSeconds * 1000:F0} ms after the window start (all warm-up events servable) to the end of the drain",
            ["count"] = delta.Count == 0 ? 0 : delta.Values.Max(),
        };
        foreach (var q in Quantiles)
        {
            window[Label(q)] = BucketQuantile(delta, q) is { } s ? Math.Round(s * 1000, 1) : null;
        }

        return new JsonObject
        {
            ["wholeRunMsByEventType"] = byType,
            ["steadyWindowMsAllTypes"] = window,
        };
    }

    /// <summary>Cumulative bucket counts of <c>weft_freshness_seconds</c> summed over all label sets, by upper bound.</summary>
    private static Dictionary<double, long> FreshnessBuckets(WeftMetrics metrics)
    {
        var text = new StringBuilder();
        metrics.WritePrometheus(text);
        var buckets = new Dictionary<double, long>();
        foreach (var line in text.ToString().Split('\n'))
        {
            if (!line.StartsWith("weft_freshness_seconds_bucket{", StringComparison.Ordinal))
            {
                continue;
            }

            var le = line.IndexOf("le=\"", StringComparison.Ordinal) + 4;
            var bound = line[le..line.IndexOf('"', le)];
            var upper = bound == "+Inf" ? double.PositiveInfinity : double.Parse(bound, CultureInfo.InvariantCulture);
            buckets[upper] = buckets.GetValueOrDefault(upper) + long.Parse(line.AsSpan(line.LastIndexOf(' ') + 1), CultureInfo.InvariantCulture);
        }

        return buckets;
    }

    /// <summary>A quantile from cumulative buckets, interpolated linearly inside the bucket as <see cref="WeftMetrics.Quantile"/> does.</summary>
    private static double? BucketQuantile(Dictionary<double, long> cumulative, double q)
    {
        var bounds = cumulative.Keys.Order().ToList();
        if (bounds.Count == 0 || cumulative[bounds[^1]] == 0)
        {
            return null;
        }

        var rank = (long)Math.Ceiling(q * cumulative[bounds[^1]]);
        long seen = 0;
        var lastFinite = bounds.Where(double.IsFinite).DefaultIfEmpty(0).Max();
        for (var b = 0; b < bounds.Count; b++)
        {
            var inBucket = cumulative[bounds[b]] - seen;
            if (seen + inBucket >= rank)
            {
                var lower = b == 0 ? 0 : bounds[b - 1];
                var upper = double.IsFinite(bounds[b]) ? bounds[b] : lastFinite * 2;
                return lower + ((upper - lower) * (rank - seen) / Math.Max(1, inBucket));
            }

            seen += inBucket;
        }

        return lastFinite;
    }
}
