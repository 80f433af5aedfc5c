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
    public double EventsPerSecond => Events / Seconds;

    public double MegabytesPerSecond => PayloadBytes / 1e6 / Seconds;

    public double CpuPerWall => CpuSeconds / Seconds;
}
