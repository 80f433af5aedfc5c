using BenchmarkDotNet.Attributes;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Benchmarks;

/// <summary>
/// The hot-user cap once it counts more (user, hour) pairs than it keeps unpruned (1,000,000), all within
/// the 48 hours it keeps: 1.2 M users seen in the newest hour, then batches of 10,000 events in that hour.
/// The baseline is the executor's previous pruning, which scanned every count on every such batch and
/// found nothing to forget; the executor now scans once per new hour.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class HotUserCapBenchmarks
{
    private const long Hour = 3_600_000_000L;
    private const int Users = 1_200_000;

    private EventBatch _batch = null!;
    private HotUserCapExecutor _cap = null!;
    private PreviousCap _previous = null!;
    private ExecutorContext _context = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _context = new ExecutorContext(Weft.Bench.Streaming.BenchSignal.Create());
        var all = Batch(Enumerable.Range(0, Users).Select(i => 1_000_000L + i).ToArray(), 100 * Hour);
        _batch = Batch(Enumerable.Range(0, 10_000).Select(i => 1_000_000L + (i * 97L % Users)).ToArray(), 100 * Hour);
        _cap = new HotUserCapExecutor(maxEventsPerHour: 1_000_000);
        _previous = new PreviousCap(maxEventsPerHour: 1_000_000);
        await _cap.ExecuteAsync(all, _context, CancellationToken.None).ConfigureAwait(false);
        _previous.Execute(all);
    }

    [Benchmark(Baseline = true, Description = "prune scan on every batch (previous)")]
    public int Previous() => _previous.Execute(_batch);

    [Benchmark(Description = "HotUserCapExecutor (prune once per new hour)")]
    public async Task<int> Current() => (await _cap.ExecuteAsync(_batch, _context, CancellationToken.None).ConfigureAwait(false)).RowCount;

    private static EventBatch Batch(long[] users, long time) => new(
        [new FieldDefinition(StandardColumns.UserId, WeftType.Int64), new FieldDefinition(StandardColumns.EventTime, WeftType.Timestamp)],
        [new PrimitiveColumn<long>(WeftType.Int64, users), new PrimitiveColumn<long>(WeftType.Timestamp, Enumerable.Repeat(time, users.Length).ToArray())]);

    /// <summary>The executor's counting and pruning before this change, as the reference.</summary>
    private sealed class PreviousCap(int maxEventsPerHour)
    {
        private readonly Dictionary<(long User, long Hour), int> _counts = [];
        private long _maxHour = long.MinValue;

        public int Execute(EventBatch batch)
        {
            var users = ((PrimitiveColumn<long>)batch[StandardColumns.UserId]).Values;
            var times = ((PrimitiveColumn<long>)batch[StandardColumns.EventTime]).Values;
            int kept = 0;
            for (int i = 0; i < batch.RowCount; i++)
            {
                long hour = Math.DivRem(times[i], Hour, out long rem) - (rem < 0 ? 1 : 0);
                _maxHour = Math.Max(_maxHour, hour);
                ref int count = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_counts, (users[i], hour), out _);
                count++;
                kept += count <= maxEventsPerHour ? 1 : 0;
            }

            if (_counts.Count > 1_000_000)
            {
                foreach (var key in _counts.Keys.Where(k => k.Hour < _maxHour - 48).ToList())
                {
                    _counts.Remove(key);
                }
            }

            return kept;
        }
    }
}
