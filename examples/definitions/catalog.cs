// Weft definitions are plain C#: `weft compile examples/definitions --out signals` turns every
// signal declared here into canonical JSON with its SHA-256 fingerprint.
// `Col`, `Lit`, `If`, `Coalesce` come from Weft.Definitions.Expr (imported for definition files).

public sealed class HomeFeedDefinitions : IDefinitionModule
{
    public void Define(DefinitionCatalog weft)
    {
        // Event types: the raw schema of each (event_id, user_id, event_type, event_time and
        // ingest_time are implicit).
        var click = weft.EventType("click")
            .Attribute("item_id", WeftType.Int64, nullable: false)
            .Attribute("surface", WeftType.String)
            .Attribute("dwell_ms", WeftType.Int32);
        var save = weft.EventType("save")
            .Attribute("item_id", WeftType.Int64, nullable: false)
            .Attribute("board_id", WeftType.Int64);
        var search = weft.EventType("search")
            .Attribute("query", WeftType.String)
            .Attribute("surface", WeftType.String);

        // Enrichment source: item features, versioned (a correction is a new version).
        var items = weft.EnrichmentSource("items", key: "item_id", keyType: WeftType.Int64)
            .Column("embedding", WeftType.ListOf(ScalarKind.Float32))
            .Column("category", WeftType.String);

        // The signal: a dozen lines.
        weft.Signal("engagement", tenant: "home-feed")
            .Describe("Recent meaningful engagement for home-feed ranking")
            .Include(click, c => c
                .Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500)
                .Derive("long_dwell", Coalesce(Col("dwell_ms") >= 10_000, false))
                .Custom("hash_bucket", new Dictionary<string, string> { ["column"] = "surface", ["buckets"] = "64", ["output"] = "surface_bucket" },
                    new FieldDefinition("surface_bucket", WeftType.Int64)))
            .Include(save, s => s.Derive("long_dwell", true))
            .Enrich(items, on: "item_id", "embedding", "category")
            .Element("item_id", "surface", "surface_bucket", "dwell_ms", "long_dwell", "embedding", "category")
            .MaxLength(500)
            .Lookback(TimeSpan.FromDays(30))
            .Bucket(TimeBucket.Hour)
            .LateAllowance(TimeSpan.FromHours(6));

        weft.Signal("searches", tenant: "search")
            .Describe("Recent search queries, normalised")
            .Include(search, s => s
                .Where(Col("query").IsNotNull() & Col("query").Length() > 0)
                .Derive("query_norm", Col("query").Lower()))
            .Element("query_norm", "surface")
            .MaxLength(200)
            .Lookback(TimeSpan.FromDays(14))
            .Bucket(TimeBucket.Day)
            .LateAllowance(TimeSpan.FromHours(24));
    }
}
