using System.Collections.Immutable;
using FluentAssertions;
using Weft.Definitions;
using Xunit;
using static Weft.Definitions.Expr;

namespace Weft.Engine.Tests;

public class ExpressionTests
{
    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new("i", WeftType.Int32), new("l", WeftType.Int64), new("d", WeftType.Float64), new("s", WeftType.String),
        new("b", WeftType.Bool), new("t", WeftType.Timestamp),
    ];

    private static readonly EventBatch Rows = TestSignals.Batch(Schema,
    [
        [5L, 10L, 2.5, "Home", true, Timestamps.ToMicros(new DateTimeOffset(2026, 11, 22, 13, 30, 0, TimeSpan.Zero))], // a Sunday
        [null, 0L, null, null, false, Timestamps.ToMicros(new DateTimeOffset(2026, 11, 23, 0, 5, 0, TimeSpan.Zero))],   // a Monday
        [-3L, -7L, -0.5, "search", null, Timestamps.ToMicros(new DateTimeOffset(1969, 12, 31, 23, 0, 0, TimeSpan.Zero))], // a Wednesday
    ]);

    private static (object?[] Values, RowErrors Errors) Eval(Expr e)
    {
        var compiled = ExpressionCompiler.Compile(e, Schema.ToDictionary(f => f.Name));
        var errors = new RowErrors(Rows.RowCount);
        var column = compiled.Evaluate(Rows, errors);
        column.Type.Should().Be(compiled.Type);
        return (Enumerable.Range(0, Rows.RowCount).Select(column.GetValue).ToArray(), errors);
    }

    [Fact]
    public void Comparisons_with_null_are_null_and_numbers_compare_across_types() =>
        Eval(Col("i") > Col("d")).Values.Should().Equal(true, null, false);

    [Fact]
    public void And_or_use_three_valued_logic()
    {
        // b = true, false, null
        Eval(Col("b") & Lit(false)).Values.Should().Equal(false, false, false);
        Eval(Col("b") & Lit(true)).Values.Should().Equal(true, false, null);
        Eval(Col("b") | Lit(true)).Values.Should().Equal(true, true, true);
        Eval(Col("b") | Lit(false)).Values.Should().Equal(true, false, null);
        Eval(!Col("b")).Values.Should().Equal(false, true, null);
    }

    [Fact]
    public void Division_by_zero_is_null_and_division_is_floating_point()
    {
        Eval(Col("l") / Col("l")).Values.Should().Equal(1.0, null, 1.0);
        Eval(Col("l") / Lit(4L)).Values.Should().Equal(2.5, 0.0, -1.75); // l = 10, 0, -7: no integer division
    }

    [Theory]
    [InlineData("i")]
    [InlineData("l")]
    [InlineData("d")]
    public void Abs_and_neg_are_typed_by_definitions_as_the_engine_computes_them(string column)
    {
        var scope = Schema.ToDictionary(f => f.Name);
        foreach (var e in new[] { Col(column).Abs(), -Col(column) })
        {
            var problems = new List<DefinitionProblem>();
            var declared = ExprTyper.Infer(e, scope, "$", problems);
            problems.Should().BeEmpty();
            declared!.Value.Type.Should().Be(ExpressionCompiler.Compile(e, scope).Type, "a derived column's declared type is the type its values have");
        }
    }

    [Fact]
    public void Abs_and_neg_of_the_smallest_int32_are_its_int64_magnitude_not_an_overflow()
    {
        var schema = ImmutableArray.Create(new FieldDefinition("i", WeftType.Int32));
        var rows = TestSignals.Batch(schema, [[(long)int.MinValue], [-3L], [null]]);
        foreach (var (e, expected) in new[] { (Col("i").Abs(), 2147483648L), (-Col("i"), 2147483648L) })
        {
            var compiled = ExpressionCompiler.Compile(e, schema.ToDictionary(f => f.Name));
            compiled.Type.Should().Be(WeftType.Int64, "signal-json.md: neg and abs give int64 or float64");
            var errors = new RowErrors(3);
            var column = compiled.Evaluate(rows, errors);
            errors.Count.Should().Be(0);
            new[] { column.GetValue(0), column.GetValue(1), column.GetValue(2) }.Should().Equal(expected, 3L, null);
        }
    }

    [Fact]
    public void Integer_arithmetic_promotes_to_int64_and_mod_by_zero_is_null()
    {
        Eval(Col("i") + Col("l")).Values.Should().Equal(15L, null, -10L);
        Eval(Col("l") % Lit(3L)).Values.Should().Equal(1L, 0L, -1L);
        Eval(Lit(1L) % Col("l")).Values.Should().Equal(1L, null, 1L);
    }

    [Fact]
    public void Overflow_is_a_row_error_not_an_exception()
    {
        var (values, errors) = Eval(Col("l") * Lit(long.MaxValue));
        errors.Errors.Select(e => e.Row).Should().Equal(0, 2);
        errors.Errors[0].Reason.Should().Contain("overflow");
        values[1].Should().Be(0L);
    }

    [Fact]
    public void In_coalesce_if_and_is_null()
    {
        Eval(Col("s").Lower().In("home", "profile")).Values.Should().Equal(true, null, false);
        Eval(Coalesce(Col("i"), Lit(99L))).Values.Should().Equal(5L, 99L, -3L);
        Eval(If(Col("l") > 0, Lit("pos"), Lit("non-pos"))).Values.Should().Equal("pos", "non-pos", "non-pos");
        Eval(Col("d").IsNull()).Values.Should().Equal(false, true, false);
    }

    [Fact]
    public void String_functions_follow_sql()
    {
        Eval(Col("s").Substring(2, 3)).Values.Should().Equal(new object?[] { "ome", null, "ear" });
        Eval(Col("s").Length()).Values.Should().Equal(4L, null, 6L);
        Eval(Concat(Col("s"), Lit("!"))).Values.Should().Equal(new object?[] { "Home!", null, "search!" });
        Eval(Col("s").StartsWith("se")).Values.Should().Equal(false, null, true);
    }

    [Fact]
    public void Time_parts_follow_duckdb_conventions_including_before_1970()
    {
        Eval(Col("t").HourOfDay()).Values.Should().Equal(13L, 0L, 23L);
        Eval(Col("t").DayOfWeek()).Values.Should().Equal(0L, 1L, 3L);
    }

    [Fact]
    public void Casts_that_fail_are_row_errors()
    {
        var (values, errors) = Eval(Col("s").Cast(WeftType.Int64));
        errors.Errors.Select(e => e.Row).Should().Equal(0, 2);
        errors.Errors[0].Reason.Should().Be("cannot cast Home (string) to int64");
        values[1].Should().BeNull();
        Eval(Col("d").Cast(WeftType.Int32)).Values.Should().Equal(3L, null, -1L);
        Eval(Col("l").Cast(WeftType.String)).Values.Should().Equal("10", "0", "-7");
    }
}
