using System.Diagnostics;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Weft.Online;
using Weft.Streaming.Kafka;
using Weft.Streaming.Runtime;

namespace Weft.Bench.Streaming.Modes;

/// <summary>
/// Weft's streaming runtime end to end from Kafka: parse, the signal's executors (filter, derive),
/// idempotent appends to the SQLite online store (or PostgreSQL with <c>--postgres</c>),
/// stream-partition flushes to the lake and offset commits. Its ratio to <c>raw-consume</c> is the issue's target (≥ 0.5).
/// </summary>
internal sealed class RuntimeMode(IReadOnlyDictionary<string, string> extraConfig, int batchSize, int channelCapacity, string? postgres, bool signalPerType) : IBenchMode
{
    public string Name => "weft-runtime";

    public string Description => $"Weft StreamRuntime: Kafka source → executors → {BenchStore.Kind(postgres)} online store + lake flushes every 5 s, micro-batches of {batchSize}{(signalPerType ? ", three signals of one event type each" : "")}";

    public async Task<RunResult> RunAsync(BenchTopic topic, int run, CancellationToken cancellationToken)
    {
        var dir = Path.Combine(Path.GetTempPath(), "weft-bench-runtime", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var config = await WriteConfigAsync(dir, signalPerType, cancellationToken);
            var created = Stopwatch.StartNew();
            await using var source = await KafkaSource.OpenAsync(
                new KafkaSourceOptions { BootstrapServers = topic.BootstrapServers, Topics = [topic.Name], GroupId = $"bench-runtime-{run}-{Guid.NewGuid():N}", Config = extraConfig, ChannelCapacity = channelCapacity },
                cancellationToken: cancellationToken);
            await using var store = await BenchStore.OpenAsync(dir, postgres, cancellationToken);
            var runtime = await StreamRuntime.CreateAsync(config, source, store.Store, null, new StreamOptions { MaxBatchRecords = batchSize }, cancellationToken: cancellationToken);
            while (runtime.RecordsIn == 0)
            {
                await runtime.StepAsync(cancellationToken);
            }

            var startup = created.Elapsed.TotalSeconds;
            long first = runtime.RecordsIn;
            var costStart = ProcessCost.Start();
            var steady = Stopwatch.StartNew();
            while (runtime.RecordsIn < topic.Events)
            {
                await runtime.StepAsync(cancellationToken);
            }

            await runtime.FlushAsync(cancellationToken);
            var seconds = steady.Elapsed.TotalSeconds;
            long events = runtime.RecordsIn - first;
            return ProcessCost.Result(costStart, events, topic.PayloadBytes * events / topic.Events, startup, seconds);
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

    /// <summary>
    /// A weft.json in <paramref name="dir"/> (lake, signals and a SQLite online store, all inside it), loaded: the
    /// benchmark's <see cref="Signal"/>, or with <paramref name="signalPerType"/> its three event types as three signals.
    /// </summary>
    internal static async Task<WeftConfig> WriteConfigAsync(string dir, bool signalPerType, CancellationToken cancellationToken, bool archive = false)
    {
        Directory.CreateDirectory(Path.Combine(dir, "signals"));
        foreach (var signal in signalPerType ? BenchSignal.PerType() : [Signal()])
        {
            await File.WriteAllBytesAsync(Path.Combine(dir, "signals", signal.Name + ".json"), SignalJsonWriter.Write(signal), cancellationToken);
        }

        // The runtime reads Kafka (or memory) here, which keeps no raw archive of its own by default.
        await File.WriteAllTextAsync(Path.Combine(dir, "weft.json"), $$"""{ "lake": "lake", "signals": "signals", "online_store": { "kind": "sqlite", "path": "online.db" }, "source": { "archive": {{(archive ? "\"raw/stream\"" : "false")}} } }""", cancellationToken);
        return WeftConfig.Load(Path.Combine(dir, "weft.json"));
    }

    /// <summary>The streaming benchmarks' signal (<see cref="BenchSignal"/>).</summary>
    internal static SignalDefinition Signal() => BenchSignal.Create();
}
