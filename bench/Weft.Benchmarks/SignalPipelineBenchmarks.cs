using System.Buffers;
using BenchmarkDotNet.Attributes;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;

namespace Weft.Benchmarks;

/// <summary>
/// The streaming runtime's stage one for a micro-batch of 10,000 click/save/impression events (~230
/// bytes of JSON), with the signal of <c>bench/Weft.Bench.Streaming</c> (a dwell filter on clicks, a
/// derived flag per type): parse alone (the baseline), parse + the signal's executors (dedup, hot-user
/// cap, router, filter, derive, project), and those + encoding every element for the online store.
/// The Ratio column is each step's time over parsing's: what the executors and encoding add.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class SignalPipelineBenchmarks
{
    private const int Events = 10_000;

    private RawRecord[] _records = null!;
    private CompiledSignal _signal = null!;
    private RawEventParser _parser = null!;
    private ElementCodec _codec = null!;
    private readonly ArrayBufferWriter<byte> _scratch = new(256);

    [GlobalSetup]
    public void Setup()
    {
        var definition = Weft.Bench.Streaming.BenchSignal.Create();
        _signal = CompiledSignal.Compile(definition, ExecutorRegistry.CreateDefault(), new Dictionary<string, EnrichmentTable>());
        _parser = new RawEventParser(_signal);
        _codec = new ElementCodec(definition, _signal.Fingerprint);

        // The streaming benchmark's own events (linked): the same seed gives the same events.
        _records = [.. Weft.Bench.Streaming.ClickEvents.Generate(Events, seed: 42).Select(e => new RawRecord(e.Utf8Json, "bench"))];
    }

    [Benchmark(Baseline = true)]
    public int Parse() => _parser.Parse(_records).Events.RowCount;

    [Benchmark]
    public async Task<int> ParseAndExecutors() => (await Run().ConfigureAwait(false)).RowCount;

    [Benchmark]
    public async Task<int> ParseExecutorsAndEncode()
    {
        var enriched = await Run().ConfigureAwait(false);
        int bytes = 0;
        foreach (var payload in _codec.EncodeAll(enriched, _scratch))
        {
            bytes += payload.Length;
        }

        return bytes;
    }

    /// <summary>A fresh run per batch, as each benchmark invocation would otherwise see every event as a duplicate.</summary>
    private Task<EventBatch> Run() =>
        _signal.StartRun(new ExecutorContext(_signal.Definition), new RunOptions { Assemble = false }).ProcessTableAsync(_parser.Parse(_records).Events, CancellationToken.None);
}
