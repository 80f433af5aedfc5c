namespace Weft.Parquet.Tests;

/// <summary>Row groups encoded on several threads and appended in order make the same file as sequential writes.</summary>
public sealed class ParallelEncodingTests
{
    private static readonly ParquetSchema Schema = new(
    [
        new ParquetField("id", ParquetType.String, Nullable: false),
        new ParquetField("n", ParquetType.Int64, Nullable: true),
        new ParquetField("vectors", ParquetType.Float, Nullable: false, IsList: true) { ListDepth = 2, InnerListNullable = true },
    ]);

    [Fact]
    public async Task Row_groups_encoded_in_parallel_and_appended_in_order_give_the_same_bytes()
    {
        var groups = Enumerable.Range(0, 9).Select(Group).ToList();
        byte[] sequential, parallel;
        using (var stream = new MemoryStream())
        {
            await using (var writer = await ParquetFileWriter.CreateAsync(stream, Schema))
            {
                foreach (var g in groups)
                {
                    await writer.WriteRowGroupAsync(g);
                }

                await writer.CompleteAsync();
            }

            sequential = stream.ToArray();
        }

        using (var stream = new MemoryStream())
        {
            await using (var writer = await ParquetFileWriter.CreateAsync(stream, Schema))
            {
                var encoded = groups.Select(g => Task.Run(() => writer.EncodeRowGroup(g))).ToList();
                foreach (var e in encoded)
                {
                    await writer.WriteRowGroupAsync(await e);
                }

                await writer.CompleteAsync();
            }

            parallel = stream.ToArray();
        }

        parallel.Should().Equal(sequential);
        await using var reader = await ParquetFileReader.OpenAsync(new MemoryStream(parallel));
        reader.RowGroups.Should().HaveCount(groups.Count);
        (await reader.ReadColumnAsync(4, "id")).GetValues<string>().Should().Equal((string[])groups[4][0].Values);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Columns_encoded_in_parallel_give_the_bytes_of_one_thread(int seed)
    {
        // Every type, nullable and not, lists too; row groups on both sides of the parallel threshold,
        // one small dictionary limit so some columns fall back to PLAIN while others do not.
        var rng = new Random(seed);
        var fields = TestColumns.AllTypes
            .SelectMany(t => new[] { new ParquetField($"{t}_req", t, Nullable: false), new ParquetField($"{t}_opt", t, Nullable: true), new ParquetField($"{t}_list", t, Nullable: true, IsList: true) })
            .ToList();
        var schema = new ParquetSchema(fields);
        var groups = new[] { ParquetWriterOptions.ParallelMinRows + rng.Next(5_000), 10, ParquetWriterOptions.ParallelMinRows }
            .Select(rows => (IReadOnlyList<ParquetColumnData>)fields.Select(f => TestColumns.Random(f, rows, rng, repetitive: rng.Next(2) == 0)).ToList())
            .ToArray();
        var options = new ParquetWriterOptions { MaxDictionarySize = 2_000 + rng.Next(20_000) };

        var oneThread = await TestColumns.WriteAsync(schema, options with { MaxDegreeOfParallelism = 1 }, groups);
        var fourThreads = await TestColumns.WriteAsync(schema, options with { MaxDegreeOfParallelism = 4 }, groups);

        fourThreads.Should().Equal(oneThread);
        await using var reader = await TestColumns.OpenAsync(fourThreads);
        for (var g = 0; g < groups.Length; g++)
        {
            foreach (var column in groups[g])
            {
                TestColumns.AssertEqual(column, await reader.ReadColumnAsync(g, column.Field.Name), $"group {g}");
            }
        }
    }

    [Fact]
    public void A_degree_of_parallelism_below_one_is_refused()
    {
        FluentActions.Invoking(() => new ParquetWriterOptions { MaxDegreeOfParallelism = 0 }.Validate())
            .Should().Throw<ArgumentOutOfRangeException>().WithMessage("*MaxDegreeOfParallelism = 0 must be at least 1*");
    }

    [Fact]
    public async Task An_encoded_row_group_is_appended_once_and_only_by_its_writer()
    {
        await using var one = await ParquetFileWriter.CreateAsync(new MemoryStream(), Schema);
        await using var other = await ParquetFileWriter.CreateAsync(new MemoryStream(), Schema);
        using var encoded = one.EncodeRowGroup(Group(1));

        await FluentActions.Awaiting(() => other.WriteRowGroupAsync(encoded)).Should().ThrowAsync<ArgumentException>().WithMessage("*another writer*");
        await one.WriteRowGroupAsync(encoded);
        await FluentActions.Awaiting(() => one.WriteRowGroupAsync(encoded)).Should().ThrowAsync<InvalidOperationException>().WithMessage("*already written*");
        one.RowCount.Should().Be(encoded.RowCount);
    }

    private static IReadOnlyList<ParquetColumnData> Group(int seed)
    {
        var rng = new Random(seed);
        int rows = 50 + rng.Next(200);
        var ids = Enumerable.Range(0, rows).Select(i => $"g{seed}-{rng.Next(1000)}-{i}").ToArray();
        var n = Enumerable.Range(0, rows).Select(_ => rng.Next(4) == 0 ? (long?)null : rng.NextInt64()).ToList();
        var vectors = Enumerable.Range(0, rows)
            .Select(_ => (float[]?[]?)Enumerable.Range(0, rng.Next(4)).Select(_ => rng.Next(5) == 0 ? null : Enumerable.Range(0, 3).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray())
            .ToList();
        return
        [
            ParquetColumnData.Create(Schema.Fields[0], ids),
            ParquetColumnData.FromNullable(Schema.Fields[1], n),
            ParquetColumnData.FromNestedLists(Schema.Fields[2], vectors),
        ];
    }
}
