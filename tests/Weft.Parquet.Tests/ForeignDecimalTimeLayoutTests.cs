using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using FluentAssertions;
using Weft.Parquet.Format;
using Xunit;

namespace Weft.Parquet.Tests;

/// <summary>
/// DECIMAL and TIME layouts DuckDB never writes but other writers do: FIXED_LEN_BYTE_ARRAY decimals of
/// any width up to 16 bytes (arrow and parquet-mr use the fewest bytes the precision needs),
/// dictionary-encoded; BYTE_ARRAY decimals (arrow's and Impala's option); the v2 encodings parquet-mr
/// and arrow choose for them; TIME(MILLIS) and the legacy TIME_MILLIS / TIME_MICROS annotations. Files
/// are crafted byte by byte. The expected double is the exact decimal's text parsed by .NET's correctly
/// rounding parser; DuckDB's read of the file, where it reads the layout, checks the crafting.
/// </summary>
public sealed class ForeignDecimalTimeLayoutTests
{
    /// <summary>
    /// Width 0 is BYTE_ARRAY. Odd widths carry only the legacy annotation (ConvertedType DECIMAL with the
    /// scale and precision in the schema element), as parquet-mr wrote before logical types. The legacy
    /// min / max statistics claim the maximum for both, and must be ignored (writers before column orders
    /// compared these bytes unsigned); min_value / max_value must be used.
    /// </summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(4, true)]
    [InlineData(5, false)]
    [InlineData(8, true)]
    [InlineData(9, false)]
    [InlineData(12, true)]
    [InlineData(16, false)]
    [InlineData(16, true)]
    [InlineData(0, false)]
    [InlineData(0, true)]
    public async Task Byte_array_decimals_read_as_the_nearest_double_and_prune_by_their_typed_statistics_only(int width, bool dictionary)
    {
        var random = new Random(100 + width + (dictionary ? 50 : 0));
        var precision = width == 0 ? 38 : DigitsFor(width);
        var scale = random.Next(precision + 1);
        var values = Rows(random, 300, precision, dictionary);
        var leaf = DecimalLeaf(width == 0 ? PhysicalType.ByteArray : PhysicalType.FixedLenByteArray, width, precision, scale, legacy: width % 2 == 1, Repetition.Optional);
        var present = values.OfType<BigInteger>().ToList();
        BigInteger min = present.Min(), max = present.Max();
        var statistics = new Statistics
        {
            MinValue = BigEndian(min, width),
            MaxValue = BigEndian(max, width),
            Min = BigEndian(max, width),
            Max = BigEndian(max, width),
            NullCount = values.Count(v => v is null),
        };
        var plain = values.Select(v => v is { } u ? Plain(u, width, random) : null).ToList();
        var file = CraftedFiles.BuildFlatFile(leaf, plain, dictionary, CompressionCodec.Snappy, statistics);

        using var temp = new TempDir();
        var path = temp.File("decimal.parquet");
        await File.WriteAllBytesAsync(path, file);
        var duck = (await DuckDb.RunAsync($"SELECT CAST(d AS VARCHAR) FROM read_parquet({DuckDb.Quote(path)})"))[0].Rows
            .Select(r => r[0].ValueKind == System.Text.Json.JsonValueKind.Null ? (double?)null : double.Parse(r[0].GetString()!, CultureInfo.InvariantCulture))
            .ToList();
        await using var reader = await ParquetFileReader.OpenAsync(path);
        reader.Schema["d"].Type.Should().Be(ParquetType.Double);
        var read = await ReadAsync(reader, "d");

        read.Should().Equal(values.Select(v => v is { } u ? Nearest(u, scale) : (double?)null), $"DECIMAL({precision}, {scale}) values, as the nearest double");
        read.Should().Equal(duck, "DuckDB reads the same decimals from the crafted file");
        var stats = reader.RowGroups[0]["d"];
        stats.Min.Should().Be(Nearest(min, scale), "min_value, as a double");
        stats.Max.Should().Be(Nearest(max, scale), "max_value, as a double");
        reader.FindRowGroups("d", Nearest(min, scale), Nearest(min, scale)).Should().Equal([0], "the row group holds its minimum");
        reader.FindRowGroups("d", Math.BitIncrement(Nearest(max, scale)), null).Should().BeEmpty("no value is above the maximum");
        reader.FindRowGroups("d", null, Math.BitDecrement(Nearest(min, scale))).Should().BeEmpty("no value is below the minimum");
    }

    /// <summary>Without typed statistics, the legacy ones of a byte-array decimal say nothing, so nothing is pruned.</summary>
    [Fact]
    public async Task Legacy_statistics_alone_of_a_fixed_width_decimal_prune_nothing()
    {
        var leaf = DecimalLeaf(PhysicalType.FixedLenByteArray, 4, 9, 2, legacy: true, Repetition.Required);
        BigInteger[] values = [-5, 7, 300];
        var statistics = new Statistics { Min = BigEndian(300, 4), Max = BigEndian(300, 4), NullCount = 0 };
        var file = CraftedFiles.BuildFlatFile(leaf, values.Select(v => (byte[]?)BigEndian(v, 4)).ToList(), statistics: statistics);

        await using var reader = await TestColumns.OpenAsync(file);

        (await ReadAsync(reader, "d")).Should().Equal(-0.05, 0.07, 3.0);
        reader.RowGroups[0]["d"].Min.Should().BeNull();
        reader.FindRowGroups("d", -0.05, -0.05).Should().Equal([0]);
    }

    /// <summary>
    /// The encodings parquet-mr's and arrow's v2 writers choose for byte-array decimals: DELTA_BYTE_ARRAY
    /// (FIXED_LEN_BYTE_ARRAY and BYTE_ARRAY), DELTA_LENGTH_BYTE_ARRAY (BYTE_ARRAY) and BYTE_STREAM_SPLIT
    /// (FIXED_LEN_BYTE_ARRAY, and INT32 and INT64 decimals), encoded here from the format's description.
    /// </summary>
    [Theory]
    [InlineData((int)PhysicalType.FixedLenByteArray, 16, (int)PageEncoding.DeltaByteArray)]
    [InlineData((int)PhysicalType.FixedLenByteArray, 7, (int)PageEncoding.DeltaByteArray)]
    [InlineData((int)PhysicalType.ByteArray, 0, (int)PageEncoding.DeltaByteArray)]
    [InlineData((int)PhysicalType.ByteArray, 0, (int)PageEncoding.DeltaLengthByteArray)]
    [InlineData((int)PhysicalType.FixedLenByteArray, 11, (int)PageEncoding.ByteStreamSplit)]
    [InlineData((int)PhysicalType.Int32, 4, (int)PageEncoding.ByteStreamSplit)]
    [InlineData((int)PhysicalType.Int64, 8, (int)PageEncoding.ByteStreamSplit)]
    public async Task Decimals_in_v2_encodings_read_as_the_nearest_double(int physicalType, int width, int pageEncoding)
    {
        var physical = (PhysicalType)physicalType;
        var encoding = (PageEncoding)pageEncoding;
        var random = new Random((int)physical * 100 + width + (int)encoding);
        var precision = physical switch
        {
            PhysicalType.Int32 => 9,
            PhysicalType.Int64 => 18,
            PhysicalType.ByteArray => 38,
            _ => DigitsFor(width),
        };
        var scale = random.Next(precision + 1);
        var values = Rows(random, 500, precision, repetitive: random.Next(2) == 0).Select(v => v ?? BigInteger.MinusOne).ToList();
        var bytes = values.Select(v => physical switch
        {
            PhysicalType.Int32 => BitConverter.GetBytes((int)v),
            PhysicalType.Int64 => BitConverter.GetBytes((long)v),
            PhysicalType.ByteArray => v.ToByteArray(isUnsigned: false, isBigEndian: true),
            _ => BigEndian(v, width),
        }).ToList();
        var page = encoding switch
        {
            PageEncoding.DeltaByteArray => CraftedFiles.DeltaByteArray(bytes),
            PageEncoding.DeltaLengthByteArray => [.. CraftedFiles.DeltaBinaryPacked(bytes.Select(b => (long)b.Length).ToList()), .. bytes.SelectMany(b => b)],
            _ => ByteStreamSplit(bytes, width),
        };
        var leaf = DecimalLeaf(physical, width, precision, scale, legacy: false, Repetition.Required);
        var file = CraftedFiles.BuildSingleColumnFile(leaf, page, values.Count, encoding);

        await using var reader = await TestColumns.OpenAsync(file);

        (await ReadAsync(reader, "d")).Should().Equal(values.Select(v => (double?)Nearest(v, scale)), $"DECIMAL({precision}, {scale}) in {encoding}");
    }

    /// <summary>
    /// A BYTE_ARRAY decimal may repeat its sign in leading bytes; past 16 bytes that is still a 128-bit
    /// value. One that needs more than 128 bits is refused, naming the column.
    /// </summary>
    [Fact]
    public async Task Byte_array_decimals_padded_past_16_bytes_read_and_wider_ones_are_refused()
    {
        var leaf = DecimalLeaf(PhysicalType.ByteArray, 0, 38, 3, legacy: false, Repetition.Required);
        BigInteger[] values = [BigInteger.Pow(10, 38) - 1, -(BigInteger.Pow(10, 38) - 1), -1, 5];
        var padded = values.Select(v => (byte[]?)Prefixed(BigEndian(v, 20))).ToList();
        await using (var reader = await TestColumns.OpenAsync(CraftedFiles.BuildFlatFile(leaf, padded)))
        {
            (await ReadAsync(reader, "d")).Should().Equal(values.Select(v => (double?)Nearest(v, 3)));
        }

        var wide = new List<byte[]?> { Prefixed(BigEndian(BigInteger.Pow(2, 127), 17)) };
        await using (var reader = await TestColumns.OpenAsync(CraftedFiles.BuildFlatFile(leaf, wide)))
        {
            var read = async () => await reader.ReadColumnAsync(0, "d");
            (await read.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should().Contain("'d'").And.Contain("128 bits");
        }
    }

    [Theory]
    [InlineData((int)PhysicalType.FixedLenByteArray, 17, 20, 2, "FIXED_LEN_BYTE_ARRAY of 17 bytes")]
    [InlineData((int)PhysicalType.Int64, 8, 4, 5, "precision 4 and scale 5")]
    [InlineData((int)PhysicalType.Int32, 4, 0, 0, "precision 0 and scale 0")]
    public async Task A_decimal_Weft_cannot_read_is_left_out_with_the_reason(int physicalType, int width, int precision, int scale, string reason)
    {
        var physical = (PhysicalType)physicalType;
        var leaf = DecimalLeaf(physical, width, precision, scale, legacy: false, Repetition.Required);
        var file = CraftedFiles.BuildFlatFile(leaf, [new byte[width]]);

        var open = async () => await TestColumns.OpenAsync(file);

        (await open.Should().ThrowAsync<NotSupportedException>()).Which.Message.Should().Contain("Column 'd'").And.Contain(reason);
    }

    /// <summary>
    /// TIME(MILLIS) in an INT32 (with the logical type, or only the legacy TIME_MILLIS), and the legacy
    /// TIME_MICROS alone, read as µs since midnight, as DuckDB reads them; their statistics too.
    /// </summary>
    [Theory]
    [InlineData(true, false, false)]
    [InlineData(true, true, true)]
    [InlineData(false, true, false)]
    [InlineData(false, true, true)]
    public async Task Times_in_milliseconds_or_with_legacy_annotations_read_as_micros_since_midnight(bool millis, bool legacyOnly, bool dictionary)
    {
        var random = new Random((millis ? 1 : 2) + (legacyOnly ? 10 : 20) + (dictionary ? 100 : 200));
        var perDay = millis ? 86_400_000L : 86_400_000_000L;
        var pool = Enumerable.Range(0, 5).Select(_ => random.NextInt64(perDay)).ToArray();
        var values = Enumerable.Range(0, 200).Select(i => i switch
        {
            0 => 0L,
            1 => perDay - 1,
            _ when random.Next(8) == 0 => (long?)null,
            _ => dictionary ? pool[random.Next(pool.Length)] : random.NextInt64(perDay),
        }).ToList();
        var leaf = new SchemaElement
        {
            Name = "t",
            Type = millis ? PhysicalType.Int32 : PhysicalType.Int64,
            RepetitionType = Repetition.Optional,
            ConvertedType = millis ? ConvertedType.TimeMillis : ConvertedType.TimeMicros,
            LogicalType = legacyOnly ? null : new LogicalType { Kind = LogicalType.Time, IsAdjustedToUtc = false, TimeUnit = (short)(millis ? 1 : 2) },
        };
        var present = values.OfType<long>().ToList();
        byte[] Bytes(long v) => millis ? BitConverter.GetBytes((int)v) : BitConverter.GetBytes(v);
        var statistics = new Statistics { MinValue = Bytes(present.Min()), MaxValue = Bytes(present.Max()), NullCount = values.Count(v => v is null) };
        var file = CraftedFiles.BuildFlatFile(leaf, values.Select(v => v is { } t ? Bytes(t) : null).ToList(), dictionary, statistics: statistics);

        using var temp = new TempDir();
        var path = temp.File("time.parquet");
        await File.WriteAllBytesAsync(path, file);
        var duck = (await DuckDb.RunAsync($"SELECT CAST(datediff('microsecond', TIME '00:00:00', t) AS VARCHAR) FROM read_parquet({DuckDb.Quote(path)})"))[0].Rows
            .Select(r => r[0].ValueKind == System.Text.Json.JsonValueKind.Null ? (long?)null : long.Parse(r[0].GetString()!, CultureInfo.InvariantCulture))
            .ToList();
        await using var reader = await ParquetFileReader.OpenAsync(path);
        reader.Schema["t"].Type.Should().Be(ParquetType.Int64);
        var column = await reader.ReadColumnAsync(0, "t");
        var read = Enumerable.Range(0, column.RowCount).Select(r => (long?)TestColumns.ValueAt(column, r)).ToList();

        var scale = millis ? 1000 : 1;
        read.Should().Equal(values.Select(v => v * scale), "µs since midnight");
        read.Should().Equal(duck, "as DuckDB reads them");
        reader.RowGroups[0]["t"].Min.Should().Be(present.Min() * scale);
        reader.RowGroups[0]["t"].Max.Should().Be(present.Max() * scale);
        reader.FindRowGroups("t", (present.Max() * scale) + 1, null).Should().BeEmpty();
        reader.FindRowGroups("t", present.Max() * scale, null).Should().Equal([0]);
    }

    /// <summary>The most decimal digits a two's complement integer of <paramref name="bytes"/> bytes always holds.</summary>
    private static int DigitsFor(int bytes) => (int)Math.Floor(((8 * bytes) - 1) * Math.Log10(2));

    private static List<BigInteger?> Rows(Random random, int count, int precision, bool repetitive)
    {
        var max = BigInteger.Pow(10, precision) - 1;
        BigInteger Next() => random.Next(6) switch
        {
            0 => random.Next(2) == 0 ? max : -max,
            1 => random.Next(-2, 3),
            _ => BigInteger.Parse(string.Concat(Enumerable.Range(0, random.Next(1, precision + 1)).Select(_ => (char)('0' + random.Next(10)))), CultureInfo.InvariantCulture)
                * (random.Next(2) == 0 ? 1 : -1),
        };
        var pool = Enumerable.Range(0, 6).Select(_ => Next()).ToArray();
        var rows = Enumerable.Range(0, count).Select(_ => random.Next(9) == 0 ? (BigInteger?)null : repetitive ? pool[random.Next(pool.Length)] : Next()).ToList();
        rows[0] = max; // the extremes, whichever else is drawn
        rows[1] = -max;
        return rows;
    }

    private static SchemaElement DecimalLeaf(PhysicalType physical, int width, int precision, int scale, bool legacy, Repetition repetition) => new()
    {
        Name = "d",
        Type = physical,
        TypeLength = physical == PhysicalType.FixedLenByteArray ? width : null,
        RepetitionType = repetition,
        ConvertedType = ConvertedType.Decimal,
        Scale = scale,
        Precision = precision,
        LogicalType = legacy ? null : new LogicalType { Kind = LogicalType.Decimal, Scale = scale, Precision = precision },
    };

    /// <summary>Two's complement, big-endian, in <paramref name="width"/> bytes (0: the fewest bytes).</summary>
    private static byte[] BigEndian(BigInteger value, int width)
    {
        var minimal = value.ToByteArray(isUnsigned: false, isBigEndian: true);
        if (width == 0)
        {
            return minimal;
        }

        var bytes = new byte[width];
        bytes.AsSpan().Fill(value.Sign < 0 ? (byte)0xFF : (byte)0);
        minimal.CopyTo(bytes.AsSpan(width - minimal.Length));
        return bytes;
    }

    /// <summary>A PLAIN value: fixed-width bytes, or (BYTE_ARRAY) a length-prefixed value of the fewest bytes or padded with sign bytes up to 16.</summary>
    private static byte[] Plain(BigInteger value, int width, Random random)
    {
        if (width > 0)
        {
            return BigEndian(value, width);
        }

        var minimal = BigEndian(value, 0);
        return Prefixed(random.Next(3) == 0 ? BigEndian(value, random.Next(minimal.Length, 17)) : minimal);
    }

    private static byte[] Prefixed(byte[] bytes)
    {
        var result = new byte[bytes.Length + 4];
        BinaryPrimitives.WriteInt32LittleEndian(result, bytes.Length);
        bytes.CopyTo(result, 4);
        return result;
    }

    /// <summary>BYTE_STREAM_SPLIT: byte k of value i goes to position k * count + i.</summary>
    private static byte[] ByteStreamSplit(IReadOnlyList<byte[]> values, int width)
    {
        var page = new byte[values.Count * width];
        for (var i = 0; i < values.Count; i++)
        {
            for (var k = 0; k < width; k++)
            {
                page[(k * values.Count) + i] = values[i][k];
            }
        }

        return page;
    }

    /// <summary>The exact decimal's text through .NET's correctly rounding parser: the nearest double.</summary>
    private static double Nearest(BigInteger unscaled, int scale)
    {
        var digits = BigInteger.Abs(unscaled).ToString(CultureInfo.InvariantCulture).PadLeft(scale + 1, '0');
        var text = scale == 0 ? digits : digits[..^scale] + "." + digits[^scale..];
        return double.Parse(unscaled.Sign < 0 ? "-" + text : text, CultureInfo.InvariantCulture);
    }

    private static async Task<List<double?>> ReadAsync(ParquetFileReader reader, string name)
    {
        var column = await reader.ReadColumnAsync(0, name);
        return Enumerable.Range(0, column.RowCount).Select(r => (double?)TestColumns.ValueAt(column, r)).ToList();
    }
}
