using FluentAssertions;
using Microsoft.Data.Sqlite;
using Weft.Online.Sqlite;
using Xunit;

namespace Weft.Online.Tests;

/// <summary>The contract against the embedded store, one SQLite file per test in its own temp directory.</summary>
public sealed class SqliteOnlineStoreTests : OnlineStoreContract
{
    private readonly string _directory = Directory.CreateTempSubdirectory("weft-online-sqlite-").FullName;

    private string DatabasePath => Path.Combine(_directory, "online.db");

    private protected override Task<IOnlineStore> OpenStoreAsync(OnlineStoreTuning tuning) =>
        OnlineStores.OpenSqliteAsync(DatabasePath, tuning, CancellationToken.None);

    protected override async Task BreakCheckpointWritesAsync()
    {
        await using var connection = await OpenRawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = """
            CREATE TRIGGER weft_test_break BEFORE INSERT ON weft_online_checkpoints
            BEGIN SELECT RAISE(ABORT, 'checkpoint writes are broken by the test'); END
            """;
        await command.ExecuteNonQueryAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task<SqliteConnection> OpenRawAsync()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString());
        await connection.OpenAsync();
        return connection;
    }

    [Fact]
    public async Task Describe_names_the_database_file()
    {
        var store = await OpenAsync();

        store.Describe.Should().Be("sqlite:" + DatabasePath);
    }

    [Fact]
    public async Task Opening_a_store_in_a_missing_directory_fails_naming_the_path_and_the_cause()
    {
        var path = Path.Combine(_directory, "missing", "online.db");

        var open = () => OnlineStores.OpenSqliteAsync(path, CancellationToken.None);

        var failure = (await open.Should().ThrowAsync<OnlineStoreException>()).Which;
        failure.Message.Should().Contain(path).And.Contain("does not exist");
        failure.IsTransient.Should().BeFalse();
    }

    [Fact]
    public async Task Opening_a_file_that_is_not_a_database_fails_naming_the_path_and_the_cause()
    {
        await File.WriteAllTextAsync(DatabasePath, new string('x', 4096));

        var open = () => OnlineStores.OpenSqliteAsync(DatabasePath, CancellationToken.None);

        (await open.Should().ThrowAsync<OnlineStoreException>()).Which.Message.Should().Contain(DatabasePath).And.Contain("not a database");
    }

    [Fact]
    public async Task The_file_uses_the_write_ahead_log_and_a_read_is_one_primary_key_range_scan_without_sorting()
    {
        await OpenAsync();
        await using var connection = await OpenRawAsync();
        await using var mode = connection.CreateCommand();
        mode.CommandText = "PRAGMA journal_mode";
        await using var plan = connection.CreateCommand();
        plan.CommandText = "EXPLAIN QUERY PLAN " + SqliteSession.ReadSql;
        foreach (var name in (string[])["$signal", "$user", "$asOf", "$from", "$knownAt", "$limit"])
        {
            plan.Parameters.AddWithValue(name, name == "$signal" ? "s" : 1L);
        }

        var details = new List<string>();
        await using (var reader = await plan.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                details.Add(reader.GetString(3));
            }
        }

        ((string?)await mode.ExecuteScalarAsync()).Should().Be("wal");
        details.Should().ContainSingle().Which.Should().StartWith("SEARCH weft_online_elements USING PRIMARY KEY (signal=? AND user_id=?");
    }

    [Theory]
    [InlineData(5, true)] // SQLITE_BUSY
    [InlineData(6, true)] // SQLITE_LOCKED
    [InlineData(261, true)] // SQLITE_BUSY_RECOVERY
    [InlineData(19, false)] // SQLITE_CONSTRAINT
    [InlineData(26, false)] // SQLITE_NOTADB
    public void Busy_and_locked_databases_are_transient_failures_and_others_are_not(int code, bool transient)
    {
        SqliteErrors.IsTransient(new SqliteException("failure", code)).Should().Be(transient);
    }
}
