using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet.Tests;
using Weft.Storage.Tests.Tables;
using Xunit;

namespace Weft.Storage.Tests;

/// <summary>
/// A warehouse's Delta table holds types beyond Weft's own: decimals, narrow integers, dates,
/// timestamps without time zone, structs, maps and binary. The first are read through a conversion (as
/// Weft's Parquet reader reads them in a plain folder), a struct's fields by their dotted paths; the rest
/// are skipped unless a read asks for one, which then fails naming its type, where before any of them
/// made the whole table unreadable. The data file is DuckDB's; the expected values are DuckDB's reading.
/// </summary>
public sealed class ForeignTypesTests : IDisposable
{
    private const string Schema = """
        {"type":"struct","fields":[
          {"name":"id","type":"long","nullable":true,"metadata":{}},
          {"name":"price","type":"decimal(10,2)","nullable":true,"metadata":{}},
          {"name":"qty","type":"short","nullable":true,"metadata":{}},
          {"name":"flag","type":"byte","nullable":true,"metadata":{}},
          {"name":"local","type":"timestamp_ntz","nullable":true,"metadata":{}},
          {"name":"day","type":"date","nullable":true,"metadata":{}},
          {"name":"ctx","type":{"type":"struct","fields":[{"name":"device","type":"string","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
          {"name":"attrs","type":{"type":"map","keyType":"string","valueType":"long","valueContainsNull":true},"nullable":true,"metadata":{}},
          {"name":"avatar","type":"binary","nullable":true,"metadata":{}},
          {"name":"payload","type":"variant","nullable":true,"metadata":{}},
          {"name":"region","type":"string","nullable":true,"metadata":{}}
        ]}
        """;

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Converted_types_read_as_DuckDB_reads_them_and_the_others_are_skipped_unless_asked_for()
    {
        var path = await WriteTableAsync("warehouse", new JsonObject
        {
            ["minReaderVersion"] = 3,
            ["minWriterVersion"] = 7,
            ["readerFeatures"] = new JsonArray("timestampNtz", "variantType"),
            ["writerFeatures"] = new JsonArray("timestampNtz", "variantType"),
        });

        var table = await EventTable.OpenAsync(path);

        table.Schema.Select(f => (f.Name, f.Type)).Should().Equal(
            ("id", WeftType.Int64), ("price", WeftType.Float64), ("qty", WeftType.Int32), ("flag", WeftType.Int32),
            ("local", WeftType.Timestamp), ("day", WeftType.Timestamp), ("ctx.device", WeftType.String));
        table.TypeNotRead("ctx").Should().Be("a struct (its fields read as ctx.device)");
        table.TypeNotRead("attrs").Should().Be("map<…>");
        table.TypeNotRead("avatar").Should().Be("binary");
        table.TypeNotRead("payload").Should().Be("variant");
        table.TypeNotRead("price").Should().BeNull();

        var rows = new List<string>();
        foreach (var batch in await EventData.ReadAllAsync(table.ReadAsync(["id", "price", "qty", "flag", "local", "day", "ctx.device", "region"])))
        {
            for (int r = 0; r < batch.RowCount; r++)
            {
                rows.Add(string.Join('|', batch.Schema.Select(f => f.Name == "price" && batch[f.Name].GetValue(r) is double price
                    ? Math.Round(price * 100).ToString(CultureInfo.InvariantCulture)
                    : EventData.Show(batch[f.Name].GetValue(r)))));
            }
        }

        var duck = (await DuckDb.RunAsync(
            $"SELECT id, CAST(price * 100 AS BIGINT), qty, flag, epoch_us(local), epoch_us(CAST(day AS TIMESTAMP)), '\"' || ctx.device || '\"' FROM read_parquet({DuckDb.Quote(Path.Combine(path, "part-0.parquet"))})"))[0];
        var expected = duck.Rows.Select(row => string.Join('|', row.Select(v => v.ValueKind == System.Text.Json.JsonValueKind.Null ? "null" : v.ToString())) + "|\"eu\"").ToList();
        rows.Should().BeEquivalentTo(expected);
        rows.Should().HaveCount(200).And.Contain(r => r.EndsWith("|\"eu\"", StringComparison.Ordinal));

        var asked = async () => await EventData.ReadAllAsync(table.ReadAsync(["id", "attrs"]));
        (await asked.Should().ThrowAsync<NotSupportedException>()).WithMessage("*column 'attrs' is map<…>, which Weft does not read*");
        var struct_ = async () => await EventData.ReadAllAsync(table.ReadAsync(["ctx"]));
        (await struct_.Should().ThrowAsync<NotSupportedException>()).WithMessage("*column 'ctx' is a struct (its fields read as ctx.device)*");

        DeltaTableFormatter.Ls(await table.Log.GetSnapshotAsync()).Should().Contain(l => l.StartsWith("schema ", StringComparison.Ordinal)
            && l.Contains("price: decimal(10,2) (read as double)", StringComparison.Ordinal) && l.Contains("attrs: map<…> (not read)", StringComparison.Ordinal)
            && l.Contains("ctx.device: string", StringComparison.Ordinal));
    }

    /// <summary>
    /// At writer protocol 2 nothing in the protocol stops a write, but a file Weft wrote would hold a
    /// double where the table declares a decimal, and lack the struct: Weft refuses, naming the column.
    /// </summary>
    [Fact]
    public async Task A_table_with_types_Weft_reads_through_a_conversion_is_never_written()
    {
        var path = await WriteTableAsync("legacy", new JsonObject { ["minReaderVersion"] = 1, ["minWriterVersion"] = 2 });
        var table = await DeltaTable.OpenAsync(path);

        var commit = () => table.CommitAsync(TestTables.Append(TestTables.WriteFile(path, "2026-11-23T10", "stream")));

        (await commit.Should().ThrowAsync<DeltaLogException>()).WithMessage("*column 'attrs' is map<…>, which Weft does not read or write*");
        Directory.GetFiles(Path.Combine(path, "_delta_log"), "*.json").Should().HaveCount(1);
    }

    /// <summary>
    /// Delta type widening (reader feature typeWidening): files written before a column was widened keep
    /// the narrower type, and read as the wider one (int as long, float and int as double), a range on the
    /// widened column included. A file whose type does not widen fails naming it and the column.
    /// </summary>
    [Fact]
    public async Task Files_written_before_a_column_was_widened_read_as_the_wider_type()
    {
        var path = _directory.Combine("widened");
        Directory.CreateDirectory(Path.Combine(path, "_delta_log"));
        await DuckDb.RunAsync(
            $"COPY (SELECT i::INTEGER AS qty, (i / 4.0)::FLOAT AS ratio, i::INTEGER AS n FROM range(0, 100) t(i)) TO {DuckDb.Quote(Path.Combine(path, "old.parquet"))} (FORMAT parquet, ROW_GROUP_SIZE 2048)",
            $"COPY (SELECT (i * 100000000000)::BIGINT AS qty, (i / 3.0)::DOUBLE AS ratio, (i + 0.5)::DOUBLE AS n FROM range(100, 150) t(i)) TO {DuckDb.Quote(Path.Combine(path, "new.parquet"))} (FORMAT parquet)",
            $"COPY (SELECT 'x' || i AS qty, 1.0::DOUBLE AS ratio, 1.0::DOUBLE AS n FROM range(0, 3) t(i)) TO {DuckDb.Quote(Path.Combine(path, "bad.parquet"))} (FORMAT parquet)");
        const string schema = """{"type":"struct","fields":[{"name":"qty","type":"long","nullable":true,"metadata":{"delta.typeChanges":[{"fromType":"integer","toType":"long"}]}},{"name":"ratio","type":"double","nullable":true,"metadata":{}},{"name":"n","type":"double","nullable":true,"metadata":{}}]}""";
        JsonObject Add(string file) => new()
        {
            ["add"] = new JsonObject { ["path"] = file, ["partitionValues"] = new JsonObject(), ["size"] = new FileInfo(Path.Combine(path, file)).Length, ["modificationTime"] = 1_764_000_000_000L, ["dataChange"] = true },
        };
        var protocol = new JsonObject { ["protocol"] = new JsonObject { ["minReaderVersion"] = 3, ["minWriterVersion"] = 7, ["readerFeatures"] = new JsonArray("typeWidening"), ["writerFeatures"] = new JsonArray("typeWidening") } };
        var metadata = new JsonObject { ["metaData"] = new JsonObject { ["id"] = "w", ["format"] = new JsonObject { ["provider"] = "parquet", ["options"] = new JsonObject() }, ["schemaString"] = schema, ["partitionColumns"] = new JsonArray(), ["configuration"] = new JsonObject() } };
        var log = Path.Combine(path, "_delta_log");
        await File.WriteAllTextAsync(Path.Combine(log, "00000000000000000000.json"), string.Concat(new[] { protocol, metadata, Add("old.parquet"), Add("new.parquet") }.Select(l => l.ToJsonString() + "\n")));

        var table = await EventTable.OpenAsync(path);
        var expected = (await DuckDb.RunAsync(
            $"SELECT qty::BIGINT, ratio::DOUBLE, n::DOUBLE FROM read_parquet({DuckDb.Quote(Path.Combine(path, "old.parquet"))}) UNION ALL SELECT qty, ratio, n FROM read_parquet({DuckDb.Quote(Path.Combine(path, "new.parquet"))})"))[0]
            .Rows.Select(r => $"qty={r[0].GetString()}|ratio={EventData.Show(r[1].GetDouble())}|n={EventData.Show(r[2].GetDouble())}|").Order(StringComparer.Ordinal).ToList();

        EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync()), ["qty", "ratio", "n"]).Should().Equal(expected);
        var ranged = EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync(range: new ColumnRange("qty", 50, 10_300_000_000_000))), ["qty"]);
        ranged.Should().HaveCount(50 + 4).And.Contain("qty=99|").And.Contain("qty=10300000000000|").And.NotContain("qty=49|");

        await File.AppendAllTextAsync(Path.Combine(log, "00000000000000000000.json"), Add("bad.parquet").ToJsonString() + "\n");
        var read = async () => await EventData.ReadAllAsync((await EventTable.OpenAsync(path)).ReadAsync());
        (await read.Should().ThrowAsync<DataFileException>()).Which.Message.Should().Contain("bad.parquet").And.Contain("column 'qty' is stored as");
    }

    private async Task<string> WriteTableAsync(string name, JsonObject protocol)
    {
        var path = _directory.Combine(name);
        Directory.CreateDirectory(Path.Combine(path, "_delta_log"));
        var file = Path.Combine(path, "part-0.parquet");
        await DuckDb.RunAsync(
            "COPY (SELECT i AS id, CAST(i * 1.25 - 40 AS DECIMAL(10,2)) AS price, CAST(i - 100 AS SMALLINT) AS qty, CAST(i % 100 AS TINYINT) AS flag, "
            + "TIMESTAMP '2026-11-01 08:00:00' + to_seconds(i * 3601) AS local, DATE '2026-10-01' + CAST(i AS INTEGER) AS day, "
            + "{'device': 'd' || i} AS ctx, MAP {'k': i} AS attrs, CAST('x' AS BLOB) AS avatar "
            + $"FROM range(0, 200) t(i)) TO {DuckDb.Quote(file)} (FORMAT parquet)");
        var metadata = new JsonObject
        {
            ["id"] = Guid.NewGuid().ToString(),
            ["format"] = new JsonObject { ["provider"] = "parquet", ["options"] = new JsonObject() },
            ["schemaString"] = Schema.ReplaceLineEndings(""),
            ["partitionColumns"] = new JsonArray("region"),
            ["configuration"] = new JsonObject(),
        };
        var add = new JsonObject
        {
            ["path"] = "part-0.parquet",
            ["partitionValues"] = new JsonObject { ["region"] = "eu" },
            ["size"] = new FileInfo(file).Length,
            ["modificationTime"] = 1_764_000_000_000L,
            ["dataChange"] = true,
            ["stats"] = "{\"numRecords\":200}",
        };
        var lines = new[] { new JsonObject { ["protocol"] = protocol }, new JsonObject { ["metaData"] = metadata }, new JsonObject { ["add"] = add } };
        await File.WriteAllTextAsync(Path.Combine(path, "_delta_log", "00000000000000000000.json"), string.Concat(lines.Select(l => l.ToJsonString() + "\n")), new UTF8Encoding(false));
        return path;
    }
}
