using FluentAssertions;
using Microsoft.Data.Sqlite;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>
/// Gates that rested on evidence that no longer held, routes an incident could not lower, and a ledger
/// created or misread by commands that should not: found by an audit of <c>weft migrate</c>.
/// </summary>
public sealed class LedgerAuditFindingsTests : LedgerTestBase
{
    [Fact]
    public async Task Evidence_gathered_under_another_definition_holds_no_gate_until_gathered_again()
    {
        await AbTestedAsync();
        (await Store.StatusAsync(Signal, Click)).Comparison!.Fingerprint.Should().Be("aaaaaaaaaaaaaaaa1111", "evidence records the definition it tested");
        await using var changed = await MigrationStore.OpenExistingAsync(StorePath);
        changed.UseDefinition(Signal, "bbbbbbbbbbbbbbbb2222");

        var cutover = () => changed.CutoverAsync(Signal, Click, "*", 100, null, "bo");

        (await cutover.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should()
            .Contain("gathered under definition aaaaaaaaaaaa").And.Contain("runs bbbbbbbbbbbb now");
        await changed.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, true), "ana");
        (await cutover.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("the latest A/B test", "the A/B test is still the old definition's");
        await changed.RecordAbTestAsync(Signal, Click, Evidence(MigrationStore.AbTestKind, true), "ana");
        (await cutover()).Status.Stage.Should().Be(MigrationStage.CutOver);
        (await Store.CutoverAsync(Signal, Click, "*", 50, null, "bo")).Status.Routes.Should().ContainSingle().Which.Percent.Should().Be(50, "lowering is never gated");
    }

    [Fact]
    public async Task Evidence_from_a_ledger_before_fingerprints_still_holds()
    {
        await using (var old = await MigrationStore.OpenAsync(Path.Combine(Dir, "old.db")))
        {
            await old.ShadowAsync(Signal, Click, Evidence(MigrationStore.ShadowKind, true), null, "ana");
            await old.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, true), "ana");
            await old.RecordAbTestAsync(Signal, Click, Evidence(MigrationStore.AbTestKind, true), "ana");
        }

        await using var now = await MigrationStore.OpenExistingAsync(Path.Combine(Dir, "old.db"));
        now.UseDefinition(Signal, "cccccccccccccccc3333");

        (await now.CutoverAsync(Signal, Click, "ranker", 10, null, "bo")).Entry.Overridden.Should().BeFalse("no fingerprint was recorded, so none can differ");
    }

    [Fact]
    public async Task An_AB_test_that_predates_a_failed_comparison_holds_no_cutover_and_the_audit_names_the_evidence_a_cutover_rested_on()
    {
        await AbTestedAsync();
        await Store.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, false), "ana");
        await Store.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, true), "ana");

        var cutover = () => Store.CutoverAsync(Signal, Click, "*", 50, null, "bo");

        (await cutover.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("predates a comparison that failed since");
        var abtest = await Store.RecordAbTestAsync(Signal, Click, Evidence(MigrationStore.AbTestKind, true), "ana");
        var moved = await cutover();
        moved.Entry.EvidenceId.Should().Be(abtest.Entry.EvidenceId, "the cutover rested on that A/B test");
    }

    [Fact]
    public async Task A_consumer_following_the_default_route_can_be_lowered_and_rolled_back_alone_during_an_incident()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 100, null, "bo");
        await Store.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, false), "ana");

        var lowered = await Store.CutoverAsync(Signal, Click, "home-ranker", 50, null, "bo");
        lowered.Entry.Overridden.Should().BeFalse("50 % is lower than the 100 % home-ranker followed");
        var rolledBack = await Store.RollbackAsync(Signal, Click, "search-ranker", "incident 42", "bo");

        rolledBack.Status.Routes.Select(r => (r.Consumer, r.Percent)).Should().BeEquivalentTo(new[] { ("*", 100.0), ("home-ranker", 50.0), ("search-ranker", 0.0) });
        MigrationStore.ServedByWeft(rolledBack.Status, "search-ranker", 7).Should().BeFalse();
        rolledBack.Status.Stage.Should().Be(MigrationStage.CuttingOver);
        var again = () => Store.RollbackAsync(Signal, Click, "search-ranker", "incident 42", "bo");
        (await again.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("reads 'click' from legacy already");
    }

    [Theory]
    [InlineData(99.999)]
    [InlineData(0.001)]
    [InlineData(10.005)]
    public async Task A_percent_finer_than_a_user_bucket_is_refused(double percent)
    {
        await AbTestedAsync();

        var cutover = () => Store.CutoverAsync(Signal, Click, "*", percent, null, "bo");

        (await cutover.Should().ThrowAsync<ArgumentOutOfRangeException>()).Which.Message.Should().Contain("steps of 0.01 %");
        (await Store.CutoverAsync(Signal, Click, "*", 10.01, null, "bo")).Status.Routes.Single().Percent.Should().Be(10.01);
    }

    [Theory]
    [InlineData(" ")]
    [InlineData("")]
    public async Task A_transition_needs_an_actor_and_a_route_a_consumer(string blank)
    {
        await AbTestedAsync();

        var noActor = () => Store.CutoverAsync(Signal, Click, "*", 10, null, blank);
        var noConsumer = () => Store.CutoverAsync(Signal, Click, blank, 10, null, "bo");

        (await noActor.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("actor");
        (await noConsumer.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("needs a consumer");
    }

    [Fact]
    public async Task Reading_a_ledger_that_does_not_exist_creates_nothing_and_a_later_step_needs_it()
    {
        string missing = Path.Combine(Dir, "elsewhere", "migration.db");

        await using (var reading = await MigrationStore.OpenForReadingAsync(missing))
        {
            reading.Exists.Should().BeFalse();
            (await reading.StatusAsync(Signal, Click)).Stage.Should().Be(MigrationStage.NotStarted);
        }

        File.Exists(missing).Should().BeFalse("a read must not create the ledger a server would then route by");
        var open = () => MigrationStore.OpenExistingAsync(missing);
        (await open.Should().ThrowAsync<FileNotFoundException>()).Which.Message.Should().Contain(missing).And.Contain("weft migrate shadow");
    }

    [Fact]
    public async Task A_ledger_edited_out_of_shape_is_an_IO_error_naming_it_not_a_crash()
    {
        await AbTestedAsync();
        await using (var connection = new SqliteConnection($"Data Source={StorePath};Pooling=False"))
        {
            await connection.OpenAsync();
            using var edit = connection.CreateCommand();
            edit.CommandText = "UPDATE stages SET stage = 'cutover'";
            await edit.ExecuteNonQueryAsync();
        }

        var status = () => Store.StatusAsync(Signal, Click);

        (await status.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain(StorePath).And.Contain("'cutover' in stages.stage of row (engagement, click) where a migration stage");
    }
}
