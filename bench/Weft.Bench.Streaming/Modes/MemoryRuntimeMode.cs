using System.Diagnostics;
using System.Globalization;
using System.Text;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Weft.Online;
using Weft.Streaming;
using Weft.Streaming.Runtime;

namespace Weft.Bench.Streaming.Modes;

/// <summary>
/// Weft's own cost without Kafka: the same runtime, signal and SQLite store as <c>weft-runtime</c>, fed
/// by an in-memory source holding the generated events. What it reaches is the runtime's ceiling on this
/// machine; the gap to <c>weft-runtime</c> is what reading from Kafka costs it.
/// </summary>
/// <remarks>With <c>archive</c> (<c>runtime-memory-archive</c>) each flush also writes the stream's raw archive.</remarks>
internal sealed class MemoryRuntimeMode(int batchSize, int seed, string? postgres, bool signalPerType, bool archive = false) : IBenchMode
{
    public bool Archive => archive;

    public string Name => archive ? "runtime-memory-archive" : "runtime-memory";

    public string Description => $"Weft StreamRuntime fed from memory (no Kafka): executors → {BenchStore.Kind(postgres)} online store + lake flushes every 5 s, micro-batches of {batchSize}{(signalPerType ? ", three signals of one event type each" : "")}{(archive ? ", raw archive written by each flush" : "")}";

    public async Task<RunResult> RunAsync(BenchTopic topic, int run, CancellationToken cancellationToken)
    {
        var records = Records(topic.Events, topic.Partitions, seed);
        ProcessCost.Settle();
        var dir = Path.Combine(Path.GetTempPath(), "weft-bench-runtime", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var config = await RuntimeMode.WriteConfigAsync(dir, signalPerType, cancellationToken, archive);
            var created = Stopwatch.StartNew();
            await using var source = new MemorySource(records);
            await using var store = await BenchStore.OpenAsync(dir, postgres, cancellationToken);
            var runtime = await StreamRuntime.CreateAsync(config, source, store.Store, null, new StreamOptions { MaxBatchRecords = batchSize }, cancellationToken: cancellationToken);
            var startup = created.Elapsed.TotalSeconds;
            var costStart = ProcessCost.Start();
            var steady = Stopwatch.StartNew();
            while (runtime.RecordsIn < records.Length)
            {
                await runtime.StepAsync(cancellationToken);
            }

            await runtime.FlushAsync(cancellationToken);
            var seconds = steady.Elapsed.TotalSeconds;
            var result = ProcessCost.Result(costStart, runtime.RecordsIn, topic.PayloadBytes, startup, seconds);

            // Outside the timed window: what a restart over this lake costs (its recall of the stream rows).
            await runtime.DisposeAsync();
            var restarting = Stopwatch.StartNew();
            await using var restarted = await StreamRuntime.CreateAsync(config, new MemorySource([]), store.Store, null, new StreamOptions { MaxBatchRecords = batchSize }, cancellationToken: cancellationToken);
            return result with
            {
                RestartSeconds = restarting.Elapsed.TotalSeconds,
                RecalledEvents = restarted.Signals.Sum(signal => (long)restarted.Metrics.Value("weft_stream_recalled_events", ("signal", signal))),
            };
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

    /// <summary>The topic's events as records, interleaved across partitions as a consumer would see them.</summary>
    private static SourceRecord[] Records(long events, int partitions, int seed)
    {
        var byPartition = new List<SourceRecord>[partitions];
        for (int p = 0; p < partitions; p++)
        {
            byPartition[p] = [];
        }

        foreach (var (userId, json) in ClickEvents.Generate(events, seed))
        {
            var key = Encoding.UTF8.GetBytes(userId.ToString(CultureInfo.InvariantCulture));
            int p = (int)((ulong)userId % (ulong)partitions);
            var list = byPartition[p];
            list.Add(new SourceRecord($"bench/{p}", list.Count, key, json, 0));
        }

        // Fetches hand over runs of one partition at a time, as librdkafka's do.
        var all = new List<SourceRecord>((int)events);
        var cursors = new int[partitions];
        const int Run = 500;
        while (all.Count < events)
        {
            for (int p = 0; p < partitions; p++)
            {
                var list = byPartition[p];
                int take = Math.Min(Run, list.Count - cursors[p]);
                all.AddRange(list.GetRange(cursors[p], take));
                cursors[p] += take;
            }
        }

        return [.. all];
    }

    private sealed class MemorySource(SourceRecord[] records) : IEventSource
    {
        private int _next;

        public string Name => "memory";

        public ValueTask<IReadOnlyList<SourceRecord>> ReadBatchAsync(int maxRecords, TimeSpan maxWait, CancellationToken cancellationToken)
        {
            int take = Math.Min(maxRecords, records.Length - _next);
            var batch = new ArraySegment<SourceRecord>(records, _next, take);
            _next += take;
            return ValueTask.FromResult<IReadOnlyList<SourceRecord>>(batch);
        }

        public ValueTask CommitAsync(IReadOnlyDictionary<string, long> processedOffsets, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
