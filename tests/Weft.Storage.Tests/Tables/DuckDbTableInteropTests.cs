using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet.Tests;
using Xunit;

namespace Weft.Storage.Tests.Tables;

/// <summary>
/// DuckDB (tests/interop/duckdb.mjs) reads the Parquet files of a table Weft wrote, with the Hive
/// partition directories as columns, and finds the rows Weft reads back.
/// </summary>
public sealed class DuckDbTableInteropTests : IDisposable
{
    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new("event_id", WeftType.String, Nullable: false),
        new("user_id", WeftType.Int64, Nullable: false),
        new("event_time", WeftType.Timestamp, Nullable: false),
        new("dwell_ms", WeftType.Int32),
        new("score", WeftType.Float64),
        new("weight", WeftType.Float32),
        new("clicked", WeftType.Bool),
        new("surface", WeftType.String),
        new("embedding", WeftType.ListOf(ScalarKind.Float32)),
        new("item_ids", WeftType.ListOf(ScalarKind.Int64), Nullable: false),
        new("tags", WeftType.ListOf(ScalarKind.String)),
        new("seen_at", WeftType.ListOf(ScalarKind.Timestamp)),
    ];

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>
    /// A data file whose column is stored in a type Weft does not read (here an INTERVAL where the table
    /// declares int64, as another writer might leave it) fails the read naming the column: it is not a
    /// file older than the column, whose rows read as nulls.
    /// </summary>
    [Fact]
    public async Task A_data_file_holding_a_declared_column_in_a_type_Weft_does_not_read_fails_the_read_naming_it()
    {
        ImmutableArray<FieldDefinition> schema = [new("id", WeftType.Int64, Nullable: false), new("wait", WeftType.Int64)];
        var table = await EventTable.OpenOrCreateAsync(_directory.Combine("interval"), schema, []);
        await table.AppendAsync(new EventBatch(schema, [new PrimitiveColumn<long>(WeftType.Int64, [1, 2]), new PrimitiveColumn<long>(WeftType.Int64, [5, 6])]), new Dictionary<string, string?>());
        var file = Path.Combine(table.Path, (await table.Log.GetSnapshotAsync()).Files().Single().Path);
        await DuckDb.RunAsync($"COPY (SELECT i::BIGINT AS id, to_days(i::INTEGER) AS wait FROM range(1, 3) t(i)) TO {DuckDb.Quote(file)} (FORMAT parquet)");

        var read = async () =>
        {
            await foreach (var _ in table.ReadAsync(["id", "wait"]))
            {
            }
        };

        (await read.Should().ThrowAsync<Exception>()).Which.Message.Should().Contain("column 'wait' cannot be read").And.Contain("INTERVAL");
    }

    /// <summary>
    /// A DECIMAL where the table declares float64 (another writer's choice for a score) reads as the
    /// doubles it holds.
    /// </summary>
    [Fact]
    public async Task A_data_file_holding_a_float64_column_as_a_DECIMAL_reads_its_values_as_doubles()
    {
        ImmutableArray<FieldDefinition> schema = [new("id", WeftType.Int64, Nullable: false), new("score", WeftType.Float64)];
        var table = await EventTable.OpenOrCreateAsync(_directory.Combine("decimal"), schema, []);
        await table.AppendAsync(new EventBatch(schema, [new PrimitiveColumn<long>(WeftType.Int64, [1, 2]), new PrimitiveColumn<double>(WeftType.Float64, [0.25, 9.0])]), new Dictionary<string, string?>());
        var file = Path.Combine(table.Path, (await table.Log.GetSnapshotAsync()).Files().Single().Path);
        await DuckDb.RunAsync($"COPY (SELECT i::BIGINT AS id, (i * 0.1)::DECIMAL(10, 2) AS score FROM range(1, 3) t(i)) TO {DuckDb.Quote(file)} (FORMAT parquet)");

        var batches = await EventData.ReadAllAsync(table.ReadAsync(["id", "score"]));

        batches.SelectMany(b => ((PrimitiveColumn<double>)b["score"]).Values.ToArray()).Should().Equal(0.1, 0.2);
    }

    [Fact]
    public async Task DuckDB_reads_the_files_of_a_table_Weft_wrote_and_finds_the_same_rows()
    {
        var path = _directory.Combine("enriched", "signal");
        var table = await EventTable.OpenOrCreateAsync(path, Schema, EventLayout.PartitionColumns, new EventTableOptions { RowGroupSize = 64 });
        await table.AppendAsync(EventData.Random(Schema, 400, 31, "s", finiteOnly: true), EventPartitioner.ByTimeBucket(TimeBucket.Hour, EventLayout.StreamPath));
        await table.AppendAsync(EventData.Random(Schema, 150, 32, "b", finiteOnly: true), EventPartitioner.ByTimeBucket(TimeBucket.Hour, EventLayout.BatchPath));

        await AssertDuckDbReadsWhatWeftReadsAsync(table, 550);
    }

    [Fact]
    public async Task DuckDB_reads_the_files_a_table_writer_built_a_row_group_at_a_time()
    {
        var path = _directory.Combine("enriched", "signal");
        var table = await EventTable.OpenOrCreateAsync(path, Schema, EventLayout.PartitionColumns);
        await using (var writer = table.OpenWriter(EventPartitioner.ByTimeBucket(TimeBucket.Hour, EventLayout.StreamPath), rowGroupSize: 64))
        {
            for (var i = 0; i < 5; i++)
            {
                writer.Add(EventData.Random(Schema, 90, 40 + i, $"w{i}-", finiteOnly: true));
            }

            await writer.CommitAsync(null);
        }

        await AssertDuckDbReadsWhatWeftReadsAsync(table, 450);
    }

    [Fact]
    public async Task The_DuckDB_statement_for_an_empty_table_reads_no_rows_with_the_columns_DuckDB_finds_in_a_written_one()
    {
        var empty = await EventTable.OpenOrCreateAsync(_directory.Combine("empty"), Schema, []);
        var written = await EventTable.OpenOrCreateAsync(_directory.Combine("written"), Schema, []);
        await written.AppendAsync(EventData.Random(Schema, 20, 33, "w", finiteOnly: true), new Dictionary<string, string?>());

        string emptyQuery = DeltaTableFormatter.DuckDbQuery(await empty.Log.GetSnapshotAsync());
        string writtenQuery = DeltaTableFormatter.DuckDbQuery(await written.Log.GetSnapshotAsync());
        var results = await DuckDb.RunAsync(
            $"SELECT count(*) FROM ({emptyQuery.Split(';')[0]})",
            $"DESCRIBE {emptyQuery.Split(';')[0]}",
            $"DESCRIBE {writtenQuery.TrimEnd(';')}");

        results[0].Rows[0][0].ToString().Should().Be("0");
        string Columns(DuckResult r) => string.Join(", ", r.Rows.Select(row => $"{row[0]} {row[1]}"));
        Columns(results[1]).Should().Be(Columns(results[2]));
    }

    /// <summary>DuckDB reads every row Weft reads from the table, and the per-file row counts of its log.</summary>
    private static async Task AssertDuckDbReadsWhatWeftReadsAsync(EventTable table, int rowCount)
    {
        var path = table.Path;
        var weft = await EventData.ReadAllAsync(table.ReadAsync());
        var expected = EventBatch.Concat(weft[0].Schema, weft);
        var order = Enumerable.Range(0, expected.RowCount)
            .OrderBy(r => (string)expected["event_id"].GetValue(r)!, StringComparer.Ordinal).ToArray();
        expected = expected.Gather(order);

        var glob = DuckDb.Quote(path + "/**/*.parquet");
        var results = await DuckDb.RunAsync(
            $"SELECT * FROM read_parquet({glob}, hive_partitioning = true, hive_types_autocast = false) ORDER BY event_id",
            $"SELECT bucket, path, count(*) AS n FROM read_parquet({glob}, hive_partitioning = true, hive_types_autocast = false) GROUP BY ALL ORDER BY ALL");

        var duck = results[0];
        duck.Columns.Should().BeEquivalentTo([.. Schema.Select(f => f.Name), "bucket", "path"]);
        duck.Rows.Should().HaveCount(rowCount);
        for (var row = 0; row < expected.RowCount; row++)
        {
            foreach (var field in expected.Schema)
            {
                var actual = duck.Rows[row][duck.Index(field.Name)];
                AssertSame(field.Type, expected[field.Name].GetValue(row), actual, $"row {row} ({expected["event_id"].GetValue(row)}) column '{field.Name}'");
            }
        }

        var counts = results[1].Rows.Select(r => (r[0].GetString(), r[1].GetString(), long.Parse(r[2].GetString()!, CultureInfo.InvariantCulture))).ToList();
        var snapshot = await table.Log.GetSnapshotAsync();
        counts.Should().BeEquivalentTo(snapshot.Files().Select(f => (f.PartitionValues["bucket"], f.PartitionValues["path"], f.NumRecords!.Value)));
    }

    private static void AssertSame(WeftType type, object? expected, JsonElement actual, string where)
    {
        if (expected is null)
        {
            actual.ValueKind.Should().Be(JsonValueKind.Null, where);
            return;
        }

        if (type.IsList)
        {
            actual.ValueKind.Should().Be(JsonValueKind.Array, where);
            var items = ((System.Collections.IEnumerable)expected).Cast<object>().ToList();
            var duckItems = actual.EnumerateArray().ToList();
            duckItems.Should().HaveCount(items.Count, where);
            for (var i = 0; i < items.Count; i++)
            {
                AssertSame(type.Element, items[i] switch { int n => (long)n, float f => (double)f, var v => v }, duckItems[i], $"{where}[{i}]");
            }

            return;
        }

        switch (type.Kind)
        {
            case ScalarKind.String:
                actual.GetString().Should().Be((string)expected, where);
                break;
            case ScalarKind.Bool:
                actual.GetBoolean().Should().Be((bool)expected, where);
                break;
            case ScalarKind.Int32 or ScalarKind.Int64 or ScalarKind.Timestamp:
                var number = actual.ValueKind == JsonValueKind.String
                    ? long.Parse(actual.GetString()!, CultureInfo.InvariantCulture)
                    : actual.GetInt64();
                number.Should().Be((long)expected, where);
                break;
            case ScalarKind.Float32:
                ((float)actual.GetDouble()).Should().Be((float)(double)expected, where);
                break;
            case ScalarKind.Float64:
                actual.GetDouble().Should().Be((double)expected, where);
                break;
        }
    }
}
