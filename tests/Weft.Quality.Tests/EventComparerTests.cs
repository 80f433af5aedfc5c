using System.Collections.Immutable;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Xunit;

namespace Weft.Quality.Tests;

public sealed class EventComparerTests
{
    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new(StandardColumns.EventId, WeftType.String, Nullable: false),
        new(StandardColumns.UserId, WeftType.Int64, Nullable: false),
        new(StandardColumns.EventType, WeftType.String, Nullable: false),
        new(StandardColumns.EventTime, WeftType.Timestamp, Nullable: false),
        new("score", WeftType.Float64),
    ];

    private static EventBatch Rows(params (string Id, long User, string Type, long Time, double? Score)[] rows) => new(Schema,
    [
        new StringColumn([.. rows.Select(r => (string?)r.Id)]),
        new PrimitiveColumn<long>(WeftType.Int64, [.. rows.Select(r => r.User)]),
        new StringColumn([.. rows.Select(r => (string?)r.Type)]),
        new PrimitiveColumn<long>(WeftType.Timestamp, [.. rows.Select(r => r.Time)]),
        new PrimitiveColumn<double>(WeftType.Float64, [.. rows.Select(r => r.Score ?? 0)], [.. rows.Select(r => r.Score is null)]),
    ]);

    /// <summary>A misspelt column in a tolerance or in the columns to ignore was accepted and left the intended column compared exactly.</summary>
    [Fact]
    public void A_tolerance_or_an_ignored_column_neither_side_has_is_refused_by_name()
    {
        var candidate = Schema.Add(new FieldDefinition("extra", WeftType.Int64));
        var misspelt = () => new EventComparer(Schema, candidate, new ComparisonOptions { Tolerances = new Dictionary<string, Tolerance> { ["scroe"] = new(0.5, 0) } });
        var ignoredTypo = () => new EventComparer(Schema, candidate, new ComparisonOptions { Ignored = new HashSet<string> { StandardColumns.IngestTime, "extar" } });

        misspelt.Should().Throw<ArgumentException>().WithMessage("*tolerance*'scroe'*neither side*score*");
        ignoredTypo.Should().Throw<ArgumentException>().WithMessage("*ignore*'extar'*neither side*");

        // A column of either side, and the default ignored ingest_time that neither has here, are fine.
        var known = new EventComparer(Schema, candidate, new ComparisonOptions
        {
            Tolerances = new Dictionary<string, Tolerance> { ["score"] = new(0.5, 0) },
            Ignored = new HashSet<string> { StandardColumns.IngestTime, "extra" },
        });
        known.OnlyInCandidate.Should().BeEmpty("'extra' is ignored");
    }

    /// <summary>Text and booleans are compared exactly: a tolerance for one did nothing, silently.</summary>
    [Fact]
    public void A_tolerance_on_a_text_or_boolean_column_is_refused_by_name()
    {
        var candidate = Schema.Add(new FieldDefinition("flag", WeftType.Bool));
        var text = () => new EventComparer(Schema, candidate, new ComparisonOptions { Tolerances = new Dictionary<string, Tolerance> { [StandardColumns.EventType] = new(1, 0) } });
        var flag = () => new EventComparer(Schema, candidate, new ComparisonOptions { Tolerances = new Dictionary<string, Tolerance> { ["flag"] = new(1, 0) } });

        text.Should().Throw<ArgumentException>().WithMessage("*tolerance names 'event_type', a string column*compared exactly*--ignore event_type*");
        flag.Should().Throw<ArgumentException>().WithMessage("*tolerance names 'flag', a bool column*");
    }

    [Fact]
    public void Reference_only_events_the_ledger_holds_are_counted_as_explained_and_still_lower_completeness()
    {
        var comparer = new EventComparer(Schema, Schema);
        comparer.Compare(
            Rows(("a", 1, "click", 10, 1.0), ("b", 1, "click", 20, 2.0), ("c", 2, "click", 30, 3.0), ("d", 2, "click", 40, 4.0)),
            Rows(("a", 1, "click", 10, 1.0), ("b", 1, "click", 20, 2.0)),
            explained: new HashSet<string> { "c", "zzz" });

        var click = comparer.Result().EventTypes.Single();
        click.ReferenceOnly.Should().Be(2);
        click.ReferenceOnlyExplained.Should().Be(1, "only c is both missing and in the ledger");
        click.Completeness.Should().Be(0.5);
        comparer.Result().Sequences.Should().Be(new SequenceAgreement(2, 1, 1), "user 2 lost both events, user 1 kept both");
    }

    /// <summary>
    /// In a JSON report a share of nothing is null: a column compared over no event said rate 1, which a
    /// notebook reads as full agreement. The gates still read 1 (nothing compared fails nothing).
    /// </summary>
    [Fact]
    public void Shares_over_nothing_are_null_in_json_and_measured_shares_are_numbers()
    {
        var options = new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower };
        var comparer = new EventComparer(Schema, Schema);
        comparer.Compare(
            Rows(("a", 1, "click", 10, 1.0), ("b", 1, "click", 20, 2.0), ("s", 2, "save", 30, 3.0)),
            Rows(("a", 1, "click", 10, 1.0), ("b", 1, "click", 20, 9.0)));
        var result = comparer.Result();
        using var json = System.Text.Json.JsonDocument.Parse(System.Text.Json.JsonSerializer.Serialize(result, options));
        var types = json.RootElement.GetProperty("event_types").EnumerateArray().ToDictionary(t => t.GetProperty("event_type").GetString()!);

        var click = types["click"];
        click.GetProperty("completeness").GetDouble().Should().Be(1);
        var clickScore = click.GetProperty("columns").EnumerateArray().Single(c => c.GetProperty("column").GetString() == "score");
        clickScore.GetProperty("rate").GetDouble().Should().Be(0.5, "a agrees, b does not");
        click.GetProperty("worst_agreement").GetDouble().Should().Be(0.5);

        var save = types["save"];
        save.GetProperty("completeness").GetDouble().Should().Be(0, "the candidate lacks the one save");
        save.GetProperty("columns").EnumerateArray().Should().OnlyContain(c => c.GetProperty("rate").ValueKind == System.Text.Json.JsonValueKind.Null, "no save was matched, so no column compared one");
        save.GetProperty("worst_agreement").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Null);
        result.EventTypes.Single(t => t.EventType == "save").WorstAgreement.Should().Be(1, "the gate reads a column compared over nothing as failing nothing");
        json.RootElement.GetProperty("sequences").GetProperty("ids_rate").GetDouble().Should().Be(0.5, "user 1 kept both events, user 2 lost its save");

        var empty = new EventComparer(Schema, Schema);
        empty.Compare(Rows(), Rows());
        using var nothing = System.Text.Json.JsonDocument.Parse(System.Text.Json.JsonSerializer.Serialize(empty.Result(), options));
        nothing.RootElement.GetProperty("total").GetProperty("completeness").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Null);
        nothing.RootElement.GetProperty("sequences").GetProperty("ids_rate").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Null);
        nothing.RootElement.GetProperty("sequences").GetProperty("full_rate").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Null);
    }

    [Fact]
    public void Ids_are_matched_within_a_slice_only()
    {
        var comparer = new EventComparer(Schema, Schema);
        var first = comparer.Compare(Rows(("a", 1, "click", 10, 1.0), ("b", 1, "save", 10, 1.0)), Rows(("b", 1, "save", 10, 1.0)));
        var second = comparer.Compare(Rows(), Rows(("a", 1, "click", 10, 1.0)));

        var total = comparer.Result().Total;
        (total.Matched, total.ReferenceOnly, total.CandidateOnly).Should().Be((1, 1, 1));
        first.Should().Equal(new SliceCompleteness("click", 0, 1, 0, 0), new SliceCompleteness("save", 1, 0, 0, 0));
        second.Should().Equal(new SliceCompleteness("click", 0, 0, 0, 1));
    }

    [Fact]
    public void A_column_keeps_its_largest_difference_and_a_few_disagreeing_ids()
    {
        var comparer = new EventComparer(Schema, Schema, new ComparisonOptions { ExamplesPerColumn = 2, Tolerances = new Dictionary<string, Tolerance> { ["score"] = new(0.5, 0) } });
        comparer.Compare(
            Rows(("a", 1, "click", 10, 1.0), ("b", 1, "click", 20, 2.0), ("c", 1, "click", 30, 3.0), ("d", 1, "click", 40, 4.0)),
            Rows(("a", 1, "click", 10, 1.25), ("b", 1, "click", 20, 5.0), ("c", 1, "click", 30, 3.75), ("d", 1, "click", 40, null)));

        var score = comparer.Result().Total.Columns.Single(c => c.Column == "score");
        score.Agreed.Should().Be(1, "a is within 0.5; b and c are not; d is null on one side");
        score.MaxDifference.Should().Be(3.0);
        score.Examples.Should().Equal("b", "c");
    }

    [Fact]
    public void Columns_only_one_side_has_or_of_another_type_are_named_and_not_compared()
    {
        ImmutableArray<FieldDefinition> candidate = [.. Schema.RemoveAt(4), new("score", WeftType.String), new("extra", WeftType.Int32)];
        ImmutableArray<FieldDefinition> reference = [.. Schema, new("gone", WeftType.Bool)];
        var comparer = new EventComparer(reference, candidate);

        comparer.OnlyInReference.Should().Equal("gone");
        comparer.OnlyInCandidate.Should().Equal("extra");
        comparer.TypeMismatches.Should().ContainSingle().Which.Should().Contain("score");
        comparer.ComparedColumns.Should().Equal(StandardColumns.UserId, StandardColumns.EventType, StandardColumns.EventTime);
    }

    [Fact]
    public void Both_sides_need_the_identity_columns()
    {
        var act = () => new EventComparer(Schema, Schema.RemoveAt(3));
        act.Should().Throw<ArgumentException>().WithMessage("*'event_time'*");
    }

    [Fact]
    public void Nothing_compared_is_complete_and_agrees()
    {
        var result = new EventComparer(Schema, Schema).Result();
        result.Total.Completeness.Should().Be(1);
        result.Total.WorstAgreement.Should().Be(1);
        result.Sequences.Users.Should().Be(0);
    }

    [Theory]
    [InlineData("0.001", 0.001, 0.0)]
    [InlineData("0,1e-6", 0.0, 1e-6)]
    [InlineData(" 2 , 0.5 ", 2.0, 0.5)]
    public void A_tolerance_parses_absolute_and_relative(string text, double absolute, double relative)
    {
        Tolerance.TryParse(text, out var tolerance, out var problem).Should().BeTrue(problem);
        tolerance.Should().Be(new Tolerance(absolute, relative));
    }

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("1,2,3")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("0.1;0.2")]
    public void A_malformed_tolerance_is_refused_with_the_text(string text)
    {
        Tolerance.TryParse(text, out _, out var problem).Should().BeFalse();
        problem.Should().Contain($"'{text}'");
    }

    [Theory]
    [InlineData(100.0, 101.0, 0.0, 0.01, true)]   // 1 <= 0.01 * 101
    [InlineData(100.0, 102.0, 0.0, 0.01, false)]
    [InlineData(0.0, 0.5, 0.5, 0.0, true)]
    [InlineData(double.PositiveInfinity, double.PositiveInfinity, 0.0, 0.0, true)]
    [InlineData(double.PositiveInfinity, 1e308, 1.0, 1.0, false)]
    [InlineData(double.NaN, double.NaN, 0.0, 0.0, true)]
    [InlineData(double.NaN, 0.0, 1.0, 1.0, false)]
    // Finite values whose difference and bound both pass double.MaxValue: inf <= inf agreed. Verdicts
    // from exact arithmetic (python3 Fraction).
    [InlineData(1.7e308, -1.7e308, 0.0, 1.9, false)]
    [InlineData(1.7e308, -1.7e308, 0.0, 2.1, true)]
    [InlineData(double.MaxValue, -double.MaxValue, 0.0, 2.0, true)]
    [InlineData(double.MaxValue, -double.MaxValue, 1e308, 1.0, false)]
    [InlineData(double.MaxValue, -double.MaxValue, 0.0, 1.999, false)]
    public void Tolerance_agreement(double a, double b, double absolute, double relative, bool agree)
    {
        new Tolerance(absolute, relative).Agree(a, b).Should().Be(agree);
        new Tolerance(absolute, relative).Agree(b, a).Should().Be(agree, "agreement is symmetric");
    }

    /// <summary>
    /// 64-bit integers beyond 2^53 went through double: 2^53 and 2^53 + 1, or two values near the
    /// int64 limits, became one number, agreeing within any tolerance with a largest difference of 0.
    /// The expected verdicts and gaps are exact integer arithmetic (python3 Fraction:
    /// |a − b| ≤ ABS + REL × max(|a|, |b|)).
    /// </summary>
    [Theory]
    [InlineData(9007199254740992L, 9007199254740993L, 0.5, 0.0, false, 1.0)]
    [InlineData(long.MaxValue, long.MaxValue - 1000, 10.0, 0.0, false, 1000.0)]
    [InlineData(long.MinValue, long.MinValue + 3, 2.0, 0.0, false, 3.0)]
    [InlineData(4611686018427387904L, 4611686018427388416L, 0.0, 1e-16, false, 512.0)]
    [InlineData(4611686018427387904L, 4611686018427388160L, 0.0, 1e-16, true, 256.0)]
    [InlineData(long.MinValue, long.MaxValue, 1e19, 0.0, false, 18446744073709551615.0)]
    public void Large_64_bit_integers_are_compared_exactly_within_a_tolerance(long a, long b, double absolute, double relative, bool agree, double gap)
    {
        ImmutableArray<FieldDefinition> schema = [.. Schema, new("total", WeftType.Int64)];
        EventBatch Side(long total) => new(schema,
        [
            new StringColumn(["e"]),
            new PrimitiveColumn<long>(WeftType.Int64, [1]),
            new StringColumn(["click"]),
            new PrimitiveColumn<long>(WeftType.Timestamp, [10]),
            new PrimitiveColumn<double>(WeftType.Float64, [1.0]),
            new PrimitiveColumn<long>(WeftType.Int64, [total]),
        ]);

        foreach (var (reference, candidate) in new[] { (a, b), (b, a) })
        {
            var comparer = new EventComparer(schema, schema, new ComparisonOptions { Tolerances = new Dictionary<string, Tolerance> { ["total"] = new(absolute, relative) } });
            comparer.Compare(Side(reference), Side(candidate));
            var total = comparer.Result().Total.Columns.Single(c => c.Column == "total");
            total.Agreed.Should().Be(agree ? 1 : 0, $"{reference} against {candidate} within {absolute},{relative}");
            total.MaxDifference.Should().Be(gap);
        }
    }
}
