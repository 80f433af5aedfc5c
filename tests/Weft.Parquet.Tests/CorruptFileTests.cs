using System.Buffers.Binary;
using Weft.Parquet.Format;

namespace Weft.Parquet.Tests;

public sealed class CorruptFileTests
{
    private static readonly ParquetSchema Schema = new(
    [
        new ParquetField("id", ParquetType.Int64, false),
        new ParquetField("s", ParquetType.String, true),
        new ParquetField("fl", ParquetType.Float, true, IsList: true),
        new ParquetField("b", ParquetType.Boolean, true),
        new ParquetField("d", ParquetType.Double, false),
        new ParquetField("t", ParquetType.TimestampMicros, true),
        new ParquetField("i", ParquetType.Int32, true, IsList: true),
        new ParquetField("dwell", ParquetType.Int64, false, IsList: true, ElementNullable: true),
        new ParquetField("grid", ParquetType.Float, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
    ]);

    private static async Task<byte[]> ValidFileAsync(ParquetCompression compression, bool dictionary = true)
    {
        var rng = new Random(11);
        var groups = new[] { 200, 50 }.Select(rows => Schema.Fields.Select(f => TestColumns.Random(f, rows, rng)).ToArray()).ToArray();
        return await TestColumns.WriteAsync(Schema, new ParquetWriterOptions { Compression = compression, UseDictionary = dictionary, DataPageSize = 400 }, groups);
    }

    private static async Task<ParquetFormatException> OpenFailsAsync(byte[] bytes, string path)
    {
        using var temp = new TempDir();
        var file = temp.File(path);
        await File.WriteAllBytesAsync(file, bytes);
        var e = await FluentActions.Awaiting(() => ParquetFileReader.OpenAsync(file)).Should().ThrowAsync<ParquetFormatException>();
        e.Which.FilePath.Should().Be(file);
        e.Which.Message.Should().Contain(file);
        return e.Which;
    }

    [Fact]
    public async Task An_empty_or_tiny_file_is_reported_as_too_short()
    {
        (await OpenFailsAsync([], "empty.parquet")).Problem.Should().Contain("shorter than the 12-byte minimum");
        (await OpenFailsAsync("PAR1PAR"u8.ToArray(), "tiny.parquet")).Problem.Should().Contain("shorter");
    }

    [Fact]
    public async Task Bad_magic_at_either_end_is_reported()
    {
        var file = await ValidFileAsync(ParquetCompression.Snappy);
        var head = (byte[])file.Clone();
        head[0] = (byte)'X';
        (await OpenFailsAsync(head, "head.parquet")).Problem.Should().Contain("bad magic at the start");
        var tail = (byte[])file.Clone();
        tail[^1] = (byte)'X';
        (await OpenFailsAsync(tail, "tail.parquet")).Problem.Should().Contain("bad magic at the end");
    }

    [Fact]
    public async Task A_truncated_file_is_reported()
    {
        var file = await ValidFileAsync(ParquetCompression.Snappy);
        (await OpenFailsAsync(file[..(file.Length / 2)], "half.parquet")).Problem.Should().Contain("bad magic at the end");
        (await OpenFailsAsync(file[..^1], "minus-one.parquet")).Problem.Should().Contain("bad magic at the end");
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(-1)]
    [InlineData(0)]
    public async Task A_footer_length_out_of_range_is_reported(int length)
    {
        var file = await ValidFileAsync(ParquetCompression.Snappy);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(file.Length - 8), length);
        (await OpenFailsAsync(file, "footer-length.parquet")).Problem.Should().Contain($"footer length {length} is out of range");
    }

    [Fact]
    public async Task A_footer_that_is_not_thrift_is_reported_as_a_thrift_decode_failure()
    {
        var file = await ValidFileAsync(ParquetCompression.Snappy);
        var footerLength = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(file.Length - 8));
        file.AsSpan(file.Length - 8 - footerLength, footerLength).Fill(0xFF);
        (await OpenFailsAsync(file, "garbage-footer.parquet")).Problem.Should().Contain("Thrift decode failure");
    }

    [Fact]
    public async Task A_page_larger_than_its_column_chunk_is_reported_with_file_column_and_row_group()
    {
        var field = new ParquetField("x", ParquetType.Int32, false);
        var header = CraftedFiles.PageHeaderBytes(new PageHeader
        {
            Type = PageType.DataPage,
            UncompressedPageSize = 4_000,
            CompressedPageSize = 4_000,
            DataPageHeader = new DataPageHeader { NumValues = 1000, Encoding = PageEncoding.Plain },
        });
        var chunk = header.Concat(new byte[40]).ToArray();
        var bytes = CraftedFiles.BuildRawChunkFile(field, chunk, 1000, m => m);
        using var temp = new TempDir();
        var path = temp.File("page-too-big.parquet");
        await File.WriteAllBytesAsync(path, bytes);

        await using var reader = await ParquetFileReader.OpenAsync(path);
        var e = await FluentActions.Awaiting(() => reader.ReadColumnAsync(0, "x")).Should().ThrowAsync<ParquetFormatException>();

        e.Which.Message.Should().Contain(path).And.Contain("column 'x', row group 0").And.Contain("page of 4000 bytes").And.Contain("runs past the end of the chunk");
    }

    [Fact]
    public async Task A_column_chunk_beyond_the_file_is_reported()
    {
        var field = new ParquetField("x", ParquetType.Int32, false);
        var bytes = CraftedFiles.BuildRawChunkFile(field, new byte[16], 4, m => new ColumnMetaData
        {
            Type = m.Type,
            Encodings = m.Encodings,
            PathInSchema = m.PathInSchema,
            Codec = m.Codec,
            NumValues = m.NumValues,
            TotalCompressedSize = 1_000_000,
            TotalUncompressedSize = 1_000_000,
            DataPageOffset = m.DataPageOffset,
        });

        await using var reader = await TestColumns.OpenAsync(bytes, "beyond.parquet");
        var e = await FluentActions.Awaiting(() => reader.ReadColumnAsync(0, "x")).Should().ThrowAsync<ParquetFormatException>();

        e.Which.Message.Should().Contain("beyond.parquet").And.Contain("lies outside the data section");
    }

    [Fact]
    public async Task A_page_that_declares_more_values_than_it_holds_is_reported()
    {
        var field = new ParquetField("x", ParquetType.Int64, false);
        var header = CraftedFiles.PageHeaderBytes(new PageHeader
        {
            Type = PageType.DataPage,
            UncompressedPageSize = 16,
            CompressedPageSize = 16,
            DataPageHeader = new DataPageHeader { NumValues = 3, Encoding = PageEncoding.Plain },
        });
        var bytes = CraftedFiles.BuildRawChunkFile(field, header.Concat(new byte[16]).ToArray(), 3, m => m);

        await using var reader = await TestColumns.OpenAsync(bytes);
        var e = await FluentActions.Awaiting(() => reader.ReadColumnAsync(0, "x")).Should().ThrowAsync<ParquetFormatException>();

        e.Which.Problem.Should().Contain("3 PLAIN values need 24 bytes, 16 present");
    }

    [Theory]
    [InlineData(ParquetCompression.Uncompressed, false)]
    [InlineData(ParquetCompression.Snappy, true)]
    [InlineData(ParquetCompression.Gzip, true)]
    public async Task Random_corruption_only_ever_raises_format_or_not_supported_errors(ParquetCompression compression, bool dictionary) =>
        await FuzzAsync(await ValidFileAsync(compression, dictionary), 1234 + (int)compression);

    /// <summary>The codecs and encodings Weft reads but does not write, in files DuckDB writes.</summary>
    [Theory]
    [InlineData("zstd", "V1")]
    [InlineData("lz4_raw", "V1")]
    [InlineData("uncompressed", "V2")]
    public async Task Random_corruption_of_pages_Weft_does_not_write_only_ever_raises_format_or_not_supported_errors(string codec, string version)
    {
        using var temp = new TempDir();
        var path = temp.File($"duck-{codec}-{version}.parquet");
        await DuckDb.RunAsync($"COPY (SELECT i::BIGINT AS id, (i * 37)::INTEGER AS n, 'v' || i AS s, i / 3.0 AS d, [i::FLOAT, 0.5] AS fl FROM range(0, 3000) t(i)) TO {DuckDb.Quote(path)} (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE 1000, PARQUET_VERSION {version})");
        await FuzzAsync(await File.ReadAllBytesAsync(path), codec.Length + version.Length);
    }

    private static async Task FuzzAsync(byte[] valid, int seed)
    {
        var rng = new Random(seed);
        var outcomes = new Dictionary<string, int>();
        for (var iteration = 0; iteration < 300; iteration++)
        {
            var bytes = (byte[])valid.Clone();
            switch (iteration % 3)
            {
                case 0:
                    for (var k = rng.Next(1, 4); k > 0; k--)
                    {
                        bytes[rng.Next(bytes.Length)] ^= (byte)rng.Next(1, 256);
                    }

                    break;
                case 1:
                    // Corrupt the footer only (keeps magic and length, so thrift decoding is exercised).
                    var footerLength = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(bytes.Length - 8));
                    var at = bytes.Length - 8 - footerLength + rng.Next(footerLength);
                    bytes[at] = (byte)rng.Next(256);
                    break;
                default:
                    bytes = bytes[..rng.Next(bytes.Length)];
                    break;
            }

            // A reader looping on corrupt input fails here, naming the case, instead of hanging the suite.
            string outcome;
            try
            {
                outcome = await TryReadEverythingAsync(bytes).WaitAsync(TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException)
            {
                outcome = $"hang at iteration {iteration}";
            }

            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        outcomes.Keys.Should().BeSubsetOf(["ok", nameof(ParquetFormatException), nameof(NotSupportedException)]);
        outcomes.GetValueOrDefault(nameof(ParquetFormatException)).Should().BeGreaterThan(100);
    }

    private static async Task<string> TryReadEverythingAsync(byte[] bytes)
    {
        try
        {
            await using var reader = await TestColumns.OpenAsync(bytes, "fuzz.parquet");
            for (var g = 0; g < reader.RowGroups.Count; g++)
            {
                foreach (var field in reader.Schema.Fields)
                {
                    await reader.ReadColumnAsync(g, field.Name);
                    if (field.Type == ParquetType.String && !field.IsList)
                    {
                        await reader.ReadUtf8ColumnAsync(g, field.Name);
                    }
                }
            }

            return "ok";
        }
        catch (ParquetFormatException e)
        {
            e.Message.Should().Contain("fuzz.parquet");
            return nameof(ParquetFormatException);
        }
        catch (NotSupportedException)
        {
            return nameof(NotSupportedException);
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }
    }
}
