using System.Globalization;
using FluentAssertions;
using Xunit;

namespace Weft.Parquet.Tests;

/// <summary>
/// Layouts Weft reads but never writes, from the files pandas/pyarrow (TIMESTAMP(NANOS)), Spark (INT96,
/// TIMESTAMP(MILLIS)) and DuckDB (unsigned integers) write: each value must read as DuckDB reads it.
/// </summary>
public sealed class ForeignLayoutTests
{
    private static readonly string[] Columns = ["ts_ns", "ts_ms", "ts_s", "u8", "u16", "u32", "u64", "i8", "i16"];

    [Theory]
    [InlineData("snappy")]
    [InlineData("zstd")]
    public async Task Timestamps_in_every_unit_and_unsigned_integers_read_as_DuckDB_reads_them(string codec)
    {
        using var temp = new TempDir();
        var path = temp.File($"foreign-{codec}.parquet");
        var file = DuckDb.Quote(path);
        // The reference floors nanoseconds to microseconds in integers (DuckDB's % keeps the dividend's sign).
        const string FloorMicros = "((epoch_ns(ts_ns) - ((epoch_ns(ts_ns) % 1000) + 1000) % 1000) // 1000)";
        var results = await DuckDb.RunAsync(
            $"""
            COPY (
              SELECT
                i::BIGINT AS id,
                CASE WHEN i % 7 = 0 THEN NULL ELSE make_timestamp_ns((i - 1500) * 1234567891234 + (i % 1000) * 7) END AS ts_ns,
                CASE WHEN i % 5 = 0 THEN NULL ELSE make_timestamp((i - 1000) * 987654321987)::TIMESTAMP_MS END AS ts_ms,
                make_timestamp((i - 2000) * 55555555555)::TIMESTAMP_S AS ts_s,
                (i % 256)::UTINYINT AS u8,
                (i * 21)::USMALLINT AS u16,
                CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 1431655)::UINTEGER END AS u32,
                (i::UBIGINT * 3074457345618258) AS u64,
                (i % 128 - 64)::TINYINT AS i8,
                (i * 10 - 15000)::SMALLINT AS i16
              FROM range(0, 3000) t(i)
            ) TO {file} (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE 1000)
            """,
            $"""
            SELECT id, CAST({FloorMicros} AS VARCHAR) AS ts_ns, CAST(epoch_us(ts_ms) AS VARCHAR) AS ts_ms, CAST(epoch_us(ts_s) AS VARCHAR) AS ts_s,
                   CAST(u8 AS VARCHAR) AS u8, CAST(u16 AS VARCHAR) AS u16, CAST(u32 AS VARCHAR) AS u32, CAST(u64 AS VARCHAR) AS u64,
                   CAST(i8 AS VARCHAR) AS i8, CAST(i16 AS VARCHAR) AS i16
            FROM read_parquet({file}) ORDER BY id
            """);
        var reference = results[1];

        await using var reader = await ParquetFileReader.OpenAsync(path);

        reader.Schema.Fields.Select(f => (f.Name, f.Type)).Should().Equal(
            ("id", ParquetType.Int64), ("ts_ns", ParquetType.TimestampMicros), ("ts_ms", ParquetType.TimestampMicros), ("ts_s", ParquetType.TimestampMicros),
            ("u8", ParquetType.Int32), ("u16", ParquetType.Int32), ("u32", ParquetType.Int64), ("u64", ParquetType.Int64),
            ("i8", ParquetType.Int32), ("i16", ParquetType.Int32));
        reader.RowGroups.Should().HaveCountGreaterThan(1);
        reference.Rows.Should().HaveCount(3000);
        int row0 = 0;
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            foreach (var name in Columns)
            {
                var column = await reader.ReadColumnAsync(g, name);
                var values = new List<long>();
                for (var r = 0; r < column.RowCount; r++)
                {
                    var value = TestColumns.ValueAt(column, r);
                    var expected = reference.Rows[row0 + r][reference.Index(name)];
                    if (expected.ValueKind == System.Text.Json.JsonValueKind.Null)
                    {
                        value.Should().BeNull($"{codec}: row {row0 + r} column '{name}'");
                        continue;
                    }

                    Convert.ToString(value, CultureInfo.InvariantCulture).Should().Be(expected.GetString(), $"{codec}: row {row0 + r} column '{name}'");
                    values.Add(Convert.ToInt64(value, CultureInfo.InvariantCulture));
                }

                // Statistics come in the field's terms (µs, unsigned values as they are), so they prune rightly.
                var stats = reader.RowGroups[g][name];
                stats.Min.Should().Be(values.Min() is var min && reader.Schema.Fields.Single(f => f.Name == name).Type == ParquetType.Int32 ? (object)(int)min : min, $"{codec}: min of '{name}' in row group {g}");
                stats.Max.Should().Be(values.Max() is var max && reader.Schema.Fields.Single(f => f.Name == name).Type == ParquetType.Int32 ? (object)(int)max : max, $"{codec}: max of '{name}' in row group {g}");
            }

            row0 += (int)reader.RowGroups[g].RowCount;
        }

        long first = 3000 - reader.RowGroups[^1].RowCount; // ts_ns grows with the row
        long firstMicros = (((first - 1500) * 1234567891234) + ((first % 1000) * 7)) / 1000;
        reader.FindRowGroups("ts_ns", DateTimeOffset.UnixEpoch.AddTicks(firstMicros * 10), null).Should().Equal(reader.RowGroups.Count - 1);
    }

    /// <summary>
    /// Lists (and lists of lists) of nanosecond and millisecond timestamps and of UINT_32 are converted
    /// element by element, null elements and null or empty lists kept, as DuckDB reads them.
    /// </summary>
    [Theory]
    [InlineData("lz4_raw", "V1")]
    [InlineData("zstd", "V2")]
    public async Task Lists_of_foreign_timestamps_and_unsigned_integers_read_as_DuckDB_reads_them(string codec, string version)
    {
        using var temp = new TempDir();
        var path = temp.File($"foreign-lists-{codec}.parquet");
        var file = DuckDb.Quote(path);
        const string Floor = "(epoch_ns(x) - ((epoch_ns(x) % 1000) + 1000) % 1000) // 1000";
        string[] names = ["ns", "ms", "u32", "grid"];
        var results = await DuckDb.RunAsync(
            $"""
            COPY (
              SELECT i::BIGINT AS id,
                     CASE WHEN i % 9 = 0 THEN NULL WHEN i % 9 = 1 THEN [] ELSE
                       [make_timestamp_ns((i - 700) * 98765432109 - 1), NULL, make_timestamp_ns((700 - i) * 1234567 + 999)] END AS ns,
                     CASE WHEN i % 7 = 0 THEN NULL ELSE [make_timestamp((i - 500) * 86400123456)::TIMESTAMP_MS, NULL] END AS ms,
                     CASE WHEN i % 5 = 0 THEN NULL ELSE [(i * 2863311)::UINTEGER, 4294967295::UINTEGER, NULL] END AS u32,
                     CASE WHEN i % 6 = 0 THEN NULL ELSE [[make_timestamp_ns(-i - 1)], NULL, [], [make_timestamp_ns(i * 1000000000001), NULL]] END AS grid
              FROM range(0, 1500) t(i)
            ) TO {file} (FORMAT parquet, COMPRESSION {codec}, PARQUET_VERSION {version})
            """,
            $"""
            SELECT list_transform(ns, x -> {Floor}) AS ns, list_transform(ms, x -> epoch_us(x)) AS ms, u32::BIGINT[] AS u32,
                   list_transform(grid, l -> list_transform(l, x -> {Floor})) AS grid
            FROM read_parquet({file}) ORDER BY id
            """);
        var reference = results[1];
        await using var reader = await ParquetFileReader.OpenAsync(path);

        reader.Schema["ns"].TypeName.Should().Be("list<TimestampMicros?>?");
        reader.Schema["u32"].TypeName.Should().Be("list<Int64?>?");
        reader.Schema["grid"].TypeName.Should().Be("list<list<TimestampMicros?>?>?");
        foreach (var name in names)
        {
            var parts = new List<ParquetColumnData>();
            for (var g = 0; g < reader.RowGroups.Count; g++)
            {
                parts.Add(await reader.ReadColumnAsync(g, name));
            }

            var column = TestColumns.Concat(parts);
            var read = Enumerable.Range(0, column.RowCount).Select(r => Show(TestColumns.ValueAt(column, r)));
            read.Should().Equal(reference.Rows.Select(r => Show(r[reference.Index(name)])), $"{codec} {version}: '{name}'");
        }

        static string Show(object? value) => value switch
        {
            null => "null",
            System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.Null } => "null",
            System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.Array } e => "[" + string.Join(",", e.EnumerateArray().Select(x => Show(x))) + "]",
            System.Text.Json.JsonElement e => e.GetString()!,
            object?[] items => "[" + string.Join(",", items.Select(Show)) + "]",
            _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
        };
    }

    /// <summary>A DATE reads as midnight UTC of its day, in µs like every timestamp, in PLAIN and delta-packed pages.</summary>
    [Theory]
    [InlineData("V1")]
    [InlineData("V2")]
    public async Task DATE_columns_read_as_midnight_UTC_of_the_day_as_DuckDB_reads_them(string version)
    {
        using var temp = new TempDir();
        var path = temp.File($"dates-{version}.parquet");
        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $"COPY (SELECT i::BIGINT AS id, CASE WHEN i % 7 = 0 THEN NULL ELSE DATE '1969-06-01' + (i * 37)::INTEGER END AS day FROM range(0, 3000) t(i)) TO {file} (FORMAT parquet, PARQUET_VERSION {version})",
            $"SELECT CAST(epoch_us(day::TIMESTAMP) AS VARCHAR) FROM read_parquet({file}) ORDER BY id");
        await using var reader = await ParquetFileReader.OpenAsync(path);

        reader.Schema["day"].Type.Should().Be(ParquetType.TimestampMicros);
        var values = new List<string?>();
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            var column = await reader.ReadColumnAsync(g, "day");
            var present = Enumerable.Range(0, column.RowCount).Select(r => TestColumns.ValueAt(column, r)).OfType<long>().ToList();
            values.AddRange(Enumerable.Range(0, column.RowCount).Select(r => TestColumns.ValueAt(column, r) is long v ? v.ToString(CultureInfo.InvariantCulture) : null));
            reader.RowGroups[g]["day"].Min.Should().Be(present.Min(), "statistics are in µs too");
            reader.RowGroups[g]["day"].Max.Should().Be(present.Max());
        }

        values.Should().Equal(results[1].Rows.Select(r => r[0].ValueKind == System.Text.Json.JsonValueKind.Null ? null : r[0].GetString()));
        values.Should().Contain("-15292800000000", "1969-07-08, 177 days before the epoch, is there");
    }

    [Fact]
    public async Task Spark_INT96_timestamps_read_as_DuckDB_reads_them()
    {
        using var temp = new TempDir();
        var path = temp.File("int96.parquet");
        var random = new Random(96);
        var values = new List<(long, int)>
        {
            (0, 2_440_588),                       // the epoch
            (86_399_999_999_999, 2_440_587),      // the last nanosecond before it
            (1_500, 2_440_588),                   // 1.5 µs after it: rounds down
            (43_200_000_000_000, 2_461_011),      // 2025-12-01 12:00
        };
        for (var i = 0; i < 200; i++)
        {
            values.Add((random.NextInt64(86_400_000_000_000), random.Next(2_400_000, 2_500_000)));
        }

        await File.WriteAllBytesAsync(path, CraftedFiles.BuildInt96File("ts", values));
        var reference = (await DuckDb.RunAsync($"SELECT CAST(epoch_us(ts) AS VARCHAR) AS us FROM read_parquet({DuckDb.Quote(path)})"))[0];

        await using var reader = await ParquetFileReader.OpenAsync(path);
        var column = await reader.ReadColumnAsync(0, "ts");

        reader.Schema.Fields.Should().Equal(new ParquetField("ts", ParquetType.TimestampMicros, false));
        column.GetValues<long>().Select(v => v.ToString(CultureInfo.InvariantCulture)).Should().Equal(reference.Rows.Select(r => r[0].GetString()));
        column.GetValues<long>()[..3].Should().Equal(0L, -1L, 1L);
        reader.RowGroups[0]["ts"].Min.Should().BeNull("INT96 has no defined sort order, so its statistics are not used");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void DELTA_BINARY_PACKED_reads_back_any_longs_including_deltas_that_wrap(int seed)
    {
        var random = new Random(seed);
        for (var round = 0; round < 200; round++)
        {
            var values = new long[random.Next(0, 700)];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = random.Next(4) switch
                {
                    0 => long.MaxValue - random.Next(3),
                    1 => long.MinValue + random.Next(3),
                    2 => random.NextInt64(),
                    _ => (i > 0 ? values[i - 1] : 0) + random.Next(-5, 6),
                };
            }

            var encoded = CraftedFiles.DeltaBinaryPacked(values);
            var decoded = new long[values.Length];
            var consumed = Weft.Parquet.Encodings.DeltaEncodings.DecodeBinaryPacked(encoded, decoded, "test");

            decoded.Should().Equal(values, $"seed {seed} round {round}");
            consumed.Should().Be(encoded.Length);
            var truncated = () => Weft.Parquet.Encodings.DeltaEncodings.DecodeBinaryPacked(encoded.AsSpan(0, encoded.Length - 1), new long[values.Length], "test");
            truncated.Should().Throw<ParquetFormatException>();
        }
    }

    /// <summary>parquet-mr's v2 writer (Spark with parquet.writer.version v2) stores strings as DELTA_BYTE_ARRAY.</summary>
    [Fact]
    public async Task DELTA_BYTE_ARRAY_strings_read_as_DuckDB_reads_them()
    {
        using var temp = new TempDir();
        var path = temp.File("delta-byte-array.parquet");
        var random = new Random(7);
        string[] stems = ["user/", "user/profile/", "item/", "", "é/ü/"];
        var values = new List<string>();
        for (var i = 0; i < 700; i++)
        {
            // Sorted-ish keys share long prefixes with the value before them, as this encoding expects.
            var stem = stems[random.Next(stems.Length)];
            values.Add(i % 50 == 0 ? "" : stem + new string((char)('a' + random.Next(26)), random.Next(0, 5)) + i.ToString(CultureInfo.InvariantCulture));
        }

        values.Sort(StringComparer.Ordinal);
        await File.WriteAllBytesAsync(path, CraftedFiles.BuildDeltaByteArrayFile("key", values));
        var reference = (await DuckDb.RunAsync($"SELECT key FROM read_parquet({DuckDb.Quote(path)})"))[0];

        await using var reader = await ParquetFileReader.OpenAsync(path);
        var column = await reader.ReadColumnAsync(0, "key");

        reference.Rows.Select(r => r[0].GetString()).Should().Equal(values, "DuckDB reads the crafted page as the values encoded");
        column.GetValues<string>().Should().Equal(values);
    }

    [Fact]
    public async Task A_UINT_64_value_beyond_the_signed_range_names_the_column_and_the_value()
    {
        using var temp = new TempDir();
        var path = temp.File("u64.parquet");
        await DuckDb.RunAsync($"COPY (SELECT CASE WHEN i = 2 THEN 9223372036854775808::UBIGINT ELSE i::UBIGINT END AS big FROM range(0, 5) t(i)) TO {DuckDb.Quote(path)} (FORMAT parquet)");
        await using var reader = await ParquetFileReader.OpenAsync(path);

        var read = async () => await reader.ReadColumnAsync(0, "big");

        (await read.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should()
            .Contain("'big'").And.Contain("UINT_64 value 9223372036854775808");
        reader.RowGroups[0]["big"].Max.Should().BeNull("a maximum beyond the signed range cannot be a bound");
    }

    /// <summary>
    /// An item table exported from a warehouse carries intervals and lists of structs Weft does not read
    /// (beside decimals, times, structs and maps, which it does): the file still opens, its other columns
    /// read, and only asking for one of those fails, naming it in the format's own terms.
    /// </summary>
    [Fact]
    public async Task Columns_Weft_does_not_read_are_left_out_and_named_and_the_others_read()
    {
        using var temp = new TempDir();
        var path = temp.File("items.parquet");
        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $$"""
            COPY (
              SELECT i::BIGINT AS item_id, (i * 1.25)::DECIMAL(12, 2) AS price, {'a': i, 'b': 'x' || i} AS attrs,
                     TIME '10:00:00' AS opens, MAP {'k': i} AS tags, 'cat_' || (i % 3) AS category,
                     [{'w': i}] AS nested, [i, i + 1] AS ids, to_days(i::INTEGER) AS shelf_life
              FROM range(0, 50) t(i)
            ) TO {{file}} (FORMAT parquet)
            """,
            $"SELECT CAST(item_id AS VARCHAR), category, CAST(ids AS VARCHAR), CAST(price AS DOUBLE) FROM read_parquet({file}) ORDER BY item_id");
        await using var reader = await ParquetFileReader.OpenAsync(path);

        reader.Schema.Fields.Select(f => f.Name).Should().Equal("item_id", "price", "attrs.a", "attrs.b", "opens", "tags.key", "tags.value", "category", "ids");
        reader.UnsupportedColumns.Keys.Should().BeEquivalentTo("nested", "shelf_life");
        reader.UnsupportedColumns["shelf_life"].Should().Contain("Column 'shelf_life' has physical type FIXED_LEN_BYTE_ARRAY with logical type none (converted type INTERVAL)");
        var items = await reader.ReadColumnAsync(0, "item_id");
        var categories = await reader.ReadColumnAsync(0, "category");
        var ids = await reader.ReadColumnAsync(0, "ids");
        var reference = results[1].Rows;
        Enumerable.Range(0, 50).Select(r => Convert.ToString(TestColumns.ValueAt(items, r), CultureInfo.InvariantCulture)).Should().Equal(reference.Select(row => row[0].GetString()));
        Enumerable.Range(0, 50).Select(r => (string?)TestColumns.ValueAt(categories, r)).Should().Equal(reference.Select(row => row[1].GetString()));
        Enumerable.Range(0, 50).Select(r => "[" + string.Join(", ", (object?[])TestColumns.ValueAt(ids, r)!) + "]").Should().Equal(reference.Select(row => row[2].GetString()));
        reader.RowGroups[0]["category"].Max.Should().Be("cat_2", "statistics come from the column's own chunk");
        var prices = await reader.ReadColumnAsync(0, "price");
        Enumerable.Range(0, 50).Select(r => (double)TestColumns.ValueAt(prices, r)!).Should().Equal(reference.Select(row => row[3].GetDouble()), "a DECIMAL reads as a double");
        var opens = await reader.ReadColumnAsync(0, "opens");
        opens.GetValues<long>().Should().OnlyContain(t => t == 36_000_000_000L, "a TIME reads as µs since midnight");

        var shelfLife = async () => await reader.ReadColumnAsync(0, "shelf_life");
        (await shelfLife.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should().Contain(path).And.Contain("converted type INTERVAL");
    }

    [Fact]
    public async Task A_file_with_no_column_Weft_reads_fails_to_open_naming_why()
    {
        using var temp = new TempDir();
        var path = temp.File("interval.parquet");
        await DuckDb.RunAsync($"COPY (SELECT INTERVAL 3 DAY AS wait) TO {DuckDb.Quote(path)} (FORMAT parquet)");

        var open = async () => await ParquetFileReader.OpenAsync(path);

        (await open.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should()
            .Contain(path).And.Contain("Column 'wait' has physical type FIXED_LEN_BYTE_ARRAY with logical type none (converted type INTERVAL)");
    }
}
