using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Weft.Parquet.Format;

namespace Weft.Parquet.Tests;

/// <summary>
/// <see cref="ParquetFileReader.ReadUtf8ColumnAsync"/>: the same rows as the string read, as bytes and
/// offsets, over every page shape and encoding Weft reads strings in, and against DuckDB.
/// </summary>
public sealed class Utf8ReadTests
{
    private const ulong Seed = 0x0_07F8_5EED;

    public sealed record Case(bool Nullable, string?[] Rows, int[] GroupSizes, ParquetWriterOptions Options)
    {
        public override string ToString() =>
            $"nullable={Nullable} rows={Rows.Length} groups=[{string.Join(",", GroupSizes)}] {Options.Compression} dict={Options.UseDictionary}/{Options.MaxDictionarySize} page={Options.DataPageSize} " +
            $"values=[{string.Join(", ", Rows.Take(20).Select(TestColumns.Show))}{(Rows.Length > 20 ? ", …" : "")}]";
    }

    private static readonly Gen<string> StringGen = Gen.OneOf(
        Gen.Elements("", "a", "ü", "😀", "é\u0301", "long " + new string('z', 300)),
        ArbMap.Default.GeneratorFor<int>().Select(seed => TestColumns.RandomString(new Random(seed))));

    private static readonly Gen<Case> CaseGen =
        from nullable in ArbMap.Default.GeneratorFor<bool>()
        from rows in (nullable ? Gen.Frequency((1, Gen.Constant<string?>(null)), (4, StringGen.Select(s => (string?)s))) : StringGen.Select(s => (string?)s))
            .ListOf().Select(l => l.ToArray())
        from cuts in Gen.Choose(1, 3)
        from compression in Gen.Elements(Enum.GetValues<ParquetCompression>())
        from dictionary in ArbMap.Default.GeneratorFor<bool>()
        from maxDictionary in Gen.Elements(1, 64, 1 << 20)
        from pageSize in Gen.Elements(1, 100, 1 << 20)
        select new Case(
            nullable,
            rows,
            PropertyTests.Split(rows.Length, cuts),
            new ParquetWriterOptions { Compression = compression, UseDictionary = dictionary, MaxDictionarySize = maxDictionary, DataPageSize = pageSize });

    [Fact]
    public void Any_string_column_reads_as_the_same_rows_in_UTF8()
    {
        var property = Prop.ForAll(CaseGen.ToArbitrary(), SameRowsAsync);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(200).WithEndSize(80).WithReplay(Seed, 0x9E3779B97F4A7C15), property);
    }

    [Fact]
    public async Task A_row_group_of_many_pages_with_a_dictionary_that_overflows_reads_the_same_rows()
    {
        // A dictionary that fills up mid-chunk leaves dictionary pages followed by PLAIN ones in one chunk.
        var rng = new Random(11);
        var field = new ParquetField("s", ParquetType.String, Nullable: true);
        var rows = Enumerable.Range(0, 20_000)
            .Select(i => i % 13 == 0 ? null : i < 8_000 ? "k" + (i % 50).ToString(CultureInfo.InvariantCulture) : TestColumns.RandomString(rng) + i.ToString(CultureInfo.InvariantCulture))
            .ToArray();
        var column = TestColumns.FromRows(field, rows);
        var file = await TestColumns.WriteAsync(
            new ParquetSchema([field]), new ParquetWriterOptions { MaxDictionarySize = 4_096, DataPageSize = 2_048 }, [column]);
        await using var reader = await TestColumns.OpenAsync(file);

        var utf8 = await reader.ReadUtf8ColumnAsync(0, "s");

        reader.PagesDecoded.Should().BeGreaterThan(10, "the chunk spans many pages");
        AssertSameRows(rows, utf8, "20,000 rows");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task DATA_PAGE_V2_pages_read_the_same_rows(bool snappy)
    {
        var codec = snappy ? CompressionCodec.Snappy : CompressionCodec.Uncompressed;
        var field = new ParquetField("s", ParquetType.String, Nullable: true);
        var column = TestColumns.Random(field, 1_000, new Random(5), repetitive: true, nullRate: 0.2);
        var file = CraftedFiles.BuildDataPageV2File(new ParquetSchema([field]), [column], rowsPerPage: 97, codec);
        await using var reader = await TestColumns.OpenAsync(file);

        var utf8 = await reader.ReadUtf8ColumnAsync(0, "s");

        AssertSameRows(column.GetValues<string?>().Select((s, i) => column.IsNull(i) ? null : s).ToArray(), utf8, $"v2 {codec}");
    }

    [Fact]
    public async Task A_DELTA_BYTE_ARRAY_page_reads_as_the_values_encoded()
    {
        string[] values = ["", "item/1", "item/12", "item/123", "item/2", "user/é", "user/éü", "user/éü😀", "z"];
        await using var reader = await TestColumns.OpenAsync(CraftedFiles.BuildDeltaByteArrayFile("key", values));

        var utf8 = await reader.ReadUtf8ColumnAsync(0, "key");

        AssertSameRows(values, utf8, "DELTA_BYTE_ARRAY");
    }

    /// <summary>DuckDB writes strings with dictionaries by default and DELTA_LENGTH_BYTE_ARRAY with PARQUET_VERSION V2.</summary>
    [Theory]
    [InlineData("V1")]
    [InlineData("V2")]
    public async Task DuckDB_files_read_as_the_bytes_DuckDB_reads(string version)
    {
        using var temp = new TempDir();
        var path = temp.File($"duck-{version}.parquet");
        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $"""
            COPY (
              SELECT i::BIGINT AS id,
                     CASE WHEN i % 7 = 0 THEN NULL ELSE 'cat_' || (i % 5) END AS s,
                     CASE WHEN i % 6 = 0 THEN NULL ELSE 'unique-' || i || repeat('é', i % 4) || CASE WHEN i % 11 = 0 THEN '😀' ELSE '' END END AS su
              FROM range(0, 5000) t(i)
            ) TO {file} (FORMAT parquet, ROW_GROUP_SIZE 2048, PARQUET_VERSION {version})
            """,
            $"SELECT s, su FROM read_parquet({file}) ORDER BY id",
            $"SELECT sum(strlen(s))::BIGINT, sum(strlen(su))::BIGINT FROM read_parquet({file})");
        var reference = results[1].Rows;
        await using var reader = await ParquetFileReader.OpenAsync(path);
        reader.RowGroups.Count.Should().BeGreaterThan(1);

        for (var c = 0; c < 2; c++)
        {
            var name = c == 0 ? "s" : "su";
            var row = 0;
            long bytes = 0;
            for (var g = 0; g < reader.RowGroups.Count; g++)
            {
                var utf8 = await reader.ReadUtf8ColumnAsync(g, name);
                bytes += utf8.Offsets[^1];
                for (var r = 0; r < utf8.RowCount; r++, row++)
                {
                    var expected = reference[row][c].ValueKind == System.Text.Json.JsonValueKind.Null ? null : reference[row][c].GetString();
                    utf8.IsNull(r).Should().Be(expected is null, $"{version} '{name}' row {row}");
                    Encoding.UTF8.GetString(utf8[r]).Should().Be(expected ?? "", $"{version} '{name}' row {row}");
                }
            }

            row.Should().Be(5000);
            bytes.Should().Be(long.Parse(results[2].Rows[0][c].ToString(), CultureInfo.InvariantCulture), $"octet_length summed by DuckDB over '{name}'");
        }
    }

    [Fact]
    public async Task Invalid_UTF8_is_refused_naming_the_column()
    {
        await using var reader = await TestColumns.OpenAsync(PlainFile("name", [Encoding.UTF8.GetBytes("fine"), [0x66, 0xC3, 0x28]]));

        var read = async () => await reader.ReadUtf8ColumnAsync(0, "name");

        (await read.Should().ThrowAsync<ParquetFormatException>()).Which.Message.Should()
            .Contain("column 'name', row group 0").And.Contain("not valid UTF-8");
    }

    [Fact]
    public async Task A_character_split_between_two_values_is_refused_although_the_bytes_together_are_valid()
    {
        // "é" is C3 A9: the first value ends with its lead byte, the second starts with its continuation.
        await using var reader = await TestColumns.OpenAsync(PlainFile("name", [[0x61, 0xC3], [0xA9, 0x62]]));

        var utf8 = async () => await reader.ReadUtf8ColumnAsync(0, "name");
        var strings = async () => await reader.ReadColumnAsync(0, "name");

        (await utf8.Should().ThrowAsync<ParquetFormatException>()).Which.Message.Should().Contain("not valid UTF-8");
        (await strings.Should().ThrowAsync<ParquetFormatException>()).Which.Message.Should().Contain("not valid UTF-8", "the string read refuses it too");
    }

    [Fact]
    public async Task A_value_longer_than_its_page_is_refused_in_the_string_reads_words()
    {
        var page = new byte[] { 2, 0, 0, 0, 0x61, 0x62, 50, 0, 0, 0, 0x63 };
        var leaf = new SchemaElement { Name = "name", Type = PhysicalType.ByteArray, RepetitionType = Repetition.Required, ConvertedType = ConvertedType.Utf8 };
        await using var reader = await TestColumns.OpenAsync(CraftedFiles.BuildSingleColumnFile(leaf, page, 2, PageEncoding.Plain));

        var utf8 = async () => await reader.ReadUtf8ColumnAsync(0, "name");
        var strings = async () => await reader.ReadColumnAsync(0, "name");

        var message = (await strings.Should().ThrowAsync<ParquetFormatException>()).Which.Message;
        message.Should().Contain("string 1 of 50 bytes runs past the page");
        (await utf8.Should().ThrowAsync<ParquetFormatException>()).Which.Message.Should().Be(message);
    }

    [Fact]
    public async Task Other_columns_are_refused_naming_the_column_and_its_type()
    {
        var schema = new ParquetSchema([
            new ParquetField("n", ParquetType.Int64, Nullable: false),
            new ParquetField("tags", ParquetType.String, Nullable: true, IsList: true),
        ]);
        var file = await TestColumns.WriteAsync(
            schema,
            ParquetWriterOptions.Default,
            [TestColumns.FromRows(schema.Fields[0], [1L, 2L]), TestColumns.FromRows(schema.Fields[1], [new object?[] { "a" }, null])]);
        await using var reader = await TestColumns.OpenAsync(file);

        var number = async () => await reader.ReadUtf8ColumnAsync(0, "n");
        var list = async () => await reader.ReadUtf8ColumnAsync(0, "tags");
        var missing = async () => await reader.ReadUtf8ColumnAsync(0, "nope");

        (await number.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("'n'").And.Contain(schema.Fields[0].TypeName);
        (await list.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("'tags'").And.Contain(schema.Fields[1].TypeName);
        (await missing.Should().ThrowAsync<Exception>()).Which.Message.Should().Contain("nope");
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(200_000_000)]
    public async Task A_row_count_the_pages_do_not_hold_is_refused_as_the_string_read_refuses_it(int rows)
    {
        var field = new ParquetField("s", ParquetType.String, Nullable: false);
        await using var reader = await TestColumns.OpenAsync(CraftedFiles.BuildRawChunkFile(field, OnePlainPage("a"), rows, m => m));

        var strings = async () => await reader.ReadColumnAsync(0, "s");
        var utf8 = async () => await reader.ReadUtf8ColumnAsync(0, "s");

        var message = (await strings.Should().ThrowAsync<ParquetFormatException>()).Which.Message;
        message.Should().Contain("the chunk ends after 1 of its");
        (await utf8.Should().ThrowAsync<ParquetFormatException>()).Which.Message.Should().Be(message);
    }

    [Fact]
    public async Task A_declared_uncompressed_size_does_not_size_what_the_column_keeps()
    {
        var field = new ParquetField("s", ParquetType.String, Nullable: false);
        var file = CraftedFiles.BuildRawChunkFile(field, OnePlainPage("a"), 1, m => new ColumnMetaData
        {
            Type = m.Type,
            Encodings = m.Encodings,
            PathInSchema = m.PathInSchema,
            Codec = m.Codec,
            NumValues = m.NumValues,
            TotalCompressedSize = m.TotalCompressedSize,
            TotalUncompressedSize = 1L << 40,
            DataPageOffset = m.DataPageOffset,
        });
        await using var reader = await TestColumns.OpenAsync(file);

        var utf8 = await reader.ReadUtf8ColumnAsync(0, "s");

        utf8.GetString(0).Should().Be("a");
        utf8.ByteCapacity.Should().BeLessThan(1 << 16, "one byte of data, whatever the footer declares");
    }

    [Fact]
    public async Task A_mostly_null_column_keeps_about_its_bytes()
    {
        // The first page's one value is long and the 199 pages after it are null: projecting the first
        // page's bytes a value over every later row would keep ~200 MB for 1,000 bytes.
        var field = new ParquetField("s", ParquetType.String, Nullable: true);
        var rows = new string?[200_000];
        rows[0] = new string('x', 1_000);
        var column = TestColumns.FromRows(field, rows);
        var file = CraftedFiles.BuildDataPageV2File(new ParquetSchema([field]), [column], rowsPerPage: 1_000, CompressionCodec.Uncompressed);
        await using var reader = await TestColumns.OpenAsync(file);

        var utf8 = await reader.ReadUtf8ColumnAsync(0, "s");

        AssertSameRows(rows, utf8, "mostly null");
        utf8.ByteCapacity.Should().BeLessThan(1 << 17);
    }

    [Fact]
    public async Task Strings_of_more_than_an_array_holds_are_refused_as_not_supported_before_any_is_copied()
    {
        // 2,048 rows of one 1 MiB dictionary entry: 2 GiB of values from a 1 MiB file.
        var entry = new byte[4 + (1 << 20)];
        BitConverter.GetBytes(1 << 20).CopyTo(entry, 0);
        entry.AsSpan(4).Fill((byte)'a');
        var leaf = new SchemaElement { Name = "s", Type = PhysicalType.ByteArray, RepetitionType = Repetition.Required, ConvertedType = ConvertedType.Utf8 };
        await using var reader = await TestColumns.OpenAsync(CraftedFiles.BuildFlatFile(leaf, Enumerable.Repeat<byte[]?>(entry, 2_048).ToArray(), dictionary: true));

        var utf8 = async () => await reader.ReadUtf8ColumnAsync(0, "s");

        (await utf8.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should()
            .Contain("column 's', row group 0").And.Contain("more than").And.Contain("ReadColumnAsync");
        (await reader.ReadColumnAsync(0, "s")).GetValues<string>().Should().HaveCount(2_048, "the string read shares one string among the rows");
    }

    [Fact]
    public async Task A_dictionary_declaring_more_strings_than_its_bytes_hold_is_corrupt_to_both_reads()
    {
        var page = new byte[8];
        var header = CraftedFiles.PageHeaderBytes(new PageHeader
        {
            Type = PageType.DictionaryPage,
            UncompressedPageSize = page.Length,
            CompressedPageSize = page.Length,
            DictionaryPageHeader = new DictionaryPageHeader { NumValues = 60, Encoding = PageEncoding.Plain },
        });
        var field = new ParquetField("s", ParquetType.String, Nullable: false);
        await using var reader = await TestColumns.OpenAsync(CraftedFiles.BuildRawChunkFile(field, [.. header, .. page], 1, m => m));

        var strings = async () => await reader.ReadColumnAsync(0, "s");
        var utf8 = async () => await reader.ReadUtf8ColumnAsync(0, "s");

        (await strings.Should().ThrowAsync<ParquetFormatException>()).Which.Message.Should().Contain("a dictionary page declares 60 values in 8 bytes");
        (await utf8.Should().ThrowAsync<ParquetFormatException>()).Which.Message.Should().Contain("a dictionary page declares 60 values in 8 bytes");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Invalid_UTF8_in_a_delta_page_is_refused(bool splitBetweenValues)
    {
        byte[][] values = splitBetweenValues ? [[0x61, 0xC3], [0xA9, 0x62]] : [[0x61], [0x62, 0xFF]];
        var leaf = new SchemaElement { Name = "k", Type = PhysicalType.ByteArray, RepetitionType = Repetition.Required, ConvertedType = ConvertedType.Utf8 };
        await using var reader = await TestColumns.OpenAsync(CraftedFiles.BuildSingleColumnFile(leaf, CraftedFiles.DeltaByteArray(values), 2, PageEncoding.DeltaByteArray));

        var utf8 = async () => await reader.ReadUtf8ColumnAsync(0, "k");

        (await utf8.Should().ThrowAsync<ParquetFormatException>()).Which.Message.Should().Contain("not valid UTF-8");
    }

    [Fact]
    public async Task A_column_Weft_does_not_read_is_refused_as_the_string_read_refuses_it()
    {
        SchemaElement[] schema =
        [
            new SchemaElement { Name = "schema", NumChildren = 2 },
            new SchemaElement { Name = "s", Type = PhysicalType.ByteArray, RepetitionType = Repetition.Required, ConvertedType = ConvertedType.Utf8 },
            new SchemaElement { Name = "b", Type = PhysicalType.ByteArray, RepetitionType = Repetition.Required }, // raw bytes, no string annotation
        ];
        var file = CraftedFiles.BuildNestedFile(schema, 1,
        [
            new CraftedFiles.LeafChunk(["s"], PhysicalType.ByteArray, 0, 0, [], [], [1, 0, 0, 0, 0x78]),
            new CraftedFiles.LeafChunk(["b"], PhysicalType.ByteArray, 0, 0, [], [], [1, 0, 0, 0, 0x79]),
        ]);
        await using var reader = await TestColumns.OpenAsync(file);

        var strings = async () => await reader.ReadColumnAsync(0, "b");
        var utf8 = async () => await reader.ReadUtf8ColumnAsync(0, "b");

        var message = (await strings.Should().ThrowAsync<NotSupportedException>()).Which.Message;
        (await utf8.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should().Be(message);
        (await reader.ReadUtf8ColumnAsync(0, "s")).GetString(0).Should().Be("x");
    }

    [Fact]
    public async Task Every_refusal_comes_through_the_task()
    {
        var field = new ParquetField("s", ParquetType.String, Nullable: false);
        var number = new ParquetField("n", ParquetType.Int64, Nullable: false);
        var file = await TestColumns.WriteAsync(
            new ParquetSchema([field, number]), ParquetWriterOptions.Default, [TestColumns.FromRows(field, ["a"]), TestColumns.FromRows(number, [1L])]);
        var reader = await TestColumns.OpenAsync(file);

        var unknown = reader.ReadUtf8ColumnAsync(0, "nope");
        var wrongType = reader.ReadUtf8ColumnAsync(0, "n");
        var badGroup = reader.ReadUtf8ColumnAsync(3, "s");
        await reader.DisposeAsync();
        var disposed = reader.ReadUtf8ColumnAsync(0, "s");

        await unknown.Invoking(t => t).Should().ThrowAsync<Exception>();
        await wrongType.Invoking(t => t).Should().ThrowAsync<ArgumentException>();
        await badGroup.Invoking(t => t).Should().ThrowAsync<ArgumentOutOfRangeException>();
        await disposed.Invoking(t => t).Should().ThrowAsync<ObjectDisposedException>();
    }

    private static byte[] OnePlainPage(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        byte[] page = [.. BitConverter.GetBytes(bytes.Length), .. bytes];
        var header = CraftedFiles.PageHeaderBytes(new PageHeader
        {
            Type = PageType.DataPage,
            UncompressedPageSize = page.Length,
            CompressedPageSize = page.Length,
            DataPageHeader = new DataPageHeader { NumValues = 1, Encoding = PageEncoding.Plain, DefinitionLevelEncoding = PageEncoding.Rle, RepetitionLevelEncoding = PageEncoding.Rle },
        });
        return [.. header, .. page];
    }

    private static async Task SameRowsAsync(Case c)
    {
        var field = new ParquetField("c", ParquetType.String, c.Nullable);
        var groups = new List<string?[]>();
        var at = 0;
        foreach (var size in c.GroupSizes)
        {
            if (size > 0)
            {
                groups.Add(c.Rows.AsSpan(at, size).ToArray());
            }

            at += size;
        }

        var file = await TestColumns.WriteAsync(
            new ParquetSchema([field]), c.Options, groups.Select(g => (IReadOnlyList<ParquetColumnData>)[TestColumns.FromRows(field, g)]).ToArray());
        await using var reader = await TestColumns.OpenAsync(file);
        for (var g = 0; g < groups.Count; g++)
        {
            AssertSameRows(groups[g], await reader.ReadUtf8ColumnAsync(g, "c"), $"row group {g}");
        }
    }

    private static void AssertSameRows(IReadOnlyList<string?> expected, ParquetUtf8Column actual, string context)
    {
        actual.RowCount.Should().Be(expected.Count, context);
        actual.Offsets[0].Should().Be(0, context);
        actual.Bytes.Length.Should().Be(actual.Offsets[^1], context);
        var anyNull = false;
        for (var i = 0; i < expected.Count; i++)
        {
            actual.IsNull(i).Should().Be(expected[i] is null, $"{context}: row {i} null");
            actual[i].ToArray().Should().Equal(Encoding.UTF8.GetBytes(expected[i] ?? ""), $"{context}: row {i} bytes");
            actual.GetString(i).Should().Be(expected[i], $"{context}: row {i} string");
            anyNull |= expected[i] is null;
        }

        (actual.Nulls is not null).Should().Be(anyNull, $"{context}: null flags exist exactly when a row is null");
    }

    private static byte[] PlainFile(string name, IReadOnlyList<byte[]> values)
    {
        var page = new List<byte>();
        foreach (var value in values)
        {
            page.AddRange(BitConverter.GetBytes(value.Length));
            page.AddRange(value);
        }

        var leaf = new SchemaElement { Name = name, Type = PhysicalType.ByteArray, RepetitionType = Repetition.Required, ConvertedType = ConvertedType.Utf8 };
        return CraftedFiles.BuildSingleColumnFile(leaf, [.. page], values.Count, PageEncoding.Plain);
    }
}
