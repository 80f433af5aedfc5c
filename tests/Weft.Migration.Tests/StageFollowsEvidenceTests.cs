using FluentAssertions;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>
/// Before any traffic moved the stage says what the evidence allows next: it must never name a step
/// (ab-tested: cut over) that the cutover gate, reading the same evidence, refuses.
/// </summary>
public sealed class StageFollowsEvidenceTests : LedgerTestBase
{
    [Fact]
    public async Task A_comparison_passed_under_a_new_definition_leaves_an_AB_test_of_the_old_one_unable_to_make_the_stage_ab_tested()
    {
        await AbTestedAsync();
        await using var changed = await MigrationStore.OpenExistingAsync(StorePath);
        changed.UseDefinition(Signal, "bbbbbbbbbbbbbbbb2222");

        var compared = await changed.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, true), "ana");

        // The gate reads the A/B test as the old definition's: the stage must agree with it.
        var cutover = () => changed.CutoverAsync(Signal, Click, "*", 10, null, "bo");
        await cutover.Should().ThrowAsync<MigrationGateException>();
        compared.Status.Stage.Should().Be(MigrationStage.Compared, "its A/B test tested the old definition's sequences, so abtest is the next step");
        (await changed.StatusAsync(Signal, Click)).Stage.Should().Be(MigrationStage.Compared);

        // A new A/B test under the definition now loaded is what makes it ab-tested again.
        (await changed.RecordAbTestAsync(Signal, Click, Evidence(MigrationStore.AbTestKind, true), "ana")).Status.Stage.Should().Be(MigrationStage.AbTested);
        (await cutover()).Entry.Overridden.Should().BeFalse();
    }

    [Fact]
    public async Task A_comparison_passed_under_the_definition_an_AB_test_was_gathered_under_keeps_the_stage_ab_tested()
    {
        await AbTestedAsync();

        (await CompareAsync(true)).Status.Stage.Should().Be(MigrationStage.AbTested);
        (await CompareAsync(false)).Status.Stage.Should().Be(MigrationStage.Shadow);
        (await CompareAsync(true)).Status.Stage.Should().Be(MigrationStage.Compared, "the A/B test predates the failed comparison, and the gate no longer takes it");
    }
}
