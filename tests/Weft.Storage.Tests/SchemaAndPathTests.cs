using FluentAssertions;
using FsCheck;
using FsCheck.Xunit;
using Xunit;

namespace Weft.Storage.Tests;

public sealed class WeftSchemaTests
{
    [Fact]
    public void Schema_string_is_the_spark_struct_type_json()
    {
        var schema = DeltaSchema.Of(
            new DeltaField("user_id", DeltaDataType.Long, Nullable: false),
            DeltaField.List("embedding", DeltaDataType.Float, containsNull: false));

        schema.ToSchemaString().Should().Be(
            "{\"type\":\"struct\",\"fields\":["
            + "{\"name\":\"user_id\",\"type\":\"long\",\"nullable\":false,\"metadata\":{}},"
            + "{\"name\":\"embedding\",\"type\":{\"type\":\"array\",\"elementType\":\"float\",\"containsNull\":false},\"nullable\":true,\"metadata\":{}}]}");
    }

    [Fact]
    public void Every_type_round_trips_through_the_schema_string()
    {
        var fields = Enum.GetValues<DeltaDataType>()
            .SelectMany(t => new[]
            {
                new DeltaField("c_" + t, t, Nullable: t != DeltaDataType.Long),
                DeltaField.List("l_" + t, t, nullable: true, containsNull: t != DeltaDataType.Double),
            });
        var schema = new DeltaSchema(fields);

        var back = DeltaSchema.Parse(schema.ToSchemaString());

        back.Should().Be(schema);
        back.Fields.Should().HaveCount(2 * Enum.GetValues<DeltaDataType>().Length);
    }

    [Theory]
    [InlineData(
        "{\"type\":\"struct\",\"fields\":[{\"name\":\"m\",\"type\":{\"type\":\"map\",\"keyType\":\"string\",\"valueType\":\"long\"},\"nullable\":true},{\"name\":\"M\",\"type\":\"long\"}]}",
        "*'m' appears twice*")]
    [InlineData("{\"type\":\"struct\",\"fields\":[{\"name\":\"a\",\"type\":\"long\"},{\"name\":\"A\",\"type\":\"long\"}]}", "*'A' appears twice*")]
    [InlineData("[1]", "*struct*")]
    [InlineData("{not json", "*not valid JSON*")]
    public void Unusable_schema_strings_are_rejected_with_the_reason(string schemaString, string message)
    {
        var act = () => DeltaSchema.Parse(schemaString);

        act.Should().Throw<FormatException>().WithMessage(message);
    }

    /// <summary>
    /// Another engine's types: those Weft reads through a conversion are fields of the type it reads them
    /// as, remembered with their own type; the rest are kept aside by name with their type, not as fields.
    /// </summary>
    [Fact]
    public void Types_Weft_reads_through_a_conversion_are_fields_and_the_rest_are_kept_aside()
    {
        var schema = DeltaSchema.Parse("""
            {"type":"struct","fields":[
              {"name":"price","type":"decimal(10,2)","nullable":true,"metadata":{}},
              {"name":"qty","type":"short","nullable":true,"metadata":{}},
              {"name":"flag","type":"byte","nullable":true,"metadata":{}},
              {"name":"local","type":"timestamp_ntz","nullable":true,"metadata":{}},
              {"name":"day","type":"date","nullable":true,"metadata":{}},
              {"name":"sizes","type":{"type":"array","elementType":"short","containsNull":true},"nullable":true,"metadata":{}},
              {"name":"attrs","type":{"type":"map","keyType":"string","valueType":"long","valueContainsNull":true},"nullable":true,"metadata":{}},
              {"name":"ctx","type":{"type":"struct","fields":[{"name":"device","type":"string","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
              {"name":"huge","type":"decimal(40,2)","nullable":true,"metadata":{}},
              {"name":"v","type":"variant","nullable":true,"metadata":{}}
            ]}
            """);

        schema.Fields.Select(f => (f.Name, f.Type, f.IsList)).Should().Equal(
            ("price", DeltaDataType.Double, false), ("qty", DeltaDataType.Integer, false), ("flag", DeltaDataType.Integer, false),
            ("local", DeltaDataType.Timestamp, false), ("day", DeltaDataType.Date, false), ("sizes", DeltaDataType.Integer, true),
            ("ctx.device", DeltaDataType.String, false));
        schema.StructColumns.Should().BeEquivalentTo(["ctx", "ctx.device"]);
        schema.ConvertedColumns.Should().BeEquivalentTo(new Dictionary<string, string>
        {
            ["price"] = "decimal(10,2)", ["qty"] = "short", ["flag"] = "byte", ["local"] = "timestamp_ntz", ["day"] = "date", ["sizes"] = "array<short>",
        });
        schema.UnreadableColumns.Should().BeEquivalentTo(new Dictionary<string, string>
        {
            ["attrs"] = "map<…>", ["huge"] = "decimal(40,2)", ["v"] = "variant",
        });
        schema.ToString().Should().Contain("price: decimal(10,2) (read as double)").And.Contain("attrs: map<…> (not read)").And.Contain("ctx.device: string");
    }

    [Fact]
    public void A_writer_may_reorder_columns_and_be_stricter_but_not_change_types_or_loosen_nullability()
    {
        var table = DeltaSchema.Of(new DeltaField("a", DeltaDataType.Long, Nullable: false), new DeltaField("b", DeltaDataType.String));

        table.FindMismatch(DeltaSchema.Of(new DeltaField("b", DeltaDataType.String, Nullable: false), new DeltaField("a", DeltaDataType.Long, Nullable: false)))
            .Should().BeNull();
        table.FindMismatch(DeltaSchema.Of(new DeltaField("a", DeltaDataType.Integer, Nullable: false), new DeltaField("b", DeltaDataType.String)))!
            .Value.Column.Should().Be("a");
        table.FindMismatch(DeltaSchema.Of(new DeltaField("a", DeltaDataType.Long), new DeltaField("b", DeltaDataType.String)))!
            .Value.Problem.Should().Contain("not null").And.Contain("nullable");
        table.FindMismatch(DeltaSchema.Of(new DeltaField("a", DeltaDataType.Long, Nullable: false)))!
            .Value.Should().Be(("b", "the table has string (nullable) but the writer's schema lacks the column"));
        table.FindMismatch(DeltaSchema.Of(new DeltaField("a", DeltaDataType.Long, Nullable: false), new DeltaField("b", DeltaDataType.String), new DeltaField("c", DeltaDataType.Double)))!
            .Value.Column.Should().Be("c");
        table.FindMismatch(DeltaSchema.Of(new DeltaField("a", DeltaDataType.Long, Nullable: false), DeltaField.List("b", DeltaDataType.String)))!
            .Value.Column.Should().Be("b");
    }
}

public sealed class DeltaPathsTests
{
    [Fact]
    public void Partition_directories_follow_the_table_partition_order()
    {
        var values = new Dictionary<string, string?> { ["path"] = "stream", ["bucket"] = "2026-11-23T10" };

        DeltaPaths.PartitionDirectory(["bucket", "path"], values).Should().Be("bucket=2026-11-23T10/path=stream");
        DeltaPaths.NewDataFilePath(["bucket", "path"], values).Should().MatchRegex(
            "^bucket=2026-11-23T10/path=stream/part-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\.parquet$");
        DeltaPaths.NewDataFilePath([], new Dictionary<string, string?>()).Should().StartWith("part-");
    }

    [Fact]
    public void Escaping_matches_what_spark_wrote_for_a_value_with_a_percent_sign()
    {
        // From delta-io/delta golden table data-reader-escaped-chars: partitionValues {"_2":"bar+%23"},
        // add.path "_2=bar+%252523/part-00000-….parquet", directory on disk "_2=bar+%2523".
        var directory = DeltaPaths.PartitionDirectory(["_2"], new Dictionary<string, string?> { ["_2"] = "bar+%23" });

        directory.Should().Be("_2=bar+%2523");
        DeltaPaths.ToLogPath(directory + "/part-00000.c000.snappy.parquet").Should().Be("_2=bar+%252523/part-00000.c000.snappy.parquet");
        DeltaPaths.FromLogPath("_2=bar+%252523/part-00000.c000.snappy.parquet").Should().Be("_2=bar+%2523/part-00000.c000.snappy.parquet");
    }

    [Theory]
    [InlineData("2026-11-23 10:00:00", "2026-11-23 10%3A00%3A00")]
    [InlineData("a/b=c", "a%2Fb%3Dc")]
    [InlineData("x\ny", "x%0Ay")]
    [InlineData("[q]{r}^#?'*\"\\", "%5Bq%5D%7Br}%5E%23%3F%27%2A%22%5C")]
    [InlineData("é ü+", "é ü+")]
    [InlineData(null, "__HIVE_DEFAULT_PARTITION__")]
    [InlineData("", "__HIVE_DEFAULT_PARTITION__")]
    public void Partition_values_are_hive_escaped(string? value, string expected)
    {
        DeltaPaths.EscapePartitionValue(value).Should().Be(expected);
    }

    [Property(MaxTest = 300)]
    public bool Partition_value_escaping_round_trips(string? value)
    {
        // Null and "" are both Hive's default partition, which reads back as null.
        var escaped = DeltaPaths.EscapePartitionValue(value);
        return !escaped.Contains('/', StringComparison.Ordinal) && !escaped.Contains('=', StringComparison.Ordinal)
            && DeltaPaths.UnescapePartitionValue(escaped) == (string.IsNullOrEmpty(value) ? null : value);
    }

    [Property(MaxTest = 300)]
    public bool Log_path_encoding_round_trips_and_stays_one_line(NonEmptyString path)
    {
        var encoded = DeltaPaths.ToLogPath(path.Get);
        return DeltaPaths.FromLogPath(encoded) == path.Get
            && !encoded.Contains('\n', StringComparison.Ordinal) && !encoded.Contains(' ', StringComparison.Ordinal)
            && !encoded.Contains(':', StringComparison.Ordinal);
    }

    [Fact]
    public void A_space_is_percent_encoded_in_the_log()
    {
        DeltaPaths.ToLogPath("path=a b/part 1.parquet").Should().Be("path=a%20b/part%201.parquet");
    }

    [Theory]
    [InlineData("bucket=x/path=y/part-1.parquet", null)]
    [InlineData("_2=x/part-1.parquet", null)]
    [InlineData("/abs/part-1.parquet", "*relative*")]
    [InlineData("bucket=x/../part-1.parquet", "*'..'*")]
    [InlineData("_delta_log/00000000000000000001.json", "*hidden*")]
    [InlineData(".staging/part-1.parquet", "*hidden*")]
    [InlineData("bucket=x/.part-1.parquet.crc", "*hidden*")]
    [InlineData("bucket=x\\part-1.parquet", "*'/'*")]
    public void Data_file_paths_must_be_relative_and_visible(string path, string? problem)
    {
        var result = DeltaPaths.CheckDataFilePath(path, ["bucket", "path", "_2"]);

        if (problem is null)
        {
            result.Should().BeNull();
        }
        else
        {
            result.Should().Match(problem);
        }
    }
}

public sealed class PartitionFilterTests
{
    [Fact]
    public void Conditions_combine_with_and_and_compare_ordinally()
    {
        var filter = PartitionFilter.All.Between("bucket", "2026-11-23T09", "2026-11-23T11").In("path", "stream", "batch");

        filter.Matches(TestTables.Partition("2026-11-23T09", "stream")).Should().BeTrue();
        filter.Matches(TestTables.Partition("2026-11-23T11", "batch")).Should().BeTrue();
        filter.Matches(TestTables.Partition("2026-11-23T12", "batch")).Should().BeFalse();
        filter.Matches(TestTables.Partition("2026-11-23T10", "other")).Should().BeFalse();
        filter.Matches(new Dictionary<string, string?> { ["bucket"] = null, ["path"] = "stream" }).Should().BeFalse();
        filter.ToString().Should().Be("bucket BETWEEN '2026-11-23T09' AND '2026-11-23T11' AND path IN ('stream', 'batch')");
    }

    [Fact]
    public void Equal_null_matches_the_null_partition_which_an_empty_string_also_denotes()
    {
        var filter = PartitionFilter.All.Equal("path", null);

        filter.Matches(new Dictionary<string, string?> { ["path"] = null }).Should().BeTrue();
        filter.Matches(new Dictionary<string, string?> { ["path"] = "" }).Should().BeTrue();
        filter.Matches(new Dictionary<string, string?> { ["path"] = "stream" }).Should().BeFalse();
        filter.ToString().Should().Be("path IS NULL");
    }
}
