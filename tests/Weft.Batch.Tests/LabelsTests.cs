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
    public async Task A_CSV_label_file_ending_in_blank_lines_reads_and_a_label_no_JSON_number_is_refused_naming_its_line()
    {
        using var dir = new TempDir();
        string blank = dir.File("blank.csv"), nan = dir.File("nan.csv");
        await File.WriteAllTextAsync(blank, "user_id,label_time,label\n7,2026-11-02T10:00:00Z,0.5\n\n12,2026-11-02T11:00:00Z,1\n\n");
        await File.WriteAllTextAsync(nan, "user_id,label_time,label\n7,2026-11-02T10:00:00Z,0.5\n12,2026-11-02T11:00:00Z,NaN\n");

        var read = await Labels.ReadAsync(blank, CancellationToken.None);
        var readNan = () => Labels.ReadAsync(nan, CancellationToken.None);

        read.Users.Should().Equal(7, 12);
        (await readNan.Should().ThrowAsync<InputException>()).WithMessage("*nan.csv:3*label*");
    }

    [Theory]
    [InlineData("labels.jsonl", "{\"user_id\":7,\"label_time\":1793750400}\n", "line 1: label_time 1970-01-01T00:29:53.7504*Z is before 1971: seconds or milliseconds")]
    [InlineData("labels.csv", "user_id,label_time\n7,1793750400000\n8,1793754000000\n", "line 2: label_time 1970-01-21T18:15:50.4*Z is before 1971")]
    [InlineData("labels.csv", "user_id,label_time,label\n", "holds no label rows")]
    [InlineData("labels.jsonl", "\n", "holds no label rows")]
    [InlineData("labels.jsonl", "{\"user_id\":7,\"label_time\":-5}\n", "line 1: label_time 1969-12-31T23:59:59.999995Z is before 1971")]
    // The column typed by a first text value: a later row's epoch milliseconds are held to the same rule.
    [InlineData("labels.jsonl", "{\"user_id\":7,\"label_time\":\"2026-11-05T10:00:00Z\"}\n{\"user_id\":8,\"label_time\":1793750400000}\n", "line 2: label_time 1970-01-21T18:15:50.4*Z is before 1971")]
    public async Task A_label_file_of_epoch_seconds_or_with_no_rows_is_refused_saying_so(string name, string content, string message)
    {
        using var dir = new TempDir();
        string file = dir.File(name);
        await File.WriteAllTextAsync(file, content);

        var read = () => Labels.ReadAsync(file, CancellationToken.None);

        (await read.Should().ThrowAsync<InputException>()).WithMessage($"*{name}*{message}*");
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
    [Fact]
    public async Task A_Parquet_label_file_with_label_time_as_ISO_text_or_microseconds_reads_as_DuckDB_reads_the_instants()
    {
        using var dir = new TempDir();
        string text = dir.File("text.parquet"), micros = dir.File("micros.parquet");
        const string Rows = "SELECT * FROM (VALUES (7, '2026-11-02T10:00:00Z', 1), (12, '2026-11-03T00:00:00.25+02:00', 0), (-3, '1969-12-31T23:59:59.5Z', 1)) t(user_id, t, label)";
        var duck = await DuckDb.RunAsync(
            $"COPY (SELECT user_id::BIGINT AS user_id, t AS label_time, label FROM ({Rows})) TO {DuckDb.Quote(text)} (FORMAT parquet)",
            // A number before 1971 is refused (seconds or milliseconds mistaken for µs), so the microseconds file has the later rows.
            $"COPY (SELECT user_id::BIGINT AS user_id, epoch_us(t::TIMESTAMPTZ) AS label_time, label FROM ({Rows}) WHERE t::TIMESTAMPTZ >= TIMESTAMPTZ '1971-01-01 00:00:00+00') TO {DuckDb.Quote(micros)} (FORMAT parquet)",
            $"SELECT epoch_us(t::TIMESTAMPTZ) FROM ({Rows})");
        var expected = duck[2].Rows.Select(r => r[0].ValueKind == System.Text.Json.JsonValueKind.String ? long.Parse(r[0].GetString()!, System.Globalization.CultureInfo.InvariantCulture) : r[0].GetInt64()).ToArray();

        var fromText = await Labels.ReadAsync(text, CancellationToken.None);
        var fromMicros = await Labels.ReadAsync(micros, CancellationToken.None);

        fromText.Times.Should().Equal(expected);
        fromMicros.Times.Should().Equal(expected[..2]);
        fromText.Users.Should().Equal(7, 12, -3);
    }

    /// <summary>pandas writes nanosecond timestamps (zstd from Polars), Spark millisecond ones (lz4_raw); ids may be unsigned.</summary>
    [Theory]
    [InlineData("TIMESTAMP_NS", "zstd")]
    [InlineData("TIMESTAMP_MS", "lz4_raw")]
    public async Task A_Parquet_label_file_with_nanosecond_or_millisecond_label_times_and_unsigned_ids_reads_as_DuckDB_reads_it(string type, string codec)
    {
        using var dir = new TempDir();
        string file = dir.File("labels.parquet");
        const string Rows = "SELECT * FROM (VALUES (7, '2026-11-02T10:00:00.123456789Z', 1), (4000000000, '2026-11-03T00:00:00.25+02:00', 0), (3, '1969-12-31T23:59:59.5Z', 1)) t(user_id, t, label)";
        var duck = await DuckDb.RunAsync(
            $"COPY (SELECT user_id::UINTEGER AS user_id, t::TIMESTAMPTZ::TIMESTAMP::{type} AS label_time, label FROM ({Rows})) TO {DuckDb.Quote(file)} (FORMAT parquet, COMPRESSION {codec})",
            $"SELECT CAST(user_id AS VARCHAR), CAST(epoch_us(label_time) AS VARCHAR) FROM read_parquet({DuckDb.Quote(file)})",
            $"SELECT logical_type FROM parquet_schema({DuckDb.Quote(file)}) WHERE name = 'label_time'");
        duck[2].Rows.Single()[0].GetString().Should().Contain(type == "TIMESTAMP_NS" ? "NANOS" : "MILLIS");

        var labels = await Labels.ReadAsync(file, CancellationToken.None);

        labels.Users.Select(u => u.ToString(System.Globalization.CultureInfo.InvariantCulture)).Should().Equal(duck[1].Rows.Select(r => r[0].GetString()));
        labels.Times.Select(t => t.ToString(System.Globalization.CultureInfo.InvariantCulture)).Should().Equal(duck[1].Rows.Select(r => r[1].GetString()));
        labels.Times[0].Should().Be(Timestamps.ToMicros(new DateTimeOffset(2026, 11, 2, 10, 0, 0, TimeSpan.Zero)) + (type == "TIMESTAMP_NS" ? 123_456 : 123_000));
    }

    [Fact]
    public async Task A_Parquet_label_file_whose_label_time_text_is_not_an_instant_is_refused_naming_the_row()
    {
        using var dir = new TempDir();
        string file = dir.File("labels.parquet");
        await DuckDb.RunAsync($"COPY (SELECT * FROM (VALUES (7::BIGINT, '2026-11-02T10:00:00Z'), (8::BIGINT, 'yesterday')) t(user_id, label_time)) TO {DuckDb.Quote(file)} (FORMAT parquet)");

        var read = () => Labels.ReadAsync(file, CancellationToken.None);

        (await read.Should().ThrowAsync<InputException>()).WithMessage("*label_time*row 2*\"yesterday\" is not an ISO-8601 instant*");
    }

    /// <summary>Every label column goes into the training set: one Weft cannot read fails the file, it does not vanish.</summary>
    [Fact]
    public async Task A_Parquet_label_file_with_a_column_Weft_does_not_read_is_refused_naming_the_column()
    {
        using var dir = new TempDir();
        string file = dir.File("labels.parquet");
        await DuckDb.RunAsync($"COPY (SELECT 7::BIGINT AS user_id, TIMESTAMPTZ '2026-11-02 10:00:00+00' AS label_time, INTERVAL 2 DAY AS wait) TO {DuckDb.Quote(file)} (FORMAT parquet)");

        var read = () => Labels.ReadAsync(file, CancellationToken.None);

        (await read.Should().ThrowAsync<InputException>()).WithMessage("*labels.parquet*column 'wait' cannot be read*INTERVAL*");
    }

    /// <summary>A label file is typed from all of its rows: a guess from the first 1,000 dropped or mistyped a column that only later rows showed.</summary>
    [Theory]
    [InlineData("jsonl", "label", "int64")]
    [InlineData("jsonl", "score", "float64")]
    [InlineData("csv", "score", "float64")]
    [InlineData("csv", "answer", "string")]
    [InlineData("jsonl", "late", "int64")]
    public async Task A_label_column_that_first_shows_its_type_past_row_1000_keeps_its_values(string format, string column, string type)
    {
        using var dir = new TempDir();
        string file = dir.File("labels." + format);
        var rows = new List<string>();
        if (format == "csv")
        {
            rows.Add("user_id,label_time,score,answer");
        }

        const string LateColumn = ",\"late\":3";
        for (int i = 0; i < 1200; i++)
        {
            bool past = i >= 1100;
            string time = $"2026-11-02T{i % 24:D2}:00:00Z";
            // Up to row 1,100: whole numbers, 0/1 answers and no 'late' column (nulls for 'label'); then fractions, words and values.
            rows.Add(format == "csv"
                ? $"{i},{time},{(past ? i + 0.5 : i).ToString(System.Globalization.CultureInfo.InvariantCulture)},{(past ? "yes" : (i % 2).ToString(System.Globalization.CultureInfo.InvariantCulture))}"
                : $$"""{"user_id":{{i}},"label_time":"{{time}}","score":{{(past ? i + 0.5 : i).ToString(System.Globalization.CultureInfo.InvariantCulture)}},"label":{{(past ? "7" : "null")}}{{(past ? LateColumn : "")}}}""");
        }

        await File.WriteAllLinesAsync(file, rows);

        var read = await Labels.ReadAsync(file, CancellationToken.None);

        var field = read.Rows.Schema.Should().ContainSingle(f => f.Name == column).Subject;
        field.Type.ToString().Should().BeEquivalentTo(type);
        var values = read.Rows[column];
        values.IsNull(1150).Should().BeFalse();
        Convert.ToString(values.GetValue(1150), System.Globalization.CultureInfo.InvariantCulture).Should().Be(column switch
        {
            "score" => "1150.5",
            "answer" => "yes",
            "label" => "7",
            _ => "3",
        });
    }

    [Theory]
    [InlineData("labels.json", "[{\"user_id\":7,\"label_time\":\"2026-11-02T10:00:00Z\"}]\n", "labels.json:1: a row is a JSON object, not a JSON array (a JSON array of rows is not read")]
    [InlineData("labels.txt", "user_id,label_time\n7,2026-11-02T10:00:00Z\n", "is not JSON lines (*labels.txt:1:*); label files are Parquet (.parquet), CSV (.csv) or JSON lines")]
    [InlineData("labels.jsonl", "{\"user_id\":7,\"label_time\":\"2026-11-02T10:00:00Z\",\"user_id\":5}\n", "labels.jsonl:1: column 'user_id' is given twice in one row")]
    [InlineData("labels.jsonl", "{\"user_id\":7,\"label_time\":\"2026-11-02T10:00:00Z\",\"ctx\":{\"a\":1}}\n", "labels.jsonl:1: column 'ctx' holds a JSON object; label columns hold numbers, booleans, text or timestamps")]
    // A text file's rows are named by line, past blank lines and a CSV header, as its parse errors name them.
    [InlineData("labels.jsonl", "{\"user_id\":7,\"label_time\":\"2026-11-05T00:00:00Z\"}\n\n\n{\"user_id\":7,\"label_time\":\"2026-11-05T00:00:00Z\"}\n{\"user_id\":7,\"label_time\":null}\n", "labels.jsonl', line 5: label_time is empty")]
    [InlineData("labels.csv", "user_id,label_time,y\n7,2026-11-05T00:00:00Z,1\n,2026-11-05T00:00:00Z,0\n", "labels.csv', line 3: user_id is empty")]
    // A row cut short would read its label as null.
    [InlineData("labels.csv", "user_id,label_time,y\n7,2026-11-05T00:00:00Z,1\n7,2026-11-05T00:00:00Z\n", "labels.csv', line 3: 2 cell(s) under a header of 3")]
    // Two columns one case apart: DuckDB and Spark read them as one, or rename one.
    [InlineData("labels.jsonl", "{\"user_id\":7,\"label_time\":\"2026-11-02T10:00:00Z\",\"Y\":1,\"y\":2}\n", "columns 'Y' and 'y' differ only in case")]
    public async Task A_label_file_Weft_cannot_read_as_rows_is_refused_saying_why_and_where(string name, string content, string message)
    {
        using var dir = new TempDir();
        string file = dir.File(name);
        await File.WriteAllTextAsync(file, content);

        var read = () => Labels.ReadAsync(file, CancellationToken.None);

        (await read.Should().ThrowAsync<InputException>()).WithMessage($"*{message}*");
    }

    [Fact]
    public async Task A_Parquet_label_file_with_no_rows_is_refused_as_CSV_and_JSON_lines_are()
    {
        using var dir = new TempDir();
        string file = dir.File("labels.parquet");
        await DuckDb.RunAsync($"COPY (SELECT 7::BIGINT AS user_id, TIMESTAMPTZ '2026-11-02 10:00:00+00' AS label_time WHERE false) TO {DuckDb.Quote(file)} (FORMAT parquet)");

        var read = () => Labels.ReadAsync(file, CancellationToken.None);

        (await read.Should().ThrowAsync<InputException>()).WithMessage("*labels.parquet' holds no label rows*");
    }

    /// <summary>
    /// A label_time in a CSV or JSON-lines file is ISO-8601 text (or integer µs), as in a Parquet file: a
    /// date the framework would guess at (<c>05/11/2026</c> is 11 May as invariant culture reads it, 5
    /// November to a European) or an RFC 1123 date is refused naming its line, not read as another day.
    /// </summary>
    [Theory]
    [InlineData("labels.csv", "user_id,label_time,y\n7,2026-11-05T10:00:00Z,1\n8,05/11/2026 10:00:00,0\n", "labels.csv', line 3: label_time \"05/11/2026 10:00:00\" is not an ISO-8601 instant")]
    [InlineData("labels.csv", "user_id,label_time\n7,\"Thu, 05 Nov 2026 10:00:00 GMT\"\n", "labels.csv', line 2: label_time \"Thu, 05 Nov 2026 10:00:00 GMT\" is not an ISO-8601 instant")]
    [InlineData("labels.jsonl", "{\"user_id\":7,\"label_time\":\"2026-11-05T10:00:00Z\"}\n{\"user_id\":8,\"label_time\":\"11/5/2026\"}\n", "labels.jsonl', line 2: label_time \"11/5/2026\" is not an ISO-8601 instant")]
    // A column typed by its first value as microseconds still has each text value checked.
    [InlineData("labels.jsonl", "{\"user_id\":7,\"label_time\":1793872800000000}\n{\"user_id\":8,\"label_time\":\"November 5, 2026\"}\n", "labels.jsonl', line 2: label_time \"November 5, 2026\" is not an ISO-8601 instant")]
    public async Task A_text_label_time_that_is_not_ISO_8601_is_refused_naming_its_line_as_in_a_Parquet_file(string name, string content, string message)
    {
        using var dir = new TempDir();
        string file = dir.File(name);
        await File.WriteAllTextAsync(file, content);

        var read = () => Labels.ReadAsync(file, CancellationToken.None);

        (await read.Should().ThrowAsync<InputException>()).WithMessage($"*{message}*");
    }

    /// <summary>The ISO-8601 forms a label file may hold: an offset, a space for the 'T', a bare date, no zone (UTC), a space after the comma.</summary>
    [Fact]
    public async Task ISO_8601_label_times_with_offsets_spaces_dates_and_no_zone_read_as_the_instants_they_name()
    {
        using var dir = new TempDir();
        string file = dir.File("labels.csv");
        await File.WriteAllTextAsync(file, "user_id,label_time\n1,2026-11-05T12:00:00+02:00\n2,2026-11-05 10:00:00\n3,2026-11-05\n4,2026-11-05T10:00:00.5Z\n5, 2026-11-05T10:00:00Z\n");

        var read = await Labels.ReadAsync(file, CancellationToken.None);

        long ten = Timestamps.ToMicros(new DateTimeOffset(2026, 11, 5, 10, 0, 0, TimeSpan.Zero));
        read.Times.Should().Equal(ten, ten, ten - (10 * 3_600_000_000L), ten + 500_000, ten);
    }

    /// <summary>
    /// Label columns are carried into the training set as they are: a Parquet label file's columns of
    /// every type Weft reads — lists, dates, small integers, NaN and nulls, text with odd characters —
    /// read back by DuckDB from the training set equal the label file's, row for row.
    /// </summary>
    [Fact]
    public async Task A_Parquet_label_files_columns_come_out_of_the_training_set_file_as_DuckDB_reads_them_in_the_labels()
    {
        using var dir = new TempDir();
        string labels = dir.File("labels.parquet"), output = dir.File("set.parquet");
        const string Columns = "user_id, label_time, y, score, small, day, tags, note";
        await DuckDb.RunAsync($"""
            COPY (SELECT * FROM (VALUES
                (7::BIGINT, TIMESTAMPTZ '2026-11-02 10:00:00+00', true, 0.5::DOUBLE, 3::INTEGER, DATE '2026-11-01', [1, 2]::BIGINT[], 'a'),
                (7::BIGINT, TIMESTAMPTZ '2026-11-02 10:00:00+00', NULL, 'NaN'::DOUBLE, NULL::INTEGER, NULL::DATE, []::BIGINT[], 'é, "q"'),
                (-3::BIGINT, TIMESTAMPTZ '2026-11-03 00:00:00.25+00', false, NULL::DOUBLE, -1::INTEGER, DATE '1999-12-31', NULL::BIGINT[], NULL)
              ) t({Columns})) TO {DuckDb.Quote(labels)} (FORMAT parquet)
            """);
        var (rows, users, times) = await Labels.ReadAsync(labels, CancellationToken.None);
        var signal = BatchWorld.Engagement();
        var empty = new SequenceTable(rows, new int[rows.RowCount + 1], EventBatch.Empty(signal.SequenceColumns), new bool[rows.RowCount]);

        await SequenceFiles.WriteAsync(output, empty, signal, new Dictionary<string, string>(), pad: null, nullable: null, CancellationToken.None);

        users.Should().Equal(7, 7, -3);
        times.Should().HaveCount(3);
        // day: a date reads as its midnight UTC, a timestamp; compared as one.
        string Select(string file) => $"SELECT user_id, epoch_us(label_time), y, score::VARCHAR, small, epoch_us(day::TIMESTAMPTZ), tags, note FROM read_parquet({DuckDb.Quote(file)})";
        var duck = await DuckDb.RunAsync(
            $"SELECT count(*) FROM ({Select(labels)} EXCEPT ALL {Select(output)})",
            $"SELECT count(*) FROM ({Select(output)} EXCEPT ALL {Select(labels)})",
            $"SELECT count(*) FROM read_parquet({DuckDb.Quote(output)})");
        duck[2].Rows[0][0].GetString().Should().Be("3");
        duck[0].Rows[0][0].GetString().Should().Be("0", "every label row is in the training set as it was");
        duck[1].Rows[0][0].GetString().Should().Be("0");
    }
}
