using System.Globalization;
using System.Text.Json;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Parquet.Format;
using Xunit;

namespace Weft.Parquet.Tests;

/// <summary>
/// Struct and map groups written by Weft (<see cref="ParquetGroup"/>): read back by Weft's reader as the
/// same dotted columns, and by DuckDB as STRUCT and MAP values.
/// </summary>
public sealed class StructAndMapWriteTests
{
    private const ulong Seed = 0x5_7A0C_7E11;

    /// <summary>
    /// Nullable and required structs nested two deep, lists and a nested list inside structs, a nullable map
    /// in a struct, a required map in a required struct, a top-level map.
    /// </summary>
    private static readonly ParquetField[] Fields =
    [
        new("id", ParquetType.Int64, false),
        new("s.a", ParquetType.Int64, true),
        new("s.b.c", ParquetType.String, true),
        new("s.b.d", ParquetType.Double, true),
        new("s.r.x", ParquetType.Int32, true),
        new("s.r.tags", ParquetType.String, true, IsList: true, ElementNullable: true),
        new("s.tags", ParquetType.Int64, true, IsList: true),
        new("s.m.key", ParquetType.String, true, IsList: true),
        new("s.m.value", ParquetType.Int64, true, IsList: true, ElementNullable: true),
        new("s.n", ParquetType.Int32, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
        new("q.z", ParquetType.Int32, false),
        new("q.w", ParquetType.String, true),
        new("q.mm.key", ParquetType.Int32, false, IsList: true),
        new("q.mm.value", ParquetType.String, false, IsList: true),
        new("m.key", ParquetType.String, true, IsList: true),
        new("m.value", ParquetType.String, true, IsList: true, ElementNullable: true),
        new("x", ParquetType.String, true),
    ];

    private static readonly ParquetGroup[] Groups =
    [
        new("s", ParquetGroupKind.Struct, true),
        new("s.b", ParquetGroupKind.Struct, true),
        new("s.r", ParquetGroupKind.Struct, false),
        new("s.m", ParquetGroupKind.Map, true),
        new("q", ParquetGroupKind.Struct, false),
        new("q.mm", ParquetGroupKind.Map, false),
        new("m", ParquetGroupKind.Map, true),
    ];

    private static readonly ParquetSchema Schema = new(Fields, Groups);

    private static readonly string[] Words = ["", "a", "Zürich", "日本語", "tab\tx", "value-1", "value-2", "emoji 😀"];

    /// <summary>The DuckDB expression for each struct, map and leaf, and how to compute it from a model row.</summary>
    private static readonly (string Sql, Func<Row, object?> Expected)[] DuckColumns =
    [
        ("id", r => r.Id),
        ("s IS NULL", r => r.SNull),
        ("s.a", r => r["s.a"]),
        ("s.b IS NULL", r => r.SNull || r.BFlag),
        ("s.b.c", r => r["s.b.c"]),
        ("s.b.d", r => r["s.b.d"]),
        ("s.r IS NULL", r => r.SNull),
        ("s.r.x", r => r["s.r.x"]),
        ("s.r.tags", r => r["s.r.tags"]),
        ("s.tags", r => r["s.tags"]),
        ("s.m IS NULL", r => r["s.m.key"] is null),
        ("map_keys(s.m)", r => r["s.m.key"]),
        ("map_values(s.m)", r => r["s.m.value"]),
        ("s.n", r => r["s.n"]),
        ("q.z", r => r["q.z"]),
        ("q.w", r => r["q.w"]),
        ("map_keys(q.mm)", r => r["q.mm.key"]),
        ("map_values(q.mm)", r => r["q.mm.value"]),
        ("m IS NULL", r => r["m.key"] is null),
        ("map_keys(m)", r => r["m.key"]),
        ("map_values(m)", r => r["m.value"]),
        ("x", r => r["x"]),
    ];

    public sealed record Case(int[] RowGroups, double NullRate, int Seed, bool Dictionary, int PageSize, int Threads)
    {
        public override string ToString() =>
            $"rowGroups=[{string.Join(",", RowGroups)}] nulls={NullRate} seed={Seed} dictionary={Dictionary} page={PageSize} threads={Threads}";
    }

    private static readonly Gen<Case> CaseGen =
        from groups in Gen.Choose(1, 3)
        from sizes in Gen.ArrayOf(Gen.Frequency((4, Gen.Choose(0, 40)), (1, Gen.Choose(4096, 6000))), groups)
        from nullRate in Gen.Elements(0.0, 0.2, 0.5, 0.95)
        from seed in Gen.Choose(0, 1_000_000)
        from dictionary in Gen.Elements(true, false)
        from pageSize in Gen.Elements(64, 1 << 20)
        from threads in Gen.Elements(1, 4)
        select new Case(sizes, nullRate, seed, dictionary, pageSize, threads);

    /// <summary>One row of the model: each field's value in <see cref="TestColumns.ValueAt"/>'s shape, and the struct flags.</summary>
    private sealed class Row(long id)
    {
        public long Id { get; } = id;

        public bool SNull { get; init; }

        /// <summary>The flag given for s.b (it may be set where s is null too).</summary>
        public bool BFlag { get; init; }

        public Dictionary<string, object?> Values { get; } = new(StringComparer.Ordinal);

        public object? this[string field] => Values[field];
    }

    [Fact]
    public void Random_structs_and_maps_read_back_as_written_by_Weft_and_by_DuckDB()
    {
        var property = Prop.ForAll(CaseGen.ToArbitrary(), RoundTripsAsync);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(14).WithReplay(Seed, 0x9E3779B97F4A7C15), property);
    }

    private static async Task RoundTripsAsync(Case c)
    {
        var rng = new Random(c.Seed);
        var options = new ParquetWriterOptions { UseDictionary = c.Dictionary, DataPageSize = c.PageSize, MaxDegreeOfParallelism = c.Threads };
        using var temp = new TempDir();
        var path = temp.File("written.parquet");
        var model = new List<Row>();
        await using (var writer = await ParquetFileWriter.CreateAsync(path, Schema, options))
        {
            foreach (var size in c.RowGroups)
            {
                var rows = Enumerable.Range(model.Count, size).Select(i => RandomRow(i, rng, c.NullRate)).ToList();
                model.AddRange(rows);
                var (columns, groupNulls) = Columns(rows);
                await writer.WriteRowGroupAsync(columns, groupNulls);
            }

            await writer.CompleteAsync();
        }

        await using (var reader = await ParquetFileReader.OpenAsync(path))
        {
            reader.UnsupportedColumns.Should().BeEmpty(c.ToString());
            reader.Schema.Fields.Should().Equal(Fields, $"{c}: the reader's dotted columns are the written fields");
            reader.RowGroups.Select(g => g.RowCount).Should().Equal(c.RowGroups.Where(n => n > 0).Select(n => (long)n), c.ToString());
            var read = new List<string>();
            for (var g = 0; g < reader.RowGroups.Count; g++)
            {
                var columns = new ParquetColumnData[Fields.Length];
                for (var f = 0; f < Fields.Length; f++)
                {
                    columns[f] = await reader.ReadColumnAsync(g, Fields[f].Name);
                }

                for (var r = 0; r < columns[0].RowCount; r++)
                {
                    read.Add(string.Join(" | ", columns.Select(col => StructAndMapTests.Canon(TestColumns.ValueAt(col, r)))));
                }
            }

            read.Should().Equal(model.Select(r => string.Join(" | ", Fields.Select(f => StructAndMapTests.Canon(r[f.Name])))), $"{c}: every leaf of every row as written");

            // Statistics of a leaf inside structs: its present values only.
            var offset = 0;
            for (var g = 0; g < reader.RowGroups.Count; g++)
            {
                var rows = model.Skip(offset).Take((int)reader.RowGroups[g].RowCount).ToList();
                offset += rows.Count;
                var present = rows.Select(r => r["s.a"]).OfType<long>().ToList();
                var stats = reader.RowGroups[g]["s.a"];
                stats.NullCount.Should().Be(rows.Count - present.Count, c.ToString());
                stats.Min.Should().Be(present.Count == 0 ? null : present.Min(), c.ToString());
                stats.Max.Should().Be(present.Count == 0 ? null : present.Max(), c.ToString());
            }
        }

        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $"SELECT {string.Join(", ", DuckColumns.Select((d, i) => $"{d.Sql} AS c{i}"))} FROM read_parquet({file}) ORDER BY id");
        results[0].Rows.Select(r => string.Join(" | ", r.Select(v => StructAndMapTests.Canon(v)))).Should().Equal(
            model.Select(r => string.Join(" | ", DuckColumns.Select(d => StructAndMapTests.Canon(d.Expected(r))))),
            $"{c}: DuckDB reads every struct, map and leaf as written");
    }

    private static Row RandomRow(long id, Random rng, double p)
    {
        bool Null() => rng.NextDouble() < p;
        var sNull = Null();
        var bFlag = Null();
        var row = new Row(id) { SNull = sNull, BFlag = bFlag };
        var v = row.Values;
        v["id"] = id;
        v["s.a"] = sNull || Null() ? null : rng.NextInt64(-1_000_000_000_000, 1_000_000_000_000);
        v["s.b.c"] = sNull || bFlag || Null() ? null : Words[rng.Next(Words.Length)];
        v["s.b.d"] = sNull || bFlag || Null() ? null : Math.Round((rng.NextDouble() - 0.5) * 1e6, 3);
        v["s.r.x"] = sNull || Null() ? null : rng.Next(-1000, 1000);
        v["s.r.tags"] = sNull || Null() ? null : List(rng, () => Null() ? null : Words[rng.Next(Words.Length)]);
        v["s.tags"] = sNull || Null() ? null : List(rng, () => (object)rng.NextInt64(-50, 50));
        (v["s.m.key"], v["s.m.value"]) = sNull || Null() ? (null, null) : Map(rng, k => "k" + k, () => Null() ? null : rng.NextInt64(0, 1000));
        v["s.n"] = sNull || Null() ? null : List(rng, () => Null() ? null : List(rng, () => Null() ? null : rng.Next(-9, 9)));
        v["q.z"] = rng.Next(-5, 5);
        v["q.w"] = Null() ? null : Words[rng.Next(Words.Length)];
        (v["q.mm.key"], v["q.mm.value"]) = Map(rng, k => k * 10, () => Words[rng.Next(Words.Length)]);
        (v["m.key"], v["m.value"]) = Null() ? (null, null) : Map(rng, k => "key" + k, () => Null() ? null : Words[rng.Next(Words.Length)]);
        v["x"] = Null() ? null : "x" + id;
        return row;
    }

    private static object?[] List(Random rng, Func<object?> element) =>
        Enumerable.Range(0, rng.Next(4)).Select(_ => element()).ToArray();

    // Keys stay distinct within a map: DuckDB refuses duplicate map keys.
    private static (object?[] Keys, object?[] Values) Map<TKey>(Random rng, Func<int, TKey> key, Func<object?> value)
    {
        var count = rng.Next(4);
        return (Enumerable.Range(0, count).Select(k => (object?)key(k)).ToArray(), Enumerable.Range(0, count).Select(_ => value()).ToArray());
    }

    private static (ParquetColumnData[] Columns, Dictionary<string, bool[]> GroupNulls) Columns(IReadOnlyList<Row> rows)
    {
        var columns = Fields.Select(f => TestColumns.FromRows(f, rows.Select(r => r[f.Name]).ToList())).ToArray();
        var nulls = new Dictionary<string, bool[]>(StringComparer.Ordinal)
        {
            ["s"] = rows.Select(r => r.SNull).ToArray(),
            ["s.b"] = rows.Select(r => r.BFlag).ToArray(),
        };
        return (columns, nulls);
    }

    /// <summary>DuckDB sees structs and maps, not lists of structs: the written layout is the standard one.</summary>
    [Fact]
    public async Task DuckDB_describes_the_groups_as_STRUCT_and_MAP()
    {
        using var temp = new TempDir();
        var path = temp.File("types.parquet");
        await WriteAsync(path, Enumerable.Range(0, 5).Select(i => RandomRow(i, new Random(i), 0.3)).ToList());
        var file = DuckDb.Quote(path);

        var results = await DuckDb.RunAsync(
            $"DESCRIBE SELECT * FROM read_parquet({file})",
            $"SELECT name, repetition_type, converted_type, logical_type, num_children FROM parquet_schema({file})");

        results[0].Rows.Select(r => $"{r[0].GetString()}: {r[1].GetString()}").Should().Equal(
            "id: BIGINT",
            "s: STRUCT(a BIGINT, b STRUCT(c VARCHAR, d DOUBLE), r STRUCT(x INTEGER, tags VARCHAR[]), tags BIGINT[], m MAP(VARCHAR, BIGINT), n INTEGER[][])",
            "q: STRUCT(z INTEGER, w VARCHAR, mm MAP(INTEGER, VARCHAR))",
            "m: MAP(VARCHAR, VARCHAR)",
            "x: VARCHAR");
        var maps = results[1].Rows.Where(r => r[2].GetString() == "MAP").Select(r => $"{r[0].GetString()} {r[1].GetString()} {r[3].GetString()} {r[4]}").ToList();
        maps.Should().Equal("m OPTIONAL MapType() 1", "mm REQUIRED MapType() 1", "m OPTIONAL MapType() 1");
    }

    private static async Task WriteAsync(string path, IReadOnlyList<Row> rows)
    {
        await using var writer = await ParquetFileWriter.CreateAsync(path, Schema);
        var (columns, groupNulls) = Columns(rows);
        await writer.WriteRowGroupAsync(columns, groupNulls);
    }

    /// <summary>
    /// The shape of a Delta Lake checkpoint: one action per row, every other action's struct null, every
    /// node optional. DuckDB reads each action back.
    /// </summary>
    [Fact]
    public async Task A_Delta_checkpoint_shaped_file_reads_in_DuckDB_one_action_per_row()
    {
        ParquetField Str(string name) => new(name, ParquetType.String, true);
        ParquetField Long(string name) => new(name, ParquetType.Int64, true);
        ParquetField StrList(string name, bool elementNullable = true) => new(name, ParquetType.String, true, IsList: true, ElementNullable: elementNullable);
        ParquetField[] fields =
        [
            Str("txn.appId"), Long("txn.version"),
            Str("add.path"), StrList("add.partitionValues.key", false), StrList("add.partitionValues.value"), Long("add.size"), Long("add.modificationTime"),
            new("add.dataChange", ParquetType.Boolean, true), Str("add.stats"), StrList("add.tags.key", false), StrList("add.tags.value"),
            Str("remove.path"), Long("remove.deletionTimestamp"), new("remove.dataChange", ParquetType.Boolean, true),
            Str("metaData.id"), Str("metaData.name"), Str("metaData.description"), Str("metaData.format.provider"),
            StrList("metaData.format.options.key", false), StrList("metaData.format.options.value"), Str("metaData.schemaString"),
            StrList("metaData.partitionColumns"), StrList("metaData.configuration.key", false), StrList("metaData.configuration.value"), Long("metaData.createdTime"),
            new("protocol.minReaderVersion", ParquetType.Int32, true), new("protocol.minWriterVersion", ParquetType.Int32, true),
            StrList("protocol.readerFeatures"), StrList("protocol.writerFeatures"),
        ];
        string[] structs = ["txn", "add", "remove", "metaData", "metaData.format", "protocol"];
        string[] maps = ["add.partitionValues", "add.tags", "metaData.format.options", "metaData.configuration"];
        var schema = new ParquetSchema(
            fields,
            [.. structs.Select(g => new ParquetGroup(g, ParquetGroupKind.Struct, true)), .. maps.Select(g => new ParquetGroup(g, ParquetGroupKind.Map, true))]);

        const string schemaString = "{\"type\":\"struct\",\"fields\":[{\"name\":\"date\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}}]}";
        var rows = new[]
        {
            ("protocol", new Dictionary<string, object?>
            {
                ["protocol.minReaderVersion"] = 3, ["protocol.minWriterVersion"] = 7,
                ["protocol.readerFeatures"] = new object?[] { "deletionVectors" }, ["protocol.writerFeatures"] = new object?[] { "deletionVectors", "appendOnly" },
            }),
            ("metaData", new Dictionary<string, object?>
            {
                ["metaData.id"] = "6f0e", ["metaData.format.provider"] = "parquet",
                ["metaData.format.options.key"] = Array.Empty<object?>(), ["metaData.format.options.value"] = Array.Empty<object?>(),
                ["metaData.schemaString"] = schemaString, ["metaData.partitionColumns"] = new object?[] { "date" },
                ["metaData.configuration.key"] = new object?[] { "delta.appendOnly", "delta.enableDeletionVectors" },
                ["metaData.configuration.value"] = new object?[] { "true", "true" }, ["metaData.createdTime"] = 1_700_000_000_000L,
            }),
            ("add", new Dictionary<string, object?>
            {
                ["add.path"] = "date=2024-01-01/part-0.parquet", ["add.partitionValues.key"] = new object?[] { "date" },
                ["add.partitionValues.value"] = new object?[] { "2024-01-01" }, ["add.size"] = 1234L, ["add.modificationTime"] = 1_700_000_000_001L,
                ["add.dataChange"] = true, ["add.stats"] = "{\"numRecords\":3}",
            }),
            ("add", new Dictionary<string, object?>
            {
                ["add.path"] = "date=__HIVE_DEFAULT_PARTITION__/part-1.parquet", ["add.partitionValues.key"] = new object?[] { "date" },
                ["add.partitionValues.value"] = new object?[] { null }, ["add.size"] = 99L, ["add.modificationTime"] = 1_700_000_000_002L,
                ["add.dataChange"] = false, ["add.tags.key"] = new object?[] { "INSERTION_TIME" }, ["add.tags.value"] = new object?[] { "1700000000002000" },
            }),
            ("remove", new Dictionary<string, object?>
            {
                ["remove.path"] = "date=2023-12-31/part-9.parquet", ["remove.deletionTimestamp"] = 1_700_000_000_003L, ["remove.dataChange"] = true,
            }),
            ("txn", new Dictionary<string, object?> { ["txn.appId"] = "stream-1", ["txn.version"] = 42L }),
        };
        var columns = fields.Select(f => TestColumns.FromRows(f, rows.Select(r => r.Item2.GetValueOrDefault(f.Name)).ToList())).ToArray();
        var groupNulls = structs.Where(g => !g.Contains('.', StringComparison.Ordinal))
            .ToDictionary(g => g, g => rows.Select(r => r.Item1 != g).ToArray());
        using var temp = new TempDir();
        var path = temp.File("00000000000000000010.checkpoint.parquet");
        await using (var writer = await ParquetFileWriter.CreateAsync(path, schema))
        {
            await writer.WriteRowGroupAsync(columns, groupNulls);
        }

        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $"DESCRIBE SELECT * FROM read_parquet({file})",
            $"""
            SELECT txn IS NULL, add IS NULL, remove IS NULL, metaData IS NULL, protocol IS NULL,
                   txn.appId, txn.version,
                   add.path, map_keys(add.partitionValues), map_values(add.partitionValues), add.size, add.modificationTime, add.dataChange, add.stats,
                   add.tags IS NULL, map_keys(add.tags), map_values(add.tags),
                   remove.path, remove.deletionTimestamp, remove.dataChange,
                   metaData.id, metaData.name, metaData.format.provider, map_keys(metaData.format.options), metaData.schemaString,
                   metaData.partitionColumns, map_keys(metaData.configuration), map_values(metaData.configuration), metaData.createdTime,
                   protocol.minReaderVersion, protocol.minWriterVersion, protocol.readerFeatures, protocol.writerFeatures
            FROM read_parquet({file}, file_row_number = true) ORDER BY file_row_number
            """);

        results[0].Rows.Select(r => $"{r[0].GetString()}: {r[1].GetString()}").Should().Equal(
            "txn: STRUCT(appId VARCHAR, \"version\" BIGINT)",
            "add: STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, tags MAP(VARCHAR, VARCHAR))",
            "remove: STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN)",
            "metaData: STRUCT(id VARCHAR, \"name\" VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, \"options\" MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], \"configuration\" MAP(VARCHAR, VARCHAR), createdTime BIGINT)",
            "protocol: STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER, readerFeatures VARCHAR[], writerFeatures VARCHAR[])");
        object?[] Nulls(int count) => new object?[count];
        object?[][] expected =
        [
            [true, true, true, true, false, .. Nulls(9), true, .. Nulls(14), 3, 7, new object?[] { "deletionVectors" }, new object?[] { "deletionVectors", "appendOnly" }],
            [true, true, true, false, true, .. Nulls(9), true, .. Nulls(5), "6f0e", null, "parquet", Array.Empty<object?>(), schemaString, new object?[] { "date" },
                new object?[] { "delta.appendOnly", "delta.enableDeletionVectors" }, new object?[] { "true", "true" }, 1_700_000_000_000L, .. Nulls(4)],
            [true, false, true, true, true, null, null, "date=2024-01-01/part-0.parquet", new object?[] { "date" }, new object?[] { "2024-01-01" },
                1234L, 1_700_000_000_001L, true, "{\"numRecords\":3}", true, null, null, .. Nulls(16)],
            [true, false, true, true, true, null, null, "date=__HIVE_DEFAULT_PARTITION__/part-1.parquet", new object?[] { "date" }, new object?[] { null },
                99L, 1_700_000_000_002L, false, null, false, new object?[] { "INSERTION_TIME" }, new object?[] { "1700000000002000" }, .. Nulls(16)],
            [true, true, false, true, true, .. Nulls(9), true, null, null, "date=2023-12-31/part-9.parquet", 1_700_000_000_003L, true, .. Nulls(13)],
            [false, true, true, true, true, "stream-1", 42L, .. Nulls(7), true, .. Nulls(18)],
        ];
        results[1].Rows.Select(r => string.Join(" | ", r.Select(v => StructAndMapTests.Canon(v)))).Should().Equal(
            expected.Select(r => string.Join(" | ", r.Select(StructAndMapTests.Canon))), "each row holds its one action; every other action is null (and so is a field of it)");
    }
}
