using System.Collections.Immutable;
using System.Globalization;
using Weft.Definitions;
using Weft.Parquet;
using static Weft.Definitions.Expr;

namespace Weft.Bench.Batch;

/// <summary>
/// The benchmark's inputs, generated deterministically from a seed: every value is a pure function of
/// (seed, row, column), so row groups are generated independently (in parallel) and any run with the
/// same arguments writes the same files.
/// <list type="bullet">
/// <item><c>events.parquet</c>: event_id (string), user_id (int64, power-law over the users: the busiest
/// user has about 5 % of all events), event_type (click 60 %, save 25 %, search 15 %), event_time (uniform
/// over 30 days), ingest_time (1–5 s later; 5 % arrive up to 20 h late), item_id (int64, power-law over
/// the items; null for searches), dwell_ms (int32, clicks only, 20 % null). About 1 % of rows are
/// repeated deliveries of an earlier event (same event_id, 1–4 h later ingest).</item>
/// <item><c>items.parquet</c>: item_id, version_time, embedding (list&lt;float&gt; of 16), category (50
/// values). 1 % of the items have a second, corrected version; the last 10 item ids are missing, so
/// their events join nothing.</item>
/// </list>
/// </summary>
internal static class DataSet
{
    public const long DefaultSeed = 20261130;

    /// <summary>2026-01-01T00:00:00Z in microseconds.</summary>
    public const long StartMicros = 1_767_225_600_000_000;

    public const long DayMicros = 86_400_000_000;

    public const long SpanMicros = 30 * DayMicros;

    public const int EmbeddingWidth = 16;

    public const int MaxLength = 500;

    public const int MissingItems = 10;

    public const int RowGroupRows = 1 << 20;

    public static readonly ParquetSchema EventSchema = new(
    [
        new ParquetField("event_id", ParquetType.String, Nullable: false),
        new ParquetField("user_id", ParquetType.Int64, Nullable: false),
        new ParquetField("event_type", ParquetType.String, Nullable: false),
        new ParquetField("event_time", ParquetType.TimestampMicros, Nullable: false),
        new ParquetField("ingest_time", ParquetType.TimestampMicros, Nullable: false),
        new ParquetField("item_id", ParquetType.Int64, Nullable: true),
        new ParquetField("dwell_ms", ParquetType.Int32, Nullable: true),
    ]);

    public static readonly ParquetSchema ItemSchema = new(
    [
        new ParquetField("item_id", ParquetType.Int64, Nullable: false),
        new ParquetField("version_time", ParquetType.TimestampMicros, Nullable: false),
        new ParquetField("embedding", ParquetType.Float, Nullable: true, IsList: true),
        new ParquetField("category", ParquetType.String, Nullable: true),
    ]);

    private static readonly string[] Types = ["click", "save", "search"];

    /// <summary>The signal both sides compute: clicks with dwell_ms null or at least 500 ms, and saves; last 500; items joined.</summary>
    public static SignalDefinition Signal()
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32);
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        var items = weft.EnrichmentSource("items", key: "item_id", keyType: WeftType.Int64)
            .Column("embedding", WeftType.ListOf(ScalarKind.Float32)).Column("category", WeftType.String);
        weft.Signal("engagement", tenant: "bench")
            .Include(click, c => c.Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500))
            .Include(save)
            .Enrich(items, on: "item_id", "embedding", "category")
            .Element("item_id", "dwell_ms", "embedding", "category")
            .MaxLength(MaxLength).Lookback(TimeSpan.FromDays(365)).Bucket(TimeBucket.Day).LateAllowance(TimeSpan.FromDays(1));
        return weft.Build().Single();
    }

    /// <summary>The sequences are cut as of 32 days after the start: every event and every late delivery is in.</summary>
    public static long AsOfMicros => StartMicros + SpanMicros + (2 * DayMicros);

    /// <summary>One row group of events: rows [<paramref name="first"/>, first + <paramref name="count"/>).</summary>
    public static ParquetColumnData[] Events(long seed, long first, int count, int users, int items)
    {
        var ids = new string?[count];
        var userIds = new long[count];
        var types = new string?[count];
        var times = new long[count];
        var ingest = new long[count];
        var itemIds = new long[count];
        bool[]? itemNulls = null;
        var dwell = new int[count];
        bool[]? dwellNulls = null;
        for (var i = 0; i < count; i++)
        {
            var e = Event(seed, first + i, users, items);
            ids[i] = e.Id;
            userIds[i] = e.User;
            types[i] = Types[e.Type];
            times[i] = e.Time;
            ingest[i] = e.Ingest;
            if (e.Item is { } item)
            {
                itemIds[i] = item;
            }
            else
            {
                (itemNulls ??= new bool[count])[i] = true;
            }

            if (e.Dwell is { } d)
            {
                dwell[i] = d;
            }
            else
            {
                (dwellNulls ??= new bool[count])[i] = true;
            }
        }

        var f = EventSchema.Fields;
        return
        [
            ParquetColumnData.Create(f[0], ids), ParquetColumnData.FromValues(f[1], userIds), ParquetColumnData.Create(f[2], types),
            ParquetColumnData.FromValues(f[3], times), ParquetColumnData.FromValues(f[4], ingest),
            ParquetColumnData.FromValues(f[5], itemIds, itemNulls), ParquetColumnData.FromValues(f[6], dwell, dwellNulls),
        ];
    }

    /// <summary>Every version of every item (one row group).</summary>
    public static ParquetColumnData[] Items(long seed, int items)
    {
        var ids = new List<long>();
        var versions = new List<long>();
        var embeddings = new List<float[]?>();
        var categories = new List<string?>();
        for (long item = 1; item <= items - MissingItems; item++)
        {
            int versionCount = Uniform(seed, item, 20) < 0.01 ? 2 : 1;
            long at = StartMicros - (30 * DayMicros) + (long)(Uniform(seed, item, 21) * 10 * DayMicros);
            for (int v = 0; v < versionCount; v++)
            {
                ids.Add(item);
                versions.Add(at + (v * 5 * DayMicros));
                var embedding = new float[EmbeddingWidth];
                for (int k = 0; k < embedding.Length; k++)
                {
                    embedding[k] = (float)((Uniform(seed, (item * 64) + (v * 32) + k, 22) * 2) - 1);
                }

                embeddings.Add(embedding);
                categories.Add(string.Create(CultureInfo.InvariantCulture, $"cat-{(int)(Uniform(seed, (item * 2) + v, 23) * 50):00}"));
            }
        }

        var f = ItemSchema.Fields;
        return
        [
            ParquetColumnData.FromValues(f[0], ids.ToArray()), ParquetColumnData.FromValues(f[1], versions.ToArray()),
            ParquetColumnData.FromLists(f[2], embeddings), ParquetColumnData.FromStrings(f[3], categories),
        ];
    }

    internal readonly record struct RawEvent(string Id, long User, int Type, long Time, long Ingest, long? Item, int? Dwell);

    /// <summary>Row <paramref name="row"/>: an original event, or (1 %) a repeated delivery of one of the 1,000 rows before it.</summary>
    internal static RawEvent Event(long seed, long row, int users, int items)
    {
        if (row >= 1000 && Uniform(seed, row, 9) < 0.01)
        {
            var original = Event(seed, row - 1 - (long)(Uniform(seed, row, 10) * 1000), users, items);
            return original with { Ingest = original.Ingest + 3_600_000_000L + (long)(Uniform(seed, row, 11) * 3 * 3_600_000_000L) };
        }

        double t = Uniform(seed, row, 0);
        int type = t < 0.60 ? 0 : t < 0.85 ? 1 : 2;
        long user = Permute(PowerLaw(Uniform(seed, row, 1), users), users) + 1;
        long time = StartMicros + (long)(Uniform(seed, row, 2) * SpanMicros);
        long ingest = time + (Uniform(seed, row, 3) < 0.05
            ? (long)(Uniform(seed, row, 4) * 20 * 3_600_000_000L)
            : 1_000_000 + (long)(Uniform(seed, row, 4) * 4_000_000));
        long? item = type == 2 ? null : Permute(PowerLaw(Uniform(seed, row, 5), items), items) + 1;
        int? dwell = type == 0 && Uniform(seed, row, 6) < 0.8 ? (int)(Uniform(seed, row, 7) * 20_000) : null;
        return new RawEvent(EventId(seed, row), user, type, time, ingest, item, dwell);
    }

    /// <summary>A rank in [0, n) with P(rank &lt; k) = log(k + 1) / log(n + 1): rank 0 takes about 1 / log2(n + 1) of the draws.</summary>
    private static long PowerLaw(double u, int n) => Math.Min(n - 1, (long)Math.Pow(n + 1, u) - 1);

    /// <summary>A bijection of [0, n) (n has no prime factor other than 2, 3, 5 and 7 in practice; the multiplier is a large prime).</summary>
    private static long Permute(long rank, int n) => (rank * 1_000_003L % n + 12_345) % n;

    private static string EventId(long seed, long row) =>
        string.Create(17, Mix((ulong)(row ^ seed)), static (span, id) =>
        {
            span[0] = 'e';
            id.TryFormat(span[1..], out _, "x16", CultureInfo.InvariantCulture);
        });

    /// <summary>A uniform double in [0, 1) from (seed, row, column).</summary>
    private static double Uniform(long seed, long row, int column) =>
        (Mix(Mix((ulong)seed + (ulong)column) ^ (ulong)row) >> 11) * (1.0 / (1UL << 53));

    /// <summary>SplitMix64's finaliser: a bijection on 64-bit integers.</summary>
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public static ImmutableArray<string> EventTypes => [.. Types];
}
