using FsCheck;
using FsCheck.Fluent;

namespace Weft.Parquet.Tests;

/// <summary>FsCheck properties over random schemas, data and options; seeded so runs repeat.</summary>
public sealed class PropertyTests
{
    private const ulong Seed = 0x5EED_0F_BEEF;

    /// <summary>A random case: one column, its rows cut into row groups, and writer options.</summary>
    public sealed record Case(ParquetField Field, object?[] Rows, int[] GroupSizes, ParquetWriterOptions Options)
    {
        public override string ToString() =>
            $"{Field} rows={Rows.Length} groups=[{string.Join(",", GroupSizes)}] {Options.Compression} dict={Options.UseDictionary}/{Options.MaxDictionarySize} page={Options.DataPageSize} " +
            $"values=[{string.Join(", ", Rows.Take(20).Select(TestColumns.Show))}{(Rows.Length > 20 ? ", …" : "")}]";
    }

    private static Gen<object> ValueGen(ParquetType type) => type switch
    {
        ParquetType.Boolean => ArbMap.Default.GeneratorFor<bool>().Select(v => (object)v),
        ParquetType.Int32 => ArbMap.Default.GeneratorFor<int>().Select(v => (object)v),
        ParquetType.Int64 or ParquetType.TimestampMicros => ArbMap.Default.GeneratorFor<long>().Select(v => (object)v),
        ParquetType.Float => Gen.OneOf(
            ArbMap.Default.GeneratorFor<float>(),
            Gen.Elements(float.NaN, -0f, 0f, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon)).Select(v => (object)v),
        ParquetType.Double => Gen.OneOf(
            ArbMap.Default.GeneratorFor<double>(),
            Gen.Elements(double.NaN, -0d, 0d, double.PositiveInfinity, double.MinValue, double.Epsilon)).Select(v => (object)v),
        ParquetType.String => Gen.OneOf(
            Gen.Elements("", "a", "b", "ü", "😀", "long " + new string('z', 200)),
            ArbMap.Default.GeneratorFor<int>().Select(seed => TestColumns.RandomString(new Random(seed)))).Select(v => (object)v),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    private static Gen<object?> OrNull(bool nullable, Gen<object?> present) =>
        nullable ? Gen.Frequency((1, Gen.Constant<object?>(null)), (4, present)) : present;

    private static Gen<object?> ListGen(Gen<object?> item) =>
        Gen.Sized(size => Gen.Choose(0, Math.Min(size, 8)))
            .SelectMany(n => item.ArrayOf(n))
            .Select(items => (object?)items);

    /// <summary>A row in the <see cref="TestColumns.ValueAt"/> shape, with nulls wherever the field allows them.</summary>
    private static Gen<object?> RowGen(ParquetField field)
    {
        var value = ValueGen(field.Type).Select(v => (object?)v);
        var present = field.ListDepth switch
        {
            0 => value,
            1 => ListGen(OrNull(field.ElementNullable, value)),
            _ => ListGen(OrNull(field.InnerListNullable, ListGen(OrNull(field.ElementNullable, value)))),
        };
        return OrNull(field.Nullable, present);
    }

    private static readonly Gen<ParquetField> FieldGen =
        from type in Gen.Elements(TestColumns.AllTypes)
        from nullable in ArbMap.Default.GeneratorFor<bool>()
        from depth in Gen.Elements(0, 1, 2)
        from elementNullable in ArbMap.Default.GeneratorFor<bool>()
        from innerNullable in ArbMap.Default.GeneratorFor<bool>()
        select new ParquetField("c", type, nullable, depth > 0, depth > 0 && elementNullable)
        {
            ListDepth = depth,
            InnerListNullable = depth == 2 && innerNullable,
        };

    private static readonly Gen<Case> CaseGen =
        from field in FieldGen
        from rows in RowGen(field).ListOf().Select(l => l.ToArray())
        from cuts in Gen.Choose(1, 4)
        from compression in Gen.Elements(Enum.GetValues<ParquetCompression>())
        from dictionary in ArbMap.Default.GeneratorFor<bool>()
        from maxDictionary in Gen.Elements(1, 16, 1 << 20)
        from pageSize in Gen.Elements(1, 64, 1 << 20)
        select new Case(
            field,
            rows,
            Split(rows.Length, cuts),
            new ParquetWriterOptions { Compression = compression, UseDictionary = dictionary, MaxDictionarySize = maxDictionary, DataPageSize = pageSize });

    [Fact]
    public void Any_column_round_trips_through_a_file()
    {
        var property = Prop.ForAll(CaseGen.ToArbitrary(), RoundTripsAsync);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(250).WithEndSize(60).WithReplay(Seed, 0x9E3779B97F4A7C15), property);
    }

    [Fact]
    public void Statistics_bound_every_non_null_value_and_count_the_nulls()
    {
        var property = Prop.ForAll(CaseGen.ToArbitrary(), StatisticsHoldAsync);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(150).WithEndSize(60).WithReplay(Seed + 1, 0x9E3779B97F4A7C15), property);
    }

    private static async Task RoundTripsAsync(Case c)
    {
        var (schema, groups) = Build(c);
        var file = await TestColumns.WriteAsync(schema, c.Options, groups);
        await using var reader = await TestColumns.OpenAsync(file);
        reader.RowGroups.Count.Should().Be(groups.Length);
        for (var g = 0; g < groups.Length; g++)
        {
            var actual = await reader.ReadColumnAsync(g, "c");
            TestColumns.AssertEqual(groups[g][0], actual, $"row group {g}");
        }
    }

    private static async Task StatisticsHoldAsync(Case c)
    {
        var (schema, groups) = Build(c);
        var file = await TestColumns.WriteAsync(schema, c.Options, groups);
        await using var reader = await TestColumns.OpenAsync(file);
        for (var g = 0; g < groups.Length; g++)
        {
            var column = groups[g][0];
            var stats = reader.RowGroups[g]["c"];
            var present = TestColumns.PresentValues(column);
            var values = present.Where(v => v is not (float.NaN or double.NaN)).ToList();
            stats.NullCount.Should().Be(TestColumns.LevelCount(column) - present.Count, "null_count counts every level without a value: null rows, null or empty lists, null elements");
            if (values.Count == 0)
            {
                stats.Min.Should().BeNull();
                continue;
            }

            foreach (var v in values)
            {
                Compare(stats.Min!, v!).Should().BeLessThanOrEqualTo(0, $"min {TestColumns.Show(stats.Min)} <= {TestColumns.Show(v)}");
                Compare(stats.Max!, v!).Should().BeGreaterThanOrEqualTo(0, $"max {TestColumns.Show(stats.Max)} >= {TestColumns.Show(v)}");
            }

            values.Should().Contain(v => Compare(stats.Min!, v!) == 0, "min is a value of the chunk");
            values.Should().Contain(v => Compare(stats.Max!, v!) == 0, "max is a value of the chunk");
        }
    }

    private static int Compare(object a, object b) => (a, b) switch
    {
        (string x, string y) => Math.Sign(System.Text.Encoding.UTF8.GetBytes(x).AsSpan().SequenceCompareTo(System.Text.Encoding.UTF8.GetBytes(y))),
        (float x, float y) => x.CompareTo(y),
        (double x, double y) => x.CompareTo(y),
        _ => Comparer<object>.Default.Compare(a, b),
    };

    private static (ParquetSchema Schema, IReadOnlyList<ParquetColumnData>[] Groups) Build(Case c)
    {
        var schema = new ParquetSchema([c.Field]);
        var groups = new IReadOnlyList<ParquetColumnData>[c.GroupSizes.Length];
        var at = 0;
        for (var g = 0; g < groups.Length; g++)
        {
            var rows = c.Rows.AsSpan(at, c.GroupSizes[g]).ToArray();
            at += c.GroupSizes[g];
            groups[g] = [TestColumns.FromRows(c.Field, rows)];
        }

        return (schema, groups.Where(g => g[0].RowCount > 0).ToArray());
    }

    /// <summary>Row counts of <paramref name="parts"/> row groups as even as they can be.</summary>
    internal static int[] Split(int rows, int parts)
    {
        var sizes = new int[parts];
        for (var i = 0; i < parts; i++)
        {
            sizes[i] = rows / parts + (i < rows % parts ? 1 : 0);
        }

        return sizes;
    }
}
