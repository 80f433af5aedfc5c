using Weft.Online.Postgres;
using Weft.Online.Sqlite;

namespace Weft.Online;

/// <summary>Opens online stores. Each open creates the schema when it is missing.</summary>
public static class OnlineStores
{
    /// <summary>
    /// Elements per user the stream keeps for a signal of <paramref name="maxLength"/>: one more than a
    /// sequence holds, so a reader that takes them all can tell a full sequence from one that dropped
    /// an older event (provenance's <c>truncated</c>); with exactly max_length kept it could not.
    /// </summary>
    public static int KeptPerUser(int maxLength) => maxLength + 1;

    /// <summary>
    /// Opens (creating when missing) the embedded store in the SQLite file at <paramref name="path"/>:
    /// WAL journal, <c>synchronous=FULL</c> (an append is durable when it returns, a
    /// <see cref="OnlineDurability.Deferred"/> one at the next <see cref="IOnlineStore.SyncAsync"/>), one writer
    /// connection and a bounded pool of reader connections. The directory must exist.
    /// </summary>
    /// <exception cref="OnlineStoreException">The file cannot be opened or is not a Weft online store.</exception>
    public static Task<IOnlineStore> OpenSqliteAsync(string path, CancellationToken cancellationToken) =>
        SqliteOnlineStore.OpenAsync(path, OnlineStoreTuning.Default, cancellationToken);

    /// <summary>
    /// Opens the shared store in the PostgreSQL database that <paramref name="connectionString"/> names
    /// (an Npgsql connection string), creating its tables in the first schema of the search path when
    /// missing. Commands are auto-prepared unless the connection string sets <c>Max Auto Prepare</c>.
    /// </summary>
    /// <exception cref="OnlineStoreException">The server cannot be reached or the schema cannot be created.</exception>
    public static Task<IOnlineStore> OpenPostgresAsync(string connectionString, CancellationToken cancellationToken) =>
        PostgresOnlineStore.OpenAsync(connectionString, OnlineStoreTuning.Default, cancellationToken);

    internal static Task<IOnlineStore> OpenSqliteAsync(string path, OnlineStoreTuning tuning, CancellationToken cancellationToken) =>
        SqliteOnlineStore.OpenAsync(path, tuning, cancellationToken);

    internal static Task<IOnlineStore> OpenPostgresAsync(string connectionString, OnlineStoreTuning tuning, CancellationToken cancellationToken) =>
        PostgresOnlineStore.OpenAsync(connectionString, tuning, cancellationToken);
}

/// <summary>Sizes inside the stores; tests shrink them to reach the chunked paths with little data.</summary>
internal sealed record OnlineStoreTuning
{
    public static OnlineStoreTuning Default { get; } = new();

    /// <summary>SQLite: reader connections kept at most (reads beyond this wait for one).</summary>
    public int MaxReaders { get; init; } = Math.Max(4, Environment.ProcessorCount);

    /// <summary>Users a trim step deletes the excess of (SQLite) or rows it walks (PostgreSQL); each step is one short transaction.</summary>
    public int TrimChunkRows { get; init; } = 10_000;

    /// <summary>SQLite: runs below this many rows are in the lowest merge tier.</summary>
    public int MergeBaseRows { get; init; } = 16_384;

    /// <summary>SQLite: runs of one tier merged together (and so at most this many minus one per tier).</summary>
    public int MergeFanIn { get; init; } = 4;

    /// <summary>SQLite: elements a merge moves per write transaction (an append waits for at most one such chunk: ~1 µs an element).</summary>
    public int MergeChunkRows { get; init; } = 32_768;

    /// <summary>
    /// SQLite: how often at most the background checkpointer copies the WAL into the database file. The
    /// writer never checkpoints itself, so an append's commit writes and syncs its WAL frames only.
    /// </summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>PostgreSQL: elements per INSERT statement of an append (all of a slice's in one transaction).</summary>
    public int InsertChunkRows { get; init; } = 4_096;

    /// <summary>
    /// PostgreSQL: transactions an append of at least two chunks runs at once, each on a connection of
    /// its own with a slice of the users; the checkpoint follows them in one of its own.
    /// </summary>
    public int AppendConnections { get; init; } = 2;
}
