using System.Buffers;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using static Weft.Definitions.Expr;

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
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("surface", WeftType.String).Attribute("dwell_ms", WeftType.Int32);
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("surface", WeftType.String);
        var impression = weft.EventType("impression").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("surface", WeftType.String);
        weft.Signal("clicks", tenant: "bench")
            .Include(click, c => c.Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500).Derive("long_dwell", Coalesce(Col("dwell_ms") >= 10_000, false)))
            .Include(save, s => s.Derive("long_dwell", true))
            .Include(impression, s => s.Derive("long_dwell", false))
            .Element("item_id", "surface", "dwell_ms", "long_dwell")
            .MaxLength(500).Lookback(TimeSpan.FromDays(30)).Bucket(TimeBucket.Hour);
        var definition = weft.Build().Single();
        _signal = CompiledSignal.Compile(definition, ExecutorRegistry.CreateDefault(), new Dictionary<string, EnrichmentTable>());
        _parser = new RawEventParser(_signal);
        _codec = new ElementCodec(definition, _signal.Fingerprint);

        var random = new Random(42);
        string[] surfaces = ["home_feed", "search_results", "item_page", "notifications", "profile"];
        string[] devices = ["android", "ios", "web", "tablet"];
        string[] types = ["click", "click", "click", "save", "impression"];
        var start = DateTime.UtcNow.AddHours(-1);
        _records = new RawRecord[Events];
        for (int i = 0; i < Events; i++)
        {
            var u = random.NextDouble();
            var time = start.AddMilliseconds(i);
            string json = string.Create(CultureInfo.InvariantCulture,
                $$"""{"event_id":"0001-{{i:x12}}","user_id":{{1_000_000L + (long)(u * u * 100_000)}},"event_type":"{{types[random.Next(types.Length)]}}","event_time":"{{time:yyyy-MM-ddTHH:mm:ss.ffffffZ}}","item_id":{{random.Next(1, 5_000_000)}},"surface":"{{surfaces[random.Next(surfaces.Length)]}}","device":"{{devices[random.Next(devices.Length)]}}","position":{{random.Next(0, 50)}},"dwell_ms":{{random.Next(0, 60_000)}},"session_id":"s-{{random.Next():x8}}"}""");
            _records[i] = new RawRecord(Encoding.UTF8.GetBytes(json), "bench");
        }
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
        for (int i = 0; i < enriched.RowCount; i++)
        {
            bytes += _codec.Encode(enriched, i, _scratch).Length;
        }

        return bytes;
    }

    /// <summary>A fresh run per batch, as each benchmark invocation would otherwise see every event as a duplicate.</summary>
    private Task<EventBatch> Run() =>
        _signal.StartRun(new ExecutorContext(_signal.Definition), new RunOptions { Assemble = false }).ProcessTableAsync(_parser.Parse(_records).Events, CancellationToken.None);
}
