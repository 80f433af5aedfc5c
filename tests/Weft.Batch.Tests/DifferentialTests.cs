using System.Globalization;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Parquet.Tests;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary>
/// Differential tests: sequences and training sets computed by Weft's batch path (executors, merge,
/// selection) equal those DuckDB computes with plain SQL over the same raw events and item table —
/// filter, join the item version, dedup by event_id, order by event_time desc then event_id asc, keep
/// the first N inside the lookback.
/// </summary>
public sealed class DifferentialTests
{
    // A correction is a whole new version: arg_max_null keeps its nulls (plain arg_max would skip them).
    // What the signal's executors do, in SQL: clicks with dwell_ms null or >= 500, and saves.
    // The signal's filter, plus the parser's rule that an event_time more than a day after its supplied
    // ingest_time is a dead letter (the world's producers sometimes stamp ingest_time by a slow clock).
    private const string Filtered = "(event_type = 'save' OR (event_type = 'click' AND (dwell_ms IS NULL OR dwell_ms >= 500)))"
        + " AND epoch_us(event_time) - epoch_us(ingest_time) <= 86400000000";

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(4, true)]
    public async Task Snapshots_equal_DuckDB_SQL_over_the_same_inputs(int seed, bool cutByIngest)
    {
        using var world = await BatchWorld.CreateAsync(seed, slowProducerClocks: true);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + 3 * BatchWorld.Day), null, CancellationToken.None);

        long asOf = BatchWorld.Start + 2 * BatchWorld.Day + 7 * BatchWorld.Hour;
        long knownAt = cutByIngest ? asOf - 5 * BatchWorld.Hour : long.MaxValue;
        var lake = await EnrichedLake.OpenAsync(world.Config.EnrichedTable("engagement"), env.Definition, CancellationToken.None);
        var rows = await lake.ReadAsync(long.MinValue / 2, long.MaxValue / 2, CancellationToken.None);
        var cut = SequenceCut.For(env.Definition, asOf, knownAt);
        var weft = SequenceBuilder.Snapshot(rows, env.Definition, cut);

        long lookback = 2 * BatchWorld.Day;
        var sql = $"""
            WITH raw AS (SELECT * FROM read_parquet({DuckDb.Quote(world.RawPath + "/**/*.parquet")})),
            items AS (SELECT item_id, arg_max_null(category, version_time) AS category, arg_max_null(embedding, version_time) AS embedding
                      FROM read_parquet({DuckDb.Quote(world.ItemsPath + "/**/*.parquet")}) GROUP BY item_id),
            c AS (SELECT * FROM raw WHERE {Filtered}
                  AND epoch_us(event_time) <= {asOf} AND epoch_us(event_time) > {asOf - lookback} AND epoch_us(ingest_time) <= {knownAt}),
            d AS (SELECT * FROM c QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY event_time DESC, ingest_time ASC) = 1),
            e AS (SELECT d.*, items.category, items.embedding FROM d LEFT JOIN items USING (item_id)),
            r AS (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY event_time DESC, event_id ASC) AS k FROM e)
            SELECT user_id, list(event_id ORDER BY k), list(item_id ORDER BY k), list(dwell_ms ORDER BY k), list(category ORDER BY k),
                   list(embedding ORDER BY k), max(k) > {cut.MaxLength} AS truncated
            FROM r GROUP BY user_id HAVING min(k) <= {cut.MaxLength} ORDER BY user_id
            """;
        var duck = (await DuckDb.RunAsync(sql))[0];

        var expected = duck.Rows.Select(r => (User: long.Parse(r[0].GetString()!, CultureInfo.InvariantCulture), Elements: DuckElements(r, cut.MaxLength), Truncated: r[6].GetBoolean())).ToList();
        var actual = Enumerable.Range(0, weft.RowCount).Select(i => (User: (long)weft.Keys[StandardColumns.UserId].GetValue(i)!, Elements: WeftElements(weft, i), Truncated: weft.Truncated[i])).ToList();

        expected.Should().NotBeEmpty("the test data must produce sequences");
        actual.Select(a => a.User).Should().Equal(expected.Select(e => e.User));
        for (int i = 0; i < expected.Count; i++)
        {
            actual[i].Elements.Should().Equal(expected[i].Elements, $"user {expected[i].User}'s sequence");
            actual[i].Truncated.Should().Be(expected[i].Truncated, $"user {expected[i].User}'s truncation flag");
        }
    }

    [Theory]
    [InlineData(11, "corrected")]
    [InlineData(12, "corrected")]
    [InlineData(13, "as-served")]
    [InlineData(14, "as-served")]
    public async Task Training_sets_equal_DuckDB_SQL_in_both_modes(int seed, string mode)
    {
        using var world = await BatchWorld.CreateAsync(seed, events: 500, slowProducerClocks: true);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + 3 * BatchWorld.Day), null, CancellationToken.None);

        var rng = new Random(seed);
        var labels = Enumerable.Range(0, 40).Select(i => (Id: (long)i, User: (long)rng.Next(1, 13), Time: BatchWorld.Start + (long)(rng.NextDouble() * 3.5 * BatchWorld.Day))).ToList();
        var lake = await EnrichedLake.OpenAsync(world.Config.EnrichedTable("engagement"), env.Definition, CancellationToken.None);
        var rows = await lake.ReadAsync(long.MinValue / 2, long.MaxValue / 2, CancellationToken.None);
        var keys = new EventBatch([new FieldDefinition("label_id", WeftType.Int64)], [new PrimitiveColumn<long>(WeftType.Int64, labels.Select(l => l.Id).ToArray())]);
        bool asServed = mode == "as-served";
        var weft = SequenceBuilder.ForLabels(rows, env.Definition, keys, labels.Select(l => l.User).ToArray(), labels.Select(l => l.Time).ToArray(), asServed, env.Enrichments);

        long lookback = 2 * BatchWorld.Day;
        string values = string.Join(", ", labels.Select(l => $"({l.Id}, {l.User}, {l.Time})"));
        var sql = $"""
            WITH raw AS (SELECT * FROM read_parquet({DuckDb.Quote(world.RawPath + "/**/*.parquet")})),
            versions AS (SELECT * FROM read_parquet({DuckDb.Quote(world.ItemsPath + "/**/*.parquet")})),
            labels(label_id, user_id, label_time) AS (VALUES {values}),
            c AS (SELECT l.label_id, l.label_time, raw.* FROM labels l JOIN raw ON raw.user_id = l.user_id
                  WHERE {Filtered} AND epoch_us(raw.event_time) < l.label_time AND epoch_us(raw.event_time) > l.label_time - {lookback}
                  {(asServed ? "AND epoch_us(raw.ingest_time) <= l.label_time" : "")}),
            d AS (SELECT * FROM c QUALIFY row_number() OVER (PARTITION BY label_id, event_id ORDER BY event_time DESC, ingest_time ASC) = 1),
            e AS (SELECT d.*,
                    (SELECT arg_max_null(v.category, v.version_time) FROM versions v WHERE v.item_id = d.item_id {(asServed ? "AND epoch_us(v.version_time) <= d.label_time" : "")}) AS category,
                    (SELECT arg_max_null(v.embedding, v.version_time) FROM versions v WHERE v.item_id = d.item_id {(asServed ? "AND epoch_us(v.version_time) <= d.label_time" : "")}) AS embedding
                  FROM d),
            r AS (SELECT *, row_number() OVER (PARTITION BY label_id ORDER BY event_time DESC, event_id ASC) AS k FROM e)
            SELECT l.label_id, list(event_id ORDER BY k) FILTER (WHERE k <= 8), list(item_id ORDER BY k) FILTER (WHERE k <= 8),
                   list(dwell_ms ORDER BY k) FILTER (WHERE k <= 8), list(category ORDER BY k) FILTER (WHERE k <= 8),
                   list(embedding ORDER BY k) FILTER (WHERE k <= 8), coalesce(max(k) > 8, false)
            FROM labels l LEFT JOIN r USING (label_id) GROUP BY l.label_id ORDER BY l.label_id
            """;
        var duck = (await DuckDb.RunAsync(sql))[0];

        duck.Rows.Should().HaveCount(labels.Count);
        int nonEmpty = 0;
        for (int i = 0; i < labels.Count; i++)
        {
            var expected = DuckElements(duck.Rows[i], 8);
            var actual = WeftElements(weft, i);
            nonEmpty += expected.Count > 0 ? 1 : 0;
            actual.Should().Equal(expected, $"label {i} (user {labels[i].User} at {BatchWorld.Iso(labels[i].Time)})");
            weft.Truncated[i].Should().Be(duck.Rows[i][6].GetBoolean(), $"label {i}'s truncation flag");
        }

        nonEmpty.Should().BeGreaterThan(10, "most labels must see a sequence, or the test proves little");
    }

    /// <summary>"event_id|item_id|dwell_ms|category|embedding" per element, from a DuckDB result row.</summary>
    private static List<string> DuckElements(JsonElement[] row, int max)
    {
        if (row[1].ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        var ids = row[1].EnumerateArray().ToList();
        var result = new List<string>();
        for (int k = 0; k < Math.Min(max, ids.Count); k++)
        {
            var item = row[2][k];
            var dwell = row[3][k];
            var category = row[4][k];
            var embedding = row[5][k];
            result.Add(string.Join('|',
                ids[k].GetString(),
                item.ValueKind == JsonValueKind.Null ? "-" : item.GetString(),
                dwell.ValueKind == JsonValueKind.Null ? "-" : dwell.GetRawText(),
                category.ValueKind == JsonValueKind.Null ? "-" : category.GetString(),
                embedding.ValueKind == JsonValueKind.Null ? "-" : string.Join(",", embedding.EnumerateArray().Select(v => Float(v.ValueKind == JsonValueKind.String ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetDouble())))));
        }

        return result;
    }

    /// <summary>A float as text, with -0 and 0 the same (equal as numbers; DuckDB normalises one of them).</summary>
    private static string Float(double value) => ((float)value == 0 ? 0f : (float)value).ToString("R", CultureInfo.InvariantCulture);

    private static List<string> WeftElements(SequenceTable table, int row)
    {
        var e = table.Elements;
        var result = new List<string>();
        for (int k = table.Offsets[row]; k < table.Offsets[row + 1]; k++)
        {
            var embedding = (float[]?)e["embedding"].GetValue(k);
            result.Add(string.Join('|',
                (string)e[StandardColumns.EventId].GetValue(k)!,
                e["item_id"].GetValue(k)?.ToString() ?? "-",
                e["dwell_ms"].GetValue(k)?.ToString() ?? "-",
                (string?)e["category"].GetValue(k) ?? "-",
                embedding is null ? "-" : string.Join(",", embedding.Select(v => Float(v)))));
        }

        return result;
    }
}
