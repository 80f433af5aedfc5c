using System.Text;
using System.Text.Json.Nodes;
using FluentAssertions;
using Weft.Definitions;
using Xunit;
using static Weft.Definitions.Expr;

namespace Weft.Definitions.Tests;

/// <summary>
/// Signal JSON an author gets subtly wrong or an editor damages: each is a problem at its path, never
/// an exception out of the reader or the writer, and never a fingerprint that depends on the day.
/// </summary>
public class HostileJsonTests
{
    private static JsonObject Sample() => JsonNode.Parse(Samples.Json(Samples.Signal()))!.AsObject();

    private static SignalReadResult Read(string json) => SignalJsonReader.Read(json);

    private static SignalReadResult Read(JsonNode json) => SignalJsonReader.Read(json.ToJsonString());

    private static JsonObject ClickStep(JsonObject signal, int step) =>
        signal["event_types"]!.AsArray().Single(e => (string?)e!["name"] == "click")!["steps"]![step]!.AsObject();

    private static int ClickIndex(JsonObject signal) =>
        signal["event_types"]!.AsArray().Select((e, i) => (e, i)).Single(x => (string?)x.e!["name"] == "click").i;

    [Theory]
    [InlineData("\"home-\\ud800feed\"")] // an unpaired surrogate escape
    [InlineData("\"home-\\udc00\"")]
    public void An_unpaired_surrogate_is_a_problem_at_its_path(string tenant)
    {
        var json = Sample().ToJsonString().Replace("\"tenant\":\"home-feed\"", $"\"tenant\":{tenant}", StringComparison.Ordinal);
        json.Should().Contain(tenant, "the test edits the tenant");

        var result = Read(json);

        result.Signal.Should().BeNull();
        result.Problems.Should().ContainSingle().Which.Path.Should().Be("$.tenant");
        result.Problems[0].Message.Should().Contain("invalid Unicode");
    }

    [Fact]
    public void Bytes_that_are_not_UTF8_in_a_value_or_a_property_name_are_problems_at_their_paths()
    {
        var json = Encoding.UTF8.GetBytes(Sample().ToJsonString().Replace("\"description\":\"\"", "\"description\":\"caf\u0001\"", StringComparison.Ordinal));
        int at = Encoding.UTF8.GetString(json).IndexOf('\u0001', StringComparison.Ordinal);
        at.Should().BePositive("the test plants a marker in the description");
        var latin1 = json.Take(at).Concat(new byte[] { 0xE9 }).Concat(json.Skip(at + 1)).ToArray(); // "café" in Latin-1

        var result = SignalJsonReader.Read(latin1);

        result.Signal.Should().BeNull();
        result.Problems.Should().ContainSingle().Which.Path.Should().Be("$.description");
    }

    [Fact]
    public void A_repeated_property_is_a_problem_not_a_silent_last_value()
    {
        var json = Sample().ToJsonString().Replace("\"lookback\":\"30d\"", "\"lookback\":\"30d\",\"lookback\":\"1ms\"", StringComparison.Ordinal);
        json.Should().Contain("\"1ms\"");

        var result = Read(json);

        result.Signal.Should().BeNull();
        result.Problems.Should().ContainSingle().Which.Path.Should().Be("$.lookback");
        result.Problems[0].Message.Should().Contain("duplicate property 'lookback'");
    }

    [Theory]
    [InlineData("1e400", "float64")]
    [InlineData("-1e400", "float64")]
    [InlineData("1e300", "float32")]
    public void A_float_literal_outside_its_type_is_a_problem_and_the_writer_never_sees_it(string literal, string type)
    {
        var signal = Sample();
        var derive = ClickStep(signal, 1);
        derive["expr"] = JsonNode.Parse($$"""{"op":"gt","args":[{"col":"dwell_ms"},{"lit":{{literal}},"type":"{{type}}"}]}""");

        var result = Read(signal);

        result.Signal.Should().BeNull();
        result.Problems.Should().Contain(p => p.Path == $"$.event_types[{ClickIndex(signal)}].steps[1].expr.args[1].lit" && p.Message.Contains("not a valid"));
    }

    /// <summary>"12:30" took today's date and "Jan 5" this year's: the same file meant, and fingerprinted, differently by day.</summary>
    [Theory]
    [InlineData("12:30")]
    [InlineData("Jan 5")]
    [InlineData("1/2/2026")]
    [InlineData("Tue, 05 Jan 2027 10:00:00 GMT")]
    public void A_timestamp_literal_must_be_ISO_8601(string literal)
    {
        var signal = Sample();
        ClickStep(signal, 0)["where"] = JsonNode.Parse($$"""{"op":"gt","args":[{"col":"event_time"},{"lit":"{{literal}}","type":"timestamp"}]}""");

        var result = Read(signal);

        result.Problems.Should().ContainSingle(p => p.Message.Contains("is not a valid timestamp")).Which.Hint.Should().Contain("ISO-8601");
    }

    [Fact]
    public void An_ISO_8601_timestamp_literal_reads_as_the_instant_it_names()
    {
        var signal = Sample();
        ClickStep(signal, 0)["where"] = JsonNode.Parse("""{"op":"gt","args":[{"col":"event_time"},{"lit":"2026-01-05T10:00:00+02:00","type":"timestamp"}]}""");

        var result = Read(signal);

        result.Problems.Should().BeEmpty();
        var filter = result.Signal!.EventTypes.Single(e => e.Name == "click").Steps.OfType<FilterStep>().Single();
        var literal = ((CallExpr)filter.Where).Args[1].Should().BeOfType<LiteralExpr>().Subject;
        literal.Value.Should().Be(Timestamps.ToMicros(new DateTimeOffset(2026, 1, 5, 8, 0, 0, TimeSpan.Zero)));
    }

    [Fact]
    public void Only_a_cast_takes_a_type()
    {
        var signal = Sample();
        ClickStep(signal, 0)["where"] = JsonNode.Parse("""{"op":"ge","type":"string","args":[{"col":"dwell_ms"},{"lit":500,"type":"int32"}]}""");

        var result = Read(signal);

        result.Problems.Should().ContainSingle().Which.Path.Should().Be($"$.event_types[{ClickIndex(signal)}].steps[0].where.type");
    }

    [Theory]
    [InlineData("event_time")]
    [InlineData("user_id")]
    public void A_custom_step_cannot_overwrite_a_standard_column(string column)
    {
        var signal = Sample();
        signal["event_types"]!.AsArray().Single(e => (string?)e!["name"] == "click")!["steps"]!.AsArray()
            .Add(JsonNode.Parse($$"""{"op":"custom","executor":"anything","args":{},"produces":[{"name":"{{column}}","type":"string"}]}"""));

        var result = Read(signal);

        result.Problems.Should().ContainSingle().Which.Path.Should().Be($"$.event_types[{ClickIndex(signal)}].steps[2].produces[0].name");
        result.Problems[0].Message.Should().Contain($"cannot overwrite standard column '{column}'");
    }

    [Fact]
    public void An_empty_element_name_is_a_problem_not_a_dropped_entry()
    {
        var signal = Sample();
        signal["element"]!.AsArray().Add("");

        var result = Read(signal);

        result.Problems.Should().ContainSingle().Which.Path.Should().Be($"$.element[{signal["element"]!.AsArray().Count - 1}]");
    }

    [Fact]
    public void A_C_sharp_element_of_one_empty_name_does_not_compile_into_JSON_validate_refuses()
    {
        var build = () => Samples.Catalog(s => s.Element("")).Build();

        build.Should().Throw<DefinitionException>().Which.Problems.Should().ContainSingle().Which.Message.Should().Be("an element column needs a name");
    }

    [Fact]
    public void An_enrichment_without_columns_and_a_bad_version_column_are_problems()
    {
        var signal = Sample();
        signal["enrichments"]![0]!["columns"] = new JsonArray();
        signal["enrichment_sources"]![0]!["version_column"] = "Bad Name!";

        var result = Read(signal);

        var paths = result.Problems.Select(p => p.Path).ToList();
        paths.Should().Contain("$.enrichments[0].columns");
        paths.Should().Contain("$.enrichment_sources[0].version_column");
        result.Signal.Should().BeNull();
    }

    /// <summary>A loop building "a | b | c …" nested two JSON levels a term and failed at ~30 terms with a parser's depth error.</summary>
    [Fact]
    public void A_long_chain_of_conditions_built_in_C_sharp_compiles_and_reads_back()
    {
        Expr p = Col("surface").Eq("s0");
        for (int i = 1; i < 100; i++)
        {
            p = p | Col("surface").Eq("s" + i);
        }

        var signal = Samples.Signal(s => s.Include(new DefinitionCatalog().EventType("view").Attribute("surface", WeftType.String).Attribute("item_id", WeftType.Int64, nullable: false), c => c.Where(p)));

        var again = SignalJsonReader.Read(SignalJsonWriter.Write(signal));
        again.Problems.Should().BeEmpty();
        SignalJsonWriter.Fingerprint(again.Signal!).Should().Be(SignalJsonWriter.Fingerprint(signal));
    }

    [Fact]
    public void A_chain_too_deep_for_a_signal_names_the_limit_and_the_one_level_forms()
    {
        Expr p = Col("surface").Eq("s0");
        for (int i = 1; i < 400; i++)
        {
            p = p | Col("surface").Eq("s" + i);
        }

        var build = () => Samples.Catalog(s => s.Include(new DefinitionCatalog().EventType("view").Attribute("surface", WeftType.String), c => c.Where(p)));

        build.Should().Throw<ArgumentException>().WithMessage("*nests 401 operators deep*In(...)*Any(...)*");
    }

    [Fact]
    public void Any_and_All_combine_many_conditions_one_level_deep_with_or_and_and()
    {
        var conditions = Enumerable.Range(0, 1000).Select(i => Col("surface").Eq("s" + i)).ToArray();
        var signal = Samples.Signal(s => s.Include(new DefinitionCatalog().EventType("view").Attribute("surface", WeftType.String).Attribute("item_id", WeftType.Int64, nullable: false),
            c => c.Where(All(Any(conditions), Col("surface").IsNotNull()))));

        var where = signal.EventTypes.Single(e => e.Name == "view").Steps.OfType<FilterStep>().Single().Where.Should().BeOfType<CallExpr>().Subject;
        where.Op.Should().Be("and");
        where.Args[0].Should().BeOfType<CallExpr>().Which.Args.Should().HaveCount(1000);
        ((CallExpr)where.Args[0]).Op.Should().Be("or");
        Any(Col("surface").IsNull()).Should().BeOfType<CallExpr>().Which.Op.Should().Be("is_null", "one condition is itself");
    }

    /// <summary>Keeping the first source by name dropped the second silently, leaving only "no column 'price'".</summary>
    [Fact]
    public void A_signal_enriched_from_two_sources_of_one_name_is_told_so()
    {
        var weft = Samples.Catalog(s => s.Enrich(new DefinitionCatalog().EnrichmentSource("items", "item_id", WeftType.Int64).Column("price", WeftType.Float64), "item_id", "price"));

        var problems = weft.Invoking(w => w.Build()).Should().Throw<DefinitionException>().Which.Problems;

        problems.Should().Contain(p => p.Message == "duplicate enrichment source 'items'");
    }

    /// <summary>Signals read event types of their own: one name declared twice, for two signals, is not a clash.</summary>
    [Fact]
    public void An_event_type_declared_twice_for_two_signals_builds()
    {
        var weft = Samples.Catalog();
        var other = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).MapRawColumn("kind", "event_type").MapRawColumn("type", "event_type");
        weft.Signal("other", "home-feed").Include(other).Element("item_id").MaxLength(10).Lookback(TimeSpan.FromDays(1));

        weft.Build().Select(s => s.Name).Should().BeEquivalentTo(["engagement", "other"], "two raw names for event_type are aliases the parser tries in order");
    }

    /// <summary>Migration evidence is tied to what a signal computes: a new description must not void it, a new filter must.</summary>
    [Fact]
    public void The_content_fingerprint_ignores_the_description_tenant_version_and_freshness_objective_but_not_a_filter()
    {
        var signal = Samples.Signal();
        var content = SignalJsonWriter.ContentFingerprint(signal);

        SignalJsonWriter.ContentFingerprint(signal with { Description = "now documented", Tenant = "other", Version = 2, FreshnessObjective = TimeSpan.FromSeconds(30) }).Should().Be(content);
        SignalJsonWriter.Fingerprint(signal with { Description = "now documented" }).Should().NotBe(SignalJsonWriter.Fingerprint(signal), "the full fingerprint still sees it");
        SignalJsonWriter.ContentFingerprint(signal with { MaxLength = 400 }).Should().NotBe(content);
        var refiltered = Samples.Signal(s => s.Include(new DefinitionCatalog().EventType("view").Attribute("item_id", WeftType.Int64, nullable: false), c => c.Where(Col("item_id") > 5)));
        SignalJsonWriter.ContentFingerprint(refiltered).Should().NotBe(content);
    }
}
