using System.Text;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Weft.Definitions;
using Xunit;
using static Weft.Definitions.Expr;

namespace Weft.Definitions.Tests;

public class CanonicalJsonTests
{
    [Fact]
    public void Same_definitions_give_the_same_bytes_and_fingerprint()
    {
        var a = SignalJsonWriter.Write(Samples.Signal());
        var b = SignalJsonWriter.Write(Samples.Signal());
        a.Should().Equal(b);

        // The fingerprint is the lowercase hex SHA-256 of the canonical bytes (signal-json.md), and a
        // definition's fingerprint is that of its bytes.
        var fingerprint = SignalJsonWriter.Fingerprint(a);
        fingerprint.Should().Be(string.Concat(System.Security.Cryptography.SHA256.HashData(b).Select(x => x.ToString("x2", System.Globalization.CultureInfo.InvariantCulture))));
        SignalJsonWriter.Fingerprint(Samples.Signal()).Should().Be(fingerprint);
    }

    [Fact]
    public void Declaration_order_of_event_types_does_not_change_the_bytes()
    {
        var a = SignalJsonWriter.Write(Samples.Catalog().Build().Single());
        var b = SignalJsonWriter.Write(Samples.Catalog(reverseDeclarations: true).Build().Single());
        Encoding.UTF8.GetString(b).Should().Be(Encoding.UTF8.GetString(a));
    }

    [Fact]
    public void Canonical_json_reads_back_to_the_same_bytes()
    {
        var bytes = SignalJsonWriter.Write(Samples.Signal());
        var read = SignalJsonReader.Read(bytes);
        read.Problems.Should().BeEmpty();
        SignalJsonWriter.Write(read.Signal!).Should().Equal(bytes);
    }

    [Fact]
    public void Inferred_types_are_written_into_the_json()
    {
        var json = Samples.Json(Samples.Signal());
        json.Should().Contain("\"name\": \"long_dwell\",\n          \"type\": \"bool\"");
        json.Should().Contain("\"name\": \"embedding\",\n      \"type\": \"list<float32>\",\n      \"nullable\": true");
        json.Should().NotContain("\r");
    }

    [Fact]
    public void A_semantic_change_changes_the_fingerprint()
    {
        var a = SignalJsonWriter.Fingerprint(Samples.Signal());
        var b = SignalJsonWriter.Fingerprint(Samples.Signal(s => s.MaxLength(501)));
        b.Should().NotBe(a);
    }

    [Fact]
    public void Hand_written_json_without_types_is_accepted_and_typed()
    {
        const string json = """
            {
              "format": "weft.signal/1", "name": "clicks", "tenant": "t1", "version": 2,
              // comments are allowed in hand-written files
              "event_types": [ { "name": "click", "raw_schema": [ { "name": "dwell_ms", "type": "int32" } ],
                 "steps": [ { "op": "derive", "name": "dwell_s", "expr": { "op": "div", "args": [ { "col": "dwell_ms" }, { "lit": 1000 } ] } } ] } ],
              "element": [ "dwell_s", "dwell_ms" ],
              "max_length": 10, "lookback": "7d"
            }
            """;
        var read = SignalJsonReader.Read(json);
        read.Problems.Should().BeEmpty();
        read.Signal!.Element.Should().Equal(new FieldDefinition("dwell_s", WeftType.Float64, true), new FieldDefinition("dwell_ms", WeftType.Int32, true));
        read.Signal.Bucket.Should().Be(TimeBucket.Hour);
        read.Signal.LateAllowance.Should().Be(TimeSpan.FromHours(6));
    }

    public static Arbitrary<Expr> Expressions() => Arb.From(ExprGen(3));

    private static Gen<Expr> ExprGen(int depth)
    {
        var leaves = Gen.OneOf(
            Gen.Elements("a", "b").Select(n => Col(n)),
            Gen.Choose(-1000, 1000).Select(i => (Expr)Lit((long)i)),
            Gen.Choose(-1000, 1000).Select(i => (Expr)Lit(i / 7.0)));
        if (depth == 0)
        {
            return leaves;
        }

        var sub = ExprGen(depth - 1);
        return Gen.OneOf(
            leaves,
            Gen.Zip(sub, sub).Select(p => p.Item1 + p.Item2),
            Gen.Zip(sub, sub).Select(p => p.Item1 * p.Item2),
            Gen.Zip(sub, sub).Select(p => p.Item1 / p.Item2),
            Gen.Zip(sub, sub).Select(p => If(p.Item1 > p.Item2, p.Item1, p.Item2)),
            sub.Select(e => -e),
            sub.Select(e => e.Abs()));
    }

    [Property(MaxTest = 200, Arbitrary = [typeof(CanonicalJsonTests)])]
    public void Any_numeric_expression_round_trips_through_json_byte_for_byte(Expr expr)
    {
        var catalog = new DefinitionCatalog();
        var t = catalog.EventType("t").Attribute("a", WeftType.Int64).Attribute("b", WeftType.Float64);
        catalog.Signal("s", "x").Include(t, c => c.Derive("d", expr)).Element("d");
        var signal = catalog.Build().Single();
        var bytes = SignalJsonWriter.Write(signal);
        var again = SignalJsonReader.Read(bytes);
        again.Problems.Should().BeEmpty();
        SignalJsonWriter.Write(again.Signal!).Should().Equal(bytes);
    }

    [Property(MaxTest = 300)]
    public void Durations_round_trip(PositiveInt amount, byte unitIndex)
    {
        var units = new[] { TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1), TimeSpan.FromHours(1), TimeSpan.FromDays(1) };
        var value = units[unitIndex % units.Length] * Math.Min(amount.Get, 100_000);
        Durations.TryParse(Durations.Format(value), out var parsed).Should().BeTrue();
        parsed.Should().Be(value);
    }

    /// <summary>These threw out of TryParse (a stack trace from weft validate) instead of being no duration.</summary>
    [Theory]
    [InlineData("99999999999d")]
    [InlineData("999999999999h")]
    [InlineData("10675200d")]
    public void A_duration_longer_than_a_TimeSpan_holds_is_not_a_duration(string text)
    {
        Durations.TryParse(text, out _).Should().BeFalse();
        Durations.TryParse("10675199d", out var longest).Should().BeTrue();
        longest.Should().Be(TimeSpan.FromDays(10_675_199));
    }
}
