using BenchmarkDotNet.Attributes;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Benchmarks;

/// <summary>
/// The dedup executor on a full window: 100 batches of 10,000 unique event ids cycled through a window
/// of 500,000, so every id is new again when it comes back and every add evicts the oldest id. The
/// baseline is the obvious implementation (a set of the id strings and a queue), the executor's
/// first; the executor keeps 128-bit hashes in an open-addressing table and prefetches slots.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class DedupBenchmarks
{
    private const int Capacity = 500_000;
    private const int Batches = 100;

    private EventBatch[] _batches = null!;
    private DedupExecutor _dedup = null!;
    private StringWindow _strings = null!;
    private ExecutorContext _context = null!;
    private int _next;

    [GlobalSetup]
    public async Task Setup()
    {
        _batches = new EventBatch[Batches];
        for (int b = 0; b < Batches; b++)
        {
            var ids = new string?[10_000];
            for (int i = 0; i < ids.Length; i++)
            {
                ids[i] = $"0042-{(b * ids.Length) + i:x12}";
            }

            _batches[b] = new EventBatch([new FieldDefinition(StandardColumns.EventId, WeftType.String)], [new StringColumn(ids)]);
        }

        _context = new ExecutorContext(Weft.Bench.Streaming.BenchSignal.Create());
        _dedup = new DedupExecutor(Capacity);
        _strings = new StringWindow(Capacity);
        foreach (var batch in _batches)
        {
            await _dedup.ExecuteAsync(batch, _context, CancellationToken.None).ConfigureAwait(false);
            _strings.Keep(batch);
        }
    }

    [Benchmark(Baseline = true, Description = "set of strings + queue")]
    public int Strings() => _strings.Keep(_batches[_next++ % Batches]);

    [Benchmark(Description = "DedupExecutor (hashed keys, prefetch)")]
    public async Task<int> Hashed() => (await _dedup.ExecuteAsync(_batches[_next++ % Batches], _context, CancellationToken.None).ConfigureAwait(false)).RowCount;

    /// <summary>The executor's first implementation, as the reference.</summary>
    private sealed class StringWindow(int capacity)
    {
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
        private readonly Queue<string> _order = new();

        public int Keep(EventBatch batch)
        {
            int kept = 0;
            foreach (var id in ((StringColumn)batch[StandardColumns.EventId]).Values)
            {
                if (_seen.Add(id!))
                {
                    kept++;
                    _order.Enqueue(id!);
                    if (_order.Count > capacity)
                    {
                        _seen.Remove(_order.Dequeue());
                    }
                }
            }

            return kept;
        }
    }
}
