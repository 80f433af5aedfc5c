using System.Collections.Concurrent;
using System.Data;
using Microsoft.Data.Sqlite;

namespace Weft.Online.Sqlite;

/// <summary>
/// The embedded online store: one SQLite file in WAL mode. One writer connection (SQLite admits one
/// writer at a time, so appends and trim steps queue on a lock instead of spinning on SQLITE_BUSY)
/// and up to <see cref="OnlineStoreTuning.MaxReaders"/> reader connections, each with its statements
/// prepared once. Readers never wait for the writer: WAL gives each read its own snapshot.
/// </summary>
internal sealed class SqliteOnlineStore : IOnlineStore
{
    private readonly string _connectionString;
    private readonly OnlineStoreTuning _tuning;
    private readonly SqliteSession _writer;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _readSlots;
    private readonly ConcurrentQueue<SqliteSession> _idleReaders = new();
    private int _disposed;

    private SqliteOnlineStore(string describe, string connectionString, OnlineStoreTuning tuning, SqliteSession writer)
    {
        Describe = describe;
        _connectionString = connectionString;
        _tuning = tuning;
        _writer = writer;
        _readSlots = new SemaphoreSlim(tuning.MaxReaders, tuning.MaxReaders);
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
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            if (writer is not null)
            {
                await writer.DisposeAsync().ConfigureAwait(false);
            }

            throw new OnlineStoreException(describe, $"Cannot open the SQLite online store at '{fullPath}': {ex.Message}", SqliteErrors.IsTransient(ex), ex);
        }
    }

    public async ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        OnlineArguments.Signal(signal);
        OnlineArguments.Elements(elements);
        OnlineArguments.Checkpoint(checkpoint);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (elements.Count == 0 && (checkpoint is null || checkpoint.Offsets.Count == 0))
        {
            return 0;
        }

        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await _writer.AppendAsync(signal, elements, checkpoint, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw Failure("Append", ex);
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
            await session.ReadAsync(signal, userId, options, result, transaction: null, cancellationToken).ConfigureAwait(false);
            return result;
        }
        catch (SqliteException ex)
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
        catch (SqliteException ex)
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
        long deleted = 0;
        var low = long.MinValue;
        while (true)
        {
            long high;
            await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                high = await _writer.TrimBoundaryAsync(signal, low, _tuning.TrimChunkRows, cancellationToken).ConfigureAwait(false) ?? long.MaxValue;
                deleted += await _writer.TrimRangeAsync(signal, low, high, keep, cancellationToken).ConfigureAwait(false);
            }
            catch (SqliteException ex)
            {
                throw Failure("Trim", ex);
            }
            finally
            {
                _writeLock.Release();
            }

            if (high == long.MaxValue)
            {
                return deleted;
            }

            low = high + 1;
        }
    }

    public async ValueTask<IReadOnlyDictionary<string, long>> ReadCheckpointAsync(string consumer, CancellationToken cancellationToken)
    {
        OnlineArguments.Consumer(consumer);
        var session = await RentReaderAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await session.ReadCheckpointAsync(consumer, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
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
            return await session.StatsAsync(signal, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw Failure("Stats", ex);
        }
        finally
        {
            ReturnReader(session);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        while (_idleReaders.TryDequeue(out var reader))
        {
            await reader.DisposeAsync().ConfigureAwait(false);
        }

        await _writer.DisposeAsync().ConfigureAwait(false);
        _writeLock.Dispose();
        _readSlots.Dispose();
    }

    private async ValueTask<SqliteSession> RentReaderAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await _readSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_idleReaders.TryDequeue(out var session))
        {
            return session;
        }

        try
        {
            return await SqliteSession.OpenAsync(_connectionString, reader: true, cancellationToken).ConfigureAwait(false);
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

    private OnlineStoreException Failure(string operation, SqliteException ex) =>
        new(Describe, $"{operation} failed on the online store {Describe}: {ex.Message}", SqliteErrors.IsTransient(ex), ex);
}

/// <summary>Which SQLite failures a retry may cure.</summary>
internal static class SqliteErrors
{
    private const int Busy = 5;
    private const int Locked = 6;

    public static bool IsTransient(Exception ex) =>
        ex is SqliteException sqlite && (sqlite.SqliteErrorCode & 0xFF) is Busy or Locked;
}
