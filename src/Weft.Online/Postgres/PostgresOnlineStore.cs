using System.Runtime.CompilerServices;
using Npgsql;
using NpgsqlTypes;

namespace Weft.Online.Postgres;

/// <summary>
/// The shared online store in PostgreSQL, used by many stateless processes at once. Appends send
/// whole batches as arrays (<c>INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING</c>) together
/// with the checkpoint upsert in one round trip and one transaction; a large one is cut into slices
/// of whole users inserted at once on their own connections, the checkpoint after them (see
/// <see cref="OnlineStoreTuning.AppendConnections"/>); a read is one range scan of
/// the unique index (signal, user_id, event_time DESC, event_id); a multi-user read is one statement
/// with a LATERAL limit per user. Connections come from an <see cref="NpgsqlDataSource"/> pool and
/// statements are auto-prepared.
/// </summary>
internal sealed class PostgresOnlineStore : IOnlineStore
{
    private const string Elements = "weft_online_elements";
    private const string Checkpoints = "weft_online_checkpoints";

    private const string SchemaSql = $"""
        -- serialises schema creation between processes opening the database at once (key: "WEFTONL1")
        SELECT pg_advisory_xact_lock(6288509782614494257);
        CREATE TABLE IF NOT EXISTS {Elements} (
            signal      text   NOT NULL,
            user_id     bigint NOT NULL,
            event_time  bigint NOT NULL,
            event_id    text   COLLATE "C" NOT NULL,
            ingest_time bigint NOT NULL,
            payload     bytea  NOT NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS {Elements}_key ON {Elements} (signal, user_id, event_time DESC, event_id);
        CREATE TABLE IF NOT EXISTS {Checkpoints} (
            consumer         text   NOT NULL,
            source_partition text   NOT NULL,
            last_offset      bigint NOT NULL,
            PRIMARY KEY (consumer, source_partition)
        );
        """;

    private const string SchemaExistsSql = $"SELECT to_regclass('{Elements}') IS NOT NULL AND to_regclass('{Elements}_key') IS NOT NULL AND to_regclass('{Checkpoints}') IS NOT NULL";

    private const string InsertSql = $"""
        INSERT INTO {Elements} (signal, user_id, event_time, event_id, ingest_time, payload)
        SELECT $1, x.user_id, x.event_time, x.event_id, x.ingest_time, x.payload
        FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bytea[]) AS x(user_id, event_time, event_id, ingest_time, payload)
        ON CONFLICT DO NOTHING
        """;

    private const string CheckpointSql = $"""
        INSERT INTO {Checkpoints} AS c (consumer, source_partition, last_offset)
        SELECT $1, x.source_partition, x.last_offset FROM unnest($2::text[], $3::bigint[]) AS x(source_partition, last_offset)
        ON CONFLICT (consumer, source_partition) DO UPDATE SET last_offset = GREATEST(c.last_offset, EXCLUDED.last_offset)
        """;

    internal const string ReadSql = $"""
        SELECT event_time, event_id, ingest_time, payload FROM {Elements}
        WHERE signal = $1 AND user_id = $2 AND event_time <= $3 AND event_time >= $4 AND ingest_time <= $5
        ORDER BY event_time DESC, event_id
        LIMIT $6
        """;

    private const string ReadManySql = $"""
        SELECT e.user_id, e.event_time, e.event_id, e.ingest_time, e.payload
        FROM unnest($2::bigint[]) AS u(user_id)
        CROSS JOIN LATERAL (
            SELECT t.user_id, t.event_time, t.event_id, t.ingest_time, t.payload FROM {Elements} t
            WHERE t.signal = $1 AND t.user_id = u.user_id AND t.event_time <= $3 AND t.event_time >= $4 AND t.ingest_time <= $5
            ORDER BY t.event_time DESC, t.event_id
            LIMIT $6) AS e
        """;

    private const string TrimBoundarySql = $"""
        SELECT user_id FROM {Elements} WHERE signal = $1 AND user_id >= $2
        ORDER BY user_id, event_time DESC, event_id OFFSET $3 LIMIT 1
        """;

    private const string TrimRangeSql = $"""
        DELETE FROM {Elements} t USING (
            SELECT r.user_id, r.event_time, r.event_id FROM (
                SELECT user_id, event_time, event_id,
                       row_number() OVER (PARTITION BY user_id ORDER BY event_time DESC, event_id) AS rn
                FROM {Elements} WHERE signal = $1 AND user_id BETWEEN $2 AND $3) AS r
            WHERE r.rn > $4) AS d
        WHERE t.signal = $1 AND t.user_id = d.user_id AND t.event_time = d.event_time AND t.event_id = d.event_id
        """;

    private const string StatsSql = $"""
        SELECT count(DISTINCT user_id), count(*), max(event_time), max(ingest_time) FROM {Elements} WHERE signal = $1
        """;

    private const string ReadCheckpointSql = $"SELECT source_partition, last_offset FROM {Checkpoints} WHERE consumer = $1";

    /// <summary>Pauses between attempts of a write: about 8 s in all, what a server restart or a failover takes.</summary>
    private static readonly TimeSpan[] WriteBackoff = [TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4)];

    /// <summary>Pauses between attempts of a read: short, as a client waits on it (a stale pooled connection needs one retry).</summary>
    private static readonly TimeSpan[] ReadBackoff = [TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(200)];

    private readonly NpgsqlDataSource _dataSource;
    private readonly CancellationTokenSource _disposing = new(); // ends a retry's pause at disposal
    private readonly OnlineStoreTuning _tuning;
    private int _disposed;

    private PostgresOnlineStore(string describe, NpgsqlDataSource dataSource, OnlineStoreTuning tuning)
    {
        Describe = describe;
        _dataSource = dataSource;
        _tuning = tuning;
    }

    public string Describe { get; }

    public static async Task<IOnlineStore> OpenAsync(string connectionString, OnlineStoreTuning tuning, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        NpgsqlConnectionStringBuilder settings;
        try
        {
            settings = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            // The message names the bad keyword; the connection string itself may hold a password.
            throw new ArgumentException($"The PostgreSQL connection string is not valid: {ex.Message}", nameof(connectionString), ex);
        }

        if (string.IsNullOrWhiteSpace(settings.Host))
        {
            // Npgsql's own refusal came later, as a bare "Value cannot be null."
            throw new ArgumentException("The PostgreSQL connection string is not valid: it names no Host (e.g. Host=db.internal;Port=5432;Database=weft;Username=weft)", nameof(connectionString));
        }

        var describe = Describing(settings);
        if (settings.MaxAutoPrepare == 0)
        {
            settings.MaxAutoPrepare = 16;
        }

        var dataSource = new NpgsqlDataSourceBuilder(settings.ConnectionString).Build();
        try
        {
            var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                // A role that may read and write the tables but not create them (a serving role, a
                // schema another role owns) opens a store whose tables exist: even CREATE … IF NOT
                // EXISTS needs the CREATE privilege on the schema, and CREATE INDEX owning the table.
                await using (var exists = new NpgsqlCommand(SchemaExistsSql, connection))
                {
                    if (await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true)
                    {
                        return new PostgresOnlineStore(describe, dataSource, tuning);
                    }
                }

                var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (transaction.ConfigureAwait(false))
                {
                    await using var command = new NpgsqlCommand(SchemaSql, connection, transaction);
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            return new PostgresOnlineStore(describe, dataSource, tuning);
        }
        catch (Exception ex)
        {
            // Any failure, a cancellation too: the store is never handed out, so its pool's
            // connection (open, back in the pool) would stay open with no one to close it.
            await dataSource.DisposeAsync().ConfigureAwait(false);
            if (ex is not (NpgsqlException or InvalidOperationException or ArgumentException))
            {
                throw;
            }

            throw new OnlineStoreException(describe, $"Cannot open the PostgreSQL online store at {describe["postgres:".Length..]}: {FirstLine(ex.Message)}{PrivilegeHint(ex)}",
                PostgresErrors.IsTransient(ex), ex);
        }
    }

    private static string PrivilegeHint(Exception ex) => ex is PostgresException { SqlState: "42501" }
        ? $"; the first open creates the tables {Elements} and {Checkpoints} (with the index {Elements}_key), which needs the CREATE privilege on the schema; once they exist, SELECT, INSERT, UPDATE and DELETE on them are enough"
        : "";

    /// <summary><c>postgres:host:port/database</c>; never the user's password.</summary>
    internal static string Describing(NpgsqlConnectionStringBuilder settings) =>
        $"postgres:{settings.Host ?? "localhost"}:{settings.Port}/{settings.Database ?? settings.Username ?? "postgres"}";

    /// <summary>
    /// Every append commits durably, <see cref="OnlineDurability.Deferred"/> ones too: the round trip to
    /// the server costs more than its WAL flush, which the server shares among concurrent commits.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, OnlineDurability durability, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        OnlineArguments.Elements(elements);
        OnlineArguments.Checkpoint(checkpoint);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var hasOffsets = checkpoint is not null && checkpoint.Offsets.Count > 0;
        if (elements.Count == 0 && !hasOffsets)
        {
            return 0;
        }

        // Key order, the index's (and the batch's own duplicates dropped, the first kept): concurrent
        // appends take row locks in one global order, so overlapping batches wait on each other
        // instead of deadlocking.
        var order = PostgresBatches.KeyOrder(elements);
        var slices = PostgresBatches.UserSlices(elements, order, Math.Clamp(order.Length / _tuning.InsertChunkRows, 1, _tuning.AppendConnections));

        // Idempotent (ON CONFLICT DO NOTHING; the checkpoint only moves forward), so a transient failure
        // is retried whole; a retry counts only the rows it added itself.
        return await RetryingAsync("Append", WriteBackoff, ct => AppendOnceAsync(signal, elements, order, slices, hasOffsets ? checkpoint : null, ct), cancellationToken).ConfigureAwait(false);
    }

    private async Task<int> AppendOnceAsync(string signal, IReadOnlyList<OnlineElement> elements, int[] order, int[] slices, SourceCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        bool hasOffsets = checkpoint is not null;
        if (slices.Length == 2)
        {
            return await InsertAsync(signal, elements, order, hasOffsets ? checkpoint : null, cancellationToken).ConfigureAwait(false);
        }

        // Slices in parallel transactions, each on a connection of its own: one server backend
        // inserts ~100k rows/s here, and one append at a time would keep a single server core
        // busy. Each slice takes its row locks in key order, as a single transaction would; the
        // checkpoint waits for all of them (WhenAll waits for every slice, failed or not).
        var tasks = new Task<int>[slices.Length - 1];
        for (int k = 0; k < tasks.Length; k++)
        {
            tasks[k] = InsertAsync(signal, elements, order.AsMemory(slices[k], slices[k + 1] - slices[k]), null, cancellationToken);
        }

        var counts = await Task.WhenAll(tasks).ConfigureAwait(false);
        if (hasOffsets)
        {
            await InsertAsync(signal, elements, ReadOnlyMemory<int>.Empty, checkpoint, cancellationToken).ConfigureAwait(false);
        }

        return counts.Sum();
    }

    /// <summary>One transaction: the <paramref name="rows"/> of <paramref name="elements"/> (in key order), then the checkpoint if any.</summary>
    private async Task<int> InsertAsync(string signal, IReadOnlyList<OnlineElement> elements, ReadOnlyMemory<int> rows, SourceCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                var batch = new NpgsqlBatch(connection, transaction);
                await using (batch.ConfigureAwait(false))
                {
                    var inserts = 0;
                    for (var start = 0; start < rows.Length; start += _tuning.InsertChunkRows)
                    {
                        batch.BatchCommands.Add(PostgresBatches.Insert(InsertSql, signal, elements, rows.Span.Slice(start, Math.Min(_tuning.InsertChunkRows, rows.Length - start))));
                        inserts++;
                    }

                    if (checkpoint is not null)
                    {
                        batch.BatchCommands.Add(PostgresBatches.Checkpoint(CheckpointSql, checkpoint));
                    }

                    await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    var added = 0;
                    for (var i = 0; i < inserts; i++)
                    {
                        added += batch.BatchCommands[i].RecordsAffected;
                    }

                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                    return added;
                }
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    /// <summary>Nothing to do: every append was durable when it returned.</summary>
    public ValueTask SyncAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.CompletedTask;
    }

    public async ValueTask<IReadOnlyList<OnlineElement>> ReadAsync(string signal, long userId, OnlineReadOptions options, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (options.SelectsNothing)
        {
            return [];
        }

        return await RetryingAsync("Read", ReadBackoff, ct => ReadOnceAsync(signal, userId, options, ct), cancellationToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<OnlineElement>> ReadOnceAsync(string signal, long userId, OnlineReadOptions options, CancellationToken cancellationToken)
    {
        var result = new List<OnlineElement>();
        var command = _dataSource.CreateCommand(ReadSql);
        await using (command.ConfigureAwait(false))
        {
            var p = command.Parameters;
            p.Add(new NpgsqlParameter<string> { TypedValue = signal });
            p.Add(new NpgsqlParameter<long> { TypedValue = userId });
            AddWindow(p, options);
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    result.Add(RowElement(reader, userId, first: 0));
                }
            }
        }

        return result;
    }

    public async ValueTask<IReadOnlyDictionary<long, IReadOnlyList<OnlineElement>>> ReadManyAsync(string signal, IReadOnlyList<long> userIds, OnlineReadOptions options, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        ArgumentNullException.ThrowIfNull(userIds);
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var lists = new Dictionary<long, List<OnlineElement>>(userIds.Count);
        for (var i = 0; i < userIds.Count; i++)
        {
            lists.TryAdd(userIds[i], []);
        }

        if (lists.Count > 0 && !options.SelectsNothing)
        {
            await RetryingAsync("Read", ReadBackoff, ct => ReadManyOnceAsync(signal, lists, options, ct), cancellationToken).ConfigureAwait(false);
        }

        var result = new Dictionary<long, IReadOnlyList<OnlineElement>>(lists.Count);
        foreach (var (userId, elements) in lists)
        {
            // Each LATERAL branch comes out in index order; SQL does not promise that the join keeps it.
            if (!OnlineOrder.IsSorted(elements))
            {
                elements.Sort(OnlineOrder.Instance);
            }

            result.Add(userId, elements);
        }

        return result;
    }

    /// <summary>Fills <paramref name="lists"/> (emptied first: an attempt that failed part-way may have added to them).</summary>
    private async Task<bool> ReadManyOnceAsync(string signal, Dictionary<long, List<OnlineElement>> lists, OnlineReadOptions options, CancellationToken cancellationToken)
    {
        foreach (var list in lists.Values)
        {
            list.Clear();
        }

        var command = _dataSource.CreateCommand(ReadManySql);
        await using (command.ConfigureAwait(false))
        {
            var p = command.Parameters;
            p.Add(new NpgsqlParameter<string> { TypedValue = signal });
            p.Add(new NpgsqlParameter<long[]> { TypedValue = [.. lists.Keys] });
            AddWindow(p, options);
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var userId = reader.GetInt64(0);
                    lists[userId].Add(RowElement(reader, userId, first: 1));
                }
            }
        }

        return true;
    }

    public async ValueTask<long> TrimAsync(string signal, int keep, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        OnlineArguments.Keep(keep);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        long deleted = 0;
        var low = long.MinValue;

        // A retry goes on from the last range that committed: each range is its own transaction.
        return await RetryingAsync("Trim", WriteBackoff, async cancellationToken =>
        {
            while (true)
            {
                // Each step is its own short transaction over the users of about TrimChunkRows rows.
                long high;
                var boundary = _dataSource.CreateCommand(TrimBoundarySql);
                await using (boundary.ConfigureAwait(false))
                {
                    boundary.Parameters.Add(new NpgsqlParameter<string> { TypedValue = signal });
                    boundary.Parameters.Add(new NpgsqlParameter<long> { TypedValue = low });
                    boundary.Parameters.Add(new NpgsqlParameter<long> { TypedValue = _tuning.TrimChunkRows });
                    high = await boundary.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long user ? user : long.MaxValue;
                }

                var delete = _dataSource.CreateCommand(TrimRangeSql);
                await using (delete.ConfigureAwait(false))
                {
                    delete.Parameters.Add(new NpgsqlParameter<string> { TypedValue = signal });
                    delete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = low });
                    delete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = high });
                    delete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = keep });
                    deleted += await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                if (high == long.MaxValue)
                {
                    return deleted;
                }

                low = high + 1;
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<IReadOnlyDictionary<string, long>> ReadCheckpointAsync(string consumer, CancellationToken cancellationToken)
    {
        OnlineArguments.Consumer(consumer);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return await RetryingAsync<IReadOnlyDictionary<string, long>>("Reading the checkpoint", WriteBackoff, async cancellationToken =>
        {
            var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
            var command = _dataSource.CreateCommand(ReadCheckpointSql);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = consumer });
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        offsets.Add(reader.GetString(0), reader.GetInt64(1));
                    }
                }
            }

            return offsets;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<OnlineStoreStats> StatsAsync(string signal, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return await RetryingAsync("Stats", ReadBackoff, async cancellationToken =>
        {
            var command = _dataSource.CreateCommand(StatsSql);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = signal });
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    return RowStats(reader);
                }
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _disposing.CancelAsync().ConfigureAwait(false); // not disposed: a retry may still read its token
            await _dataSource.DisposeAsync().ConfigureAwait(false);
        }
    }

    // Rows are decoded by synchronous helpers: the reader is not in sequential mode, so ReadAsync has
    // buffered the whole row and the getters do no IO.
    private static OnlineElement RowElement(NpgsqlDataReader reader, long userId, int first) =>
        new(userId, reader.GetInt64(first), reader.GetString(first + 1), reader.GetInt64(first + 2), reader.GetFieldValue<byte[]>(first + 3));

    private static OnlineStoreStats RowStats(NpgsqlDataReader reader) =>
        new(reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetInt64(3));

    /// <summary>Parameters $3..$6: as-of, from (lookback), known-at, limit.</summary>
    private static void AddWindow(NpgsqlParameterCollection p, OnlineReadOptions options)
    {
        p.Add(new NpgsqlParameter<long> { TypedValue = options.AsOfMicros });
        p.Add(new NpgsqlParameter<long> { TypedValue = options.FromMicros });
        p.Add(new NpgsqlParameter<long> { TypedValue = options.KnownAtMicros });
        p.Add(new NpgsqlParameter<long> { TypedValue = options.Limit });
    }

    /// <summary>
    /// Runs <paramref name="attempt"/>, again after each pause of <paramref name="backoff"/> while it fails
    /// transiently. A restarted or failed-over server closes every pooled connection, and each would fail
    /// its next statement (57P01): an append that met one stopped the stream although the server was
    /// back. So a lost connection also empties the pool, and the retry opens a new one.
    /// </summary>
    /// <remarks>
    /// A timeout (a command's, or the pool's wait for a free connection) is not retried: each attempt
    /// would wait as long again, turning a 30 s command timeout into minutes, and more attempts on a
    /// busy server or pool only add to the load. Disposal ends the pauses.
    /// </remarks>
    private async Task<T> RetryingAsync<T>(string operation, TimeSpan[] backoff, Func<CancellationToken, Task<T>> attempt, CancellationToken cancellationToken)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int tried = 0; ; tried++)
        {
            try
            {
                return await attempt(cancellationToken).ConfigureAwait(false);
            }
            catch (NpgsqlException ex) when (tried < backoff.Length && PostgresErrors.IsTransient(ex) && !PostgresErrors.IsTimeout(ex) && _disposed == 0)
            {
                if (PostgresErrors.IsLostConnection(ex))
                {
                    _dataSource.Clear();
                }

                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
                try
                {
                    await Task.Delay(backoff[tried], linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new ObjectDisposedException(nameof(PostgresOnlineStore), $"The online store {Describe} was disposed while {operation.ToLowerInvariant()} waited to retry: {FirstLine(ex.Message)}");
                }
            }
            catch (NpgsqlException ex)
            {
                var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
                throw new OnlineStoreException(Describe,
                    $"{operation} failed on the online store {Describe}{(tried > 0 ? $" (tried {tried + 1} times over {(elapsed.TotalSeconds >= 1 ? $"{elapsed.TotalSeconds:0.#} s" : $"{elapsed.TotalMilliseconds:0} ms")})" : "")}: {FirstLine(ex.Message)}",
                    PostgresErrors.IsTransient(ex), ex);
            }
        }
    }

    /// <summary>Npgsql's message of a server error runs on with POSITION:, DETAIL: lines; the first says what failed.</summary>
    internal static string FirstLine(string message)
    {
        int end = message.IndexOfAny(['\r', '\n']);
        return end < 0 ? message : message[..end];
    }
}

/// <summary>Builds the array-valued batch commands of an append.</summary>
internal static class PostgresBatches
{
    /// <summary>
    /// Bounds of at most <paramref name="count"/> slices of <paramref name="order"/> (key order) of
    /// about equal length, each ending where a user does, so no user's elements span two slices:
    /// <c>bounds[k] .. bounds[k + 1]</c> is slice k. A single user yields one slice.
    /// </summary>
    public static int[] UserSlices(IReadOnlyList<OnlineElement> elements, int[] order, int count)
    {
        var bounds = new List<int>(count + 1) { 0 };
        for (int k = 1; k < count; k++)
        {
            int b = Math.Max((int)((long)order.Length * k / count), bounds[^1] + 1);
            while (b < order.Length && elements[order[b]].UserId == elements[order[b - 1]].UserId)
            {
                b++;
            }

            if (b >= order.Length)
            {
                break;
            }

            bounds.Add(b);
        }

        bounds.Add(order.Length);
        return [.. bounds];
    }

    /// <summary>Indexes of <paramref name="elements"/> in key order, each key once (its first occurrence).</summary>
    public static int[] KeyOrder(IReadOnlyList<OnlineElement> elements)
    {
        var order = new int[elements.Count];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, new KeyComparer(elements));
        var distinct = 0;
        for (var i = 0; i < order.Length; i++)
        {
            if (distinct == 0 || !SameKey(elements[order[distinct - 1]], elements[order[i]]))
            {
                order[distinct++] = order[i];
            }
        }

        return distinct == order.Length ? order : order[..distinct];
    }

    public static NpgsqlBatchCommand Insert(string sql, string signal, IReadOnlyList<OnlineElement> elements, ReadOnlySpan<int> rows)
    {
        var users = new long[rows.Length];
        var times = new long[rows.Length];
        var ids = new string[rows.Length];
        var ingests = new long[rows.Length];
        var payloads = new byte[rows.Length][];
        for (var i = 0; i < rows.Length; i++)
        {
            var element = elements[rows[i]];
            users[i] = element.UserId;
            times[i] = element.EventTimeMicros;
            ids[i] = element.EventId;
            ingests[i] = element.IngestTimeMicros;
            payloads[i] = element.Payload;
        }

        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = signal });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = users });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = times });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = ids });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ingests });
        command.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        return command;
    }

    public static NpgsqlBatchCommand Checkpoint(string sql, SourceCheckpoint checkpoint)
    {
        var partitions = new string[checkpoint.Offsets.Count];
        var offsets = new long[partitions.Length];
        var i = 0;
        foreach (var (partition, offset) in checkpoint.Offsets)
        {
            partitions[i] = partition;
            offsets[i++] = offset;
        }

        // Any one order does: only appends lock checkpoint rows, and all of them sort alike (the
        // table's key is in the database's default collation, which .NET cannot reproduce anyway).
        Array.Sort(partitions, offsets, StringComparer.Ordinal);
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = checkpoint.Consumer });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = partitions });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = offsets });
        return command;
    }

    private static bool SameKey(in OnlineElement a, in OnlineElement b) =>
        a.UserId == b.UserId && a.EventTimeMicros == b.EventTimeMicros && string.Equals(a.EventId, b.EventId, StringComparison.Ordinal);

    /// <summary>
    /// User, then read order, then position in the batch (so the first of equal keys sorts first): the
    /// order of the unique index, whose event_id is COLLATE "C" (code point order). The rows are inserted,
    /// and their locks taken, in this order; UTF-16 ordinal order differed from the index's between
    /// surrogate pairs and U+E000–U+FFFF, so a writer taking the locks in the index's order (a scan of
    /// it) could have met an append taking them the other way round.
    /// </summary>
    private sealed class KeyComparer(IReadOnlyList<OnlineElement> elements) : IComparer<int>
    {
        public int Compare(int x, int y)
        {
            var a = elements[x];
            var b = elements[y];
            var c = a.UserId.CompareTo(b.UserId);
            if (c == 0)
            {
                c = b.EventTimeMicros.CompareTo(a.EventTimeMicros);
            }

            if (c == 0)
            {
                c = OnlineOrder.CompareEventIds(a.EventId, b.EventId);
            }

            return c != 0 ? c : x.CompareTo(y);
        }
    }
}

/// <summary>Which PostgreSQL failures a retry may cure.</summary>
internal static class PostgresErrors
{
    public static bool IsTransient(Exception ex) => ex switch
    {
        PostgresException pg => pg.SqlState switch
        {
            "40001" or "40P01" => true, // serialization failure, deadlock
            "55P03" or "53300" or "53400" or "57P01" or "57P02" or "57P03" or "58000" or "58030" => true, // lock timeout, too many connections, shutdown
            _ => pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState.StartsWith("53", StringComparison.Ordinal),
        },
        NpgsqlException npgsql => npgsql.IsTransient, // IO, timeouts, connection resets
        _ => false,
    };

    /// <summary>
    /// The connection is gone (server shut down or restarted, network reset): the pool's other
    /// connections likely are too. Not a timeout: an exhausted pool or a slow command says nothing of
    /// the connections, and emptying the pool then would only add reconnections to the load.
    /// </summary>
    public static bool IsLostConnection(Exception ex) => ex switch
    {
        PostgresException pg => pg.SqlState is "57P01" or "57P02" or "57P03" || pg.SqlState.StartsWith("08", StringComparison.Ordinal),
        NpgsqlException npgsql => npgsql.InnerException is IOException or System.Net.Sockets.SocketException or EndOfStreamException,
        _ => false,
    };

    /// <summary>A command's timeout, or the pool's wait for a free connection running out.</summary>
    public static bool IsTimeout(Exception ex) => ex is NpgsqlException { InnerException: TimeoutException } || ex.InnerException is TimeoutException;
}
