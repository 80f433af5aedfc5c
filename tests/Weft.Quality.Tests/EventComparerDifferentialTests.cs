using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet.Tests;
using Weft.Storage;
using Xunit;

namespace Weft.Quality.Tests;

/// <summary>
/// The comparer against DuckDB SQL: random reference and candidate sides (shared ids, repeats, values
/// perturbed a little or a lot, nulls, NaN and infinities, lists) are written as Parquet, and every count
/// the comparer reports is computed again by a query over the same files.
/// </summary>
public sealed class EventComparerDifferentialTests : IDisposable
{
    private const double ScoreTolerance = 0.01;

    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new(StandardColumns.EventId, WeftType.String, Nullable: false),
        new(StandardColumns.UserId, WeftType.Int64, Nullable: false),
        new(StandardColumns.EventType, WeftType.String, Nullable: false),
        new(StandardColumns.EventTime, WeftType.Timestamp, Nullable: false),
        new(StandardColumns.IngestTime, WeftType.Timestamp, Nullable: false),
        new("score", WeftType.Float64),
        new("count", WeftType.Int32),
        new("tag", WeftType.String),
        new("emb", WeftType.ListOf(ScalarKind.Float32)),
        new("flag", WeftType.Bool),
    ];

    private static readonly string[] Compared = ["user_id", "event_type", "event_time", "score", "count", "tag", "emb", "flag"];

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Every_count_matches_DuckDB_over_random_sides()
    {
        var cases = new List<(ComparisonResult Result, string Reference, string Candidate)>();
        for (int seed = 1; seed <= 24; seed++)
        {
            var random = new Random(seed);
            var (reference, candidate) = Sides(random, rows: random.Next(0, 160));
            var comparer = new EventComparer(Schema, Schema, new ComparisonOptions
            {
                Tolerances = new Dictionary<string, Tolerance> { ["score"] = new(ScoreTolerance, 0) },
            });
            comparer.Compare(reference, candidate);
            cases.Add((comparer.Result(), await WriteAsync(reference, $"r{seed}"), await WriteAsync(candidate, $"c{seed}")));
        }

        var statements = cases.SelectMany(c => (string[])[TypesSql(c.Reference, c.Candidate), UsersSql(c.Reference, c.Candidate)]).ToArray();
        var results = await DuckDb.RunAsync(statements);
        for (int i = 0; i < cases.Count; i++)
        {
            var (result, _, _) = cases[i];
            var types = results[2 * i];
            var byType = result.EventTypes.ToDictionary(t => t.EventType);
            byType.Keys.Should().BeEquivalentTo(types.Rows.Select(r => r[0].GetString()), $"case {i + 1}: the event types");
            foreach (var row in types.Rows)
            {
                var t = byType[row[0].GetString()!];
                long Col(string name) => long.Parse(row[types.Index(name)].ToString(), CultureInfo.InvariantCulture);
                var because = $"case {i + 1}, event type {t.EventType}";
                t.ReferenceRows.Should().Be(Col("reference_rows"), because);
                t.CandidateRows.Should().Be(Col("candidate_rows"), because);
                t.Matched.Should().Be(Col("matched"), because);
                t.ReferenceOnly.Should().Be(Col("reference_only"), because);
                t.CandidateOnly.Should().Be(Col("candidate_only"), because);
                t.ReferenceDuplicates.Should().Be(Col("reference_duplicates"), because);
                t.CandidateDuplicates.Should().Be(Col("candidate_duplicates"), because);
                foreach (var column in Compared)
                {
                    var agreement = t.Columns.Single(c => c.Column == column);
                    agreement.Compared.Should().Be(t.Matched, because);
                    agreement.Agreed.Should().Be(Col("agree_" + column), $"{because}, column {column}");
                }
            }

            var users = results[(2 * i) + 1].Rows.Single();
            long U(int k) => long.Parse(users[k].ToString(), CultureInfo.InvariantCulture);
            result.Sequences.Should().Be(new SequenceAgreement(U(0), U(0) - U(1), U(0) - U(2)), $"case {i + 1}: users, ids agree, fully agree");
            result.Total.Matched.Should().Be(result.EventTypes.Sum(t => t.Matched));
        }
    }

    private static (EventBatch Reference, EventBatch Candidate) Sides(Random random, int rows)
    {
        var reference = new List<Row>();
        int pool = Math.Max(1, rows);
        for (int i = 0; i < rows; i++)
        {
            reference.Add(RandomRow(random, $"e{random.Next(pool)}"));
        }

        var candidate = new List<Row>();
        foreach (var row in reference)
        {
            if (random.NextDouble() < 0.8)
            {
                candidate.Add(Perturb(random, row));
            }
        }

        int extra = random.Next(0, 1 + (rows / 5));
        for (int i = 0; i < extra; i++)
        {
            // Candidate-only ids, and now and then a repeat of an id already taken.
            candidate.Add(random.Next(4) == 0 && candidate.Count > 0
                ? Perturb(random, candidate[random.Next(candidate.Count)])
                : RandomRow(random, $"x{random.Next(pool)}"));
        }

        Shuffle(random, candidate);
        return (Batch(reference), Batch(candidate));
    }

    private sealed record Row(string Id, long User, string Type, long Time, double? Score, int? Count, string? Tag, float[]? Emb, bool? Flag);

    private static Row RandomRow(Random random, string id) => new(
        id,
        random.Next(1, 12),
        random.Next(3) switch { 0 => "click", 1 => "save", _ => "view" },
        1_700_000_000_000_000L + (random.Next(1000) * 1_000_000L),
        random.Next(10) switch { 0 => null, 1 => double.NaN, 2 => double.PositiveInfinity, _ => Math.Round(random.NextDouble() * 10, 3) },
        random.Next(6) == 0 ? null : random.Next(5),
        random.Next(6) == 0 ? null : "t" + random.Next(4),
        random.Next(6) == 0 ? null : [.. Enumerable.Range(0, random.Next(0, 4)).Select(_ => (float)random.Next(3))],
        random.Next(6) == 0 ? null : random.Next(2) == 0);

    /// <summary>The same event as the candidate might hold it: mostly equal, each value changed now and then.</summary>
    private static Row Perturb(Random random, Row row)
    {
        bool Change() => random.Next(8) == 0;
        return row with
        {
            User = Change() ? row.User + 1 : row.User,
            Type = Change() ? "view" : row.Type,
            Time = Change() ? row.Time + 1 : row.Time, // one microsecond: exact, never within a tolerance
            Score = random.Next(6) switch
            {
                0 => row.Score + (ScoreTolerance / 2), // within the tolerance
                1 => row.Score + 1,                    // beyond it
                2 => random.Next(2) == 0 ? null : double.NaN,
                _ => row.Score,
            },
            Count = Change() ? (row.Count is null ? 1 : null) : row.Count,
            Tag = Change() ? row.Tag + "!" : row.Tag,
            Emb = Change() ? (row.Emb is null ? [] : [.. row.Emb, 1f]) : row.Emb,
            Flag = Change() ? !(row.Flag ?? false) : row.Flag,
        };
    }

    private static void Shuffle<T>(Random random, List<T> list)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }

    private static EventBatch Batch(List<Row> rows)
    {
        int n = rows.Count;
        return new EventBatch(Schema,
        [
            new StringColumn([.. rows.Select(r => (string?)r.Id)]),
            new PrimitiveColumn<long>(WeftType.Int64, [.. rows.Select(r => r.User)]),
            new StringColumn([.. rows.Select(r => (string?)r.Type)]),
            new PrimitiveColumn<long>(WeftType.Timestamp, [.. rows.Select(r => r.Time)]),
            new PrimitiveColumn<long>(WeftType.Timestamp, [.. rows.Select((r, i) => r.Time + i)]), // ingest_time: differs, never compared
            new PrimitiveColumn<double>(WeftType.Float64, [.. rows.Select(r => r.Score ?? 0)], [.. rows.Select(r => r.Score is null)]),
            new PrimitiveColumn<int>(WeftType.Int32, [.. rows.Select(r => r.Count ?? 0)], [.. rows.Select(r => r.Count is null)]),
            new StringColumn([.. rows.Select(r => r.Tag)]),
            new ListColumn<float>(WeftType.ListOf(ScalarKind.Float32), [.. rows.Select(r => r.Emb)]),
            new PrimitiveColumn<bool>(WeftType.Bool, [.. rows.Select(r => r.Flag ?? false)], [.. rows.Select(r => r.Flag is null)]),
        ]);
    }

    private async Task<string> WriteAsync(EventBatch batch, string name)
    {
        if (batch.RowCount == 0)
        {
            return "";
        }

        var table = await EventTable.OpenOrCreateAsync(_dir.File(name), Schema, []);
        await table.AppendAsync(batch, EventPartitioner.Single(new Dictionary<string, string?>()));
        var snapshot = await table.Log.GetSnapshotAsync();
        var files = snapshot.Files();
        files.Should().HaveCountLessThanOrEqualTo(1, "one file keeps the rows in the order the comparer saw them");
        return files.Count == 0 ? "" : snapshot.FullPath(files[0]);
    }

    private static string Read(string file) => file.Length == 0
        ? "(SELECT NULL::VARCHAR AS event_id, NULL::BIGINT AS user_id, NULL::VARCHAR AS event_type, NULL::TIMESTAMP AS event_time, NULL::DOUBLE AS score, NULL::INTEGER AS count, NULL::VARCHAR AS tag, NULL::FLOAT[] AS emb, NULL::BOOLEAN AS flag, 0::BIGINT AS file_row_number WHERE false)"
        : $"read_parquet({DuckDb.Quote(file)}, file_row_number = true)";

    /// <summary>Both sides numbered within each id (first occurrence = 1), and the matched pairs with one agreement flag per column.</summary>
    private static string SidesSql(string reference, string candidate) => $"""
        WITH r AS (SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY file_row_number) AS k FROM {Read(reference)}),
             c AS (SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY file_row_number) AS k FROM {Read(candidate)}),
             r1 AS (SELECT * FROM r WHERE k = 1),
             c1 AS (SELECT * FROM c WHERE k = 1),
             m AS (
               SELECT r1.event_type AS t, r1.user_id AS ru, c1.user_id AS cu,
                      r1.user_id = c1.user_id AS agree_user_id,
                      r1.event_type = c1.event_type AS agree_event_type,
                      r1.event_time = c1.event_time AS agree_event_time,
                      coalesce(r1.score IS NOT DISTINCT FROM c1.score OR abs(r1.score - c1.score) <= {ScoreTolerance.ToString(CultureInfo.InvariantCulture)}, false) AS agree_score,
                      r1.count IS NOT DISTINCT FROM c1.count AS agree_count,
                      r1.tag IS NOT DISTINCT FROM c1.tag AS agree_tag,
                      r1.emb IS NOT DISTINCT FROM c1.emb AS agree_emb,
                      r1.flag IS NOT DISTINCT FROM c1.flag AS agree_flag
               FROM r1 JOIN c1 USING (event_id))
        """;

    private static string TypesSql(string reference, string candidate) => SidesSql(reference, candidate) + $"""
        , types AS (SELECT event_type AS t FROM r UNION SELECT event_type FROM c)
        SELECT types.t AS event_type,
          (SELECT count(*) FROM r WHERE r.event_type = types.t) AS reference_rows,
          (SELECT count(*) FROM m WHERE m.t = types.t)
            + (SELECT count(*) FROM c WHERE c.event_type = types.t AND c.k > 1)
            + (SELECT count(*) FROM c1 WHERE c1.event_type = types.t AND c1.event_id NOT IN (SELECT event_id FROM r1)) AS candidate_rows,
          (SELECT count(*) FROM m WHERE m.t = types.t) AS matched,
          (SELECT count(*) FROM r1 WHERE r1.event_type = types.t AND r1.event_id NOT IN (SELECT event_id FROM c1)) AS reference_only,
          (SELECT count(*) FROM c1 WHERE c1.event_type = types.t AND c1.event_id NOT IN (SELECT event_id FROM r1)) AS candidate_only,
          (SELECT count(*) FROM r WHERE r.event_type = types.t AND r.k > 1) AS reference_duplicates,
          (SELECT count(*) FROM c WHERE c.event_type = types.t AND c.k > 1) AS candidate_duplicates,
          {string.Join(",\n  ", Compared.Select(col => $"(SELECT count(*) FROM m WHERE m.t = types.t AND m.agree_{col}) AS agree_{col}"))}
        FROM types ORDER BY 1
        """;

    /// <summary>Users on either side; those whose events differ (ids, user or time); those with any difference.</summary>
    private static string UsersSql(string reference, string candidate) => SidesSql(reference, candidate) + $"""
        , ids_differ AS (
            SELECT user_id AS u FROM r1 WHERE event_id NOT IN (SELECT event_id FROM c1)
            UNION SELECT user_id FROM c1 WHERE event_id NOT IN (SELECT event_id FROM r1)
            UNION SELECT ru FROM m WHERE NOT (agree_user_id AND agree_event_time)
            UNION SELECT cu FROM m WHERE NOT (agree_user_id AND agree_event_time)),
          any_differ AS (
            SELECT u FROM ids_differ
            UNION SELECT ru FROM m WHERE NOT ({string.Join(" AND ", Compared.Select(col => "agree_" + col))})
            UNION SELECT cu FROM m WHERE NOT ({string.Join(" AND ", Compared.Select(col => "agree_" + col))}))
        SELECT (SELECT count(*) FROM (SELECT user_id FROM r UNION SELECT user_id FROM c)),
               (SELECT count(*) FROM ids_differ),
               (SELECT count(*) FROM any_differ)
        """;
}
