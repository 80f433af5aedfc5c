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

    private static Gen<object?> RowGen(ParquetField field)
    {
        Gen<object?> present = field.IsList
            ? Gen.Sized(size => Gen.Choose(0, Math.Min(size, 8)))
                .SelectMany(n => ValueGen(field.Type).ArrayOf(n))
                .Select(items => (object?)items)
            : ValueGen(field.Type).Select(v => (object?)v);
        return field.Nullable
            ? Gen.Frequency((1, Gen.Constant<object?>(null)), (4, present))
            : present;
    }

    private static readonly Gen<Case> CaseGen =
        from type in Gen.Elements(TestColumns.AllTypes)
        from nullable in ArbMap.Default.GeneratorFor<bool>()
        from isList in ArbMap.Default.GeneratorFor<bool>()
        let field = new ParquetField("c", type, nullable, isList)
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
            var values = Enumerable.Range(0, column.RowCount)
                .Where(r => !column.IsNull(r))
                .SelectMany(r => TestColumns.ValueAt(column, r) is object?[] list ? list : [TestColumns.ValueAt(column, r)])
                .Where(v => v is not (float.NaN or double.NaN))
                .ToList();
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
            var slots = column.Offsets is null ? column.RowCount : Enumerable.Range(0, column.RowCount).Sum(r => Math.Max(1, column.Offsets[r + 1] - column.Offsets[r]));
            var filled = column.Values.Length - (column.Offsets is null ? (column.Nulls?.Count(n => n) ?? 0) : 0);
            stats.NullCount.Should().Be(slots - filled);
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
            groups[g] = [ToColumn(c.Field, rows)];
        }

        return (schema, groups.Where(g => g[0].RowCount > 0).ToArray());
    }

    private static ParquetColumnData ToColumn(ParquetField field, object?[] rows)
    {
        var nulls = rows.Select(r => r is null).ToArray();
        if (!field.IsList)
        {
            var values = Array.CreateInstance(field.ClrType, rows.Length);
            for (var i = 0; i < rows.Length; i++)
            {
                if (rows[i] is { } v)
                {
                    values.SetValue(v, i);
                }
            }

            return ParquetColumnData.Create(field, values, nulls);
        }

        var offsets = new int[rows.Length + 1];
        for (var i = 0; i < rows.Length; i++)
        {
            offsets[i + 1] = offsets[i] + (rows[i] is object[] list ? list.Length : 0);
        }

        var elements = Array.CreateInstance(field.ClrType, offsets[^1]);
        for (var i = 0; i < rows.Length; i++)
        {
            if (rows[i] is object[] list)
            {
                for (var k = 0; k < list.Length; k++)
                {
                    elements.SetValue(list[k], offsets[i] + k);
                }
            }
        }

        return ParquetColumnData.Create(field, elements, nulls, offsets);
    }

    private static int[] Split(int rows, int parts)
    {
        var sizes = new int[parts];
        for (var i = 0; i < parts; i++)
        {
            sizes[i] = rows / parts + (i < rows % parts ? 1 : 0);
        }

        return sizes;
    }
}
