using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Weft.Batch;
using Weft.Engine.Configuration;
using Weft.Engine.Sequences;

namespace Weft.Bench.Batch;

/// <summary>
/// Weft's side, timed end to end in one process as DuckDB's is: load the signal and the item table,
/// read the raw events, run the executors, dedup, cut, enrich and write the sequence file
/// (<see cref="SequenceBuild.WriteAsync"/>). Process start-up and JIT are inside the time run.sh measures
/// around the process; the figures here are the build alone.
/// </summary>
internal static class WeftRunner
{
    public static async Task<int> RunAsync(string dir, string output, string json)
    {
        var clock = Stopwatch.StartNew();
        var cpu = CpuTime();
        var pause = GC.GetTotalPauseDuration();
        var config = WeftConfig.Load(Path.Combine(dir, "weft.json"));
        var env = await SignalEnvironment.LoadAsync(config, "engagement").ConfigureAwait(false);
        double load = clock.Elapsed.TotalSeconds;
        var cut = SequenceCut.For(env.Definition, DataSet.AsOfMicros, DataSet.AsOfMicros);
        var request = new SequenceBuildRequest(DataSet.StartMicros, DataSet.AsOfMicros, cut);
        var metadata = new Dictionary<string, string> { ["weft.signal"] = env.Definition.Name, ["weft.fingerprint"] = env.Signal.Fingerprint };
        using var sampler = new MemorySampler();
        var result = await SequenceBuild.WriteAsync(env, request, output, metadata, null, CancellationToken.None).ConfigureAwait(false);
        sampler.Dispose();
        Program.Log(sampler.Describe());
        double seconds = clock.Elapsed.TotalSeconds;
        double cpuSeconds = (CpuTime() - cpu).TotalSeconds;
        using var self = Process.GetCurrentProcess();
        var phases = new JsonObject { ["load signal and items"] = Math.Round(load, 3) };
        var peaks = new JsonObject();
        foreach (var phase in result.Phases)
        {
            phases[phase.Name] = Math.Round(phase.Seconds, 3);
            peaks[phase.Name] = phase.PeakWorkingSetBytes;
        }

        var figures = new JsonObject
        {
            ["side"] = "weft",
            ["runtime"] = $".NET {Environment.Version}",
            ["processors"] = Environment.ProcessorCount,
            ["seconds"] = Math.Round(seconds, 3),
            ["cpuSeconds"] = Math.Round(cpuSeconds, 3),
            ["peakWorkingSetBytes"] = self.PeakWorkingSet64,
            ["gcPauseSeconds"] = Math.Round((GC.GetTotalPauseDuration() - pause).TotalSeconds, 3),
            ["gcCounts"] = new JsonArray(GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)),
            ["allocatedBytes"] = GC.GetTotalAllocatedBytes(),
            ["eventsParsed"] = result.EventsParsed,
            ["deadLetters"] = result.DeadLetters,
            ["duplicates"] = result.Duplicates,
            ["chainRejected"] = result.ChainRejected,
            ["hotUserCapped"] = result.HotUserCapped,
            ["users"] = result.Users,
            ["elements"] = result.Elements,
            ["truncatedUsers"] = result.TruncatedUsers,
            ["fileBytes"] = new FileInfo(output).Length,
            ["phases"] = phases,
            ["peakWorkingSetBytesAfterPhase"] = peaks,
        };
        await File.WriteAllTextAsync(json, figures.ToJsonString(new JsonSerializerOptions { WriteIndented = true })).ConfigureAwait(false);
        Program.Log($"{result.Users:N0} users, {result.Elements:N0} elements in {seconds:F2} s (cpu {cpuSeconds:F2} s, peak working set {self.PeakWorkingSet64 / 1e9:F2} GB); phases: {string.Join(", ", result.Phases.Select(p => $"{p.Name} {p.Seconds:F2} s (peak {p.PeakWorkingSetBytes / 1e9:F2} GB)"))}");
        return 0;
    }

    private static TimeSpan CpuTime()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }
}

/// <summary>Samples the process's memory every 250 ms: the largest working set, GC heap and heap after a GC (the live data) seen.</summary>
internal sealed class MemorySampler : IDisposable
{
    private readonly Timer _timer;
    private long _workingSet, _heap, _live, _committed;
    private string _atPeak = "";

    public MemorySampler() => _timer = new Timer(_ => Sample(), null, 0, 250);

    public void Dispose() => _timer.Dispose();

    public string Describe() => $"memory samples: max working set {_workingSet / 1e9:F2} GB, GC heap {_heap / 1e9:F2} GB, live after GC {_live / 1e9:F2} GB, committed {_committed / 1e9:F2} GB; at peak working set: {_atPeak}";

    private void Sample()
    {
        var info = GC.GetGCMemoryInfo();
        long ws = Environment.WorkingSet;
        long heap = GC.GetTotalMemory(false);
        if (ws > _workingSet)
        {
            _workingSet = ws;
            _atPeak = $"heap {heap / 1e9:F2} GB, last GC gen{info.Generation} heap after {info.HeapSizeBytes / 1e9:F2} GB, fragmented {info.FragmentedBytes / 1e9:F2} GB, committed {info.TotalCommittedBytes / 1e9:F2} GB";
        }

        _heap = Math.Max(_heap, heap);
        _live = Math.Max(_live, info.HeapSizeBytes - info.FragmentedBytes);
        _committed = Math.Max(_committed, info.TotalCommittedBytes);
    }
}
