using System.Collections.Immutable;
using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

public class RawTableTests
{
    [Fact]
    public void Rows_from_a_raw_table_get_the_same_checks_as_json_events()
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        ImmutableArray<FieldDefinition> archive =
        [
            new(StandardColumns.EventId, WeftType.String), new(StandardColumns.UserId, WeftType.Int64), new(StandardColumns.EventType, WeftType.String),
            new(StandardColumns.EventTime, WeftType.Timestamp), new(StandardColumns.IngestTime, WeftType.Timestamp),
            new("item_id", WeftType.Int64), new("unrelated", WeftType.String),
        ];
        var table = TestSignals.Batch(archive,
        [
            ["ok", 1L, "save", TestSignals.Minute(1), TestSignals.Minute(2), 3L, "x"],
            ["no-user", null, "save", TestSignals.Minute(1), TestSignals.Minute(2), 3L, null],
            ["no-item", 1L, "save", TestSignals.Minute(1), TestSignals.Minute(2), null, null],
            ["future", 1L, "save", Timestamps.ToMicros(DateTimeOffset.UnixEpoch.AddYears(100)), TestSignals.Minute(2), 3L, null],
            ["seconds", 1L, "save", 1_764_547_200L, TestSignals.Minute(2), 3L, null],
            ["other", 1L, "search", TestSignals.Minute(1), TestSignals.Minute(2), null, null],
            ["no-ingest", 2L, "click", TestSignals.Minute(5), null, 4L, null],
            ["ingest-future", 1L, "save", TestSignals.Minute(1), Timestamps.ToMicros(DateTimeOffset.UnixEpoch.AddYears(100)), 3L, null],
            ["ingest-ms", 1L, "save", TestSignals.Minute(1), 1_764_547_200_000L, 3L, null],
            ["ahead-of-ingest", 1L, "save", TestSignals.Minute(1), TestSignals.Minute(1) - (2 * 86_400_000_000L), 3L, null],
        ]);
        var now = new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);
        var parser = new RawEventParser(signal, new FakeTimeProvider(now));

        var result = parser.ParseTable(table, "archive");

        result.SkippedOtherTypes.Should().Be(1);
        result.DeadLetters.Select(d => (d.EventId, d.Reason, d.Source)).Should().BeEquivalentTo(new[]
        {
            ("no-user", "missing user_id", "archive#1"),
            ("no-item", "missing required attribute 'item_id' of save", "archive#2"),
            ("future", "event_time 2070-01-01T00:00:00.000000Z is more than 1d in the future", "archive#3"),
            ("seconds", "event_time 1970-01-01T00:29:24.547200Z is before 1971-01-01T00:00:00.000000Z: epoch seconds or milliseconds where microseconds belong? (send µs since the epoch, or ISO-8601 text)", "archive#4"),
            ("ingest-future", "ingest_time 2070-01-01T00:00:00.000000Z is more than 1d in the future", "archive#7"),
            ("ingest-ms", "ingest_time 1970-01-21T10:09:07.200000Z is before 1971-01-01T00:00:00.000000Z: epoch seconds or milliseconds where microseconds belong? (send µs since the epoch, or ISO-8601 text)", "archive#8"),
            ("ahead-of-ingest", $"event_time {Timestamps.Format(TestSignals.Minute(1))} is more than 1d after its ingest_time {Timestamps.Format(TestSignals.Minute(1) - (2 * 86_400_000_000L))}", "archive#9"),
        });
        result.Events.Schema.Should().Equal(signal.RawSchema);
        Enumerable.Range(0, result.Events.RowCount).Select(r => result.Events[StandardColumns.EventId].GetValue(r)).Should().Equal("ok", "no-ingest");
        result.Events[StandardColumns.IngestTime].GetValue(1).Should().Be(Timestamps.ToMicros(now));
    }
    /// <summary>
    /// Epoch seconds and milliseconds (JavaScript's Date.now()) sent where microseconds belong land in
    /// January 1970: they are dead letters saying so, not events silently too old to keep.
    /// </summary>
    [Fact]
    public void An_event_time_in_epoch_seconds_or_milliseconds_is_a_dead_letter_naming_the_likely_unit_mistake()
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var now = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var parser = new RawEventParser(signal, new FakeTimeProvider(now));
        static string Event(string id, string time) => $$"""{"event_id":"{{id}}","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3}""";
        static string Text(long v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
        long micros = Timestamps.ToMicros(now.AddHours(-1));
        var records = new[]
        {
            Event("ms", Text(micros / 1000)),
            Event("s", Text(micros / 1_000_000)),
            Event("us", Text(micros)),
            Event("iso", "\"2026-11-30T23:00:00Z\""),
            Event("last-of-1970", "\"1970-12-31T23:59:59.999999Z\""),
            Event("first-of-1971", "\"1971-01-01T00:00:00Z\""),
            Event("ingest-ms", Text(micros)).Replace("}", $",\"ingest_time\":{Text(micros / 1000)}}}", StringComparison.Ordinal),
            Event("ingest-far-ahead", Text(micros)).Replace("}", ",\"ingest_time\":\"9999-01-01T00:00:00Z\"}", StringComparison.Ordinal),
            Event("ingest-ok", Text(micros)).Replace("}", $",\"ingest_time\":{Text(micros + 1)}}}", StringComparison.Ordinal),
            Event("ingest-null", Text(micros)).Replace("}", ",\"ingest_time\":null}", StringComparison.Ordinal),
            Event("ahead-of-ingest", Text(micros)).Replace("}", $",\"ingest_time\":{Text(micros - 86_400_000_001)}}}", StringComparison.Ordinal),
            Event("a-day-after-ingest", Text(micros)).Replace("}", $",\"ingest_time\":{Text(micros - 86_400_000_000)}}}", StringComparison.Ordinal),
            "{\"ingest_time\":" + Text(micros + 2) + "," + Event("stamped-then-null", Text(micros))[1..].Replace("}", ",\"ingest_time\":null}", StringComparison.Ordinal),
        }.Select(j => new RawRecord(System.Text.Encoding.UTF8.GetBytes(j), "topic")).ToList();

        var result = parser.Parse(records);

        result.DeadLetters.Select(d => d.EventId).Should().Equal("ms", "s", "last-of-1970", "ingest-ms", "ingest-far-ahead", "ahead-of-ingest");
        result.DeadLetters[5].Reason.Should().Be($"event_time {Timestamps.Format(micros)} is more than 1d after its ingest_time {Timestamps.Format(micros - 86_400_000_001)}",
            "a batch run days later, reading the stream archive's stamp, refuses what the stream refused at that time");
        result.DeadLetters.Take(4).Should().OnlyContain(d => d.Reason.Contains("is before 1971-01-01T00:00:00.000000Z: epoch seconds or milliseconds where microseconds belong?"));
        result.DeadLetters[3].Reason.Should().StartWith("ingest_time ");
        result.DeadLetters[4].Reason.Should().Be("ingest_time 9999-01-01T00:00:00.000000Z is more than 1d in the future", "it would keep the event out of every read as served");
        Enumerable.Range(0, result.Events.RowCount).Select(r => result.Events[StandardColumns.EventId].GetValue(r)).Should().Equal("us", "iso", "first-of-1971", "ingest-ok", "ingest-null", "a-day-after-ingest", "stamped-then-null");
        result.Events[StandardColumns.IngestTime].GetValue(4).Should().Be(Timestamps.ToMicros(now), "a null ingest_time is not supplied: the parse's time");
        result.Events[StandardColumns.IngestTime].GetValue(6).Should().Be(micros + 2, "the stream archive's stamp stays when the producer's ingest_time is null");
    }

    /// <summary>
    /// A time in µs beyond what a date can hold (years before 1 or after 9999: any long a producer
    /// sends) is a dead letter like any other time out of bounds. Its reason used to throw while
    /// formatting the time, which failed the micro-batch: in the embedded log the record then stopped
    /// the stream at every start.
    /// </summary>
    [Fact]
    public void A_time_no_date_can_hold_is_a_dead_letter_not_an_exception()
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var now = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var parser = new RawEventParser(signal, new FakeTimeProvider(now));
        static string Event(string id, string time, string extra = "") => $$"""{"event_id":"{{id}}","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3{{extra}}}""";
        long micros = Timestamps.ToMicros(now.AddHours(-1));
        var records = new[]
        {
            Event("before-year-1", "-99999999999999999"),
            Event("after-9999", "999999999999999999"),
            Event("min", long.MinValue.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            Event("ingest-after-9999", micros.ToString(System.Globalization.CultureInfo.InvariantCulture), ",\"ingest_time\":999999999999999999"),
            Event("ok", micros.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        }.Select(j => new RawRecord(System.Text.Encoding.UTF8.GetBytes(j), "topic")).ToList();

        var result = parser.Parse(records);

        result.DeadLetters.Select(d => (d.EventId, d.Reason)).Should().Equal(
            ("before-year-1", "event_time -99999999999999999 µs since the epoch (outside years 1-9999) is before 1971-01-01T00:00:00.000000Z: epoch seconds or milliseconds where microseconds belong? (send µs since the epoch, or ISO-8601 text)"),
            ("after-9999", "event_time 999999999999999999 µs since the epoch (outside years 1-9999) is more than 1d in the future"),
            ("min", $"event_time {long.MinValue} µs since the epoch (outside years 1-9999) is before 1971-01-01T00:00:00.000000Z: epoch seconds or milliseconds where microseconds belong? (send µs since the epoch, or ISO-8601 text)"),
            ("ingest-after-9999", "ingest_time 999999999999999999 µs since the epoch (outside years 1-9999) is more than 1d in the future"));
        result.Events.RowCount.Should().Be(1);

        ImmutableArray<FieldDefinition> archive =
        [
            new(StandardColumns.EventId, WeftType.String), new(StandardColumns.UserId, WeftType.Int64), new(StandardColumns.EventType, WeftType.String),
            new(StandardColumns.EventTime, WeftType.Timestamp), new(StandardColumns.IngestTime, WeftType.Timestamp), new("item_id", WeftType.Int64),
        ];
        var table = TestSignals.Batch(archive, [["far", 1L, "save", long.MaxValue, micros, 3L]]);
        parser.ParseTable(table, "archive").DeadLetters.Single().Reason.Should().Be($"event_time {long.MaxValue} µs since the epoch (outside years 1-9999) is more than 1d in the future");
    }

    /// <summary>
    /// A string escape that decodes to an unpaired surrogate is valid JSON but not text, and an event_id
    /// with U+0000 cannot key a PostgreSQL row: both are dead letters naming what is wrong, the batch
    /// around them parses, and text the signal never reads does not matter.
    /// </summary>
    [Fact]
    public void Text_no_store_can_keep_is_a_dead_letter_and_the_events_around_it_parse()
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var now = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var parser = new RawEventParser(signal, new FakeTimeProvider(now));
        string time = "\"2026-11-30T23:00:00Z\"";
        var records = new[]
        {
            $$"""{"event_id":"before","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3}""",
            $$"""{"event_id":"x\ud800","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3}""",
            $$"""{"event_id":"text","user_id":1,"event_type":"click","event_time":{{time}},"item_id":3,"dwell_text":"ok \udc00"}""",
            $$"""{"event_id":"name","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3,"\ud800":1}""",
            $$"""{"event_id":"nul\u0000","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3}""",
            $$"""{"event_id":"mismatch-first","user_id":1,"event_type":"save","event_time":{{time}},"item_id":"no","\ud800":1}""",
            $$"""{"event_id":"other","user_id":1,"event_type":"search","event_time":{{time}},"query":"\ud800"}""",
            $$"""{"event_id":"undeclared","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3,"note":"\ud800"}""",
            $$"""{"event_id":"pair \ud83d\ude00 and \\ud800","user_id":1,"event_type":"click","event_time":{{time}},"item_id":3,"dwell_text":"\ud83d\ude00"}""",
        }.Select((j, i) => new RawRecord(System.Text.Encoding.UTF8.GetBytes(j), $"topic#{i}")).ToList();

        var result = parser.Parse(records);

        result.DeadLetters.Select(d => (d.Reason, d.Source)).Should().Equal(
            ("a string is not valid Unicode: unpaired surrogate escape \\ud800 at byte 15", "topic#1"),
            ("a string is not valid Unicode: unpaired surrogate escape \\udc00 at byte 118", "topic#2"),
            ("a string is not valid Unicode: unpaired surrogate escape \\ud800 at byte 101", "topic#3"),
            ("event_id contains U+0000, which the online store cannot key on", "topic#4"),
            ("attribute 'item_id' of save: expected int64, got \"no\"", "topic#5"));
        result.DeadLetters[1].EventId.Should().Be("text", "the event's id is readable");
        result.DeadLetters[1].Payload.Should().Contain("\\udc00", "the payload is kept as received");
        result.SkippedOtherTypes.Should().Be(1);
        Enumerable.Range(0, result.Events.RowCount).Select(r => result.Events[StandardColumns.EventId].GetValue(r))
            .Should().Equal("before", "undeclared", "pair \U0001F600 and \\ud800");
        result.Events["dwell_text"].GetValue(2).Should().Be("\U0001F600");
    }

    /// <summary>
    /// Bytes that are not UTF-8 inside a JSON string: the JSON reader does not check them as it reads and
    /// throws when it decodes the string. Before, that threw out of the parser and failed the batch; now,
    /// in a field the signal reads, they make a dead letter naming the byte, and elsewhere they do not
    /// matter, as with a lone surrogate escape.
    /// </summary>
    [Fact]
    public void Bytes_that_are_not_utf8_are_a_dead_letter_and_the_events_around_them_parse()
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var now = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var parser = new RawEventParser(signal, new FakeTimeProvider(now));
        string time = "\"2026-11-30T23:00:00Z\"";
        static byte[] Bytes(string json) => System.Text.Encoding.UTF8.GetBytes(json).Select(b => b == (byte)'~' ? (byte)0xFF : b).ToArray(); // '~' stands for 0xFF
        var records = new[]
        {
            $$"""{"event_id":"before","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3}""",
            $$"""{"event_id":"x~","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3}""",
            $$"""{"event_id":"text","user_id":1,"event_type":"click","event_time":{{time}},"item_id":3,"dwell_text":"ok ~"}""",
            $$"""{"event_id":"type","user_id":1,"event_type":"sa~ve","event_time":{{time}},"item_id":3}""",
            $$"""{"event_id":"both","user_id":1,"event_type":"click","event_time":{{time}},"item_id":3,"dwell_text":"\ud800 ~"}""",
            $$"""{"event_id":"other","user_id":1,"event_type":"search","event_time":{{time}},"query":"~"}""",
            $$"""{"event_id":"undeclared","user_id":1,"event_type":"save","event_time":{{time}},"item_id":3,"note":"~"}""",
        }.Select((j, i) => new RawRecord(Bytes(j), $"topic#{i}")).ToList();

        var result = parser.Parse(records);

        result.DeadLetters.Select(d => (d.Reason, d.Source)).Should().Equal(
            ("a string is not valid UTF-8: byte 0xFF at byte 15", "topic#1"),
            ("a string is not valid UTF-8: byte 0xFF at byte 118", "topic#2"),
            ("a string is not valid Unicode: unpaired surrogate escape \\ud800 at byte 115", "topic#4"));
        result.DeadLetters[1].EventId.Should().Be("text", "the event's id is readable");
        result.SkippedOtherTypes.Should().Be(2, "a type the signal does not include, read as 'sa?ve', is another signal's or the route's to judge");
        Enumerable.Range(0, result.Events.RowCount).Select(r => result.Events[StandardColumns.EventId].GetValue(r)).Should().Equal("before", "undeclared");
    }

    /// <summary>
    /// The online store keys on event_id, and PostgreSQL's B-tree row holds 2,704 bytes: an id past 1,024
    /// UTF-8 bytes is a dead letter (counted in bytes: 341 three-byte characters are kept, 342 are not).
    /// </summary>
    [Fact]
    public void An_event_id_past_1024_bytes_is_a_dead_letter()
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var parser = new RawEventParser(signal, new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero)));
        static string Event(string id) => $$"""{"event_id":"{{id}}","user_id":1,"event_type":"save","event_time":"2026-11-30T23:00:00Z","item_id":3}""";
        string[] ids = [new('a', 1024), new('b', 1025), new('\u20AC', 341), new('\u20AC', 342)];

        var result = parser.Parse(ids.Select(id => new RawRecord(System.Text.Encoding.UTF8.GetBytes(Event(id)), "topic")).ToList());

        result.DeadLetters.Select(d => (d.EventId, d.Reason)).Should().Equal(
            (ids[1], "event_id is longer than 1024 bytes (UTF-8), more than the online store can key on"),
            (ids[3], "event_id is longer than 1024 bytes (UTF-8), more than the online store can key on"));
        Enumerable.Range(0, result.Events.RowCount).Select(r => result.Events[StandardColumns.EventId].GetValue(r)).Should().Equal(ids[0], ids[2]);
    }

    /// <summary>A record may span lines (a Kafka value, a pretty-printed event): its bad byte is counted from its start, not from its last line's.</summary>
    [Theory]
    [InlineData("{\"event_id\":\"a\",\n \"user_id\":1,\n \"event_type\":\"save\",\n \"event_time\": x}")]
    [InlineData("{\"event_id\":\"a\",\"user_id\":1}\n{\"event_id\":\"b\"}")]
    [InlineData("{\"event_id\":\"a\",\"user_id\":1,\"event_type\":\"save\",\"event_time\": x}")]
    public void Malformed_JSON_is_reported_at_its_byte_counted_from_the_start_of_the_record(string json)
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var parser = new RawEventParser(signal, new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero)));
        var bytes = System.Text.Encoding.UTF8.GetBytes(json);
        // Where the bad byte is: the 'x', or the second object's '{'.
        int expected = (json.Contains(" x}", StringComparison.Ordinal) ? json.IndexOf('x', StringComparison.Ordinal) : json.LastIndexOf('{')) + 1;

        var result = parser.Parse([new RawRecord(bytes, "topic")]);

        result.DeadLetters.Should().ContainSingle().Which.Reason.Should().Be($"malformed JSON at byte {expected}");
    }
}
