using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Weft.Bench.Streaming.Modes;
using Weft.Streaming.Runtime;

namespace Weft.Bench.Streaming;

/// <summary>
/// Streaming throughput on an in-process mock Kafka cluster (librdkafka's, 3 brokers on 127.0.0.1):
/// <code>
/// dotnet run -c Release --project bench/Weft.Bench.Streaming -- MODE [--events N] [--partitions P] [--runs K]
///     [--brokers B] [--compression none|lz4|zstd|snappy|gzip] [--seed S] [--batch N] [--capacity N] [--warmup-runs W]
///     [--max-warmup-runs M] [--set key=value]... [--postgres CONNSTR] [--json FILE]
/// </code>
/// MODE: <c>raw-consume</c> (the ceiling: Confluent.Kafka's Consume loop), <c>raw-batch</c> (a higher
/// reference: the same consumer drained through librdkafka's batch call), <c>source</c> (Weft's
/// KafkaEventSource), <c>weft-runtime</c> (StreamRuntime end to end), <c>runtime-memory</c> (the same
/// runtime fed from memory: Weft's own cost without Kafka), <c>runtime-memory-archive</c> (the same, writing the
/// stream's raw archive as the embedded log's default does), or <c>all</c> (the first five), or several of them joined by commas (<c>raw-consume,weft-runtime</c>);
/// <c>sample</c> prints three generated events. <c>--postgres CONNSTR</c> (an Npgsql connection string)
/// makes <c>weft-runtime</c>, <c>runtime-memory</c> and <c>freshness</c> write to a PostgreSQL online
/// store, in a schema created for each run and dropped after it, instead of a SQLite file. <c>--signals per-type</c>
/// makes <c>weft-runtime</c> and <c>runtime-memory</c> run the same work as three signals of one event type
/// each (a multi-signal stream, where each record is one signal's) instead of one signal of all three. <c>--capacity N</c> sets the Kafka source's channel
/// (records buffered between its poll thread and the reader) for <c>source</c> (default 10,000) and
/// <c>weft-runtime</c> (default: <c>KafkaSourceOptions.DefaultChannelCapacity</c>). The topic is pre-loaded once with N generated click events
/// (~210 bytes of JSON each, keyed by user id); every run reads all of it with a fresh consumer group.
/// At least W warm-up rounds of every mode come first (default 8; <c>--warmup-runs 0</c> skips them), and
/// more until the JIT is quiet: two rounds in a row in which no mode spent over 1 % of its run compiling
/// (at most M rounds, default 80). Their rates are reported apart and left out of the medians. The JIT
/// recompiles a method with profile-guided optimisation after 30 calls, then again after 30 more: code
/// that runs once per micro-batch (~10 a run) tiers up within ~6 rounds, but code that runs once per run
/// (opening a runtime, its lake and its store) takes ~60, and until then its recompiling takes a core
/// from the timed runs (up to 98 % of a run's wall time on the compiler thread, measured). A stream opens
/// once and runs for hours: what it sustains is the JIT-quiet rate.
/// <para>
/// Profiling the timed runs only: <c>mkfifo /tmp/ctl; WEFT_BENCH_PERF_CTL=/tmp/ctl perf record -D -1
/// --control fifo:/tmp/ctl -g -- Weft.Bench.Streaming MODE …</c> (with <c>DOTNET_PerfMapEnabled=1</c>):
/// the benchmark enables perf at the start of each measured run and disables it at its end.
/// </para>
/// Prints one JSON document (also written to --json FILE): per mode the median rate and every run;
/// <c>runtimeToRawRatio</c> (the issue's measure: weft-runtime's median over raw-consume's) and
/// <c>runtimeToRawRatioByRound</c> (the two modes' rates divided round by round, and their median: steadier,
/// as a round's runs share the machine's state), and <c>runtimeToRawBatchRatio</c> (weft-runtime over
/// <c>raw-batch</c>, the same consumer drained many messages per call as Weft's source drains it). Rates are from the first event to the last;
/// the group join and first fetch are reported apart as startupSeconds. The mock brokers run in this
/// process, so cpuPerWall counts their work too.
/// <para>
/// <c>freshness [--rate R] [--duration S] [--warmup S]</c> (not in <c>all</c>: no pre-load) produces
/// into an empty topic at a steady R events/s (default 20 000) while StreamRuntime consumes, and reports
/// event → servable latency (produce call → the online store append holding the event has returned)
/// p50/p90/p99/p99.9/max over the S seconds after the warm-up (defaults 30 and 5), next to the runtime's
/// own <c>weft_freshness_seconds</c>. If the runtime does not keep up (consumes &lt; 95 % of the produce
/// rate or the backlog grows) it says <c>keptUp: false</c> instead of a latency. Its consumer defaults to
/// <c>fetch.wait.max.ms=10</c> (the mock broker holds an empty fetch for the whole wait; <c>--set</c>
/// overrides it) and its topic to 4 partitions (the mock's fetch cost grows with partitions × message
/// sets kept; <c>--partitions</c> overrides it). See <see cref="FreshnessMode"/>.
/// </para>
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            await Console.Error.WriteLineAsync("usage: Weft.Bench.Streaming raw-consume|raw-batch|source|weft-runtime|runtime-memory|runtime-memory-archive|all|sample|freshness [--events N] [--partitions P] [--runs K] [--brokers B] [--compression C] [--seed S] [--batch N] [--capacity N] [--warmup-runs W] [--max-warmup-runs M] [--rate R] [--duration S] [--warmup S] [--set key=value]... [--postgres CONNSTR] [--signals one|per-type] [--json FILE]\n  --signals per-type: weft-runtime and runtime-memory run three signals of one event type each instead of one signal of all three\n  --postgres: weft-runtime, runtime-memory and freshness write to a PostgreSQL online store (a schema of their own per run) instead of SQLite\n  freshness: steady --rate events/s (default 20000) for --warmup s (default 5) + --duration s (default 30); --events and --runs do not apply").ConfigureAwait(false);
            return 2;
        }

        try
        {
            var options = Options.Parse(args.AsSpan(1));
            if (args[0] == "sample")
            {
                // Prints a few of the generated events (the benchmark's message values).
                foreach (var (_, utf8) in ClickEvents.Generate(3, options.Seed))
                {
                    Console.WriteLine(System.Text.Encoding.UTF8.GetString(utf8));
                }

                return 0;
            }

            if (args[0] == "freshness")
            {
                // A different shape from the throughput modes: its own empty topic, produced into at a steady rate.
                var report = await new FreshnessMode(options).RunAsync(CancellationToken.None).ConfigureAwait(false);
                await WriteAsync(report, options.JsonPath).ConfigureAwait(false);
                return 0;
            }

            var modes = Modes(options);
            var selected = args[0] == "all" ? modes.Values.Where(m => m is not MemoryRuntimeMode { Archive: true }).ToList()
                : args[0].Contains(',', StringComparison.Ordinal) ? [.. args[0].Split(',').Select(name => modes.TryGetValue(name, out var one) ? one : throw new ArgumentException($"unknown mode '{name}' (modes: {string.Join(", ", modes.Keys)})"))]
                : modes.TryGetValue(args[0], out var mode) ? [mode]
                : throw new ArgumentException($"unknown mode '{args[0]}' (modes: {string.Join(", ", modes.Keys)}, all, freshness, sample)");
            var result = await RunAsync(options, selected, CancellationToken.None).ConfigureAwait(false);
            await WriteAsync(result, options.JsonPath).ConfigureAwait(false);
            return 0;
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
            return 2;
        }
    }

    private static async Task WriteAsync(JsonObject result, string? jsonPath)
    {
        var json = result.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Console.WriteLine(json);
        if (jsonPath is { } path)
        {
            await File.WriteAllTextAsync(path, json + "\n").ConfigureAwait(false);
        }
    }

    /// <summary>The modes by name (<c>all</c> runs these; <c>freshness</c> is apart).</summary>
    internal static Dictionary<string, IBenchMode> Modes(Options options)
    {
        IBenchMode[] all =
        [
            new RawConsumeMode(options.ConsumerConfig),
            new RawBatchMode(options.ConsumerConfig),
            new SourceMode(options.ConsumerConfig, options.BatchSize, options.ChannelCapacity ?? 10_000),
            new RuntimeMode(options.ConsumerConfig, Math.Max(options.BatchSize, new StreamOptions().MaxBatchRecords), options.ChannelCapacity ?? Weft.Streaming.Kafka.KafkaSourceOptions.DefaultChannelCapacity, options.Postgres, options.SignalPerType),
            new MemoryRuntimeMode(Math.Max(options.BatchSize, new StreamOptions().MaxBatchRecords), options.Seed, options.Postgres, options.SignalPerType),
        ];
        var modes = all.ToDictionary(m => m.Name, StringComparer.Ordinal);

        // Not in `all`: the embedded log's default, its raw archive written by every flush, beside runtime-memory.
        var archived = new MemoryRuntimeMode(Math.Max(options.BatchSize, new StreamOptions().MaxBatchRecords), options.Seed, options.Postgres, options.SignalPerType, archive: true);
        modes.Add(archived.Name, archived);
        return modes;
    }

    private static async Task<JsonObject> RunAsync(Options options, IReadOnlyList<IBenchMode> modes, CancellationToken cancellationToken)
    {
        var partitions = options.Partitions > 0 ? options.Partitions : BenchTopic.PartitionsFor(options.Events, 210, minimum: 16);
        Log($"pre-loading {options.Events:N0} events into {partitions} partitions on {options.Brokers} mock brokers (compression {options.Compression})");
        await using var topic = await BenchTopic.CreateAsync(options.Events, partitions, options.Brokers, options.Compression, options.Seed, cancellationToken).ConfigureAwait(false);
        Log($"pre-loaded in {topic.PreloadSeconds:F1} s ({topic.Events / topic.PreloadSeconds:N0} events/s), {topic.PayloadBytes / (double)topic.Events:F0} bytes/event");

        // Rounds interleave the modes (raw, source, raw, source, …) so that drifting machine load
        // affects them alike. Warm-up rounds come first and are reported apart: a stream runs for hours,
        // and its first seconds in a fresh process run code the JIT has not optimised yet.
        var runsByMode = modes.ToDictionary(m => m.Name, _ => new List<RunResult>(), StringComparer.Ordinal);
        var warmups = modes.ToDictionary(m => m.Name, _ => new List<RunResult>(), StringComparer.Ordinal);

        // Warm-up rounds go on past --warmup-runs until the JIT is quiet: two rounds in a row in which
        // no mode spent more than QuietJitPercent of its time compiling. Code that runs once per run
        // (opening a runtime, its lake and store) reaches the optimising tier only after ~60 calls, so
        // ~60 runs; until then its recompilation lands in later runs' timed windows, on a core the
        // measured work needs. A stream compiles its start-up code once, not once per run.
        int round = 0, quietRounds = 0;
        while (round < options.WarmupRuns || (options.WarmupRuns > 0 && quietRounds < 2 && round < options.MaxWarmupRuns))
        {
            round++;
            bool quiet = true;
            foreach (var mode in modes)
            {
                var r = await RunOnceAsync(mode, round, measured: false, $"warm-up {round}").ConfigureAwait(false);
                warmups[mode.Name].Add(r);
                quiet &= 100 * r.JitSeconds / r.Seconds <= QuietJitPercent;
            }

            quietRounds = quiet ? quietRounds + 1 : 0;
        }

        for (var run = 1; run <= options.Runs; run++)
        {
            foreach (var mode in modes)
            {
                runsByMode[mode.Name].Add(await RunOnceAsync(mode, round + run, measured: true, $"run {run}").ConfigureAwait(false));
            }
        }

        async Task<RunResult> RunOnceAsync(IBenchMode mode, int number, bool measured, string label)
        {
            ProcessCost.Settle();
            PerfControl.MeasuredRun = measured;
            var r = await mode.RunAsync(topic, number, cancellationToken).ConfigureAwait(false);
            Log($"{mode.Name} {label}: {r.EventsPerSecond:N0} events/s, {r.MegabytesPerSecond:F1} MB/s, cpu/wall {r.CpuPerWall:F2}, jit {100 * r.JitSeconds / r.Seconds:F0} %, startup {r.StartupSeconds:F1} s{(r.RestartSeconds is { } restart ? $", restart {restart:F2} s ({r.RecalledEvents:N0} events recalled)" : "")}");
            return r;
        }

        var results = new JsonObject();
        foreach (var mode in modes)
        {
            var runs = runsByMode[mode.Name];
            var median = runs.OrderBy(r => r.EventsPerSecond).ElementAt(runs.Count / 2);
            results[mode.Name] = new JsonObject
            {
                ["description"] = mode.Description,
                ["medianEventsPerSecond"] = Math.Round(median.EventsPerSecond),
                ["medianMegabytesPerSecond"] = Math.Round(median.MegabytesPerSecond, 1),
                ["runs"] = new JsonArray(runs.Select(r => (JsonNode)new JsonObject
                {
                    ["events"] = r.Events,
                    ["seconds"] = Math.Round(r.Seconds, 3),
                    ["eventsPerSecond"] = Math.Round(r.EventsPerSecond),
                    ["megabytesPerSecond"] = Math.Round(r.MegabytesPerSecond, 1),
                    ["cpuPerWall"] = Math.Round(r.CpuPerWall, 2),
                    ["allocatedBytesPerEvent"] = r.Events > 0 ? Math.Round((double)r.AllocatedBytes / r.Events) : null,
                    ["gcPausePercent"] = Math.Round(100 * r.GcPauseSeconds / r.Seconds, 1),
                    ["gcCollections"] = new JsonObject { ["gen0"] = r.Collections.Gen0, ["gen1"] = r.Collections.Gen1, ["gen2"] = r.Collections.Gen2 },
                    ["jitPercent"] = Math.Round(100 * r.JitSeconds / r.Seconds, 1),
                    ["startupSeconds"] = Math.Round(r.StartupSeconds, 2),
                    ["restartSeconds"] = r.RestartSeconds is { } restart ? Math.Round(restart, 3) : null,
                    ["recalledEvents"] = r.RestartSeconds is null ? null : r.RecalledEvents,
                }).ToArray()),
                ["warmupEventsPerSecond"] = new JsonArray([.. warmups[mode.Name].Select(r => (JsonNode)Math.Round(r.EventsPerSecond))]),
            };
        }

        if (results["raw-consume"] is JsonObject raw && results["source"] is JsonObject source)
        {
            results["sourceToRawRatio"] = Math.Round(source["medianEventsPerSecond"]!.GetValue<double>() / raw["medianEventsPerSecond"]!.GetValue<double>(), 2);
        }

        if (results["raw-consume"] is JsonObject ceiling && results["weft-runtime"] is JsonObject weft)
        {
            results["runtimeToRawRatio"] = Math.Round(weft["medianEventsPerSecond"]!.GetValue<double>() / ceiling["medianEventsPerSecond"]!.GetValue<double>(), 2);

            // The same ratio taken round by round: a round's runs follow each other within seconds, so
            // the machine's drift (the reference alone swings by half from run to run here) touches
            // both sides of each ratio alike; the median of those is steadier than a ratio of medians.
            var rawRuns = runsByMode["raw-consume"];
            var weftRuns = runsByMode["weft-runtime"];
            var byRound = rawRuns.Zip(weftRuns, (r, w) => w.EventsPerSecond / r.EventsPerSecond).ToList();
            results["runtimeToRawRatioByRound"] = new JsonObject
            {
                ["median"] = Math.Round(byRound.Order().ElementAt(byRound.Count / 2), 2),
                ["rounds"] = new JsonArray([.. byRound.Select(r => (JsonNode)Math.Round(r, 2))]),
            };
        }

        if (results["raw-batch"] is JsonObject batchDrain && results["weft-runtime"] is JsonObject runtime)
        {
            // Against the higher reference: the consume path Weft's source now takes, with nothing done.
            results["runtimeToRawBatchRatio"] = Math.Round(runtime["medianEventsPerSecond"]!.GetValue<double>() / batchDrain["medianEventsPerSecond"]!.GetValue<double>(), 2);
        }

        return new JsonObject
        {
            ["benchmark"] = "weft-streaming",
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["librdkafka"] = Confluent.Kafka.Library.VersionString,
            ["confluentKafka"] = typeof(Confluent.Kafka.Library).Assembly.GetName().Version?.ToString(),
            ["processors"] = Environment.ProcessorCount,
            ["events"] = topic.Events,
            ["bytesPerEvent"] = Math.Round(topic.PayloadBytes / (double)topic.Events, 1),
            ["partitions"] = topic.Partitions,
            ["brokers"] = options.Brokers,
            ["compression"] = options.Compression,
            ["seed"] = options.Seed,
            ["consumerConfig"] = new JsonObject(options.ConsumerConfig.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
            ["preload"] = new JsonObject
            {
                ["seconds"] = Math.Round(topic.PreloadSeconds, 2),
                ["eventsPerSecond"] = Math.Round(topic.Events / topic.PreloadSeconds),
            },
            ["modes"] = results,
        };
    }

    /// <summary>A warm-up round is quiet when no mode spent more than this share of its run compiling.</summary>
    private const double QuietJitPercent = 1.0;

    private static void Log(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    /// <summary>Command-line options.</summary>
    internal sealed record Options(
        long Events, int Partitions, int Runs, int Brokers, string Compression, int Seed, int BatchSize, int? ChannelCapacity,
        IReadOnlyDictionary<string, string> ConsumerConfig, string? JsonPath, double Rate, double Duration, double Warmup, int WarmupRuns, int MaxWarmupRuns, string? Postgres, bool SignalPerType)
    {
        public static Options Parse(ReadOnlySpan<string> args)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            var config = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < args.Length; i++)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                {
                    throw new ArgumentException($"expected --option value, got '{args[i]}'");
                }

                var (name, value) = (args[i][2..], args[++i]);
                if (name == "set")
                {
                    var eq = value.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        throw new ArgumentException($"--set needs key=value, got '{value}'");
                    }

                    config[value[..eq]] = value[(eq + 1)..];
                }
                else
                {
                    values[name] = value;
                }
            }

            int Int(string name, int fallback) => values.Remove(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
            double Double(string name, double fallback) => values.Remove(name, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
            var events = values.Remove("events", out var e) ? long.Parse(e, CultureInfo.InvariantCulture) : 1_000_000;
            var options = new Options(
                events,
                Int("partitions", 0),
                Int("runs", 3),
                Int("brokers", 3),
                values.Remove("compression", out var c) ? c : "none",
                Int("seed", 42),
                Int("batch", 1000),
                values.Remove("capacity", out var cap) ? int.Parse(cap, CultureInfo.InvariantCulture) : null,
                config,
                values.Remove("json", out var j) ? j : null,
                Double("rate", 20_000),
                Double("duration", 30),
                Double("warmup", 5),
                Int("warmup-runs", 8),
                Int("max-warmup-runs", 80),
                values.Remove("postgres", out var pg) ? pg : null,
                values.Remove("signals", out var signals) ? signals switch
                {
                    "one" => false,
                    "per-type" => true,
                    _ => throw new ArgumentException($"--signals must be one or per-type, got '{signals}'"),
                } : false);
            if (values.Count > 0)
            {
                throw new ArgumentException($"unknown option --{values.Keys.First()}");
            }

            if (options.WarmupRuns < 0 || options.MaxWarmupRuns < options.WarmupRuns || options.MaxWarmupRuns > 200)
            {
                throw new ArgumentException("--warmup-runs must be at least 0, and --max-warmup-runs between it and 200");
            }

            if (options.Events < 1 || options.Runs < 1 || options.Brokers < 1 || options.BatchSize < 1 || options.ChannelCapacity < 1)
            {
                throw new ArgumentException("--events, --runs, --brokers, --batch and --capacity must be at least 1");
            }

            if (!(options.Rate > 0) || !(options.Duration > 0) || !(options.Warmup >= 0))
            {
                throw new ArgumentException("--rate and --duration must be positive, --warmup at least 0");
            }

            return options;
        }
    }
}
