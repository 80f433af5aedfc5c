using System.Globalization;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Parquet.Format;
using Xunit;

namespace Weft.Parquet.Tests;

/// <summary>
/// STRUCT and MAP columns read as dotted leaf columns (<c>s.a</c>, <c>s.b.c</c>, <c>m.key</c>,
/// <c>m.value</c>), checked against what DuckDB reads from the same file.
/// </summary>
public sealed class StructAndMapTests
{
    private const ulong Seed = 0x57_2C7_0A1;

    /// <summary>The dotted columns of <see cref="Create"/>'s table and the DuckDB expression each one must equal.</summary>
    private static readonly (string Name, string Sql)[] Leaves =
    [
        ("id", "id"),
        ("s.a", "s.a"),
        ("s.b.c", "s.b.c"),
        ("s.b.d", "s.b.d"),
        ("s.tags", "s.tags"),
        ("s.m.key", "map_keys(s.m)"),
        ("s.m.value", "map_values(s.m)"),
        ("s.n", "s.n"),
        ("m.key", "map_keys(m)"),
        ("m.value", "map_values(m)"),
        ("mb.key", "map_keys(mb)"),
        ("mb.value", "map_values(mb)"),
        ("x", "x"),
    ];

    /// <summary>How DuckDB generates and writes one file: its rows come from DuckDB's seeded random().</summary>
    public sealed record Case(int Rows, double NullRate, int Seed, string Version, string Codec)
    {
        public override string ToString() => $"rows={Rows} nulls={NullRate} seed={Seed} {Version} {Codec}";
    }

    private static readonly Gen<Case> CaseGen =
        from rows in Gen.Frequency((3, Gen.Choose(1, 60)), (1, Gen.Choose(2049, 4500)))
        from nullRate in Gen.Elements(0.0, 0.15, 0.4, 0.9)
        from seed in Gen.Choose(0, 1_000_000)
        from version in Gen.Elements("V1", "V2")
        from codec in Gen.Elements("snappy", "zstd", "uncompressed")
        select new Case(rows, nullRate, seed, version, codec);

    /// <summary>
    /// A table with nested structs, a list and a map inside a struct, and top-level maps, each level
    /// null at <paramref name="p"/> (struct fields, map values and list elements too).
    /// </summary>
    private static string Create(int rows, double p)
    {
        string Maybe(string value) => $"CASE WHEN random() < {p.ToString(CultureInfo.InvariantCulture)} THEN NULL ELSE {value} END";
        string Entries(string value) =>
            $"map_from_entries(list_transform(range((random() * 4)::BIGINT), k -> {{'k': 'k' || k || chr(65 + (random() * 3)::INT), 'v': {Maybe(value)}}}))";
        var b = "{'c': " + Maybe("'c' || (random() * 50)::INT") + ", 'd': " + Maybe("random() * 1e6 - 5e5") + "}";
        var s = "{'a': " + Maybe("(random() * 2e12 - 1e12)::BIGINT")
            + ", 'b': " + Maybe(b)
            + ", 'tags': " + Maybe("list_transform(range((random() * 4)::BIGINT), e -> " + Maybe("'tag' || (random() * 9)::INT") + ")")
            + ", 'm': " + Maybe(Entries("(random() * 1000)::BIGINT"))
            + ", 'n': " + Maybe("(random() * 1000)::INTEGER") + "}";
        return $"""
            CREATE TABLE t AS SELECT
              i AS id,
              {Maybe(s)} AS s,
              {Maybe(Entries("'v' || (random() * 20)::INT"))} AS m,
              {Maybe(Entries("(random() * 1e9)::BIGINT"))} AS mb,
              {Maybe("'x' || i")} AS x
            FROM range({rows}) r(i)
            """;
    }

    [Fact]
    public void Any_DuckDB_file_of_structs_and_maps_reads_as_DuckDB_reads_its_leaves()
    {
        var property = Prop.ForAll(CaseGen.ToArbitrary(), ReadsAsDuckDbAsync);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(12).WithReplay(Seed, 0x9E3779B97F4A7C15), property);
    }

    private static async Task ReadsAsDuckDbAsync(Case c)
    {
        using var temp = new TempDir();
        var path = temp.File("nested.parquet");
        var file = DuckDb.Quote(path);
        var select = string.Join(", ", Leaves.Select(l => $"{l.Sql} AS \"{l.Name}\""));
        var results = await DuckDb.RunAsync(
            "SET threads = 1",
            $"SELECT setseed({(c.Seed / 1_000_000.0).ToString(CultureInfo.InvariantCulture)})",
            Create(c.Rows, c.NullRate),
            $"COPY t TO {file} (FORMAT parquet, ROW_GROUP_SIZE 2048, PARQUET_VERSION {c.Version}, COMPRESSION {c.Codec})",
            $"SELECT {select} FROM read_parquet({file}) ORDER BY id");
        var reference = results[^1];

        await using var reader = await ParquetFileReader.OpenAsync(path);
        reader.UnsupportedColumns.Should().BeEmpty(c.ToString());
        reader.Schema.Fields.Select(f => f.Name).Should().Equal(Leaves.Select(l => l.Name), $"{c}: the leaves in schema order");
        if (c.Rows > 2048)
        {
            reader.RowGroups.Should().HaveCountGreaterThan(1, c.ToString());
        }

        var rows = await ReadRowsAsync(reader, Leaves.Select(l => l.Name).ToArray());
        var expected = reference.Rows.Select(r => string.Join(" | ", r.Select(v => Canon(v)))).ToList();
        rows.Select(r => string.Join(" | ", r.Select(Canon))).OrderBy(r => r, StringComparer.Ordinal).Should()
            .Equal(expected.OrderBy(r => r, StringComparer.Ordinal), $"{c}: every row's leaves as DuckDB reads them");

        // Statistics of a leaf inside a struct come from its own chunk and never prune a row group holding a value.
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            var a = await reader.ReadColumnAsync(g, "s.a");
            var present = Enumerable.Range(0, a.RowCount).Select(r => TestColumns.ValueAt(a, r)).OfType<long>().ToList();
            var stats = reader.RowGroups[g]["s.a"];
            if (present.Count == 0)
            {
                reader.FindRowGroups("s.a", long.MinValue, long.MaxValue).Should().NotContain(g, $"{c}: row group {g} has no s.a value");
                continue;
            }

            stats.Min.Should().Be(present.Min(), c.ToString());
            stats.Max.Should().Be(present.Max(), c.ToString());
            reader.FindRowGroups("s.a", present[0], present[0]).Should().Contain(g, c.ToString());
            reader.FindRowGroups("s.a", present.Max() + 1, null).Should().NotContain(g, $"{c}: nothing in row group {g} is above {present.Max()}");
        }
    }

    /// <summary>The dotted names follow the schema depth first; nullability follows every node on the path.</summary>
    [Fact]
    public async Task Struct_and_map_leaves_get_dotted_names_and_the_nullability_of_their_path()
    {
        using var temp = new TempDir();
        var path = temp.File("shape.parquet");
        await DuckDb.RunAsync(Create(5, 0.3), $"COPY t TO {DuckDb.Quote(path)} (FORMAT parquet)");

        await using var reader = await ParquetFileReader.OpenAsync(path);

        // DuckDB writes every node optional but map keys (required).
        reader.Schema.Fields.Select(f => $"{f.Name}: {f.TypeName}").Should().Equal(
            "id: Int64?",
            "s.a: Int64?",
            "s.b.c: String?",
            "s.b.d: Double?",
            "s.tags: list<String?>?",
            "s.m.key: list<String>?",
            "s.m.value: list<Int64?>?",
            "s.n: Int32?",
            "m.key: list<String>?",
            "m.value: list<String?>?",
            "mb.key: list<String>?",
            "mb.value: list<Int64?>?",
            "x: String?");
    }

    /// <summary>
    /// Reading one struct leaf reads its own chunk only: the chunk index counts every leaf before it,
    /// including those of a skipped field.
    /// </summary>
    [Fact]
    public async Task A_projected_struct_leaf_reads_only_its_own_chunk_even_after_a_skipped_field()
    {
        using var temp = new TempDir();
        var path = temp.File("projection.parquet");
        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $$"""
            COPY (SELECT i AS id, {'p': (i * 1.5)::DECIMAL(18, 3), 'w': [{'q': i}], 'b': {'c': 'c' || i}, 'z': i * 7} AS s
                  FROM range(0, 3000) r(i)) TO {{file}} (FORMAT parquet, ROW_GROUP_SIZE 2048)
            """,
            $"SELECT CAST(s.z AS VARCHAR), s.b.c FROM read_parquet({file}) ORDER BY id");
        await using var reader = await ParquetFileReader.OpenAsync(path);

        var z = new List<string?>();
        var c = new List<string?>();
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            var before = reader.BytesRead;
            var column = await reader.ReadColumnAsync(g, "s.z");
            (reader.BytesRead - before).Should().Be(reader.RowGroups[g]["s.z"].CompressedSize, "only the chunk of s.z is read");
            z.AddRange(Enumerable.Range(0, column.RowCount).Select(r => Convert.ToString(TestColumns.ValueAt(column, r), CultureInfo.InvariantCulture)));
            var strings = await reader.ReadColumnAsync(g, "s.b.c");
            c.AddRange(Enumerable.Range(0, strings.RowCount).Select(r => (string?)TestColumns.ValueAt(strings, r)));
        }

        z.Should().Equal(results[1].Rows.Select(r => r[0].GetString()));
        c.Should().Equal(results[1].Rows.Select(r => r[1].GetString()));
        reader.RowGroups.Select(g => g["s.z"].Max).Should().Equal(
            results[1].Rows.Chunk(2048).Select(rows => (object?)rows.Max(r => long.Parse(r[0].GetString()!, CultureInfo.InvariantCulture))));
        reader.FindRowGroups("s.z", 2048L * 7, null).Should().Equal([1], "the first row group's s.z ends at 2047 * 7");
    }

    /// <summary>
    /// A struct holding an interval and a list of structs keeps its other fields readable; the two are
    /// listed by dotted name and refuse to read. A top-level list of structs stays unsupported whole.
    /// </summary>
    [Fact]
    public async Task A_struct_field_Weft_does_not_read_is_skipped_alone_and_named_by_its_dotted_path()
    {
        using var temp = new TempDir();
        var path = temp.File("partial.parquet");
        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $$"""
            COPY (SELECT i AS id,
                         CASE WHEN i % 4 = 3 THEN NULL ELSE {'a': i, 'wait': to_days(i::INTEGER), 'items': [{'w': i}], 'm': MAP {'k': [i]}, 'z': 'z' || i} END AS s,
                         [{'q': i}] AS top_items
                  FROM range(0, 40) r(i)) TO {{file}} (FORMAT parquet)
            """,
            $"SELECT CAST(s.a AS VARCHAR), s.z FROM read_parquet({file}) ORDER BY id");
        await using var reader = await ParquetFileReader.OpenAsync(path);

        reader.Schema.Fields.Select(f => f.Name).Should().Equal("id", "s.a", "s.m.key", "s.z");
        reader.UnsupportedColumns.Keys.Should().BeEquivalentTo("s.wait", "s.items", "s.m.value", "top_items");
        reader.UnsupportedColumns["s.wait"].Should().Contain("'s.wait'").And.Contain("INTERVAL");
        reader.UnsupportedColumns["s.items"].Should().Contain("'s.items'");
        var a = await reader.ReadColumnAsync(0, "s.a");
        var z = await reader.ReadColumnAsync(0, "s.z");
        Enumerable.Range(0, 40).Select(r => TestColumns.ValueAt(a, r) is long v ? v.ToString(CultureInfo.InvariantCulture) : null).Should().Equal(results[1].Rows.Select(r => r[0].GetString()));
        Enumerable.Range(0, 40).Select(r => (string?)TestColumns.ValueAt(z, r)).Should().Equal(results[1].Rows.Select(r => r[1].GetString()));

        var wait = async () => await reader.ReadColumnAsync(0, "s.wait");
        (await wait.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should().Contain("INTERVAL");
    }

    [Fact]
    public async Task A_top_level_column_named_like_a_struct_leaf_is_a_clear_format_error()
    {
        using var temp = new TempDir();
        var path = temp.File("clash.parquet");
        await DuckDb.RunAsync($$"""COPY (SELECT 1 AS "s.a", {'a': 2} AS s) TO {{DuckDb.Quote(path)}} (FORMAT parquet)""");

        var open = async () => await ParquetFileReader.OpenAsync(path);

        (await open.Should().ThrowAsync<ParquetFormatException>()).Which.Message.Should().Contain("two columns named 's.a'");
    }

    /// <summary>
    /// Layouts DuckDB does not write but reads: required groups inside an optional struct, a required
    /// list in an optional struct, a required top-level struct. DuckDB's reading of the crafted file is the reference.
    /// </summary>
    [Fact]
    public async Task Required_groups_inside_optional_structs_read_as_DuckDB_reads_them()
    {
        // optional group s { required group r { required int32 x; optional binary y (UTF8) }
        //                    required group tags (LIST) { repeated group list { required int32 element } } }
        // required group q { optional int32 z }   required group q2 { required int32 w }
        SchemaElement[] schema =
        [
            new() { Name = "schema", NumChildren = 4 },
            new() { Name = "id", Type = PhysicalType.Int64, RepetitionType = Repetition.Required },
            new() { Name = "s", RepetitionType = Repetition.Optional, NumChildren = 2 },
            new() { Name = "r", RepetitionType = Repetition.Required, NumChildren = 2 },
            new() { Name = "x", Type = PhysicalType.Int32, RepetitionType = Repetition.Required },
            new() { Name = "y", Type = PhysicalType.ByteArray, RepetitionType = Repetition.Optional, ConvertedType = ConvertedType.Utf8 },
            new() { Name = "tags", RepetitionType = Repetition.Required, NumChildren = 1, ConvertedType = ConvertedType.List },
            new() { Name = "list", RepetitionType = Repetition.Repeated, NumChildren = 1 },
            new() { Name = "element", Type = PhysicalType.Int32, RepetitionType = Repetition.Required },
            new() { Name = "q", RepetitionType = Repetition.Required, NumChildren = 1 },
            new() { Name = "z", Type = PhysicalType.Int32, RepetitionType = Repetition.Optional },
            new() { Name = "q2", RepetitionType = Repetition.Required, NumChildren = 1 },
            new() { Name = "w", Type = PhysicalType.Int32, RepetitionType = Repetition.Required },
        ];

        // Rows: s = {r: {1, "a"}, tags: [5, 6]}, NULL, {r: {2, NULL}, tags: []}, {r: {3, "b"}, tags: [7]}.
        CraftedFiles.LeafChunk[] leaves =
        [
            new(["id"], PhysicalType.Int64, 0, 0, [], [], Int64s(10, 11, 12, 13)),
            new(["s", "r", "x"], PhysicalType.Int32, 1, 0, [1, 0, 1, 1], [], Int32s(1, 2, 3)),
            new(["s", "r", "y"], PhysicalType.ByteArray, 2, 0, [2, 0, 1, 2], [], Strings("a", "b")),
            new(["s", "tags", "list", "element"], PhysicalType.Int32, 2, 1, [2, 2, 0, 1, 2], [0, 1, 0, 0, 0], Int32s(5, 6, 7)),
            new(["q", "z"], PhysicalType.Int32, 1, 0, [1, 0, 1, 0], [], Int32s(7, 8)),
            new(["q2", "w"], PhysicalType.Int32, 0, 0, [], [], Int32s(1, 2, 3, 4)),
        ];
        using var temp = new TempDir();
        var path = temp.File("required.parquet");
        await File.WriteAllBytesAsync(path, CraftedFiles.BuildNestedFile(schema, 4, leaves));
        (string Name, string Sql)[] columns = [("s.r.x", "s.r.x"), ("s.r.y", "s.r.y"), ("s.tags", "s.tags"), ("q.z", "q.z"), ("q2.w", "q2.w")];
        var results = await DuckDb.RunAsync(
            $"SELECT {string.Join(", ", columns.Select(c => $"{c.Sql} AS \"{c.Name}\""))} FROM read_parquet({DuckDb.Quote(path)}) ORDER BY id");

        await using var reader = await ParquetFileReader.OpenAsync(path);
        reader.Schema.Fields.Select(f => $"{f.Name}: {f.TypeName}").Should().Equal(
            "id: Int64", "s.r.x: Int32?", "s.r.y: String?", "s.tags: list<Int32>?", "q.z: Int32?", "q2.w: Int32");
        var rows = await ReadRowsAsync(reader, columns.Select(c => c.Name).ToArray());
        rows.Select(r => string.Join(" | ", r.Select(Canon))).Should().Equal(results[0].Rows.Select(r => string.Join(" | ", r.Select(v => Canon(v)))));
        rows.Select(r => Canon(r[2])).Should().Equal(["[5,6]", "null", "[]", "[7]"], "a null struct reads as a null list, an empty list as empty");
    }

    [Fact]
    public void A_legacy_MAP_KEY_VALUE_group_with_other_names_reads_as_key_and_value_lists()
    {
        // optional group s { required group attrs (MAP_KEY_VALUE) { repeated group map { required binary k (UTF8); optional int32 v } } }
        SchemaElement[] elements =
        [
            new() { Name = "schema", NumChildren = 1 },
            new() { Name = "s", RepetitionType = Repetition.Optional, NumChildren = 1 },
            new() { Name = "attrs", RepetitionType = Repetition.Required, NumChildren = 1, ConvertedType = ConvertedType.MapKeyValue },
            new() { Name = "map", RepetitionType = Repetition.Repeated, NumChildren = 2 },
            new() { Name = "k", Type = PhysicalType.ByteArray, RepetitionType = Repetition.Required, ConvertedType = ConvertedType.Utf8 },
            new() { Name = "v", Type = PhysicalType.Int32, RepetitionType = Repetition.Optional },
        ];

        var (schema, columns) = SchemaMapping.FromElements(elements);

        schema.Fields.Select(f => $"{f.Name}: {f.TypeName}").Should().Equal("s.attrs.key: list<String>?", "s.attrs.value: list<Int32?>?");
        columns[0].Path.Should().Equal("s", "attrs", "map", "k");
        columns[1].Path.Should().Equal("s", "attrs", "map", "v");

        // s optional (1), map repeated (2), v optional (3): an empty map is at 1, a null s below it.
        columns.Select(c => c.ListPresentLevels.Single()).Should().Equal(1, 1);
        columns.Select(c => c.MaxDefinitionLevel).Should().Equal(2, 3);
        columns.Select(c => c.MaxRepetitionLevel).Should().Equal(1, 1);
        columns.Select(c => c.ChunkIndex).Should().Equal(0, 1);
    }

    private static async Task<List<object?[]>> ReadRowsAsync(ParquetFileReader reader, string[] names)
    {
        var rows = new List<object?[]>();
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            var read = new ParquetColumnData[names.Length];
            for (var c = 0; c < names.Length; c++)
            {
                read[c] = await reader.ReadColumnAsync(g, names[c]);
                read[c].RowCount.Should().Be((int)reader.RowGroups[g].RowCount);
            }

            for (var r = 0; r < read[0].RowCount; r++)
            {
                rows.Add(read.Select(column => TestColumns.ValueAt(column, r)).ToArray());
            }
        }

        return rows;
    }

    /// <summary>
    /// One value in duckdb.mjs's terms, so Weft's and DuckDB's compare as text: BIGINT as a decimal
    /// string, INTEGER and DOUBLE as numbers (round-trip form), lists as arrays.
    /// </summary>
    internal static string Canon(object? value) => value switch
    {
        null => "null",
        string s => JsonSerializer.Serialize(s),
        long l => JsonSerializer.Serialize(l.ToString(CultureInfo.InvariantCulture)),
        int i => ((double)i).ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        object?[] list => "[" + string.Join(",", list.Select(Canon)) + "]",
        JsonElement e => e.ValueKind switch
        {
            JsonValueKind.Null => "null",
            JsonValueKind.String => JsonSerializer.Serialize(e.GetString()),
            JsonValueKind.Number => e.GetDouble().ToString("R", CultureInfo.InvariantCulture),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Array => "[" + string.Join(",", e.EnumerateArray().Select(v => Canon(v))) + "]",
            _ => e.GetRawText(),
        },
        _ => throw new ArgumentException($"Unexpected value {value} ({value.GetType().Name})."),
    };

    private static byte[] Int32s(params int[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    private static byte[] Int64s(params long[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    private static byte[] Strings(params string[] values) =>
        values.SelectMany(v => BitConverter.GetBytes(Encoding.UTF8.GetByteCount(v)).Concat(Encoding.UTF8.GetBytes(v))).ToArray();
}
