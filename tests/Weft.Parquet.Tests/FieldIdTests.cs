using FluentAssertions;
using Xunit;

namespace Weft.Parquet.Tests;

/// <summary>
/// Field ids (SchemaElement.field_id), which Iceberg and Delta column mapping by id find columns by: read
/// from a file DuckDB wrote with FIELD_IDS, as a dotted path through the structs around a column.
/// </summary>
public sealed class FieldIdTests
{
    [Fact]
    public async Task Field_ids_DuckDB_writes_are_read_as_paths_through_structs()
    {
        using var dir = new TempDir();
        var withIds = dir.File("ids.parquet");
        var without = dir.File("plain.parquet");
        await DuckDb.RunAsync(
            $"COPY (SELECT 1::BIGINT AS a, {{'x': 2, 'y': 'z'}} AS s, [1, 2] AS l, 3 AS untagged FROM range(0, 2)) TO {DuckDb.Quote(withIds)} "
                + "(FORMAT parquet, FIELD_IDS {a: 10, s: {__duckdb_field_id: 20, x: 21, y: 22}, l: {__duckdb_field_id: 30, element: 31}})",
            $"COPY (SELECT 1::BIGINT AS a FROM range(0, 2)) TO {DuckDb.Quote(without)} (FORMAT parquet)");

        await using var reader = await ParquetFileReader.OpenAsync(withIds);
        reader.Schema.Fields.Select(f => (f.Name, f.FieldIdPath)).Should().Equal(
            ("a", "10"), ("s.x", "20.21"), ("s.y", "20.22"), ("l", "30"), ("untagged", (string?)null));
        reader.Schema.HasFieldIds.Should().BeTrue();
        reader.Schema.IndexOfFieldIds("20.22").Should().Be(reader.Schema.IndexOf("s.y"));
        reader.Schema.IndexOfFieldIds("21").Should().Be(-1, "a struct's field is found by the path through its struct");

        await using var plain = await ParquetFileReader.OpenAsync(without);
        plain.Schema.HasFieldIds.Should().BeFalse();
        plain.Schema.Fields[0].FieldIdPath.Should().BeNull();
    }
}
