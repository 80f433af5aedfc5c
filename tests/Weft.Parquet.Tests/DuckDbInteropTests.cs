using System.Globalization;
using System.Text.Json;
using Weft.Parquet.Format;

namespace Weft.Parquet.Tests;

/// <summary>
/// Differential tests against DuckDB (tests/interop/duckdb.mjs, @duckdb/node-api): DuckDB reads what
/// Weft writes, and Weft reads what DuckDB writes. Where they disagree, DuckDB is the reference.
/// </summary>
public sealed class DuckDbInteropTests
{
    private static readonly ParquetSchema AllTypes = new(
    [
        new ParquetField("id", ParquetType.Int64, false),
        new ParquetField("b", ParquetType.Boolean, true),
        new ParquetField("i32", ParquetType.Int32, true),
        new ParquetField("i64", ParquetType.Int64, false),
        new ParquetField("f", ParquetType.Float, true),
        new ParquetField("d", ParquetType.Double, true),
        new ParquetField("s", ParquetType.String, true),
        new ParquetField("s_req", ParquetType.String, false),
        new ParquetField("ts", ParquetType.TimestampMicros, true),
        new ParquetField("fl", ParquetType.Float, true, IsList: true),
        new ParquetField("sl", ParquetType.String, true, IsList: true),
        new ParquetField("il", ParquetType.Int64, false, IsList: true),
        new ParquetField("tl", ParquetType.TimestampMicros, true, IsList: true),
        new ParquetField("bl", ParquetType.Boolean, false, IsList: true),
        new ParquetField("dl", ParquetType.Double, true, IsList: true),
        new ParquetField("i32l", ParquetType.Int32, true, IsList: true),
    ]);

    private static readonly Dictionary<string, string> ExpectedDuckTypes = new()
    {
        ["id"] = "BIGINT",
        ["b"] = "BOOLEAN",
        ["i32"] = "INTEGER",
        ["i64"] = "BIGINT",
        ["f"] = "FLOAT",
        ["d"] = "DOUBLE",
        ["s"] = "VARCHAR",
        ["s_req"] = "VARCHAR",
        // UTC-adjusted micros: DuckDB reports TIMESTAMP WITH TIME ZONE.
        ["ts"] = "TIMESTAMP WITH TIME ZONE",
        ["fl"] = "FLOAT[]",
        ["sl"] = "VARCHAR[]",
        ["il"] = "BIGINT[]",
        ["tl"] = "TIMESTAMP WITH TIME ZONE[]",
        ["bl"] = "BOOLEAN[]",
        ["dl"] = "DOUBLE[]",
        ["i32l"] = "INTEGER[]",
    };

    public static TheoryData<string> WriterVariants() => new() { "snappy-dictionary", "gzip", "plain-uncompressed", "snappy-fallback-small-pages" };

    private static ParquetWriterOptions Options(string variant) => variant switch
    {
        "snappy-dictionary" => new ParquetWriterOptions { Compression = ParquetCompression.Snappy, UseDictionary = true },
        "gzip" => new ParquetWriterOptions { Compression = ParquetCompression.Gzip },
        "plain-uncompressed" => new ParquetWriterOptions { Compression = ParquetCompression.Uncompressed, UseDictionary = false },
        "snappy-fallback-small-pages" => new ParquetWriterOptions { MaxDictionarySize = 64, DataPageSize = 300 },
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    };

    [Theory]
    [MemberData(nameof(WriterVariants))]
    public async Task DuckDB_reads_every_type_null_and_list_that_Weft_writes(string variant)
    {
        using var temp = new TempDir();
        var path = temp.File($"weft-{variant}.parquet");
        var rng = new Random(20240601);
        var groups = new List<ParquetColumnData[]>();
        var first = 0L;
        foreach (var rows in new[] { 400, 1, 250 })
        {
            var columns = new ParquetColumnData[AllTypes.Fields.Count];
            columns[0] = ParquetColumnData.FromValues(AllTypes.Fields[0], Enumerable.Range(0, rows).Select(i => first + i).ToArray());
            for (var c = 1; c < columns.Length; c++)
            {
                columns[c] = TestColumns.Random(AllTypes.Fields[c], rows, rng);
            }

            groups.Add(columns);
            first += rows;
        }

        await using (var writer = await ParquetFileWriter.CreateAsync(path, AllTypes, Options(variant)))
        {
            writer.SetMetadata("weft.test", variant);
            foreach (var g in groups)
            {
                await writer.WriteRowGroupAsync(g);
            }
        }

        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $"DESCRIBE SELECT * FROM read_parquet({file})",
            $"SELECT * FROM read_parquet({file}) ORDER BY id",
            $"SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata({file})",
            $"SELECT row_group_id, path_in_schema, stats_min_value, stats_max_value, stats_null_count FROM parquet_metadata({file}) WHERE path_in_schema IN ('i64', 's_req', 'i32') ORDER BY row_group_id, path_in_schema");

        // DESCRIBE: one row per column with its DuckDB type.
        var describe = results[0];
        var described = describe.Rows.ToDictionary(r => r[describe.Index("column_name")].GetString()!, r => r[describe.Index("column_type")].GetString()!);
        described.Should().Equal(ExpectedDuckTypes);

        // SELECT *: same rows, values and nulls.
        var select = results[1];
        select.Columns.Should().Equal(AllTypes.Fields.Select(f => f.Name));
        select.Rows.Should().HaveCount((int)first);
        var expected = AllTypes.Fields.Select((_, c) => TestColumns.Concat(groups.Select(g => g[c]).ToArray())).ToArray();
        for (var row = 0; row < first; row++)
        {
            for (var c = 0; c < expected.Length; c++)
            {
                AssertDuckValue(expected[c].Field, select.Rows[row][c], TestColumns.ValueAt(expected[c], row), $"{variant}: row {row} column '{expected[c].Field.Name}'");
            }
        }

        // Key/value metadata.
        results[2].Rows.Select(r => (r[0].GetString(), r[1].GetString())).Should().Contain(("weft.test", variant));

        // Statistics as DuckDB decodes them.
        var stats = results[3];
        stats.Rows.Should().HaveCount(3 * 3);
        foreach (var row in stats.Rows)
        {
            var g = int.Parse(row[0].GetString()!, CultureInfo.InvariantCulture);
            var column = row[1].GetString()!;
            var data = groups[g][AllTypes.IndexOf(column)];
            var present = Enumerable.Range(0, data.RowCount).Where(i => !data.IsNull(i)).Select(i => data.Values.GetValue(i)!).ToList();
            var (min, max) = column == "s_req"
                ? (present.Cast<string>().Min(StringComparer.Ordinal)!, present.Cast<string>().Max(StringComparer.Ordinal)!)
                : (Convert.ToString(present.Min(), CultureInfo.InvariantCulture)!, Convert.ToString(present.Max(), CultureInfo.InvariantCulture)!);
            if (column == "s_req" && present.Cast<string>().Any(s => s.Any(char.IsSurrogate)))
            {
                continue; // UTF-16 ordinal order differs from UTF-8 order only with surrogates; covered by unit tests.
            }

            row[2].GetString().Should().Be(min, $"{variant}: min of '{column}' in row group {g}");
            row[3].GetString().Should().Be(max, $"{variant}: max of '{column}' in row group {g}");
            row[4].GetString().Should().Be(data.Nulls?.Count(n => n).ToString(CultureInfo.InvariantCulture) ?? "0");
        }
    }

    public static TheoryData<string> DuckCodecs() => new() { "snappy", "gzip", "uncompressed", "zstd", "lz4_raw" };

    [Theory]
    [MemberData(nameof(DuckCodecs))]
    public async Task Weft_reads_what_DuckDB_writes(string codec)
    {
        using var temp = new TempDir();
        var path = temp.File($"duck-{codec}.parquet");
        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $"""
            COPY (
              SELECT
                i::BIGINT AS id,
                CASE WHEN i % 7 = 0 THEN NULL ELSE 'cat_' || (i % 5) END AS s,
                'unique-' || i || '-ü' AS s_unique,
                CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 37 - 100000)::INTEGER END AS i32,
                (i * 1000003 - 2000000000)::BIGINT AS i64,
                CASE WHEN i % 13 = 0 THEN NULL WHEN i % 17 = 0 THEN 'nan'::DOUBLE WHEN i % 19 = 0 THEN '-inf'::DOUBLE ELSE i / 3.0 END::DOUBLE AS d,
                (i / 7.0)::FLOAT AS f,
                CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
                TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(i * 1234567 - 3000000000) AS ts,
                TIMESTAMP '1969-12-31 23:59:59' + to_microseconds(i * 999) AS ts_naive,
                CASE WHEN i % 9 = 0 THEN NULL WHEN i % 4 = 0 THEN [] ELSE [i::FLOAT, (i / 2.0)::FLOAT, -0.0::FLOAT] END AS fl,
                CASE WHEN i % 10 = 0 THEN NULL WHEN i % 6 = 0 THEN [] ELSE ['a' || (i % 4), 'b', 'c' || i] END AS sl,
                [i::BIGINT] AS il
              FROM range(0, 5000) t(i)
            ) TO {file} (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE 1000)
            """,
            $"SELECT * FROM read_parquet({file}) ORDER BY id");
        var reference = results[1];

        await using var reader = await ParquetFileReader.OpenAsync(path);

        reader.RowGroups.Should().HaveCountGreaterThan(1, "the file has several row groups");
        reader.Schema.Fields.Should().Equal(
            new ParquetField("id", ParquetType.Int64, true),
            new ParquetField("s", ParquetType.String, true),
            new ParquetField("s_unique", ParquetType.String, true),
            new ParquetField("i32", ParquetType.Int32, true),
            new ParquetField("i64", ParquetType.Int64, true),
            new ParquetField("d", ParquetType.Double, true),
            new ParquetField("f", ParquetType.Float, true),
            new ParquetField("b", ParquetType.Boolean, true),
            new ParquetField("ts", ParquetType.TimestampMicros, true),
            new ParquetField("ts_naive", ParquetType.TimestampMicros, true),
            new ParquetField("fl", ParquetType.Float, true, IsList: true, ElementNullable: true),
            new ParquetField("sl", ParquetType.String, true, IsList: true, ElementNullable: true),
            new ParquetField("il", ParquetType.Int64, true, IsList: true, ElementNullable: true));
        reader.Footer.RowGroups.SelectMany(g => g.Columns).Where(c => c.MetaData.PathInSchema[0] == "s")
            .Should().OnlyContain(c => c.MetaData.DictionaryPageOffset != null, "DuckDB dictionary-encodes the low-cardinality strings");
        var expectedCodec = Enum.Parse<Weft.Parquet.Format.CompressionCodec>(codec.Replace("_", "", StringComparison.Ordinal), ignoreCase: true);
        reader.Footer.RowGroups.SelectMany(g => g.Columns).Should().OnlyContain(c => c.MetaData.Codec == expectedCodec, $"DuckDB wrote every page with {codec}");

        var columns = new List<ParquetColumnData>();
        foreach (var field in reader.Schema.Fields)
        {
            var parts = new List<ParquetColumnData>();
            for (var g = 0; g < reader.RowGroups.Count; g++)
            {
                parts.Add(await reader.ReadColumnAsync(g, field.Name));
            }

            columns.Add(TestColumns.Concat(parts));
        }

        reference.Rows.Should().HaveCount(5000);
        columns[0].RowCount.Should().Be(5000);
        for (var row = 0; row < 5000; row++)
        {
            for (var c = 0; c < columns.Count; c++)
            {
                AssertDuckValue(columns[c].Field, reference.Rows[row][reference.Index(columns[c].Field.Name)], TestColumns.ValueAt(columns[c], row), $"{codec}: row {row} column '{columns[c].Field.Name}'");
            }
        }

        // Statistics DuckDB wrote prune row groups.
        var lastGroupStart = 5000 - reader.RowGroups[^1].RowCount;
        reader.FindRowGroups("id", lastGroupStart, null).Should().Equal(reader.RowGroups.Count - 1);
        reader.RowGroups[0]["s"].Min.Should().Be("cat_0");
        reader.RowGroups[0]["s"].Max.Should().Be("cat_4");
    }

    [Fact]
    public async Task A_codec_Weft_does_not_read_is_named_with_the_ones_it_does()
    {
        using var temp = new TempDir();
        var path = temp.File("duck-brotli.parquet");
        await DuckDb.RunAsync($"COPY (SELECT i::BIGINT AS id FROM range(0, 100) t(i)) TO {DuckDb.Quote(path)} (FORMAT parquet, COMPRESSION brotli)");
        await using var reader = await ParquetFileReader.OpenAsync(path);

        var read = async () => await reader.ReadColumnAsync(0, "id");

        (await read.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should()
            .Contain("compression codec BROTLI is not supported").And.Contain("UNCOMPRESSED, SNAPPY, GZIP, ZSTD and LZ4_RAW");
    }

    /// <summary>
    /// PARQUET_VERSION V2 makes DuckDB write DELTA_BINARY_PACKED integers and timestamps,
    /// DELTA_LENGTH_BYTE_ARRAY strings and BYTE_STREAM_SPLIT floating point, as other v2 writers do.
    /// </summary>
    [Theory]
    [InlineData("gzip")]
    [InlineData("zstd")]
    public async Task Weft_reads_DuckDB_PARQUET_VERSION_V2_columns_in_every_encoding_it_chooses(string codec)
    {
        using var temp = new TempDir();
        var path = temp.File($"duck-v2-{codec}.parquet");
        var file = DuckDb.Quote(path);
        string[] names = ["id", "s", "b", "small", "sl", "i32", "su", "d", "f", "ts", "u", "big"];
        var results = await DuckDb.RunAsync(
            $"""
            COPY (
              SELECT i::BIGINT AS id,
                     CASE WHEN i % 7 = 0 THEN NULL ELSE 'cat_' || (i % 5) END AS s,
                     CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
                     (i % 3)::INTEGER AS small,
                     CASE WHEN i % 5 = 0 THEN NULL ELSE ['x', 'y' || (i % 2)] END AS sl,
                     CASE WHEN i % 4 = 0 THEN NULL ELSE ((i * 7919) % 100003 - 50000)::INTEGER END AS i32,
                     CASE WHEN i % 6 = 0 THEN NULL ELSE 'unique-' || i || repeat('é', i % 4) END AS su,
                     CASE WHEN i % 9 = 0 THEN NULL ELSE i / 3.0 END::DOUBLE AS d,
                     (i / 7.0 - 100)::FLOAT AS f,
                     make_timestamp((i - 1500) * 1234567891) AS ts,
                     (i * 1431655)::UINTEGER AS u,
                     CASE WHEN i % 2 = 0 THEN 9223372036854775807 - i ELSE -9223372036854775807 + i END::BIGINT AS big
              FROM range(0, 3000) t(i)
            ) TO {file} (FORMAT parquet, COMPRESSION {codec}, PARQUET_VERSION V2)
            """,
            $"SELECT {string.Join(", ", names.Select(n => n == "u" ? "u::BIGINT AS u" : n))} FROM read_parquet({file})",
            $"SELECT DISTINCT unnest(string_split(encodings, ', ')) AS e FROM parquet_metadata({file})");
        var reference = results[1];
        results[2].Rows.Select(r => r[0].GetString()).Should().Contain(["DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "BYTE_STREAM_SPLIT"]);

        await using var reader = await ParquetFileReader.OpenAsync(path);
        var columns = new List<ParquetColumnData>();
        foreach (var name in names)
        {
            var parts = new List<ParquetColumnData>();
            for (var g = 0; g < reader.RowGroups.Count; g++)
            {
                parts.Add(await reader.ReadColumnAsync(g, name));
            }

            columns.Add(TestColumns.Concat(parts));
        }

        reference.Rows.Should().HaveCount(3000);
        for (var row = 0; row < reference.Rows.Count; row++)
        {
            for (var c = 0; c < columns.Count; c++)
            {
                AssertDuckValue(columns[c].Field, reference.Rows[row][c], TestColumns.ValueAt(columns[c], row), $"v2 {codec}: row {row} column '{columns[c].Field.Name}'");
            }
        }
    }

    [Theory]
    [InlineData(ParquetCompression.Snappy)]
    [InlineData(ParquetCompression.Gzip)]
    [InlineData(ParquetCompression.Uncompressed)]
    public async Task Weft_and_DuckDB_read_the_same_values_from_DATA_PAGE_V2_pages(ParquetCompression compression)
    {
        var codec = Weft.Parquet.Encodings.PageCompression.ToThrift(compression);
        // DuckDB writes v1 data pages even with PARQUET_VERSION V2, so the v2 file is built by hand and
        // DuckDB is the reference for what it holds.
        var schema = new ParquetSchema(
        [
            new ParquetField("id", ParquetType.Int64, false),
            new ParquetField("s", ParquetType.String, true),
            new ParquetField("fl", ParquetType.Float, true, IsList: true),
            new ParquetField("b", ParquetType.Boolean, true),
            new ParquetField("dwell", ParquetType.Int64, false, IsList: true, ElementNullable: true),
            new ParquetField("grid", ParquetType.String, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
        ]);
        var rng = new Random(31);
        var rows = 700;
        var columns = schema.Fields.Select((f, c) => c == 0
            ? ParquetColumnData.FromValues(f, Enumerable.Range(0, rows).Select(i => (long)i).ToArray())
            : TestColumns.Random(f, rows, rng)).ToArray();
        using var temp = new TempDir();
        var path = temp.File($"v2-{codec}.parquet");
        await File.WriteAllBytesAsync(path, CraftedFiles.BuildDataPageV2File(schema, columns, rowsPerPage: 97, codec));

        await using var reader = await ParquetFileReader.OpenAsync(path);
        var weft = new List<ParquetColumnData>();
        foreach (var field in schema.Fields)
        {
            weft.Add(await reader.ReadColumnAsync(0, field.Name));
        }

        reader.V2PagesDecoded.Should().Be(6 * 8, "six columns of eight v2 pages each");
        for (var c = 0; c < columns.Length; c++)
        {
            TestColumns.AssertEqual(columns[c], weft[c]);
        }

        var duck = (await DuckDb.RunAsync($"SELECT * FROM read_parquet({DuckDb.Quote(path)}) ORDER BY id"))[0];
        duck.Rows.Should().HaveCount(rows);
        for (var row = 0; row < rows; row++)
        {
            for (var c = 0; c < columns.Length; c++)
            {
                AssertDuckValue(schema.Fields[c], duck.Rows[row][c], TestColumns.ValueAt(weft[c], row), $"v2 {codec}: row {row} column '{schema.Fields[c].Name}'");
            }
        }
    }

    private static readonly ParquetSchema NestedSchema = new(
    [
        new ParquetField("id", ParquetType.Int64, false),
        new ParquetField("dwell_ms", ParquetType.Int64, false, IsList: true, ElementNullable: true),
        new ParquetField("tags", ParquetType.String, true, IsList: true, ElementNullable: true),
        new ParquetField("scores", ParquetType.Double, true, IsList: true, ElementNullable: true),
        new ParquetField("flags", ParquetType.Boolean, false, IsList: true, ElementNullable: true),
        new ParquetField("seen", ParquetType.TimestampMicros, true, IsList: true, ElementNullable: true),
        new ParquetField("counts", ParquetType.Int32, false, IsList: true, ElementNullable: true),
        new ParquetField("embedding", ParquetType.Float, false, IsList: true) { ListDepth = 2 },
        new ParquetField("emb_opt", ParquetType.Float, true, IsList: true) { ListDepth = 2, InnerListNullable = true },
        new ParquetField("grid", ParquetType.Int32, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
        new ParquetField("words", ParquetType.String, false, IsList: true, ElementNullable: true) { ListDepth = 2 },
        new ParquetField("dd", ParquetType.Double, false, IsList: true) { ListDepth = 2, InnerListNullable = true },
        new ParquetField("tsn", ParquetType.TimestampMicros, true, IsList: true) { ListDepth = 2 },
        new ParquetField("bn", ParquetType.Boolean, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
        new ParquetField("ln", ParquetType.Int64, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
    ]);

    [Theory]
    [MemberData(nameof(WriterVariants))]
    public async Task DuckDB_reads_null_elements_and_nested_lists_that_Weft_writes(string variant)
    {
        using var temp = new TempDir();
        var path = temp.File($"weft-nested-{variant}.parquet");
        var rewrite = temp.File($"duck-rewrite-{variant}.parquet");
        var rng = new Random(20250301);
        var groups = new List<ParquetColumnData[]>();
        var first = 0L;
        foreach (var rows in new[] { 400, 1, 250 })
        {
            var columns = new ParquetColumnData[NestedSchema.Fields.Count];
            columns[0] = ParquetColumnData.FromValues(NestedSchema.Fields[0], Enumerable.Range(0, rows).Select(i => first + i).ToArray());
            for (var c = 1; c < columns.Length; c++)
            {
                columns[c] = TestColumns.Random(NestedSchema.Fields[c], rows, rng, nullRate: 0.2);
            }

            groups.Add(columns);
            first += rows;
        }

        await using (var writer = await ParquetFileWriter.CreateAsync(path, NestedSchema, Options(variant)))
        {
            foreach (var g in groups)
            {
                await writer.WriteRowGroupAsync(g);
            }
        }

        var file = DuckDb.Quote(path);
        const string totals = "SELECT path_in_schema, sum(num_values)::BIGINT AS n, sum(stats_null_count)::BIGINT AS nulls FROM parquet_metadata({0}) GROUP BY path_in_schema ORDER BY path_in_schema";
        var results = await DuckDb.RunAsync(
            $"DESCRIBE SELECT * FROM read_parquet({file})",
            $"SELECT * FROM read_parquet({file}) ORDER BY id",
            $"SELECT row_group_id, path_in_schema, num_values, stats_null_count, stats_min_value, stats_max_value FROM parquet_metadata({file}) ORDER BY row_group_id, column_id",
            $"COPY (SELECT * FROM read_parquet({file}) ORDER BY id) TO {DuckDb.Quote(rewrite)} (FORMAT parquet)",
            string.Format(CultureInfo.InvariantCulture, totals, file),
            string.Format(CultureInfo.InvariantCulture, totals, DuckDb.Quote(rewrite)));

        var describe = results[0];
        describe.Rows.Select(r => (r[describe.Index("column_name")].GetString(), r[describe.Index("column_type")].GetString())).Should().Equal(
            ("id", "BIGINT"), ("dwell_ms", "BIGINT[]"), ("tags", "VARCHAR[]"), ("scores", "DOUBLE[]"), ("flags", "BOOLEAN[]"),
            ("seen", "TIMESTAMP WITH TIME ZONE[]"), ("counts", "INTEGER[]"), ("embedding", "FLOAT[][]"), ("emb_opt", "FLOAT[][]"),
            ("grid", "INTEGER[][]"), ("words", "VARCHAR[][]"), ("dd", "DOUBLE[][]"), ("tsn", "TIMESTAMP WITH TIME ZONE[][]"),
            ("bn", "BOOLEAN[][]"), ("ln", "BIGINT[][]"));

        // Same rows, values and nulls at every level.
        var select = results[1];
        select.Rows.Should().HaveCount((int)first);
        var expected = NestedSchema.Fields.Select((_, c) => TestColumns.Concat(groups.Select(g => g[c]).ToArray())).ToArray();
        for (var row = 0; row < first; row++)
        {
            for (var c = 0; c < expected.Length; c++)
            {
                AssertDuckValue(expected[c].Field, select.Rows[row][c], TestColumns.ValueAt(expected[c], row), $"{variant}: row {row} column '{expected[c].Field.Name}'");
            }
        }

        // Per chunk: one value per level, null_count = levels without a value, min / max over the present integers.
        var metadata = results[2];
        metadata.Rows.Should().HaveCount(groups.Count * NestedSchema.Fields.Count);
        foreach (var row in metadata.Rows)
        {
            var g = int.Parse(row[0].GetString()!, CultureInfo.InvariantCulture);
            var column = NestedSchema.IndexOf(row[1].GetString()!.Split(", ")[0]);
            var data = groups[g][column];
            var present = TestColumns.PresentValues(data);
            var context = $"{variant}: row group {g} column '{data.Field.Name}'";
            row[2].GetString().Should().Be(TestColumns.LevelCount(data).ToString(CultureInfo.InvariantCulture), context);
            row[3].GetString().Should().Be((TestColumns.LevelCount(data) - present.Count).ToString(CultureInfo.InvariantCulture), context);
            if (data.Field.Type is ParquetType.Int32 or ParquetType.Int64 && present.Count > 0)
            {
                row[4].GetString().Should().Be(Convert.ToString(present.Min(), CultureInfo.InvariantCulture), context);
                row[5].GetString().Should().Be(Convert.ToString(present.Max(), CultureInfo.InvariantCulture), context);
            }
        }

        // DuckDB's own file of the same rows has as many levels and nulls per column.
        results[4].Rows.Should().HaveCount(NestedSchema.Fields.Count);
        results[4].Rows.Select(r => string.Join("|", r.Select(v => v.ToString())))
            .Should().Equal(results[5].Rows.Select(r => string.Join("|", r.Select(v => v.ToString()))));
    }

    [Theory]
    [MemberData(nameof(DuckCodecs))]
    public async Task Weft_reads_null_elements_and_nested_lists_that_DuckDB_writes(string codec)
    {
        using var temp = new TempDir();
        var path = temp.File($"duck-nested-{codec}.parquet");
        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $"""
            COPY (
              SELECT
                i::BIGINT AS id,
                CASE WHEN i % 9 = 0 THEN NULL WHEN i % 4 = 0 THEN []::INTEGER[]
                     ELSE list_transform(range(i % 5 + 1), j -> CASE WHEN (i + j) % 3 = 0 THEN NULL ELSE (i * 10 + j)::INTEGER END) END AS xs,
                CASE WHEN i % 7 = 0 THEN NULL
                     ELSE list_transform(range(i % 4), j -> CASE WHEN (i + j) % 5 = 0 THEN NULL ELSE 'w' || (i % 13) || '-' || j END) END AS words,
                CASE WHEN i % 8 = 0 THEN NULL
                     ELSE list_transform(range(i % 3), j -> CASE WHEN j = 1 AND i % 2 = 0 THEN NULL WHEN (i + j) % 11 = 0 THEN 'nan'::DOUBLE ELSE i / (j + 3.0) END) END AS scores,
                CASE WHEN i % 11 = 0 THEN NULL WHEN i % 6 = 0 THEN []::FLOAT[][]
                     ELSE list_transform(range(i % 4 + 1), j ->
                       CASE WHEN (i + j) % 5 = 0 THEN NULL WHEN (i + j) % 7 = 0 THEN []::FLOAT[]
                            ELSE list_transform(range((i + j) % 3 + 1), k -> CASE WHEN (i + j + k) % 4 = 0 THEN NULL ELSE (i * 0.5 + j - k)::FLOAT END) END) END AS grid,
                list_transform(range(i % 3), j -> list_transform(range(16), k -> ((i + j * 16 + k) / 7.0)::FLOAT)) AS embedding,
                CASE WHEN i % 10 = 0 THEN NULL
                     ELSE list_transform(range(i % 3 + 1), j -> CASE WHEN (i + j) % 4 = 0 THEN NULL
                       ELSE list_transform(range(j + 1), k -> CASE WHEN (i + k) % 6 = 0 THEN NULL ELSE 'c' || ((i + j + k) % 17) END) END) END AS word_grid,
                CASE WHEN i % 5 = 0 THEN NULL ELSE [[i::BIGINT, NULL], NULL, []] END AS longs
              FROM range(0, 3000) t(i)
            ) TO {file} (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE 1000)
            """,
            $"SELECT * FROM read_parquet({file}) ORDER BY id");
        var reference = results[1];

        await using var reader = await ParquetFileReader.OpenAsync(path);
        reader.RowGroups.Should().HaveCountGreaterThan(1, "the file has several row groups");
        reader.Schema.Fields.Should().Equal(
            new ParquetField("id", ParquetType.Int64, true),
            new ParquetField("xs", ParquetType.Int32, true, IsList: true, ElementNullable: true),
            new ParquetField("words", ParquetType.String, true, IsList: true, ElementNullable: true),
            new ParquetField("scores", ParquetType.Double, true, IsList: true, ElementNullable: true),
            new ParquetField("grid", ParquetType.Float, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
            new ParquetField("embedding", ParquetType.Float, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
            new ParquetField("word_grid", ParquetType.String, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
            new ParquetField("longs", ParquetType.Int64, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true });

        var columns = new List<ParquetColumnData>();
        foreach (var field in reader.Schema.Fields)
        {
            var parts = new List<ParquetColumnData>();
            for (var g = 0; g < reader.RowGroups.Count; g++)
            {
                parts.Add(await reader.ReadColumnAsync(g, field.Name));
            }

            columns.Add(TestColumns.Concat(parts));
        }

        reference.Rows.Should().HaveCount(3000);
        columns[0].RowCount.Should().Be(3000);
        for (var row = 0; row < 3000; row++)
        {
            for (var c = 0; c < columns.Count; c++)
            {
                AssertDuckValue(columns[c].Field, reference.Rows[row][reference.Index(columns[c].Field.Name)], TestColumns.ValueAt(columns[c], row), $"{codec}: row {row} column '{columns[c].Field.Name}'");
            }
        }

        // Nulls really occur at every level of the nested column.
        var grid = columns[4];
        grid.Nulls.Should().Contain(true);
        grid.InnerNulls.Should().Contain(true);
        grid.ElementNulls.Should().Contain(true);
        Enumerable.Range(0, grid.RowCount).Should().Contain(r => !grid.IsNull(r) && grid.Offsets![r] == grid.Offsets[r + 1], "some lists are empty");
        Enumerable.Range(0, grid.InnerOffsets!.Length - 1).Should().Contain(j => !grid.InnerNulls![j] && grid.InnerOffsets[j] == grid.InnerOffsets[j + 1], "some inner lists are empty");
        columns[5].ElementNulls.Should().BeNull("DuckDB's optional embedding elements are all present");
    }

    [Fact]
    public async Task Weft_reads_DuckDB_literal_lists_with_nulls_at_every_level()
    {
        using var temp = new TempDir();
        var path = temp.File("duck-literals.parquet");
        await DuckDb.RunAsync(
            $"""
            COPY (
              SELECT * FROM (VALUES
                (1, [1, NULL, 3]::INT[], [[1.0, 2.0], [3.0]]::FLOAT[][]),
                (2, NULL, NULL),
                (3, []::INT[], []::FLOAT[][]),
                (4, [NULL]::INT[], [NULL, [], [NULL, 4.5]]::FLOAT[][])
              ) t(id, xs, ys) ORDER BY id
            ) TO {DuckDb.Quote(path)} (FORMAT parquet)
            """);

        await using var reader = await ParquetFileReader.OpenAsync(path);
        var xs = await reader.ReadColumnAsync(0, "xs");
        var ys = await reader.ReadColumnAsync(0, "ys");

        xs.Nulls.Should().Equal(false, true, false, false);
        xs.Offsets.Should().Equal(0, 3, 3, 3, 4);
        xs.ElementNulls.Should().Equal(false, true, false, true);
        xs.GetValues<int>().Should().Equal(1, 0, 3, 0);

        ys.Field.ListDepth.Should().Be(2);
        ys.Nulls.Should().Equal(false, true, false, false);
        ys.Offsets.Should().Equal(0, 2, 2, 2, 5);
        ys.InnerOffsets.Should().Equal(0, 2, 3, 3, 3, 5);
        ys.InnerNulls.Should().Equal(false, false, true, false, false);
        ys.ElementNulls.Should().Equal(false, false, false, true, false);
        ys.GetValues<float>().Should().Equal(1f, 2f, 3f, 0f, 4.5f);

        var stats = reader.RowGroups[0]["ys"];
        stats.Min.Should().Be(1f);
        stats.Max.Should().Be(4.5f);
    }

    /// <summary>
    /// Compares a DuckDB JSON value (see duckdb.mjs) with a Weft value in the <see cref="TestColumns.ValueAt"/>
    /// shape: null, a scalar, or a (nested) object?[] list whose entries may be null.
    /// </summary>
    private static void AssertDuckValue(ParquetField field, JsonElement duck, object? weft, string context)
    {
        if (weft is null)
        {
            duck.ValueKind.Should().Be(JsonValueKind.Null, context);
            return;
        }

        duck.ValueKind.Should().NotBe(JsonValueKind.Null, context);
        if (weft is object?[] list)
        {
            duck.ValueKind.Should().Be(JsonValueKind.Array, context);
            duck.GetArrayLength().Should().Be(list.Length, context);
            var k = 0;
            foreach (var item in duck.EnumerateArray())
            {
                AssertDuckValue(field, item, list[k], $"{context} [{k}]");
                k++;
            }

            return;
        }

        AssertScalar(field.Type, duck, weft, context);
    }

    private static void AssertScalar(ParquetType type, JsonElement duck, object? weft, string context)
    {
        switch (type)
        {
            case ParquetType.Boolean:
                duck.GetBoolean().Should().Be((bool)weft!, context);
                break;
            case ParquetType.Int32:
                duck.GetInt32().Should().Be((int)weft!, context);
                break;
            case ParquetType.Int64:
            case ParquetType.TimestampMicros:
                long.Parse(duck.GetString()!, CultureInfo.InvariantCulture).Should().Be((long)weft!, context);
                break;
            case ParquetType.Float:
                SameFloatingPoint(ParseDouble(duck), (float)weft!).Should().BeTrue($"{context}: DuckDB {duck}, Weft {TestColumns.Show(weft)}");
                break;
            case ParquetType.Double:
                SameFloatingPoint(ParseDouble(duck), (double)weft!).Should().BeTrue($"{context}: DuckDB {duck}, Weft {TestColumns.Show(weft)}");
                break;
            case ParquetType.String:
                duck.GetString().Should().Be((string)weft!, context);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }

    private static double ParseDouble(JsonElement duck) => duck.ValueKind == JsonValueKind.String
        ? duck.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            "-0" => -0.0,
            var s => throw new FormatException($"Unexpected DuckDB number '{s}'."),
        }
        : duck.GetDouble();

    /// <summary>Equal values, NaN equal to NaN (payloads may differ), and -0 distinct from +0.</summary>
    private static bool SameFloatingPoint(double duck, double weft) =>
        double.IsNaN(duck) ? double.IsNaN(weft) : BitConverter.DoubleToInt64Bits(duck) == BitConverter.DoubleToInt64Bits(weft);
}
