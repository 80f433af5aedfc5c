using Weft.Parquet.Format;

namespace Weft.Parquet.Tests;

public sealed class RoundTripTests
{
    public enum EncodingCase
    {
        Plain,
        Dictionary,
        DictionaryFallback,
    }

    public static TheoryData<ParquetType, bool, bool, EncodingCase, ParquetCompression> Cases()
    {
        var data = new TheoryData<ParquetType, bool, bool, EncodingCase, ParquetCompression>();
        foreach (var type in TestColumns.AllTypes)
        {
            foreach (var nullable in new[] { false, true })
            {
                foreach (var list in new[] { false, true })
                {
                    foreach (var encoding in Enum.GetValues<EncodingCase>())
                    {
                        foreach (var compression in Enum.GetValues<ParquetCompression>())
                        {
                            data.Add(type, nullable, list, encoding, compression);
                        }
                    }
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Every_type_nullability_list_encoding_and_codec_round_trips(
        ParquetType type, bool nullable, bool list, EncodingCase encoding, ParquetCompression compression)
    {
        var field = new ParquetField("c", type, nullable, list);
        var schema = new ParquetSchema([field, new ParquetField("id", ParquetType.Int32, false)]);
        var options = new ParquetWriterOptions
        {
            Compression = compression,
            UseDictionary = encoding != EncodingCase.Plain,
            MaxDictionarySize = encoding == EncodingCase.DictionaryFallback ? 24 : ParquetWriterOptions.DefaultMaxDictionarySize,
            DataPageSize = 512,
        };
        var rng = new Random(HashCode.Combine((int)type, nullable, list, (int)encoding, (int)compression) & 0x7FFFFFFF);
        var groups = new[] { 300, 1, 57 }.Select(rows => new[]
        {
            TestColumns.Random(field, rows, rng),
            ParquetColumnData.FromValues(schema.Fields[1], Enumerable.Range(0, rows).ToArray()),
        }).ToArray();

        var file = await TestColumns.WriteAsync(schema, options, groups);

        await using var reader = await TestColumns.OpenAsync(file);
        reader.Schema.Should().Be(schema);
        reader.RowGroups.Should().HaveCount(3);
        reader.RowCount.Should().Be(358);
        for (var g = 0; g < groups.Length; g++)
        {
            reader.RowGroups[g].RowCount.Should().Be(groups[g][0].RowCount);
            var actual = await reader.ReadColumnAsync(g, "c");
            TestColumns.AssertEqual(groups[g][0], actual, $"row group {g}");
        }

        // The chunk was encoded the way the options asked.
        var meta = reader.Footer.RowGroups[0].Columns[0].MetaData;
        meta.Codec.Should().Be(compression switch
        {
            ParquetCompression.Uncompressed => CompressionCodec.Uncompressed,
            ParquetCompression.Snappy => CompressionCodec.Snappy,
            _ => CompressionCodec.Gzip,
        });
        var dictionaryExpected = encoding == EncodingCase.Dictionary && type != ParquetType.Boolean;
        meta.Encodings.Contains(PageEncoding.RleDictionary).Should().Be(dictionaryExpected);
        (meta.DictionaryPageOffset is not null).Should().Be(dictionaryExpected);
    }

    [Fact]
    public async Task Small_pages_split_a_chunk_into_many_pages_at_row_boundaries()
    {
        var field = new ParquetField("l", ParquetType.String, Nullable: true, IsList: true);
        var schema = new ParquetSchema([field]);
        var column = TestColumns.Random(field, 2000, new Random(7), repetitive: false);
        var file = await TestColumns.WriteAsync(schema, new ParquetWriterOptions { DataPageSize = 100, UseDictionary = false }, [column]);

        await using var reader = await TestColumns.OpenAsync(file);
        var actual = await reader.ReadColumnAsync(0, "l");

        TestColumns.AssertEqual(column, actual);
        reader.PagesDecoded.Should().BeGreaterThan(100);
    }

    [Theory]
    [InlineData(4096, false)] // the probe decides only on a chunk longer than itself
    [InlineData(10_000, true)]
    public async Task A_chunk_of_mostly_distinct_values_is_written_plain_and_a_repeating_one_with_a_dictionary(int rows, bool distinctGoesPlain)
    {
        // ids: every value distinct; ids with repeats: one value in four is new (the probe's threshold is three in four).
        var field = new ParquetField("id", ParquetType.String, Nullable: false);
        var schema = new ParquetSchema([field]);
        var distinct = ParquetColumnData.FromValues(field, Enumerable.Range(0, rows).Select(i => $"event-{i:x12}").ToArray());
        var repeating = ParquetColumnData.FromValues(field, Enumerable.Range(0, rows).Select(i => $"event-{i / 4:x12}").ToArray());

        var file = await TestColumns.WriteAsync(schema, ParquetWriterOptions.Default, [distinct], [repeating]);

        await using var reader = await TestColumns.OpenAsync(file);
        TestColumns.AssertEqual(distinct, await reader.ReadColumnAsync(0, "id"));
        TestColumns.AssertEqual(repeating, await reader.ReadColumnAsync(1, "id"));
        (reader.Footer.RowGroups[0].Columns[0].MetaData.DictionaryPageOffset is null).Should().Be(distinctGoesPlain);
        reader.Footer.RowGroups[1].Columns[0].MetaData.DictionaryPageOffset.Should().NotBeNull();
    }

    [Fact]
    public async Task Null_lists_empty_lists_and_filled_lists_stay_distinct()
    {
        var field = new ParquetField("tags", ParquetType.Int64, Nullable: true, IsList: true);
        long[]?[] rows = [null, [], [1, 2, 3], null, [], [4], []];
        var column = ParquetColumnData.FromLists(field, rows);
        var file = await TestColumns.WriteAsync(new ParquetSchema([field]), ParquetWriterOptions.Default, [column]);

        await using var reader = await TestColumns.OpenAsync(file);
        var actual = await reader.ReadColumnAsync(0, "tags");

        actual.Nulls.Should().Equal(true, false, false, true, false, false, false);
        actual.Offsets.Should().Equal(0, 0, 0, 3, 3, 3, 4, 4);
        actual.GetValues<long>().Should().Equal(1, 2, 3, 4);
        actual.GetList<long>(2).ToArray().Should().Equal(1, 2, 3);
    }

    [Fact]
    public async Task A_column_of_only_nulls_round_trips_and_has_no_min_or_max()
    {
        var field = new ParquetField("s", ParquetType.String, Nullable: true);
        var column = ParquetColumnData.FromStrings(field, new string?[50]);
        var file = await TestColumns.WriteAsync(new ParquetSchema([field]), ParquetWriterOptions.Default, [column]);

        await using var reader = await TestColumns.OpenAsync(file);
        var actual = await reader.ReadColumnAsync(0, "s");

        actual.Nulls.Should().OnlyContain(n => n);
        actual.GetValues<string?>().Should().OnlyContain(s => s == null);
        var stats = reader.RowGroups[0]["s"];
        stats.NullCount.Should().Be(50);
        stats.Min.Should().BeNull();
        stats.Max.Should().BeNull();
    }

    [Fact]
    public async Task Key_value_metadata_round_trips()
    {
        var field = new ParquetField("x", ParquetType.Int32, false);
        using var stream = new MemoryStream();
        await using (var writer = await ParquetFileWriter.CreateAsync(stream, new ParquetSchema([field])))
        {
            writer.SetMetadata("weft.fingerprint", "abc123");
            writer.SetMetadata("empty", null);
            writer.SetMetadata("weft.fingerprint", "def456");
            await writer.WriteRowGroupAsync([ParquetColumnData.FromValues(field, new[] { 1, 2 })]);
        }

        await using var reader = await TestColumns.OpenAsync(stream.ToArray());
        reader.Metadata.Should().BeEquivalentTo(new Dictionary<string, string?> { ["weft.fingerprint"] = "def456", ["empty"] = null });
        reader.CreatedBy.Should().StartWith("weft-parquet version ");
    }

    [Fact]
    public async Task A_file_without_row_groups_is_valid()
    {
        var schema = new ParquetSchema([new ParquetField("x", ParquetType.Double, true), new ParquetField("y", ParquetType.String, false, true)]);
        var file = await TestColumns.WriteAsync(schema, ParquetWriterOptions.Default);

        await using var reader = await TestColumns.OpenAsync(file);

        reader.Schema.Should().Be(schema);
        reader.RowGroups.Should().BeEmpty();
        reader.RowCount.Should().Be(0);
    }

    [Fact]
    public async Task Files_written_and_read_by_path_round_trip_and_dispose_writes_the_footer()
    {
        using var temp = new TempDir();
        var path = temp.File("a.parquet");
        var field = new ParquetField("t", ParquetType.TimestampMicros, true);
        var column = ParquetColumnData.FromNullable<long>(field, [1_700_000_000_000_000L, null, -1L]);
        await using (var writer = await ParquetFileWriter.CreateAsync(path, new ParquetSchema([field])))
        {
            await writer.WriteRowGroupAsync([column]);
        }

        await using var reader = await ParquetFileReader.OpenAsync(path);
        reader.FilePath.Should().Be(path);
        TestColumns.AssertEqual(column, await reader.ReadColumnAsync(0, "t"));
    }

    [Fact]
    public async Task Strings_share_one_instance_per_dictionary_entry_when_read()
    {
        var field = new ParquetField("s", ParquetType.String, false);
        var values = Enumerable.Range(0, 1000).Select(i => "k" + (i % 3)).ToArray();
        var file = await TestColumns.WriteAsync(new ParquetSchema([field]), ParquetWriterOptions.Default, [ParquetColumnData.FromValues(field, values)]);

        await using var reader = await TestColumns.OpenAsync(file);
        var actual = (await reader.ReadColumnAsync(0, "s")).GetValues<string>();

        actual.Should().Equal(values);
        ReferenceEquals(actual[0], actual[3]).Should().BeTrue();
    }
}
