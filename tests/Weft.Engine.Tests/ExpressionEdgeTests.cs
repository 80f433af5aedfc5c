using System.Collections.Immutable;
using System.Numerics;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Xunit;
using static Weft.Definitions.Expr;

namespace Weft.Engine.Tests;

/// <summary>Expressions and casts at the edges: the int64 limits, timestamps outside years 1–9999, NaN.</summary>
public sealed class ExpressionEdgeTests
{
    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new("s", WeftType.String), new("start", WeftType.Int64), new("length", WeftType.Int64),
    ];

    private static (object?[] Values, RowErrors Errors) Eval(Expr e, ImmutableArray<FieldDefinition> schema, params object?[][] rows)
    {
        var batch = TestSignals.Batch(schema, rows);
        var compiled = ExpressionCompiler.Compile(e, schema.ToDictionary(f => f.Name));
        var errors = new RowErrors(batch.RowCount);
        var column = compiled.Evaluate(batch, errors);
        return (Enumerable.Range(0, batch.RowCount).Select(i => column.IsNull(i) ? null : column.GetValue(i)).ToArray(), errors);
    }

    /// <summary>SQL substring: the characters (code points) at 1-based positions in [start, start + length), in exact arithmetic.</summary>
    private static string ReferenceSubstring(string s, long start, long length)
    {
        var runes = s.EnumerateRunes().ToArray();
        var kept = new System.Text.StringBuilder();
        for (int p = 1; p <= runes.Length; p++)
        {
            if (p >= start && (BigInteger)p < (BigInteger)start + length)
            {
                kept.Append(runes[p - 1].ToString());
            }
        }

        return kept.ToString();
    }

    [Fact]
    public void Substring_clips_in_exact_arithmetic_and_counts_characters_not_utf16_units()
    {
        // Was: start - 1 + length wrapped, so substring('hello', 2, 9223372036854775807) gave '' (not 'ello').
        var edge = Gen.Elements(long.MinValue, long.MinValue + 1, -1L, 0L, 1L, 2L, 3L, 5L, 6L, long.MaxValue - 1, long.MaxValue);
        var number = Gen.OneOf(edge, Gen.Choose(-8, 8).Select(x => (long)x));
        var cases =
            from text in Gen.Elements("", "h", "hello", "héllo wörld", "😀", "a😀b🦆c", "🦆🦆", "\uFFFDx\U0001F600")
            from start in number
            from length in number
            select (Text: text, Start: start, Length: length);
        var property = Prop.ForAll(cases.ToArbitrary(), c =>
        {
            var (values, errors) = Eval(Col("s").Substring(Col("start"), Col("length")), Schema, [c.Text, c.Start, c.Length]);
            errors.Count.Should().Be(0);
            values[0].Should().Be(ReferenceSubstring(c.Text, c.Start, c.Length), $"substring('{c.Text}', {c.Start}, {c.Length})");
            Eval(Col("s").Length(), Schema, [c.Text, 0L, 0L]).Values[0].Should().Be((long)c.Text.EnumerateRunes().Count(), "length counts characters as substring does");
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2_000).WithReplay(0x5B5, 0x7), property);
    }

    private static readonly ImmutableArray<FieldDefinition> Numbers =
    [
        new("l", WeftType.Int64), new("d", WeftType.Float64), new("t", WeftType.Timestamp), new("s", WeftType.String),
    ];

    [Fact]
    public void Int64_modulo_is_exact_at_the_limits_null_by_zero_and_an_overflow_where_duckdb_says_so()
    {
        // DuckDB refuses long.MinValue % -1 ("Overflow in division"), so it is a row error here too (0 would fit).
        long[] xs = [long.MinValue, long.MinValue + 1, -7, 0, 7, long.MaxValue];
        long[] ys = [-1, 1, -3, 3, long.MinValue, long.MaxValue, 0];
        var rows = (from x in xs from y in ys select new object?[] { x, 0.0, 0L, "", y }).ToArray();
        ImmutableArray<FieldDefinition> schema = [.. Numbers, new("m", WeftType.Int64)];
        var (results, errors) = Eval(Col("l") % Col("m"), schema, rows);
        errors.Errors.Should().ContainSingle().Which.Row.Should().Be(0, "only long.MinValue % -1 overflows");
        for (int i = 1; i < rows.Length; i++)
        {
            var (x, y) = ((long)rows[i][0]!, (long)rows[i][4]!);
            // SQL's remainder: the sign of the dividend, |r| < |y|, computed in exact arithmetic.
            results[i].Should().Be(y == 0 ? null : (object)(long)((BigInteger)x % y), $"{x} % {y}");
        }
    }

    [Fact]
    public void An_integer_cast_to_a_timestamp_outside_years_1_to_9999_is_a_row_error()
    {
        // Was: kept, and cast on to string long.MaxValue read "1969-12-31T23:59:59.999999Z" (the ticks wrapped).
        long[] values = [long.MaxValue, Timestamps.MaxMicros + 1, Timestamps.MaxMicros, 0L, Timestamps.MinMicros, Timestamps.MinMicros - 1, long.MinValue];
        var (results, errors) = Eval(Col("l").Cast(WeftType.Timestamp).Cast(WeftType.String), Numbers, [.. values.Select(v => new object?[] { v, 0.0, 0L, "" })]);
        errors.Errors.Select(e => e.Row).Should().Equal(0, 1, 5, 6);
        results[2].Should().Be("9999-12-31T23:59:59.999999Z");
        results[3].Should().Be("1970-01-01T00:00:00.000000Z");
        results[4].Should().Be("0001-01-01T00:00:00.000000Z");
    }

    [Fact]
    public void Timestamp_arithmetic_past_year_9999_is_a_row_error_not_an_executor_failure()
    {
        // Was: the sum was kept, and formatting it threw ArgumentOutOfRangeException out of the executor.
        long t = Timestamps.ToMicros(new DateTimeOffset(2026, 2, 28, 0, 0, 0, TimeSpan.Zero));
        var (results, errors) = Eval((Col("t") + Col("l")).Cast(WeftType.String), Numbers,
            [0L, 0.0, t, ""], [long.MaxValue - t, 0.0, t, ""], [Timestamps.MaxMicros - t, 0.0, t, ""], [-t + Timestamps.MinMicros - 1, 0.0, t, ""], [86_400_000_000L, 0.0, t, ""]);
        errors.Errors.Select(e => e.Row).Should().Equal(1, 3);
        results[0].Should().Be("2026-02-28T00:00:00.000000Z");
        results[2].Should().Be("9999-12-31T23:59:59.999999Z");
        results[4].Should().Be("2026-03-01T00:00:00.000000Z");
    }

    [Fact]
    public void A_string_casts_to_a_timestamp_only_in_iso_8601_never_completed_from_the_clock()
    {
        // Was: "12:30" took today's date and "Jan 5" this year's, so a cast depended on the day it ran.
        string[] texts = ["12:30", "Jan 5", "2026-01-05", "2026-01-05T12:30:00+01:00", "2026-01-05 12:30:00.5Z", "not a time"];
        var (results, errors) = Eval(Col("s").Cast(WeftType.Timestamp), Numbers, [.. texts.Select(s => new object?[] { 0L, 0.0, 0L, s })]);
        errors.Errors.Select(e => e.Row).Should().Equal(0, 1, 5);
        results[2].Should().Be(Timestamps.ToMicros(new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero)));
        results[3].Should().Be(Timestamps.ToMicros(new DateTimeOffset(2026, 1, 5, 11, 30, 0, TimeSpan.Zero)));
        results[4].Should().Be(Timestamps.ToMicros(new DateTimeOffset(2026, 1, 5, 12, 30, 0, 500, TimeSpan.Zero)));
    }

    [Fact]
    public void A_float_casts_to_int64_exactly_when_its_rounded_value_fits()
    {
        // Was: anything of magnitude 9.2e18 or more was refused, though an int64 holds up to 9.22e18.
        var edge = Gen.Elements(9.2e18, -9.2e18, 9.223372036854775807e18, -9.223372036854775808e18, 9.223372036854774784e18, -9.223372036854776832e18,
            double.NaN, double.PositiveInfinity, double.NegativeInfinity, 2.5, -2.5, 0.49999999999999994, -0.0, 1e300);
        var doubles = Gen.OneOf(edge, Gen.Choose(-1000, 1000).Select(x => x * 1.0e16 + (x * 0.25)));
        var property = Prop.ForAll(doubles.ToArbitrary(), d =>
        {
            var (results, errors) = Eval(Col("d").Cast(WeftType.Int64), Numbers, [0L, d, 0L, ""]);
            bool fits = double.IsFinite(d) && new BigInteger(Math.Round(d, MidpointRounding.AwayFromZero)) is var b && b >= long.MinValue && b <= long.MaxValue;
            errors.Count.Should().Be(fits ? 0 : 1, $"cast({d:R} as int64)");
            if (fits)
            {
                results[0].Should().Be((long)new BigInteger(Math.Round(d, MidpointRounding.AwayFromZero)));
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(500).WithReplay(0xF1, 0x3), property);
    }

    [Fact]
    public void A_finite_value_beyond_float32_does_not_cast_to_float32_as_infinity()
    {
        // Was: 1e300 cast to float32 became Infinity, a value nobody sent.
        double[] values = [1e300, -1e300, 3.0e38, double.PositiveInfinity, double.NaN, 1.5];
        var (results, errors) = Eval(Col("d").Cast(WeftType.Float32), Numbers, [.. values.Select(d => new object?[] { 0L, d, 0L, "" })]);
        errors.Errors.Select(e => e.Row).Should().Equal(0, 1);
        results[2].Should().Be(3.0e38f);
        results[3].Should().Be(float.PositiveInfinity);
        results[5].Should().Be(1.5f);
        Eval(Col("s").Cast(WeftType.Float32), Numbers, [0L, 0.0, 0L, "1e39"]).Errors.Count.Should().Be(1);
    }

    [Fact]
    public void Floats_compare_as_in_duckdb_with_nan_equal_to_itself_and_above_every_number()
    {
        // Was: double.CompareTo ordered NaN below everything, so NaN < 0 (and NaN <= -Infinity) were true.
        var value = Gen.Elements(double.NaN, double.NegativeInfinity, -1.5, -0.0, 0.0, 1.5, double.MaxValue, double.PositiveInfinity);
        var ops = Gen.Elements("eq", "ne", "lt", "le", "gt", "ge");
        var property = Prop.ForAll(value.ToArbitrary(), value.ToArbitrary(), ops.ToArbitrary(), (x, y, op) =>
        {
            // DuckDB's order: every number (-0 = 0) below NaN, NaN = NaN.
            int expectedOrder = double.IsNaN(x) || double.IsNaN(y) ? (double.IsNaN(x) ? 1 : 0) - (double.IsNaN(y) ? 1 : 0) : x < y ? -1 : x > y ? 1 : 0;
            bool expected = op switch
            {
                "eq" => expectedOrder == 0,
                "ne" => expectedOrder != 0,
                "lt" => expectedOrder < 0,
                "le" => expectedOrder <= 0,
                "gt" => expectedOrder > 0,
                _ => expectedOrder >= 0,
            };
            Expr d = Col("d"), f = Col("e");
            var e = op switch { "eq" => d == f, "ne" => d != f, "lt" => d < f, "le" => d <= f, "gt" => d > f, _ => d >= f };
            var schema = ImmutableArray.Create(new FieldDefinition("d", WeftType.Float64), new FieldDefinition("e", WeftType.Float64));
            Eval(e, schema, [x, y]).Values[0].Should().Be(expected, $"{op}({x}, {y})");
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(500).WithReplay(0xA11, 0x5), property);
    }

    [Fact]
    public void A_failure_in_a_branch_or_argument_not_taken_does_not_dead_letter_the_row()
    {
        // Was: if and coalesce evaluated every branch over every row and kept every failure, so the
        // guards written to avoid a failing cast or an overflow dead-lettered the rows they guard.
        var schema = ImmutableArray.Create(new FieldDefinition("s", WeftType.String), new FieldDefinition("l", WeftType.Int64));
        object?[][] rows = [["", 5L], ["12", long.MaxValue], [null, 3L], ["x", 4L]];

        var guardedCast = Eval(If(Col("s") == "", Lit(0L), Col("s").Cast(WeftType.Int64)), schema, rows);
        guardedCast.Errors.Errors.Select(e => e.Row).Should().Equal([3], "only 'x' takes the cast and fails it");
        guardedCast.Values.Take(3).Should().Equal(0L, 12L, null);

        var guardedProduct = Eval(If(Col("l") > 1000, Lit(0L), Col("l") * Col("l")), schema, rows);
        guardedProduct.Errors.Count.Should().Be(0);
        guardedProduct.Values.Should().Equal(25L, 0L, 9L, 16L);

        var fallback = Eval(Coalesce(If(Col("s") == "x", Lit(7L), Null(WeftType.Int64)), Col("s").Cast(WeftType.Int64), Lit(-1L)), schema, rows);
        fallback.Errors.Errors.Select(e => e.Row).Should().Equal([0], "'' reaches the cast and fails it; 'x' is answered before it");
        fallback.Values.Skip(1).Should().Equal(12L, -1L, 7L);

        var taken = Eval(If(Col("l") < 1000, Col("l") * Col("l"), Lit(0L)), schema, rows);
        taken.Errors.Errors.Select(e => e.Row).Should().BeEmpty("the overflowing row does not take the product");
        var overflow = Eval(If(Col("l") > 1000, Col("l") * Col("l"), Lit(0L)), schema, rows);
        overflow.Errors.Errors.Select(e => e.Row).Should().Equal([1], "a failure in the branch a row takes still counts");
    }

    [Fact]
    public void A_failure_in_an_and_or_or_argument_counts_only_where_no_other_argument_decides_the_row()
    {
        // Was: every argument's failures counted, so the guard s != '' dead-lettered the '' rows it guards.
        var schema = ImmutableArray.Create(new FieldDefinition("s", WeftType.String), new FieldDefinition("l", WeftType.Int64));
        object?[][] rows = [["", 5L], ["12", 5L], [null, 5L], ["x", 5L]];
        var cast = Col("s").Cast(WeftType.Int64);

        foreach (var guarded in new[] { (Col("s") != "") & (cast > 5), (cast > 5) & (Col("s") != "") })
        {
            var (values, errors) = Eval(guarded, schema, rows);
            errors.Errors.Select(e => e.Row).Should().Equal([3], "'x' passes the guard and fails the cast, whichever side the guard is on");
            values.Take(3).Should().Equal(false, true, null);
        }

        var either = Eval((Col("s") == "") | (cast > 5) | (Col("l") > 100), schema, rows);
        either.Errors.Errors.Select(e => e.Row).Should().Equal([3], "'' is decided by its first argument");
        either.Values.Take(3).Should().Equal(true, true, null);

        var nested = Eval(If((Col("s") != "") & (cast > 5), Lit(1L), Lit(0L)), schema, rows);
        nested.Errors.Errors.Select(e => e.Row).Should().Equal([3]);
    }

    /// <summary>
    /// lower and upper agree with DuckDB on every code point U+0020..U+1FFFF (surrogates aside, and U+FEFF,
    /// which DuckDB's chr gives as an empty string): .NET's invariant casing left İ, ı and ß as they were.
    /// </summary>
    [Fact]
    public async Task Lower_and_upper_agree_with_duckdb_on_every_code_point()
    {
        var duck = (await Weft.Parquet.Tests.DuckDb.RunAsync(
            "SELECT cp, lower(chr(cp::INTEGER)) AS lo, upper(chr(cp::INTEGER)) AS up FROM range(32, 131072) t(cp) WHERE (cp < 55296 OR cp > 57343) AND cp <> 65279 ORDER BY cp"))[0];
        var texts = duck.Rows.Select(r => (object?[])[char.ConvertFromUtf32(int.Parse(r[0].ToString(), System.Globalization.CultureInfo.InvariantCulture)), 0L, 0L]).ToArray();
        texts.Should().HaveCount(0x20000 - 32 - 2048 - 1);

        var lower = Eval(Col("s").Lower(), Schema, texts).Values;
        var upper = Eval(Col("s").Upper(), Schema, texts).Values;

        var differ = new List<string>();
        for (int i = 0; i < texts.Length; i++)
        {
            int cp = char.ConvertToUtf32((string)texts[i][0]!, 0);
            if ((!Equals(lower[i], duck.Rows[i][1].GetString()) || !Equals(upper[i], duck.Rows[i][2].GetString())) && !CasedSinceUnicode16(cp))
            {
                differ.Add($"U+{cp:X4}: lower {lower[i]} / {duck.Rows[i][1]}, upper {upper[i]} / {duck.Rows[i][2]}");
            }
        }

        differ.Should().BeEmpty();
    }

    /// <summary>Letters whose case pairs Unicode 16 added (Latin additions, Garay): .NET maps them, the pinned DuckDB's tables predate them.</summary>
    private static bool CasedSinceUnicode16(int cp) =>
        cp is 0x019B or 0x0264 or 0x1C89 or 0x1C8A or (>= 0xA7CB and <= 0xA7CD) or (>= 0xA7DA and <= 0xA7DC) or (>= 0x10D50 and <= 0x10D65) or (>= 0x10D70 and <= 0x10D85);
}
