using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Online;
using Weft.Storage;
using Weft.Streaming.Runtime;
using static Weft.Definitions.Expr;

namespace Weft.Streaming.Tests.Runtime;

/// <summary>
/// A folder with a compiled signal, an item table and a weft.json whose source is the embedded log and
/// whose online store is SQLite (the single-node streaming setup) or a PostgreSQL schema. Events are
/// random from a seed.
/// </summary>
internal sealed class StreamWorld : IDisposable
{
    private readonly string? _postgres;

    public static readonly long Start = Timestamps.ToMicros(new DateTimeOffset(2026, 11, 20, 0, 0, 0, TimeSpan.Zero));
    public const long Hour = 3_600_000_000L;

    /// <param name="late">The signal's late policy.</param>
    /// <param name="hotUserCap">The signal's hot-user budget (default: the default budget).</param>
    /// <param name="refundSignal">Adds a second signal, "refunds", of an event type no generated line has.</param>
    /// <param name="clickUid">Clicks carry their user in a raw property "uid", mapped to user_id.</param>
    /// <param name="postgres">A connection string: the online store is PostgreSQL there instead of a SQLite file.</param>
    /// <param name="refundKind">The refunds signal reads a refund's type from a raw property "kind" (mapped to event_type).</param>
    public StreamWorld(LatePolicy late = LatePolicy.Accept, int? hotUserCap = null, bool refundSignal = false, bool clickUid = false, string? postgres = null, bool refundKind = false)
    {
        _postgres = postgres;
        Root = Path.Combine(Path.GetTempPath(), "weft-stream-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(Root, "signals"));
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32);
        if (clickUid)
        {
            click.MapRawColumn("uid", StandardColumns.UserId);
        }

        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        var items = weft.EnrichmentSource("items", key: "item_id", keyType: WeftType.Int64).Column("category", WeftType.String);
        weft.Signal("engagement", tenant: "home-feed")
            .Include(click, c => c.Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500))
            .Include(save)
            .Enrich(items, on: "item_id", "category")
            .Element("item_id", "dwell_ms", "category")
            .MaxLength(50).Lookback(TimeSpan.FromDays(7)).Bucket(TimeBucket.Hour).LateAllowance(TimeSpan.FromHours(2)).Late(late)
            .WithBudgets(Budgets.Default with { HotUserMaxEventsPerHour = hotUserCap ?? Budgets.Default.HotUserMaxEventsPerHour });
        if (refundSignal)
        {
            var refund = weft.EventType("refund").Attribute("amount", WeftType.Int64);
            if (refundKind)
            {
                refund.MapRawColumn("kind", StandardColumns.EventType);
            }

            weft.Signal("refunds", tenant: "home-feed").Include(refund).Element("amount").MaxLength(10).Lookback(TimeSpan.FromDays(7)).Bucket(TimeBucket.Hour);
        }

        var signals = weft.Build();
        Signal = signals.Single(s => s.Name == "engagement");
        foreach (var signal in signals)
        {
            File.WriteAllBytes(Path.Combine(Root, "signals", signal.Name + ".json"), SignalJsonWriter.Write(signal));
        }
        var store = postgres is null
            ? """{ "kind": "sqlite", "path": "online.db" }"""
            : $$"""{ "kind": "postgres", "connection_string": {{JsonSerializer.Serialize(postgres)}} }""";
        File.WriteAllText(Path.Combine(Root, "weft.json"), $$"""
            {
              "lake": "lake",
              "signals": "signals",
              "enrichments": { "items": { "path": "items.jsonl", "format": "jsonl" } },
              "online_store": {{store}},
              "source": { "kind": "embedded", "path": "log" }
            }
            """);
        var lines = Enumerable.Range(1, 40).Select(i => $$"""{"item_id":{{i}},"version_time":"2026-11-01T00:00:00Z","category":"c{{i % 5}}"}""");
        File.WriteAllLines(Path.Combine(Root, "items.jsonl"), lines);
    }

    public string Root { get; }

    public SignalDefinition Signal { get; }

    public WeftConfig Config => WeftConfig.Load(Path.Combine(Root, "weft.json"));

    /// <summary>Random event JSON lines: clicks, saves and searches (no signal includes searches) for 30 users.</summary>
    public static List<string> Events(int count, int seed, int startIndex = 0, long? baseTime = null)
    {
        var rng = new Random(seed);
        var result = new List<string>(count);
        long time = baseTime ?? Start;
        for (int i = startIndex; i < startIndex + count; i++)
        {
            time += rng.Next(1, 2_000_000);
            string type = rng.Next(10) switch { < 6 => "click", < 9 => "save", _ => "search" };
            string dwell = type == "click" && rng.Next(4) > 0 ? $",\"dwell_ms\":{rng.Next(0, 5000)}" : "";
            result.Add($$"""{"event_id":"s{{seed}}-{{i}}","user_id":{{rng.Next(1, 31)}},"event_type":"{{type}}","event_time":"{{Timestamps.Format(time)}}","item_id":{{rng.Next(1, 45)}}{{dwell}}}""");
        }

        return result;
    }

    /// <summary>What the signal makes of these lines, computed by the engine's batch shape (the reference).</summary>
    public async Task<EventBatch> ReferenceAsync(IEnumerable<string> lines)
    {
        var env = await SignalEnvironment.LoadAsync(Config, "engagement");
        var parsed = new RawEventParser(env.Signal).Parse(lines.Select((l, i) => new RawRecord(Encoding.UTF8.GetBytes(l), $"line {i}")));
        var run = env.Signal.StartRun(new ExecutorContext(env.Definition), new RunOptions { Assemble = false });
        return await run.ProcessTableAsync(parsed.Events, CancellationToken.None);
    }

    public async Task AppendAsync(IEnumerable<string> lines)
    {
        await using var log = await Weft.Streaming.Embedded.EmbeddedLog.OpenAsync(Path.Combine(Root, "log"));
        await log.AppendAsync(lines.Select(l => (Array.Empty<byte>(), Encoding.UTF8.GetBytes(l))).ToList());
    }

    /// <summary>Appends records with the keys given.</summary>
    public async Task AppendAsync(IReadOnlyList<(byte[] Key, byte[] Payload)> records)
    {
        await using var log = await Weft.Streaming.Embedded.EmbeddedLog.OpenAsync(Path.Combine(Root, "log"));
        await log.AppendAsync(records);
    }

    /// <summary>Appends payloads as they are, bytes that are not UTF-8 included.</summary>
    public async Task AppendAsync(IEnumerable<byte[]> payloads)
    {
        await using var log = await Weft.Streaming.Embedded.EmbeddedLog.OpenAsync(Path.Combine(Root, "log"));
        await log.AppendAsync(payloads.Select(p => (Array.Empty<byte>(), p)).ToList());
    }

    /// <summary>Runs the stream until the source has been empty for a few reads; flushes unless told to "crash".</summary>
    public async Task<StreamRuntime> RunAsync(int maxRecords = int.MaxValue, bool flush = true, StreamOptions? options = null, TimeProvider? time = null)
    {
        await using var host = await StreamHost.OpenAsync(Config, "weft-stream", CancellationToken.None);
        var runtime = await StreamRuntime.CreateAsync(Config, host.Source, host.Store, null, options ?? new StreamOptions { MaxBatchRecords = 300, MaxWait = TimeSpan.FromMilliseconds(20) }, time);
        int empty = 0;
        while (empty < 3 && runtime.RecordsIn < maxRecords)
        {
            empty = await runtime.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
        }

        if (flush)
        {
            await runtime.FlushAsync(CancellationToken.None);
        }

        return runtime;
    }

    /// <summary>Every element the online store holds for the signal: (user, event_id) → payload.</summary>
    public async Task<Dictionary<(long User, string Id), byte[]>> OnlineAsync()
    {
        await using var store = _postgres is null
            ? await OnlineStores.OpenSqliteAsync(Path.Combine(Root, "online.db"), CancellationToken.None)
            : await OnlineStores.OpenPostgresAsync(_postgres, CancellationToken.None);
        var all = await store.ReadManyAsync("engagement", Enumerable.Range(1, 30).Select(u => (long)u).ToList(), new OnlineReadOptions { Limit = 100_000 }, CancellationToken.None);
        return all.SelectMany(kv => kv.Value.Select(e => (Key: (kv.Key, e.EventId), e.Payload))).ToDictionary(p => p.Key, p => p.Payload);
    }

    /// <summary>Event ids of the path=stream rows of the enriched table (duplicates kept, to be counted).</summary>
    public async Task<List<string>> StreamLakeIdsAsync()
    {
        var table = await EventTable.OpenAsync(Path.Combine(Root, "lake", "enriched", "engagement"));
        var ids = new List<string>();
        await foreach (var b in table.ReadAsync([StandardColumns.EventId], PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.StreamPath)))
        {
            ids.AddRange(((StringColumn)b[StandardColumns.EventId]).Values.Select(v => v!));
        }

        return ids;
    }

    public async Task<EventBatch> TableAsync(string relative)
    {
        var table = await EventTable.OpenAsync(Path.Combine(Root, relative));
        var parts = new List<EventBatch>();
        await foreach (var b in table.ReadAsync())
        {
            parts.Add(b);
        }

        return parts.Count == 0 ? EventBatch.Empty([.. table.Schema]) : EventBatch.Concat(parts[0].Schema, parts);
    }

    public static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
