using System.Collections.Immutable;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Parquet.Tests;
using Xunit;
using static Weft.Definitions.Expr;

namespace Weft.Batch.Tests;

/// <summary>
/// Differential tests of the direct sequence build (<see cref="SequenceBuild"/>) against the enriched-table
/// path it replaces for snapshots: <c>weft batch</c> (<see cref="BatchJob"/>) then <see cref="EnrichedLake"/>
/// and <see cref="SequenceBuilder.Snapshot"/>, on random archives with duplicates, late deliveries, ties in
/// event time, re-sends of an id at another event time, ids whose UTF-8 and UTF-16 orders differ, sparse
/// user ids and hot users.
/// </summary>
public sealed class SequenceBuildTests
{
    public static TheoryData<int, Variant> Cases() => new()
    {
        { 1, new Variant() },
        { 2, new Variant { CutByIngest = true } },
        { 3, new Variant { MaxLength = 3, Lookback = TimeSpan.FromHours(30) } },
        { 4, new Variant { SparseUsers = true, Resends = true, MaxLength = 60 } },
        { 5, new Variant { OddIds = true, Resends = true, CutByIngest = true, MaxLength = 60 } },
        { 6, new Variant { HotUserCap = 6, Bucket = TimeBucket.Day } },
        { 7, new Variant { HotUserCap = 4, SparseUsers = true, OddIds = true, MaxLength = 5 } },
        { 8, new Variant { Derive = true, Resends = true, Bucket = TimeBucket.Day, CutByIngest = true } },
        { 9, new Variant { HashBucket = true, Derive = true, Resends = true } },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Sequence_build_equals_batch_then_snapshot(int seed, Variant variant)
    {
        using var world = await World(seed, variant);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        long from = BatchWorld.Start, to = BatchWorld.Start + (3 * BatchWorld.Day);
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", from, to), null, CancellationToken.None);

        long asOf = BatchWorld.Start + (2 * BatchWorld.Day) + (7 * BatchWorld.Hour);
        var cut = SequenceCut.For(env.Definition, asOf, variant.CutByIngest ? asOf - (5 * BatchWorld.Hour) : long.MaxValue);
        var lake = await EnrichedLake.OpenAsync(world.Config.EnrichedTable("engagement"), env.Definition, CancellationToken.None);
        var expected = SequenceBuilder.Snapshot(await lake.ReadAsync(cut.FromMicros, cut.AsOfMicros, CancellationToken.None), env.Definition, cut, env.Enrichments);

        var (actual, result) = await SequenceBuild.BuildAsync(env, new SequenceBuildRequest(from, to, cut) { UsersPerPart = 3, ElementsPerPart = 2 + (seed % 3 * 8), Parallelism = 2, EnrichmentsKnownAtMicros = cut.KnownAtMicros }, null, CancellationToken.None);

        expected.RowCount.Should().BeGreaterThan(3, "the test data must produce sequences");
        Describe(actual).Should().Equal(Describe(expected));
        result.Users.Should().Be(expected.RowCount);
        result.Elements.Should().Be(expected.Elements.RowCount);
        if (variant.HotUserCap is not null)
        {
            result.HotUserCapped.Should().BeGreaterThan(0, "the hot user must hit the cap");
        }
    }

    [Fact]
    public async Task Sequence_file_equals_the_snapshot_file_of_the_batch_path()
    {
        using var world = await World(21, new Variant { Resends = true, OddIds = true });
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        long from = BatchWorld.Start, to = BatchWorld.Start + (3 * BatchWorld.Day);
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", from, to), null, CancellationToken.None);
        var cut = SequenceCut.For(env.Definition, to, long.MaxValue);
        var lake = await EnrichedLake.OpenAsync(world.Config.EnrichedTable("engagement"), env.Definition, CancellationToken.None);
        var expected = SequenceBuilder.Snapshot(await lake.ReadAsync(cut.FromMicros, cut.AsOfMicros, CancellationToken.None), env.Definition, cut, env.Enrichments);
        string reference = Path.Combine(world.Root, "reference.parquet"), built = Path.Combine(world.Root, "built.parquet");
        var metadata = new Dictionary<string, string> { ["weft.signal"] = "engagement" };
        await SequenceFiles.WriteAsync(reference, expected, env.Definition, metadata, pad: null, nullable: null, CancellationToken.None);

        await SequenceBuild.WriteAsync(env, new SequenceBuildRequest(from, to, cut) { UsersPerPart = 4 }, built, metadata, null, CancellationToken.None);

        var duck = await DuckDb.RunAsync(
            $"SELECT count(*) FROM read_parquet({DuckDb.Quote(built)})",
            $"SELECT count(*) FROM (SELECT * FROM read_parquet({DuckDb.Quote(reference)}) EXCEPT ALL SELECT * FROM read_parquet({DuckDb.Quote(built)}))",
            $"SELECT count(*) FROM (SELECT * FROM read_parquet({DuckDb.Quote(built)}) EXCEPT ALL SELECT * FROM read_parquet({DuckDb.Quote(reference)}))");
        duck[0].Rows[0][0].GetString().Should().Be(expected.RowCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        duck[1].Rows[0][0].GetString().Should().Be("0");
        duck[2].Rows[0][0].GetString().Should().Be("0");
    }

    [Fact]
    public void A_signal_with_a_custom_executor_is_not_supported_but_the_bundled_hash_bucket_is()
    {
        var registry = ExecutorRegistry.CreateDefault();
        registry.Register("scramble", _ => new ProjectExecutor([])); // any executor Weft does not know the columns of
        SignalDefinition Hashed(string executor)
        {
            var weft = new DefinitionCatalog();
            var click = weft.EventType("click").Attribute("item_id", WeftType.Int64);
            weft.Signal("hashed", tenant: "t")
                .Include(click, c => c.Custom(executor, new Dictionary<string, string> { ["column"] = "item_id", ["buckets"] = "8", ["output"] = "bucket" }, new FieldDefinition("bucket", WeftType.Int64)))
                .Element("bucket").MaxLength(4);
            return weft.Build(registry.Contains).Single();
        }

        SequenceBuild.Unsupported(Hashed("scramble")).Should().Contain("custom executor");
        SequenceBuild.Unsupported(Hashed(HashBucketExecutor.ExecutorName)).Should().BeNull("hash_bucket reads its one column and adds its output, row for row");
        SequenceBuild.Unsupported(BatchWorld.Engagement()).Should().BeNull();
    }

    /// <summary>Per user: "user|truncated|element;element;…" with every sequence column of every element.</summary>
    /// <summary>
    /// An element may name the standard column <c>tenant</c>: the direct build (<c>weft snapshot
    /// --from-archive</c>) carries the event's tenant as the batch path then a snapshot does (it gave null).
    /// </summary>
    [Fact]
    public async Task Sequence_build_carries_a_tenant_element_as_batch_then_snapshot_does()
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32);
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        weft.Signal("engagement", tenant: "home-feed").Include(click).Include(save).Element("item_id", "tenant")
            .MaxLength(8).Lookback(TimeSpan.FromDays(2)).Bucket(TimeBucket.Hour).LateAllowance(TimeSpan.FromHours(6));
        using var world = await BatchWorld.CreateAsync(seed: 41, events: 300, users: 10, signal: weft.Build().Single());
        // The same events as JSONL, most of them with a tenant.
        var archive = Path.Combine(world.Root, "tenanted");
        Directory.CreateDirectory(archive);
        await File.WriteAllLinesAsync(Path.Combine(archive, "events.jsonl"), world.Events.Select((e, i) =>
            $$"""{"event_id":"{{e.EventId}}","user_id":{{e.UserId}},"event_type":"{{e.EventType}}","event_time":"{{BatchWorld.Iso(e.EventTime)}}","ingest_time":"{{BatchWorld.Iso(e.IngestTime)}}","item_id":{{e.ItemId ?? 0}}{{(i % 4 == 0 ? "" : $",\"tenant\":\"t{i % 3}\"")}}}"""));
        var env = await SignalEnvironment.LoadAsync(world.Config with { Archives = [new Weft.Engine.Configuration.TableLocation(archive, Weft.Engine.Configuration.TableFormat.Jsonl)] }, "engagement");
        long from = BatchWorld.Start, to = BatchWorld.Start + (3 * BatchWorld.Day);
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", from, to), null, CancellationToken.None);
        var cut = SequenceCut.For(env.Definition, to, long.MaxValue);
        var lake = await EnrichedLake.OpenAsync(world.Config.EnrichedTable("engagement"), env.Definition, CancellationToken.None);
        var expected = SequenceBuilder.Snapshot(await lake.ReadAsync(cut.FromMicros, cut.AsOfMicros, CancellationToken.None), env.Definition, cut, env.Enrichments);

        var (actual, _) = await SequenceBuild.BuildAsync(env, new SequenceBuildRequest(from, to, cut) { UsersPerPart = 3, Parallelism = 1 }, null, CancellationToken.None);

        var tenants = expected.Elements[StandardColumns.Tenant];
        Enumerable.Range(0, expected.Elements.RowCount).Count(i => !tenants.IsNull(i)).Should().BePositive("the batch path carries the tenant");
        Describe(actual).Should().Equal(Describe(expected));
    }

    private static List<string> Describe(SequenceTable table)
    {
        var result = new List<string>(table.RowCount);
        var elements = table.Elements;
        for (int row = 0; row < table.RowCount; row++)
        {
            var parts = new List<string>();
            for (int k = table.Offsets[row]; k < table.Offsets[row + 1]; k++)
            {
                parts.Add(string.Join(',', elements.Schema.Select((f, c) => ValueFormat.Format(elements.Columns[c].GetValue(k), f.Type))));
            }

            result.Add($"{table.Keys[StandardColumns.UserId].GetValue(row)}|{table.Truncated[row]}|{string.Join(';', parts)}");
        }

        return result;
    }

    private static async Task<BatchWorld> World(int seed, Variant variant)
    {
        var world = await BatchWorld.CreateAsync(seed, events: 600, users: 15, write: false, signal: Signal(variant));
        var rng = new Random(seed * 31);
        var events = world.Events;
        if (variant.HotUserCap is { } cap)
        {
            // A burst: user 1 clicks 3 * cap times within one hour, delivered in shuffled order.
            long hour = BatchWorld.Start + (30 * BatchWorld.Hour);
            for (int i = 0; i < 3 * cap; i++)
            {
                long t = hour + rng.Next(0, 3_600_000) * 1000L;
                events.Add(new RawEvent($"hot-{seed}-{i:00}", 1, "click", t, t + rng.Next(1, 100_000_000), rng.Next(1, 31), 600));
            }
        }

        if (variant.Resends)
        {
            // The same event_id sent again with another event_time (a day later): a corrupt re-send.
            for (int i = 0; i < 25; i++)
            {
                var e = events[rng.Next(events.Count)];
                long t = e.EventTime + ((rng.Next(2) == 0 ? 1 : -1) * BatchWorld.Day) + rng.Next(-3_600_000, 3_600_000);
                if (t >= BatchWorld.Start && t < BatchWorld.Start + (3 * BatchWorld.Day))
                {
                    events.Add(e with { EventTime = t, IngestTime = t + rng.Next(1, 5_000_000) });
                }
            }
        }

        if (variant.OddIds)
        {
            // Ids that sort differently as UTF-8 bytes and as UTF-16 code units, all at one event time of one user.
            string[] odd = ["x\uE000a", "x\U0001F600b", "x\uFFFDc", "x\U00010000", "x\u00E9", "x", "x\0", "\uE000", "\U0001F600"];
            long late = BatchWorld.Start + (2 * BatchWorld.Day) + (6 * BatchWorld.Hour);
            for (int i = 0; i < 6; i++)
            {
                long t = late + (rng.Next(0, 3_600_000) * 1000L);
                long user = rng.Next(1, 16);
                foreach (var id in odd)
                {
                    events.Add(new RawEvent($"{id}-{i}", user, "save", t, t - (7 * BatchWorld.Hour), rng.Next(1, 31), null));
                }
            }
        }

        if (variant.SparseUsers)
        {
            // User ids spread over the whole int64 range (the sparse grouping path).
            for (int i = 0; i < events.Count; i++)
            {
                events[i] = events[i] with { UserId = unchecked(events[i].UserId * (long)0x9E3779B97F4A7C15) };
            }
        }

        await world.WriteAsync();
        return world;
    }

    private static SignalDefinition Signal(Variant variant)
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32);
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        var items = weft.EnrichmentSource("items", key: "item_id", keyType: WeftType.Int64)
            .Column("embedding", WeftType.ListOf(ScalarKind.Float32)).Column("category", WeftType.String);
        string[] element = [.. (string[])["item_id", "dwell_ms", "embedding", "category"], .. variant.Derive ? ["long_dwell"] : Array.Empty<string>(), .. variant.HashBucket ? ["item_bucket"] : Array.Empty<string>()];
        var signal = weft.Signal("engagement", tenant: "home-feed")
            .Include(click, c =>
            {
                c.Where(Col("dwell_ms").IsNull() | Col("dwell_ms") >= 500);
                if (variant.Derive)
                {
                    c.Derive("long_dwell", Col("dwell_ms") >= 5000);
                }

                if (variant.HashBucket)
                {
                    c.Custom("hash_bucket", new Dictionary<string, string> { ["column"] = "item_id", ["buckets"] = "7", ["output"] = "item_bucket" },
                        new FieldDefinition("item_bucket", WeftType.Int64));
                }
            })
            .Include(save)
            .Enrich(items, on: "item_id", "embedding", "category")
            .Element(element)
            .MaxLength(variant.MaxLength).Lookback(variant.Lookback ?? TimeSpan.FromDays(2)).Bucket(variant.Bucket).LateAllowance(TimeSpan.FromHours(6));
        if (variant.HotUserCap is { } cap)
        {
            signal.WithBudgets(Budgets.Default with { HotUserMaxEventsPerHour = cap });
        }

        return weft.Build().Single();
    }

    /// <summary>What a case varies.</summary>
    public sealed record Variant
    {
        public bool CutByIngest { get; init; }

        public int MaxLength { get; init; } = 8;

        public TimeSpan? Lookback { get; init; }

        public TimeBucket Bucket { get; init; } = TimeBucket.Hour;

        public bool SparseUsers { get; init; }

        public bool Resends { get; init; }

        public bool OddIds { get; init; }

        /// <summary>Clicks go through the bundled hash_bucket executor too.</summary>
        public bool HashBucket { get; init; }

        public int? HotUserCap { get; init; }

        public bool Derive { get; init; }

        public override string ToString() =>
            string.Join(' ', new[]
            {
                CutByIngest ? "cut-by-ingest" : null, $"n={MaxLength}", Lookback is { } l ? $"lookback={l.TotalHours}h" : null, Bucket.ToString().ToLowerInvariant(),
                SparseUsers ? "sparse-users" : null, Resends ? "re-sends" : null, OddIds ? "odd-ids" : null, HotUserCap is { } c ? $"cap={c}" : null, Derive ? "derive" : null,
            }.Where(s => s is not null));
    }
}
