using Weft.Parquet.Encodings;
using Weft.Parquet.Format;

namespace Weft.Parquet.Tests;

public sealed class EncodingTests
{
    [Fact]
    public void Bit_packed_run_from_the_spec_decodes_to_zero_through_seven()
    {
        // Encodings.md: values 0..7 at bit width 3 pack to 10001000 11000110 11111010; header (1 << 1) | 1.
        byte[] input = [0x03, 0b1000_1000, 0b1100_0110, 0b1111_1010];
        var output = new int[8];

        var consumed = RleBitPackedHybrid.Decode(input, 3, output, limit: 8, "test");

        consumed.Should().Be(4);
        output.Should().Equal(0, 1, 2, 3, 4, 5, 6, 7);
    }

    [Fact]
    public void A_repeated_run_is_a_varint_count_and_a_little_endian_value()
    {
        using var buffer = new PooledBuffer();
        RleBitPackedHybrid.Encode(Enumerable.Repeat(300, 1000).ToArray(), 9, buffer);

        // 1000 << 1 = 2000 = varint D0 0F; value 300 in two bytes = 2C 01.
        buffer.WrittenSpan.ToArray().Should().Equal(0xD0, 0x0F, 0x2C, 0x01);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 3)]
    [InlineData(8, 4)]
    public void Levels_round_trip_through_the_hybrid_encoding(int maxLevel, int seed)
    {
        var rng = new Random(seed);
        var width = RleBitPackedHybrid.BitWidth(maxLevel);
        for (var trial = 0; trial < 200; trial++)
        {
            var values = new byte[rng.Next(0, 500)];
            for (var i = 0; i < values.Length;)
            {
                var run = rng.Next(3) == 0 ? rng.Next(1, 40) : 1;
                var value = (byte)rng.Next(maxLevel + 1);
                for (var k = 0; k < run && i < values.Length; k++, i++)
                {
                    values[i] = value;
                }
            }

            using var buffer = new PooledBuffer();
            RleBitPackedHybrid.Encode(values, width, buffer);
            var decoded = new byte[values.Length];
            var consumed = RleBitPackedHybrid.Decode(buffer.WrittenSpan, width, decoded, maxLevel, "levels");

            decoded.Should().Equal(values);
            consumed.Should().Be(buffer.Length);
        }
    }

    [Fact]
    public void Dictionary_indices_round_trip_at_every_bit_width()
    {
        var rng = new Random(5);
        for (var width = 1; width <= 31; width++)
        {
            var limit = width == 31 ? int.MaxValue : 1 << width;
            var values = Enumerable.Range(0, 333).Select(i => i % 50 < 20 ? limit - 1 : rng.Next(limit)).ToArray();
            using var buffer = new PooledBuffer();
            RleBitPackedHybrid.Encode(values, width, buffer);
            var decoded = new int[values.Length];
            RleBitPackedHybrid.Decode(buffer.WrittenSpan, width, decoded, limit, "indices");
            decoded.Should().Equal(values, $"bit width {width}");
        }
    }

    [Fact]
    public void Truncated_or_out_of_range_hybrid_data_is_a_format_error()
    {
        var output = new int[16];
        FluentActions.Invoking(() => RleBitPackedHybrid.Decode([0x03, 0x88], 3, output, 8, "idx"))
            .Should().Throw<ParquetFormatException>().WithMessage("*idx*bit-packed run*");
        FluentActions.Invoking(() => RleBitPackedHybrid.Decode([0x20, 0x09], 4, output, 8, "idx"))
            .Should().Throw<ParquetFormatException>().WithMessage("*index 9 is out of range*8 entries*");
        FluentActions.Invoking(() => RleBitPackedHybrid.Decode([0x00, 0x01], 4, output, 8, "idx"))
            .Should().Throw<ParquetFormatException>().WithMessage("*empty RLE run*");
        FluentActions.Invoking(() => RleBitPackedHybrid.Decode([0x04, 0x01], 4, output, 8, "idx"))
            .Should().Throw<ParquetFormatException>().WithMessage("*ends early*");
        FluentActions.Invoking(() => RleBitPackedHybrid.Decode([0x10, 0x03], 2, new byte[8], 2, "def"))
            .Should().Throw<ParquetFormatException>().WithMessage("*value 3 exceeds the maximum 2*");

        // The same checks inside bit-packed runs: 8 values of 4 bits (0..6, then 9), and of 2 bits (0..3, then 0s).
        FluentActions.Invoking(() => RleBitPackedHybrid.Decode([0x03, 0x10, 0x32, 0x54, 0x96], 4, new int[8], 8, "idx"))
            .Should().Throw<ParquetFormatException>().WithMessage("*index 9 is out of range*8 entries*");
        FluentActions.Invoking(() => RleBitPackedHybrid.Decode([0x03, 0xE4, 0x00], 2, new byte[8], 2, "def"))
            .Should().Throw<ParquetFormatException>().WithMessage("*value 3 exceeds the maximum 2*");

        // An empty dictionary admits no index, 0 included, in either kind of run.
        FluentActions.Invoking(() => RleBitPackedHybrid.Decode([0x02, 0x00], 1, new int[1], 0, "idx"))
            .Should().Throw<ParquetFormatException>().WithMessage("*index 0 is out of range*0 entries*");
        FluentActions.Invoking(() => RleBitPackedHybrid.Decode([0x03, 0x00], 1, new int[8], 0, "idx"))
            .Should().Throw<ParquetFormatException>().WithMessage("*index 0 is out of range*0 entries*");
    }

    [Fact]
    public void Strings_compare_in_UTF8_byte_order()
    {
        var strings = new[] { "b", "a", "\uFFFD", "😀", "", "ab", "\uE000" };
        var byUtf8 = strings.OrderBy(s => s, Comparer<string>.Create((x, y) => System.Text.Encoding.UTF8.GetBytes(x).AsSpan().SequenceCompareTo(System.Text.Encoding.UTF8.GetBytes(y)))).ToArray();

        strings.Order(Comparer<string>.Create(Utf8Order.Compare)).Should().Equal(byUtf8);
    }

    [Fact]
    public void Thrift_structures_round_trip_and_unknown_fields_of_every_type_are_skipped()
    {
        using var buffer = new PooledBuffer();
        var w = new ThriftCompactWriter(buffer);
        var outer = w.BeginStruct();
        w.StringField(1, "key");
        w.BoolField(3, true);                        // unknown bool
        w.I64Field(4, -123456789012);                // unknown i64
        w.FieldBegin(5, CompactType.Double);         // unknown double
        buffer.Write(BitConverter.GetBytes(3.5));
        w.ListField(6, CompactType.Struct, 20);      // unknown list of 20 structs (long list header)
        for (var i = 0; i < 20; i++)
        {
            var s = w.BeginStruct();
            w.I32Field(1, i);
            w.ListField(2, CompactType.BooleanTrue, 2);
            buffer.WriteByte(1);
            buffer.WriteByte(2);
            w.EndStruct(s);
        }

        w.FieldBegin(7, CompactType.Map);            // unknown map<i32, binary> with 2 entries
        buffer.WriteByte(2);
        buffer.WriteByte(((int)CompactType.I32 << 4) | (int)CompactType.Binary);
        w.I32(1);
        w.Binary("x"u8);
        w.I32(2);
        w.Binary("yz"u8);
        w.ByteField(40, 7);                          // unknown byte with a long field id delta
        w.StringField(2, "value");                   // known field after a negative delta
        w.EndStruct(outer);

        var reader = new ThriftCompactReader(buffer.WrittenSpan);
        var kv = KeyValue.Read(ref reader);

        kv.Key.Should().Be("key");
        kv.Value.Should().Be("value");
        reader.Remaining.Should().Be(0);
    }

    [Fact]
    public void The_footer_round_trips_through_the_compact_protocol()
    {
        var schema = new ParquetSchema(
        [
            new ParquetField("t", ParquetType.TimestampMicros, true),
            new ParquetField("l", ParquetType.String, false, IsList: true),
        ]);
        var meta = new FileMetaData
        {
            Schema = SchemaMapping.ToElements(schema),
            NumRows = 42,
            RowGroups = [],
            KeyValueMetadata = [new KeyValue { Key = "k", Value = "v" }],
            CreatedBy = "me",
            ColumnOrderCount = 2,
        };
        using var buffer = new PooledBuffer();
        meta.Write(new ThriftCompactWriter(buffer));

        var reader = new ThriftCompactReader(buffer.WrittenSpan);
        var read = FileMetaData.Read(ref reader);
        var (readSchema, columns) = SchemaMapping.FromElements(read.Schema);

        readSchema.Should().Be(schema);
        read.NumRows.Should().Be(42);
        read.CreatedBy.Should().Be("me");
        read.KeyValueMetadata!.Single().Value.Should().Be("v");
        read.Schema[1].LogicalType!.Kind.Should().Be(LogicalType.Timestamp);
        read.Schema[1].LogicalType!.IsAdjustedToUtc.Should().BeTrue();
        read.Schema[1].LogicalType!.TimeUnit.Should().Be(2);
        columns[1].Path.Should().Equal("l", "list", "element");
        columns[1].MaxDefinitionLevel.Should().Be(1);
        columns[1].MaxRepetitionLevel.Should().Be(1);
    }

    [Fact]
    public void Random_bytes_never_escape_the_thrift_reader_as_anything_but_a_format_error()
    {
        var rng = new Random(99);
        for (var i = 0; i < 5000; i++)
        {
            var bytes = new byte[rng.Next(0, 64)];
            rng.NextBytes(bytes);
            try
            {
                var reader = new ThriftCompactReader(bytes);
                FileMetaData.Read(ref reader);
            }
            catch (ParquetFormatException)
            {
            }
        }
    }
}
