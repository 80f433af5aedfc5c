using System.Collections.Immutable;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Engine.Tests;
using Weft.Serving.Security;
using Weft.Storage;
using Weft.Streaming.Embedded;
using Weft.Streaming.Runtime;
using static Weft.Definitions.Expr;

namespace Weft.Serving.Tests;

/// <summary>One raw event as the tests generate it.</summary>
internal sealed record RawEvent(string EventId, long UserId, string EventType, long EventTime, long IngestTime, long? ItemId, int? DwellMs)
{
    public string Json()
    {
        var sb = new StringBuilder();
        sb.Append("{\"event_id\":\"").Append(EventId).Append("\",\"user_id\":").Append(UserId.ToString(CultureInfo.InvariantCulture))
          .Append(",\"event_type\":\"").Append(EventType).Append("\",\"event_time\":\"").Append(Timestamps.Format(EventTime))
          .Append("\",\"ingest_time\":\"").Append(Timestamps.Format(IngestTime)).Append('"');
        if (ItemId is { } item)
        {
            sb.Append(",\"item_id\":").Append(item.ToString(CultureInfo.InvariantCulture));
        }

        if (DwellMs is { } dwell)
        {
            sb.Append(",\"dwell_ms\":").Append(dwell.ToString(CultureInfo.InvariantCulture));
        }

        return sb.Append('}').ToString();
    }
}

/// <summary>
/// A single-node deployment in a temp folder: two compiled signals of two tenants, a raw event archive
/// (Delta), an item table (JSON lines), the embedded log, a SQLite online store, and a weft.json with
/// tenants and serving options. The clock is fake and stands at <see cref="Now"/>; data is random from a seed.
/// </summary>
internal sealed class ServingWorld : IAsyncDisposable
{
    public static readonly long Start = Timestamps.ToMicros(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
    public const long Hour = 3_600_000_000L;
    public const long Day = 24 * Hour;
    public static readonly long Now = Start + (3 * Day);

    public const string HomeKey = "home-feed-secret-key";
    public const string OtherKey = "other-tenant-secret-key";

    public static readonly ImmutableArray<FieldDefinition> RawSchema =
    [
        .. StandardColumns.All,
        new("item_id", WeftType.Int64), new("dwell_ms", WeftType.Int32),
    ];

    private ServingServer? _server;

    public ServingWorld(string? serving = null, int maxLength = 20)
    {
        Root = Path.Combine(Path.GetTempPath(), "weft-serving-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(Root, "signals"));
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32);
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        var like = weft.EventType("like").Attribute("item_id", WeftType.Int64, nullable: false);
        var items = weft.EnrichmentSource("items", key: "item_id", keyType: WeftType.Int64).Column("category", WeftType.String);
        weft.Signal("engagement", tenant: "home-feed")
            .Include(click, c => c.Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500))
            .Include(save)
            .Enrich(items, on: "item_id", "category")
            .Element("item_id", "dwell_ms", "category")
            .MaxLength(maxLength).Lookback(TimeSpan.FromDays(7)).Bucket(TimeBucket.Hour).LateAllowance(TimeSpan.FromHours(6));
        weft.Signal("likes", tenant: "other")
            .Include(like)
            .Element("item_id")
            .MaxLength(10).Lookback(TimeSpan.FromDays(7)).Bucket(TimeBucket.Hour);
        foreach (var signal in weft.Build())
        {
            File.WriteAllBytes(Path.Combine(Root, "signals", signal.Name + ".json"), SignalJsonWriter.Write(signal));
            if (signal.Name == "engagement")
            {
                Signal = signal;
            }
        }

        File.WriteAllText(Path.Combine(Root, "weft.json"), $$"""
            {
              "lake": "lake",
              "signals": "signals",
              "archives": [ { "path": "raw/events", "format": "delta" } ],
              "enrichments": { "items": { "path": "items.jsonl", "format": "jsonl" } },
              "online_store": { "kind": "sqlite", "path": "online.db" },
              "source": { "kind": "embedded", "path": "log" },
              "tenants": [
                { "name": "home-feed", "api_keys_sha256": [ "{{ApiKeys.Digest(HomeKey)}}" ] },
                { "name": "other", "api_keys_sha256": [ "{{ApiKeys.Digest(OtherKey)}}" ] }
              ],
              "serving": {{serving ?? """{ "urls": "http://127.0.0.1:0", "history_refresh": "200ms", "history_horizon": "3d", "stream_max_wait": "10ms" }"""}}
            }
            """);
        WriteItems(Enumerable.Range(1, 40).Select(i => (i, Start - Day, $"c{i % 5}")));
    }

    public string Root { get; }

    public SignalDefinition Signal { get; } = null!;

    public FakeTimeProvider Clock { get; } = new(Timestamps.FromMicros(Now));

    public WeftConfig Config => WeftConfig.Load(Path.Combine(Root, "weft.json"));

    public ServingServer Server => _server ?? throw new InvalidOperationException("start the server first");

    public Uri BaseAddress => new(Server.Urls[0].Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/");

    /// <summary>Random events of 12 users over the 3 days before <see cref="Now"/>: clicks, saves, a few searches, ties in time, duplicate deliveries, late ingests.</summary>
    public static List<RawEvent> Events(int count, int seed, int users = 12)
    {
        var rng = new Random(seed);
        var result = new List<RawEvent>(count);
        for (int i = 0; i < count; i++)
        {
            long time = Start + (long)(rng.NextDouble() * 3 * Day);
            if (rng.Next(20) == 0 && result.Count > 0)
            {
                time = result[^1].EventTime; // an exact tie: the event_id tie-break matters
            }

            long ingest = Math.Min(Now, time + (rng.NextDouble() < 0.15 ? (long)(rng.NextDouble() * 20 * Hour) : rng.Next(1, 5_000_000)));
            string type = rng.Next(10) switch { < 6 => "click", < 9 => "save", _ => "search" };
            var e = new RawEvent($"e{seed}-{i:0000}", rng.Next(1, users + 1), type, time, ingest,
                type == "search" ? null : rng.Next(1, 41), type == "click" && rng.Next(5) > 0 ? rng.Next(0, 5_000) : null);
            result.Add(e);
            if (rng.Next(25) == 0)
            {
                result.Add(e with { IngestTime = Math.Min(Now, e.IngestTime + Hour) }); // a duplicate delivery
            }
        }

        return result;
    }

    public void WriteItems(IEnumerable<(int Item, long VersionTime, string Category)> versions, bool append = false)
    {
        var lines = versions.Select(v => $$"""{"item_id":{{v.Item}},"version_time":"{{Timestamps.Format(v.VersionTime)}}","category":"{{v.Category}}"}""");
        var path = Path.Combine(Root, "items.jsonl");
        if (append)
        {
            File.AppendAllLines(path, lines);
        }
        else
        {
            File.WriteAllLines(path, lines);
        }
    }

    /// <summary>Appends events to the raw archive (the batch path's input).</summary>
    public async Task ArchiveAsync(IReadOnlyList<RawEvent> events)
    {
        var table = await EventTable.OpenOrCreateAsync(Path.Combine(Root, "raw", "events"), RawSchema, []);
        var batch = new EventBatch(RawSchema,
        [
            new StringColumn(events.Select(e => (string?)e.EventId).ToArray()),
            new PrimitiveColumn<long>(WeftType.Int64, events.Select(e => e.UserId).ToArray()),
            new StringColumn(events.Select(e => (string?)e.EventType).ToArray()),
            new PrimitiveColumn<long>(WeftType.Timestamp, events.Select(e => e.EventTime).ToArray()),
            new PrimitiveColumn<long>(WeftType.Timestamp, events.Select(e => e.IngestTime).ToArray()),
            new PrimitiveColumn<long>(WeftType.Int64, events.Select(e => e.ItemId ?? 0).ToArray(), events.Select(e => e.ItemId is null).ToArray()),
            new PrimitiveColumn<int>(WeftType.Int32, events.Select(e => e.DwellMs ?? 0).ToArray(), events.Select(e => e.DwellMs is null).ToArray()),
        ]);
        await table.AppendAsync(batch, new Dictionary<string, string?>());
    }

    /// <summary>Runs the streaming path over <paramref name="events"/> (through the embedded log) until it is idle, then flushes.</summary>
    public async Task StreamAsync(IEnumerable<RawEvent> events, StreamOptions? options = null)
    {
        await using (var log = await EmbeddedLog.OpenAsync(Path.Combine(Root, "log")))
        {
            await log.AppendAsync(events.Select(e => (Encoding.UTF8.GetBytes(e.UserId.ToString(CultureInfo.InvariantCulture)), Encoding.UTF8.GetBytes(e.Json()))).ToList());
        }

        await using var host = await StreamHost.OpenAsync(Config, "weft-stream", CancellationToken.None);
        var runtime = await StreamRuntime.CreateAsync(Config, host.Source, host.Store, null, options ?? new StreamOptions { MaxBatchRecords = 200, MaxWait = TimeSpan.FromMilliseconds(10) }, Clock);
        int empty = 0;
        while (empty < 3)
        {
            empty = await runtime.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
        }

        await runtime.FlushAsync(CancellationToken.None);
    }

    /// <summary>Runs <c>weft batch</c> over the three days: buckets ending 6 h (the late allowance) before <see cref="Now"/> are sealed.</summary>
    public async Task<BatchResult> BatchAsync()
    {
        var env = await SignalEnvironment.LoadAsync(Config, "engagement");
        return await new BatchJob(env, Clock).RunAsync(new BatchRequest("engagement", Start, Now), null, CancellationToken.None);
    }

    /// <summary>What <c>weft snapshot</c> computes for the same cut: the reference for a served sequence.</summary>
    public async Task<SequenceTable> SnapshotAsync(Weft.Engine.Sequences.SequenceCut cut)
    {
        var lake = await EnrichedLake.OpenAsync(Config.EnrichedTable("engagement"), Signal, CancellationToken.None);
        var rows = await lake.ReadAsync(long.MinValue / 2, long.MaxValue / 2, CancellationToken.None);
        return SequenceBuilder.Snapshot(rows, Signal, cut);
    }

    public async Task<ServingServer> StartAsync()
    {
        var config = Config;
        _server = await ServingServer.StartAsync(config, ServingOptions.FromConfig(config), Clock, l => l.SetMinimumLevel(LogLevel.Warning));
        return _server;
    }

    public HttpClient Client(string? key = HomeKey)
    {
        var client = new HttpClient { BaseAddress = BaseAddress };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client;
    }

    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
