using Microsoft.Data.Sqlite;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>A fresh ledger in a folder of its own for each test, for the engagement signal's click type, and the steps to an A/B-tested type.</summary>
public abstract class LedgerTestBase : IAsyncLifetime
{
    protected const string Signal = "engagement";
    protected const string Click = "click";

    protected string Dir { get; } = Path.Combine(Path.GetTempPath(), "weft-ledger-" + Guid.NewGuid().ToString("N"));

    protected MigrationStore Store { get; private set; } = null!;

    protected string StorePath => Path.Combine(Dir, "migration.db");

    public async Task InitializeAsync()
    {
        Store = await MigrationStore.OpenAsync(StorePath);
        Store.UseDefinition(Signal, "aaaaaaaaaaaaaaaa1111");
    }

    public async Task DisposeAsync()
    {
        await Store.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(Dir, recursive: true);
    }

    protected static EvidenceInput Evidence(string kind, bool passed) => new(kind, passed, passed ? $"{kind} passed" : $"{kind} failed", "{}");

    protected Task<MigrationTransition> CompareAsync(bool passed) => Store.RecordComparisonAsync(Signal, Click, Evidence(MigrationStore.ComparisonKind, passed), "ana");

    protected async Task AbTestedAsync()
    {
        await Store.ShadowAsync(Signal, Click, Evidence(MigrationStore.ShadowKind, true), null, "ana");
        await CompareAsync(true);
        await Store.RecordAbTestAsync(Signal, Click, Evidence(MigrationStore.AbTestKind, true), "ana");
    }
}
