using System.Globalization;
using Weft.Parquet;

namespace Weft.Bench.Parquet;

/// <summary>
/// The benchmark's user-event table, generated deterministically from a seed. Every value is a pure
/// function of (seed, row, column), so any row group can be generated on its own and a second
/// process (the verifier) regenerates exactly the same content.
/// </summary>
internal static class EventTable
{
    public const long DefaultSeed = 20251123;

    /// <summary>2025-01-01T00:00:00Z in microseconds since the Unix epoch.</summary>
    public const long StartMicros = 1_735_689_600_000_000;

    /// <summary>Event times advance 259.2 ms per row: 10M rows span 30 days.</summary>
    public const long MicrosPerRow = 259_200;

    public const int Users = 1_000_000;
    public const int Items = 200_000;
    public const int EmbeddingBuckets = 1024;

    public static readonly string[] EventTypes = ["view", "click", "add_to_cart", "purchase"];
    public static readonly string[] Surfaces = ["home", "search", "pdp", "cart", "email"];

    public static readonly ParquetSchema Schema = new(
    [
        new ParquetField("event_id", ParquetType.String, Nullable: false),
        new ParquetField("user_id", ParquetType.Int64, Nullable: false),
        new ParquetField("event_type", ParquetType.String, Nullable: false),
        new ParquetField("event_time", ParquetType.TimestampMicros, Nullable: false),
        new ParquetField("ingest_time", ParquetType.TimestampMicros, Nullable: false),
        new ParquetField("item_id", ParquetType.Int64, Nullable: false),
        new ParquetField("surface", ParquetType.String, Nullable: true),
        new ParquetField("dwell_ms", ParquetType.Int32, Nullable: true),
        new ParquetField("embedding_bucket", ParquetType.Int32, Nullable: false),
        new ParquetField("score", ParquetType.Double, Nullable: false),
    ]);

    /// <summary>Generates rows [<paramref name="firstRow"/>, <paramref name="firstRow"/> + <paramref name="rows"/>) as one row group.</summary>
    public static ParquetColumnData[] Generate(long seed, long firstRow, int rows)
    {
        var eventId = new string[rows];
        var userId = new long[rows];
        var eventType = new string[rows];
        var eventTime = new long[rows];
        var ingestTime = new long[rows];
        var itemId = new long[rows];
        var surface = new string?[rows];
        var surfaceNulls = new bool[rows];
        var dwell = new int[rows];
        var dwellNulls = new bool[rows];
        var bucket = new int[rows];
        var score = new double[rows];

        for (var i = 0; i < rows; i++)
        {
            var row = firstRow + i;

            // Unique: Mix is a bijection on 64-bit integers. 'e' + 16 hex digits.
            eventId[i] = EventId(seed, row);

            // Power law over 1M users (inverse transform of u^3: a few users produce most events).
            var u = Uniform(seed, row, 1);
            userId[i] = 1 + (long)(u * u * u * (Users - 1));

            // 4 event types: view 70 %, click 20 %, add_to_cart 7 %, purchase 3 %.
            var t = Uniform(seed, row, 2);
            var type = t < 0.70 ? 0 : t < 0.90 ? 1 : t < 0.97 ? 2 : 3;
            eventType[i] = EventTypes[type];

            // Mostly increasing event time with up to 60 s of jitter; ingestion 0.2 s + an exponential
            // delay (mean 1.5 s), 1 % arrive up to an hour late.
            var time = StartMicros + (row * MicrosPerRow) + (long)(Uniform(seed, row, 3) * 60_000_000);
            eventTime[i] = time;
            var delay = 200_000 + (long)(-Math.Log(1 - Uniform(seed, row, 4)) * 1_500_000);
            if (Uniform(seed, row, 5) < 0.01)
            {
                delay += (long)(Uniform(seed, row, 6) * 3_600_000_000);
            }

            ingestTime[i] = time + delay;

            // 200k items, skewed (u^2).
            var v = Uniform(seed, row, 7);
            itemId[i] = 1 + (long)(v * v * (Items - 1));

            // 5 surfaces (home 40 %, search 25 %, pdp 20 %, cart 10 %, email 5 %) and 10 % nulls.
            if (Uniform(seed, row, 8) < 0.10)
            {
                surfaceNulls[i] = true;
            }
            else
            {
                var s = Uniform(seed, row, 9);
                surface[i] = Surfaces[s < 0.40 ? 0 : s < 0.65 ? 1 : s < 0.85 ? 2 : s < 0.95 ? 3 : 4];
            }

            // Dwell time only for views (30 % nulls); exponential, mean 8 s, capped at 10 min.
            if (type == 0)
            {
                dwell[i] = (int)Math.Min(600_000, -Math.Log(1 - Uniform(seed, row, 10)) * 8_000);
            }
            else
            {
                dwellNulls[i] = true;
            }

            bucket[i] = (int)(Uniform(seed, row, 11) * EmbeddingBuckets);
            score[i] = Uniform(seed, row, 12);
        }

        var f = Schema.Fields;
        return
        [
            ParquetColumnData.FromValues(f[0], eventId),
            ParquetColumnData.FromValues(f[1], userId),
            ParquetColumnData.FromValues(f[2], eventType),
            ParquetColumnData.FromValues(f[3], eventTime),
            ParquetColumnData.FromValues(f[4], ingestTime),
            ParquetColumnData.FromValues(f[5], itemId),
            ParquetColumnData.FromValues(f[6], surface, surfaceNulls),
            ParquetColumnData.FromValues(f[7], dwell, dwellNulls),
            ParquetColumnData.FromValues(f[8], bucket),
            ParquetColumnData.FromValues(f[9], score),
        ];
    }

    /// <summary>Row groups of <paramref name="rowGroupSize"/> rows (the last one shorter) covering <paramref name="rows"/> rows.</summary>
    public static List<ParquetColumnData[]> GenerateTable(long seed, long rows, int rowGroupSize)
    {
        var groups = new List<ParquetColumnData[]>();
        for (long first = 0; first < rows; first += rowGroupSize)
        {
            groups.Add(Generate(seed, first, (int)Math.Min(rowGroupSize, rows - first)));
        }

        return groups;
    }

    /// <summary>The PLAIN-encoded size of the values (strings: 4 + UTF-8 bytes; nulls take nothing): the "logical MB" of throughput figures.</summary>
    public static long LogicalBytes(IReadOnlyList<ParquetColumnData[]> groups)
    {
        long total = 0;
        foreach (var group in groups)
        {
            foreach (var column in group)
            {
                total += column.Values switch
                {
                    string?[] strings => StringBytes(strings),
                    long[] longs => 8L * NonNull(column, longs.Length),
                    double[] doubles => 8L * NonNull(column, doubles.Length),
                    int[] ints => 4L * NonNull(column, ints.Length),
                    _ => throw new InvalidOperationException($"Unexpected column type {column.Values.GetType()}."),
                };
            }
        }

        return total;

        static long StringBytes(string?[] strings)
        {
            long bytes = 0;
            foreach (var s in strings)
            {
                if (s is not null)
                {
                    bytes += 4 + System.Text.Encoding.UTF8.GetByteCount(s);
                }
            }

            return bytes;
        }

        static long NonNull(ParquetColumnData column, int length)
        {
            if (column.Nulls is not { } nulls)
            {
                return length;
            }

            long n = 0;
            foreach (var isNull in nulls)
            {
                n += isNull ? 0 : 1;
            }

            return n;
        }
    }

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
}
