using System.Collections.Immutable;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Parquet.Tests;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary>CSV tables: what an empty cell means, and a header that names a column twice.</summary>
public sealed class CsvInputTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new("key", WeftType.Int64, Nullable: false),
        new("note", WeftType.String),
        new("n", WeftType.Int32),
    ];

    [Fact]
    public async Task An_empty_cell_is_null_and_a_quoted_empty_cell_is_the_empty_string_in_a_text_column_and_null_in_a_number_column()
    {
        string file = _dir.File("t.csv");
        await File.WriteAllTextAsync(file, "key,note,n\n1,,\n2,\"\",\"\"\n3,\"a \"\"b\"\", c\",5\n");

        var (rows, bad) = await TableInputs.ReadEnrichmentAsync(new TableLocation(file, TableFormat.Csv), Schema, CancellationToken.None);

        bad.Should().BeEmpty();
        var note = rows.Columns[1];
        var n = rows.Columns[2];
        Enumerable.Range(0, rows.RowCount).Select(i => note.GetValue(i)).Should().Equal(new object?[] { null, "", "a \"b\", c" });
        Enumerable.Range(0, rows.RowCount).Select(i => n.GetValue(i)).Should().Equal(new object?[] { null, null, 5 });
    }

    [Fact]
    public async Task An_enrichment_row_wider_than_the_header_is_refused_naming_its_line_and_the_rest_are_read()
    {
        string file = _dir.File("wide.csv");
        await File.WriteAllTextAsync(file, "key,note,n\n1,a,2\n2,b, c,3\n3,d,4\n");

        var (rows, bad) = await TableInputs.ReadEnrichmentAsync(new TableLocation(file, TableFormat.Csv), Schema, CancellationToken.None);

        Enumerable.Range(0, rows.RowCount).Select(i => rows.Columns[0].GetValue(i)).Should().Equal(1L, 3L);
        bad.Should().ContainSingle().Which.Source.Should().Be($"{file}:3");
        bad[0].Reason.Should().Contain("4 cells under a header of 3");
    }

    [Fact]
    public async Task A_header_naming_a_column_twice_is_refused_naming_the_file_the_column_and_both_positions()
    {
        string file = _dir.File("twice.csv");
        await File.WriteAllTextAsync(file, "key,note,n,note\n1,first,2,second\n");

        var read = () => TableInputs.ReadEnrichmentAsync(new TableLocation(file, TableFormat.Csv), Schema, CancellationToken.None);

        (await read.Should().ThrowAsync<InputException>()).Which.Message.Should()
            .Contain("twice.csv").And.Contain("'note'").And.Contain("columns 2 and 4");
    }
}
