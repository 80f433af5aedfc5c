using System.Buffers.Binary;
using System.Globalization;
using FluentAssertions;
using Weft.Parquet.Format;
using Xunit;

namespace Weft.Parquet.Tests;

/// <summary>
/// Annotations DuckDB never writes but older writers do: parquet-mr before logical types (converted
/// types only), Spark's INT96 in the dictionary-encoded optional chunks it really writes, pyarrow's
/// UTC-adjusted nanoseconds, the deprecated Hadoop LZ4 codec. Files are crafted byte by byte;
/// DuckDB's read of each is the reference, and statistics must never prune a row group wrongly.
/// </summary>
public sealed class LegacyLayoutTests
{
    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public async Task Timestamps_annotated_only_by_a_legacy_converted_type_read_as_DuckDB_reads_them(bool millis, bool dictionary)
    {
        var random = new Random(millis ? 11 : 12);
        long span = millis ? 4_000_000_000_000 : 4_000_000_000_000_000; // ±126 years either way
        var stored = Rows(random, 300, () => random.NextInt64(-span, span));
        var leaf = new SchemaElement
        {
            Name = "ts",
            Type = PhysicalType.Int64,
            RepetitionType = Repetition.Optional,
            ConvertedType = millis ? ConvertedType.TimestampMillis : ConvertedType.TimestampMicros,
        };
        var present = stored.OfType<long>().ToList();
        var file = CraftedFiles.BuildFlatFile(leaf, Plain64(stored), dictionary, CompressionCodec.Snappy, Stats64(present.Min(), present.Max(), stored.Count - present.Count));

        var (reader, read, reference, temp) = await ReadBothAsync(file, "ts", "CAST(epoch_us(ts) AS VARCHAR)");
        using (temp)
        await using (reader)
        {
            reader.Schema["ts"].Type.Should().Be(ParquetType.TimestampMicros);
            read.Should().Equal(reference, "Weft reads each instant as DuckDB does");
            long scale = millis ? 1000 : 1;
            read.Should().Equal(stored.Select(v => v is long s ? (s * scale).ToString(CultureInfo.InvariantCulture) : null));
            AssertStatisticsPruneRightly(reader, "ts", present.Min() * scale, present.Max() * scale);
        }
    }

    /// <summary>pyarrow writes pandas' datetime64[ns, UTC] as TIMESTAMP(NANOS, isAdjustedToUTC=true), naive ones with false.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Nanosecond_timestamps_with_or_without_UTC_adjustment_read_as_DuckDB_reads_them_rounded_down(bool adjusted)
    {
        var random = new Random(adjusted ? 21 : 22);
        var stored = Rows(random, 300, () => random.NextInt64(-4_000_000_000_000_000_000, 4_000_000_000_000_000_000));
        stored[0] = -1; // 1 ns before the epoch: the µs before it, not the epoch
        stored[1] = 1_999;
        var leaf = new SchemaElement
        {
            Name = "ts",
            Type = PhysicalType.Int64,
            RepetitionType = Repetition.Optional,
            LogicalType = new LogicalType { Kind = LogicalType.Timestamp, IsAdjustedToUtc = adjusted, TimeUnit = 3 },
        };
        var present = stored.OfType<long>().ToList();
        var file = CraftedFiles.BuildFlatFile(leaf, Plain64(stored), dictionary: false, CompressionCodec.Gzip, Stats64(present.Min(), present.Max(), stored.Count - present.Count));

        // DuckDB keeps naive nanoseconds (the reference floors them to µs as Weft does), but reads UTC-adjusted
        // ones as its µs TIMESTAMPTZ, cut toward zero: an instant before the epoch with a part of a µs is
        // then one µs later than Weft's, which rounds every instant down so none moves past another.
        var expression = adjusted ? "CAST(epoch_us(ts) AS VARCHAR)" : "CAST(((epoch_ns(ts) - ((epoch_ns(ts) % 1000) + 1000) % 1000) // 1000) AS VARCHAR)";
        var (reader, read, reference, temp) = await ReadBothAsync(file, "ts", expression);
        using (temp)
        await using (reader)
        {
            var expected = reference.Select((duck, i) => duck is null || !adjusted || stored[i] % 1000 >= 0
                ? duck
                : (long.Parse(duck, CultureInfo.InvariantCulture) - 1).ToString(CultureInfo.InvariantCulture));
            read.Should().Equal(expected);
            read[..2].Should().Equal("-1", "1");
            AssertStatisticsPruneRightly(reader, "ts", FloorDiv(present.Min(), 1000), FloorDiv(present.Max(), 1000));
        }
    }

    /// <summary>
    /// Spark writes INT96 timestamps in optional, dictionary-encoded chunks. Its statistics have no
    /// defined order: here they claim a range that excludes most values, and must not be believed.
    /// </summary>
    [Fact]
    public async Task Spark_INT96_in_an_optional_dictionary_encoded_chunk_reads_as_DuckDB_reads_it_and_its_statistics_never_prune()
    {
        var random = new Random(96);
        var days = Enumerable.Range(0, 40).Select(_ => random.Next(2_400_000, 2_500_000)).ToArray();
        var rows = Rows(random, 400, () => (long)random.Next(days.Length));
        var values = rows.Select(r => r is long d ? Int96(random.Next(4) == 0 ? 0 : random.NextInt64(86_400_000_000_000), days[d]) : null).ToList();
        values[1] = Int96(86_399_999_999_999, 2_440_587); // the last nanosecond before the epoch
        var leaf = new SchemaElement { Name = "ts", Type = PhysicalType.Int96, RepetitionType = Repetition.Optional };
        var first = values.First(v => v is not null)!;
        var claimed = new Statistics { Min = first, Max = first, MinValue = first, MaxValue = first, NullCount = values.Count(v => v is null) };
        var file = CraftedFiles.BuildFlatFile(leaf, values, dictionary: true, CompressionCodec.Snappy, claimed);

        var (reader, read, reference, temp) = await ReadBothAsync(file, "ts", "CAST(epoch_us(ts) AS VARCHAR)");
        using (temp)
        await using (reader)
        {
            reader.Schema["ts"].Type.Should().Be(ParquetType.TimestampMicros);
            read.Should().Equal(reference);
            read.Should().Contain((string?)null).And.Contain("-1");
            reader.RowGroups[0]["ts"].Min.Should().BeNull("INT96 has no defined sort order, so its statistics are not used");
            reader.RowGroups[0]["ts"].Max.Should().BeNull();
            var latest = read.OfType<string>().Max(s => long.Parse(s, CultureInfo.InvariantCulture));
            reader.FindRowGroups("ts", latest, null).Should().Equal([0], "the row group holds that instant whatever its statistics claim");
        }
    }

    /// <summary>
    /// parquet-mr's old files carry only the legacy min / max, ordered as signed integers: for a UINT_32
    /// column holding 4,000,000,000 (stored as a negative INT32) they are wrong, and must not be used.
    /// </summary>
    [Fact]
    public async Task A_UINT_32_column_reads_values_past_two_to_the_31_and_ignores_its_signed_legacy_statistics()
    {
        var random = new Random(32);
        var rows = Rows(random, 200, () => random.Next(3) == 0 ? random.NextInt64(2_147_483_648, 4_294_967_296) : random.NextInt64(0, 1000));
        rows[0] = 4_000_000_000;
        rows[1] = uint.MaxValue;
        var leaf = new SchemaElement { Name = "clicks", Type = PhysicalType.Int32, RepetitionType = Repetition.Optional, ConvertedType = ConvertedType.UInt32 };
        var plain = rows.Select(r => r is long v ? BitConverter.GetBytes((uint)v) : null).ToList();
        var signed = rows.OfType<long>().Select(v => (int)(uint)v).ToList();
        var legacy = new Statistics { Min = BitConverter.GetBytes(signed.Min()), Max = BitConverter.GetBytes(signed.Max()), NullCount = rows.Count(r => r is null) };
        var file = CraftedFiles.BuildFlatFile(leaf, plain, dictionary: false, CompressionCodec.Uncompressed, legacy);

        var (reader, read, reference, temp) = await ReadBothAsync(file, "clicks", "CAST(clicks AS VARCHAR)");
        using (temp)
        await using (reader)
        {
            reader.Schema["clicks"].Type.Should().Be(ParquetType.Int64, "a UINT_32 over 2^31 does not fit an int");
            read.Should().Equal(reference);
            read[..2].Should().Equal("4000000000", "4294967295");
            reader.RowGroups[0]["clicks"].Min.Should().BeNull("the legacy statistics are in signed order");
            reader.FindRowGroups("clicks", 4_294_967_295L, null).Should().Equal([0]);
        }
    }

    /// <summary>
    /// 8- and 16-bit integers are stored as INT32; a writer may leave the upper bits set (a sign-extended
    /// UINT_8, a zero-extended INT_8). Readers keep the low 8 or 16 bits, as the annotation's width says,
    /// and statistics over the stored upper bits are not used.
    /// </summary>
    [Theory]
    [InlineData(8, false)]
    [InlineData(16, false)]
    [InlineData(8, true)]
    [InlineData(16, true)]
    public async Task Narrow_integers_read_their_low_bits_as_DuckDB_reads_them(int width, bool signed)
    {
        var random = new Random(width + (signed ? 1 : 0));
        var rows = Rows(random, 200, () => random.Next(3) == 0 ? (long)random.Next(int.MinValue, int.MaxValue) : random.Next(1 << width) - (signed ? 1 << (width - 1) : 0));
        var top = signed ? (1 << (width - 1)) - 1 : (1 << width) - 1; // the largest value of the width
        rows[0] = signed ? (1 << width) - 1 : -1;                     // -1 zero-extended, the top value sign-extended
        rows[1] = top;
        var leaf = new SchemaElement
        {
            Name = "n",
            Type = PhysicalType.Int32,
            RepetitionType = Repetition.Optional,
            ConvertedType = (signed, width) switch
            {
                (true, 8) => ConvertedType.Int8,
                (true, _) => ConvertedType.Int16,
                (false, 8) => ConvertedType.UInt8,
                _ => ConvertedType.UInt16,
            },
            LogicalType = new LogicalType { Kind = LogicalType.Integer, BitWidth = width, IsSigned = signed },
        };

        var plain = rows.Select(r => r is long v ? BitConverter.GetBytes((int)v) : null).ToList();
        var raw = rows.OfType<long>().Select(v => (int)v).ToList();
        var rawStatistics = new Statistics { Min = BitConverter.GetBytes(raw.Min()), Max = BitConverter.GetBytes(raw.Max()), NullCount = rows.Count(r => r is null) };
        var file = CraftedFiles.BuildFlatFile(leaf, plain, dictionary: width == 16, statistics: rawStatistics);

        var (reader, read, reference, temp) = await ReadBothAsync(file, "n", "CAST(n AS VARCHAR)");
        using (temp)
        await using (reader)
        {
            reader.Schema["n"].Type.Should().Be(ParquetType.Int32);
            read.Should().Equal(reference);
            read[..2].Should().Equal(signed ? "-1" : top.ToString(CultureInfo.InvariantCulture), top.ToString(CultureInfo.InvariantCulture));
            reader.RowGroups[0]["n"].Min.Should().BeNull("statistics over the stored upper bits say nothing of the values");
            reader.FindRowGroups("n", top, null).Should().Equal([0]);
            reader.FindRowGroups("n", null, signed ? -1 : 0).Should().Equal([0]);
        }
    }

    [Fact]
    public async Task A_chunk_in_the_deprecated_Hadoop_LZ4_codec_is_refused_naming_the_column_and_the_codec()
    {
        var leaf = new SchemaElement { Name = "clicks", Type = PhysicalType.Int64, RepetitionType = Repetition.Required };
        var file = CraftedFiles.BuildFlatFile(leaf, Plain64([1L, 2L, 3L]), codec: CompressionCodec.Lz4);
        using var temp = new TempDir();
        var path = temp.File("hadoop-lz4.parquet");
        await File.WriteAllBytesAsync(path, file);
        await using var reader = await ParquetFileReader.OpenAsync(path);

        var read = async () => await reader.ReadColumnAsync(0, "clicks");

        (await read.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should()
            .Contain(path).And.Contain("column 'clicks'").And.Contain("compression codec LZ4 (the deprecated Hadoop-framed one) is not supported")
            .And.Contain("ZSTD and LZ4_RAW");
    }

    private static List<long?> Rows(Random random, int count, Func<long> value)
    {
        var rows = new List<long?>(count);
        for (var i = 0; i < count; i++)
        {
            rows.Add(random.Next(9) == 0 ? null : value());
        }

        rows[0] ??= value(); // the tests below overwrite the first rows with edge values
        rows[1] ??= value();
        return rows;
    }

    private static List<byte[]?> Plain64(IEnumerable<long?> rows) => rows.Select(r => r is long v ? BitConverter.GetBytes(v) : null).ToList();

    private static Statistics Stats64(long min, long max, long nulls) =>
        new() { MinValue = BitConverter.GetBytes(min), MaxValue = BitConverter.GetBytes(max), NullCount = nulls };

    private static byte[] Int96(long nanosOfDay, int julianDay)
    {
        var bytes = new byte[12];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, nanosOfDay);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), julianDay);
        return bytes;
    }

    private static long FloorDiv(long a, long b) => Math.DivRem(a, b, out var rest) - (rest < 0 ? 1 : 0);

    /// <summary>The statistics are the chunk's extremes in µs: a bound at the maximum keeps the row group, one past it prunes it.</summary>
    private static void AssertStatisticsPruneRightly(ParquetFileReader reader, string column, long minMicros, long maxMicros)
    {
        reader.RowGroups[0][column].Min.Should().Be(minMicros, "statistics come in µs like the values");
        reader.RowGroups[0][column].Max.Should().Be(maxMicros);
        reader.FindRowGroups(column, maxMicros, null).Should().Equal([0]);
        reader.FindRowGroups(column, null, minMicros).Should().Equal([0]);
        reader.FindRowGroups(column, maxMicros + 1, null).Should().BeEmpty();
    }

    /// <summary>Weft's values of the file's one column as decimal strings (null rows null), and DuckDB's read of <paramref name="expression"/>.</summary>
    private static async Task<(ParquetFileReader Reader, List<string?> Read, List<string?> Reference, TempDir Temp)> ReadBothAsync(byte[] file, string column, string expression)
    {
        var temp = new TempDir();
        var path = temp.File("crafted.parquet");
        await File.WriteAllBytesAsync(path, file);
        var reference = (await DuckDb.RunAsync($"SELECT {expression} FROM read_parquet({DuckDb.Quote(path)})"))[0]
            .Rows.Select(r => r[0].ValueKind == System.Text.Json.JsonValueKind.Null ? null : r[0].GetString()).ToList();
        var reader = await ParquetFileReader.OpenAsync(path);
        var data = await reader.ReadColumnAsync(0, column);
        var read = Enumerable.Range(0, data.RowCount).Select(r => TestColumns.ValueAt(data, r) is { } v ? Convert.ToString(v, CultureInfo.InvariantCulture) : null).ToList();
        return (reader, read, reference, temp);
    }
}
