using System.Collections.Concurrent;

namespace Weft.Migration;

/// <summary>Which side serves one event type to one consumer for one user, and why.</summary>
/// <param name="Percent">The route the consumer follows (its own, else the default one); null when there is none.</param>
/// <param name="Bucket">The user's bucket of <see cref="MigrationRouting.Buckets"/> for this event type.</param>
public sealed record RouteDecision(string EventType, bool ServedByWeft, MigrationStage Stage, double? Percent, int Bucket);

/// <summary>A user's routes for every event type asked, and the version of the signal's assembly they come from (<see cref="MigrationStore.AssemblyAsync"/>).</summary>
public sealed record RouteSet(IReadOnlyList<RouteDecision> Decisions, long AssemblyVersion);

/// <summary>
/// The routes as a server reads them on every request: each signal's statuses are re-read from the
/// ledger at most once per refresh interval (so a rollback reaches every server within it), and users
/// served while a route splits traffic (0 &lt; percent &lt; 100) are buffered as exposures and written in
/// batches by <see cref="FlushAsync"/>, for the sample-ratio check (<c>weft migrate srm</c>).
/// Given the empty stand-in <see cref="MigrationStore.OpenForReadingAsync"/> returns for a ledger file
/// that does not exist, it routes as before any migration until <c>weft migrate shadow</c> creates the
/// file, and opens that at the next refresh: the router never creates a ledger, so a lost one stays
/// missing and every later step refuses it instead of acting on a blank history.
/// </summary>
public sealed class MigrationRouter : IAsyncDisposable
{
    private volatile MigrationStore _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _refresh;
    private readonly ConcurrentDictionary<string, Routes> _routes = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _loading = new(1, 1); // held while routes load, and by the dispose
    private bool _disposed; // read and written under _loading
    private readonly ConcurrentQueue<Exposure> _exposures = new();
    private int _pending; // _exposures' length, kept apart: ConcurrentQueue.Count walks its segments
    private long _dropped;

    private sealed record Routes(DateTimeOffset LoadedAt, IReadOnlyDictionary<string, MigrationStatus> ByEventType, long AssemblyVersion);

    public MigrationRouter(MigrationStore store, TimeProvider? time = null, TimeSpan? refresh = null)
    {
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _time = time ?? TimeProvider.System;
        _refresh = refresh ?? TimeSpan.FromSeconds(2);
    }

    public TimeSpan RefreshInterval => _refresh;

    /// <summary>Exposures waiting to be written.</summary>
    public int PendingExposures => Volatile.Read(ref _pending);

    /// <summary>
    /// Exposures not kept because <see cref="MaxPendingExposures"/> were waiting already (the ledger
    /// refused flushes for that long): users the split's sample-ratio check and outcome test miss.
    /// </summary>
    public long DroppedExposures => Interlocked.Read(ref _dropped);

    /// <summary>
    /// The side that serves each of <paramref name="eventTypes"/> of the signal to the consumer for the
    /// user, recording exposures of split routes unless <paramref name="recordExposures"/> is false (a
    /// HEAD request: a probe served nothing, and counting it would skew the sample-ratio check).
    /// </summary>
    public async ValueTask<RouteSet> RouteAsync(string signal, IReadOnlyList<string> eventTypes, string consumer, long userId, CancellationToken cancellationToken = default, bool recordExposures = true)
    {
        ArgumentNullException.ThrowIfNull(eventTypes);
        ArgumentException.ThrowIfNullOrEmpty(consumer);
        var routes = await RoutesAsync(signal, eventTypes, cancellationToken).ConfigureAwait(false);
        var decisions = new RouteDecision[eventTypes.Count];
        var now = _time.GetUtcNow();
        for (int i = 0; i < eventTypes.Count; i++)
        {
            var status = routes.ByEventType[eventTypes[i]];
            bool weft = MigrationStore.ServedByWeft(status, consumer, userId);
            var route = MigrationStore.RouteOf(status, consumer);
            decisions[i] = new RouteDecision(eventTypes[i], weft, status.Stage, route?.Percent, MigrationRouting.Bucket(signal, eventTypes[i], userId));
            if (recordExposures && status.Stage != MigrationStage.LegacyDeprecated && route is { Percent: > 0 and < 100 })
            {
                Buffer(new Exposure(signal, eventTypes[i], consumer, route.Percent, userId, weft, now));
            }
        }

        return new RouteSet(decisions, routes.AssemblyVersion);
    }

    /// <summary>
    /// The statuses of <paramref name="eventTypes"/> and the assembly version routes are decided on now
    /// (as <see cref="RouteAsync"/> sees them, at most <see cref="RefreshInterval"/> old), for operators:
    /// no exposure is recorded.
    /// </summary>
    public async ValueTask<(IReadOnlyDictionary<string, MigrationStatus> Statuses, long AssemblyVersion)> StatusAsync(string signal, IReadOnlyList<string> eventTypes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(eventTypes);
        var routes = await RoutesAsync(signal, eventTypes, cancellationToken).ConfigureAwait(false);
        return (routes.ByEventType, routes.AssemblyVersion);
    }

    /// <summary>
    /// The most exposures kept buffered while the ledger cannot take them (busy past its timeout, or
    /// unwritable): beyond it new ones are dropped and counted (<see cref="DroppedExposures"/>), so a
    /// ledger that never recovers cannot exhaust memory.
    /// </summary>
    internal const int MaxPendingExposures = 1_000_000;

    /// <summary>The cap in force: <see cref="MaxPendingExposures"/>, lower in tests.</summary>
    internal int MaxPending { get; init; } = MaxPendingExposures;

    private void Buffer(Exposure exposure)
    {
        if (Interlocked.Increment(ref _pending) > MaxPending)
        {
            Interlocked.Decrement(ref _pending);
            Interlocked.Increment(ref _dropped);
            return;
        }

        _exposures.Enqueue(exposure);
    }

    /// <summary>Writes the buffered exposures; returns how many. A batch the ledger refuses stays buffered for the next flush.</summary>
    public async Task<int> FlushAsync(CancellationToken cancellationToken = default)
    {
        var batch = new List<Exposure>();
        while (batch.Count < 100_000 && _exposures.TryDequeue(out var exposure))
        {
            Interlocked.Decrement(ref _pending);
            batch.Add(exposure);
        }

        if (batch.Count > 0)
        {
            try
            {
                await _store.RecordExposuresAsync(batch, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // Dequeued and not written, a failed batch was lost: the split's sample-ratio check and the
                // outcome test then miss those users. Its transaction wrote none of them, so all go back.
                foreach (var exposure in batch)
                {
                    Buffer(exposure);
                }

                throw;
            }
        }

        return batch.Count;
    }

    public async ValueTask DisposeAsync()
    {
        // Under the lock: a request still loading routes would swap in a ledger opened after this.
        await _loading.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            try
            {
                while (await FlushAsync().ConfigureAwait(false) > 0)
                {
                }
            }
            finally
            {
                // A last flush the ledger refused is reported by its exception; the ledger is closed either way.
                await _store.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _loading.Release();
        }
    }

    private async ValueTask<Routes> RoutesAsync(string signal, IReadOnlyList<string> eventTypes, CancellationToken cancellationToken)
    {
        if (_routes.TryGetValue(signal, out var cached) && Fresh(cached, eventTypes))
        {
            return cached;
        }

        await _loading.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_routes.TryGetValue(signal, out cached) && Fresh(cached, eventTypes))
            {
                return cached; // another request loaded it while this one waited
            }

            await OpenLedgerCreatedSinceAsync().ConfigureAwait(false);
            IReadOnlyDictionary<string, MigrationStatus> statuses;
            long version;
            try
            {
                (statuses, version) = await _store.AssemblyAsync(signal, eventTypes, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or FormatException or Microsoft.Data.Sqlite.SqliteException)
            {
                throw new MigrationLedgerException($"the migration ledger cannot be read for signal '{signal}': {ex.Message}", ex);
            }

            var loaded = new Routes(_time.GetUtcNow(), statuses, version);
            _routes[signal] = loaded;
            return loaded;
        }
        finally
        {
            _loading.Release();
        }
    }

    /// <summary>Swaps the empty stand-in for the ledger once its file exists.</summary>
    private async Task OpenLedgerCreatedSinceAsync()
    {
        var standIn = _store;
        if (standIn.Exists || !File.Exists(standIn.Path))
        {
            return;
        }

        MigrationStore opened;
        try
        {
            // Not the request's token: an open cut short would leave its connection behind.
            opened = await MigrationStore.OpenExistingAsync(standIn.Path, _time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Caught while `weft migrate shadow` creates its tables (they are not made in one step):
            // routes stay as before the migration until the next refresh tries again. A damaged file
            // is named by `weft migrate status` and stops the next server at start.
            return;
        }

        _store = opened;
        await standIn.DisposeAsync().ConfigureAwait(false);
    }

    private bool Fresh(Routes routes, IReadOnlyList<string> eventTypes)
    {
        if (_time.GetUtcNow() - routes.LoadedAt >= _refresh)
        {
            return false;
        }

        foreach (var type in eventTypes)
        {
            if (!routes.ByEventType.ContainsKey(type))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// The migration ledger could not be read (damaged, edited by hand, a table missing): no route can be
/// decided until it is mended. <c>weft migrate status</c> names the problem.
/// </summary>
public sealed class MigrationLedgerException(string message, Exception inner) : IOException(message, inner);
