using System.Globalization;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Streaming.Runtime;
using Xunit;

namespace Weft.Streaming.Tests.Runtime;

/// <summary>
/// The stream's per-signal record filter: it may only leave a signal out of a record that signal's own
/// parser would skip as of another signal's type, and it does leave signals out of clean records.
/// </summary>
public sealed class SignalTypeFilterTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 20, 12, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// Three signals with overlapping types and column mappings: "feed" (click, save), "saves" (save
    /// reading its type from "type" or "kind", and its note from "event_type"; view), "refunds" (refund;
    /// click reading its type from "kind").
    /// </summary>
    private static List<SignalDefinition> Signals()
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64);
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64);
        weft.Signal("feed", "t").Include(click).Include(save).Element("item_id").MaxLength(10).Lookback(TimeSpan.FromHours(1));

        var mappedSave = weft.EventType("save").Attribute("note", WeftType.String)
            .MapRawColumn("type", StandardColumns.EventType).MapRawColumn("kind", StandardColumns.EventType).MapRawColumn("event_type", "note");
        var view = weft.EventType("view");
        weft.Signal("saves", "t").Include(mappedSave).Include(view).Element("note").MaxLength(10).Lookback(TimeSpan.FromHours(1));

        var refund = weft.EventType("refund").Attribute("item_id", WeftType.Int64);
        var kindClick = weft.EventType("click").Attribute("item_id", WeftType.Int64).MapRawColumn("kind", StandardColumns.EventType);
        weft.Signal("refunds", "t").Include(refund).Include(kindClick).Element("item_id").MaxLength(10).Lookback(TimeSpan.FromHours(1));
        return [.. weft.Build()];
    }

    private static SignalTypeFilter Filter(List<SignalDefinition> signals) => new(
        [.. signals.Select(s => s.EventTypes.Select(t => t.Name))],
        signals.SelectMany(s => s.EventTypes).SelectMany(t => t.ColumnMapping)
            .Where(m => m.Value == StandardColumns.EventType && m.Key != StandardColumns.EventType).Select(m => m.Key));

    [Theory]
    [InlineData("""{"event_id":"e1","user_id":1,"event_type":"click","item_id":5}""", 0b101)]
    [InlineData("""{"event_type":"save"}""", 0b011)]
    [InlineData("""{"event_type":"view"}""", 0b010)]
    [InlineData("""{"event_type":"refund","nested":{"event_type":"click","a":[1,"}",{"b":"]"}]},"s":"a\"b\\"}""", 0b100)]
    [InlineData(""" { "kind" : "refund" , "type":"view" } """, 0b110)]
    [InlineData("""{"note":"event_type","my_event_type":"refund","event_type" : "view"}""", 0b010)] // a value and a name that read like the type property
    [InlineData("""{"note":"event_type"}""", 0b111)]
    [InlineData("""{"event_type":"search"}""", 0)]
    [InlineData("""{"event_type":"","kind":"click"}""", 0b111)] // an empty type: a parser's "missing event_type"
    [InlineData("""{"event_type":"click","event_type":"view"}""", 0b111)]
    [InlineData("""{"user_id":1}""", 0b111)] // no type: every parser judges it
    [InlineData("""{"event_type":5}""", 0b111)]
    [InlineData("""{"event_type":null,"kind":"view"}""", 0b111)]
    [InlineData("""{"event_type":"cl\u0069ck"}""", 0b111)] // an escaped type
    [InlineData("""{"event\u005ftype":"view"}""", 0b111)] // an escaped name
    [InlineData("""[{"event_type":"view"}]""", 0b111)]
    [InlineData("""{"event_type":"view"} x""", 0b010)] // flat records are not validated: the route refuses this one
    [InlineData("""{"event_type":"view",}""", 0b010)]
    [InlineData("""{"event_type":"view","a":[1]} x""", 0b111)]
    [InlineData("""{"event_type":"view","a":[1],}""", 0b111)]
    [InlineData("""{"event_type" "view"}""", 0b111)]
    [InlineData("""{"event_type":"view""", 0b111)]
    [InlineData("", 0b111)]
    public void A_record_goes_to_the_signals_that_include_a_type_it_names(string json, int expected)
    {
        Filter(Signals()).SignalsFor(Encoding.UTF8.GetBytes(json)).Should().Be((ulong)expected);
    }

    /// <summary>
    /// Random records against each signal's own parser: a signal left out of a record would have taken no
    /// event from it, and skipped it as of another type, or (without an <c>event_type</c> property, when
    /// another signal reads the type from a property of its own) called it a record missing its event_type,
    /// or the record is not JSON at all (the route refuses it, whatever the signals said).
    /// </summary>
    [Fact]
    public void A_signal_left_out_of_a_record_would_have_skipped_it_as_another_signals_type()
    {
        var signals = Signals();
        var filter = Filter(signals);
        var clock = new FakeClock(Now);
        var parsers = signals
            .Select(s => new RawEventParser(CompiledSignal.Compile(s, ExecutorRegistry.CreateDefault(), new Dictionary<string, EnrichmentTable>()), clock))
            .ToList();
        int leftOut = 0, taken = 0;
        for (int seed = 0; seed < 40; seed++)
        {
            var random = new Random(seed);
            for (int n = 0; n < 250; n++)
            {
                string json = Event(random);
                var record = new RawRecord(Encoding.UTF8.GetBytes(json), $"gen:{seed}:{n}");
                ulong given = filter.SignalsFor(record.Json.Span);
                for (int s = 0; s < parsers.Count; s++)
                {
                    var parsed = parsers[s].Parse([record]);
                    if ((given & (1UL << s)) == 0)
                    {
                        leftOut++;
                        parsed.Events.RowCount.Should().Be(0, "{0} was left out of {1}", json, signals[s].Name);
                        if (parsed.DeadLetters.Count == 0)
                        {
                            parsed.SkippedOtherTypes.Should().Be(1, "{0} was left out of {1}", json, signals[s].Name);
                        }
                        else if (IsJson(json))
                        {
                            // The one judgement a left-out signal no longer makes: that a record naming
                            // another signal's type under that signal's own property lacks its event_type.
                            parsed.DeadLetters.Should().ContainSingle().Which.Reason.Should().Be("missing event_type", "{0} was left out of {1}", json, signals[s].Name);
                            using var document = JsonDocument.Parse(json);
                            document.RootElement.TryGetProperty(StandardColumns.EventType, out _).Should().BeFalse("{0} has an event_type", json);
                        }
                    }
                    else
                    {
                        taken += parsed.Events.RowCount;
                    }
                }
            }
        }

        leftOut.Should().BeGreaterThan(5_000, "clean records name their types, so most signals are left out of most of them");
        taken.Should().BeGreaterThan(2_000, "the signals a record goes to parse it");
    }

    private static readonly string[] Types = ["click", "save", "view", "refund", "search", "", "Click", "cl\\u0069ck", "sa\\\"ve"];

    /// <summary>A random raw record: mostly clean events, with duplicates, mapped type properties, nested values, escapes, non-string types and malformed JSON.</summary>
    private static string Event(Random random)
    {
        var properties = new List<string>
        {
            Property("event_id", Quote($"e{random.Next(1000)}")),
            Property("user_id", random.Next(5) == 0 ? "null" : random.Next(1, 50).ToString(CultureInfo.InvariantCulture)),
            Property("event_time", Quote(Now.AddMinutes(-random.Next(30)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))),
        };
        int types = random.Next(4) == 0 ? random.Next(0, 4) : 1;
        for (int t = 0; t < types; t++)
        {
            string name = new[] { "event_type", "event_type", "event_type", "kind", "type", "event\\u005ftype" }[random.Next(6)];
            string value = random.Next(12) switch
            {
                0 => "5",
                1 => "null",
                2 => "[\"click\"]",
                _ => Quote(Types[random.Next(Types.Length)]),
            };
            properties.Add(Property(name, value));
        }

        if (random.Next(2) == 0)
        {
            properties.Add(Property("item_id", random.Next(6) == 0 ? Quote("x") : random.Next(100).ToString(CultureInfo.InvariantCulture)));
        }

        if (random.Next(4) == 0)
        {
            properties.Add(Property("nested", """{"event_type":"refund","a":[1,"}",{"b":"]\""}],"c":{}}"""));
        }

        if (random.Next(4) == 0)
        {
            properties.Add(Property("note", Quote(random.Next(2) == 0 ? "a\\\"b\\\\" : "plain")));
        }

        var shuffled = properties.OrderBy(_ => random.Next()).ToList();
        string json = "{" + string.Join(random.Next(3) == 0 ? " , " : ",", shuffled) + "}";
        return random.Next(20) switch
        {
            0 => json[..random.Next(json.Length)],
            1 => json + " {",
            2 => "[" + json + "]",
            3 => json.Replace(":", " ", StringComparison.Ordinal),
            _ => json,
        };
    }

    /// <summary>
    /// Whether the route reads the record as JSON. It refuses one it cannot, and the runtime then drops
    /// every signal's dead letter for it: what a left-out signal would have said of it does not matter.
    /// </summary>
    private static bool IsJson(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static string Property(string name, string value) => $"\"{name}\":{value}";

    private static string Quote(string text) => $"\"{text}\"";

    private sealed class FakeClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
