using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Quality;
using Weft.Storage;

namespace Weft.Bench.Quality;

/// <summary>
/// <c>Weft.Bench.Quality --dir D [--events N] [--buckets B] [--runs K]</c>: writes an enriched table at
/// D/enriched with N events in B hourly buckets on the batch path and what a stream with typical faults
/// would have written on the stream path (0.5 % of events missing, 1 % with a stale category, 1 % with an
/// embedding off by 1e-3, 0.2 % delivered twice, 0.1 % only in the stream), then times K runs of the
/// comparison <c>weft quality</c> makes (<see cref="StreamBatchQuality.CompareAsync"/>) and writes the
/// times and the counts it found to D/weft.json, for bench/quality/run.sh to set beside DuckDB's.
/// </summary>
internal static class Program
{
    private const int Dimensions = 8;

    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        .. StandardColumns.All.Where(f => f.Name != StandardColumns.Tenant),
        new("item_id", WeftType.Int64, Nullable: false),
        new("surface", WeftType.String),
        new("dwell_ms", WeftType.Int32),
        new("embedding", WeftType.ListOf(ScalarKind.Float32)),
        new("category", WeftType.String),
    ];

    public static async Task<int> Main(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            options[args[i].TrimStart('-')] = args[i + 1];
        }

        if (!options.TryGetValue("dir", out var dir))
        {
            await Console.Error.WriteLineAsync("usage: Weft.Bench.Quality --dir D [--events N] [--buckets B] [--runs K]").ConfigureAwait(false);
            return 2;
        }

        int events = int.Parse(options.GetValueOrDefault("events", "1000000"), CultureInfo.InvariantCulture);
        int buckets = int.Parse(options.GetValueOrDefault("buckets", "168"), CultureInfo.InvariantCulture);
        int runs = int.Parse(options.GetValueOrDefault("runs", "5"), CultureInfo.InvariantCulture);
        string enriched = Path.Combine(dir, "enriched");
        await WriteTableAsync(enriched, events, buckets).ConfigureAwait(false);

        var times = new List<double>();
        QualityReport? report = null;
        for (int run = 0; run < runs + 1; run++)
        {
            var clock = Stopwatch.StartNew();
            report = await StreamBatchQuality.CompareAsync(enriched, Path.Combine(dir, "no-ledger"), "bench", "", new QualityRequest()).ConfigureAwait(false);
            if (run > 0)
            {
                times.Add(clock.Elapsed.TotalMilliseconds); // the first run warms the JIT and the page cache
            }
        }

        var types = new JsonArray();
        foreach (var t in report!.Comparison.EventTypes)
        {
            var row = new JsonObject
            {
                ["event_type"] = t.EventType,
                ["reference_rows"] = t.ReferenceRows,
                ["candidate_rows"] = t.CandidateRows,
                ["matched"] = t.Matched,
                ["reference_only"] = t.ReferenceOnly,
                ["candidate_only"] = t.CandidateOnly,
                ["reference_duplicates"] = t.ReferenceDuplicates,
                ["candidate_duplicates"] = t.CandidateDuplicates,
            };
            foreach (var c in t.Columns)
            {
                row["agree_" + c.Column] = c.Agreed;
            }

            types.Add(row);
        }

        var s = report.Comparison.Sequences;
        var result = new JsonObject
        {
            ["events"] = events,
            ["buckets"] = buckets,
            ["compare_ms"] = new JsonArray([.. times.Select(t => JsonValue.Create(t))]),
            ["types"] = types,
            ["users"] = s.Users,
            ["users_ids_agree"] = s.IdsAgree,
            ["users_fully_agree"] = s.FullyAgree,
            ["columns"] = new JsonArray([.. report.Comparison.ComparedColumns.Select(c => JsonValue.Create(c))]),
        };
        await File.WriteAllTextAsync(Path.Combine(dir, "weft.json"), result.ToJsonString()).ConfigureAwait(false);
        return 0;
    }

    private static async Task WriteTableAsync(string path, int events, int buckets)
    {
        var table = await EventTable.OpenOrCreateAsync(path, Schema, EventLayout.PartitionColumns).ConfigureAwait(false);
        var random = new Random(42);
        long start = Timestamps.ToMicros(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
        const long Hour = 3_600_000_000L;
        long next = 0;
        for (int b = 0; b < buckets; b++)
        {
            int n = (events / buckets) + (b < events % buckets ? 1 : 0);
            long bucketStart = start + (b * Hour);
            var reference = new List<Row>(n);
            for (int i = 0; i < n; i++)
            {
                float[] embedding = new float[Dimensions];
                for (int d = 0; d < Dimensions; d++)
                {
                    embedding[d] = (float)Math.Round(random.NextDouble(), 3);
                }

                reference.Add(new Row(
                    $"evt-{next++:D9}",
                    random.Next(1, 50_000),
                    random.Next(10) < 6 ? "click" : "save",
                    bucketStart + (long)(random.NextDouble() * (Hour - 1)),
                    random.Next(1, 200_000),
                    random.Next(5) == 0 ? null : "s" + random.Next(8),
                    random.Next(4) == 0 ? null : random.Next(60_000),
                    embedding,
                    "c" + random.Next(40)));
            }

            var candidate = new List<Row>(n + (n / 100));
            foreach (var row in reference)
            {
                double fate = random.NextDouble();
                if (fate < 0.005)
                {
                    continue; // missing from the stream
                }

                var copy = fate < 0.015 ? row with { Category = row.Category + "-stale" }
                    : fate < 0.025 ? row with { Embedding = [.. row.Embedding.Select((x, d) => d == 0 ? x + 0.001f : x)] }
                    : row;
                candidate.Add(copy);
                if (random.NextDouble() < 0.002)
                {
                    candidate.Add(copy); // delivered twice
                }

                if (random.NextDouble() < 0.001)
                {
                    candidate.Add(copy with { Id = "stream-" + copy.Id }); // only in the stream
                }
            }

            string bucket = TimeBuckets.Format(bucketStart, TimeBucket.Hour);
            // The batch path's bucket, sealed as a batch run seals it: weft quality compares sealed buckets
            // only. Read once the stream's copies were there (their ingest time), so none arrived after it.
            var sealing = new Dictionary<string, string>
            {
                [LakeParameters.Path] = EventLayout.BatchPath,
                [LakeParameters.Sealed] = bucket,
                [LakeParameters.ReadAt] = (bucketStart + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
            await table.AppendAsync(Batch(reference, bucketStart), EventPartitioner.Single(EventLayout.Partition(bucket, EventLayout.BatchPath)), sealing).ConfigureAwait(false);
            await table.AppendAsync(Batch(candidate, bucketStart + 1), EventPartitioner.Single(EventLayout.Partition(bucket, EventLayout.StreamPath))).ConfigureAwait(false);
        }
    }

    private sealed record Row(string Id, long User, string Type, long Time, long Item, string? Surface, int? Dwell, float[] Embedding, string Category);

    private static EventBatch Batch(List<Row> rows, long ingest) => new(Schema,
    [
        new StringColumn([.. rows.Select(r => (string?)r.Id)]),
        new PrimitiveColumn<long>(WeftType.Int64, [.. rows.Select(r => r.User)]),
        new StringColumn([.. rows.Select(r => (string?)r.Type)]),
        new PrimitiveColumn<long>(WeftType.Timestamp, [.. rows.Select(r => r.Time)]),
        new PrimitiveColumn<long>(WeftType.Timestamp, [.. rows.Select(_ => ingest)]),
        new PrimitiveColumn<long>(WeftType.Int64, [.. rows.Select(r => r.Item)]),
        new StringColumn([.. rows.Select(r => r.Surface)]),
        new PrimitiveColumn<int>(WeftType.Int32, [.. rows.Select(r => r.Dwell ?? 0)], [.. rows.Select(r => r.Dwell is null)]),
        new ListColumn<float>(WeftType.ListOf(ScalarKind.Float32), [.. rows.Select(r => (float[]?)r.Embedding)]),
        new StringColumn([.. rows.Select(r => (string?)r.Category)]),
    ]);
}
