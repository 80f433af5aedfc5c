using System.Globalization;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Benchmarks;

/// <summary>
/// Parsing 10,000 click events of about 210 bytes into the signal's raw columns with
/// <see cref="RawEventParser.Parse"/>, against the reference: <see cref="JsonDocument.Parse(ReadOnlyMemory{byte}, JsonDocumentOptions)"/>
/// of the same events, parse and dispose only (the floor the old parser stood on before any column work).
/// Events per second = 10,000 / mean; the Ratio column is the parser's time over the reference's (Min
/// and Median too, for a shared machine).
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class RawEventParserBenchmarks
{
    private const int Events = 10_000;

    private RawRecord[] _records = null!;
    private RawEventParser _parser = null!;
    private RawEventParser _readerOnly = null!;

    [GlobalSetup]
    public void Setup()
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click")
            .Attribute("item_id", WeftType.Int64, nullable: false)
            .Attribute("surface", WeftType.String)
            .Attribute("position", WeftType.Int32)
            .Attribute("dwell_ms", WeftType.Int32)
            .Attribute("query", WeftType.String);
        weft.Signal("clicks", "bench").Include(click).Element("item_id", "surface").MaxLength(100).Lookback(TimeSpan.FromDays(1));
        var signal = CompiledSignal.Compile(weft.Build().Single(), ExecutorRegistry.CreateDefault(), new Dictionary<string, EnrichmentTable>());
        _parser = new RawEventParser(signal);
        _readerOnly = new RawEventParser(signal) { FlatPath = false };

        var random = new Random(42);
        string[] surfaces = ["home", "search", "pdp", "cart", "email"];
        string[] queries = ["shoes", "earbuds", "espresso", "rain jacket"];
        long t0 = Timestamps.ToMicros(DateTimeOffset.UtcNow.AddHours(-1));
        _records = new RawRecord[Events];
        for (int i = 0; i < Events; i++)
        {
            long time = t0 + (i * 1_000L);
            string json = string.Create(CultureInfo.InvariantCulture,
                $$"""{"event_id":"e-{{random.NextInt64(1L << 48):x12}}","user_id":{{random.Next(1, 1_000_000)}},"event_type":"click","event_time":{{time}},"ingest_time":{{time + 150_000}},"item_id":{{random.Next(1, 5_000_000)}},"surface":"{{surfaces[random.Next(surfaces.Length)]}}","position":{{random.Next(1, 50)}},"dwell_ms":{{random.Next(0, 60_000)}},"query":"{{queries[random.Next(queries.Length)]}}"}""");
            _records[i] = new RawRecord(Encoding.UTF8.GetBytes(json), "bench");
        }
    }

    /// <summary>The reference: a JsonDocument per event, parsed and disposed.</summary>
    [Benchmark(Baseline = true)]
    public int JsonDocumentParse()
    {
        int n = 0;
        foreach (var r in _records)
        {
            using var doc = JsonDocument.Parse(r.Json);
            n += doc.RootElement.ValueKind == JsonValueKind.Object ? 1 : 0;
        }

        return n;
    }

    /// <summary>The single-pass parser: 10,000 events into one columnar batch (flat events on its fast path).</summary>
    [Benchmark]
    public int RawEventParserParse() => _parser.Parse(_records).Events.RowCount;

    /// <summary>The same with every event read through a <see cref="Utf8JsonReader"/> (no fast path).</summary>
    [Benchmark]
    public int RawEventParserReaderOnly() => _readerOnly.Parse(_records).Events.RowCount;
}
