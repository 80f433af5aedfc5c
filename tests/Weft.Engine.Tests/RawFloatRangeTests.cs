using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// A float32 attribute holds what float32 can: a JSON number beyond it (1e300) was narrowed to
/// Infinity, a value nobody sent, as a float32 literal beyond its type may not be (signal-json.md).
/// </summary>
public sealed class RawFloatRangeTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void A_number_beyond_float32_is_a_dead_letter_for_a_float32_attribute_in_every_reading_path()
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("ratio", WeftType.Float32).Attribute("emb", WeftType.ListOf(ScalarKind.Float32)).Attribute("score", WeftType.Float64);
        weft.Signal("floats", "t").Include(click).Element("ratio").MaxLength(10).Lookback(TimeSpan.FromHours(1));
        var signal = CompiledSignal.Compile(weft.Build().Single(), ExecutorRegistry.CreateDefault(), new Dictionary<string, EnrichmentTable>());
        var parser = new RawEventParser(signal, new FakeTimeProvider(Now));
        const string Head = """{"user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z",""";
        string[] events =
        [
            Head + "\"event_id\":\"flat\",\"ratio\":1e300}",
            Head + "\"event_id\":\"nested\",\"x\":{\"y\":1},\"ratio\":-1e39}",
            Head + "\"event_id\":\"list\",\"emb\":[1.5,3.5e38]}",
            Head + "\"event_id\":\"ok\",\"ratio\":3.4e38,\"emb\":[1e-50],\"score\":1e300}",
        ];
        var result = parser.Parse(events.Select((e, i) => new RawRecord(Encoding.UTF8.GetBytes(e), $"t:{i}")).ToList());
        result.DeadLetters.Select(d => d.EventId).Should().Equal("flat", "nested", "list");
        result.Events.RowCount.Should().Be(1);
        result.Events["ratio"].GetValue(0).Should().Be(3.4e38f);
        result.Events["score"].GetValue(0).Should().Be(1e300, "float64 holds it");
        using var doc = JsonDocument.Parse("1e300");
        RawEventParser.TryRead(doc.RootElement, WeftType.Float32, out _).Should().BeFalse();
        RawEventParser.TryRead(doc.RootElement, WeftType.Float64, out var d).Should().BeTrue();
        d.Should().Be(1e300);
    }
}
