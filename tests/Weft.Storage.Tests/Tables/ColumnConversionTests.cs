using System.Collections.Immutable;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet;
using Xunit;

namespace Weft.Storage.Tests.Tables;

public sealed class ColumnConversionTests
{
    private static readonly ScalarKind[] Kinds = Enum.GetValues<ScalarKind>();

    private static readonly Gen<(FieldDefinition Field, int Rows, int Seed)> ColumnCase =
        from kind in Gen.Elements(Kinds)
        from isList in ArbMap.Default.GeneratorFor<bool>()
        from nullable in ArbMap.Default.GeneratorFor<bool>()
        from rows in Gen.Choose(0, 60)
        from seed in ArbMap.Default.GeneratorFor<int>()
        select (new FieldDefinition("c", new WeftType(kind, isList), nullable), rows, seed);

    [Fact]
    public void Any_column_survives_Parquet_data_and_back_whole_or_gathered()
    {
        var property = Prop.ForAll(ColumnCase.ToArbitrary(), c =>
        {
            var column = EventData.RandomColumn(c.Field, c.Rows, new Random(c.Seed));
            var field = ColumnConversions.ToParquetField(c.Field);

            var whole = ColumnConversions.FromParquet(ColumnConversions.ToParquet(column, field), c.Field.Type);
            Values(whole).Should().Equal(Values(column), $"whole column {c.Field}");

            var rows = Enumerable.Range(0, c.Rows).Where(i => i % 3 != 1).Reverse().ToArray();
            var gathered = ColumnConversions.FromParquet(ColumnConversions.ToParquet(column, field, rows), c.Field.Type);
            Values(gathered).Should().Equal(Values(column.Gather(rows)), $"gathered rows of {c.Field}");
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300).WithReplay(0x7AB1E5, 0x9E3779B97F4A7C15), property);
    }

    [Fact]
    public void Null_lists_and_empty_lists_stay_distinct()
    {
        var type = WeftType.ListOf(ScalarKind.Int64);
        var column = new ListColumn<long>(type, [null, [], [1, 2], null, []]);
        var data = ColumnConversions.ToParquet(column, ColumnConversions.ToParquetField(new FieldDefinition("l", type)));

        data.Nulls.Should().Equal(true, false, false, true, false);
        data.Offsets.Should().Equal(0, 0, 0, 2, 2, 2);
        var back = (ListColumn<long>)ColumnConversions.FromParquet(data, type);
        back.Values[0].Should().BeNull();
        back.Values[1].Should().BeEmpty();
        back.Values[2].Should().Equal(1L, 2L);
    }

    [Fact]
    public void A_null_string_list_element_is_rejected_naming_the_column_and_row()
    {
        var type = WeftType.ListOf(ScalarKind.String);
        var column = new ListColumn<string>(type, [["a"], [], ["b", null!]]);

        var act = () => ColumnConversions.ToParquet(column, ColumnConversions.ToParquetField(new FieldDefinition("tags", type)));

        act.Should().Throw<ArgumentException>().WithMessage("*'tags'*row 2*null element*");
    }

    [Fact]
    public void A_column_is_not_converted_to_a_field_of_another_type()
    {
        var column = new PrimitiveColumn<long>(WeftType.Int64, [1, 2]);

        var act = () => ColumnConversions.ToParquet(column, new ParquetField("t", ParquetType.TimestampMicros, false));

        act.Should().Throw<ArgumentException>().WithMessage("*'t'*int64*");
    }

    [Fact]
    public void Weft_schemas_map_to_Delta_and_back_with_timestamps_and_arrays()
    {
        ImmutableArray<FieldDefinition> fields =
        [
            new("ts", WeftType.Timestamp, Nullable: false),
            new("emb", WeftType.ListOf(ScalarKind.Float32)),
            new("ids", WeftType.ListOf(ScalarKind.Int64), Nullable: false),
            new("tags", WeftType.ListOf(ScalarKind.String)),
            new("n", WeftType.Int32),
            new("b", WeftType.Bool),
            new("d", WeftType.Float64),
            new("s", WeftType.String),
        ];

        var schema = ColumnConversions.ToDeltaSchema(fields, ["bucket", "path"]);

        schema.ToSchemaString().Should().Contain("\"name\":\"ts\",\"type\":\"timestamp\",\"nullable\":false")
            .And.Contain("{\"type\":\"array\",\"elementType\":\"float\",\"containsNull\":false}")
            .And.Contain("\"name\":\"bucket\",\"type\":\"string\",\"nullable\":true");
        ColumnConversions.ToDataFields(DeltaSchema.Parse(schema.ToSchemaString()), ["bucket", "path"]).Should().Equal(fields);
    }

    [Fact]
    public void Delta_types_Weft_does_not_hold_are_refused_naming_the_column_and_a_date_reads_as_a_timestamp()
    {
        var act = () => ColumnConversions.ToFieldDefinition(new DeltaField("avatar", DeltaDataType.Binary));

        act.Should().Throw<NotSupportedException>().WithMessage("*'avatar'*binary*");
        ColumnConversions.ToFieldDefinition(new DeltaField("birthday", DeltaDataType.Date)).Type.Should().Be(WeftType.Timestamp);
    }

    private static List<string> Values(Column column) =>
        [.. Enumerable.Range(0, column.Length).Select(i => EventData.Show(column.GetValue(i)))];
}

public sealed class TimeBucketsTests
{
    [Theory]
    [InlineData("2026-11-23T10:59:59.999999Z", TimeBucket.Hour, "2026-11-23T10")]
    [InlineData("2026-11-23T11:00:00Z", TimeBucket.Hour, "2026-11-23T11")]
    [InlineData("2026-11-23T23:30:00Z", TimeBucket.Day, "2026-11-23")]
    [InlineData("1969-12-31T23:59:59.999999Z", TimeBucket.Hour, "1969-12-31T23")]
    [InlineData("1969-12-31T00:00:00.000001Z", TimeBucket.Day, "1969-12-31")]
    public void A_timestamp_falls_in_the_bucket_that_holds_it(string instant, TimeBucket bucket, string expected)
    {
        var micros = Timestamps.ToMicros(DateTimeOffset.Parse(instant, System.Globalization.CultureInfo.InvariantCulture));

        TimeBuckets.Format(micros, bucket).Should().Be(expected);
        var (kind, start, end) = TimeBuckets.Parse(expected);
        kind.Should().Be(bucket);
        start.Should().BeLessThanOrEqualTo(micros);
        end.Should().BeGreaterThan(micros);
        (end - start).Should().Be(TimeBuckets.LengthMicros(bucket));
        TimeBuckets.StartOf(micros, bucket).Should().Be(start);
    }

    [Fact]
    public void Formatted_buckets_sort_in_time_order_so_ranges_become_partition_filters()
    {
        var rng = new Random(17);
        var times = Enumerable.Range(0, 500).Select(_ => EventData.BaseMicros + rng.NextInt64(-400_000 * EventData.HourMicros, 400_000 * EventData.HourMicros)).Order().ToArray();

        times.Select(t => TimeBuckets.Format(t, TimeBucket.Hour)).Should().BeInAscendingOrder(StringComparer.Ordinal);

        var from = EventData.BaseMicros + 30 * 60_000_000L;
        var to = from + 2 * EventData.HourMicros;
        TimeBuckets.Covering(from, to, TimeBucket.Hour).Should().Equal("2026-11-23T10", "2026-11-23T11", "2026-11-23T12");
        var filter = TimeBuckets.Filter(from, to, TimeBucket.Hour, PartitionFilter.All.Equal("path", "batch"));
        filter.Matches(EventLayout.Partition("2026-11-23T12", "batch")).Should().BeTrue();
        filter.Matches(EventLayout.Partition("2026-11-23T13", "batch")).Should().BeFalse();
        filter.Matches(EventLayout.Partition("2026-11-23T11", "stream")).Should().BeFalse();
    }

    [Theory]
    [InlineData("2026-11-23 10")]
    [InlineData("2026-13-01")]
    [InlineData("2026-11-23T24")]
    [InlineData("")]
    public void Text_that_is_not_a_bucket_does_not_parse(string text)
    {
        TimeBuckets.TryParse(text, out _, out _).Should().BeFalse();
        var act = () => TimeBuckets.Parse(text);
        act.Should().Throw<FormatException>();
    }

    [Fact]
    public void The_path_partition_is_stream_or_batch()
    {
        var act = () => EventLayout.Partition("2026-11-23", "other");

        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*stream*batch*");
    }
}
