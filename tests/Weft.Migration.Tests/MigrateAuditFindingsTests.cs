using FluentAssertions;
using Microsoft.Data.Sqlite;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>
/// Gates that passed on evidence which no longer stood, percents the routing reads otherwise than the
/// stage, and hand-edited ledgers read as if Weft had written them: found by a second audit of <c>weft migrate</c>.
/// </summary>
public sealed class MigrateAuditFindingsTests : LedgerTestBase
{
    [Fact]
    public async Task A_zero_percent_cutover_does_not_bring_back_an_AB_test_that_predates_a_failed_comparison()
    {
        await AbTestedAsync();
        await CompareAsync(false);
        (await CompareAsync(true)).Status.Stage.Should().Be(MigrationStage.Compared);
        var raise = () => Store.CutoverAsync(Signal, Click, "*", 10, null, "bo");
        (await raise.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("predates a comparison that failed since (#4)");

        var zero = await Store.CutoverAsync(Signal, Click, "*", 0, null, "bo");

        zero.Status.Stage.Should().Be(MigrationStage.Compared, "the A/B test does not stand, whatever the route");
        (await raise.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("predates a comparison that failed since");
    }

    [Fact]
    public async Task During_a_cutover_a_failed_comparison_then_a_passing_one_does_not_let_the_route_rise_on_the_old_AB_test()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 10, null, "bo");
        await CompareAsync(false);
        await CompareAsync(true);

        var raise = () => Store.CutoverAsync(Signal, Click, "*", 20, null, "bo");

        (await raise.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("A/B test (#3) predates a comparison that failed since (#4)");
        (await Store.RollbackAsync(Signal, Click, null, "incident", "bo")).Status.Stage.Should().Be(MigrationStage.Compared);
        await Store.RecordAbTestAsync(Signal, Click, Evidence(MigrationStore.AbTestKind, true), "ana");
        (await raise()).Status.Stage.Should().Be(MigrationStage.CuttingOver);
    }

    private Task<MigrationTransition> OutcomeAsync(string consumer, double percent, bool passed) =>
        Store.RecordOutcomeAsync(Signal, Click, consumer, new EvidenceInput(MigrationStore.OutcomeKind, passed, passed ? "clicks held" : "clicks fell", "{}", Percent: percent), "ana");

    [Fact]
    public async Task A_passing_outcome_test_of_an_older_smaller_split_does_not_clear_a_failure_at_the_split_in_force()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "ranker", 5, null, "bo");
        await OutcomeAsync("ranker", 5, passed: true);
        await Store.CutoverAsync(Signal, Click, "ranker", 10, null, "bo");
        var failed = await OutcomeAsync("ranker", 10, passed: false);

        var older = await OutcomeAsync("ranker", 5, passed: true);

        older.Status.Outcomes.Should().ContainSingle().Which.Id.Should().Be(failed.Entry.EvidenceId, "the failure at 10 % still holds the route");
        var raise = () => Store.CutoverAsync(Signal, Click, "ranker", 20, null, "bo");
        (await raise.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("consumer 'ranker' at 10 %").And.Contain("a later test of that split or a larger one must pass");
        var raiseDefault = () => Store.CutoverAsync(Signal, Click, "*", 10, null, "bo");
        (await raiseDefault.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("'ranker' at 10 %", "the default route serves consumers like ranker");
        (await OutcomeAsync("ranker", 10, passed: true)).Status.Outcomes.Single().Passed.Should().BeTrue();
        (await raise()).Entry.Overridden.Should().BeFalse();
    }

    [Theory]
    [InlineData(99.9999999999, 100.0, MigrationStage.CutOver)]
    [InlineData(0.0000000001, 0.0, MigrationStage.AbTested)]
    [InlineData(10.0100000001, 10.01, MigrationStage.CuttingOver)]
    public async Task A_percent_a_hair_off_a_bucket_isStored_as_the_bucket_routing_reads_so_the_stage_agrees(double asked, double stored, MigrationStage stage)
    {
        await AbTestedAsync();

        var moved = await Store.CutoverAsync(Signal, Click, "*", asked, null, "bo");

        moved.Status.Routes.Single().Percent.Should().Be(stored);
        moved.Entry.Percent.Should().Be(stored);
        moved.Status.Stage.Should().Be(stage);
        (await Store.StatusAsync(Signal, Click)).Routes.Single().Percent.Should().Be(stored);
    }

    [Fact]
    public async Task Legacy_is_deprecated_after_a_cutover_a_hair_below_100()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 99.9999999999, null, "bo");

        (await Store.DeprecateAsync(Signal, Click, TimeSpan.Zero, null, "bo")).Status.Stage.Should().Be(MigrationStage.LegacyDeprecated);
    }

    private async Task<T> SqlAsync<T>(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={StorePath};Pooling=False");
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (T)(await command.ExecuteScalarAsync())!;
    }

    private async Task<IOException> ReadingFailsAsync()
    {
        await using var reading = await MigrationStore.OpenForReadingAsync(StorePath);
        var status = () => reading.StatusAsync(Signal, Click);
        return (await status.Should().ThrowAsync<IOException>()).Which;
    }

    [Theory]
    [InlineData("UPDATE routes SET percent = 'abc'", "'abc' in routes.percent of row (engagement, click, *)")]
    [InlineData("UPDATE routes SET percent = 150", "150 in routes.percent of row (engagement, click, *) where a percent from 0 to 100")]
    [InlineData("UPDATE stages SET since_us = 'x'", "'x' in stages.since_us of row (engagement, click) where a time")]
    [InlineData("UPDATE stages SET stage = 'bogus'", "'bogus' in stages.stage of row (engagement, click) where a migration stage (not-started, shadow")]
    [InlineData("UPDATE evidence SET details = 'not json' WHERE id = 2", "'not json' in evidence.details of row #2 where JSON belongs")]
    [InlineData("UPDATE evidence SET passed = 'yes' WHERE id = 3", "'yes' in evidence.passed of row #3")]
    public async Task A_value_edited_into_a_shape_Weft_does_not_write_is_an_error_naming_table_row_and_column(string edit, string named)
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 100, null, "bo");
        await SqlAsync<long>(edit + "; SELECT changes()");

        (await ReadingFailsAsync()).Message.Should().Contain(StorePath).And.Contain(named).And.Contain("does not write");
        var deprecate = () => Store.DeprecateAsync(Signal, Click, TimeSpan.FromDays(7), null, "bo");
        await deprecate.Should().ThrowAsync<IOException>("a soak or a route read from a broken ledger is no gate");
    }

    /// <summary>
    /// A ledger from before percents moved in whole buckets may hold 33.333: it reads as the bucket routing
    /// always read it as, and the migration goes on (refusing it locked the event type out of every step).
    /// </summary>
    [Fact]
    public async Task A_percent_off_a_bucket_from_an_older_ledger_reads_as_its_bucket()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 30, null, "bo");
        (await SqlAsync<long>("UPDATE routes SET percent = 33.333; UPDATE audit SET percent = 33.333 WHERE percent IS NOT NULL; SELECT changes()")).Should().BePositive();

        await using (var reading = await MigrationStore.OpenForReadingAsync(StorePath))
        {
            var status = await reading.StatusAsync(Signal, Click);
            status.Stage.Should().Be(MigrationStage.CuttingOver);
            status.Routes.Should().ContainSingle().Which.Percent.Should().Be(MigrationRouting.OnBucket(33.333));
            (await reading.AuditAsync(Signal)).Should().Contain(e => e.Percent == MigrationRouting.OnBucket(33.333));
        }

        var raised = await Store.CutoverAsync(Signal, Click, "*", 100, null, "bo");
        raised.Status.Stage.Should().Be(MigrationStage.CutOver);
    }

    /// <summary>A failed outcome test of the default route measured every consumer on it: a consumer that takes a route of its own is held too.</summary>
    [Fact]
    public async Task A_failed_outcome_test_of_the_default_route_holds_a_consumer_that_takes_its_own_route()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 10, null, "bo");
        await OutcomeAsync("*", passed: false, percent: 10);

        var own = () => Store.CutoverAsync(Signal, Click, "ranker", 100, null, "bo");

        (await own.Should().ThrowAsync<MigrationGateException>()).Which.Message.Should().Contain("consumer '*'");
    }

    /// <summary>
    /// A definition changed since the evidence was gathered: a rollback lands on the stage the gate reads
    /// (shadow: compare again), not ab-tested, whose next step the gate then refused.
    /// </summary>
    [Fact]
    public async Task A_route_change_under_another_definition_lands_on_the_stage_the_gate_reads()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 10, null, "bo");
        await using var changed = await MigrationStore.OpenExistingAsync(StorePath);
        changed.UseDefinition(Signal, "bbbbbbbbbbbbbbbb2222");

        var back = await changed.RollbackAsync(Signal, Click, null, "regression", "bo");

        back.Status.Stage.Should().Be(MigrationStage.Shadow, "the comparison was gathered under the other definition");
    }

    [Fact]
    public async Task The_audit_log_edited_out_of_shape_is_an_error_naming_it()
    {
        await AbTestedAsync();
        await SqlAsync<long>("UPDATE audit SET percent = 'half' WHERE seq = 1; SELECT changes()");

        var log = () => Store.AuditAsync(Signal);

        (await log.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain("'half' in audit.percent of row #1");
    }

    [Fact]
    public async Task Reading_a_ledger_missing_a_table_is_an_error_naming_it_and_recreates_nothing()
    {
        await AbTestedAsync();
        await SqlAsync<long>("DROP TABLE audit; SELECT 0");

        var read = () => MigrationStore.OpenForReadingAsync(StorePath);
        var step = () => MigrationStore.OpenExistingAsync(StorePath);

        (await read.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain("has no table 'audit'").And.Contain(StorePath);
        (await step.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain("has no table 'audit'");
        (await SqlAsync<long>("SELECT count(*) FROM sqlite_master WHERE name = 'audit'")).Should().Be(0, "nothing recreated it empty");
    }

    [Fact]
    public async Task Reading_an_older_ledger_alters_nothing_and_reads_its_evidence()
    {
        await AbTestedAsync();
        await Store.DisposeAsync(); // the journal mode changes only with no other connection
        await SqlAsync<string>("ALTER TABLE evidence DROP COLUMN percent; PRAGMA journal_mode = DELETE");

        await using (var reading = await MigrationStore.OpenForReadingAsync(StorePath))
        {
            (await reading.StatusAsync(Signal, Click)).AbTest!.Passed.Should().BeTrue();
        }

        (await SqlAsync<long>("SELECT count(*) FROM pragma_table_info('evidence') WHERE name = 'percent'")).Should().Be(0, "reading adds no column");
        (await SqlAsync<string>("PRAGMA journal_mode")).Should().Be("delete", "reading converts nothing");
    }
}
