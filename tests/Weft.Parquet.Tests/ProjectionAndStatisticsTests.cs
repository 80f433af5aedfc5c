namespace Weft.Parquet.Tests;

public sealed class ProjectionAndStatisticsTests
{
    private static ParquetSchema TenColumns() => new(Enumerable.Range(0, 10)
        .Select(i => new ParquetField($"c{i}", TestColumns.AllTypes[i % TestColumns.AllTypes.Length], Nullable: i % 2 == 0, IsList: i % 3 == 0))
        .ToArray());

    [Fact]
    public async Task Reading_two_of_ten_columns_decompresses_and_decodes_only_those_two()
    {
        var schema = TenColumns();
        var rng = new Random(3);
        var group = schema.Fields.Select(f => TestColumns.Random(f, 500, rng, repetitive: false)).ToArray();
        var file = await TestColumns.WriteAsync(schema, new ParquetWriterOptions { DataPageSize = 1024 }, group, group);

        // Per-column cost, measured one column at a time.
        var perColumn = new (long Decompressed, long Pages, long Read)[10];
        await using (var full = await TestColumns.OpenAsync(file))
        {
            for (var c = 0; c < 10; c++)
            {
                var before = (full.BytesDecompressed, full.PagesDecoded, full.BytesRead);
                await full.ReadColumnAsync(1, $"c{c}");
                perColumn[c] = (full.BytesDecompressed - before.BytesDecompressed, full.PagesDecoded - before.PagesDecoded, full.BytesRead - before.BytesRead);
                perColumn[c].Decompressed.Should().BeGreaterThan(0);
            }
        }

        await using var reader = await TestColumns.OpenAsync(file);
        reader.BytesDecompressed.Should().Be(0, "opening reads only the footer");
        var c3 = await reader.ReadColumnAsync(1, "c3");
        var c8 = await reader.ReadColumnAsync(1, "c8");

        TestColumns.AssertEqual(group[3], c3);
        TestColumns.AssertEqual(group[8], c8);
        reader.BytesDecompressed.Should().Be(perColumn[3].Decompressed + perColumn[8].Decompressed);
        reader.PagesDecoded.Should().Be(perColumn[3].Pages + perColumn[8].Pages);
        reader.BytesRead.Should().Be(perColumn[3].Read + perColumn[8].Read);
        reader.BytesRead.Should().Be(reader.RowGroups[1]["c3"].CompressedSize + reader.RowGroups[1]["c8"].CompressedSize);
        reader.BytesDecompressed.Should().BeLessThan(perColumn.Sum(p => p.Decompressed) / 2);
    }

    [Fact]
    public async Task Statistics_record_min_max_and_null_count_per_row_group()
    {
        var schema = new ParquetSchema(
        [
            new ParquetField("i", ParquetType.Int32, true),
            new ParquetField("s", ParquetType.String, false),
            new ParquetField("t", ParquetType.TimestampMicros, false),
            new ParquetField("d", ParquetType.Double, true),
            new ParquetField("b", ParquetType.Boolean, false),
            new ParquetField("fl", ParquetType.Float, true, IsList: true),
        ]);
        var group = new[]
        {
            ParquetColumnData.FromNullable<int>(schema.Fields[0], [5, null, -3, 12, null]),
            ParquetColumnData.FromValues(schema.Fields[1], new[] { "pear", "apple", "\uFFFD", "😀", "zebra" }),
            ParquetColumnData.FromValues(schema.Fields[2], new[] { 10L, -20L, 30L, 0L, 5L }),
            ParquetColumnData.FromNullable<double>(schema.Fields[3], [double.NaN, 0.0, null, -0.0, 2.5]),
            ParquetColumnData.FromValues(schema.Fields[4], new[] { true, true, true, true, true }),
            ParquetColumnData.FromLists<float>(schema.Fields[5], [[1f, -2f], null, [], [7f], [0.5f]]),
        };
        var file = await TestColumns.WriteAsync(schema, ParquetWriterOptions.Default, group);

        await using var reader = await TestColumns.OpenAsync(file);
        var stats = reader.RowGroups[0];

        stats["i"].Should().BeEquivalentTo(new { Min = (object)(-3), Max = (object)12, NullCount = (long?)2, ValueCount = 5L });
        // UTF-8 byte order: U+FFFD (EF BF BD) sorts before U+1F600 (F0 9F 98 80), unlike UTF-16 ordinal order.
        stats["s"].Min.Should().Be("apple");
        stats["s"].Max.Should().Be("😀");
        stats["t"].Min.Should().Be(-20L);
        stats["t"].Max.Should().Be(30L);
        // NaN is left out of min/max; zero is stored as -0.0 for min and +0.0 for max.
        BitConverter.DoubleToInt64Bits((double)stats["d"].Min!).Should().Be(BitConverter.DoubleToInt64Bits(-0.0));
        stats["d"].Max.Should().Be(2.5);
        stats["d"].NullCount.Should().Be(1);
        stats["b"].Min.Should().Be(true);
        stats["b"].Max.Should().Be(true);
        stats["fl"].Min.Should().Be(-2f);
        stats["fl"].Max.Should().Be(7f);
        stats["fl"].NullCount.Should().Be(2, "the null list and the empty list have no element");
        stats["fl"].ValueCount.Should().Be(6);
    }

    [Fact]
    public async Task Row_groups_are_skipped_when_their_statistics_exclude_the_range()
    {
        var schema = new ParquetSchema(
        [
            new ParquetField("t", ParquetType.TimestampMicros, false),
            new ParquetField("s", ParquetType.String, true),
            new ParquetField("n", ParquetType.Double, true),
        ]);
        var groups = Enumerable.Range(0, 5).Select(g => new[]
        {
            ParquetColumnData.FromValues(schema.Fields[0], Enumerable.Range(0, 100).Select(i => g * 1_000_000L + i * 1000).ToArray()),
            ParquetColumnData.FromStrings(schema.Fields[1], Enumerable.Range(0, 100).Select(i => g == 4 ? null : $"{(char)('a' + g)}{i:D3}").ToArray()),
            ParquetColumnData.FromValues(schema.Fields[2], Enumerable.Range(0, 100).Select(i => g == 2 ? double.NaN : g + i / 1000.0).ToArray()),
        }).ToArray();
        var file = await TestColumns.WriteAsync(schema, ParquetWriterOptions.Default, groups);

        await using var reader = await TestColumns.OpenAsync(file);

        reader.FindRowGroups("t", 1_050_000L, 2_000_000L).Should().Equal(1, 2);
        reader.FindRowGroups("t", null, 999L).Should().Equal(0);
        reader.FindRowGroups("t", 5_000_000L, null).Should().BeEmpty();
        reader.FindRowGroups("t", DateTimeOffset.UnixEpoch.AddSeconds(3), null).Should().Equal(3, 4);
        reader.FindRowGroups("t", null, null).Should().Equal(0, 1, 2, 3, 4);
        reader.FindRowGroups("s", "b", "c000").Should().Equal(new[] { 1, 2 }, "group 4 is all null and is skipped");
        reader.FindRowGroups("s", "z", null).Should().BeEmpty();
        reader.FindRowGroups("n", 2.0, 2.01).Should().Equal(new[] { 2 }, "an all-NaN group has no min/max and cannot be ruled out");
        reader.FindRowGroups("n", 3.05, 3.5).Should().Equal(2, 3);

        var wrongType = () => reader.FindRowGroups("t", 5, null);
        wrongType.Should().Throw<ArgumentException>().WithMessage("*'t'*Int64*Int32*");
        var unknown = () => reader.FindRowGroups("nope", null, null);
        unknown.Should().Throw<KeyNotFoundException>().WithMessage("*'nope'*");
    }
}
