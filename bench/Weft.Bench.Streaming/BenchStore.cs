using Npgsql;
using Weft.Online;

namespace Weft.Bench.Streaming;

/// <summary>
/// The online store a runtime mode writes to: by default a SQLite file in the run's directory; with
/// <c>--postgres CONNSTR</c> a PostgreSQL store in a schema of its own (<c>weft_bench_…</c>), created
/// for the run and dropped after it, so runs never see each other's rows.
/// </summary>
internal sealed class BenchStore : IAsyncDisposable
{
    private readonly string? _postgres;
    private readonly string? _schema;

    private BenchStore(IOnlineStore store, string? postgres, string? schema)
    {
        Store = store;
        _postgres = postgres;
        _schema = schema;
    }

    public IOnlineStore Store { get; }

    /// <summary>What the modes' descriptions name.</summary>
    public static string Kind(string? postgres) => postgres is null ? "SQLite" : "PostgreSQL";

    public static async Task<BenchStore> OpenAsync(string dir, string? postgres, CancellationToken cancellationToken)
    {
        if (postgres is null)
        {
            return new BenchStore(await OnlineStores.OpenSqliteAsync(Path.Combine(dir, "online.db"), cancellationToken), null, null);
        }

        var schema = $"weft_bench_{Guid.NewGuid():N}";
        await ExecuteAsync(postgres, $"CREATE SCHEMA {schema}", cancellationToken);
        try
        {
            var settings = new NpgsqlConnectionStringBuilder(postgres) { SearchPath = schema };
            return new BenchStore(await OnlineStores.OpenPostgresAsync(settings.ConnectionString, cancellationToken), postgres, schema);
        }
        catch
        {
            await ExecuteAsync(postgres, $"DROP SCHEMA {schema} CASCADE", CancellationToken.None);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        if (_postgres is not null)
        {
            await ExecuteAsync(_postgres, $"DROP SCHEMA {_schema} CASCADE", CancellationToken.None);
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
