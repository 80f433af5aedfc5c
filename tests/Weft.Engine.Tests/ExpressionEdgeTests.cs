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

    /// <summary>SQL substring: the characters at 1-based positions in [start, start + length), in exact arithmetic.</summary>
    private static string ReferenceSubstring(string s, long start, long length)
    {
        var chars = new List<char>();
        for (int p = 1; p <= s.Length; p++)
        {
            if (p >= start && (BigInteger)p < (BigInteger)start + length)
            {
                chars.Add(s[p - 1]);
            }
        }

        return new string([.. chars]);
    }

    [Fact]
    public void Substring_clips_in_exact_arithmetic_for_starts_and_lengths_near_the_int64_limits()
    {
        // Was: start - 1 + length wrapped, so substring('hello', 2, 9223372036854775807) gave '' (not 'ello').
        var edge = Gen.Elements(long.MinValue, long.MinValue + 1, -1L, 0L, 1L, 2L, 3L, 5L, 6L, long.MaxValue - 1, long.MaxValue);
        var number = Gen.OneOf(edge, Gen.Choose(-8, 8).Select(x => (long)x));
        var cases =
            from text in Gen.Elements("", "h", "hello", "héllo wörld")
            from start in number
            from length in number
            select (Text: text, Start: start, Length: length);
        var property = Prop.ForAll(cases.ToArbitrary(), c =>
        {
            var (values, errors) = Eval(Col("s").Substring(Col("start"), Col("length")), Schema, [c.Text, c.Start, c.Length]);
            errors.Count.Should().Be(0);
            values[0].Should().Be(ReferenceSubstring(c.Text, c.Start, c.Length), $"substring('{c.Text}', {c.Start}, {c.Length})");
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2_000).WithReplay(0x5B5, 0x7), property);
    }
}
