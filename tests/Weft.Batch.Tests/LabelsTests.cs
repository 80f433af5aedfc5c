using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet.Tests;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary>Label files for weft training-set: CSV and JSON lines of the same rows read the same.</summary>
public sealed class LabelsTests
{
    [Fact]
    public async Task A_CSV_label_file_reads_as_the_JSON_lines_file_of_the_same_rows_with_numbers_and_booleans_typed()
    {
        using var dir = new TempDir();
        string csv = dir.File("labels.csv"), jsonl = dir.File("labels.jsonl");
        await File.WriteAllTextAsync(csv, "user_id,label_time,label,weight,note,clicked\r\n"
            + "7,2026-11-02T10:00:00Z,1,0.5,\"a, quoted\",true\r\n"
            + "-3,2026-11-02T11:30:00Z,0,2,,false\r\n"
            + "12,2026-11-03T00:00:00+02:00,1,,plain,\r\n");
        await File.WriteAllLinesAsync(jsonl, [
            """{"user_id":7,"label_time":"2026-11-02T10:00:00Z","label":1,"weight":0.5,"note":"a, quoted","clicked":true}""",
            """{"user_id":-3,"label_time":"2026-11-02T11:30:00Z","label":0,"weight":2,"note":null,"clicked":false}""",
            """{"user_id":12,"label_time":"2026-11-03T00:00:00+02:00","label":1,"weight":null,"note":"plain","clicked":null}""",
        ]);

        var fromCsv = await Labels.ReadAsync(csv, CancellationToken.None);
        var fromJson = await Labels.ReadAsync(jsonl, CancellationToken.None);

        fromCsv.Users.Should().Equal(7, -3, 12);
        fromCsv.Times.Should().Equal(fromJson.Times);
        fromCsv.Times[2].Should().Be(Timestamps.ToMicros(new DateTimeOffset(2026, 11, 2, 22, 0, 0, TimeSpan.Zero)));
        fromCsv.Rows.Schema.Select(f => (f.Name, f.Type)).Should().Equal(fromJson.Rows.Schema.Select(f => (f.Name, f.Type)));
        fromCsv.Rows.Schema.Single(f => f.Name == "weight").Type.Should().Be(WeftType.Float64, "0.5 makes the column a number, not an integer");
        fromCsv.Rows.Schema.Single(f => f.Name == "clicked").Type.Should().Be(WeftType.Bool);
        for (int c = 0; c < fromCsv.Rows.Schema.Length; c++)
        {
            Enumerable.Range(0, 3).Select(i => fromCsv.Rows.Columns[c].GetValue(i)).Should().Equal(
                Enumerable.Range(0, 3).Select(i => fromJson.Rows.Columns[c].GetValue(i)), fromCsv.Rows.Schema[c].Name);
        }
    }

    [Fact]
    public async Task A_CSV_label_file_whose_user_id_is_not_an_integer_is_refused_naming_the_column()
    {
        using var dir = new TempDir();
        string csv = dir.File("labels.csv");
        await File.WriteAllTextAsync(csv, "user_id,label_time\nu7,2026-11-02T10:00:00Z\n");

        var read = () => Labels.ReadAsync(csv, CancellationToken.None);

        (await read.Should().ThrowAsync<InputException>()).WithMessage("*user_id must be an integer column*");
    }
}
