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
