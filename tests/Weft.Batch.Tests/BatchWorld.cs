using System.Collections.Immutable;
using System.Globalization;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Parquet.Tests;
using Weft.Storage;
using static Weft.Definitions.Expr;

namespace Weft.Batch.Tests;

/// <summary>One raw event as the tests generate it.</summary>
internal sealed record RawEvent(string EventId, long UserId, string EventType, long EventTime, long IngestTime, long? ItemId, int? DwellMs);

/// <summary>One version of an item's features.</summary>
internal sealed record ItemVersion(long ItemId, long VersionTime, string? Category, float[]? Embedding);

/// <summary>
/// A folder with a raw event archive and an item table (Delta tables), the compiled signal and a
/// weft.json pointing at them: what a user of the batch path has. Data is random from a seed.
/// </summary>
internal sealed class BatchWorld : IDisposable
{
    public static readonly long Start = Timestamps.ToMicros(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
    public const long Hour = 3_600_000_000L;
    public const long Day = 24 * Hour;

    private readonly TempDir _dir = new();

    private BatchWorld()
    {
    }

    public string Root => _dir.Path;

    public string RawPath => Path.Combine(Root, "raw", "events");

    public string ItemsPath => Path.Combine(Root, "raw", "items");

    public string ConfigPath => Path.Combine(Root, "weft.json");

    public List<RawEvent> Events { get; } = [];

    public List<ItemVersion> Items { get; } = [];

    public SignalDefinition Signal { get; private set; } = null!;

    public WeftConfig Config => WeftConfig.Load(ConfigPath);

    public static readonly ImmutableArray<FieldDefinition> RawSchema =
    [
        .. StandardColumns.All,
        new("item_id", WeftType.Int64), new("dwell_ms", WeftType.Int32),
    ];

    public static readonly ImmutableArray<FieldDefinition> ItemSchema =
    [
        new("item_id", WeftType.Int64, Nullable: false), new("version_time", WeftType.Timestamp, Nullable: false),
        new("embedding", WeftType.ListOf(ScalarKind.Float32)), new("category", WeftType.String),
    ];

    /// <summary>The signal under test: clicks with a dwell filter and saves, enriched from items, last <paramref name="maxLength"/> within 2 days.</summary>
    public static SignalDefinition Engagement(int maxLength = 8)
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32);
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        var items = weft.EnrichmentSource("items", key: "item_id", keyType: WeftType.Int64)
            .Column("embedding", WeftType.ListOf(ScalarKind.Float32)).Column("category", WeftType.String);
        weft.Signal("engagement", tenant: "home-feed")
            .Include(click, c => c.Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500))
            .Include(save)
            .Enrich(items, on: "item_id", "embedding", "category")
            .Element("item_id", "dwell_ms", "embedding", "category")
            .MaxLength(maxLength).Lookback(TimeSpan.FromDays(2)).Bucket(TimeBucket.Hour).LateAllowance(TimeSpan.FromHours(6));
        return weft.Build().Single();
    }

    public static async Task<BatchWorld> CreateAsync(int seed, int events = 400, int users = 12, int maxLength = 8, bool write = true, SignalDefinition? signal = null, bool slowProducerClocks = false)
    {
        var world = new BatchWorld { Signal = signal ?? Engagement(maxLength) };
        var rng = new Random(seed);
        for (int i = 0; i < events; i++)
        {
            long time = Start + (long)(rng.NextDouble() * 3 * Day);
            long delay = rng.NextDouble() < 0.15 ? (long)(rng.NextDouble() * 20 * Hour) : rng.Next(1, 5_000_000);
            string type = rng.Next(10) switch { < 6 => "click", < 9 => "save", _ => "search" };
            long user = rng.Next(1, users + 1);
            // a few exact ties in time, so the event_id tie-break matters; the delay counts from the time
            // the event has, as a stream reading it would stamp it (an event_time a day past its ingest_time is refused)
            time = rng.Next(20) == 0 && world.Events.Count > 0 ? world.Events[^1].EventTime : time;
            var e = new RawEvent($"e{seed}-{i:0000}", user, type,
                time,
                time + delay,
                type == "search" ? null : rng.Next(1, 31),
                type == "click" && rng.Next(5) > 0 ? rng.Next(0, 20_000) : null);
            if (rng.Next(60) == 0 && slowProducerClocks)
            {
                e = e with { IngestTime = time - Day - rng.Next(1, 5_000_000) }; // a producer's clock a day behind: a dead letter
            }

            world.Events.Add(e);
            if (rng.Next(20) == 0)
            {
                world.Events.Add(e with { IngestTime = e.IngestTime + rng.Next(1, 10) * Hour }); // a duplicate delivery
            }
        }

        for (long item = 1; item <= 27; item++) // items 28..30 are unknown to the item table
        {
            int versions = rng.Next(1, 4);
            for (int v = 0; v < versions; v++)
            {
                long at = Start - Day + (long)(rng.NextDouble() * 4 * Day);
                world.Items.Add(new ItemVersion(item, at, rng.Next(8) == 0 ? null : $"c{rng.Next(6)}",
                    rng.Next(8) == 0 ? null : Enumerable.Range(0, 4).Select(_ => (float)Math.Round(rng.NextDouble() * 2 - 1, 3)).ToArray()));
            }
        }

        if (write)
        {
            await world.WriteAsync();
        }

        return world;
    }

    public async Task WriteAsync()
    {
        Directory.CreateDirectory(Path.Combine(Root, "signals"));
        await File.WriteAllBytesAsync(Path.Combine(Root, "signals", "engagement.json"), SignalJsonWriter.Write(Signal));
        await File.WriteAllTextAsync(ConfigPath, """
            {
              "lake": "lake",
              "signals": "signals",
              "archives": [ { "path": "raw/events", "format": "delta" } ],
              "enrichments": { "items": { "path": "raw/items", "format": "delta" } }
            }
            """);
        await AppendEventsAsync(Events);
        var items = await EventTable.OpenOrCreateAsync(ItemsPath, ItemSchema, []);
        await items.AppendAsync(ItemBatch(Items), new Dictionary<string, string?>());
    }

    /// <summary>Appends raw events to the archive (a new table version), as a late delivery would.</summary>
    public async Task AppendEventsAsync(IReadOnlyList<RawEvent> events)
    {
        var table = await EventTable.OpenOrCreateAsync(RawPath, RawSchema, []);
        await table.AppendAsync(EventBatchOf(events), new Dictionary<string, string?>());
    }

    public async Task AppendItemsAsync(IReadOnlyList<ItemVersion> versions)
    {
        var table = await EventTable.OpenOrCreateAsync(ItemsPath, ItemSchema, []);
        await table.AppendAsync(ItemBatch(versions), new Dictionary<string, string?>());
    }

    public static EventBatch EventBatchOf(IReadOnlyList<RawEvent> events) => new(RawSchema,
    [
        new StringColumn(events.Select(e => (string?)e.EventId).ToArray()),
        new PrimitiveColumn<long>(WeftType.Int64, events.Select(e => e.UserId).ToArray()),
        new StringColumn(events.Select(e => (string?)e.EventType).ToArray()),
        new PrimitiveColumn<long>(WeftType.Timestamp, events.Select(e => e.EventTime).ToArray()),
        new PrimitiveColumn<long>(WeftType.Timestamp, events.Select(e => e.IngestTime).ToArray()),
        new PrimitiveColumn<long>(WeftType.Int64, events.Select(e => e.ItemId ?? 0).ToArray(), events.Select(e => e.ItemId is null).ToArray()),
        new PrimitiveColumn<int>(WeftType.Int32, events.Select(e => e.DwellMs ?? 0).ToArray(), events.Select(e => e.DwellMs is null).ToArray()),
    ]);

    private static EventBatch ItemBatch(IReadOnlyList<ItemVersion> items) => new(ItemSchema,
    [
        new PrimitiveColumn<long>(WeftType.Int64, items.Select(i => i.ItemId).ToArray()),
        new PrimitiveColumn<long>(WeftType.Timestamp, items.Select(i => i.VersionTime).ToArray()),
        new ListColumn<float>(WeftType.ListOf(ScalarKind.Float32), items.Select(i => i.Embedding).ToArray(), items.Select(i => i.Embedding is null).ToArray()),
        new StringColumn(items.Select(i => i.Category).ToArray()),
    ]);

    /// <summary>The table's path=batch rows in a stable text form, sorted.</summary>
    public static async Task<List<string>> BatchRowsAsync(string path)
    {
        var table = await EventTable.OpenAsync(path);
        var rows = new List<string>();
        await foreach (var batch in table.ReadAsync(null, PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath)))
        {
            rows.AddRange(JsonRows.Canonical(batch.Project(table.Schema)).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        rows.Sort(StringComparer.Ordinal);
        return rows;
    }

    public static string Iso(long micros) => Timestamps.Format(micros);

    public static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    public void Dispose() => _dir.Dispose();
}

/// <summary>The system clock moved by a fixed amount: a later run, without waiting for it.</summary>
internal sealed class ShiftedTime(TimeSpan shift) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + shift;
}
