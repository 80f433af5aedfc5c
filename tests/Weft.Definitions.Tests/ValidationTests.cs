using FluentAssertions;
using Weft.Definitions;
using Xunit;
using static Weft.Definitions.Expr;

namespace Weft.Definitions.Tests;

public class ValidationTests
{
    private static IReadOnlyList<DefinitionProblem> Problems(string json) => SignalJsonReader.Read(json).Problems;

    private const string Broken = """
        {
          "format": "weft.signal/1", "name": "broken", "tenant": "t", "version": 1,
          "event_types": [
            { "name": "click", "raw_schema": [ { "name": "item_id", "type": "int64" }, { "name": "item_id", "type": "string" } ],
              "steps": [ { "op": "filter", "where": { "op": "gt", "args": [ { "col": "surface" }, { "lit": 3 } ] } },
                         { "op": "derive", "name": "x", "expr": { "op": "add", "args": [ { "col": "item_id" }, { "lit": "a", "type": "string" } ] } } ] },
            { "name": "search", "raw_schema": [ { "name": "query", "type": "string" } ] },
            { "name": "click" }
          ],
          "enrichment_sources": [ { "name": "items", "key": { "name": "item_id", "type": "int64" }, "columns": [ { "name": "category", "type": "string" } ] } ],
          "enrichments": [ { "source": "items", "on": "item_id", "columns": [ "category" ], "event_types": [ "click", "search", "view" ] } ],
          "element": [ "category", "ghost", "category" ],
          "max_length": 0,
          "lookback": "30 days"
        }
        """;

    /// <summary>The message gave a one-based line and byte, then System.Text.Json's zero-based ones.</summary>
    [Fact]
    public void A_definition_that_is_not_JSON_is_one_problem_at_its_one_based_line_and_byte()
    {
        // Line 3 is `  "version": 1 }}`: the second brace is its 17th byte.
        var problems = Problems("{\n  \"name\": \"x\",\n  \"version\": 1 }}\n");

        problems.Should().ContainSingle();
        problems[0].Path.Should().Be("$");
        problems[0].Message.Should().StartWith("not valid JSON at line 3, byte 17: ")
            .And.NotContain("LineNumber").And.NotContain("BytePositionInLine").And.NotContain("Path:");
    }

    [Fact]
    public void Every_problem_is_reported_at_once_with_its_json_path()
    {
        var problems = Problems(Broken);
        var byPath = problems.Select(p => (p.Path, p.Message)).ToList();
        byPath.Should().Contain(p => p.Path == "$.event_types[0].raw_schema[1].name" && p.Message.Contains("duplicate column 'item_id'"));
        byPath.Should().Contain(p => p.Path == "$.event_types[0].steps[0].where.args[0]" && p.Message.Contains("unknown column 'surface'"));
        byPath.Should().Contain(p => p.Path == "$.event_types[0].steps[1].expr" && p.Message.Contains("'add' needs numbers, got int64 and string"));
        byPath.Should().Contain(p => p.Path == "$.event_types[2].name" && p.Message.Contains("duplicate event type 'click'"));
        byPath.Should().Contain(p => p.Path == "$.enrichments[0].event_types[2]" && p.Message.Contains("unknown event type 'view'"));
        byPath.Should().Contain(p => p.Path == "$.enrichments[0].on" && p.Message.Contains("enrichment key 'item_id' is missing from event type 'search'"));
        byPath.Should().Contain(p => p.Path == "$.element[1]" && p.Message.Contains("'ghost' is used in element but never produced"));
        byPath.Should().Contain(p => p.Path == "$.element[2]" && p.Message.Contains("duplicate element column 'category'"));
        byPath.Should().Contain(p => p.Path == "$.max_length" && p.Message.Contains("must be ≥ 1, got 0"));
        byPath.Should().Contain(p => p.Path == "$.lookback" && p.Message.Contains("is not a duration"));
        problems.Where(p => p.Path == "$.lookback").Single().Hint.Should().Contain("30d");
        SignalJsonReader.Read(Broken).Signal.Should().BeNull();
    }

    [Fact]
    public void Malformed_json_names_line_and_byte()
    {
        var p = Problems("{\n  \"name\": \"x\",\n  oops\n}").Single();
        p.Path.Should().Be("$");
        p.Message.Should().Contain("line 3");
    }

    [Fact]
    public void Unknown_properties_get_a_did_you_mean_hint()
    {
        var json = Samples.Json(Samples.Signal()).Replace("\"max_length\"", "\"max_lenght\"");
        var problems = Problems(json);
        problems.Should().Contain(p => p.Path == "$.max_lenght" && p.Hint == "did you mean 'max_length'?");
        problems.Should().Contain(p => p.Path == "$" && p.Message == "missing required property 'max_length'");
    }

    [Fact]
    public void An_element_column_declared_nullable_stays_nullable_when_every_producer_fills_it()
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(Samples.Json(Samples.Signal()))!;
        var itemId = json["element"]!.AsArray().Single(e => (string?)e!["name"] == "item_id")!;
        ((bool)itemId["nullable"]!).Should().BeFalse("both event types declare item_id required, so it is inferred non-nullable");

        itemId["nullable"] = true;
        var read = SignalJsonReader.Read(json.ToJsonString());
        read.Problems.Should().BeEmpty();
        read.Signal!.Element.Single(f => f.Name == "item_id").Nullable.Should().BeTrue();

        itemId["nullable"] = "yes";
        SignalJsonReader.Read(json.ToJsonString()).Problems.Should()
            .ContainSingle(p => p.Path.StartsWith("$.element[", StringComparison.Ordinal) && p.Path.EndsWith("].nullable", StringComparison.Ordinal) && p.Message.Contains("expected true or false, got string"));
    }

    [Fact]
    public void A_filter_must_be_boolean()
    {
        var catalog = new DefinitionCatalog();
        var t = catalog.EventType("t").Attribute("n", WeftType.Int64);
        catalog.Signal("s", "x").Include(t, c => c.Where(Col("n") + 1)).Element("n");
        var ex = Assert.Throws<DefinitionException>(() => catalog.Build());
        ex.Problems.Should().ContainSingle(p => p.Path == "signal 's' $.event_types[0].steps[0].where" && p.Message.Contains("must be bool, got int64"));
    }

    /// <summary>
    /// Columns every row of the enriched table has cannot be element columns: a signal naming user_id or
    /// ingest_time validated, then failed every batch run and stream start on a repeated column name.
    /// </summary>
    [Theory]
    [InlineData("event_id", "is always part of an element")]
    [InlineData("event_time", "is always part of an element")]
    [InlineData("user_id", "'user_id' keys the sequence")]
    [InlineData("ingest_time", "'ingest_time' is kept on every row of the enriched table")]
    public void A_standard_column_is_no_element_column(string column, string message)
    {
        var catalog = new DefinitionCatalog();
        var t = catalog.EventType("t").Attribute("n", WeftType.Int64);
        catalog.Signal("s", "x").Include(t).Element("n", column);
        var ex = Assert.Throws<DefinitionException>(() => catalog.Build());
        ex.Problems.Should().ContainSingle().Which.Should().Match<DefinitionProblem>(p => p.Path == "signal 's' $.element[1]" && p.Message.Contains(message));
    }

    /// <summary>
    /// An enrichment source's version column named like its key or one of its columns: the rows could not
    /// hold both, and validate and compile crashed building them, with a stack trace instead of a path.
    /// </summary>
    [Theory]
    [InlineData("category", "is also one of the columns")]
    [InlineData("item_id", "is also the key")]
    public void A_version_column_named_like_the_key_or_a_column_is_a_problem_at_its_path(string versionColumn, string message)
    {
        var catalog = new DefinitionCatalog();
        var click = catalog.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false);
        var items = catalog.EnrichmentSource("items", key: "item_id", keyType: WeftType.Int64).Column("category", WeftType.String).VersionedBy(versionColumn);
        catalog.Signal("s", "x").Include(click).Enrich(items, on: "item_id", "category").Element("item_id", "category");
        var ex = Assert.Throws<DefinitionException>(() => catalog.Build());
        ex.Problems.Should().ContainSingle().Which.Should().Match<DefinitionProblem>(p => p.Path == "signal 's' $.enrichment_sources[0].version_column" && p.Message.Contains(message));
    }

    /// <summary>
    /// A max_elements that is not valid is one problem: max_length was also measured against the
    /// stand-in of 1 it read as ("max_length 500 exceeds the budget max_elements 1").
    /// </summary>
    [Fact]
    public void A_bad_budget_is_one_problem_not_also_a_max_length_over_a_stand_in()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(Samples.Json(Samples.Signal()))!.AsObject();
        node["budgets"] = new System.Text.Json.Nodes.JsonObject { ["max_elements"] = 0 };
        var problems = Problems(node.ToJsonString());
        problems.Should().ContainSingle().Which.Path.Should().Be("$.budgets.max_elements");
    }

    [Fact]
    public void A_null_expression_is_refused_saying_it_is_null()
    {
        var catalog = new DefinitionCatalog();
        var t = catalog.EventType("t").Attribute("n", WeftType.Int64);
        var build = () => catalog.Signal("s", "x").Include(t, c => c.Where(null!));
        build.Should().Throw<ArgumentNullException>().WithMessage("an expression is null*");
    }

    /// <summary>
    /// C#'s <c>==</c> and <c>!=</c> on expressions build comparisons: they compiled to the constant the
    /// two objects' reference comparison gave, a filter that dropped every event. Against null they test for null.
    /// </summary>
    [Fact]
    public void Equality_operators_on_expressions_build_comparisons()
    {
        var catalog = new DefinitionCatalog();
        var t = catalog.EventType("t").Attribute("surface", WeftType.String).Attribute("n", WeftType.Int64);
        catalog.Signal("s", "x").Include(t, c => c
                .Where((Col("surface") == "home") | (Col("n") != Lit(3L)))
                .Derive("no_surface", Col("surface") == null)
                .Derive("has_n", Col("n") != null))
            .Element("surface", "no_surface", "has_n");

        var json = Samples.Json(catalog.Build().Single());

        json.Should().Contain("\"op\": \"eq\"").And.Contain("\"op\": \"ne\"").And.Contain("\"op\": \"is_null\"").And.Contain("\"op\": \"is_not_null\"");
        json.Should().NotContain("\"lit\": false").And.NotContain("\"lit\": true");
    }

    /// <summary>A negative duration is said to be negative (it read as "-1d is not a duration", with a hint on how durations look).</summary>
    [Fact]
    public void A_negative_duration_is_reported_as_negative()
    {
        var ex = Assert.Throws<DefinitionException>(() => Samples.Signal(s => s.Lookback(TimeSpan.FromDays(-1))));
        ex.Problems.Should().ContainSingle().Which.Should().Match<DefinitionProblem>(p => p.Path == "signal 'engagement' $.lookback" && p.Message == "Lookback(-1.00:00:00) is negative");
    }

    /// <summary>NaN and infinities have no JSON form: the literal is refused where it is written, not by the JSON writer's own message later.</summary>
    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void A_float_literal_that_is_not_finite_is_refused_where_it_is_written(double value)
    {
        var write = () => Col("dwell_ms") > value;
        write.Should().Throw<ArgumentOutOfRangeException>().WithMessage("a float literal must be a finite number*");
    }

    [Fact]
    public void Element_type_conflicts_between_event_types_are_reported()
    {
        var catalog = new DefinitionCatalog();
        var a = catalog.EventType("a").Attribute("v", WeftType.Int64);
        var b = catalog.EventType("b").Attribute("w", WeftType.String);
        catalog.Signal("s", "x").Include(a).Include(b, c => c.Rename("w", "v")).Element("v");
        var ex = Assert.Throws<DefinitionException>(() => catalog.Build());
        ex.Problems.Should().ContainSingle(p => p.Message.Contains("'v' is int64 in event type 'a' but string in 'b'"));
    }

    [Fact]
    public void Enrichment_key_type_must_match_the_source_key()
    {
        var catalog = new DefinitionCatalog();
        var a = catalog.EventType("a").Attribute("item_id", WeftType.String);
        var items = catalog.EnrichmentSource("items", "item_id", WeftType.Int64).Column("c", WeftType.String);
        catalog.Signal("s", "x").Include(a).Enrich(items, "item_id", "c").Element("c");
        var ex = Assert.Throws<DefinitionException>(() => catalog.Build());
        ex.Problems.Should().ContainSingle("the element's 'c' is not also reported as never produced").Which.Message.Should().Contain("is string but the key of 'items' is int64");

        var missing = new DefinitionCatalog();
        var b = missing.EventType("b").Attribute("other", WeftType.Int64);
        missing.Signal("s", "x").Include(b).Enrich(missing.EnrichmentSource("items", "item_id", WeftType.Int64).Column("c", WeftType.String), "item_id", "c").Element("c");
        Assert.Throws<DefinitionException>(() => missing.Build()).Problems.Should().ContainSingle().Which.Message.Should().Contain("enrichment key 'item_id' is missing from event type 'b'");
    }

    [Fact]
    public void Budgets_are_validated_at_compile_time()
    {
        var tooLong = Assert.Throws<DefinitionException>(() => Samples.Signal(s => s.MaxLength(20_000).WithBudgets(Budgets.Default with { MaxElements = 16_384 })));
        tooLong.Problems.Should().Contain(p => p.Path.EndsWith("$.max_length", StringComparison.Ordinal) && p.Message.Contains("exceeds the budget max_elements 16384"));

        var tooBig = Assert.Throws<DefinitionException>(() => Samples.Signal(s => s.MaxLength(16_000).WithBudgets(Budgets.Default with { MaxBytesPerUser = 1_000_000 })));
        tooBig.Problems.Should().Contain(p => p.Path.EndsWith("$.budgets.max_bytes_per_user", StringComparison.Ordinal) && p.Message.Contains("over the budget of 1000000"));

        var zeroCap = Problems(Samples.Json(Samples.Signal()).Replace("\"hot_user_max_events_per_hour\": 3600", "\"hot_user_max_events_per_hour\": 0"));
        zeroCap.Should().ContainSingle(p => p.Path == "$.budgets.hot_user_max_events_per_hour");
    }

    [Fact]
    public void A_duration_with_a_part_under_a_millisecond_is_a_problem_not_silently_truncated()
    {
        var ex = Assert.Throws<DefinitionException>(() => Samples.Signal(s => s.FreshnessObjective(TimeSpan.FromMicroseconds(500)).LateAllowance(TimeSpan.FromMilliseconds(1.5))));
        ex.Problems.Should().ContainSingle(p => p.Path.EndsWith("$.freshness_objective", StringComparison.Ordinal) && p.Message.Contains("FreshnessObjective(00:00:00.0005000)") && p.Message.Contains("under a millisecond"));
        ex.Problems.Should().ContainSingle(p => p.Path.EndsWith("$.late_allowance", StringComparison.Ordinal) && p.Message.Contains("under a millisecond"));
        ex.Problems.Should().HaveCount(2, "the truncated 0ms objective is not reported a second time");

        var whole = Samples.Signal(s => s.FreshnessObjective(TimeSpan.FromMilliseconds(250)));
        whole.FreshnessObjective.Should().Be(TimeSpan.FromMilliseconds(250));
    }

    [Fact]
    public void Standard_columns_cannot_be_redeclared_or_overwritten()
    {
        var catalog = new DefinitionCatalog();
        var a = catalog.EventType("a").Attribute("user_id", WeftType.Int64).Attribute("n", WeftType.Int64);
        catalog.Signal("s", "x").Include(a, c => c.Derive("event_time", Col("n"))).Element("n");
        var ex = Assert.Throws<DefinitionException>(() => catalog.Build());
        ex.Problems.Should().Contain(p => p.Path.EndsWith("raw_schema[0].name", StringComparison.Ordinal) && p.Message.Contains("standard column"));
        ex.Problems.Should().Contain(p => p.Path.EndsWith("steps[0].name", StringComparison.Ordinal) && p.Message.Contains("cannot overwrite standard column 'event_time'"));
    }

    [Fact]
    public void Unknown_custom_executors_are_reported_when_a_registry_is_given()
    {
        var catalog = new DefinitionCatalog();
        var a = catalog.EventType("a").Attribute("n", WeftType.Int64);
        catalog.Signal("s", "x").Include(a, c => c.Custom("nope", null, new FieldDefinition("m", WeftType.Int64))).Element("m");
        catalog.Build().Should().ContainSingle(); // without a registry any name is accepted
        var ex = Assert.Throws<DefinitionException>(() => catalog.Build(name => name == "known"));
        ex.Problems.Should().ContainSingle(p => p.Message.Contains("no executor named 'nope'"));
    }
}
