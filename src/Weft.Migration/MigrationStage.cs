namespace Weft.Migration;

/// <summary>
/// Where one event type of a signal stands in its move off the legacy pipeline. Stages only advance
/// through gates (stored evidence, or a manual override with a reason); rollback moves back.
/// </summary>
public enum MigrationStage
{
    /// <summary>Legacy serves it; Weft has not been declared to run it in parallel.</summary>
    NotStarted,

    /// <summary>Weft produces it in parallel with legacy (shadow output, not served).</summary>
    Shadow,

    /// <summary>The latest two-tier comparison with legacy passed its gates.</summary>
    Compared,

    /// <summary>The latest A/B (offline replay equivalence) test on a consuming model passed.</summary>
    AbTested,

    /// <summary>Some consumers, or some share of users, read it from Weft.</summary>
    CuttingOver,

    /// <summary>Every consumer reads it from Weft; legacy still runs, so rollback is instant.</summary>
    CutOver,

    /// <summary>Legacy no longer produces it; Weft is the only source.</summary>
    LegacyDeprecated,
}

/// <summary>The stages' names on the command line, in the store and in JSON.</summary>
public static class MigrationStages
{
    public static string Name(MigrationStage stage) => stage switch
    {
        MigrationStage.NotStarted => "not-started",
        MigrationStage.Shadow => "shadow",
        MigrationStage.Compared => "compared",
        MigrationStage.AbTested => "ab-tested",
        MigrationStage.CuttingOver => "cutting-over",
        MigrationStage.CutOver => "cut-over",
        MigrationStage.LegacyDeprecated => "legacy-deprecated",
        _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, null),
    };

    public static MigrationStage Parse(string name)
    {
        foreach (var stage in Enum.GetValues<MigrationStage>())
        {
            if (Name(stage) == name)
            {
                return stage;
            }
        }

        throw new FormatException($"unknown migration stage '{name}'");
    }
}
