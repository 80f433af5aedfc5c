using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FluentAssertions;
using Weft.Parquet.Tests;
using Weft.Storage.Tests.Tables;
using Xunit;

namespace Weft.Storage.Tests;

/// <summary>
/// Tables another engine keeps with column mapping (Databricks turns it on to rename or drop a column
/// without rewriting data): the data files, partition values and statistics name each column by its
/// physical name, the schema by its display name. Here a column once called <c>a</c> was renamed
/// <c>b</c> and a new column <c>a</c> added, so a reader going by display names reads the wrong column.
/// The files are DuckDB's, written with the physical names; the log is the test's JSON.
/// </summary>
public sealed class ColumnMappingTests : IDisposable
{
    private const string IdPhysical = "col-1d0a7c52-6b1e-4e0f-9a57-3f7b1f0c2d11";
    private const string NewAPhysical = "col-9f3e21aa-0c4d-4a8b-8f55-7d2e6c1b9e02";
    private const string CountryPhysical = "col-77c0de21-5b9a-4c3e-a1f0-2e8d4b6a9c33";
    private const string CtxPhysical = "col-c7a1d5e0-1f2b-4c3d-9e8f-0a1b2c3d4e5f";
    private const string DevicePhysical = "col-de71ce00-aaaa-4bbb-8ccc-dddddddddddd";
    
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>
    /// Three files in two partitions, the oldest written before the new column <c>a</c> existed: every
    /// column, a partition filter, and a range on <c>id</c> whose statistics (keyed by physical names)
    /// rule out a whole file read as DuckDB reads the files under their physical names. Under the legacy
    /// protocol (reader 2, writer 5) and under table features (reader 3 with <c>columnMapping</c>).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_table_with_renamed_columns_reads_each_column_by_its_physical_name(bool legacyProtocol)
    {
        var path = _directory.Combine(legacyProtocol ? "legacy" : "features");
        Directory.CreateDirectory(Path.Combine(path, "_delta_log"));
        var files = new (string Name, string Country, long First, int Rows, bool HasNewA)[]
        {
            ("aa/part-00000-old.parquet", "de", 0, 3_000, false),
            ("bb/part-00001.parquet", "de", 3_000, 2_500, true),
            ("cc/part-00002.parquet", "fr", 10_000, 4_000, true),
        };
        var statements = files.Select(f =>
            $"COPY (SELECT i AS \"{IdPhysical}\", i * 10 AS a{(f.HasNewA ? $", 'v' || i AS \"{NewAPhysical}\"" : "")}, {{'{DevicePhysical}': 'd' || (i % 7)}} AS \"{CtxPhysical}\" FROM range({f.First}, {f.First + f.Rows}) t(i)) "
            + $"TO {DuckDb.Quote(Path.Combine(path, f.Name))} (FORMAT parquet, ROW_GROUP_SIZE 1000)").ToList();
        foreach (var f in files)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(path, f.Name))!);
        }

        await DuckDb.RunAsync([.. statements]);

        var lines = new List<JsonObject> { Protocol(legacyProtocol), Metadata("name") };
        lines.AddRange(files.Select(f => Add(path, f.Name, f.Country, f.First, f.Rows)));
        await TestTables.WriteRawLogAsync(path, 0, [.. lines]);

        var table = await EventTable.OpenAsync(path);
        table.Schema.Select(f => f.Name).Should().Equal("id", "b", "a", "ctx.device");

        (await RowsAsync(table.ReadAsync())).Should().Equal(await DuckDbRowsAsync(path, files, _ => true, null));

        var german = await RowsAsync(table.ReadAsync(partitions: PartitionFilter.All.Equal("country", "de")));
        german.Should().Equal(await DuckDbRowsAsync(path, files, f => f.Country == "de", null));

        var before = table.ReadStatistics;
        var ranged = await RowsAsync(table.ReadAsync(range: new ColumnRange("id", 2_000, 4_000)));
        ranged.Should().Equal(await DuckDbRowsAsync(path, files, _ => true, (2_000, 4_000)));
        (table.ReadStatistics - before).FilesSkipped.Should().Be(1, "the French file's id statistics, keyed by the physical name, start at 10,000");

        DeltaTableFormatter.Ls(await table.Log.GetSnapshotAsync()).Count(l => l.Contains(" country=de ", StringComparison.Ordinal)).Should().Be(2);
        var duckdb = async () => DeltaTableFormatter.DuckDbQuery(await table.Log.GetSnapshotAsync());
        (await duckdb.Should().ThrowAsync<NotSupportedException>()).WithMessage("*physical names*delta_scan*");
    }

    /// <summary>
    /// Mode <c>id</c> (a table converted from Iceberg): each file names its columns as its writer did, and
    /// their Parquet field ids (written by DuckDB's FIELD_IDS) say which schema column each is; an id a
    /// file lacks reads as nulls, partition values and statistics go by physical names, and a file without
    /// field ids fails naming it.
    /// </summary>
    [Fact]
    public async Task Column_mapping_by_field_id_reads_each_file_by_its_ids()
    {
        var path = _directory.Combine("by-id");
        Directory.CreateDirectory(Path.Combine(path, "_delta_log"));
        await DuckDb.RunAsync(
            $"COPY (SELECT i AS p, i * 10 AS q, 'v' || i AS r, {{'t': 'd' || (i % 7)}} AS s FROM range(0, 1500) t(i)) TO {DuckDb.Quote(Path.Combine(path, "f1.parquet"))} "
                + "(FORMAT parquet, ROW_GROUP_SIZE 1000, FIELD_IDS {p: 1, q: 2, r: 3, s: {__duckdb_field_id: 5, t: 6}})",
            $"COPY (SELECT i * 10 AS two, i AS one FROM range(5000, 5600) t(i)) TO {DuckDb.Quote(Path.Combine(path, "f2.parquet"))} (FORMAT parquet, FIELD_IDS {{two: 2, one: 1}})",
            $"COPY (SELECT i AS p FROM range(0, 3) t(i)) TO {DuckDb.Quote(Path.Combine(path, "plain.parquet"))} (FORMAT parquet)");
        await TestTables.WriteRawLogAsync(path, 0, [Protocol(legacy: false), Metadata("id"), Add(path, "f1.parquet", "de", 0, 1500), Add(path, "f2.parquet", "fr", 5000, 600)]);

        var table = await EventTable.OpenAsync(path);
        var rows = await RowsAsync(table.ReadAsync());
        var expected = (await DuckDb.RunAsync(
            $"SELECT p, q, r, s.t, 'de' FROM read_parquet({DuckDb.Quote(Path.Combine(path, "f1.parquet"))}) UNION ALL SELECT one, two, NULL, NULL, 'fr' FROM read_parquet({DuckDb.Quote(Path.Combine(path, "f2.parquet"))})"))[0]
            .Rows.Select(r => $"id={r[0].GetString()}|b={r[1].GetString()}|a={Quoted(r[2])}|ctx.device={Quoted(r[3])}|country=\"{r[4].GetString()}\"|").Order(StringComparer.Ordinal).ToList();

        rows.Should().Equal(expected);
        var before = table.ReadStatistics;
        (await RowsAsync(table.ReadAsync(["id"], range: new ColumnRange("id", 5_100, 5_199)))).Should().HaveCount(100);
        (table.ReadStatistics - before).FilesSkipped.Should().Be(1, "f1's id statistics, keyed by the physical name, end at 1,499");
        (await RowsAsync(table.ReadAsync(["id"], PartitionFilter.All.Equal("country", "fr")))).Should().HaveCount(600);

        await File.AppendAllTextAsync(Path.Combine(path, "_delta_log", "00000000000000000000.json"), Add(path, "plain.parquet", "de", 0, 3).ToJsonString() + "\n");
        var read = async () => await RowsAsync((await EventTable.OpenAsync(path)).ReadAsync());
        (await read.Should().ThrowAsync<DataFileException>()).Which.Message.Should().Contain("plain.parquet").And.Contain("no Parquet field ids");

        static string Quoted(JsonElement value) => value.ValueKind == JsonValueKind.Null ? "null" : "\"" + value.GetString() + "\"";
    }

    /// <summary>
    /// Without the protocol asking for column mapping, the property alone is not in force: files are read
    /// by the schema's names (the protocol: readers honour the mode only at reader 2, or 3 with the feature).
    /// </summary>
    [Fact]
    public async Task A_mode_the_protocol_does_not_enable_is_ignored()
    {
        var path = _directory.Combine("not-enabled");
        Directory.CreateDirectory(path);
        await DuckDb.RunAsync($"COPY (SELECT i AS id, i * 10 AS b, 'v' || i AS a FROM range(0, 10) t(i)) TO {DuckDb.Quote(Path.Combine(path, "f.parquet"))} (FORMAT parquet)");
        var protocol = new JsonObject { ["protocol"] = new JsonObject { ["minReaderVersion"] = 1, ["minWriterVersion"] = 2 } };
        await TestTables.WriteRawLogAsync(path, 0, [protocol, Metadata("name"), Add(path, "f.parquet", "de", 0, 10, physical: false)]);

        var rows = await RowsAsync((await EventTable.OpenAsync(path)).ReadAsync(["id", "b", "a"]));

        rows.Should().BeEquivalentTo(Enumerable.Range(0, 10).Select(i => $"id={i}|b={i * 10}|a=\"v{i}\"|"));
    }

    private static async Task<List<string>> RowsAsync(IAsyncEnumerable<Weft.Engine.EventBatch> batches)
    {
        var read = await EventData.ReadAllAsync(batches);
        return EventData.Rows(read, read.Count == 0 ? [] : read[0].Schema.Select(f => f.Name).ToList());
    }

    private static async Task<List<string>> DuckDbRowsAsync(
        string path, (string Name, string Country, long First, int Rows, bool HasNewA)[] files, Func<(string Name, string Country, long First, int Rows, bool HasNewA), bool> which, (long Low, long High)? range)
    {
        var parts = files.Where(which).Select(f =>
            $"SELECT \"{IdPhysical}\" AS id, a AS b, {(f.HasNewA ? $"\"{NewAPhysical}\"" : "NULL::VARCHAR")} AS a, \"{CtxPhysical}\".\"{DevicePhysical}\" AS device, '{f.Country}' AS country "
            + $"FROM read_parquet({DuckDb.Quote(Path.Combine(path, f.Name))})"
            + (range is { } r ? $" WHERE \"{IdPhysical}\" BETWEEN {r.Low} AND {r.High}" : "")).ToList();
        var result = (await DuckDb.RunAsync(string.Join(" UNION ALL ", parts)))[0];
        var rows = result.Rows.Select(row =>
            $"id={row[0].GetString()}|b={row[1].GetString()}|a={(row[2].ValueKind == JsonValueKind.Null ? "null" : "\"" + row[2].GetString() + "\"")}|ctx.device=\"{row[3].GetString()}\"|country=\"{row[4].GetString()}\"|").ToList();
        rows.Sort(StringComparer.Ordinal);
        return rows;
    }

    private static JsonObject Protocol(bool legacy) => new()
    {
        ["protocol"] = legacy
            ? new JsonObject { ["minReaderVersion"] = 2, ["minWriterVersion"] = 5 }
            : new JsonObject
            {
                ["minReaderVersion"] = 3,
                ["minWriterVersion"] = 7,
                ["readerFeatures"] = new JsonArray("columnMapping", "deletionVectors"),
                ["writerFeatures"] = new JsonArray("columnMapping", "deletionVectors"),
            },
    };

    private static JsonObject Metadata(string mode)
    {
        static JsonObject Field(string name, string type, string physical, int id) => new()
        {
            ["name"] = name,
            ["type"] = type,
            ["nullable"] = true,
            ["metadata"] = new JsonObject { ["delta.columnMapping.id"] = id, ["delta.columnMapping.physicalName"] = physical },
        };

        var schema = new JsonObject
        {
            ["type"] = "struct",
            ["fields"] = new JsonArray(
                Field("id", "long", IdPhysical, 1),
                Field("b", "long", "a", 2), // created as "a", renamed
                Field("a", "string", NewAPhysical, 3), // added after the rename
                Field("country", "string", CountryPhysical, 4),
                new JsonObject
                {
                    ["name"] = "ctx",
                    ["type"] = new JsonObject { ["type"] = "struct", ["fields"] = new JsonArray(Field("device", "string", DevicePhysical, 6)) },
                    ["nullable"] = true,
                    ["metadata"] = new JsonObject { ["delta.columnMapping.id"] = 5, ["delta.columnMapping.physicalName"] = CtxPhysical },
                }),
        };
        return new JsonObject
        {
            ["metaData"] = new JsonObject
            {
                ["id"] = Guid.NewGuid().ToString(),
                ["format"] = new JsonObject { ["provider"] = "parquet", ["options"] = new JsonObject() },
                ["schemaString"] = schema.ToJsonString(),
                ["partitionColumns"] = new JsonArray("country"),
                ["configuration"] = new JsonObject { ["delta.columnMapping.mode"] = mode, ["delta.columnMapping.maxColumnId"] = "4" },
                ["createdTime"] = 1_764_000_000_000L,
            },
        };
    }

    private static JsonObject Add(string path, string file, string country, long first, int rows, bool physical = true)
    {
        string id = physical ? IdPhysical : "id";
        var stats = new JsonObject
        {
            ["numRecords"] = rows,
            ["minValues"] = new JsonObject { [id] = first },
            ["maxValues"] = new JsonObject { [id] = first + rows - 1 },
            ["nullCount"] = new JsonObject { [id] = 0 },
        };
        return new JsonObject
        {
            ["add"] = new JsonObject
            {
                ["path"] = file,
                ["partitionValues"] = new JsonObject { [physical ? CountryPhysical : "country"] = country },
                ["size"] = new FileInfo(Path.Combine(path, file)).Length,
                ["modificationTime"] = 1_764_000_000_000L,
                ["dataChange"] = true,
                ["stats"] = stats.ToJsonString(),
            },
        };
    }
}
