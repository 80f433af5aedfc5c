using System.Collections.Concurrent;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Weft.Parquet.Tests;

/// <summary>
/// FsCheck properties, checked against DuckDB: any DECIMAL column DuckDB writes (INT32 for precision up
/// to 9, INT64 up to 18, FIXED_LEN_BYTE_ARRAY up to 38; flat or in a list), plain or dictionary-encoded,
/// PARQUET_VERSION V1 or V2, in one or several row groups, reads as the double nearest the exact decimal,
/// and any TIME column as µs since midnight; their statistics, converted, are the row group's exact
/// minimum and maximum, and never prune the row group away from a value it holds. Seeded.
/// </summary>
public sealed class ForeignDecimalTimePropertyTests
{
    private const ulong Seed = 0xDEC1_7135;

    private const long MicrosPerDay = 86_400_000_000;

    /// <summary>Encodings seen per column across the run, to check both plain and dictionary pages were exercised.</summary>
    private static readonly ConcurrentDictionary<string, ConcurrentDictionary<string, bool>> EncodingsSeen = new();

    private static int _multiGroupCases;

    /// <summary>A DECIMAL(Precision, Scale) column's rows as unscaled integers (null = a null row).</summary>
    public sealed record DecimalColumn(string Name, int Precision, int Scale, BigInteger?[] Unscaled);

    public sealed record Case(DecimalColumn[] Decimals, long?[] Times, long?[] Nanos, int ListPrecision, int ListScale, BigInteger?[]?[] Lists, string Codec, string Version)
    {
        public int Rows => Times.Length;

        public override string ToString() =>
            $"{Codec} {Version} rows={Rows} " + string.Join(" ", Decimals.Select(d => $"{d.Name}=DECIMAL({d.Precision},{d.Scale})[{string.Join(", ", d.Unscaled.Take(8))}]"))
            + $" list=DECIMAL({ListPrecision},{ListScale}) times=[{string.Join(", ", Times.Take(8))}] nanos=[{string.Join(", ", Nanos.Take(8))}]";
    }

    private static BigInteger MaxUnscaled(int precision) => BigInteger.Pow(10, precision) - 1;

    /// <summary>
    /// Unscaled values of at most <paramref name="precision"/> digits: any digit count, the extremes
    /// ±(10^p − 1), and the edges of a double's exact integers and of a long.
    /// </summary>
    private static Gen<BigInteger> Unscaled(int precision)
    {
        var max = MaxUnscaled(precision);
        BigInteger[] edges =
        [
            .. new[] { max, -max, BigInteger.Zero, BigInteger.One, BigInteger.MinusOne },
            .. new[] { BigInteger.Pow(2, 53), BigInteger.Pow(2, 53) + 1, BigInteger.Pow(2, 63) - 1, BigInteger.Pow(2, 64) + 1, BigInteger.Pow(2, 96) + 1 }
                .SelectMany(e => new[] { e, -e })
                .Where(e => BigInteger.Abs(e) <= max),
        ];
        var digits =
            from count in Gen.Choose(1, precision)
            from ds in Gen.Choose(0, 9).ArrayOf(count)
            from negative in ArbMap.Default.GeneratorFor<bool>()
            select BigInteger.Parse(string.Concat(ds), CultureInfo.InvariantCulture) * (negative ? -1 : 1);
        return Gen.Frequency((4, digits), (1, Gen.Elements(edges)));
    }

    private static Gen<T?> OrNull<T>(Gen<T> value)
        where T : struct =>
        Gen.Frequency((1, Gen.Constant<T?>(null)), (5, value.Select(v => (T?)v)));

    /// <summary>Every row drawn afresh (mostly distinct: plain pages), or from a pool of a few (dictionary pages).</summary>
    private static Gen<BigInteger?[]> Column(int precision, int rows) => Gen.OneOf(
        OrNull(Unscaled(precision)).ArrayOf(rows),
        from pool in Unscaled(precision).ArrayOf(3)
        from values in OrNull(Gen.Elements(pool)).ArrayOf(rows)
        select values);

    private static Gen<DecimalColumn> Decimal(string name, int minPrecision, int maxPrecision, int rows) =>
        from precision in Gen.Choose(minPrecision, maxPrecision)
        from scale in Gen.Frequency((1, Gen.Elements(0, precision)), (3, Gen.Choose(0, precision)))
        from values in Column(precision, rows)
        select new DecimalColumn(name, precision, scale, values);

    private static Gen<long> TimeOfDay() => Gen.Frequency(
        (4, from seconds in Gen.Choose(0, 86_399) from micros in Gen.Choose(0, 999_999) select (seconds * 1_000_000L) + micros),
        (1, Gen.Elements(0L, 1L, 999L, 1000L, MicrosPerDay - 1)));

    private static Gen<long> NanosOfDay() => Gen.Frequency(
        (4, from seconds in Gen.Choose(0, 86_399) from nanos in Gen.Choose(0, 999_999_999) select (seconds * 1_000_000_000L) + nanos),
        (1, Gen.Elements(0L, 1L, 999L, 1000L, 1001L, (MicrosPerDay * 1000) - 1)));

    private static Gen<BigInteger?[]?> List(Gen<BigInteger> element) => Gen.Frequency(
        (1, Gen.Constant<BigInteger?[]?>(null)),
        (1, Gen.Constant<BigInteger?[]?>([])),
        (5, from count in Gen.Choose(1, 3) from values in OrNull(element).ArrayOf(count) select (BigInteger?[]?)values));

    /// <summary>Lists whose elements are drawn afresh, or from a pool of a few (dictionary pages).</summary>
    private static Gen<BigInteger?[]?[]> Lists(int precision, int rows) =>
        from pool in Unscaled(precision).ArrayOf(3)
        from fresh in ArbMap.Default.GeneratorFor<bool>()
        from lists in List(fresh ? Unscaled(precision) : Gen.Elements(pool)).ArrayOf(rows)
        select lists;

    private static readonly Gen<Case> CaseGen =
        from rows in Gen.Frequency((4, Gen.Choose(1, 60)), (1, Gen.Choose(2049, 4500)))
        from d32 in Decimal("d32", 1, 9, rows)
        from d64 in Decimal("d64", 10, 18, rows)
        from d128 in Decimal("d128", 19, 38, rows)
        from times in OrNull(TimeOfDay()).ArrayOf(rows)
        from nanos in OrNull(NanosOfDay()).ArrayOf(rows)
        from listPrecision in Gen.Choose(1, 38)
        from listScale in Gen.Choose(0, listPrecision)
        from lists in Lists(listPrecision, rows)
        from codec in Gen.Elements("zstd", "snappy", "uncompressed")
        from version in Gen.Elements("V1", "V2")
        select new Case([d32, d64, d128], times, nanos, listPrecision, listScale, lists, codec, version);

    [Fact]
    public void Any_DuckDB_decimal_or_time_column_reads_as_the_nearest_double_or_its_micros_and_never_prunes_a_held_value()
    {
        var property = Prop.ForAll(CaseGen.ToArbitrary(), ReadsAsDuckDbAsync);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(24).WithReplay(Seed, 0x9E3779B97F4A7C15), property);

        // The generator is meant to reach each layout; if DuckDB stopped choosing one, the property would
        // prove less. DuckDB never dictionary-encodes FIXED_LEN_BYTE_ARRAY decimals: crafted files in
        // ForeignDecimalTimeLayoutTests cover those.
        foreach (var column in new[] { "d32", "d64", "l, list, element" })
        {
            EncodingsSeen[column].Keys.Should().Contain(e => e.Contains("DICTIONARY", StringComparison.Ordinal), $"some case dictionary-encodes '{column}'");
        }

        foreach (var column in new[] { "d32", "d64", "d128", "l, list, element" })
        {
            EncodingsSeen[column].Keys.Should().Contain(e => !e.Contains("DICTIONARY", StringComparison.Ordinal), $"some case writes '{column}' without a dictionary");
        }

        _multiGroupCases.Should().BePositive("some case spans several row groups");
    }

    private static async Task ReadsAsDuckDbAsync(Case c)
    {
        using var temp = new TempDir();
        var path = temp.File("dec.parquet");
        var file = DuckDb.Quote(path);
        var selects = string.Join(", ", c.Decimals.Select(d => $"{d.Name}::DECIMAL({d.Precision}, {d.Scale}) AS {d.Name}"));
        var unnests = string.Join(", ", c.Decimals.Select(d => $"unnest({Texts(d.Unscaled, d.Scale)}::VARCHAR[]) AS {d.Name}"));
        var lists = "[" + string.Join(", ", c.Lists.Select(l => l is null ? "NULL" : Texts(l, c.ListScale))) + "]::VARCHAR[][]";
        var results = await DuckDb.RunAsync(
            $"""
            COPY (
              SELECT i::BIGINT AS id, {selects}, '00:00:00'::TIME + to_microseconds(t) AS t, tns::TIME_NS AS tns, l::DECIMAL({c.ListPrecision}, {c.ListScale})[] AS l
              FROM (SELECT unnest(range({c.Rows})) AS i, {unnests}, unnest({Longs(c.Times)}::BIGINT[]) AS t, unnest({TimeTexts(c.Nanos)}::VARCHAR[]) AS tns, unnest({lists}) AS l)
            ) TO {file} (FORMAT parquet, COMPRESSION {c.Codec}, PARQUET_VERSION {c.Version}, ROW_GROUP_SIZE 2048)
            """,
            "SELECT " + string.Join(", ", c.Decimals.Select(d => $"CAST({d.Name} AS VARCHAR) AS {d.Name}_text, CAST({d.Name} AS DOUBLE) AS {d.Name}_double"))
                + $", CAST(l AS DOUBLE[]) AS l_double FROM read_parquet({file}) ORDER BY id",
            $"SELECT path_in_schema, type, encodings FROM parquet_metadata({file})",
            $"SELECT name, logical_type FROM parquet_schema({file}) WHERE name IN ('t', 'tns') ORDER BY name");

        var physical = results[2].Rows.GroupBy(r => r[0].GetString()!).ToDictionary(g => g.Key, g => g.First()[1].GetString());
        physical["d32"].Should().Be("INT32", "DuckDB stores DECIMAL(≤9) as INT32");
        physical["d64"].Should().Be("INT64", "DuckDB stores DECIMAL(10..18) as INT64");
        physical["d128"].Should().Be("FIXED_LEN_BYTE_ARRAY", "DuckDB stores DECIMAL(19..38) as FIXED_LEN_BYTE_ARRAY");
        results[3].Rows.Select(r => r[1].GetString()).Should().SatisfyRespectively(
            t => t.Should().Contain("MICROS=MicroSeconds()"),
            tns => tns.Should().Contain("NANOS=NanoSeconds()"));
        foreach (var row in results[2].Rows)
        {
            EncodingsSeen.GetOrAdd(row[0].GetString()!, _ => new()).TryAdd(row[2].GetString()!, true);
        }

        await using var reader = await ParquetFileReader.OpenAsync(path);
        reader.UnsupportedColumns.Should().BeEmpty(c.ToString());
        if (reader.RowGroups.Count > 1)
        {
            Interlocked.Increment(ref _multiGroupCases);
        }

        var ids = await ReadAllAsync(reader, "id");
        ids.Should().Equal(Enumerable.Range(0, c.Rows).Select(i => (object?)(long)i), "rows read back in order");

        var duck = results[1];
        foreach (var d in c.Decimals)
        {
            reader.Schema[d.Name].Type.Should().Be(ParquetType.Double, $"{c}: DECIMAL column '{d.Name}'");
            var read = await ReadAllAsync(reader, d.Name);
            var expected = d.Unscaled.Select(u => u is { } v ? (object?)Nearest(v, d.Scale) : null).ToList();
            AssertSame(read, expected, $"{c}: '{d.Name}' as the nearest double");

            var texts = duck.Rows.Select(r => r[duck.Index(d.Name + "_text")]).Select(v => v.ValueKind == JsonValueKind.Null ? null : (object?)double.Parse(v.GetString()!, CultureInfo.InvariantCulture)).ToList();
            AssertSame(read, texts, $"{c}: '{d.Name}' as the nearest double to the decimal DuckDB reads");

            var doubles = duck.Rows.Select(r => r[duck.Index(d.Name + "_double")]).ToList();
            for (var i = 0; i < read.Count; i++)
            {
                AssertCloseToDuckDb(read[i], doubles[i], d.Unscaled[i], d.Scale, $"{c}: '{d.Name}' row {i} against DuckDB's CAST AS DOUBLE");
            }

            await AssertStatisticsAsync(reader, d.Name, c.ToString());
        }

        reader.Schema["t"].Type.Should().Be(ParquetType.Int64, "TIME reads as µs since midnight");
        (await ReadAllAsync(reader, "t")).Should().Equal(c.Times.Select(t => (object?)t), $"{c}: TIME as µs since midnight");
        await AssertStatisticsAsync(reader, "t", c.ToString());

        reader.Schema["tns"].Type.Should().Be(ParquetType.Int64, "TIME(NANOS) reads as µs since midnight");
        (await ReadAllAsync(reader, "tns")).Should().Equal(c.Nanos.Select(t => t / 1000).Select(t => (object?)t), $"{c}: TIME(NANOS) as µs since midnight, rounded down");
        await AssertStatisticsAsync(reader, "tns", c.ToString());

        var listField = reader.Schema["l"];
        listField.IsList.Should().BeTrue();
        listField.Type.Should().Be(ParquetType.Double);
        var readLists = await ReadAllAsync(reader, "l");
        var duckLists = duck.Rows.Select(r => r[duck.Index("l_double")]).ToList();
        for (var i = 0; i < c.Rows; i++)
        {
            var expected = c.Lists[i]?.Select(u => u is { } v ? (object?)Nearest(v, c.ListScale) : null).ToArray();
            TestColumns.SameValue(readLists[i], expected).Should().BeTrue(
                $"{c}: list row {i} reads {TestColumns.Show(readLists[i])}, expected {TestColumns.Show(expected)}");
            if (readLists[i] is object?[] elements)
            {
                var duckElements = duckLists[i].EnumerateArray().ToArray();
                for (var k = 0; k < elements.Length; k++)
                {
                    AssertCloseToDuckDb(elements[k], duckElements[k], c.Lists[i]![k], c.ListScale, $"{c}: list row {i} element {k} against DuckDB");
                }
            }
        }

        await AssertStatisticsAsync(reader, "l", c.ToString());
    }

    /// <summary>
    /// Per row group: the converted minimum and maximum are exactly those of the values read (DuckDB's
    /// statistics are exact, and rounding to the nearest double keeps order), a lookup of each value keeps
    /// its row group, and a lookup just beyond every value prunes every row group.
    /// </summary>
    private static async Task AssertStatisticsAsync(ParquetFileReader reader, string name, string context)
    {
        var all = new List<IComparable>();
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            var column = await reader.ReadColumnAsync(g, name);
            var present = TestColumns.PresentValues(column).Cast<IComparable>().ToList();
            all.AddRange(present);
            if (present.Count == 0)
            {
                continue;
            }

            var stats = reader.RowGroups[g][name];
            stats.Min.Should().Be(present.Min(), $"{context}: min of '{name}' in row group {g}");
            stats.Max.Should().Be(present.Max(), $"{context}: max of '{name}' in row group {g}");
            foreach (var v in present.Distinct())
            {
                reader.FindRowGroups(name, v, v).Should().Contain(g, $"{context}: row group {g} holds {v} in '{name}'");
            }
        }

        if (all.Count > 0)
        {
            var (above, below) = all[0] is double
                ? ((object)Math.BitIncrement((double)all.Max()!), (object)Math.BitDecrement((double)all.Min()!))
                : ((long)all.Max()! + 1, (long)all.Min()! - 1);
            reader.FindRowGroups(name, above, null).Should().BeEmpty($"{context}: no value of '{name}' reaches {above}");
            reader.FindRowGroups(name, null, below).Should().BeEmpty($"{context}: no value of '{name}' is as low as {below}");
        }
    }

    private static async Task<List<object?>> ReadAllAsync(ParquetFileReader reader, string name)
    {
        var values = new List<object?>();
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            var column = await reader.ReadColumnAsync(g, name);
            values.AddRange(Enumerable.Range(0, column.RowCount).Select(r => TestColumns.ValueAt(column, r)));
        }

        return values;
    }

    private static void AssertSame(List<object?> read, List<object?> expected, string because)
    {
        read.Should().HaveCount(expected.Count, because);
        for (var i = 0; i < read.Count; i++)
        {
            TestColumns.SameValue(read[i], expected[i]).Should().BeTrue($"{because}: row {i} reads {TestColumns.Show(read[i])}, expected {TestColumns.Show(expected[i])}");
        }
    }

    /// <summary>
    /// DuckDB's CAST(decimal AS DOUBLE) divides the unscaled value, converted to a double, by 10^scale as a
    /// double. With an unscaled value of at most 2^53 and a scale of at most 22 both are exact, so its one
    /// rounding gives the nearest double, as Weft must. Beyond, the conversion and the power of ten may
    /// each round before the division does: up to three half-ulp errors, so DuckDB may land up to 2 ulps
    /// from the nearest double, which Weft is (checked against the exact decimal above).
    /// </summary>
    private static void AssertCloseToDuckDb(object? read, JsonElement duck, BigInteger? unscaled, int scale, string because)
    {
        if (read is null)
        {
            duck.ValueKind.Should().Be(JsonValueKind.Null, because);
            return;
        }

        var a = (double)read;
        var other = duck.GetDouble();
        var exactOperands = BigInteger.Abs(unscaled!.Value) <= BigInteger.Pow(2, 53) && scale <= 22;
        var ulps = Math.Abs(OrderedBits(a) - OrderedBits(other));
        ulps.Should().BeLessThanOrEqualTo(exactOperands ? 0 : 2, $"{because}: Weft {a:R}, DuckDB {other:R}");
    }

    /// <summary>A double's bits as a count of ulps from zero, in the doubles' order (so a difference counts the doubles between).</summary>
    private static long OrderedBits(double value)
    {
        var bits = BitConverter.DoubleToInt64Bits(value);
        return bits < 0 ? -(bits & long.MaxValue) : bits;
    }

    /// <summary>The decimal's text, parsed by .NET's correctly rounding parser: the nearest double, independent of Weft's arithmetic.</summary>
    private static double Nearest(BigInteger unscaled, int scale) => double.Parse(Text(unscaled, scale), CultureInfo.InvariantCulture);

    private static string Text(BigInteger unscaled, int scale)
    {
        var digits = BigInteger.Abs(unscaled).ToString(CultureInfo.InvariantCulture).PadLeft(scale + 1, '0');
        var text = scale == 0 ? digits : digits[..^scale] + "." + digits[^scale..];
        return unscaled.Sign < 0 ? "-" + text : text;
    }

    private static string Texts(IEnumerable<BigInteger?> values, int scale)
    {
        var sb = new StringBuilder("[");
        foreach (var v in values)
        {
            sb.Append(sb.Length > 1 ? ", " : string.Empty).Append(v is { } u ? "'" + Text(u, scale) + "'" : "NULL");
        }

        return sb.Append(']').ToString();
    }

    /// <summary>Nanoseconds of the day as DuckDB's TIME_NS text, HH:MM:SS.nnnnnnnnn.</summary>
    private static string TimeTexts(long?[] nanos) =>
        "[" + string.Join(", ", nanos.Select(n => n is { } v
            ? string.Create(CultureInfo.InvariantCulture, $"'{v / 3_600_000_000_000:D2}:{v / 60_000_000_000 % 60:D2}:{v / 1_000_000_000 % 60:D2}.{v % 1_000_000_000:D9}'")
            : "NULL")) + "]";

    private static string Longs(long?[] values) =>
        "[" + string.Join(", ", values.Select(v => v?.ToString(CultureInfo.InvariantCulture) ?? "NULL")) + "]";
}
