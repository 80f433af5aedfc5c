using FluentAssertions;
using Microsoft.Data.Sqlite;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>
/// Exposures a server buffered and could not write (the ledger busy past its timeout, or unwritable for
/// a while) are the split's users: lost, the sample-ratio check and the outcome test miss them.
/// </summary>
public sealed class ExposureFlushTests : LedgerTestBase
{
    [Fact]
    public async Task Exposures_the_ledger_refused_are_written_by_the_next_flush_once_it_takes_them()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 50, null, "bo");
        await using var router = new MigrationRouter(await MigrationStore.OpenExistingAsync(StorePath));
        const int users = 200;
        int servedByWeft = 0;
        for (long user = 0; user < users; user++)
        {
            var routes = await router.RouteAsync(Signal, [Click], "ranker", user);
            servedByWeft += routes.Decisions[0].ServedByWeft ? 1 : 0;
        }

        // The ledger cannot take them for a while: its exposures table is away.
        await SqlAsync("ALTER TABLE exposures RENAME TO exposures_away");
        var refused = () => router.FlushAsync();
        await refused.Should().ThrowAsync<IOException>();
        router.PendingExposures.Should().Be(users, "what the ledger refused is kept for the next flush");

        await SqlAsync("ALTER TABLE exposures_away RENAME TO exposures");
        (await router.FlushAsync()).Should().Be(users);

        var (weft, legacy) = await Store.ExposureCountsAsync(Signal, Click, "ranker", 50);
        weft.Should().Be(servedByWeft);
        legacy.Should().Be(users - servedByWeft);
    }

    /// <summary>
    /// While the ledger refuses flushes, the buffer holds at most its cap: routes past it drop their
    /// exposure and count it (the buffer grew without bound, and the cap was checked only on putting a
    /// failed batch back); a failed flush puts its batch back within the cap.
    /// </summary>
    [Fact]
    public async Task Exposures_past_the_buffers_cap_are_dropped_and_counted_while_the_ledger_refuses_them()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 50, null, "bo");
        await using var router = new MigrationRouter(await MigrationStore.OpenExistingAsync(StorePath)) { MaxPending = 50 };
        await SqlAsync("ALTER TABLE exposures RENAME TO exposures_away");
        for (long user = 0; user < 200; user++)
        {
            await router.RouteAsync(Signal, [Click], "ranker", user);
        }

        router.PendingExposures.Should().Be(50);
        router.DroppedExposures.Should().Be(150);
        var refused = () => router.FlushAsync();
        await refused.Should().ThrowAsync<IOException>();
        router.PendingExposures.Should().Be(50, "the failed batch is back, within the cap");
        router.DroppedExposures.Should().Be(150);

        await SqlAsync("ALTER TABLE exposures_away RENAME TO exposures");
        (await router.FlushAsync()).Should().Be(50);
        router.PendingExposures.Should().Be(0);
        var (weft, legacy) = await Store.ExposureCountsAsync(Signal, Click, "ranker", 50);
        (weft + legacy).Should().Be(50, "the first 50 users routed: the ones kept");
    }

    [Fact]
    public async Task A_router_whose_last_flush_the_ledger_refuses_reports_it_and_still_closes_the_ledger()
    {
        await AbTestedAsync();
        await Store.CutoverAsync(Signal, Click, "*", 50, null, "bo");
        var router = new MigrationRouter(await MigrationStore.OpenExistingAsync(StorePath));
        for (long user = 0; user < 20; user++)
        {
            await router.RouteAsync(Signal, [Click], "ranker", user);
        }

        await SqlAsync("ALTER TABLE exposures RENAME TO exposures_away");
        var dispose = async () => await router.DisposeAsync();
        await dispose.Should().ThrowAsync<IOException>();

        // Leaving WAL needs every other connection to the file closed: the test's own, and the router's.
        await Store.DisposeAsync();
        await using var connection = new SqliteConnection($"Data Source={StorePath};Pooling=False;Default Timeout=1");
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode = DELETE";
        (await command.ExecuteScalarAsync()).Should().Be("delete");
    }

    private async Task SqlAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={StorePath};Pooling=False");
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
