namespace Weft.Bench.Streaming;

/// <summary>
/// One way of reading the pre-loaded topic. A mode reads every event of <see cref="BenchTopic"/> once
/// per run, from the beginning, and reports how long the steady part took. To add a mode (e.g.
/// <c>weft-runtime</c>), implement this and register it in <see cref="Program.Modes"/>.
/// </summary>
internal interface IBenchMode
{
    /// <summary>The mode's command-line name.</summary>
    string Name { get; }

    /// <summary>One line saying what is measured.</summary>
    string Description { get; }

    /// <summary>Reads all <see cref="BenchTopic.Events"/> once (a fresh consumer group per run) and measures it.</summary>
    Task<RunResult> RunAsync(BenchTopic topic, int run, CancellationToken cancellationToken);
}

/// <summary>One run of a mode.</summary>
/// <param name="Events">Events read.</param>
/// <param name="PayloadBytes">Value bytes read.</param>
/// <param name="StartupSeconds">From creating the consumer to the first event (group join, metadata, first fetch).</param>
/// <param name="Seconds">From the first event to the last.</param>
/// <param name="CpuSeconds">Process CPU time over <paramref name="Seconds"/> (includes the in-process mock brokers).</param>
internal sealed record RunResult(long Events, long PayloadBytes, double StartupSeconds, double Seconds, double CpuSeconds)
{
    /// <summary>Bytes the process allocated over <see cref="Seconds"/> (every thread).</summary>
    public long AllocatedBytes { get; init; }

    /// <summary>Time every managed thread stood paused for the GC over <see cref="Seconds"/>.</summary>
    public double GcPauseSeconds { get; init; }

    /// <summary>Time the JIT spent compiling over <see cref="Seconds"/> (on any thread; zero once the code is tiered up).</summary>
    public double JitSeconds { get; init; }

    /// <summary>Collections over <see cref="Seconds"/> that reached generation 0, 1 and 2 (a gen-2 collection counts in all three).</summary>
    public (int Gen0, int Gen1, int Gen2) Collections { get; init; }

    /// <summary>
    /// Opening a second runtime over the lake the run wrote, as a restarted stream does: the lake's
    /// state and the recall of its stream rows into the dedup window and hot-user cap (null: not measured).
    /// </summary>
    public double? RestartSeconds { get; init; }

    /// <summary>Rows that restart recalled.</summary>
    public long RecalledEvents { get; init; }

    public double EventsPerSecond => Events / Seconds;

    public double MegabytesPerSecond => PayloadBytes / 1e6 / Seconds;

    public double CpuPerWall => CpuSeconds / Seconds;
}

/// <summary>The process's running totals of CPU time, allocated bytes and GC pause time, to take a run's share of.</summary>
internal readonly record struct ProcessCost(TimeSpan Cpu, long AllocatedBytes, TimeSpan GcPause, TimeSpan Jit, (int Gen0, int Gen1, int Gen2) Collections)
{
    /// <summary>
    /// A full blocking collection before a run's clock starts: the garbage of earlier runs is not
    /// collected on this run's time, and input made up front (the memory mode's records) is already in
    /// the oldest generation instead of being promoted, copy by copy, while the run is measured.
    /// </summary>
    public static void Settle()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    /// <summary>
    /// The process's totals at the start of a run's timed window. For a measured run (not a warm-up) it
    /// also enables a <c>perf record --control fifo:PATH -D -1</c>
    /// watching the process when <c>WEFT_BENCH_PERF_CTL</c> names that fifo, so that a profile holds the
    /// timed windows only, not the start-up, warm-ups, pre-loads and settling collections around them.
    /// </summary>
    public static ProcessCost Start()
    {
        if (PerfControl.MeasuredRun)
        {
            PerfControl.Set(enabled: true);
        }

        return Now();
    }

    public static ProcessCost Now() =>
        new(System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime, GC.GetTotalAllocatedBytes(precise: false), GC.GetTotalPauseDuration(), System.Runtime.JitInfo.GetCompilationTime(),
            (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)));

    /// <summary>A run result with what the process spent since <paramref name="start"/>.</summary>
    public static RunResult Result(ProcessCost start, long events, long payloadBytes, double startupSeconds, double seconds)
    {
        var end = Now();
        PerfControl.Set(enabled: false);
        return new RunResult(events, payloadBytes, startupSeconds, seconds, (end.Cpu - start.Cpu).TotalSeconds)
        {
            AllocatedBytes = end.AllocatedBytes - start.AllocatedBytes,
            GcPauseSeconds = (end.GcPause - start.GcPause).TotalSeconds,
            JitSeconds = (end.Jit - start.Jit).TotalSeconds,
            Collections = (end.Collections.Gen0 - start.Collections.Gen0, end.Collections.Gen1 - start.Collections.Gen1, end.Collections.Gen2 - start.Collections.Gen2),
        };
    }
}

/// <summary>Commands to a <c>perf record --control fifo:PATH</c> named by <c>WEFT_BENCH_PERF_CTL</c>; nothing without it.</summary>
internal static class PerfControl
{
    private static readonly StreamWriter? Fifo = Environment.GetEnvironmentVariable("WEFT_BENCH_PERF_CTL") is { Length: > 0 } path
        ? new StreamWriter(new FileStream(path, FileMode.Open, FileAccess.Write)) { AutoFlush = true }
        : null;

    private static bool _enabled;

    /// <summary>Whether the run about to start is measured (not a warm-up): only those are profiled.</summary>
    public static bool MeasuredRun { get; set; }

    public static void Set(bool enabled)
    {
        if (Fifo is null || enabled == _enabled)
        {
            return;
        }

        Fifo.Write(enabled ? "enable\n" : "disable\n");
        _enabled = enabled;
    }
}
