using System.Collections.Immutable;
using Weft.Definitions;
using static Weft.Definitions.Expr;

namespace Weft.Engine.Tests;

/// <summary>Shared fixtures: a signal exercising every built-in step, and helpers to build raw batches.</summary>
internal static class TestSignals
{
    public static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static long Minute(int m) => Timestamps.ToMicros(Epoch.AddMinutes(m));

    /// <summary>click: cast, filter, derive (with division), a custom step; save: derive; items enrichment.</summary>
    public static SignalDefinition Engagement(int maxLength = 5, int hotUserCap = 6, TimeSpan? lookback = null)
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_text", WeftType.String);
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        var items = weft.EnrichmentSource("items", "item_id", WeftType.Int64).Column("category", WeftType.String).Column("embedding", WeftType.ListOf(ScalarKind.Float32));
        weft.Signal("engagement", "t")
            .Include(click, c => c
                .Map("dwell_ms", "dwell_text", WeftType.Int32)
                .Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 100)
                .Derive("ratio", Lit(1000L) / Col("dwell_ms"))
                .Custom(PoisonExecutor.Name, null)
                .Derive("long", Coalesce(Col("dwell_ms") > 5000, false)))
            .Include(save, s => s.Derive("long", true))
            .Enrich(items, "item_id", "category", "embedding")
            .Element("item_id", "dwell_ms", "ratio", "long", "category", "embedding")
            .MaxLength(maxLength)
            .Lookback(lookback ?? TimeSpan.FromHours(3))
            .WithBudgets(Budgets.Default with { HotUserMaxEventsPerHour = hotUserCap });
        return weft.Build().Single();
    }

    public static ExecutorRegistry Registry()
    {
        var r = ExecutorRegistry.CreateDefault();
        r.Register(PoisonExecutor.Name, _ => new PoisonExecutor());
        return r;
    }

    /// <summary>Items 1..5, each with a first version at minute -60 and item 2 corrected at minute 30.</summary>
    public static EnrichmentTable Items(SignalDefinition signal)
    {
        var source = signal.EnrichmentSources.Single(s => s.Name == "items");
        var schema = EnrichmentTable.RowSchema(source);
        var rows = new List<object?[]>();
        for (long i = 1; i <= 5; i++)
        {
            rows.Add([i, Minute(-60), $"c{i}", new[] { i, -i, 0.5f * i }]);
        }

        rows.Add([2L, Minute(30), "c2-fixed", new[] { 20f, -20f, 10f }]);
        return EnrichmentTable.Build(source, Batch(schema, rows));
    }

    public static EventBatch Batch(ImmutableArray<FieldDefinition> schema, IReadOnlyList<object?[]> rows)
    {
        var columns = new Column[schema.Length];
        for (int c = 0; c < schema.Length; c++)
        {
            columns[c] = ColumnBuilder.Build(schema[c].Type, rows.Select(r => r[c]).ToList());
        }

        return new EventBatch(schema, columns);
    }

    /// <summary>A raw event row in <paramref name="signal"/>'s raw schema.</summary>
    public static object?[] Raw(CompiledSignal signal, string id, long user, string type, int minute, long? item = null, string? dwell = null, int? ingestMinute = null)
    {
        var row = new object?[signal.RawSchema.Length];
        void Set(string name, object? v) => row[signal.RawSchema.Select((f, i) => (f, i)).First(x => x.f.Name == name).i] = v;
        Set(StandardColumns.EventId, id);
        Set(StandardColumns.UserId, user);
        Set(StandardColumns.EventType, type);
        Set(StandardColumns.EventTime, Minute(minute));
        Set(StandardColumns.IngestTime, Minute(ingestMinute ?? minute));
        if (item is not null)
        {
            Set("item_id", item);
        }

        if (dwell is not null && signal.RawSchema.Any(f => f.Name == "dwell_text"))
        {
            Set("dwell_text", dwell);
        }

        return row;
    }
}

/// <summary>A custom executor that fails permanently on any batch containing item 6 (a poison event).</summary>
internal sealed class PoisonExecutor : IEventExecutor
{
    public const string Name = "poison_on_item_6";

    string IEventExecutor.Name => Name;

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => input;

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        var items = ((PrimitiveColumn<long>)batch["item_id"]).Values;
        if (items.Contains(6))
        {
            throw new InvalidOperationException("item 6 breaks this executor");
        }

        return ValueTask.FromResult(batch);
    }
}
