using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Collections.Immutable;
using Weft.Definitions;
using Weft.Engine;
using Weft.Storage;

namespace Weft.Cli;

/// <summary>Options of <c>weft gen</c>.</summary>
internal sealed record GenOptions
{
    public int Events { get; init; } = 100_000;

    public int Users { get; init; } = 5_000;

    public int Items { get; init; } = 2_000;

    public int Days { get; init; } = 7;

    public int Seed { get; init; } = 42;

    /// <summary>Share of events delivered hours after they happened.</summary>
    public double LateRate { get; init; } = 0.03;

    /// <summary>Share of events delivered twice.</summary>
    public double DuplicateRate { get; init; } = 0.01;

    /// <summary>Share of deliveries that are malformed (bad JSON, missing or mistyped fields).</summary>
    public double BadRate { get; init; } = 0.002;

    /// <summary>Share of items whose features get a corrected version later.</summary>
    public double CorrectionRate { get; init; } = 0.05;

    public int EmbeddingDim { get; init; } = 16;

    /// <summary>Most events, users or items one run generates: it holds them all in memory.</summary>
    public const int MaxCount = 10_000_000;

    /// <summary>First day of the generated window (fixed, so the same seed gives the same bytes on any day).</summary>
    public DateTimeOffset Start { get; init; } = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
}

/// <param name="LandingFile">Every delivery as producers sent it, malformed ones included: the stream's input.</param>
/// <param name="EventsTable">The raw archive (Delta table, one bucket per day): the well-formed deliveries, duplicates and late ones included.</param>
/// <param name="ItemsTable">Item feature versions (Delta table).</param>
internal sealed record GenSummary(int Events, int Deliveries, int Late, int Duplicates, int Bad, long Archived, int ItemVersions, int Corrections, string LandingFile, string EventsTable, string ItemsTable);

/// <summary>
/// Writes realistic raw events and item features: power-law users and items, several event types, a
/// diurnal rhythm, late arrivals, duplicate deliveries, a few malformed lines and corrected item
/// versions. Identical bytes for the same options.
/// </summary>
internal static class SyntheticData
{
    private static readonly string[] Surfaces = ["home", "search", "related", "profile", "notifications"];
    private static readonly string[] Words = ["red", "shoes", "kitchen", "ideas", "garden", "summer", "dress", "recipes", "diy", "wedding", "tattoo", "nails", "quotes", "art", "travel", "cake"];

    public static async Task<GenSummary> GenerateAsync(string outDir, GenOptions o, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(outDir);
        var rng = new Random(o.Seed);
        long start = Timestamps.ToMicros(o.Start);
        long span = o.Days * 86_400_000_000L;
        var userSampler = new ZipfSampler(o.Users, 1.1, rng);
        var itemSampler = new ZipfSampler(o.Items, 1.05, rng);
        // A hidden user → item-permutation so popular users are not all the lowest ids.
        var userIds = Shuffled(o.Users, rng, 1_000_000);
        var itemIds = Shuffled(o.Items, rng, 500_000);

        var deliveries = new List<(long Ingest, string Line)>(o.Events + (o.Events / 50));
        int late = 0, duplicates = 0, bad = 0;
        for (int i = 0; i < o.Events; i++)
        {
            long user = userIds[userSampler.Next()];
            long eventTime = start + DiurnalOffset(rng, o.Days);
            long ingest = eventTime + rng.NextInt64(200_000, 5_000_000);
            if (rng.NextDouble() < o.LateRate)
            {
                ingest = eventTime + rng.NextInt64(2 * 3_600_000_000L, 30 * 3_600_000_000L);
                late++;
            }

            string id = $"e{o.Seed:x}-{i:x8}";
            double kind = rng.NextDouble();
            var attrs = new StringBuilder();
            string type;
            if (kind < 0.55)
            {
                type = "click";
                attrs.Append(CultureInfo.InvariantCulture, $",\"item_id\":{itemIds[itemSampler.Next()]},\"surface\":\"{Surfaces[rng.Next(Surfaces.Length)]}\"");
                if (rng.NextDouble() < 0.9)
                {
                    attrs.Append(CultureInfo.InvariantCulture, $",\"dwell_ms\":{(int)Math.Exp(rng.NextDouble() * 11)}");
                }
            }
            else if (kind < 0.75)
            {
                type = "save";
                attrs.Append(CultureInfo.InvariantCulture, $",\"item_id\":{itemIds[itemSampler.Next()]},\"board_id\":{rng.Next(1, 50_000)}");
            }
            else if (kind < 0.90)
            {
                type = "search";
                string q = Words[rng.Next(Words.Length)] + (rng.NextDouble() < 0.5 ? " " + Words[rng.Next(Words.Length)] : "");
                attrs.Append(CultureInfo.InvariantCulture, $",\"query\":{JsonSerializer.Serialize(rng.NextDouble() < 0.2 ? q.ToUpperInvariant() : q)},\"surface\":\"search\"");
            }
            else
            {
                type = "impression";
                attrs.Append(CultureInfo.InvariantCulture, $",\"item_id\":{itemIds[itemSampler.Next()]},\"surface\":\"{Surfaces[rng.Next(Surfaces.Length)]}\",\"position\":{rng.Next(0, 50)}");
            }

            string line = $"{{\"event_id\":\"{id}\",\"user_id\":{user},\"event_type\":\"{type}\",\"event_time\":\"{Timestamps.Format(eventTime)}\",\"ingest_time\":\"{Timestamps.Format(ingest)}\"{attrs}}}";
            if (rng.NextDouble() < o.BadRate)
            {
                line = Corrupt(line, rng);
                bad++;
            }

            deliveries.Add((ingest, line));
            if (rng.NextDouble() < o.DuplicateRate)
            {
                // A redelivery: same event, seen again a little later (a retrying producer).
                deliveries.Add((ingest + rng.NextInt64(1_000_000, 600_000_000), line));
                duplicates++;
            }
        }

        // Landing log and archive are in arrival order.
        deliveries.Sort((a, b) => a.Ingest.CompareTo(b.Ingest));
        Directory.CreateDirectory(Path.Combine(outDir, "landing"));
        string landingFile = Path.Combine(outDir, "landing", "events.jsonl");
        await WriteLinesAsync(landingFile, deliveries.Select(d => d.Line), cancellationToken).ConfigureAwait(false);

        // The archive keeps what an ingest job would have accepted: the deliveries that parse.
        var (archive, _) = JsonRows.Read(JsonRows.ReadLines(landingFile), RawArchiveSchema, "gen");
        string eventsTable = Path.Combine(outDir, "events");
        var events = await EventTable.OpenOrCreateAsync(eventsTable, RawArchiveSchema, [EventLayout.BucketColumn], cancellationToken: cancellationToken).ConfigureAwait(false);
        await events.AppendAsync(archive, EventPartitioner.ByTimeBucketOnly(TimeBucket.Day), cancellationToken).ConfigureAwait(false);

        // Item features, with corrected versions part-way through the window.
        var itemLines = new List<string>(o.Items + (int)(o.Items * o.CorrectionRate) + 1);
        int corrections = 0;
        for (int i = 0; i < o.Items; i++)
        {
            long item = itemIds[i];
            itemLines.Add(ItemLine(item, start - 86_400_000_000L, rng, o.EmbeddingDim));
            if (rng.NextDouble() < o.CorrectionRate)
            {
                itemLines.Add(ItemLine(item, start + rng.NextInt64(span), rng, o.EmbeddingDim));
                corrections++;
            }
        }

        var (itemRows, _) = JsonRows.Read(itemLines.Select((l, i) => new RawRecord(Encoding.UTF8.GetBytes(l), $"items:{i + 1}")), ItemSchema, "gen");
        string itemsTable = Path.Combine(outDir, "items");
        var items = await EventTable.OpenOrCreateAsync(itemsTable, ItemSchema, [], cancellationToken: cancellationToken).ConfigureAwait(false);
        await items.AppendAsync(itemRows, EventPartitioner.Single(new Dictionary<string, string?>()), cancellationToken).ConfigureAwait(false);
        return new GenSummary(o.Events, deliveries.Count, late, duplicates, bad, archive.RowCount, itemLines.Count, corrections, landingFile, eventsTable, itemsTable);
    }

    /// <summary>Every attribute of every generated event type, in one table as raw archives hold them.</summary>
    public static readonly ImmutableArray<FieldDefinition> RawArchiveSchema =
    [
        .. StandardColumns.All,
        new("item_id", WeftType.Int64), new("surface", WeftType.String), new("dwell_ms", WeftType.Int32),
        new("board_id", WeftType.Int64), new("query", WeftType.String), new("position", WeftType.Int32),
    ];

    public static readonly ImmutableArray<FieldDefinition> ItemSchema =
    [
        new("item_id", WeftType.Int64, Nullable: false), new("version_time", WeftType.Timestamp, Nullable: false),
        new("category", WeftType.String), new("embedding", WeftType.ListOf(ScalarKind.Float32)),
    ];

    private static string ItemLine(long item, long version, Random rng, int dim)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{{\"item_id\":{item},\"version_time\":\"{Timestamps.Format(version)}\",\"category\":\"c{rng.Next(20):00}\",\"embedding\":[");
        for (int d = 0; d < dim; d++)
        {
            sb.Append(d == 0 ? "" : ",");
            sb.Append(((float)((rng.NextDouble() * 2) - 1)).ToString("R", CultureInfo.InvariantCulture));
        }

        sb.Append("]}");
        return sb.ToString();
    }

    private static string Corrupt(string line, Random rng) => rng.Next(4) switch
    {
        0 => line[..(line.Length / 2)],                                   // truncated JSON
        1 => line.Replace("\"user_id\":", "\"uid\":", StringComparison.Ordinal), // missing user_id
        2 => line.Replace("\"event_time\":\"", "\"event_time\":\"yesterday ", StringComparison.Ordinal), // bad timestamp
        _ => line.Replace("\"item_id\":", "\"item_id\":\"n/a\",\"x\":", StringComparison.Ordinal) is var s && s != line
            ? s
            : line.Replace("\"event_id\":", "\"event_id\":null,\"y\":", StringComparison.Ordinal),
    };

    /// <summary>An offset into the window with more events in the evening than at night.</summary>
    private static long DiurnalOffset(Random rng, int days)
    {
        while (true)
        {
            long offset = rng.NextInt64(days * 86_400_000_000L);
            double hour = (offset % 86_400_000_000L) / 3_600_000_000.0;
            double weight = 0.55 + (0.45 * Math.Sin((hour - 14) / 24 * 2 * Math.PI));
            if (rng.NextDouble() < weight)
            {
                return offset;
            }
        }
    }

    private static long[] Shuffled(int n, Random rng, long baseId)
    {
        var ids = new long[n];
        for (int i = 0; i < n; i++)
        {
            ids[i] = baseId + i;
        }

        rng.Shuffle(ids);
        return ids;
    }

    private static async Task WriteLinesAsync(string path, IEnumerable<string> lines, CancellationToken cancellationToken)
    {
        await using var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 16) { NewLine = "\n" };
        foreach (var line in lines)
        {
            await writer.WriteLineAsync(line.AsMemory(), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Zipf-distributed ranks in [0, n) by inverse CDF over precomputed weights.</summary>
    private sealed class ZipfSampler
    {
        private readonly double[] _cdf;
        private readonly Random _rng;

        public ZipfSampler(int n, double s, Random rng)
        {
            _rng = rng;
            _cdf = new double[n];
            double sum = 0;
            for (int k = 0; k < n; k++)
            {
                sum += 1.0 / Math.Pow(k + 1, s);
                _cdf[k] = sum;
            }

            for (int k = 0; k < n; k++)
            {
                _cdf[k] /= sum;
            }
        }

        public int Next()
        {
            int i = Array.BinarySearch(_cdf, _rng.NextDouble());
            return Math.Min(i < 0 ? ~i : i, _cdf.Length - 1);
        }
    }
}
