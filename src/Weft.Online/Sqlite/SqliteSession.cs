using Microsoft.Data.Sqlite;

namespace Weft.Online.Sqlite;

/// <summary>
/// One SQLite connection with its prepared statements. Used by one caller at a time: the store
/// hands the writer session out under its write lock and reader sessions from its pool.
/// </summary>
internal sealed class SqliteSession : IAsyncDisposable, IDisposable
{
    private const string Elements = "weft_online_elements";
    private const string Checkpoints = "weft_online_checkpoints";

    private const string SchemaSql = $"""
        CREATE TABLE IF NOT EXISTS {Elements} (
            signal      TEXT    NOT NULL,
            user_id     INTEGER NOT NULL,
            event_time  INTEGER NOT NULL,
            event_id    TEXT    NOT NULL,
            ingest_time INTEGER NOT NULL,
            payload     BLOB    NOT NULL,
            PRIMARY KEY (signal, user_id, event_time DESC, event_id)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS {Checkpoints} (
            consumer         TEXT    NOT NULL,
            source_partition TEXT    NOT NULL,
            last_offset      INTEGER NOT NULL,
            PRIMARY KEY (consumer, source_partition)
        ) WITHOUT ROWID;
        """;

    private const string InsertSql = $"""
        INSERT INTO {Elements} (signal, user_id, event_time, event_id, ingest_time, payload)
        VALUES ($signal, $user, $time, $id, $ingest, $payload)
        ON CONFLICT DO NOTHING
        """;

    private const string CheckpointSql = $"""
        INSERT INTO {Checkpoints} (consumer, source_partition, last_offset) VALUES ($consumer, $partition, $offset)
        ON CONFLICT (consumer, source_partition) DO UPDATE SET last_offset = max(last_offset, excluded.last_offset)
        """;

    // The primary key's order: one range scan, no sort.
    internal const string ReadSql = $"""
        SELECT event_time, event_id, ingest_time, payload FROM {Elements}
        WHERE signal = $signal AND user_id = $user AND event_time <= $asOf AND event_time >= $from AND ingest_time <= $knownAt
        ORDER BY event_time DESC, event_id
        LIMIT $limit
        """;

    // The user at the far end of the next chunk of rows: a trim step covers users [low, that user].
    private const string TrimBoundarySql = $"""
        SELECT user_id FROM {Elements} WHERE signal = $signal AND user_id >= $low
        ORDER BY user_id, event_time DESC, event_id LIMIT 1 OFFSET $rows
        """;

    private const string TrimRangeSql = $"""
        DELETE FROM {Elements}
        WHERE signal = $signal AND user_id BETWEEN $low AND $high AND (user_id, event_time, event_id) IN (
            SELECT user_id, event_time, event_id FROM (
                SELECT user_id, event_time, event_id,
                       row_number() OVER (PARTITION BY user_id ORDER BY event_time DESC, event_id) AS rn
                FROM {Elements} WHERE signal = $signal AND user_id BETWEEN $low AND $high)
            WHERE rn > $keep)
        """;

    private const string StatsSql = $"""
        SELECT count(DISTINCT user_id), count(*), max(event_time), max(ingest_time) FROM {Elements} WHERE signal = $signal
        """;

    private const string ReadCheckpointSql = $"SELECT source_partition, last_offset FROM {Checkpoints} WHERE consumer = $consumer";

    private readonly SqliteConnection _connection;
    private SqliteCommand? _insert;
    private SqliteCommand? _checkpoint;
    private SqliteCommand? _read;

    private SqliteSession(SqliteConnection connection) => _connection = connection;

    public static async Task<SqliteSession> OpenAsync(string connectionString, bool reader, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            // FULL: the WAL is synced at every commit, so an append is durable when it returns.
            await ExecuteAsync(connection, reader ? "PRAGMA synchronous = FULL; PRAGMA query_only = ON;" : "PRAGMA synchronous = FULL;", cancellationToken).ConfigureAwait(false);
            return new SqliteSession(connection);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task CreateSchemaAsync(CancellationToken cancellationToken)
    {
        using (var command = _connection.CreateCommand())
        {
            command.CommandText = "PRAGMA journal_mode = WAL";
            var mode = (string?)await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"the file cannot use the WAL journal (SQLite kept journal mode '{mode}').");
            }
        }

        await ExecuteAsync(_connection, SchemaSql, cancellationToken).ConfigureAwait(false);
    }

    public async Task<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        // BEGIN IMMEDIATE: take the write lock up front rather than upgrading mid-transaction.
        using var transaction = _connection.BeginTransaction(deferred: false);
        var added = 0;
        if (elements.Count > 0)
        {
            var insert = _insert ??= Prepare(InsertSql, ("$signal", SqliteType.Text), ("$user", SqliteType.Integer), ("$time", SqliteType.Integer),
                ("$id", SqliteType.Text), ("$ingest", SqliteType.Integer), ("$payload", SqliteType.Blob));
            insert.Transaction = transaction;
            var p = insert.Parameters;
            p[0].Value = signal;
            for (var i = 0; i < elements.Count; i++)
            {
                var element = elements[i];
                p[1].Value = element.UserId;
                p[2].Value = element.EventTimeMicros;
                p[3].Value = element.EventId;
                p[4].Value = element.IngestTimeMicros;
                p[5].Value = element.Payload;
                added += await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            insert.Transaction = null;
        }

        if (checkpoint is not null && checkpoint.Offsets.Count > 0)
        {
            var upsert = _checkpoint ??= Prepare(CheckpointSql, ("$consumer", SqliteType.Text), ("$partition", SqliteType.Text), ("$offset", SqliteType.Integer));
            upsert.Transaction = transaction;
            upsert.Parameters[0].Value = checkpoint.Consumer;
            foreach (var (partition, offset) in checkpoint.Offsets)
            {
                upsert.Parameters[1].Value = partition;
                upsert.Parameters[2].Value = offset;
                await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            upsert.Transaction = null;
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return added;
    }

    public async Task ReadAsync(string signal, long userId, OnlineReadOptions options, List<OnlineElement> into, SqliteTransaction? transaction, CancellationToken cancellationToken)
    {
        if (options.SelectsNothing)
        {
            return;
        }

        var read = _read ??= Prepare(ReadSql, ("$signal", SqliteType.Text), ("$user", SqliteType.Integer), ("$asOf", SqliteType.Integer),
            ("$from", SqliteType.Integer), ("$knownAt", SqliteType.Integer), ("$limit", SqliteType.Integer));
        read.Transaction = transaction;
        var p = read.Parameters;
        p[0].Value = signal;
        p[1].Value = userId;
        p[2].Value = options.AsOfMicros;
        p[3].Value = options.FromMicros;
        p[4].Value = options.KnownAtMicros;
        p[5].Value = options.Limit;
        var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                into.Add(new OnlineElement(userId, reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2), ReadBlob(reader, 3)));
            }
        }
    }

    public async Task<IReadOnlyDictionary<long, IReadOnlyList<OnlineElement>>> ReadManyAsync(string signal, IReadOnlyList<long> userIds, OnlineReadOptions options, CancellationToken cancellationToken)
    {
        var result = new Dictionary<long, IReadOnlyList<OnlineElement>>(userIds.Count);
        // One deferred (read) transaction: every user is read from the same snapshot.
        using var transaction = _connection.BeginTransaction(deferred: true);
        for (var i = 0; i < userIds.Count; i++)
        {
            var userId = userIds[i];
            if (!result.ContainsKey(userId))
            {
                var elements = new List<OnlineElement>();
                await ReadAsync(signal, userId, options, elements, transaction, cancellationToken).ConfigureAwait(false);
                result.Add(userId, elements);
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>The last user of the next <paramref name="rows"/> rows from user <paramref name="low"/> on, or null when fewer rows remain.</summary>
    public async Task<long?> TrimBoundaryAsync(string signal, long low, int rows, CancellationToken cancellationToken)
    {
        using var command = Command(TrimBoundarySql, ("$signal", signal), ("$low", low), ("$rows", rows));
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is long user ? user : null;
    }

    public async Task<long> TrimRangeAsync(string signal, long low, long high, int keep, CancellationToken cancellationToken)
    {
        using var command = Command(TrimRangeSql, ("$signal", signal), ("$low", low), ("$high", high), ("$keep", keep));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyDictionary<string, long>> ReadCheckpointAsync(string consumer, CancellationToken cancellationToken)
    {
        using var command = Command(ReadCheckpointSql, ("$consumer", consumer));
        var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                offsets.Add(reader.GetString(0), reader.GetInt64(1));
            }
        }

        return offsets;
    }

    public async Task<OnlineStoreStats> StatsAsync(string signal, CancellationToken cancellationToken)
    {
        using var command = Command(StatsSql, ("$signal", signal));
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return RowStats(reader);
        }
    }

    public void Dispose()
    {
        _insert?.Dispose();
        _checkpoint?.Dispose();
        _read?.Dispose();
        _connection.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private static OnlineStoreStats RowStats(SqliteDataReader reader) =>
        new(reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetInt64(3));

    private static byte[] ReadBlob(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? [] : (byte[])reader.GetValue(ordinal);

    private SqliteCommand Prepare(string sql, params ReadOnlySpan<(string Name, SqliteType Type)> parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, type) in parameters)
        {
            command.Parameters.Add(name, type);
        }

        command.Prepare();
        return command;
    }

    private SqliteCommand Command(string sql, params ReadOnlySpan<(string Name, object Value)> parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
