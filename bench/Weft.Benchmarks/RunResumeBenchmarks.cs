using BenchmarkDotNet.Attributes;
using Weft.Batch;
using Weft.Engine;
using Weft.Storage;

namespace Weft.Benchmarks;

/// <summary>
/// A resumed batch run's first check of its dead letters' tags (<c>DeadLetterTable.AppendAsync</c> with
/// a tag the run already committed, so nothing is written) on a dead-letter table the stream has
/// committed to many times, the run's own commit among the last 100. Each call opens a new handle, as a
/// new <c>weft batch</c> process does. The baseline is the check as it was: the handle opened the same
/// way, then every commit since version 0 read for the run's tags. The measured check starts from the
/// table's run-starts fold (kept by a first check in the setup) and the run's first commit.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class RunResumeBenchmarks
{
    private const string Run = "0123456789abcdef";
    private const string Tag = "batch:" + Run + ":2030-01-01T00..2030-01-01T23";

    private static readonly DeadLetter[] Letters = [new("e1", 7, "click", "parse", "bad", "events.parquet#1", "{}")];

    private string _root = null!;
    private long _version;

    [Params(20_000, 100_000)]
    public int Commits { get; set; }

    // Synchronous: this BenchmarkDotNet's in-process toolchain does not await an async global setup.
    [GlobalSetup]
#pragma warning disable VSTHRD002 // blocking in a benchmark's setup, on no synchronization context
    public void Setup() => SetupAsync().GetAwaiter().GetResult();
#pragma warning restore VSTHRD002

    private async Task SetupAsync()
    {
        _root = Path.Combine(Path.GetTempPath(), "weft-bench-run-resume", Guid.NewGuid().ToString("N"));
        var table = await DeadLetterTable.OpenAsync(_root, CancellationToken.None).ConfigureAwait(false);

        // Stream-like commits written straight into the log (commit info only), then the run's one.
        var log = Path.Combine(_root, "_delta_log");
        for (int v = 1; v <= Commits - 100; v++)
        {
            string entry = "{\"commitInfo\":{\"timestamp\":" + (1_764_000_000_000L + v) + ",\"operation\":\"WRITE\",\"operationParameters\":{\"weft.tag\":\"stream:" + v + "\",\"weft.offsets\":\"0=" + v + "\"}}}\n";
            await File.WriteAllTextAsync(Path.Combine(log, $"{v:D20}.json"), entry).ConfigureAwait(false);
        }

        table = await DeadLetterTable.OpenAsync(_root, CancellationToken.None).ConfigureAwait(false);
        await DeadLetterTable.AppendAsync(table, EventLayout.BatchPath, Run, Tag, onlyOnce: true, Letters, 1, CancellationToken.None).ConfigureAwait(false);
        for (int i = 0; i < 99; i++)
        {
            await table.Log.CommitAsync(DeltaTransaction.Create("WRITE").WithParameter("weft.tag", "stream:x" + i).Build()).ConfigureAwait(false);
        }

        // A first check of the resumed run: it reads the whole history once and keeps the fold.
        await DeadLetterTable.AppendAsync(await DeadLetterTable.OpenAsync(_root, CancellationToken.None).ConfigureAwait(false),
            EventLayout.BatchPath, Run, Tag, onlyOnce: true, Letters, 2, CancellationToken.None).ConfigureAwait(false);
        if (await table.Log.ReadFoldAsync("run-starts").ConfigureAwait(false) is null)
        {
            throw new InvalidOperationException("The setup's check kept no run-starts fold.");
        }

        _version = (await table.Log.GetSnapshotAsync().ConfigureAwait(false)).Version;
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);

    [Benchmark(Baseline = true, Description = "open + read every commit since version 0 for the run's tags (the previous check)")]
    public async Task<bool> FromVersionZero()
    {
        var table = await DeadLetterTable.OpenAsync(_root, CancellationToken.None).ConfigureAwait(false);
        bool found = false;
        foreach (var commit in await table.Log.GetCommitsAfterAsync(-1).ConfigureAwait(false))
        {
            found |= commit.Parameters.TryGetValue("weft.tag", out var tag) && tag == Tag;
        }

        return found;
    }

    [Benchmark(Description = "open + DeadLetterTable.AppendAsync(onlyOnce) of a committed tag (from the run-starts fold)")]
    public async Task<long> FromRunStarts()
    {
        var table = await DeadLetterTable.OpenAsync(_root, CancellationToken.None).ConfigureAwait(false);
        await DeadLetterTable.AppendAsync(table, EventLayout.BatchPath, Run, Tag, onlyOnce: true, Letters, 3, CancellationToken.None).ConfigureAwait(false);
        long version = (await table.Log.GetSnapshotAsync().ConfigureAwait(false)).Version;
        return version == _version ? version : throw new InvalidOperationException("The check did not find the run's tag: it appended.");
    }
}
