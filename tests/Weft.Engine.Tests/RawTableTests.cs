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
        }.Select(j => new RawRecord(System.Text.Encoding.UTF8.GetBytes(j), "topic")).ToList();

        var result = parser.Parse(records);

        result.DeadLetters.Select(d => d.EventId).Should().Equal("ms", "s", "last-of-1970");
        result.DeadLetters.Should().OnlyContain(d => d.Reason.Contains("is before 1971-01-01T00:00:00.000000Z: epoch seconds or milliseconds where microseconds belong?"));
        Enumerable.Range(0, result.Events.RowCount).Select(r => result.Events[StandardColumns.EventId].GetValue(r)).Should().Equal("us", "iso", "first-of-1971");
    }
}
