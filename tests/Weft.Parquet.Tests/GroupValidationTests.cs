using FluentAssertions;
using Weft.Parquet.Format;
using Xunit;

namespace Weft.Parquet.Tests;

/// <summary>Schemas with groups that cannot be written, and row groups that disagree with their groups.</summary>
public sealed class GroupValidationTests
{
    private static readonly ParquetField SA = new("s.a", ParquetType.Int64, true);
    private static readonly ParquetField STags = new("s.tags", ParquetType.String, true, IsList: true);
    private static readonly ParquetField SBC = new("s.b.c", ParquetType.String, true);
    private static readonly ParquetField MKey = new("m.key", ParquetType.String, true, IsList: true);
    private static readonly ParquetField MValue = new("m.value", ParquetType.Int32, true, IsList: true, ElementNullable: true);

    private static readonly ParquetSchema Schema = new(
        [SA, STags, SBC, MKey, MValue],
        [new("s", ParquetGroupKind.Struct, true), new("s.b", ParquetGroupKind.Struct, true), new("m", ParquetGroupKind.Map, true)]);

    [Fact]
    public void A_field_under_an_undeclared_prefix_is_refused_naming_both()
    {
        var top = () => new ParquetSchema([SA], []);
        var inner = () => new ParquetSchema([SBC], [new("s.b", ParquetGroupKind.Struct, true)]);

        top.Should().Throw<ArgumentException>().Which.Message.Should().Contain("'s.a'").And.Contain("'s', which is not a declared group");
        inner.Should().Throw<ArgumentException>().Which.Message.Should().Contain("Group 's.b'").And.Contain("'s', which is not a declared group");
    }

    [Fact]
    public void Without_groups_a_dot_is_part_of_a_top_level_name()
    {
        var schema = new ParquetSchema([SA]);

        SchemaMapping.ToElements(schema).Select(e => e.Name).Should().Equal("schema", "s.a");
    }

    [Fact]
    public void Fields_of_one_group_split_by_another_field_are_refused()
    {
        var split = () => new ParquetSchema(
            [SA, new ParquetField("x", ParquetType.Int32, true), STags], [new("s", ParquetGroupKind.Struct, true)]);
        var nested = () => new ParquetSchema(
            [SBC, SA, new ParquetField("s.b.d", ParquetType.Int32, true)], [new("s", ParquetGroupKind.Struct, true), new("s.b", ParquetGroupKind.Struct, true)]);

        split.Should().Throw<ArgumentException>().Which.Message.Should().Contain("group 's' are not contiguous").And.Contain("'x' (field 1)");
        nested.Should().Throw<ArgumentException>().Which.Message.Should().Contain("group 's.b' are not contiguous").And.Contain("'s.a' (field 1)");
    }

    [Fact]
    public void Malformed_groups_and_maps_are_refused()
    {
        ParquetGroup s = new("s", ParquetGroupKind.Struct, true);
        ParquetGroup m = new("m", ParquetGroupKind.Map, true);
        var cases = new (Func<ParquetSchema> Build, string Message)[]
        {
            (() => new ParquetSchema([new ParquetField("s.a", ParquetType.Int64, false)], [s]), "'s.a' is inside the nullable group 's'"),
            (() => new ParquetSchema([SA], [s, new("t", ParquetGroupKind.Struct, false)]), "Group 't' has no fields"),
            (() => new ParquetSchema([SA], [s, s]), "'s' is declared more than once"),
            (() => new ParquetSchema([SA, new ParquetField("s", ParquetType.Int32, true)], [s]), "Field 's' has the path of a declared group"),
            (() => new ParquetSchema([MValue, MKey], [m]), "exactly the fields 'm.key' then 'm.value'"),
            (() => new ParquetSchema([MKey], [m]), "exactly the fields 'm.key' then 'm.value'"),
            (() => new ParquetSchema([MKey with { ElementNullable = true }, MValue], [m]), "map keys cannot be null"),
            (() => new ParquetSchema([MKey with { Nullable = false }, MValue], [m]), "'m.key' has Nullable = False; it must be True"),
            (() => new ParquetSchema([MKey, MValue with { ListDepth = 2 }], [m]), "'m.value' is list<list<Int32?>>?"),
            (() => new ParquetSchema([MKey, MValue, new ParquetField("m.x.y", ParquetType.Int32, true)], [m, new("m.x", ParquetGroupKind.Struct, true)]),
                "inside the map 'm'"),
        };

        foreach (var (build, message) in cases)
        {
            build.Should().Throw<ArgumentException>().Which.Message.Should().Contain(message);
        }
    }

    [Fact]
    public async Task A_value_inside_a_null_struct_is_refused_naming_the_column_the_row_and_the_struct()
    {
        await using var writer = await ParquetFileWriter.CreateAsync(new MemoryStream(), Schema);
        var columns = Columns(rows: 3);

        // Row 1: s is null but s.a holds 7.
        columns[0] = ParquetColumnData.FromNullable<long>(SA, [1, 7, null]);
        var leaf = () => writer.WriteRowGroupAsync(columns, new Dictionary<string, bool[]> { ["s"] = [false, true, true] });
        (await leaf.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("'s.a'").And.Contain("row 1").And.Contain("group 's' is null");

        // An empty list is not a null list.
        columns = Columns(rows: 3);
        columns[1] = TestColumns.FromRows(STags, [null, null, Array.Empty<object?>()]);
        var list = () => writer.WriteRowGroupAsync(columns, new Dictionary<string, bool[]> { ["s"] = [false, true, true] });
        (await list.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("'s.tags'").And.Contain("row 2");

        // The outer struct's flag covers the inner struct's leaves.
        columns = Columns(rows: 3);
        columns[2] = ParquetColumnData.FromStrings(SBC, [null, "c", null]);
        var nested = () => writer.WriteRowGroupAsync(columns, new Dictionary<string, bool[]> { ["s"] = [false, true, false], ["s.b"] = [true, false, true] });
        (await nested.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("'s.b.c'").And.Contain("row 1").And.Contain("group 's' is null");

        // Argument errors leave the writer usable.
        await writer.WriteRowGroupAsync(Columns(rows: 3), new Dictionary<string, bool[]> { ["s"] = [false, true, true] });
        writer.RowCount.Should().Be(3);
    }

    [Fact]
    public async Task Map_keys_and_values_that_disagree_are_refused_naming_the_map()
    {
        await using var writer = await ParquetFileWriter.CreateAsync(new MemoryStream(), Schema);
        var columns = Columns(rows: 2);
        columns[4] = TestColumns.FromRows(MValue, [new object?[] { null }, Array.Empty<object?>()]);
        var nulls = () => writer.WriteRowGroupAsync(columns);
        (await nulls.Should().ThrowAsync<ArgumentException>()).Which.Message.Should()
            .Contain("Map 'm': row 1 is null in 'm.key' but not null in 'm.value'");

        columns = Columns(rows: 2);
        columns[4] = TestColumns.FromRows(MValue, [new object?[] { 1, 2 }, null]);
        var lengths = () => writer.WriteRowGroupAsync(columns);
        (await lengths.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("Map 'm': row 0 has 1 keys in 'm.key' but 2 values in 'm.value'");
    }

    [Fact]
    public async Task A_required_map_is_null_only_inside_a_null_struct()
    {
        ParquetField key = new("s.m.key", ParquetType.String, true, IsList: true);
        ParquetField value = new("s.m.value", ParquetType.String, true, IsList: true);
        var schema = new ParquetSchema([key, value], [new("s", ParquetGroupKind.Struct, true), new("s.m", ParquetGroupKind.Map, false)]);
        await using var writer = await ParquetFileWriter.CreateAsync(new MemoryStream(), schema);
        ParquetColumnData[] columns = [TestColumns.FromRows(key, [null, null]), TestColumns.FromRows(value, [null, null])];

        var outside = () => writer.WriteRowGroupAsync(columns, new Dictionary<string, bool[]> { ["s"] = [true, false] });

        (await outside.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("Map 's.m' is not nullable").And.Contain("row 1");
        await writer.WriteRowGroupAsync(columns, new Dictionary<string, bool[]> { ["s"] = [true, true] });
        writer.RowCount.Should().Be(2);
    }

    [Fact]
    public async Task Group_null_flags_only_for_nullable_structs_of_the_schema_one_per_row()
    {
        var schema = new ParquetSchema(
            [SA, MKey, MValue, new ParquetField("q.z", ParquetType.Int32, false)],
            [new("s", ParquetGroupKind.Struct, true), new("m", ParquetGroupKind.Map, true), new("q", ParquetGroupKind.Struct, false)]);
        await using var writer = await ParquetFileWriter.CreateAsync(new MemoryStream(), schema);
        ParquetColumnData[] columns =
        [
            ParquetColumnData.FromNullable<long>(SA, [null, null]), TestColumns.FromRows(MKey, [null, null]), TestColumns.FromRows(MValue, [null, null]),
            ParquetColumnData.FromValues(schema.Fields[3], new[] { 1, 2 }),
        ];
        var cases = new (string Path, bool[] Flags, string Message)[]
        {
            ("t", [true, true], "'t', which is not a group of the schema"),
            ("m", [true, true], "the map 'm'"),
            ("q", [true, true], "'q', which is not nullable"),
            ("s", [true], "Group nulls of 's' have 1 flags; the row group has 2 rows"),
        };

        foreach (var (path, flags, message) in cases)
        {
            var write = () => writer.WriteRowGroupAsync(columns, new Dictionary<string, bool[]> { [path] = flags });
            (await write.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain(message);
        }

        writer.RowCount.Should().Be(0);
    }

    /// <summary>The written tree: structs as plain groups, maps as MAP { repeated key_value { required key; value } }.</summary>
    [Fact]
    public void The_schema_tree_is_written_depth_first_with_the_standard_map_layout()
    {
        var elements = SchemaMapping.ToElements(Schema);

        elements.Select(e => $"{e.Name} {e.RepetitionType} {e.NumChildren} {e.ConvertedType} {e.LogicalType?.Kind}").Should().Equal(
            "schema  2  ",
            "s Optional 3  ",
            "a Optional   ",
            "tags Optional 1 List 3",
            "list Repeated 1  ",
            "element Required  Utf8 1",
            "b Optional 1  ",
            "c Optional  Utf8 1",
            "m Optional 1 Map 2",
            "key_value Repeated 2  ",
            "key Required  Utf8 1",
            "value Optional   ");
    }

    /// <summary>A row group where s is null in row 1, s.b in row 2, m in row 1; every leaf null where its struct is.</summary>
    private static ParquetColumnData[] Columns(int rows)
    {
        object?[] Rows(Func<int, object?> row) => Enumerable.Range(0, rows).Select(row).ToArray();
        return
        [
            TestColumns.FromRows(SA, Rows(i => i == 0 ? 5L : null)),
            TestColumns.FromRows(STags, Rows(i => i == 0 ? new object?[] { "t" } : null)),
            TestColumns.FromRows(SBC, Rows(_ => null)),
            TestColumns.FromRows(MKey, Rows(i => i == 1 ? null : new object?[] { "k" })),
            TestColumns.FromRows(MValue, Rows(i => i == 1 ? null : new object?[] { (object?)null })),
        ];
    }
}
