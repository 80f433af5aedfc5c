using System.Collections.Concurrent;
using System.Data;
using Microsoft.Data.Sqlite;

namespace Weft.Online.Sqlite;

/// <summary>
/// The embedded online store: one SQLite file in WAL mode. One writer connection (SQLite admits one
/// writer at a time, so appends and trim steps queue on a lock instead of spinning on SQLITE_BUSY)
/// and up to <see cref="OnlineStoreTuning.MaxReaders"/> reader connections, each with its statements
/// prepared once. Readers never wait for the writer: WAL gives each read its own snapshot. A
/// background checkpointer, on a connection of its own, copies the WAL into the database file at most
/// every <see cref="OnlineStoreTuning.CheckpointInterval"/>, so no append pays for a checkpoint.
/// </summary>
internal sealed class SqliteOnlineStore : IOnlineStore
{
    private readonly string _connectionString;
    private readonly OnlineStoreTuning _tuning;
    private readonly SqliteSession _writer;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _readSlots;
    private readonly ConcurrentQueue<SqliteSession> _idleReaders = new();
    private readonly RunMergePolicy _merges;
    private readonly CancellationTokenSource _stop = new();

    // Starting a background task and disposal's "no more of them" are serialised on this gate: a
    // task started after disposal stopped awaiting would read the disposed token source and fail
    // with no one to observe it (an append racing disposal started one).
    private readonly Lock _background = new();
    private bool _stopping; // under _background
    private Task? _mergeTask;
    private int _merging; // written under _background
    private int _mergesDone;
    private volatile OnlineStoreException? _mergeFailure;
    private readonly SemaphoreSlim _walWritten = new(0, 1);
    private Task? _checkpointTask;
    private int _checkpoints;
    private volatile OnlineStoreException? _checkpointFailure;
    private int _disposed;
    private bool _writerClosed; // under the write lock: disposal closed the writer, so a waiter that gets the lock after it must not use it
    private Action? _scanStep;
    private bool _unsynced; // a deferred append committed since the last sync; under the write lock

    private SqliteOnlineStore(string describe, string connectionString, OnlineStoreTuning tuning, SqliteSession writer)
    {
        Describe = describe;
        _connectionString = connectionString;
        _tuning = tuning;
        _writer = writer;
        _readSlots = new SemaphoreSlim(tuning.MaxReaders, tuning.MaxReaders);
        _merges = new RunMergePolicy(tuning.MergeBaseRows, tuning.MergeFanIn);
    }

    public string Describe { get; }

    public static async Task<IOnlineStore> OpenAsync(string path, OnlineStoreTuning tuning, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var fullPath = Path.GetFullPath(path);
        var describe = "sqlite:" + fullPath;
        var directory = Path.GetDirectoryName(fullPath);
        if (directory is not null && !Directory.Exists(directory))
        {
            throw new OnlineStoreException(describe, $"Cannot open the SQLite online store at '{fullPath}': the directory '{directory}' does not exist.", isTransient: false);
        }

        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = fullPath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = false, // the store keeps its own connections open for its lifetime
            DefaultTimeout = 30, // seconds SQLite retries a busy database (another process writing)
        }.ToString();

        SqliteSession? writer = null;
        try
        {
            writer = await SqliteSession.OpenAsync(connectionString, reader: false, cancellationToken).ConfigureAwait(false);
            await writer.CreateSchemaAsync(cancellationToken).ConfigureAwait(false);
            return new SqliteOnlineStore(describe, connectionString, tuning, writer);
        }
        catch (Exception ex)
        {
            // Any failure, a cancellation too: the store is never handed out, so its writer
            // connection would stay open (the file with it) with no one to close it.
            if (writer is not null)
            {
                await writer.DisposeAsync().ConfigureAwait(false);
            }

            if (ex is not (SqliteException or IOException or UnauthorizedAccessException or InvalidOperationException))
            {
                throw;
            }

            throw new OnlineStoreException(describe, $"Cannot open the SQLite online store at '{fullPath}': {ex.Message}", SqliteErrors.IsTransient(ex), ex);
        }
    }

    public async ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, OnlineDurability durability, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        OnlineArguments.Elements(elements);
        OnlineArguments.Checkpoint(checkpoint);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (elements.Count == 0 && (checkpoint is null || checkpoint.Offsets.Count == 0))
        {
            return 0;
        }

        ThrowIfBackgroundFailed();
        int added;
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_writerClosed, this);
            added = _writer.Append(signal, elements, checkpoint, synced: durability == OnlineDurability.Immediate, cancellationToken);
            _unsynced = durability == OnlineDurability.Deferred; // an immediate commit synced the WAL, earlier frames with it
            if (added > 0 && _merges.Due(signal, _writer.ListRuns(signal)))
            {
                StartMerging();
            }

            NoteWalWritten();
        }
        catch (Exception ex) when (SqliteErrors.IsStoreFailure(ex))
        {
            throw Failure("Append", ex);
        }
        finally
        {
            _writeLock.Release();
        }

        return added;
    }

    public async ValueTask SyncAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        ThrowIfBackgroundFailed();
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_writerClosed, this);
            if (_unsynced)
            {
                _writer.Sync();
                _unsynced = false;
                NoteWalWritten();
            }
        }
        catch (Exception ex) when (SqliteErrors.IsStoreFailure(ex))
        {
            throw Failure("Sync", ex);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async ValueTask<IReadOnlyList<OnlineElement>> ReadAsync(string signal, long userId, OnlineReadOptions options, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        ArgumentNullException.ThrowIfNull(options);
        var session = await RentReaderAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var result = new List<OnlineElement>();
            await session.ReadAsync(signal, userId, options, result, cancellationToken).ConfigureAwait(false);
            return result;
        }
        catch (Exception ex) when (SqliteErrors.IsStoreFailure(ex))
        {
            throw Failure("Read", ex);
        }
        finally
        {
            ReturnReader(session);
        }
    }

    public async ValueTask<IReadOnlyDictionary<long, IReadOnlyList<OnlineElement>>> ReadManyAsync(string signal, IReadOnlyList<long> userIds, OnlineReadOptions options, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        ArgumentNullException.ThrowIfNull(userIds);
        ArgumentNullException.ThrowIfNull(options);
        var session = await RentReaderAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await session.ReadManyAsync(signal, userIds, options, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (SqliteErrors.IsStoreFailure(ex))
        {
            throw Failure("Read", ex);
        }
        finally
        {
            ReturnReader(session);
        }
    }

    public async ValueTask<long> TrimAsync(string signal, int keep, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        OnlineArguments.Keep(keep);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);

        // Who is over: a scan, on a reader connection so appends go on meanwhile.
        List<long> users;
        var session = await RentReaderAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            users = session.UsersOver(signal, keep, cancellationToken);
        }
        catch (Exception ex) when (SqliteErrors.IsStoreFailure(ex))
        {
            throw Failure("Trim", ex);
        }
        finally
        {
            ReturnReader(session);
        }

        // Then their excess, a bounded number of users per short write transaction.
        long deleted = 0;
        int step = Math.Max(1, _tuning.TrimChunkRows);
        for (int from = 0; from < users.Count; from += step)
        {
            await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ObjectDisposedException.ThrowIf(_writerClosed, this);
                deleted += _writer.TrimUsers(signal, users.GetRange(from, Math.Min(step, users.Count - from)), keep, cancellationToken);
                NoteWalWritten();
            }
            catch (Exception ex) when (SqliteErrors.IsStoreFailure(ex))
            {
                throw Failure("Trim", ex);
            }
            finally
            {
                _writeLock.Release();
            }
        }

        return deleted;
    }

    public async ValueTask<IReadOnlyDictionary<string, long>> ReadCheckpointAsync(string consumer, CancellationToken cancellationToken)
    {
        OnlineArguments.Consumer(consumer);
        var session = await RentReaderAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await session.ReadCheckpointAsync(consumer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (SqliteErrors.IsStoreFailure(ex))
        {
            throw Failure("Reading the checkpoint", ex);
        }
        finally
        {
            ReturnReader(session);
        }
    }

    public async ValueTask<OnlineStoreStats> StatsAsync(string signal, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        var session = await RentReaderAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return session.Stats(signal, cancellationToken);
        }
        catch (Exception ex) when (SqliteErrors.IsStoreFailure(ex))
        {
            throw Failure("Stats", ex);
        }
        finally
        {
            ReturnReader(session);
        }
    }

    /// <summary>
    /// Merges runs in the background while a signal has merges due (see <see cref="RunMergePolicy"/>),
    /// one chunk of users per write transaction, taking the write lock per chunk so appends
    /// interleave. A failure stops merging and is thrown by the next append.
    /// </summary>
    private void StartMerging()
    {
        lock (_background)
        {
            if (_stopping || _merging != 0)
            {
                return;
            }

            _merging = 1;
            var token = _stop.Token; // not disposed: disposal sets _stopping first, under this gate
            _mergeTask = Task.Run(() => MergeWhileDueAsync(token));
        }
    }

    /// <summary>
    /// One task merges until nothing is due, rather than starting a successor: disposal then has one
    /// task to await, and no task runs on after the one it awaited.
    /// </summary>
    private async Task MergeWhileDueAsync(CancellationToken token)
    {
        while (true)
        {
            await MergeDueAsync(token).ConfigureAwait(false);
            lock (_background)
            {
                // Under the gate, so an append that made a signal due after the loop looked either
                // is seen here or finds _merging clear and starts a task itself.
                if (_mergeFailure is not null || _stopping || token.IsCancellationRequested || !_merges.HasDue)
                {
                    _merging = 0;
                    return;
                }
            }
        }
    }

    private async Task MergeDueAsync(CancellationToken token)
    {
        try
        {
            while (!token.IsCancellationRequested && _merges.Next() is { } signal)
            {
                List<long>? sources;
                long target;
                await _writeLock.WaitAsync(token).ConfigureAwait(false);
                try
                {
                    sources = _merges.Plan(_writer.ListRuns(signal));
                    target = sources is null ? 0 : _writer.AllocateRun();
                }
                finally
                {
                    _writeLock.Release();
                }

                long? low = long.MinValue;
                while (sources is not null && low is { } from && !token.IsCancellationRequested)
                {
                    await _writeLock.WaitAsync(token).ConfigureAwait(false);
                    try
                    {
                        low = _writer.MergeChunk(signal, sources, target, from, _tuning.MergeChunkRows);
                        NoteWalWritten();
                    }
                    finally
                    {
                        _writeLock.Release();
                    }
                }

                if (sources is not null && low is null)
                {
                    Interlocked.Increment(ref _mergesDone);
                }

                // Merged runs may make the next level due: look again.
                await _writeLock.WaitAsync(token).ConfigureAwait(false);
                try
                {
                    _merges.Due(signal, _writer.ListRuns(signal));
                }
                finally
                {
                    _writeLock.Release();
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // disposing: an interrupted merge leaves every row in exactly one run; the next one goes on
        }
#pragma warning disable CA1031 // A background task: any failure is kept and thrown by the next append, not lost.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _mergeFailure = Failure("Merging runs", ex);
        }
    }

    /// <summary>Wakes the checkpointer (started at the first write). Called under the write lock.</summary>
    private void NoteWalWritten()
    {
        if (_checkpointTask is null)
        {
            lock (_background)
            {
                if (!_stopping)
                {
                    var token = _stop.Token; // not disposed: disposal sets _stopping first, under this gate
                    _checkpointTask = Task.Run(() => CheckpointWhileWrittenAsync(token));
                }
            }
        }

        if (_walWritten.CurrentCount == 0)
        {
            try
            {
                _walWritten.Release();
            }
            catch (SemaphoreFullException)
            {
                // woken already
            }
        }
    }

    /// <summary>
    /// After each write (at most once per interval): a passive checkpoint, which neither waits for nor
    /// blocks the writer and readers. A failure (the disk, not the data: the WAL keeps every commit)
    /// stops checkpointing and is thrown by the next append.
    /// </summary>
    private async Task CheckpointWhileWrittenAsync(CancellationToken token)
    {
        SqliteSession? session = null;
        try
        {
            session = await SqliteSession.OpenAsync(_connectionString, reader: false, token).ConfigureAwait(false);
            while (true)
            {
                await _walWritten.WaitAsync(token).ConfigureAwait(false);
                session.Checkpoint();
                Interlocked.Increment(ref _checkpoints);
                await Task.Delay(_tuning.CheckpointInterval, token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // disposing: closing the last connection checkpoints the rest
        }
#pragma warning disable CA1031 // A background task: any failure is kept and thrown by the next append, not lost.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _checkpointFailure = Failure("Checkpointing the WAL", ex);
        }
        finally
        {
            session?.Dispose();
        }
    }

    /// <summary>Test seam: see <see cref="SqliteSession.ScanStep"/>; set on the writer and on every reader rented after.</summary>
    internal Action? ScanStep
    {
        get => _scanStep;
        set
        {
            _scanStep = value;
            _writer.ScanStep = value;
        }
    }

    /// <summary>Checkpoints run since the store opened (for tests).</summary>
    internal int CheckpointsDone => Volatile.Read(ref _checkpoints);

    /// <summary>Merges completed since the store opened (for tests and metrics).</summary>
    internal int MergesDone => Volatile.Read(ref _mergesDone);

    /// <summary>Waits for the background merges due now to finish.</summary>
    internal async Task WaitForMergesAsync()
    {
        while (Volatile.Read(ref _merging) != 0 || _merges.HasDue)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this); // disposal starts no merge: what is due stays due
            ThrowIfBackgroundFailed();
            if (_mergeTask is { } task)
            {
                await task.ConfigureAwait(false);
            }

            if (Volatile.Read(ref _merging) == 0 && _merges.HasDue)
            {
                StartMerging();
            }
        }

        ThrowIfBackgroundFailed();
    }

    private void ThrowIfBackgroundFailed()
    {
        if ((_mergeFailure ?? _checkpointFailure) is { } failure)
        {
            throw new OnlineStoreException(Describe, failure.Message, failure.IsTransient, failure);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // After this no background task starts (an append still running may try), so the two read
        // here are the last; each catches its own failures, and awaiting them observes the rest.
        Task? merging, checkpointing;
        lock (_background)
        {
            _stopping = true;
            merging = _mergeTask;
            checkpointing = _checkpointTask;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (merging is not null)
        {
            await merging.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (checkpointing is not null)
        {
            await checkpointing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stop.Dispose();

        while (_idleReaders.TryDequeue(out var reader))
        {
            await reader.DisposeAsync().ConfigureAwait(false);
        }

        // An append still running on another thread finishes (or fails) before its connection goes;
        // one still waiting for the lock gets it afterwards and is refused, so the lock is released
        // and left undisposed (a disposed one would leave that waiter hanging).
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _writerClosed = true;
            await _writer.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }

        _readSlots.Dispose();
        _walWritten.Dispose();
    }

    private async ValueTask<SqliteSession> RentReaderAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await _readSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_idleReaders.TryDequeue(out var session))
        {
            session.ScanStep = _scanStep;
            return session;
        }

        try
        {
            session = await SqliteSession.OpenAsync(_connectionString, reader: true, cancellationToken).ConfigureAwait(false);
            session.ScanStep = _scanStep;
            return session;
        }
        catch (Exception ex)
        {
            _readSlots.Release();
            if (ex is SqliteException sqlite)
            {
                throw Failure("Opening a reader connection", sqlite);
            }

            throw;
        }
    }

    private void ReturnReader(SqliteSession session)
    {
        if (_disposed != 0)
        {
            session.Dispose();
            return;
        }

        _idleReaders.Enqueue(session);
        _readSlots.Release();
    }

    private OnlineStoreException Failure(string operation, Exception ex) =>
        new(Describe, $"{operation} failed on the online store {Describe}: {ex.Message}", SqliteErrors.IsTransient(ex), ex);
}

/// <summary>Which SQLite failures a retry may cure.</summary>
internal static class SqliteErrors
{
    private const int Busy = 5;
    private const int Locked = 6;

    /// <summary>A failure of the file: SQLite's own, or a block that does not decode (changed outside Weft).</summary>
    public static bool IsStoreFailure(Exception ex) => ex is SqliteException or InvalidDataException;

    public static bool IsTransient(Exception ex) =>
        ex is SqliteException sqlite && (sqlite.SqliteErrorCode & 0xFF) is Busy or Locked;
}
