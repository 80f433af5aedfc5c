using System.Net;
using System.Net.Sockets;
using FluentAssertions;
using Npgsql;
using Weft.Online.Postgres;
using Xunit;

namespace Weft.Online.Tests;

/// <summary>The contract against the PostgreSQL store, each test in its own schema of the collection's server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresOnlineStoreTests(PostgresServer server) : OnlineStoreContract
{
    private string _connectionString = "";

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _connectionString = await server.CreateSchemaAsync();
    }

    private protected override Task<IOnlineStore> OpenStoreAsync(OnlineStoreTuning tuning) =>
        OnlineStores.OpenPostgresAsync(_connectionString, tuning, CancellationToken.None);

    protected override async Task BreakCheckpointWritesAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            CREATE FUNCTION weft_test_break() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'checkpoint writes are broken by the test'; END $$;
            CREATE TRIGGER weft_test_break BEFORE INSERT ON weft_online_checkpoints FOR EACH ROW EXECUTE FUNCTION weft_test_break();
            """, connection);
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Describe_names_host_port_and_database_without_the_password()
    {
        var settings = new NpgsqlConnectionStringBuilder(_connectionString) { Password = "s3cret-pw" };

        var store = await OnlineStores.OpenPostgresAsync(settings.ConnectionString, CancellationToken.None);
        await using (store)
        {
            store.Describe.Should().Be($"postgres:{settings.Host}:{settings.Port}/{settings.Database}");
        }
    }

    [Fact]
    public async Task Opening_an_unreachable_server_fails_naming_host_and_port_as_a_transient_failure()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        var open = () => OnlineStores.OpenPostgresAsync($"Host=127.0.0.1;Port={port};Username=weft;Password=s3cret-pw;Database=online;Timeout=5", CancellationToken.None);

        var failure = (await open.Should().ThrowAsync<OnlineStoreException>()).Which;
        failure.Message.Should().Contain($"127.0.0.1:{port}/online").And.NotContain("s3cret-pw");
        failure.Store.Should().Be($"postgres:127.0.0.1:{port}/online");
        failure.IsTransient.Should().BeTrue();
    }

    [Fact]
    public async Task A_read_is_one_index_range_scan_without_sorting()
    {
        await OpenAsync();
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        var sql = PostgresOnlineStore.ReadSql
            .Replace("$1", "'s'", StringComparison.Ordinal).Replace("$2", "1", StringComparison.Ordinal)
            .Replace("$3", "100", StringComparison.Ordinal).Replace("$4", "0", StringComparison.Ordinal)
            .Replace("$5", "100", StringComparison.Ordinal).Replace("$6", "500", StringComparison.Ordinal);
        await using var command = new NpgsqlCommand($"SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN {sql}", connection);

        var plan = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(0));
            }
        }

        var text = string.Join('\n', plan);
        text.Should().Contain("Index Scan using weft_online_elements_key").And.NotContain("Sort");
    }

    [Theory]
    [InlineData("40001", true)] // serialization failure
    [InlineData("40P01", true)] // deadlock detected
    [InlineData("08006", true)] // connection failure
    [InlineData("57P01", true)] // admin shutdown
    [InlineData("53300", true)] // too many connections
    [InlineData("23505", false)] // unique violation
    [InlineData("42P01", false)] // undefined table
    public void Serialization_failures_and_lost_connections_are_transient_and_bad_statements_are_not(string sqlState, bool transient)
    {
        PostgresErrors.IsTransient(new PostgresException("failure", "ERROR", "ERROR", sqlState)).Should().Be(transient);
    }

    [Fact]
    public void A_connection_reset_is_a_transient_failure()
    {
        PostgresErrors.IsTransient(new NpgsqlException("Exception while reading from stream", new IOException("Connection reset by peer"))).Should().BeTrue();
    }
}
