using System.Buffers;
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
/// <para><b>Layout: sorted runs of blocks.</b> Each append is written as one <i>run</i>: its elements
/// sorted by (user, time descending, id) under a run number larger than every earlier one, cut into
/// blocks of a few kilobytes (<see cref="StoreBlock"/>), one row each, keyed by (signal, run, last user
/// of the block, position). So an append of 10,000 elements writes ~200 rows at the end of the signal's
/// key range instead of 10,000 B-tree inserts. A read seeks the user's block(s) in every run and
/// merges; the store merges runs in the background (<see cref="MergeChunk"/>), decoding and re-encoding
/// blocks in memory, so there are few.</para>
/// <para><b>Duplicates.</b> The writer keeps a <see cref="KeyFilter"/> per signal of every key stored:
/// an element it has certainly not seen is stored without a lookup, and the rest are checked against
/// the user's blocks. So no key is stored twice across runs. The filter is built from the blocks on
/// the first append of a signal, and dropped when another connection has written runs meanwhile.</para>
/// </remarks>
internal sealed class SqliteSession : IAsyncDisposable, IDisposable
{
    private const string TablePrefix = "weft_online_";
    internal const string Blocks = "weft_online_blocks";
    internal const string Runs = "weft_online_runs";
    private const string Meta = "weft_online_meta";
    private const string Checkpoints = "weft_online_checkpoints";
    private const string RowsLayout = "weft_online_rows";
    private const string RowsLayoutKeys = "weft_online_keys";
    private const string LegacyElements = "weft_online_elements";

    private const string SchemaSql = $"""
        CREATE TABLE IF NOT EXISTS {Blocks} (
            id      INTEGER PRIMARY KEY,
            signal  TEXT    NOT NULL,
            run     INTEGER NOT NULL,
            user_hi INTEGER NOT NULL,
            seq     INTEGER NOT NULL,
            rows    INTEGER NOT NULL,
            data    BLOB    NOT NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS {Blocks}_key ON {Blocks} (signal, run, user_hi, seq);
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

    private const string InsertBlockSql = $"INSERT INTO {Blocks} (signal, run, user_hi, seq, rows, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

    private const string SyncSql = $"INSERT INTO {Meta} (name, value) VALUES ('syncs', 1) ON CONFLICT (name) DO UPDATE SET value = value + 1";
    private const string NextRunSql = $"UPDATE {Meta} SET value = value + 1 WHERE name = 'last_run' RETURNING value";

    private const string CheckpointSql = $"""
        INSERT INTO {Checkpoints} (consumer, source_partition, last_offset) VALUES ($consumer, $partition, $offset)
        ON CONFLICT (consumer, source_partition) DO UPDATE SET last_offset = max(last_offset, excluded.last_offset)
        """;

    internal const string RunsSql = $"SELECT run, rows FROM {Runs} WHERE signal = $signal ORDER BY run";

    /// <summary>
    /// The blocks that can hold a user's elements, in every run of the signal: those whose last user
    /// is the user, and the first block after them (it may start with the user). One statement, so
    /// one snapshot: a merge moving the user's elements between runs commits wholly before or after it.
    /// CROSS JOIN keeps the runs as the outer loop (SQLite would otherwise scan the signal's blocks).
    /// </summary>
    internal const string UserBlocksSql = $"""
        SELECT id, run, data FROM {Blocks} WHERE id IN (
            SELECT b.id FROM {Runs} r CROSS JOIN {Blocks} b WHERE r.signal = ?1 AND b.signal = ?1 AND b.run = r.run AND b.user_hi = ?2
            UNION ALL
            SELECT (SELECT b.id FROM {Blocks} b WHERE b.signal = ?1 AND b.run = r.run AND b.user_hi > ?2 ORDER BY b.user_hi, b.seq LIMIT 1)
            FROM {Runs} r WHERE r.signal = ?1)
        """;

    private const string StoredRowsSql = $"SELECT coalesce(sum(rows), 0) FROM {Runs} WHERE signal = ?1";

    private const string SignalBlocksSql = $"SELECT data FROM {Blocks} WHERE signal = ?1";

    private const string RunBlocksFromSql = $"SELECT id, user_hi, rows, data FROM {Blocks} WHERE signal = ?1 AND run = ?2 AND user_hi >= ?3 ORDER BY user_hi, seq";

    private const string DeleteBlockSql = $"DELETE FROM {Blocks} WHERE id = ?1";

    private const string UpdateBlockSql = $"UPDATE {Blocks} SET user_hi = ?2, rows = ?3, data = ?4 WHERE id = ?1";

    private const string BlockDataSql = $"SELECT data FROM {Blocks} WHERE id = ?1";

    private const string ReadCheckpointSql = $"SELECT source_partition, last_offset FROM {Checkpoints} WHERE consumer = $consumer";

    // What an append decided about each element of its batch (in _status, by position in run order).
    private const byte New = 0;
    private const byte Duplicate = 1;
    private const byte Maybe = 2;

    private readonly SqliteConnection _connection;
    private readonly Dictionary<string, KeyFilter> _filters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, sqlite3_stmt> _statements = new(StringComparer.Ordinal);
    private SqliteCommand? _checkpoint;
    private SqliteCommand? _runs;
    private long _lastRunSeen = -1;
    private int[] _order = [];
    private UInt128[] _sortKeys = [];
    private ulong[] _hashes = [];
    private byte[] _status = [];
    private int[] _idBounds = [0]; // an append's event id i, as UTF-8, is _ids[_idBounds[i].._idBounds[i + 1]] (by arrival)
    private byte[] _ids = new byte[4096];

    // A merge chunk's state, reused from chunk to chunk (see MergeChunkInTransaction).
    private readonly List<MovedElement> _moved = [];
    private byte[] _arena = [];

    private SqliteSession(SqliteConnection connection) => _connection = connection;

    /// <summary>
    /// Test seam: called at each point a long scan checks for cancellation (each block of a signal
    /// scan, each user of a trim step), just before it checks, so a test can cancel mid-scan.
    /// </summary>
    internal Action? ScanStep { get; set; }

    public static async Task<SqliteSession> OpenAsync(string connectionString, bool reader, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            // FULL: the WAL is synced at every commit, so an append is durable when it returns. The
            // writer's larger page cache keeps the runs being merged in memory, and it never
            // checkpoints: copying the WAL into the database file (and syncing that) is the store's
            // background checkpointer's work, off the append's path.
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
        await RefuseForeignDatabaseAsync(cancellationToken).ConfigureAwait(false);
        using (var command = _connection.CreateCommand())
        {
            // 16 KiB pages hold four blocks (StoreBlock.TargetBytes) each, where 4 KiB ones hold one: the
            // WAL and the checkpointer write a page per system call, so an append makes a quarter of the
            // calls (33,500 → 9,100 in a 300,000-event stream benchmark run). Only a new file takes it; an older
            // file keeps its page size, which changes only with a rewrite of the whole file.
            command.CommandText = "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL";
            var mode = (string?)await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"the file cannot use the WAL journal (SQLite kept journal mode '{mode}').");
            }
        }

        using var transaction = _connection.BeginTransaction(deferred: false);
        await ExecuteAsync(_connection, SchemaSql, cancellationToken).ConfigureAwait(false);
        // Files of the earlier layouts: their elements become one run of blocks per signal.
        await MigrateAsync(LegacyElements, dropsRuns: false, cancellationToken).ConfigureAwait(false);
        if (await MigrateAsync(RowsLayout, dropsRuns: true, cancellationToken).ConfigureAwait(false))
        {
            await ExecuteAsync(_connection, $"DROP TABLE IF EXISTS {RowsLayoutKeys}", cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Refuses a database that holds tables and none of a Weft online store (any layout): another
    /// application's file, named by mistake. Creating the schema in it would switch it to WAL and add
    /// tables to it; it is left as it was.
    /// </summary>
    private async Task RefuseForeignDatabaseAsync(CancellationToken cancellationToken)
    {
        var foreign = new List<string>();
        using (var tables = Command("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"))
        {
            var reader = await tables.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var name = reader.GetString(0);
                    if (name.StartsWith(TablePrefix, StringComparison.Ordinal))
                    {
                        return;
                    }

                    foreign.Add(name);
                }
            }
        }

        if (foreign.Count > 0)
        {
            var shown = string.Join(", ", foreign.Take(3).Select(n => $"'{n}'")) + (foreign.Count > 3 ? $" and {foreign.Count - 3} more" : "");
            throw new InvalidOperationException(
                $"the file is not a Weft online store: it holds {foreign.Count} table{(foreign.Count == 1 ? "" : "s")} ({shown}) and none of the store's ({TablePrefix}*), " +
                "so it is another application's database; it was left unchanged. Give the online store a file of its own.");
        }
    }

    /// <summary>
    /// Moves the elements of <paramref name="table"/> (a table of an earlier layout, keys unique) into
    /// one run of blocks per signal and drops it; false when there is no such table.
    /// <paramref name="dropsRuns"/>: the table's runs were listed in the runs table, which now lists the new ones.
    /// </summary>
    private async Task<bool> MigrateAsync(string table, bool dropsRuns, CancellationToken cancellationToken)
    {
        using (var exists = Command($"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"))
        {
            if ((long)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! == 0)
            {
                return false;
            }
        }

        var signals = new List<string>();
        using (var list = Command($"SELECT DISTINCT signal FROM {table}"))
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
            if (dropsRuns)
            {
                using var drop = Command($"DELETE FROM {Runs} WHERE signal = $signal", ("$signal", signal));
                await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            long run = NextRun();
            using var rows = Command($"""
                SELECT user_id, event_time, event_id, ingest_time, payload FROM {table}
                WHERE signal = $signal ORDER BY user_id, event_time DESC, event_id
                """, ("$signal", signal));
            using var writer = new RunWriter(this, signal, run, firstSeq: 0);
            var reader = await rows.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var payload = await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? [] : (byte[])reader.GetValue(4);
                    writer.Add(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(3), Encoding.UTF8.GetBytes(reader.GetString(2)), payload);
                }
            }

            writer.Finish();
            if (writer.Written > 0)
            {
                AddRunRows(signal, run, writer.Written);
            }
        }

        await ExecuteAsync(_connection, $"DROP TABLE {table}", cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Writes the elements not stored yet as a new run, and the checkpoint, in one transaction.
    /// Returns how many were new. Synchronous: SQLite's I/O is (Microsoft.Data.Sqlite's async methods
    /// complete synchronously too). Unless <paramref name="synced"/>, the commit does not sync the WAL:
    /// a power cut may lose it (the file stays consistent) until <see cref="Sync"/> or a synced commit.
    /// </summary>
    public int Append(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, bool synced, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (synced)
        {
            return AppendInTransaction(signal, elements, checkpoint, cancellationToken);
        }

        ExecuteRaw("PRAGMA synchronous = NORMAL");
        try
        {
            return AppendInTransaction(signal, elements, checkpoint, cancellationToken);
        }
        finally
        {
            ExecuteRaw("PRAGMA synchronous = FULL");
        }
    }

    /// <summary>
    /// Makes every commit before it durable: a small write committed under <c>synchronous = FULL</c>
    /// syncs the WAL, and with it every frame earlier commits appended to it.
    /// </summary>
    public void Sync()
    {
        using var transaction = _connection.BeginTransaction(deferred: false);
        ExecuteRaw(SyncSql);
        transaction.Commit();
    }

    private int AppendInTransaction(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        // BEGIN IMMEDIATE: take the write lock up front rather than upgrading mid-transaction.
        using var transaction = _connection.BeginTransaction(deferred: false);
        int added = 0;
        long run = 0;
        if (elements.Count > 0)
        {
            run = NextRun();
            // An array, so the hot loops index it directly rather than through the interface.
            added = InsertRun(signal, run, elements as OnlineElement[] ?? [.. elements], cancellationToken);
            if (added > 0)
            {
                AddRunRows(signal, run, added);
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
        if (run != 0)
        {
            _lastRunSeen = run; // only once committed: a rolled-back append gives its number back
        }

        return added;
    }

    /// <summary>
    /// The hot path: the batch in run order, its own duplicates dropped (the first wins), each key
    /// tested against the signal's filter, the "maybe"s checked against their users' blocks, and the
    /// new elements written as blocks of one run.
    /// </summary>
    private int InsertRun(string signal, long run, OnlineElement[] elements, CancellationToken cancellationToken)
    {
        int n = elements.Length;
        int[] order = SortedOrder(elements);
        var filter = FilterFor(signal, n, cancellationToken);
        if (_hashes.Length < n)
        {
            _hashes = new ulong[Math.Max(n, _hashes.Length * 2)];
            _status = new byte[_hashes.Length];
            _idBounds = new int[_hashes.Length + 1];
        }

        // Each id's UTF-8 and key hash, made once and in arrival order: the elements' strings lie in
        // memory in that order, where run order visits them at random (and took each id's UTF-8 twice).
        int idBytes = 0;
        for (int i = 0; i < n; i++)
        {
            var id = elements[i].EventId;
            int max = Encoding.UTF8.GetMaxByteCount(id.Length);
            if (_ids.Length - idBytes < max)
            {
                Array.Resize(ref _ids, Math.Max(_ids.Length * 2, idBytes + max));
            }

            idBytes += Encoding.UTF8.GetBytes(id, _ids.AsSpan(idBytes));
            _idBounds[i + 1] = idBytes;
            _hashes[i] = KeyFilter.Hash(elements[i].UserId, elements[i].EventTimeMicros, IdUtf8(i));
        }

        // _status is by position in run order; _hashes and the ids by arrival.
        bool anyMaybe = false;
        for (int p = 0; p < n; p++)
        {
            int i = order[p];
            if (p > 0 && SameKey(elements[order[p - 1]], elements[i]))
            {
                _status[p] = Duplicate;
                continue;
            }

            bool maybe = filter.MayContain(_hashes[i]);
            _status[p] = maybe ? Maybe : New;
            anyMaybe |= maybe;
        }

        if (anyMaybe)
        {
            ResolveMaybes(signal, elements, order, cancellationToken);
        }

        using var writer = new RunWriter(this, signal, run, firstSeq: 0);
        for (int p = 0; p < n; p++)
        {
            if ((p & 1023) == 1023)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            if (_status[p] == New)
            {
                int i = order[p];
                var e = elements[i];
                writer.Add(e.UserId, e.EventTimeMicros, e.IngestTimeMicros, IdUtf8(i), e.Payload);
                filter.Add(_hashes[i]); // if the transaction fails, a key too many: a "maybe" only
            }
        }

        writer.Finish();
        return writer.Written;
    }

    /// <summary>The UTF-8 of the event id of the append's element <paramref name="i"/> (arrival order), made by <see cref="InsertRun"/>.</summary>
    private ReadOnlySpan<byte> IdUtf8(int i) => _ids.AsSpan(_idBounds[i], _idBounds[i + 1] - _idBounds[i]);

    /// <summary>Decides each "maybe" by the keys its user has stored (one read of the user's blocks per user).</summary>
    private void ResolveMaybes(string signal, OnlineElement[] elements, int[] order, CancellationToken cancellationToken)
    {
        HashSet<(long, string)>? stored = null;
        long storedUser = 0;
        for (int p = 0; p < elements.Length; p++)
        {
            if (_status[p] != Maybe)
            {
                continue;
            }

            var e = elements[order[p]];
            if (stored is null || storedUser != e.UserId)
            {
                cancellationToken.ThrowIfCancellationRequested();
                storedUser = e.UserId;
                stored ??= [];
                stored.Clear();
                ForEachUserElement(signal, e.UserId, (in BlockReader r, long _, long _) => stored.Add((r.EventTime, r.EventId)));
            }

            _status[p] = stored.Contains((e.EventTimeMicros, e.EventId)) ? Duplicate : New;
        }
    }

    private delegate void UserElement(in BlockReader reader, long blockId, long run);

    /// <summary>Calls <paramref name="each"/> for every stored element of the user, in every run (no order across runs).</summary>
    private void ForEachUserElement(string signal, long userId, UserElement each)
    {
        var db = _connection.Handle!;
        var statement = Statement(UserBlocksSql);
        try
        {
            raw.sqlite3_bind_text(statement, 1, signal);
            raw.sqlite3_bind_int64(statement, 2, userId);
            while (StepRow(db, statement))
            {
                long blockId = raw.sqlite3_column_int64(statement, 0);
                long run = raw.sqlite3_column_int64(statement, 1);
                var reader = new BlockReader(raw.sqlite3_column_blob(statement, 2));
                while (reader.Next())
                {
                    if (reader.User == userId)
                    {
                        each(in reader, blockId, run);
                    }
                    else if (reader.User > userId)
                    {
                        break;
                    }
                }
            }
        }
        finally
        {
            raw.sqlite3_reset(statement);
        }
    }

    /// <summary>
    /// The signal's filter, built from its blocks when this session has none (or another connection
    /// wrote runs since), and rebuilt larger before <paramref name="incoming"/> more keys would overfill it.
    /// </summary>
    private KeyFilter FilterFor(string signal, int incoming, CancellationToken cancellationToken)
    {
        if (_filters.TryGetValue(signal, out var filter) && filter.Count + incoming <= filter.Capacity)
        {
            return filter;
        }

        var db = _connection.Handle!;
        var count = Statement(StoredRowsSql);
        long stored;
        try
        {
            raw.sqlite3_bind_text(count, 1, signal);
            stored = StepRow(db, count) ? raw.sqlite3_column_int64(count, 0) : 0;
        }
        finally
        {
            raw.sqlite3_reset(count);
        }

        filter = new KeyFilter(2 * (stored + incoming));
        ForEachBlock(signal, cancellationToken, data =>
        {
            var reader = new BlockReader(data);
            while (reader.Next())
            {
                filter.Add(KeyFilter.Hash(reader.User, reader.EventTime, reader.EventIdUtf8));
            }
        });
        _filters[signal] = filter;
        return filter;
    }

    private delegate void BlockData(ReadOnlySpan<byte> data);

    /// <summary>Calls <paramref name="each"/> with every block of the signal (a scan; one statement, so one snapshot).</summary>
    private void ForEachBlock(string signal, CancellationToken cancellationToken, BlockData each)
    {
        var db = _connection.Handle!;
        var statement = Statement(SignalBlocksSql);
        try
        {
            raw.sqlite3_bind_text(statement, 1, signal);
            while (StepRow(db, statement))
            {
                // Per block, not per element: a block holds tens to hundreds of them, so a scan of a
                // large signal stops soon after a cancellation, for one flag read per block.
                ScanStep?.Invoke();
                cancellationToken.ThrowIfCancellationRequested();
                each(raw.sqlite3_column_blob(statement, 0));
            }
        }
        finally
        {
            raw.sqlite3_reset(statement);
        }
    }

    private static bool SameKey(in OnlineElement a, in OnlineElement b) =>
        a.UserId == b.UserId && a.EventTimeMicros == b.EventTimeMicros && string.Equals(a.EventId, b.EventId, StringComparison.Ordinal);

    /// <summary>Indexes of <paramref name="elements"/> in run order (user, time descending, id), ties in input order (so the first write wins).</summary>
    private int[] SortedOrder(OnlineElement[] elements)
    {
        int n = elements.Length;
        if (_order.Length < n)
        {
            _order = new int[Math.Max(n, _order.Length * 2)];
        }

        if (_sortKeys.Length < n)
        {
            _sortKeys = new UInt128[_order.Length];
        }

        // (user, time) packed into one unsigned 128-bit key sorts as plain numbers, with the
        // comparison inlined; sorting through a comparer went through a delegate per comparison (a
        // tenth of an append's time). Ids are compared only within runs of equal keys: one user's
        // elements at one instant.
        var keys = _sortKeys.AsSpan(0, n);
        var order = _order.AsSpan(0, n);
        for (int i = 0; i < n; i++)
        {
            var e = elements[i];
            keys[i] = RunKey(e.UserId, e.EventTimeMicros);
            order[i] = i;
        }

        keys.Sort(order);
        for (int start = 0; start < n;)
        {
            int end = start + 1;
            while (end < n && keys[end] == keys[start])
            {
                end++;
            }

            if (end - start > 1)
            {
                order[start..end].Sort(new TieOrder(elements));
            }

            start = end;
        }

        return _order;
    }

    /// <summary>A key whose unsigned order is run order: user ascending, then time descending (both signed).</summary>
    private static UInt128 RunKey(long user, long time) =>
        new((ulong)user ^ 0x8000_0000_0000_0000UL, ~((ulong)time ^ 0x8000_0000_0000_0000UL));

    private void AddRunRows(string signal, long run, long rows)
    {
        using var record = Command($"""
            INSERT INTO {Runs} (signal, run, rows) VALUES ($signal, $run, $rows)
            ON CONFLICT (signal, run) DO UPDATE SET rows = rows + excluded.rows
            """, ("$signal", signal), ("$run", run), ("$rows", rows));
        record.ExecuteNonQuery();
    }

    /// <summary>
    /// Writes elements given in run order as blocks of one run, numbering them from
    /// <paramref name="firstSeq"/>. Call <see cref="Finish"/> to write the last, partial block.
    /// </summary>
    private sealed class RunWriter(SqliteSession session, string signal, long run, long firstSeq) : IDisposable
    {
        private readonly BlockWriter _block = new();
        private long _seq = firstSeq;

        public int Written { get; private set; }

        public void Add(long user, long eventTime, long ingestTime, ReadOnlySpan<byte> eventIdUtf8, ReadOnlySpan<byte> payload)
        {
            _block.Add(user, eventTime, ingestTime, eventIdUtf8, payload);
            Written++;
            if (_block.IsFull)
            {
                Flush();
            }
        }

        public void Finish()
        {
            if (_block.Count > 0)
            {
                Flush();
            }
        }

        public void Dispose() => _block.Dispose();

        private void Flush()
        {
            var db = session._connection.Handle!;
            var insert = session.Statement(InsertBlockSql);
            raw.sqlite3_bind_text(insert, 1, signal);
            raw.sqlite3_bind_int64(insert, 2, run);
            raw.sqlite3_bind_int64(insert, 3, _block.LastUser);
            raw.sqlite3_bind_int64(insert, 4, _seq++);
            raw.sqlite3_bind_int64(insert, 5, _block.Count);
            raw.sqlite3_bind_blob(insert, 6, _block.Encode());
            Step(db, insert);
            _block.Clear();
        }
    }

    private static void Step(sqlite3 db, sqlite3_stmt statement)
    {
        if (StepRow(db, statement))
        {
            raw.sqlite3_reset(statement);
            throw new InvalidOperationException("A statement meant to change rows returned one.");
        }

        raw.sqlite3_reset(statement);
    }

    /// <summary>Steps a raw statement: true on a row, false when done; a failure resets it and throws.</summary>
    private static bool StepRow(sqlite3 db, sqlite3_stmt statement)
    {
        int rc = raw.sqlite3_step(statement);
        if (rc == raw.SQLITE_ROW)
        {
            return true;
        }

        if (rc != raw.SQLITE_DONE)
        {
            int extended = raw.sqlite3_extended_errcode(db);
            string message = raw.sqlite3_errmsg(db).utf8_to_string();
            raw.sqlite3_reset(statement);
            throw new SqliteException($"SQLite Error {rc}: '{message}'.", rc, extended);
        }

        return false;
    }

    /// <summary>A raw statement of this connection, prepared once (SQLitePCL: Microsoft.Data.Sqlite costs several µs per execution).</summary>
    private sqlite3_stmt Statement(string sql)
    {
        if (_statements.TryGetValue(sql, out var statement))
        {
            return statement;
        }

        var db = _connection.Handle!;
        int rc = raw.sqlite3_prepare_v2(db, sql, out statement);
        if (rc != raw.SQLITE_OK)
        {
            throw new SqliteException($"SQLite Error {rc}: '{raw.sqlite3_errmsg(db).utf8_to_string()}'.", rc, raw.sqlite3_extended_errcode(db));
        }

        _statements.Add(sql, statement);
        return statement;
    }

    private void ExecuteRaw(string sql)
    {
        var db = _connection.Handle!;
        int rc = raw.sqlite3_exec(db, sql);
        if (rc != raw.SQLITE_OK)
        {
            throw new SqliteException($"SQLite Error {rc}: '{raw.sqlite3_errmsg(db).utf8_to_string()}'.", rc, raw.sqlite3_extended_errcode(db));
        }
    }

    /// <summary>
    /// A new run number, inside the caller's write transaction. Numbers another connection took since
    /// this one last wrote mean runs this session's key filters have not seen: the filters are dropped
    /// (and rebuilt from the blocks when next needed).
    /// </summary>
    private long NextRun()
    {
        var db = _connection.Handle!;
        var next = Statement(NextRunSql);
        long run;
        try
        {
            if (!StepRow(db, next))
            {
                throw new InvalidOperationException("The store's run counter is missing.");
            }

            run = raw.sqlite3_column_int64(next, 0);
            while (StepRow(db, next))
            {
            }
        }
        finally
        {
            raw.sqlite3_reset(next);
        }

        if (run - 1 != _lastRunSeen)
        {
            _filters.Clear();
        }

        return run;
    }

    /// <summary>A new run number (its own short transaction) for a merge to write into.</summary>
    public long AllocateRun()
    {
        using var transaction = _connection.BeginTransaction(deferred: false);
        long run = NextRun();
        transaction.Commit();
        _lastRunSeen = run;
        return run;
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
    public List<(long Run, long Rows)> ListRuns(string signal)
    {
        var runs = _runs ??= Prepare(RunsSql, ("$signal", SqliteType.Text));
        runs.Parameters[0].Value = signal;
        var result = new List<(long, long)>();
        using (var reader = runs.ExecuteReader())
        {
            while (reader.Read())
            {
                result.Add((reader.GetInt64(0), reader.GetInt64(1)));
            }
        }

        return result;
    }


    /// <summary>
    /// Moves the elements of users <paramref name="low"/> and up (a bounded chunk of them) from the
    /// <paramref name="sources"/> runs into run <paramref name="target"/>, in one transaction, so
    /// every element is in exactly one run at every commit. Returns the first user of the next chunk,
    /// or null when the sources are empty (they are then dropped and the target's size recorded).
    /// <paramref name="sources"/> should start with the largest run: the chunk's end is read off it.
    /// </summary>
    public long? MergeChunk(string signal, IReadOnlyList<long> sources, long target, long low, int chunkRows)
    {
        var db = _connection.Handle!;
        // A merge chunk need not be durable on its own: a file that loses it at a power cut is still
        // consistent (every element in one run), and the next append's synced commit makes it durable.
        ExecuteRaw("PRAGMA synchronous = NORMAL");
        try
        {
            return MergeChunkInTransaction(db, signal, sources, target, low, chunkRows);
        }
        finally
        {
            ExecuteRaw("PRAGMA synchronous = FULL");
        }
    }

    private long? MergeChunkInTransaction(sqlite3 db, string signal, IReadOnlyList<long> sources, long target, long low, int chunkRows)
    {
        using var transaction = _connection.BeginTransaction(deferred: false);
        long high = ChunkEnd(signal, sources[0], low, Math.Max(1, chunkRows / sources.Count));

        // The chunk's elements of every source: whole blocks up to the chunk's end are moved and
        // deleted; the block across it keeps its elements after the end, re-encoded in place.
        // The chunk's blocks are copied into one arena kept by the session, and the moved elements point
        // into it: merges run all day, and a list and an array per block per chunk was most of what
        // the store allocated (large arrays, fresh pages from the kernel every chunk).
        var moved = _moved;
        moved.Clear();
        int arenaUsed = 0;
        using var rest = new BlockWriter();
        var fromBlocks = Statement(RunBlocksFromSql);
        bool sourcesLeft = false;
        var runsMoved = new (int Start, int End)[sources.Count];
        for (int s = 0; s < sources.Count; s++)
        {
            long source = sources[s];
            int startMoved = moved.Count;
            long movedHere = 0;
            var deletes = new List<long>();
            (long Id, long UserHi, int Count)? across = null;
            try
            {
                raw.sqlite3_bind_text(fromBlocks, 1, signal);
                raw.sqlite3_bind_int64(fromBlocks, 2, source);
                raw.sqlite3_bind_int64(fromBlocks, 3, low);
                while (StepRow(db, fromBlocks))
                {
                    long id = raw.sqlite3_column_int64(fromBlocks, 0);
                    long userHi = raw.sqlite3_column_int64(fromBlocks, 1);
                    var blob = raw.sqlite3_column_blob(fromBlocks, 3);
                    int at = arenaUsed;
                    if (_arena.Length - at < blob.Length)
                    {
                        Array.Resize(ref _arena, Math.Max(at + blob.Length, _arena.Length * 2));
                    }

                    blob.CopyTo(_arena.AsSpan(at));
                    arenaUsed += blob.Length;
                    var reader = new BlockReader(_arena.AsSpan(at, blob.Length));
                    while (reader.Next())
                    {
                        if (reader.User <= high)
                        {
                            moved.Add(new MovedElement(reader.User, reader.EventTime, reader.IngestTime, Shift(reader.EventIdRange, at), Shift(reader.PayloadRange, at)));
                            movedHere++;
                        }
                        else
                        {
                            rest.Add(reader.User, reader.EventTime, reader.IngestTime, reader.EventIdUtf8, reader.Payload);
                        }
                    }

                    if (userHi > high)
                    {
                        across = (id, userHi, reader.Count);
                        sourcesLeft = true;
                        break;
                    }

                    deletes.Add(id);
                }
            }
            finally
            {
                raw.sqlite3_reset(fromBlocks);
            }

            foreach (var id in deletes)
            {
                DeleteBlock(id);
            }

            if (across is { } block)
            {
                if (rest.Count < block.Count)
                {
                    UpdateBlock(block.Id, block.UserHi, rest);
                }

                rest.Clear();
            }

            if (movedHere > 0)
            {
                AddRunRows(signal, source, -movedHere);
            }

            runsMoved[s] = (startMoved, moved.Count);
        }

        // Each source's elements are in run order already: merged k ways (k is the fan-in), no sort.
        var order = new MovedOrder(_arena);
        using (var writer = new RunWriter(this, signal, target, NextSeq(signal, target)))
        {
            while (true)
            {
                int next = -1;
                for (int s = 0; s < runsMoved.Length; s++)
                {
                    var (start, end) = runsMoved[s];
                    if (start < end && (next < 0 || order.Compare(moved[start], moved[runsMoved[next].Start]) < 0))
                    {
                        next = s;
                    }
                }

                if (next < 0)
                {
                    break;
                }

                var m = moved[runsMoved[next].Start++];
                writer.Add(m.User, m.EventTime, m.IngestTime, _arena.AsSpan(m.EventId), _arena.AsSpan(m.Payload));
            }

            writer.Finish();
        }

        AddRunRows(signal, target, moved.Count);
        if (!sourcesLeft)
        {
            // Every block of the sources from `low` on was moved above, and those below it by earlier
            // chunks. A source that still has blocks got them since, as the target of another
            // process's merge (which goes on writing users below this merge's chunks): they stay, and
            // so does that run.
            string inSources = string.Join(',', sources.Select(s => s.ToString(CultureInfo.InvariantCulture)));
            using var finish = Command($"""
                DELETE FROM {Runs} WHERE signal = $signal AND run IN ({inSources})
                    AND NOT EXISTS (SELECT 1 FROM {Blocks} b WHERE b.signal = $signal AND b.run = {Runs}.run);
                DELETE FROM {Runs} WHERE signal = $signal AND run = $target AND rows = 0;
                """, ("$signal", signal), ("$target", target));
            finish.ExecuteNonQuery();
            transaction.Commit();
            return null;
        }

        transaction.Commit();
        return high + 1;
    }

    /// <summary>The last user of the chunk that starts at <paramref name="low"/>: about <paramref name="rows"/> elements of <paramref name="run"/> in whole blocks; every user when fewer are left.</summary>
    private long ChunkEnd(string signal, long run, long low, int rows)
    {
        var db = _connection.Handle!;
        var blocks = Statement(RunBlocksFromSql);
        try
        {
            raw.sqlite3_bind_text(blocks, 1, signal);
            raw.sqlite3_bind_int64(blocks, 2, run);
            raw.sqlite3_bind_int64(blocks, 3, low);
            long seen = 0;
            while (StepRow(db, blocks))
            {
                seen += raw.sqlite3_column_int64(blocks, 2);
                if (seen >= rows)
                {
                    return raw.sqlite3_column_int64(blocks, 1);
                }
            }

            return long.MaxValue;
        }
        finally
        {
            raw.sqlite3_reset(blocks);
        }
    }

    /// <summary>The position after the last block of a run (0 for an empty run).</summary>
    private long NextSeq(string signal, long run)
    {
        using var last = Command($"SELECT seq FROM {Blocks} WHERE signal = $signal AND run = $run ORDER BY user_hi DESC, seq DESC LIMIT 1", ("$signal", signal), ("$run", run));
        return last.ExecuteScalar() is long seq ? seq + 1 : 0;
    }

    private void DeleteBlock(long id)
    {
        var delete = Statement(DeleteBlockSql);
        raw.sqlite3_bind_int64(delete, 1, id);
        Step(_connection.Handle!, delete);
    }

    /// <summary>Replaces a block's elements by <paramref name="elements"/> (cleared by the caller), or deletes it when they are none.</summary>
    private void UpdateBlock(long id, long userHi, BlockWriter elements)
    {
        if (elements.Count == 0)
        {
            DeleteBlock(id);
            return;
        }

        var update = Statement(UpdateBlockSql);
        raw.sqlite3_bind_int64(update, 1, id);
        raw.sqlite3_bind_int64(update, 2, userHi);
        raw.sqlite3_bind_int64(update, 3, elements.Count);
        raw.sqlite3_bind_blob(update, 4, elements.Encode());
        Step(_connection.Handle!, update);
    }

    /// <summary>Run order among elements of one user at one instant: id by code point, then position in the batch.</summary>
    private readonly struct TieOrder(OnlineElement[] elements) : IComparer<int>
    {
        public int Compare(int x, int y)
        {
            int c = x == y ? 0 : OnlineOrder.CompareEventIds(elements[x].EventId, elements[y].EventId);
            return c != 0 ? c : x.CompareTo(y);
        }
    }

    /// <summary>An element of a merge chunk; its id and payload are ranges of the session's merge arena.</summary>
    private readonly record struct MovedElement(long User, long EventTime, long IngestTime, Range EventId, Range Payload);

    /// <summary>A range of a block read at <paramref name="offset"/> of the arena, as a range of the arena.</summary>
    private static Range Shift(Range inBlock, int offset) => new(inBlock.Start.Value + offset, inBlock.End.Value + offset);

    /// <summary>Run order over moved elements: user, time descending, id by code point (= UTF-8 byte order).</summary>
    private sealed class MovedOrder(byte[] arena) : IComparer<MovedElement>
    {
        public int Compare(MovedElement x, MovedElement y)
        {
            int c = x.User.CompareTo(y.User);
            if (c == 0)
            {
                c = y.EventTime.CompareTo(x.EventTime);
            }

            return c != 0 ? c : arena.AsSpan(x.EventId).SequenceCompareTo(arena.AsSpan(y.EventId));
        }
    }

    public Task ReadAsync(string signal, long userId, OnlineReadOptions options, List<OnlineElement> into, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (options.SelectsNothing)
        {
            return Task.CompletedTask;
        }

        int start = into.Count;
        long asOf = options.AsOfMicros, from = options.FromMicros, knownAt = options.KnownAtMicros;
        ForEachUserElement(signal, userId, (in BlockReader r, long _, long _) =>
        {
            if (r.EventTime <= asOf && r.EventTime >= from && r.IngestTime <= knownAt)
            {
                into.Add(r.ToElement());
            }
        });

        int count = into.Count - start;
        if (count > 1)
        {
            into.Sort(start, count, OnlineOrder.Instance);
        }

        if (count > options.Limit)
        {
            into.RemoveRange(start + options.Limit, count - options.Limit);
        }

        return Task.CompletedTask;
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
                await ReadAsync(signal, userId, options, elements, cancellationToken).ConfigureAwait(false);
                result.Add(userId, elements);
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>The users of <paramref name="signal"/> with more than <paramref name="keep"/> elements, ascending (a scan: on a reader).</summary>
    public List<long> UsersOver(string signal, int keep, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested(); // a signal with no blocks scans none
        var counts = new Dictionary<long, int>();
        ForEachBlock(signal, cancellationToken, data =>
        {
            var reader = new BlockReader(data);
            while (reader.Next())
            {
                counts[reader.User] = counts.GetValueOrDefault(reader.User) + 1;
            }
        });

        var users = new List<long>();
        foreach (var (user, count) in counts)
        {
            if (count > keep)
            {
                users.Add(user);
            }
        }

        users.Sort();
        return users;
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> elements of each of <paramref name="users"/> in one transaction.</summary>
    public long TrimUsers(string signal, IReadOnlyList<long> users, int keep, CancellationToken cancellationToken)
    {
        using var transaction = _connection.BeginTransaction(deferred: false);

        // First what goes: per block, the keys of its elements beyond each user's newest keep.
        var excessByBlock = new Dictionary<long, (long Run, HashSet<(long, long, string)> Keys)>();
        var stored = new List<(long Time, string Id, long Block, long Run)>();
        foreach (var user in users)
        {
            // A cancellation rolls the whole step back: a user is trimmed to its newest keep or not at all.
            ScanStep?.Invoke();
            cancellationToken.ThrowIfCancellationRequested();
            stored.Clear();
            ForEachUserElement(signal, user, (in BlockReader r, long block, long run) => stored.Add((r.EventTime, r.EventId, block, run)));
            if (stored.Count <= keep)
            {
                continue;
            }

            stored.Sort((a, b) => a.Time != b.Time ? b.Time.CompareTo(a.Time) : OnlineOrder.CompareEventIds(a.Id, b.Id));
            for (int i = keep; i < stored.Count; i++)
            {
                var (time, id, block, run) = stored[i];
                if (!excessByBlock.TryGetValue(block, out var excess))
                {
                    excessByBlock[block] = excess = (run, []);
                }

                excess.Keys.Add((user, time, id));
            }
        }

        // Then each block touched is re-encoded without them (or deleted when nothing is left).
        var db = _connection.Handle!;
        var removedByRun = new Dictionary<long, long>();
        using var kept = new BlockWriter();
        var read = Statement(BlockDataSql);
        foreach (var (block, (run, keys)) in excessByBlock)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int removed = 0;
            try
            {
                raw.sqlite3_bind_int64(read, 1, block);
                if (!StepRow(db, read))
                {
                    continue;
                }

                var reader = new BlockReader(raw.sqlite3_column_blob(read, 0));
                while (reader.Next())
                {
                    if (keys.Contains((reader.User, reader.EventTime, reader.EventId)))
                    {
                        removed++;
                    }
                    else
                    {
                        kept.Add(reader.User, reader.EventTime, reader.IngestTime, reader.EventIdUtf8, reader.Payload);
                    }
                }
            }
            finally
            {
                raw.sqlite3_reset(read);
            }

            UpdateBlock(block, kept.LastUser, kept);
            kept.Clear();
            removedByRun[run] = removedByRun.GetValueOrDefault(run) + removed;
        }

        long deleted = 0;
        foreach (var (run, removed) in removedByRun)
        {
            AddRunRows(signal, run, -removed);
            deleted += removed;
        }

        using (var empty = Command($"DELETE FROM {Runs} WHERE signal = $signal AND rows <= 0", ("$signal", signal)))
        {
            empty.ExecuteNonQuery();
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

    public OnlineStoreStats Stats(string signal, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested(); // a signal with no blocks scans none
        var users = new HashSet<long>();
        long elements = 0;
        long? newestEvent = null, newestIngest = null;
        ForEachBlock(signal, cancellationToken, data =>
        {
            var reader = new BlockReader(data);
            while (reader.Next())
            {
                users.Add(reader.User);
                elements++;
                newestEvent = Math.Max(newestEvent ?? long.MinValue, reader.EventTime);
                newestIngest = Math.Max(newestIngest ?? long.MinValue, reader.IngestTime);
            }
        });

        return new OnlineStoreStats(users.Count, elements, newestEvent, newestIngest);
    }

    public void Dispose()
    {
        foreach (var statement in _statements.Values)
        {
            statement.Dispose();
        }

        _statements.Clear();
        _checkpoint?.Dispose();
        _runs?.Dispose();
        _connection.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

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
