using BenchmarkDotNet.Attributes;
using Weft.Storage;

namespace Weft.Benchmarks;

/// <summary>
/// A live table handle's refresh (what a stream's lake writer does before every flush's commit, and its
/// sealed-bucket check every few seconds) on a log of many commits, with nothing new to find. The
/// baseline lists the whole log at every refresh (<c>LogCheckInterval = 0</c>, the behaviour before the
/// interval); the default reads the entry it knows and probes the next one, and lists once a minute.
/// A stream flushing every 5 s commits ~17,000 times a day to each of its tables.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class DeltaLogRefreshBenchmarks
{
    private string _root = null!;
    private DeltaTable _listing = null!;
    private DeltaTable _probing = null!;

    [Params(20_000, 200_000)]
    public int Commits { get; set; }

    // Synchronous: this BenchmarkDotNet's in-process toolchain does not await an async global setup
    // before it measures (the handles were still null in the first iterations).
    [GlobalSetup]
#pragma warning disable VSTHRD002 // blocking in a benchmark's setup, on no synchronization context
    public void Setup() => SetupAsync().GetAwaiter().GetResult();
#pragma warning restore VSTHRD002

    private async Task SetupAsync()
    {
        _root = Path.Combine(Path.GetTempPath(), "weft-bench-log-refresh", Guid.NewGuid().ToString("N"));
        var schema = DeltaSchema.Of(new DeltaField("event_id", DeltaDataType.String), new DeltaField("bucket", DeltaDataType.String));
        await DeltaTable.CreateAsync(_root, schema, ["bucket"]).ConfigureAwait(false);

        // Commit-info-only entries, written straight into the log: as many versions as a long-lived stream's table has.
        var log = Path.Combine(_root, "_delta_log");
        for (int v = 1; v <= Commits; v++)
        {
            string entry = "{\"commitInfo\":{\"timestamp\":" + (1_764_000_000_000L + v) + ",\"operation\":\"WRITE\",\"operationParameters\":{\"weft.offsets\":\"0=" + v + "\"}}}\n";
            await File.WriteAllTextAsync(Path.Combine(log, $"{v:D20}.json"), entry).ConfigureAwait(false);
        }

        _listing = await DeltaTable.OpenAsync(_root, new DeltaTableOptions { LogCheckInterval = TimeSpan.Zero }).ConfigureAwait(false);
        _probing = await DeltaTable.OpenAsync(_root, new DeltaTableOptions { LogCheckInterval = TimeSpan.FromDays(1) }).ConfigureAwait(false);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);

    [Benchmark(Baseline = true, Description = "refresh, listing the log (interval 0, the previous behaviour)")]
    public async Task<long> Listing() => (await _listing.GetSnapshotAsync().ConfigureAwait(false)).Version;

    [Benchmark(Description = "refresh within the check interval (reads the known entry, probes the next)")]
    public async Task<long> Probing() => (await _probing.GetSnapshotAsync().ConfigureAwait(false)).Version;
}
