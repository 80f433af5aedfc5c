using Weft.Definitions;
using static Weft.Definitions.Expr;

namespace Weft.Bench.Streaming;

/// <summary>
/// The streaming benchmarks' signal: clicks, saves and impressions with a dwell filter and a derived
/// flag, the work a typical signal does per event. Also compiled into <c>bench/Weft.Benchmarks</c>
/// (linked), so the stage-one micro-benchmark runs exactly this signal.
/// </summary>
internal static class BenchSignal
{
    public static SignalDefinition Create()
    {
        var weft = new DefinitionCatalog();
        var (click, save, impression) = EventTypes(weft);
        weft.Signal("clicks", tenant: "bench")
            .Include(click, ClickSteps)
            .Include(save, s => s.Derive("long_dwell", true))
            .Include(impression, s => s.Derive("long_dwell", false))
            .Element("item_id", "surface", "dwell_ms", "long_dwell")
            .MaxLength(500).Lookback(TimeSpan.FromDays(30)).Bucket(TimeBucket.Hour);
        return weft.Build().Single();
    }

    /// <summary>
    /// The same work as three signals of one event type each (<c>--signals per-type</c>): a deployment
    /// with several signals over one topic, where each record is some signals' and not the others'.
    /// </summary>
    public static IReadOnlyList<SignalDefinition> PerType()
    {
        var weft = new DefinitionCatalog();
        var (click, save, impression) = EventTypes(weft);
        weft.Signal("clicks", tenant: "bench").Include(click, ClickSteps).Element("item_id", "surface", "dwell_ms", "long_dwell")
            .MaxLength(500).Lookback(TimeSpan.FromDays(30)).Bucket(TimeBucket.Hour);
        weft.Signal("saves", tenant: "bench").Include(save).Element("item_id", "surface")
            .MaxLength(500).Lookback(TimeSpan.FromDays(30)).Bucket(TimeBucket.Hour);
        weft.Signal("impressions", tenant: "bench").Include(impression).Element("item_id", "surface")
            .MaxLength(500).Lookback(TimeSpan.FromDays(30)).Bucket(TimeBucket.Hour);
        return weft.Build();
    }

    private static (EventTypeBuilder Click, EventTypeBuilder Save, EventTypeBuilder Impression) EventTypes(DefinitionCatalog weft) => (
        weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("surface", WeftType.String).Attribute("dwell_ms", WeftType.Int32),
        weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("surface", WeftType.String),
        weft.EventType("impression").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("surface", WeftType.String));

    private static void ClickSteps(ChainBuilder c) =>
        c.Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500).Derive("long_dwell", Coalesce(Col("dwell_ms") >= 10_000, false));
}
