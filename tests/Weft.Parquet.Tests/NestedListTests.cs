using FsCheck;
using FsCheck.Fluent;
using Weft.Parquet.Columns;
using Weft.Parquet.Format;

namespace Weft.Parquet.Tests;

/// <summary>Lists with null elements (<see cref="ParquetField.ElementNullable"/>) and lists of lists (<see cref="ParquetField.ListDepth"/> 2).</summary>
public sealed class NestedListTests
{
    private static readonly ParquetField DwellMs = new("dwell_ms", ParquetType.Int64, Nullable: true, IsList: true, ElementNullable: true);

    private static readonly ParquetField Embedding = new("embedding", ParquetType.Float, Nullable: false, IsList: true) { ListDepth = 2 };

    /// <summary>Every level nullable: list&lt;list&lt;int?&gt;?&gt;?.</summary>
    private static readonly ParquetField AllNullable =
        new("n", ParquetType.Int32, Nullable: true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true };

    public enum Shape
    {
        /// <summary>list&lt;T?&gt;</summary>
        NullableElements,

        /// <summary>list&lt;T?&gt;?</summary>
        NullableListOfNullableElements,

        /// <summary>list&lt;list&lt;T&gt;&gt;</summary>
        NestedRequired,

        /// <summary>list&lt;list&lt;T&gt;&gt;?</summary>
        NestedNullableOuter,

        /// <summary>list&lt;list&lt;T?&gt;?&gt;?</summary>
        NestedAllNullable,
    }

    private static ParquetField FieldFor(string name, ParquetType type, Shape shape) => shape switch
    {
        Shape.NullableElements => new ParquetField(name, type, false, IsList: true, ElementNullable: true),
        Shape.NullableListOfNullableElements => new ParquetField(name, type, true, IsList: true, ElementNullable: true),
        Shape.NestedRequired => new ParquetField(name, type, false, IsList: true) { ListDepth = 2 },
        Shape.NestedNullableOuter => new ParquetField(name, type, true, IsList: true) { ListDepth = 2 },
        _ => new ParquetField(name, type, true, IsList: true, ElementNullable: true) { ListDepth = 2, InnerListNullable = true },
    };

    [Fact]
    public async Task Null_elements_null_lists_and_empty_lists_stay_distinct()
    {
        long?[]?[] rows = [null, [], [1, null, 3], [null], [null, null], [], [4]];
        var column = ParquetColumnData.FromNullableLists(DwellMs, rows);
        var file = await TestColumns.WriteAsync(new ParquetSchema([DwellMs]), ParquetWriterOptions.Default, [column]);

        await using var reader = await TestColumns.OpenAsync(file);
        var actual = await reader.ReadColumnAsync(0, "dwell_ms");

        reader.Schema.Fields.Should().Equal(DwellMs);
        actual.Nulls.Should().Equal(true, false, false, false, false, false, false);
        actual.Offsets.Should().Equal(0, 0, 0, 3, 4, 6, 6, 7);
        actual.ElementNulls.Should().Equal(false, true, false, true, true, true, false);
        actual.GetValues<long>().Should().Equal(1, 0, 3, 0, 0, 0, 4);
        actual.GetList<long>(2).ToArray().Should().Equal(1, 0, 3);
        var stats = reader.RowGroups[0]["dwell_ms"];
        stats.NullCount.Should().Be(7, "one null row, two empty lists and four null elements");
        stats.Min.Should().Be(1L);
        stats.Max.Should().Be(4L);
    }

    [Fact]
    public async Task Null_strings_in_a_list_are_null_elements_and_read_back_as_null()
    {
        var field = new ParquetField("tags", ParquetType.String, Nullable: false, IsList: true, ElementNullable: true);
        var column = ParquetColumnData.FromLists<string?>(field, [["a", null], [null], [], ["b"]]);
        column.ElementNulls.Should().Equal(false, true, true, false);

        var file = await TestColumns.WriteAsync(new ParquetSchema([field]), ParquetWriterOptions.Default, [column]);
        await using var reader = await TestColumns.OpenAsync(file);
        var actual = await reader.ReadColumnAsync(0, "tags");

        actual.GetValues<string?>().Should().Equal("a", null, null, "b");
        actual.ElementNulls.Should().Equal(false, true, true, false);
        actual.Nulls.Should().BeNull();
    }

    [Fact]
    public async Task A_nested_list_keeps_null_and_empty_inner_lists_apart()
    {
        int?[]?[]?[] rows = [null, [], [null, [], [1, null], [2]], [[3]], [[null]]];
        var column = BuildAllNullable(rows);

        column.Offsets.Should().Equal(0, 0, 0, 4, 5, 6);
        column.InnerOffsets.Should().Equal(0, 0, 0, 2, 3, 4, 5);
        column.InnerNulls.Should().Equal(true, false, false, false, false, false);
        column.ElementNulls.Should().Equal(false, true, false, false, true);

        var file = await TestColumns.WriteAsync(new ParquetSchema([AllNullable]), ParquetWriterOptions.Default, [column]);
        await using var reader = await TestColumns.OpenAsync(file);
        var actual = await reader.ReadColumnAsync(0, "n");

        reader.Schema.Fields.Should().Equal(AllNullable);
        actual.Nulls.Should().Equal(true, false, false, false, false);
        actual.Offsets.Should().Equal(column.Offsets);
        actual.InnerOffsets.Should().Equal(column.InnerOffsets);
        actual.InnerNulls.Should().Equal(column.InnerNulls);
        actual.ElementNulls.Should().Equal(column.ElementNulls);
        actual.GetValues<int>().Should().Equal(1, 0, 2, 3, 0);
        FluentActions.Invoking(() => actual.GetList<int>(2)).Should().Throw<InvalidOperationException>().WithMessage("*nested list*InnerOffsets*");
    }

    [Fact]
    public async Task An_embedding_column_of_sixteen_floats_per_element_round_trips()
    {
        var rng = new Random(16);
        var rows = Enumerable.Range(0, 300)
            .Select(_ => Enumerable.Range(0, rng.Next(0, 6)).Select(_ => Enumerable.Range(0, 16).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray())
            .ToArray();
        var column = ParquetColumnData.FromNestedLists<float>(Embedding, rows);
        var file = await TestColumns.WriteAsync(new ParquetSchema([Embedding]), new ParquetWriterOptions { DataPageSize = 1024 }, [column]);

        await using var reader = await TestColumns.OpenAsync(file);
        var actual = await reader.ReadColumnAsync(0, "embedding");

        TestColumns.AssertEqual(column, actual);
        actual.Nulls.Should().BeNull();
        actual.InnerNulls.Should().BeNull();
        actual.ElementNulls.Should().BeNull();
        reader.PagesDecoded.Should().BeGreaterThan(10, "1 KiB pages split the chunk");
        reader.Footer.RowGroups[0].Columns[0].MetaData.PathInSchema.Should().Equal("embedding", "list", "element", "list", "element");
    }

    [Fact]
    public void Levels_of_a_nested_list_follow_the_Dremel_encoding()
    {
        // list<list<int?>?>?: null list 0, empty list 1, null inner list 2, empty inner list 3, null element 4, value 5.
        int?[]?[]?[] rows = [null, [], [null, [], [1, null]], [[2]]];
        var column = BuildAllNullable(rows);
        var descriptor = ColumnDescriptor.ForWrite(AllNullable);

        var (defs, reps) = Shred(column, descriptor);

        descriptor.MaxDefinitionLevel.Should().Be(5);
        descriptor.MaxRepetitionLevel.Should().Be(2);
        reps.Should().Equal(0, 0, 0, 1, 1, 2, 0);
        defs.Should().Equal(0, 1, 2, 3, 5, 4, 5);
        TestColumns.AssertEqual(column, ListLevels.Assemble(descriptor, rows.Length, defs, reps, new[] { 1, 2 }));
    }

    [Fact]
    public void Levels_of_required_nested_lists_use_only_the_repeated_levels()
    {
        // list<list<long>>: empty list 0, empty inner list 1, value 2.
        var field = new ParquetField("r", ParquetType.Int64, false, IsList: true) { ListDepth = 2 };
        var column = ParquetColumnData.FromNestedLists<long>(field, [[], [[], [7, 8]], [[9]]]);
        var descriptor = ColumnDescriptor.ForWrite(field);

        var (defs, reps) = Shred(column, descriptor);

        descriptor.MaxDefinitionLevel.Should().Be(2);
        reps.Should().Equal(0, 0, 1, 2, 0);
        defs.Should().Equal(0, 1, 2, 2, 2);
    }

    [Fact]
    public void Levels_of_a_list_with_null_elements_mark_the_elements_one_below_the_maximum()
    {
        var column = ParquetColumnData.FromNullableLists<long>(DwellMs, [null, [], [1, null], [null]]);
        var descriptor = ColumnDescriptor.ForWrite(DwellMs);

        var (defs, reps) = Shred(column, descriptor);

        reps.Should().Equal(0, 0, 0, 1, 0);
        defs.Should().Equal(0, 1, 3, 2, 2);
    }

    [Theory]
    [InlineData(new byte[] { 0, 1 }, new byte[] { 1, 2 }, 0, "continue a list that is null or empty")] // row 0 is empty, then an entry of it
    [InlineData(new byte[] { 0, 2 }, new byte[] { 3, 5 }, 1, "continue a list that is null or empty")] // an inner list is empty, then an element of it
    [InlineData(new byte[] { 0, 1 }, new byte[] { 5, 1 }, 1, "continue a list that is null or empty")] // a continuing entry claims its list is empty
    [InlineData(new byte[] { 2 }, new byte[] { 5 }, 1, "continue a list that is null or empty")] // the first level does not start a row
    [InlineData(new byte[] { 0, 0 }, new byte[] { 5, 5 }, 1, "decoded 1 elements where its levels describe 2")]
    public void Inconsistent_nested_levels_are_format_errors(byte[] reps, byte[] defs, int values, string problem)
    {
        var descriptor = ColumnDescriptor.ForWrite(AllNullable);
        var rows = reps.Count(r => r == 0);

        FluentActions.Invoking(() => ListLevels.Assemble(descriptor, rows, defs, reps, new int[values]))
            .Should().Throw<ParquetFormatException>().Which.Problem.Should().Contain(problem);
    }

    public static TheoryData<ParquetType, Shape, RoundTripTests.EncodingCase, ParquetCompression> Cases()
    {
        var data = new TheoryData<ParquetType, Shape, RoundTripTests.EncodingCase, ParquetCompression>();
        foreach (var type in TestColumns.AllTypes)
        {
            foreach (var shape in Enum.GetValues<Shape>())
            {
                foreach (var encoding in Enum.GetValues<RoundTripTests.EncodingCase>())
                {
                    foreach (var compression in Enum.GetValues<ParquetCompression>())
                    {
                        data.Add(type, shape, encoding, compression);
                    }
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Every_type_shape_encoding_and_codec_round_trips_over_many_pages_and_row_groups(
        ParquetType type, Shape shape, RoundTripTests.EncodingCase encoding, ParquetCompression compression)
    {
        var field = FieldFor("c", type, shape);
        var schema = new ParquetSchema([field, new ParquetField("id", ParquetType.Int32, false)]);
        var options = new ParquetWriterOptions
        {
            Compression = compression,
            UseDictionary = encoding != RoundTripTests.EncodingCase.Plain,
            MaxDictionarySize = encoding == RoundTripTests.EncodingCase.DictionaryFallback ? 24 : ParquetWriterOptions.DefaultMaxDictionarySize,
            DataPageSize = 128,
        };
        var rng = new Random(HashCode.Combine((int)type, (int)shape, (int)encoding, (int)compression) & 0x7FFFFFFF);
        var groups = new[] { 300, 1, 57 }.Select(rows => new[]
        {
            TestColumns.Random(field, rows, rng, nullRate: 0.2),
            ParquetColumnData.FromValues(schema.Fields[1], Enumerable.Range(0, rows).ToArray()),
        }).ToArray();

        var file = await TestColumns.WriteAsync(schema, options, groups);

        await using var reader = await TestColumns.OpenAsync(file);
        reader.Schema.Should().Be(schema);
        for (var g = 0; g < groups.Length; g++)
        {
            TestColumns.AssertEqual(groups[g][0], await reader.ReadColumnAsync(g, "c"), $"row group {g}");
            var stats = reader.RowGroups[g]["c"];
            stats.NullCount.Should().Be(TestColumns.LevelCount(groups[g][0]) - TestColumns.PresentValues(groups[g][0]).Count);
        }

        reader.PagesDecoded.Should().BeGreaterThan(4, "the 300-row group spans several 128-byte pages");
        var meta = reader.Footer.RowGroups[0].Columns[0].MetaData;
        meta.Encodings.Contains(PageEncoding.RleDictionary).Should().Be(encoding == RoundTripTests.EncodingCase.Dictionary && type != ParquetType.Boolean);
    }

    [Fact]
    public void Nested_and_nullable_element_lists_round_trip_through_a_file()
    {
        // Lists only, every level's nullability drawn at random, long rows, and small pages: many pages
        // and row groups per case.
        var fields =
            from type in Gen.Elements(TestColumns.AllTypes)
            from depth in Gen.Elements(1, 2)
            from nullable in ArbMap.Default.GeneratorFor<bool>()
            from innerNullable in ArbMap.Default.GeneratorFor<bool>()
            from elementNullable in ArbMap.Default.GeneratorFor<bool>()
            select new ParquetField("c", type, nullable, IsList: true, elementNullable) { ListDepth = depth, InnerListNullable = depth == 2 && innerNullable };
        var cases =
            from field in fields
            from seed in ArbMap.Default.GeneratorFor<int>()
            from rows in Gen.Choose(0, 400)
            from nullRate in Gen.Elements(0.0, 0.1, 0.5, 1.0)
            from maxLength in Gen.Elements(0, 1, 3, 8)
            from groups in Gen.Choose(1, 5)
            from compression in Gen.Elements(Enum.GetValues<ParquetCompression>())
            from dictionary in ArbMap.Default.GeneratorFor<bool>()
            from pageSize in Gen.Elements(1, 100, 4096)
            select (field, seed, rows, nullRate, maxLength, groups, new ParquetWriterOptions { Compression = compression, UseDictionary = dictionary, DataPageSize = pageSize });

        var property = Prop.ForAll(cases.ToArbitrary(), c => RoundTripAsync(c.field, c.seed, c.rows, c.nullRate, c.maxLength, c.groups, c.Item7));
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(150).WithReplay(0xDEC0DE, 0x9E3779B97F4A7C15), property);
    }

    private static async Task RoundTripAsync(ParquetField field, int seed, int rows, double nullRate, int maxLength, int groupCount, ParquetWriterOptions options)
    {
        var rng = new Random(seed);
        var groups = Enumerable.Range(0, groupCount)
            .Select(g => new[] { TestColumns.Random(field, 1 + rows / groupCount, rng, repetitive: rng.Next(2) == 0, nullRate, maxLength) })
            .ToArray();
        var file = await TestColumns.WriteAsync(new ParquetSchema([field]), options, groups);

        await using var reader = await TestColumns.OpenAsync(file);
        reader.RowGroups.Count.Should().Be(groupCount);
        for (var g = 0; g < groupCount; g++)
        {
            TestColumns.AssertEqual(groups[g][0], await reader.ReadColumnAsync(g, "c"), $"{field} {options.Compression} page={options.DataPageSize}: row group {g}");
        }
    }

    [Fact]
    public void Column_factories_check_nulls_against_the_fields_nullability_at_every_level()
    {
        var required = new ParquetField("l", ParquetType.Int32, false, IsList: true);
        FluentActions.Invoking(() => ParquetColumnData.Create(required, new[] { 1, 2 }, null, [0, 2], [false, true]))
            .Should().Throw<ArgumentException>().WithMessage("*'l' does not allow null elements (ElementNullable = false) but element 1 is null*");
        FluentActions.Invoking(() => ParquetColumnData.Create(DwellMs, new long[2], null, [0, 2], [true]))
            .Should().Throw<ArgumentException>().WithMessage("*1 element null flags for 2 elements*");
        FluentActions.Invoking(() => ParquetColumnData.Create(new ParquetField("s", ParquetType.String, false, IsList: true, ElementNullable: true), new string?[] { "a", null }, null, [0, 2], null))
            .Should().Throw<ArgumentException>().WithMessage("*element 1 is null but its element null flag is not set*");
        FluentActions.Invoking(() => ParquetColumnData.CreateNested(Embedding, new float[1], null, [0, 2], [true, false], [0, 0, 1]))
            .Should().Throw<ArgumentException>().WithMessage("*does not allow null inner lists (InnerListNullable = false) but inner list 0 is null*");
        FluentActions.Invoking(() => ParquetColumnData.CreateNested(AllNullable, new int[1], null, [0, 2], [false, true], [0, 0, 1]))
            .Should().Throw<ArgumentException>().WithMessage("*null inner list 1 has elements*");
        FluentActions.Invoking(() => ParquetColumnData.CreateNested(Embedding, new float[1], null, [0, 3], null, [0, 0, 1]))
            .Should().Throw<ArgumentException>().WithMessage("*offsets must start at 0 and end at the inner list count 2*");
        FluentActions.Invoking(() => ParquetColumnData.CreateNested(Embedding, new float[2], null, [0, 2], null, [0, 2, 3]))
            .Should().Throw<ArgumentException>().WithMessage("*inner offsets must start at 0 and end at the element count 2*");
        FluentActions.Invoking(() => ParquetColumnData.CreateNested(Embedding, new float[2], null, [0, 3], null, [0, 2, 1, 2]))
            .Should().Throw<ArgumentException>().WithMessage("*inner offsets decrease at inner list 1*");
        FluentActions.Invoking(() => ParquetColumnData.Create(Embedding, new float[1], null, [0, 1]))
            .Should().Throw<ArgumentException>().WithMessage("*nested list*CreateNested*");
        FluentActions.Invoking(() => ParquetColumnData.CreateNested(DwellMs, new long[1], null, [0, 1], null, [0, 1]))
            .Should().Throw<ArgumentException>().WithMessage("*not a nested list*Create*");
        FluentActions.Invoking(() => ParquetColumnData.Create(new ParquetField("x", ParquetType.Int32, true), new int[1], null, null, [true]))
            .Should().Throw<ArgumentException>().WithMessage("*not a list column*element null flags*");
        FluentActions.Invoking(() => ParquetColumnData.FromNestedLists<float>(Embedding, [[null]]))
            .Should().Throw<ArgumentException>().WithMessage("*InnerListNullable = false*inner list 0 is null*");
    }

    [Fact]
    public void Fields_whose_list_settings_disagree_are_rejected_by_schemas_and_columns()
    {
        FluentActions.Invoking(() => new ParquetSchema([new ParquetField("a", ParquetType.Int32, false) { ListDepth = 2 }]))
            .Should().Throw<ArgumentException>().WithMessage("*'a' has IsList = False but ListDepth = 2*");
        FluentActions.Invoking(() => new ParquetSchema([new ParquetField("a", ParquetType.Int32, false, IsList: true) { ListDepth = 3 }]))
            .Should().Throw<ArgumentException>().WithMessage("*ListDepth 3*");
        FluentActions.Invoking(() => new ParquetSchema([new ParquetField("a", ParquetType.Int32, false, ElementNullable: true)]))
            .Should().Throw<ArgumentException>().WithMessage("*not a list, so ElementNullable does not apply*");
        FluentActions.Invoking(() => new ParquetSchema([new ParquetField("a", ParquetType.Int32, false, IsList: true) { InnerListNullable = true }]))
            .Should().Throw<ArgumentException>().WithMessage("*InnerListNullable but ListDepth 1*");
        FluentActions.Invoking(() => ParquetColumnData.Create(new ParquetField("a", ParquetType.Int32, false, IsList: true) { ListDepth = 0 }, Array.Empty<int>(), null, [0]))
            .Should().Throw<ArgumentException>().WithMessage("*IsList = True but ListDepth = 0*");
    }

    [Fact]
    public void Fields_describe_their_nesting_and_nullability()
    {
        new ParquetField("a", ParquetType.Int32, false).TypeName.Should().Be("Int32");
        DwellMs.TypeName.Should().Be("list<Int64?>?");
        Embedding.TypeName.Should().Be("list<list<Float>>");
        AllNullable.TypeName.Should().Be("list<list<Int32?>?>?");
        new ParquetSchema([DwellMs, Embedding]).ToString().Should().Be("dwell_ms: list<Int64?>?, embedding: list<list<Float>>");
        Embedding.Should().NotBe(new ParquetField("embedding", ParquetType.Float, false, IsList: true), "the depth is part of the field");
    }

    [Fact]
    public void Schemas_with_legacy_two_level_inner_lists_read_as_nested_lists()
    {
        // optional group a (LIST) { repeated group list { optional group element (LIST) { repeated int32 item } } }
        SchemaElement[] elements =
        [
            new() { Name = "schema", NumChildren = 1 },
            new() { Name = "a", RepetitionType = Repetition.Optional, NumChildren = 1, ConvertedType = ConvertedType.List },
            new() { Name = "list", RepetitionType = Repetition.Repeated, NumChildren = 1 },
            new() { Name = "element", RepetitionType = Repetition.Optional, NumChildren = 1, ConvertedType = ConvertedType.List },
            new() { Name = "item", RepetitionType = Repetition.Repeated, Type = PhysicalType.Int32 },
        ];

        var (schema, columns) = SchemaMapping.FromElements(elements);

        schema.Fields.Should().Equal(new ParquetField("a", ParquetType.Int32, true, IsList: true) { ListDepth = 2, InnerListNullable = true });
        columns[0].Path.Should().Equal("a", "list", "element", "item");
        columns[0].MaxDefinitionLevel.Should().Be(4);
        columns[0].MaxRepetitionLevel.Should().Be(2);
        columns[0].ListPresentLevels.Should().Equal(1, 3);
    }

    [Fact]
    public void Lists_nested_three_deep_are_not_supported_and_name_the_column()
    {
        SchemaElement[] elements =
        [
            new() { Name = "schema", NumChildren = 1 },
            new() { Name = "deep", RepetitionType = Repetition.Optional, NumChildren = 1, ConvertedType = ConvertedType.List },
            new() { Name = "list", RepetitionType = Repetition.Repeated, NumChildren = 1 },
            new() { Name = "element", RepetitionType = Repetition.Optional, NumChildren = 1, ConvertedType = ConvertedType.List },
            new() { Name = "list", RepetitionType = Repetition.Repeated, NumChildren = 1 },
            new() { Name = "element", RepetitionType = Repetition.Optional, NumChildren = 1, ConvertedType = ConvertedType.List },
            new() { Name = "list", RepetitionType = Repetition.Repeated, NumChildren = 1 },
            new() { Name = "element", RepetitionType = Repetition.Optional, Type = PhysicalType.Int32 },
        ];

        FluentActions.Invoking(() => SchemaMapping.FromElements(elements))
            .Should().Throw<NotSupportedException>().WithMessage("*'deep'*more than two deep*");
    }

    private static ParquetColumnData BuildAllNullable(int?[]?[]?[] rows) =>
        TestColumns.FromRows(AllNullable, rows.Select(r => (object?)r?.Select(l => (object?)l?.Select(v => (object?)v).ToArray()).ToArray()).ToArray());

    private static (byte[] Defs, byte[] Reps) Shred(ParquetColumnData column, ColumnDescriptor descriptor)
    {
        var count = ListLevels.Count(column);
        var defs = new byte[count];
        var reps = new byte[count];
        ListLevels.Shred(column, descriptor, defs, reps);
        return (defs, reps);
    }
}
