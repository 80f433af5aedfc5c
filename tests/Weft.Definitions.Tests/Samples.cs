using Weft.Definitions;
using static Weft.Definitions.Expr;

namespace Weft.Definitions.Tests;

internal static class Samples
{
    /// <summary>A catalog like the repo's example: two event types, an enrichment, derived columns.</summary>
    public static DefinitionCatalog Catalog(Action<SignalBuilder>? tweak = null, bool reverseDeclarations = false)
    {
        var weft = new DefinitionCatalog();
        EventTypeBuilder click, save;
        if (reverseDeclarations)
        {
            save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
            click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32).Attribute("surface", WeftType.String);
        }
        else
        {
            click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32).Attribute("surface", WeftType.String);
            save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        }

        var items = weft.EnrichmentSource("items", "item_id", WeftType.Int64).Column("embedding", WeftType.ListOf(ScalarKind.Float32)).Column("category", WeftType.String);
        var signal = weft.Signal("engagement", "home-feed");
        if (reverseDeclarations)
        {
            signal.Include(save, s => s.Derive("long_dwell", true));
            signal.Include(click, c => c.Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500).Derive("long_dwell", Coalesce(Col("dwell_ms") >= 10_000, false)));
        }
        else
        {
            signal.Include(click, c => c.Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500).Derive("long_dwell", Coalesce(Col("dwell_ms") >= 10_000, false)));
            signal.Include(save, s => s.Derive("long_dwell", true));
        }

        signal.Enrich(items, "item_id", "embedding", "category")
            .Element("item_id", "surface", "dwell_ms", "long_dwell", "embedding", "category")
            .MaxLength(500).Lookback(TimeSpan.FromDays(30));
        tweak?.Invoke(signal);
        return weft;
    }

    public static SignalDefinition Signal(Action<SignalBuilder>? tweak = null) => Catalog(tweak).Build().Single();

    public static string Json(SignalDefinition s) => System.Text.Encoding.UTF8.GetString(SignalJsonWriter.Write(s));
}
