using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// Timestamp text in raw events is ISO 8601 (signal-json.md): a form the framework's parser would
/// complete from the wall clock ("12:30" took today's date, "Jan 5" this year's) is mistyped, so the
/// stream and a batch run on another day read one event alike.
/// </summary>
public sealed class RawTimestampTextTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private static CompiledSignal Signal()
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("seen", WeftType.Timestamp).Attribute("whens", WeftType.ListOf(ScalarKind.Timestamp));
        weft.Signal("times", "t").Include(click).Element("seen").MaxLength(10).Lookback(TimeSpan.FromHours(1));
        return CompiledSignal.Compile(weft.Build().Single(), ExecutorRegistry.CreateDefault(), new Dictionary<string, EnrichmentTable>());
    }

    public static TheoryData<string> ClockDependent() => ["12:30", "12:30:00", "Jan 5", "March 1", "1 Mar 10:00", "10:00 PM"];

    [Theory]
    [MemberData(nameof(ClockDependent))]
    public void A_time_without_a_full_date_is_a_dead_letter_in_every_reading_path(string text)
    {
        var parser = new RawEventParser(Signal(), new FakeTimeProvider(Now));
        string quoted = JsonSerializer.Serialize(text);
        string[] events =
        [
            $$"""{"event_id":"time","user_id":1,"event_type":"click","event_time":{{quoted}}}""",
            $$"""{"event_id":"attr","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","seen":{{quoted}}}""",
            $$"""{"event_id":"nested","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","x":{"y":1},"seen":{{quoted}}}""",
            $$"""{"event_id":"escaped","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","seen":"{{$"\\u{(int)text[0]:x4}"}}{{quoted[2..^1]}}"}""",
            $$"""{"event_id":"list","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","whens":[{{quoted}}]}""",
        ];
        var result = parser.Parse(events.Select((e, i) => new RawRecord(Encoding.UTF8.GetBytes(e), $"t:{i}")).ToList());
        result.DeadLetters.Select(d => d.EventId).Should().Equal("time", "attr", "nested", "escaped", "list");
        result.DeadLetters.Should().OnlyContain(d => d.Stage == "parse" && d.Reason.Contains("expected timestamp") || d.Reason.Contains("expected list<timestamp>"));
        using var doc = JsonDocument.Parse(quoted);
        RawEventParser.TryRead(doc.RootElement, WeftType.Timestamp, out _).Should().BeFalse("JSON-lines tables read through it too");
    }

    [Theory]
    [InlineData("2026-03-01", "2026-03-01T00:00:00.000000Z")]
    [InlineData("2026-03-01 10:00:00Z", "2026-03-01T10:00:00.000000Z")]
    [InlineData("2026-03-01T10:00:00.1234567+01:00", "2026-03-01T09:00:00.123456Z")]
    [InlineData("2026-03-01T10:00", "2026-03-01T10:00:00.000000Z")]
    [InlineData("2024-02-29T23:59:59-00:30", "2024-03-01T00:29:59.000000Z")]
    [InlineData(" 2026-03-01T10:00:00Z ", "2026-03-01T10:00:00.000000Z")]
    public void Iso_8601_text_outside_the_common_shape_still_reads(string text, string expected)
    {
        var parser = new RawEventParser(Signal(), new FakeTimeProvider(Now));
        string quoted = JsonSerializer.Serialize(text);
        string[] events =
        [
            $$"""{"event_id":"flat","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","seen":{{quoted}}}""",
            $$"""{"event_id":"nested","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","x":{"y":1},"seen":{{quoted}}}""",
        ];
        var result = parser.Parse(events.Select((e, i) => new RawRecord(Encoding.UTF8.GetBytes(e), $"t:{i}")).ToList());
        result.DeadLetters.Should().BeEmpty();
        var seen = result.Events["seen"];
        Enumerable.Range(0, 2).Select(i => Timestamps.Format((long)seen.GetValue(i)!)).Should().Equal(expected, expected);
        using var doc = JsonDocument.Parse(quoted);
        RawEventParser.TryRead(doc.RootElement, WeftType.Timestamp, out var value).Should().BeTrue();
        Timestamps.Format((long)value!).Should().Be(expected);
    }

    /// <summary>
    /// A timestamp attribute in nanoseconds (or any number of µs past year 9999) has no date. It was
    /// taken as it came, and every later formatting of it threw (a cast to string, a served read's JSON).
    /// </summary>
    [Fact]
    public void A_timestamp_attribute_no_date_can_hold_is_a_dead_letter_in_every_reading_path()
    {
        var signal = Signal();
        var parser = new RawEventParser(signal, new FakeTimeProvider(Now));
        long nanos = Timestamps.ToMicros(Now) * 1000;
        string[] events =
        [
            $$"""{"event_id":"flat","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","seen":{{nanos}}}""",
            $$"""{"event_id":"nested","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","x":{"y":1},"seen":{{nanos}}}""",
            $$"""{"event_id":"list","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","whens":[1,{{nanos}}]}""",
            $$"""{"event_id":"min","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","seen":{{long.MinValue}}}""",
            $$"""{"event_id":"edges","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","seen":{{Timestamps.MaxMicros}},"whens":[{{Timestamps.MinMicros}}]}""",
        ];
        var result = parser.Parse(events.Select((e, i) => new RawRecord(Encoding.UTF8.GetBytes(e), $"t:{i}")).ToList());
        result.DeadLetters.Select(d => d.EventId).Should().Equal("flat", "nested", "list", "min");
        result.Events.RowCount.Should().Be(1);
        result.Events["seen"].GetValue(0).Should().Be(Timestamps.MaxMicros);
        using var doc = JsonDocument.Parse(nanos.ToString(System.Globalization.CultureInfo.InvariantCulture));
        RawEventParser.TryRead(doc.RootElement, WeftType.Timestamp, out _, dated: true).Should().BeFalse();

        // A raw table (Parquet archive) holds such a value typed already: the same refusal.
        var table = TestSignals.Batch(signal.RawSchema,
        [
            [.. signal.RawSchema.Select(f => f.Name switch
            {
                StandardColumns.EventId => (object?)"table", StandardColumns.UserId => 1L, StandardColumns.EventType => "click",
                StandardColumns.EventTime => Timestamps.ToMicros(Now.AddHours(-1)), "seen" => nanos, _ => null,
            })],
        ]);
        var fromTable = parser.ParseTable(table, "archive");
        fromTable.DeadLetters.Select(d => d.EventId).Should().Equal("table");
        fromTable.DeadLetters[0].Reason.Should().Contain("'seen'");
    }
    /// <summary>
    /// One value without a date gets one dead-letter reason, whether it came as JSON (the stream, a
    /// landing file) or typed in a table (a Parquet archive): the two paths named it differently.
    /// A value that is no timestamp at all keeps the JSON path's own reason.
    /// </summary>
    [Fact]
    public void A_timestamp_attribute_without_a_date_has_one_reason_from_JSON_and_from_a_table()
    {
        var signal = Signal();
        var parser = new RawEventParser(signal, new FakeTimeProvider(Now));
        long nanos = Timestamps.ToMicros(Now) * 1000;
        (string Id, long? Seen, long[]? Whens)[] cases = [("flat", nanos, null), ("min", long.MinValue, null), ("list", null, [1, nanos, -nanos]), ("list-late", null, [2, Timestamps.MaxMicros + 1])];
        static string Json(long[] values) => "[" + string.Join(",", values.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]";
        var lines = cases.Select(c => $$"""{"event_id":"{{c.Id}}","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z"{{(c.Seen is { } s ? $",\"seen\":{s}" : "")}}{{(c.Whens is { } w ? $",\"whens\":{Json(w)}" : "")}}}""").ToList();
        var fromJson = parser.Parse(lines.Select((e, i) => new RawRecord(Encoding.UTF8.GetBytes(e), $"t:{i}")).ToList());

        var table = TestSignals.Batch(signal.RawSchema,
        [
            .. cases.Select(c => signal.RawSchema.Select(f => f.Name switch
            {
                StandardColumns.EventId => (object?)c.Id, StandardColumns.UserId => 1L, StandardColumns.EventType => "click",
                StandardColumns.EventTime => Timestamps.ToMicros(new DateTimeOffset(2026, 3, 1, 10, 0, 0, TimeSpan.Zero)), "seen" => c.Seen, "whens" => c.Whens, _ => null,
            }).ToArray()),
        ]);
        var fromTable = parser.ParseTable(table, "archive");

        fromJson.DeadLetters.Select(d => d.EventId).Should().Equal(cases.Select(c => c.Id));
        fromTable.DeadLetters.Select(d => (d.EventId, d.Reason)).Should().Equal(fromJson.DeadLetters.Select(d => (d.EventId, d.Reason)));
        fromJson.DeadLetters[0].Reason.Should().Contain("'seen'").And.Contain(nanos.ToString(System.Globalization.CultureInfo.InvariantCulture));
        fromJson.DeadLetters[2].Reason.Should().Contain("'whens'").And.Contain(nanos.ToString(System.Globalization.CultureInfo.InvariantCulture), "the list's first element without a date");

        var notATime = parser.Parse([new RawRecord(Encoding.UTF8.GetBytes("""{"event_id":"text","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","whens":[1,"soon",99999999999999999999]}"""), "t")]);
        notATime.DeadLetters.Should().ContainSingle().Which.Reason.Should().Contain("expected").And.Contain("soon", "its first bad element is no instant at all");
    }
    /// <summary>
    /// Sub-µs digits are dropped as DuckDB drops them, before 1970 too: its µs floor (division toward
    /// zero moved 1969-12-31T23:59:59.9999999Z into 1970). Compared with DuckDB on random instants.
    /// </summary>
    [Fact]
    public async Task Timestamp_text_with_sub_microsecond_digits_reads_as_duckdb_reads_it()
    {
        var random = new Random(7);
        var texts = new List<string> { "1969-12-31T23:59:59.9999999", "1969-12-31T23:59:59.0000001", "1970-01-01T00:00:00.0000001", "0001-01-01T00:00:00.0000009", "9999-12-31T23:59:59.9999999" };
        for (int i = 0; i < 200; i++)
        {
            var at = new DateTime(1900, 1, 1).AddTicks((long)(random.NextDouble() * (new DateTime(2100, 1, 1) - new DateTime(1900, 1, 1)).Ticks));
            texts.Add(at.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", System.Globalization.CultureInfo.InvariantCulture));
        }

        var duck = (await Weft.Parquet.Tests.DuckDb.RunAsync(
            "SELECT i, epoch_us(t::TIMESTAMP)::BIGINT AS us FROM (VALUES " + string.Join(", ", texts.Select((t, i) => $"({i}, '{t}')")) + ") v(i, t) ORDER BY i"))[0];

        var parser = new RawEventParser(Signal(), new FakeTimeProvider(Now));
        var lines = texts.Select((t, i) => $$"""{"event_id":"e{{i}}","user_id":1,"event_type":"click","event_time":"2026-03-01T10:00:00Z","seen":"{{t}}Z"}""");
        var result = parser.Parse(lines.Select((e, i) => new RawRecord(Encoding.UTF8.GetBytes(e), $"t:{i}")).ToList());
        result.DeadLetters.Should().BeEmpty();
        var seen = result.Events["seen"];
        var differ = texts.Select((t, i) => (Text: t, Weft: (long)seen.GetValue(i)!, Duck: long.Parse(duck.Rows[i][1].ToString(), System.Globalization.CultureInfo.InvariantCulture)))
            .Where(r => r.Weft != r.Duck).Select(r => $"{r.Text}: {r.Weft} / {r.Duck}").ToList();
        differ.Should().BeEmpty();
    }
}
