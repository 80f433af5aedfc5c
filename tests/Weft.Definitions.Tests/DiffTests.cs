using FluentAssertions;
using Weft.Definitions;
using Xunit;
using static Weft.Definitions.Expr;

namespace Weft.Definitions.Tests;

public class DiffTests
{
    private static SignalDefinition Build(Action<EventTypeBuilder> attrs, Action<ChainBuilder> chain, string[] element, int version = 1, TimeBucket bucket = TimeBucket.Hour)
    {
        var catalog = new DefinitionCatalog();
        var t = catalog.EventType("click");
        attrs(t);
        catalog.Signal("s", "x", version).Include(t, chain).Element(element).Bucket(bucket);
        return catalog.Build().Single();
    }

    private static readonly Action<EventTypeBuilder> Base = t => t.Attribute("item_id", WeftType.Int64).Attribute("dwell_ms", WeftType.Int32);

    [Fact]
    public void Adding_a_column_is_additive()
    {
        var old = Build(Base, _ => { }, ["item_id"]);
        var @new = Build(Base, _ => { }, ["item_id", "dwell_ms"]);
        var diff = SignalDiff.Compare(old, @new);
        diff.Overall.Should().Be(ChangeKind.Additive);
        diff.Changes.Should().ContainSingle(c => c.Path == "$.element.dwell_ms" && c.Reason.Contains("added"));
        diff.NeedsNewVersion.Should().BeFalse();
    }

    [Fact]
    public void Making_a_raw_attribute_required_is_a_compatible_change_with_its_reason()
    {
        var old = Build(Base, _ => { }, ["item_id"]);
        var @new = Build(t => t.Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32), _ => { }, ["item_id"]);

        var diff = SignalDiff.Compare(old, @new);

        diff.Overall.Should().Be(ChangeKind.Compatible);
        diff.Changes.Should().ContainSingle(c => c.Path == "$.event_types.click.raw_schema.item_id.nullable" && c.Reason.Contains("became required"));
    }

    /// <summary>A raw attribute added as required turns every event without it into a dead letter, the archived history included: not additive.</summary>
    [Theory]
    [InlineData(true, ChangeKind.Additive, "raw attribute 'campaign' added")]
    [InlineData(false, ChangeKind.Compatible, "added as required: events without it, archived ones included, are now dead letters")]
    public void Adding_a_raw_attribute_is_additive_only_when_it_may_be_absent(bool nullable, ChangeKind kind, string reason)
    {
        var old = Build(Base, _ => { }, ["item_id"]);
        var @new = Build(t => Base(t.Attribute("campaign", WeftType.String, nullable: nullable)), _ => { }, ["item_id"]);

        var diff = SignalDiff.Compare(old, @new);

        diff.Overall.Should().Be(kind);
        diff.Changes.Should().ContainSingle(c => c.Path == "$.event_types.click.raw_schema.campaign").Which.Reason.Should().Contain(reason);
    }

    /// <summary>A version change is named; a version that goes down is breaking, so diff exits 1 on it.</summary>
    [Fact]
    public void A_version_change_is_named_and_one_that_goes_down_is_breaking()
    {
        var v1 = Build(Base, _ => { }, ["item_id"]);
        var v2 = Build(Base, _ => { }, ["item_id"], version: 2);

        var up = SignalDiff.Compare(v1, v2);
        var down = SignalDiff.Compare(v2, v1);

        up.Overall.Should().Be(ChangeKind.Compatible);
        up.Changes.Should().ContainSingle().Which.Should().Match<SignalChange>(c => c.Path == "$.version" && c.Reason == "version 1 → 2");
        down.Overall.Should().Be(ChangeKind.Breaking);
        down.Changes.Should().ContainSingle().Which.Reason.Should().StartWith("version went down 2 → 1");
        down.NeedsNewVersion.Should().BeTrue();

        var columnAndVersion = SignalDiff.Compare(v1, Build(Base, _ => { }, ["item_id", "dwell_ms"], version: 2));
        columnAndVersion.Overall.Should().Be(ChangeKind.Additive, "a raised version names the change; it does not make an additive one compatible");
        columnAndVersion.Changes.Should().Contain(c => c.Path == "$.version" && c.Kind == ChangeKind.Compatible, "each change is listed with its class; `none` is no class");
    }

    [Fact]
    public void Reading_an_enrichment_sources_versions_from_another_column_is_a_compatible_change()
    {
        static SignalDefinition WithSource(string versionColumn)
        {
            var catalog = new DefinitionCatalog();
            var t = catalog.EventType("click").Attribute("item_id", WeftType.Int64);
            var items = catalog.EnrichmentSource("items", key: "item_id", keyType: WeftType.Int64).Column("category", WeftType.String).VersionedBy(versionColumn);
            catalog.Signal("s", "x").Include(t).Enrich(items, on: "item_id", "category").Element("item_id", "category");
            return catalog.Build().Single();
        }

        var diff = SignalDiff.Compare(WithSource("version_time"), WithSource("updated_at"));

        diff.Overall.Should().Be(ChangeKind.Compatible);
        diff.Changes.Should().ContainSingle(c => c.Path == "$.enrichment_sources.items.version_column" && c.Reason.Contains("'updated_at'"));
    }

    [Fact]
    public void Changing_a_column_type_is_breaking_and_needs_a_new_version()
    {
        var old = Build(Base, _ => { }, ["item_id", "dwell_ms"]);
        var @new = Build(Base, c => c.Cast("dwell_ms", WeftType.Float64), ["item_id", "dwell_ms"]);
        var diff = SignalDiff.Compare(old, @new);
        diff.Overall.Should().Be(ChangeKind.Breaking);
        diff.Changes.Should().Contain(c => c.Kind == ChangeKind.Breaking && c.Path == "$.element.dwell_ms.type" && c.Reason.Contains("int32 → float64"));
        diff.NeedsNewVersion.Should().BeTrue();

        var bumped = Build(Base, c => c.Cast("dwell_ms", WeftType.Float64), ["item_id", "dwell_ms"], version: 2);
        SignalDiff.Compare(old, bumped).NeedsNewVersion.Should().BeFalse();
    }

    [Fact]
    public void Changing_a_filter_is_compatible()
    {
        var old = Build(Base, c => c.Where(Col("dwell_ms") > 100), ["item_id"]);
        var @new = Build(Base, c => c.Where(Col("dwell_ms") > 200), ["item_id"]);
        var diff = SignalDiff.Compare(old, @new);
        diff.Overall.Should().Be(ChangeKind.Compatible);
        diff.Changes.Should().ContainSingle(c => c.Path == "$.event_types.click.steps");
    }

    [Fact]
    public void Removing_a_column_or_changing_the_bucket_is_breaking()
    {
        var old = Build(Base, _ => { }, ["item_id", "dwell_ms"]);
        SignalDiff.Compare(old, Build(Base, _ => { }, ["item_id"])).Overall.Should().Be(ChangeKind.Breaking);
        SignalDiff.Compare(old, Build(Base, _ => { }, ["item_id", "dwell_ms"], bucket: TimeBucket.Day)).Changes
            .Should().ContainSingle(c => c.Kind == ChangeKind.Breaking && c.Path == "$.bucket");
    }

    /// <summary>These changed the fingerprint, and diff said "none".</summary>
    [Fact]
    public void A_custom_steps_declared_columns_and_a_sources_key_name_are_changes()
    {
        SignalDefinition Signal(bool nullable, string key)
        {
            var catalog = new DefinitionCatalog();
            var t = catalog.EventType("click").Attribute("item_id", WeftType.Int64);
            var items = catalog.EnrichmentSource("items", key, WeftType.Int64).Column("category", WeftType.String);
            catalog.Signal("s", "x").Include(t, c => c.Custom("score", null, new FieldDefinition("score", WeftType.Float64, nullable)))
                .Enrich(items, "item_id", "category").Element("item_id", "category");
            return catalog.Build().Single();
        }

        var produces = SignalDiff.Compare(Signal(nullable: true, "item_id"), Signal(nullable: false, "item_id"));
        var key = SignalDiff.Compare(Signal(nullable: true, "item_id"), Signal(nullable: true, "id"));

        produces.Overall.Should().Be(ChangeKind.Compatible);
        produces.Changes.Should().ContainSingle().Which.Path.Should().Be("$.event_types.click.steps");
        key.Overall.Should().Be(ChangeKind.Compatible);
        key.Changes.Should().ContainSingle().Which.Path.Should().Be("$.enrichment_sources.items.key.name");
    }

    [Fact]
    public void Settings_are_named_as_the_JSON_names_them()
    {
        var old = Samples.Signal();
        var @new = Samples.Signal(s => s.Merge(MergePolicyKind.LastWriteWins).Late(LatePolicy.Drop).WithBudgets(Budgets.Default with { MaxElements = 1_000 }));

        var reasons = SignalDiff.Compare(old, @new).Changes.ToDictionary(c => c.Path, c => c.Reason);

        reasons["$.merge"].Should().StartWith("batch_seals_stream_fills → last_write_wins");
        reasons["$.late_policy"].Should().StartWith("accept → drop");
        reasons["$.budgets.max_elements"].Should().StartWith("16384 → 1000");
    }

    [Fact]
    public void Identical_signals_have_no_changes()
    {
        var a = Build(Base, c => c.Where(Col("dwell_ms") > 100), ["item_id"]);
        var b = Build(Base, c => c.Where(Col("dwell_ms") > 100), ["item_id"]);
        SignalDiff.Compare(a, b).Overall.Should().Be(ChangeKind.None);
    }
}
