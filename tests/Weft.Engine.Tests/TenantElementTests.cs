using FluentAssertions;
using Weft.Definitions;
using Xunit;
using static Weft.Definitions.Expr;

namespace Weft.Engine.Tests;

/// <summary>
/// `tenant` is a standard column (implicit, never declared) that the reader lets an element name, and
/// `weft compile` offers it among the columns an element may take. An element column `tenant` must then
/// carry the event's tenant, as an expression reading it does: it used to be null on every row, since
/// only the non-standard columns a chain produced reached the enrichment and the element.
/// </summary>
public class TenantElementTests
{
    [Fact]
    public async Task An_element_column_named_tenant_carries_the_events_tenant()
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false);
        weft.Signal("clicks", "t")
            .Include(click, c => c.Derive("tenant_seen", Coalesce(Col("tenant"), "none")))
            .Element("item_id", "tenant", "tenant_seen")
            .MaxLength(10)
            .Lookback(TimeSpan.FromDays(1));
        var definition = weft.Build().Single();
        var signal = CompiledSignal.Compile(definition, ExecutorRegistry.CreateDefault(), new Dictionary<string, EnrichmentTable>());
        var now = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var parser = new RawEventParser(signal, new FakeTimeProvider(now));
        var records = new[]
        {
            """{"event_id":"a","user_id":1,"event_type":"click","event_time":"2026-11-30T10:00:00Z","item_id":5,"tenant":"t"}""",
            """{"event_id":"b","user_id":1,"event_type":"click","event_time":"2026-11-30T10:01:00Z","item_id":6}""",
        }.Select(j => new RawRecord(System.Text.Encoding.UTF8.GetBytes(j), "topic")).ToList();
        var parsed = parser.Parse(records);
        parsed.DeadLetters.Should().BeEmpty();

        var run = signal.StartRun(new ExecutorContext(definition), new RunOptions());
        var enriched = await run.ProcessTableAsync(parsed.Events, CancellationToken.None);

        var rows = Enumerable.Range(0, enriched.RowCount)
            .Select(r => (Id: (string?)enriched[StandardColumns.EventId].GetValue(r), Tenant: (string?)enriched[StandardColumns.Tenant].GetValue(r), Seen: (string?)enriched["tenant_seen"].GetValue(r)))
            .OrderBy(r => r.Id, StringComparer.Ordinal)
            .ToList();
        rows.Should().Equal(("a", "t", "t"), ("b", null, "none"));
    }
}
