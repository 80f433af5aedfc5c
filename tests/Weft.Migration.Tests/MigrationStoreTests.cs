using FluentAssertions;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>The lifecycle's gates, routes and audit log, on a real SQLite file.</summary>
public sealed class MigrationStoreTests : IAsyncLifetime
{
    private const string Signal = "engagement";
    private const string Click = "click";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "weft-migration-" + Guid.NewGuid().ToString("N"));
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 12, 1, 9, 0, 0, TimeSpan.Zero));
    private MigrationStore _store = null!;

    private string StorePath => Path.Combine(_dir, "migration.db");

    public async Task InitializeAsync() => _store = await MigrationStore.OpenAsync(StorePath, _clock);

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static EvidenceInput Evidence(string kind, bool passed) => new(kind, passed, passed ? $"{kind} passed" : $"{kind} failed", "{}");

    private async Task AdvanceToAbTestedAsync(string eventType = Click)
    {
        await _store.ShadowAsync(Signal, eventType, Evidence(MigrationStore.ShadowKind, true), null, "ana");
        await _store.RecordComparisonAsync(Signal, eventType, Evidence(MigrationStore.ComparisonKind, true), "ana");
        await _store.RecordAbTestAsync(Signal, eventType, Evidence(MigrationStore.AbTestKind, true), "ana");
    }

    [Fact]
    public async Task An_untouched_event_type_has_not_started_and_legacy_serves_it()
    {
        var status = await _store.StatusAsync(Signal, Click);
        status.Stage.Should().Be(MigrationStage.NotStarted);
        status.Routes.Should().BeEmpty();
        MigrationStore.ServedByWeft(status, "ranker", 42).Should().BeFalse();
    }

    [Fact]
    public async Task The_assembly_version_is_the_audit_line_of_the_latest_route_change_and_moves_only_with_routes()
    {
        string[] types = [Click, "save"];
        (await _store.AssemblyAsync(Signal, types)).AssemblyVersion.Should().Be(0, "no route has changed");
        await AdvanceToAbTestedAsync();
        (await _store.AssemblyAsync(Signal, types)).AssemblyVersion.Should().Be(0, "shadow, compare and abtest move no route");

        var cutover = await _store.CutoverAsync(Signal, Click, "ranker", 10, null, "bo");
        var (statuses, version) = await _store.AssemblyAsync(Signal, types);
        version.Should().Be(cutover.Entry.Seq);
        statuses[Click].Routes.Should().ContainSingle().Which.Percent.Should().Be(10);
        statuses["save"].Stage.Should().Be(MigrationStage.NotStarted);

        await _store.ShadowAsync(Signal, "save", Evidence(MigrationStore.ShadowKind, true), null, "ana");
        (await _store.AssemblyAsync(Signal, types)).AssemblyVersion.Should().Be(cutover.Entry.Seq, "another type's shadow moves no route");
        var rollback = await _store.RollbackAsync(Signal, Click, null, "regression", "bo");
        (await _store.AssemblyAsync(Signal, types)).AssemblyVersion.Should().Be(rollback.Entry.Seq).And.BeGreaterThan(cutover.Entry.Seq);
        (await _store.AssemblyAsync("another-signal", types)).AssemblyVersion.Should().Be(0, "versions are per signal");
    }

    [Fact]
    public async Task The_whole_walk_records_each_transition_with_its_evidence_and_actor()
    {
        await AdvanceToAbTestedAsync();
        (await _store.CutoverAsync(Signal, Click, "*", 25, null, "bo")).Status.Stage.Should().Be(MigrationStage.CuttingOver);
        (await _store.CutoverAsync(Signal, Click, "*", 100, null, "bo")).Status.Stage.Should().Be(MigrationStage.CutOver);
        _clock.Advance(TimeSpan.FromDays(8));
        var deprecated = await _store.DeprecateAsync(Signal, Click, TimeSpan.FromDays(7), null, "cy");
        deprecated.Status.Stage.Should().Be(MigrationStage.LegacyDeprecated);
        MigrationStore.ServedByWeft(deprecated.Status, "anyone", 7).Should().BeTrue();

        var audit = await _store.AuditAsync(Signal);
        audit.Select(a => (a.Action, a.From, a.To)).Should().Equal(
            ("shadow", MigrationStage.NotStarted, MigrationStage.Shadow),
            ("compare", MigrationStage.Shadow, MigrationStage.Compared),
            ("abtest", MigrationStage.Compared, MigrationStage.AbTested),
            ("cutover", MigrationStage.AbTested, MigrationStage.CuttingOver),
            ("cutover", MigrationStage.CuttingOver, MigrationStage.CutOver),
            ("deprecate", MigrationStage.CutOver, MigrationStage.LegacyDeprecated));
        audit.Select(a => a.Actor).Should().Equal("ana", "ana", "ana", "bo", "bo", "cy");
        audit.Select(a => a.Seq).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        audit.Should().OnlyContain(a => !a.Overridden);
        audit[3].Percent.Should().Be(25);
        audit[4].Consumer.Should().Be("*");

        // Each evidence-bearing transition points at the evidence it stored, of its own kind.
        foreach (var (entry, kind) in audit.Take(3).Zip((string[])[MigrationStore.ShadowKind, MigrationStore.ComparisonKind, MigrationStore.AbTestKind]))
        {
            var evidence = await _store.EvidenceAsync(entry.EvidenceId!.Value);
            evidence!.Kind.Should().Be(kind);
            evidence.Passed.Should().BeTrue();
        }

        audit[5].At.Should().Be(_clock.GetUtcNow());
    }

    [Fact]
    public async Task Raising_a_route_without_passed_evidence_is_refused_and_changes_nothing()
    {
        await _store.ShadowAsync(Signal, Click, Evidence(MigrationStore.ShadowKind, true), null, "ana");
        await _store.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, true), "ana");
        var before = await _store.AuditAsync(Signal);

        var refused = () => _store.CutoverAsync(Signal, Click, "*", 10, null, "bo");
        (await refused.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("no A/B test is stored").And.Contain("--override");

        (await _store.AuditAsync(Signal)).Should().HaveCount(before.Count);
        var status = await _store.StatusAsync(Signal, Click);
        status.Stage.Should().Be(MigrationStage.Compared);
        status.Routes.Should().BeEmpty();
    }

    [Fact]
    public async Task An_override_passes_the_gate_and_is_marked_in_the_audit_log_with_its_reason()
    {
        await _store.ShadowAsync(Signal, Click, Evidence(MigrationStore.ShadowKind, true), null, "ana");
        var forced = await _store.CutoverAsync(Signal, Click, "ranker", 5, "no A/B-able consumer for clicks", "bo");
        forced.Entry.Overridden.Should().BeTrue();
        forced.Entry.Reason.Should().StartWith("no A/B-able consumer for clicks [passed over: ").And.Contain("no comparison with legacy is stored", "the audit log says which gate the override passed over");
        forced.Status.Stage.Should().Be(MigrationStage.CuttingOver);

        // Lowering a route is never gated, so it is no override even with no evidence at all.
        var lowered = await _store.CutoverAsync(Signal, Click, "ranker", 1, null, "bo");
        lowered.Entry.Overridden.Should().BeFalse();
        lowered.Status.Routes.Single().Percent.Should().Be(1);
    }

    [Fact]
    public async Task A_failed_shadow_check_refuses_to_start_unless_overridden()
    {
        var refused = () => _store.ShadowAsync(Signal, Click, Evidence(MigrationStore.ShadowKind, false), null, "ana");
        (await refused.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("shadow failed");
        (await _store.StatusAsync(Signal, Click)).Stage.Should().Be(MigrationStage.NotStarted);
        (await _store.AuditAsync(Signal)).Should().BeEmpty();

        var forced = await _store.ShadowAsync(Signal, Click, Evidence(MigrationStore.ShadowKind, false), "legacy writes clicks elsewhere", "ana");
        forced.Status.Stage.Should().Be(MigrationStage.Shadow);
        forced.Entry.Overridden.Should().BeTrue();
        forced.Status.Shadow!.Passed.Should().BeFalse();
    }

    [Fact]
    public async Task Before_traffic_moves_the_stage_follows_the_latest_evidence()
    {
        await AdvanceToAbTestedAsync();
        (await _store.RecordAbTestAsync(Signal, Click, Evidence(MigrationStore.AbTestKind, false), "ana")).Status.Stage.Should().Be(MigrationStage.Compared);
        (await _store.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, false), "ana")).Status.Stage.Should().Be(MigrationStage.Shadow);

        var abTest = () => _store.RecordAbTestAsync(Signal, Click, Evidence(MigrationStore.AbTestKind, true), "ana");
        (await abTest.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("latest comparison").And.Contain("failed");
    }

    [Fact]
    public async Task A_failed_comparison_during_a_cutover_keeps_the_routes_but_blocks_raising_them()
    {
        await AdvanceToAbTestedAsync();
        await _store.CutoverAsync(Signal, Click, "*", 20, null, "bo");
        var failed = await _store.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, false), "ana");
        failed.Status.Stage.Should().Be(MigrationStage.CuttingOver);
        failed.Status.Routes.Single().Percent.Should().Be(20);

        var raise = () => _store.CutoverAsync(Signal, Click, "*", 50, null, "bo");
        (await raise.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("comparison").And.Contain("failed");
        (await _store.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, true), "ana")).Status.Stage.Should().Be(MigrationStage.CuttingOver);
        (await raise.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("predates a comparison that failed since", "the A/B test tested the sequences found wrong");
        await _store.RecordAbTestAsync(Signal, Click, Evidence(MigrationStore.AbTestKind, true), "ana");
        (await _store.CutoverAsync(Signal, Click, "*", 50, null, "bo")).Status.Routes.Single().Percent.Should().Be(50);
    }

    [Fact]
    public async Task Cut_over_needs_every_route_at_100_including_the_default_one()
    {
        await AdvanceToAbTestedAsync();
        (await _store.CutoverAsync(Signal, Click, "ranker", 100, null, "bo")).Status.Stage.Should().Be(MigrationStage.CuttingOver);
        (await _store.CutoverAsync(Signal, Click, "*", 100, null, "bo")).Status.Stage.Should().Be(MigrationStage.CutOver);
        (await _store.CutoverAsync(Signal, Click, "retrieval", 50, null, "bo")).Status.Stage.Should().Be(MigrationStage.CuttingOver);

        var status = await _store.StatusAsync(Signal, Click);
        var users = Enumerable.Range(0, 2000).Select(u => (long)u).ToList();
        users.Should().OnlyContain(u => MigrationStore.ServedByWeft(status, "ranker", u), "ranker's own route is at 100 %");
        users.Should().OnlyContain(u => MigrationStore.ServedByWeft(status, "search", u), "a consumer without a route follows the default one");
        users.Count(u => MigrationStore.ServedByWeft(status, "retrieval", u)).Should().BeInRange(900, 1100);
    }

    [Fact]
    public async Task Rollback_returns_every_route_to_legacy_at_once_and_needs_a_reason()
    {
        await AdvanceToAbTestedAsync();
        await _store.CutoverAsync(Signal, Click, "*", 100, null, "bo");
        await _store.CutoverAsync(Signal, Click, "ranker", 100, null, "bo");

        var noReason = () => _store.RollbackAsync(Signal, Click, null, " ", "bo");
        await noReason.Should().ThrowAsync<ArgumentException>();

        var rolledBack = await _store.RollbackAsync(Signal, Click, null, "ctr dropped 2 %", "bo");
        rolledBack.Status.Stage.Should().Be(MigrationStage.AbTested);
        rolledBack.Status.Routes.Should().OnlyContain(r => r.Percent == 0).And.HaveCount(2);
        rolledBack.Entry.Reason.Should().Be("ctr dropped 2 %");
        MigrationStore.ServedByWeft(rolledBack.Status, "ranker", 1).Should().BeFalse();

        var again = () => _store.RollbackAsync(Signal, Click, null, "again", "bo");
        (await again.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("reads it from legacy already");
    }

    [Fact]
    public async Task Rolling_back_one_consumer_leaves_the_others()
    {
        await AdvanceToAbTestedAsync();
        await _store.CutoverAsync(Signal, Click, "*", 100, null, "bo");
        await _store.CutoverAsync(Signal, Click, "ranker", 100, null, "bo");
        var rolledBack = await _store.RollbackAsync(Signal, Click, "ranker", "ranker regression", "bo");
        rolledBack.Status.Stage.Should().Be(MigrationStage.CuttingOver);
        rolledBack.Status.Routes.Should().BeEquivalentTo([new { Consumer = "*", Percent = 100.0 }, new { Consumer = "ranker", Percent = 0.0 }]);
        rolledBack.Entry.Consumer.Should().Be("ranker");
    }

    [Fact]
    public async Task Deprecation_waits_for_the_soak_and_then_rollback_is_impossible()
    {
        await AdvanceToAbTestedAsync();
        await _store.CutoverAsync(Signal, Click, "*", 100, null, "bo");
        _clock.Advance(TimeSpan.FromDays(2));
        var early = () => _store.DeprecateAsync(Signal, Click, TimeSpan.FromDays(7), null, "cy");
        (await early.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("2 days").And.Contain("7 days");

        _clock.Advance(TimeSpan.FromDays(5));
        (await _store.DeprecateAsync(Signal, Click, TimeSpan.FromDays(7), null, "cy")).Status.Stage.Should().Be(MigrationStage.LegacyDeprecated);
        var rollback = () => _store.RollbackAsync(Signal, Click, null, "too late", "cy");
        (await rollback.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("nothing to roll back to");
        var compare = () => _store.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, true), "cy");
        await compare.Should().ThrowAsync<MigrationGateException>();
    }

    [Fact]
    public async Task Deprecation_is_never_allowed_while_a_consumer_still_reads_legacy_even_with_an_override()
    {
        await AdvanceToAbTestedAsync();
        await _store.CutoverAsync(Signal, Click, "*", 90, null, "bo");
        var deprecate = () => _store.DeprecateAsync(Signal, Click, TimeSpan.Zero, "we are in a hurry", "cy");
        (await deprecate.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("not cut-over");
    }

    [Fact]
    public async Task Event_types_move_independently()
    {
        await AdvanceToAbTestedAsync(Click);
        await _store.CutoverAsync(Signal, Click, "*", 100, null, "bo");
        await _store.ShadowAsync(Signal, "save", Evidence(MigrationStore.ShadowKind, true), null, "ana");

        (await _store.StatusAsync(Signal, "save")).Stage.Should().Be(MigrationStage.Shadow);
        (await _store.StatusAsync(Signal, "save")).Routes.Should().BeEmpty();
        (await _store.StatusAsync("another-signal", Click)).Stage.Should().Be(MigrationStage.NotStarted);
        (await _store.EventTypesAsync(Signal)).Should().Equal(Click, "save");
        (await _store.AuditAsync(Signal, "save")).Should().ContainSingle();
    }

    [Fact]
    public async Task The_ledger_survives_a_reopen()
    {
        await AdvanceToAbTestedAsync();
        await _store.CutoverAsync(Signal, Click, "*", 30, null, "bo");
        await _store.DisposeAsync();
        _store = await MigrationStore.OpenAsync(StorePath, _clock);

        var status = await _store.StatusAsync(Signal, Click);
        status.Stage.Should().Be(MigrationStage.CuttingOver);
        status.Routes.Single().Percent.Should().Be(30);
        status.Comparison!.Passed.Should().BeTrue();
        (await _store.AuditAsync(Signal)).Should().HaveCount(4);
    }

    [Fact]
    public async Task Operators_racing_to_start_the_same_event_type_start_it_once()
    {
        // Two processes' worth of stores, each its own connection to the one file; each pauses between
        // reading the stage and writing until the other has read too (or 2 s have passed, as they must
        // with the write lock, which keeps the second from reading before the first has written): without
        // the lock both would read not-started every time.
        await using var first = await MigrationStore.OpenAsync(StorePath, _clock);
        await using var second = await MigrationStore.OpenAsync(StorePath, _clock);
        var bothRead = new CountdownEvent(2);
        first.AfterReadForTesting = second.AfterReadForTesting = () =>
        {
            bothRead.Signal();
            return Task.Run(() => bothRead.Wait(TimeSpan.FromSeconds(2)));
        };
        var attempts = await Task.WhenAll(new[] { first, second }.Select((store, i) => Task.Run(async () =>
        {
            try
            {
                await store.ShadowAsync(Signal, Click, Evidence(MigrationStore.ShadowKind, true), null, $"op{i}");
                return true;
            }
            catch (MigrationGateException)
            {
                return false;
            }
        })));

        attempts.Count(a => a).Should().Be(1);
        (await _store.AuditAsync(Signal)).Should().ContainSingle();
    }

    [Fact]
    public async Task One_store_shared_by_concurrent_callers_serializes_them()
    {
        await AdvanceToAbTestedAsync();
        var percents = Enumerable.Range(1, 40).Select(p => (double)p).ToList();
        await Task.WhenAll(percents.Select(p => Task.Run(() => _store.CutoverAsync(Signal, Click, $"consumer-{p}", p, null, "bo"))));
        var status = await _store.StatusAsync(Signal, Click);
        status.Routes.Select(r => r.Percent).Should().BeEquivalentTo(percents);
        (await _store.AuditAsync(Signal)).Should().HaveCount(3 + percents.Count);
    }

    [Fact]
    public async Task Exposures_count_each_user_once_per_route_percent()
    {
        var at = _clock.GetUtcNow();
        Exposure E(long user, bool weft, double percent = 10, string consumer = "ranker") => new(Signal, Click, consumer, percent, user, weft, at);
        await _store.RecordExposuresAsync([E(1, true), E(2, false), E(3, false)]);
        await _store.RecordExposuresAsync([E(1, true), E(2, false), E(4, true), E(1, true, percent: 20), E(5, false, consumer: "search")]);

        (await _store.ExposureCountsAsync(Signal, Click, "ranker", 10)).Should().Be((2L, 2L));
        (await _store.ExposureCountsAsync(Signal, Click, "ranker", 20)).Should().Be((1L, 0L));
        (await _store.ExposureCountsAsync(Signal, Click, "search", 10)).Should().Be((0L, 1L));
        (await _store.ExposureCountsAsync(Signal, "save", "ranker", 10)).Should().Be((0L, 0L));
    }

    [Fact]
    public async Task The_default_routes_exposures_are_those_of_every_consumer_without_a_route_of_its_own()
    {
        await AdvanceToAbTestedAsync();
        await _store.CutoverAsync(Signal, Click, "*", 10, null, "bo");
        await _store.CutoverAsync(Signal, Click, "search", 10, null, "bo");
        var at = _clock.GetUtcNow();
        Exposure E(long user, bool weft, string consumer) => new(Signal, Click, consumer, 10, user, weft, at);
        // ranker and feed follow the default route; search has its own. User 1 reached ranker and feed: one user.
        await _store.RecordExposuresAsync([E(1, true, "ranker"), E(1, true, "feed"), E(2, false, "ranker"), E(3, false, "feed"), E(4, true, "search"), E(5, false, "search")]);

        (await _store.ExposureCountsAsync(Signal, Click, "*", 10)).Should().Be((1L, 2L));
        (await _store.ExposureCountsAsync(Signal, Click, "ranker", 10)).Should().Be((1L, 1L));
        var (weft, legacy) = await _store.ExposedUsersAsync(Signal, Click, "*", 10);
        weft.Should().BeEquivalentTo([1L]);
        legacy.Should().BeEquivalentTo([2L, 3L]);
        (await _store.ExposedUsersAsync(Signal, Click, "search", 10)).Legacy.Should().BeEquivalentTo([5L]);
    }

    [Fact]
    public async Task A_failed_online_outcome_blocks_raising_that_consumers_route_and_the_default_one_until_one_passes()
    {
        await AdvanceToAbTestedAsync();
        var early = () => _store.RecordOutcomeAsync(Signal, Click, "ranker", Evidence(MigrationStore.OutcomeKind, true), "ana");
        (await early.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("no online split");
        await _store.CutoverAsync(Signal, Click, "ranker", 10, null, "bo");
        await _store.CutoverAsync(Signal, Click, "search", 10, null, "bo");
        await _store.CutoverAsync(Signal, Click, "*", 5, null, "bo");

        var failed = await _store.RecordOutcomeAsync(Signal, Click, "ranker", Evidence(MigrationStore.OutcomeKind, false), "ana");
        failed.Status.Stage.Should().Be(MigrationStage.CuttingOver, "an outcome moves no stage");
        failed.Entry.Action.Should().Be("outcome");
        failed.Status.Outcomes.Should().ContainSingle().Which.Should().Match<MigrationEvidence>(o => o.Consumer == "ranker" && !o.Passed && o.Id == failed.Entry.EvidenceId);

        var raiseRanker = () => _store.CutoverAsync(Signal, Click, "ranker", 50, null, "bo");
        (await raiseRanker.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("consumer 'ranker'").And.Contain("outcome failed");
        var raiseDefault = () => _store.CutoverAsync(Signal, Click, "*", 50, null, "bo");
        await raiseDefault.Should().ThrowAsync<MigrationGateException>("the default route serves consumers like ranker");
        (await _store.CutoverAsync(Signal, Click, "search", 50, null, "bo")).Status.Routes.Single(r => r.Consumer == "search").Percent.Should().Be(50, "search's own outcome did not fail");
        (await _store.CutoverAsync(Signal, Click, "ranker", 5, null, "bo")).Entry.Overridden.Should().BeFalse("lowering a route is never gated");
        var blank = () => _store.CutoverAsync(Signal, Click, "ranker", 20, " ", "bo");
        (await blank.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("An override needs a reason");
        var forced = await _store.CutoverAsync(Signal, Click, "ranker", 20, "the metric's logging broke that week", "bo");
        forced.Entry.Overridden.Should().BeTrue();

        await _store.RecordOutcomeAsync(Signal, Click, "search", Evidence(MigrationStore.OutcomeKind, true), "ana");
        var passed = await _store.RecordOutcomeAsync(Signal, Click, "ranker", Evidence(MigrationStore.OutcomeKind, true), "ana");
        passed.Status.Outcomes.Select(o => (o.Consumer, o.Passed)).Should().Equal(("ranker", true), ("search", true));
        (await _store.CutoverAsync(Signal, Click, "ranker", 50, null, "bo")).Entry.Overridden.Should().BeFalse();
        (await _store.CutoverAsync(Signal, Click, "*", 50, null, "bo")).Entry.Overridden.Should().BeFalse();
    }

    [Fact]
    public async Task A_ledger_from_before_online_outcomes_gains_the_evidence_consumer_and_keeps_its_evidence()
    {
        string path = Path.Combine(_dir, "old.db");
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await connection.OpenAsync();
            using var create = connection.CreateCommand();
            create.CommandText = """
                CREATE TABLE evidence (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, signal TEXT NOT NULL, event_type TEXT NOT NULL, kind TEXT NOT NULL,
                    at_us INTEGER NOT NULL, passed INTEGER NOT NULL, summary TEXT NOT NULL, details TEXT NOT NULL);
                INSERT INTO evidence (signal, event_type, kind, at_us, passed, summary, details) VALUES ('engagement', 'click', 'comparison', 0, 1, 'old comparison', '{}');
                """;
            await create.ExecuteNonQueryAsync();
        }

        await using var store = await MigrationStore.OpenAsync(path, _clock);
        var old = await store.EvidenceAsync(1);
        old.Should().NotBeNull();
        old!.Summary.Should().Be("old comparison");
        old.Consumer.Should().BeNull();
        await store.ShadowAsync(Signal, Click, Evidence(MigrationStore.ShadowKind, true), null, "ana");
        (await store.StatusAsync(Signal, Click)).Comparison!.Summary.Should().Be("old comparison");
    }

    [Fact]
    public async Task A_folder_in_place_of_the_store_file_is_a_clear_error()
    {
        var folder = Path.Combine(_dir, "folder.db");
        Directory.CreateDirectory(folder);
        var open = () => MigrationStore.OpenAsync(folder);
        (await open.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain("is a folder");
    }

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
