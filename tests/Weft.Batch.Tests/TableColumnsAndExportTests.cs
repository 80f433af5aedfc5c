using System.Collections.Immutable;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Parquet.Tests;
using Weft.Storage;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary>
/// <see cref="TableInputs.ColumnNamesAsync"/> in every format, and <see cref="ParquetExport"/>: a file
/// DuckDB reads with the same values, and that Weft reads back as written.
/// </summary>
public sealed class TableColumnsAndExportTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new("event_id", WeftType.String, Nullable: false),
        new("user_id", WeftType.Int64, Nullable: false),
        new("event_time", WeftType.Timestamp, Nullable: false),
        new("dwell_ms", WeftType.Int32),
        new("long_dwell", WeftType.Bool),
        new("embedding", WeftType.ListOf(ScalarKind.Float32)),
        new("score", WeftType.Float64),
    ];

    private static EventBatch Rows(int n)
    {
        var random = new Random(n);
        return new EventBatch(Schema, [
            new StringColumn([.. Enumerable.Range(0, n).Select(i => $"e{i}")]),
            new PrimitiveColumn<long>(WeftType.Int64, [.. Enumerable.Range(0, n).Select(i => (long)(i % 17) - 5)]),
            new PrimitiveColumn<long>(WeftType.Timestamp, [.. Enumerable.Range(0, n).Select(i => 1_793_000_000_000_000L + (i * 1_000_003L))]),
            new PrimitiveColumn<int>(WeftType.Int32, [.. Enumerable.Range(0, n).Select(i => i * 3)], [.. Enumerable.Range(0, n).Select(i => i % 5 == 0)]),
            new PrimitiveColumn<bool>(WeftType.Bool, [.. Enumerable.Range(0, n).Select(i => i % 2 == 0)]),
            new ListColumn<float>(WeftType.ListOf(ScalarKind.Float32), [.. Enumerable.Range(0, n).Select(i => i % 7 == 0 ? null : new[] { (float)random.NextDouble(), -1.5f })]),
            new PrimitiveColumn<double>(WeftType.Float64, [.. Enumerable.Range(0, n).Select(_ => random.NextDouble())]),
        ]);
    }

    [Fact]
    public async Task An_exported_file_reads_back_as_written_and_DuckDB_agrees()
    {
        var rows = Rows(70_000); // more than one row group
        var path = _dir.File("out/export.parquet");
        await ParquetExport.WriteAsync(path, rows);

        var (back, bad) = await TableInputs.ReadEnrichmentAsync(new TableLocation(path, TableFormat.Parquet), Schema, CancellationToken.None);
        bad.Should().BeEmpty();
        back.RowCount.Should().Be(rows.RowCount);
        foreach (int i in (int[])[0, 1, 5, 7, 65_535, 65_536, 69_999])
        {
            back.Row(i).Should().BeEquivalentTo(rows.Row(i), $"row {i}");
        }

        var duck = await DuckDb.RunAsync(
            $"SELECT count(*), count(dwell_ms), sum(user_id), count(embedding), min(event_time), max(event_time), sum(CASE WHEN long_dwell THEN 1 ELSE 0 END) FROM read_parquet({DuckDb.Quote(path)})");
        var r = duck[0].Rows[0];
        r[0].GetString().Should().Be("70000");
        r[1].GetString().Should().Be((70_000 - 14_000).ToString(System.Globalization.CultureInfo.InvariantCulture));
        r[2].GetString().Should().Be(Enumerable.Range(0, 70_000).Sum(i => (long)(i % 17) - 5).ToString(System.Globalization.CultureInfo.InvariantCulture));
        r[3].GetString().Should().Be((70_000 - 10_000).ToString(System.Globalization.CultureInfo.InvariantCulture));
        r[4].GetString().Should().Be("1793000000000000");
        r[5].GetString().Should().Be((1_793_000_000_000_000L + (69_999 * 1_000_003L)).ToString(System.Globalization.CultureInfo.InvariantCulture));
        r[6].GetString().Should().Be("35000");
        Directory.EnumerateFiles(_dir.File("out")).Should().ContainSingle("the temporary file is renamed into place");
    }

    [Fact]
    public async Task Column_names_come_from_every_format()
    {
        var rows = Rows(10);
        var parquet = _dir.File("p/event_type=click/part-0.parquet");
        await ParquetExport.WriteAsync(parquet, rows);
        var second = _dir.File("p/event_type=save/part-0.parquet");
        await ParquetExport.WriteAsync(second, rows.Project([.. Schema.Where(f => f.Name != "score")]));
        var names = await TableInputs.ColumnNamesAsync(new TableLocation(_dir.File("p"), TableFormat.Parquet), CancellationToken.None);
        names.Should().BeEquivalentTo([.. Schema.Where(f => f.Name != "score").Select(f => f.Name), "event_type"], "a column one file lacks is not the table's; the folder names one");

        await File.WriteAllTextAsync(_dir.File("t.csv"), "event_id,user_id,\"odd, name\"\ne1,1,x\n");
        (await TableInputs.ColumnNamesAsync(new TableLocation(_dir.File("t.csv"), TableFormat.Csv), CancellationToken.None))
            .Should().BeEquivalentTo(["event_id", "user_id", "odd, name"]);

        await File.WriteAllTextAsync(_dir.File("t.jsonl"), "{\"event_id\":\"e1\",\"user_id\":1}\nnot json\n{\"event_id\":\"e2\",\"extra\":true}\n");
        (await TableInputs.ColumnNamesAsync(new TableLocation(_dir.File("t.jsonl"), TableFormat.Jsonl), CancellationToken.None))
            .Should().BeEquivalentTo(["event_id", "user_id", "extra"]);

        var delta = await EventTable.OpenOrCreateAsync(_dir.File("d"), Schema, ["bucket"]);
        await delta.AppendAsync(rows, new Dictionary<string, string?> { ["bucket"] = "2026-11-01" });
        (await TableInputs.ColumnNamesAsync(new TableLocation(_dir.File("d"), TableFormat.Delta), CancellationToken.None))
            .Should().BeEquivalentTo([.. Schema.Select(f => f.Name), "bucket"]);

        var missing = () => TableInputs.ColumnNamesAsync(new TableLocation(_dir.File("nowhere"), TableFormat.Parquet), CancellationToken.None);
        (await missing.Should().ThrowAsync<InputException>()).Which.Message.Should().Contain("nowhere").And.Contain("does not exist");
    }
}
