using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Weft.Online.Sqlite;

/// <summary>
/// One SQLite connection with its prepared statements. Used by one caller at a time: the store
/// hands the writer session out under its write lock and reader sessions from its pool.
/// </summary>
/// <remarks>
/// <para><b>Layout: sorted runs.</b> A per-user clustered table (key signal, user, time, id) makes
/// every commit dirty about one page per user it touches, and the WAL writes each dirty page whole:
/// on a table of a million rows that is kilobytes written per element and caps appends near
/// 30k elements/s. So each append is written as one <i>run</i>: its elements sorted by (user, time
/// descending, id) under a run number larger than every earlier one, which SQLite appends to the end
/// of the signal's key range (a few pages per commit). A read seeks the user in every run and merges;
/// the store merges runs in the background (<see cref="MergeChunkAsync"/>) so there are few.</para>
/// <para><b>Duplicates.</b> <c>weft_online_keys</c> holds every stored key ordered by event time, so
/// the idempotence check of a stream (whose events arrive roughly in time order) touches the newest
/// pages only; an element whose key is already there is dropped, so no two runs hold the same key.</para>
/// </remarks>
internal sealed class SqliteSession : IAsyncDisposable, IDisposable
{
    internal const string Rows = "weft_online_rows";
    internal const string Keys = "weft_online_keys";
    internal const string Runs = "weft_online_runs";
    private const string Meta = "weft_online_meta";
    private const string Checkpoints = "weft_online_checkpoints";
    private const string LegacyElements = "weft_online_elements";

    private const string SchemaSql = $"""
        CREATE TABLE IF NOT EXISTS {Rows} (
            signal      TEXT    NOT NULL,
            run         INTEGER NOT NULL,
            user_id     INTEGER NOT NULL,
            event_time  INTEGER NOT NULL,
            event_id    TEXT    NOT NULL,
            ingest_time INTEGER NOT NULL,
            payload     BLOB    NOT NULL,
            PRIMARY KEY (signal, run, user_id, event_time DESC, event_id)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS {Keys} (
            signal     TEXT    NOT NULL,
            event_time INTEGER NOT NULL,
            event_id   TEXT    NOT NULL,
            user_id    INTEGER NOT NULL,
            PRIMARY KEY (signal, event_time, event_id, user_id)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS {Runs} (
            signal TEXT    NOT NULL,
            run    INTEGER NOT NULL,
            rows   INTEGER NOT NULL,
            PRIMARY KEY (signal, run)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS {Meta} (
            name  TEXT    NOT NULL PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO {Meta} (name, value) VALUES ('last_run', 0) ON CONFLICT DO NOTHING;
        CREATE TABLE IF NOT EXISTS {Checkpoints} (
            consumer         TEXT    NOT NULL,
            source_partition TEXT    NOT NULL,
            last_offset      INTEGER NOT NULL,
            PRIMARY KEY (consumer, source_partition)
        ) WITHOUT ROWID;
        """;

    private const string InsertKeySql = $"INSERT INTO {Keys} (signal, event_time, event_id, user_id) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";

    private const string InsertRowSql = $"INSERT INTO {Rows} (signal, run, user_id, event_time, event_id, ingest_time, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

    private const string NextRunSql = $"UPDATE {Meta} SET value = value + 1 WHERE name = 'last_run' RETURNING value";

    private const string CheckpointSql = $"""
        INSERT INTO {Checkpoints} (consumer, source_partition, last_offset) VALUES ($consumer, $partition, $offset)
        ON CONFLICT (consumer, source_partition) DO UPDATE SET last_offset = max(last_offset, excluded.last_offset)
        """;

    internal const string RunsSql = $"SELECT run, rows FROM {Runs} WHERE signal = $signal ORDER BY run";

    // Every run of the signal, for statements that select by user across runs (a seek per run).
    private const string SignalRuns = $"run IN (SELECT run FROM {Runs} WHERE signal = $signal)";

    // A read: one primary-key seek per run (in SQLite, not a command per run), then one sort of the
    // user's rows in the window. One statement, so one snapshot: a merge moving the user's rows
    // between runs commits wholly before or wholly after it.
    internal const string ReadSql = $"""
        SELECT event_time, event_id, ingest_time, payload FROM {Rows}
        WHERE signal = $signal AND {SignalRuns} AND user_id = $user AND event_time <= $asOf AND event_time >= $from AND ingest_time <= $knownAt
        ORDER BY event_time DESC, event_id
        LIMIT $limit
        """;

    private const string OverKeepSql = $"SELECT user_id FROM {Rows} WHERE signal = $signal GROUP BY user_id HAVING count(*) > $keep ORDER BY user_id";

    private const string Excess = $"""
        SELECT event_time, event_id FROM {Rows} WHERE signal = $signal AND {SignalRuns} AND user_id = $user
        ORDER BY event_time DESC, event_id LIMIT -1 OFFSET $keep
        """;

    private const string TrimKeysSql = $"DELETE FROM {Keys} WHERE signal = $signal AND user_id = $user AND (event_time, event_id) IN ({Excess})";

    private const string TrimRowsSql = $"DELETE FROM {Rows} WHERE signal = $signal AND {SignalRuns} AND user_id = $user AND (event_time, event_id) IN ({Excess})";

    private const string RecountSql = $"""
        UPDATE {Runs} SET rows = (SELECT count(*) FROM {Rows} r WHERE r.signal = {Runs}.signal AND r.run = {Runs}.run) WHERE signal = $signal;
        DELETE FROM {Runs} WHERE signal = $signal AND rows = 0;
        """;

    private const string StatsSql = $"""
        SELECT count(DISTINCT user_id), count(*), max(event_time), max(ingest_time) FROM {Rows} WHERE signal = $signal
        """;

    private const string ReadCheckpointSql = $"SELECT source_partition, last_offset FROM {Checkpoints} WHERE consumer = $consumer";

    private readonly SqliteConnection _connection;
    private sqlite3_stmt? _insertKey;
    private sqlite3_stmt? _insertRow;
    private SqliteCommand? _checkpoint;
    private SqliteCommand? _runs;
    private SqliteCommand? _read;
    private int[] _order = [];

    private SqliteSession(SqliteConnection connection) => _connection = connection;

    public static async Task<SqliteSession> OpenAsync(string connectionString, bool reader, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            // FULL: the WAL is synced at every commit, so an append is durable when it returns. The
            // writer's larger page cache keeps the runs being merged and the newest keys in memory, and
            // it never checkpoints: copying the WAL into the database file (and syncing that) is the
            // store's background checkpointer's work, off the append's path.
            await ExecuteAsync(connection, reader
                ? "PRAGMA synchronous = FULL; PRAGMA query_only = ON;"
                : "PRAGMA synchronous = FULL; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 0;", cancellationToken).ConfigureAwait(false);
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

        using var transaction = _connection.BeginTransaction(deferred: false);
        await ExecuteAsync(_connection, SchemaSql, cancellationToken).ConfigureAwait(false);
        await MigrateLegacyAsync(cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A file written by the first layout (one per-user clustered table): its elements become one run per signal.</summary>
    private async Task MigrateLegacyAsync(CancellationToken cancellationToken)
    {
        using (var exists = Command($"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{LegacyElements}'"))
        {
            if ((long)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! == 0)
            {
                return;
            }
        }

        var signals = new List<string>();
        using (var list = Command($"SELECT DISTINCT signal FROM {LegacyElements}"))
        {
            var reader = await list.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    signals.Add(reader.GetString(0));
                }
            }
        }

        foreach (var signal in signals)
        {
            long run = await NextRunAsync(cancellationToken).ConfigureAwait(false);
            using var copy = Command($"""
                INSERT INTO {Rows} SELECT signal, $run, user_id, event_time, event_id, ingest_time, payload FROM {LegacyElements}
                WHERE signal = $signal ORDER BY user_id, event_time DESC, event_id;
                INSERT INTO {Keys} SELECT signal, event_time, event_id, user_id FROM {LegacyElements} WHERE signal = $signal ORDER BY event_time, event_id, user_id;
                INSERT INTO {Runs} SELECT $signal, $run, count(*) FROM {LegacyElements} WHERE signal = $signal;
                """, ("$run", run), ("$signal", signal));
            await copy.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await ExecuteAsync(_connection, $"DROP TABLE {LegacyElements}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes the elements not stored yet as a new run, and the checkpoint, in one transaction.
    /// Returns how many were new and, when that is more than none, the run they went to. Synchronous:
    /// SQLite's I/O is (Microsoft.Data.Sqlite's async methods complete synchronously too).
    /// </summary>
    public (int Added, long Run) Append(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // BEGIN IMMEDIATE: take the write lock up front rather than upgrading mid-transaction.
        using var transaction = _connection.BeginTransaction(deferred: false);
        int added = 0;
        long run = 0;
        if (elements.Count > 0)
        {
            run = NextRun(transaction);
            added = InsertRun(signal, run, elements, cancellationToken);
            if (added > 0)
            {
                using var record = Command($"INSERT INTO {Runs} (signal, run, rows) VALUES ($signal, $run, $rows)", ("$signal", signal), ("$run", run), ("$rows", added));
                record.Transaction = transaction;
                record.ExecuteNonQuery();
            }
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
                upsert.ExecuteNonQuery();
            }

            upsert.Transaction = null;
        }

        transaction.Commit();
        return (added, added > 0 ? run : 0L);
    }

    /// <summary>
    /// The hot path, straight on SQLite's statements (Microsoft.Data.Sqlite costs several µs per
    /// execution): elements in key order, each key claimed in the key table first, so a key already
    /// stored (or earlier in this batch) is skipped.
    /// </summary>
    private int InsertRun(string signal, long run, IReadOnlyList<OnlineElement> elements, CancellationToken cancellationToken)
    {
        var db = _connection.Handle!;
        var insertKey = _insertKey ??= PrepareRaw(db, InsertKeySql);
        var insertRow = _insertRow ??= PrepareRaw(db, InsertRowSql);
        int[] order = SortedOrder(elements);
        var signalUtf8 = Encoding.UTF8.GetBytes(signal);
        int added = 0;
        try
        {
            for (int i = 0; i < elements.Count; i++)
            {
                if ((i & 1023) == 1023)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }

                var e = elements[order[i]];
                raw.sqlite3_bind_text(insertKey, 1, signalUtf8);
                raw.sqlite3_bind_int64(insertKey, 2, e.EventTimeMicros);
                raw.sqlite3_bind_text(insertKey, 3, e.EventId);
                raw.sqlite3_bind_int64(insertKey, 4, e.UserId);
                Step(db, insertKey);
                if (raw.sqlite3_changes(db) == 0)
                {
                    continue; // stored before, or earlier in this batch: the first write wins
                }

                raw.sqlite3_bind_text(insertRow, 1, signalUtf8);
                raw.sqlite3_bind_int64(insertRow, 2, run);
                raw.sqlite3_bind_int64(insertRow, 3, e.UserId);
                raw.sqlite3_bind_int64(insertRow, 4, e.EventTimeMicros);
                raw.sqlite3_bind_text(insertRow, 5, e.EventId);
                raw.sqlite3_bind_int64(insertRow, 6, e.IngestTimeMicros);
                raw.sqlite3_bind_blob(insertRow, 7, e.Payload);
                Step(db, insertRow);
                added++;
            }
        }
        finally
        {
            raw.sqlite3_reset(insertKey);
            raw.sqlite3_reset(insertRow);
        }

        return added;
    }

    /// <summary>Indexes of <paramref name="elements"/> by (user, time descending, id), ties in input order (so the first write wins).</summary>
    private int[] SortedOrder(IReadOnlyList<OnlineElement> elements)
    {
        int n = elements.Count;
        if (_order.Length < n)
        {
            _order = new int[Math.Max(n, _order.Length * 2)];
        }

        var order = _order;
        for (int i = 0; i < n; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, 0, n, Comparer<int>.Create((a, b) =>
        {
            var x = elements[a];
            var y = elements[b];
            int c = x.UserId.CompareTo(y.UserId);
            if (c == 0)
            {
                c = y.EventTimeMicros.CompareTo(x.EventTimeMicros);
            }

            if (c == 0)
            {
                c = string.CompareOrdinal(x.EventId, y.EventId);
            }

            return c != 0 ? c : a.CompareTo(b);
        }));
        return order;
    }

    private static void Step(sqlite3 db, sqlite3_stmt statement)
    {
        int rc = raw.sqlite3_step(statement);
        if (rc != raw.SQLITE_DONE)
        {
            int extended = raw.sqlite3_extended_errcode(db);
            string message = raw.sqlite3_errmsg(db).utf8_to_string();
            raw.sqlite3_reset(statement);
            throw new SqliteException($"SQLite Error {rc}: '{message}'.", rc, extended);
        }

        raw.sqlite3_reset(statement);
    }

    private static sqlite3_stmt PrepareRaw(sqlite3 db, string sql)
    {
        int rc = raw.sqlite3_prepare_v2(db, sql, out var statement);
        if (rc != raw.SQLITE_OK)
        {
            throw new SqliteException($"SQLite Error {rc}: '{raw.sqlite3_errmsg(db).utf8_to_string()}'.", rc, raw.sqlite3_extended_errcode(db));
        }

        return statement;
    }

    private long NextRun(SqliteTransaction transaction)
    {
        using var next = Command(NextRunSql);
        next.Transaction = transaction;
        return (long)next.ExecuteScalar()!;
    }

    private async Task<long> NextRunAsync(CancellationToken cancellationToken)
    {
        using var next = Command(NextRunSql);
        return (long)(await next.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>
    /// A passive checkpoint: copies what it can of the WAL into the database file without waiting for
    /// (or blocking) writers and readers. Returns the WAL's frames and how many of them are now copied.
    /// </summary>
    public (int WalFrames, int Copied) Checkpoint()
    {
        var db = _connection.Handle!;
        int rc = raw.sqlite3_wal_checkpoint_v2(db, null, raw.SQLITE_CHECKPOINT_PASSIVE, out int frames, out int copied);
        if (rc != raw.SQLITE_OK && rc != raw.SQLITE_BUSY)
        {
            throw new SqliteException($"SQLite Error {rc}: '{raw.sqlite3_errmsg(db).utf8_to_string()}'.", rc, raw.sqlite3_extended_errcode(db));
        }

        return (frames, copied);
    }

    /// <summary>The signal's runs, oldest first, with their row counts.</summary>
    public List<(long Run, long Rows)> ListRuns(string signal, SqliteTransaction? transaction)
    {
        var runs = _runs ??= Prepare(RunsSql, ("$signal", SqliteType.Text));
        runs.Transaction = transaction;
        runs.Parameters[0].Value = signal;
        var result = new List<(long, long)>();
        using (var reader = runs.ExecuteReader())
        {
            while (reader.Read())
            {
                result.Add((reader.GetInt64(0), reader.GetInt64(1)));
            }
        }

        runs.Transaction = null;
        return result;
    }

    /// <summary>
    /// Moves the rows of users <paramref name="low"/> and up (a bounded chunk of them) from the
    /// <paramref name="sources"/> runs into run <paramref name="target"/>, in one transaction, so
    /// every row is in exactly one run at every commit. Returns the first user of the next chunk, or
    /// null when the sources are empty (they are then dropped and the target's size recorded).
    /// <paramref name="sources"/> should start with the largest run: chunk boundaries are read off it.
    /// </summary>
    public long? MergeChunk(string signal, IReadOnlyList<long> sources, long target, long low, int chunkRows)
    {
        using var transaction = _connection.BeginTransaction(deferred: false);
        string inSources = string.Join(',', sources.Select(s => s.ToString(CultureInfo.InvariantCulture)));
        long? high;
        // The chunk's last user, read off the first (largest) source alone: its primary key order, no sort.
        using (var boundary = Command($"""
            SELECT user_id FROM {Rows} WHERE signal = $signal AND run = $run AND user_id >= $low
            ORDER BY user_id LIMIT 1 OFFSET $rows
            """, ("$signal", signal), ("$run", sources[0]), ("$low", low), ("$rows", Math.Max(1, chunkRows / sources.Count))))
        {
            boundary.Transaction = transaction;
            high = boundary.ExecuteScalar() is long user ? user : null;
        }

        long last = high ?? long.MaxValue;
        using (var move = Command($"""
            INSERT INTO {Runs} (signal, run, rows) VALUES ($signal, $target, 0) ON CONFLICT DO NOTHING;
            INSERT INTO {Rows} (signal, run, user_id, event_time, event_id, ingest_time, payload)
                SELECT signal, $target, user_id, event_time, event_id, ingest_time, payload FROM {Rows}
                WHERE signal = $signal AND run IN ({inSources}) AND user_id BETWEEN $low AND $high
                ORDER BY user_id, event_time DESC, event_id;
            DELETE FROM {Rows} WHERE signal = $signal AND run IN ({inSources}) AND user_id BETWEEN $low AND $high;
            """, ("$signal", signal), ("$target", target), ("$low", low), ("$high", last)))
        {
            move.Transaction = transaction;
            move.ExecuteNonQuery();
        }

        if (high is null || last == long.MaxValue)
        {
            using var finish = Command($"""
                DELETE FROM {Runs} WHERE signal = $signal AND run IN ({inSources});
                UPDATE {Runs} SET rows = (SELECT count(*) FROM {Rows} WHERE signal = $signal AND run = $target) WHERE signal = $signal AND run = $target;
                DELETE FROM {Runs} WHERE signal = $signal AND run = $target AND rows = 0;
                """, ("$signal", signal), ("$target", target));
            finish.Transaction = transaction;
            finish.ExecuteNonQuery();
            transaction.Commit();
            return null;
        }

        transaction.Commit();
        return last + 1;
    }

    /// <summary>A new run number (its own short transaction) for a merge to write into.</summary>
    public long AllocateRun()
    {
        using var transaction = _connection.BeginTransaction(deferred: false);
        long run = NextRun(transaction);
        transaction.Commit();
        return run;
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

        read.Transaction = null;
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

    /// <summary>The users of <paramref name="signal"/> with more than <paramref name="keep"/> elements (a scan: on a reader).</summary>
    public async Task<List<long>> UsersOverAsync(string signal, int keep, CancellationToken cancellationToken)
    {
        using var command = Command(OverKeepSql, ("$signal", signal), ("$keep", keep));
        var users = new List<long>();
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                users.Add(reader.GetInt64(0));
            }
        }

        return users;
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> elements of each of <paramref name="users"/>, and their keys, in one transaction.</summary>
    public long TrimUsers(string signal, IReadOnlyList<long> users, int keep, CancellationToken cancellationToken)
    {
        using var transaction = _connection.BeginTransaction(deferred: false);
        using var keys = Command(TrimKeysSql, ("$signal", signal), ("$user", 0L), ("$keep", keep));
        using var rows = Command(TrimRowsSql, ("$signal", signal), ("$user", 0L), ("$keep", keep));
        keys.Transaction = rows.Transaction = transaction;
        long deleted = 0;
        foreach (var user in users)
        {
            cancellationToken.ThrowIfCancellationRequested();
            keys.Parameters[1].Value = rows.Parameters[1].Value = user;
            keys.ExecuteNonQuery();
            deleted += rows.ExecuteNonQuery();
        }

        using (var recount = Command(RecountSql, ("$signal", signal)))
        {
            recount.Transaction = transaction;
            recount.ExecuteNonQuery();
        }

        transaction.Commit();
        return deleted;
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
        _insertKey?.Dispose();
        _insertRow?.Dispose();
        _checkpoint?.Dispose();
        _runs?.Dispose();
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
