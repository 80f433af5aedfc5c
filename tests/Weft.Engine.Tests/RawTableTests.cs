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
        });
        result.Events.Schema.Should().Equal(signal.RawSchema);
        Enumerable.Range(0, result.Events.RowCount).Select(r => result.Events[StandardColumns.EventId].GetValue(r)).Should().Equal("ok", "no-ingest");
        result.Events[StandardColumns.IngestTime].GetValue(1).Should().Be(Timestamps.ToMicros(now));
    }
}
