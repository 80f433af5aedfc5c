using System.Buffers;
using System.Buffers.Binary;
using System.Threading.Channels;
using Microsoft.Win32.SafeHandles;

namespace Weft.Streaming.Embedded;

/// <summary>
/// The embedded durable log: an append-only sequence of records (key, JSON payload, append
/// timestamp) in segment files of one directory, with one partition named
/// <see cref="PartitionName"/>. It is the single-node default source: <c>POST /v1/events</c>
/// appends, and <see cref="EmbeddedLogSource"/> readers consume it per consumer group.
/// </summary>
/// <remarks>
/// <para>
/// Durability: <see cref="AppendAsync"/> completes only after the records are written and fsync'd.
/// One writer loop takes every append waiting in its queue, writes them and fsyncs once for all of
/// them (group commit), then completes each caller and wakes the readers.
/// </para>
/// <para>
/// Recovery: opening scans the last segment and cuts off a torn tail (a record cut short or with a
/// bad CRC, left by a crash before its fsync), reported in <see cref="Recovery"/>. Bad data in a
/// sealed segment is never dropped: reading it throws <see cref="EmbeddedLogCorruptionException"/>
/// naming the file and byte offset.
/// </para>
/// <para>
/// One <see cref="EmbeddedLog"/> per directory: a second open, in this process or another, fails
/// (the directory's <c>.lock</c> file is held with an exclusive lock). File layout and format:
/// <c>docs/embedded-log.md</c>.
/// </para>
/// </remarks>
public sealed class EmbeddedLog : IAsyncDisposable
{
    /// <summary>The name of the log's only partition, used in <see cref="SourceRecord.Partition"/> and commits.</summary>
    public const string PartitionName = "embedded";

    private const int MaxPendingBufferBytes = 1024 * 1024;

    private readonly string _groupsDirectory;
    private readonly TimeProvider _time;
    private readonly SafeFileHandle _lockFile;
    private readonly Channel<AppendRequest> _requests;
    private readonly Lock _sync = new();
    private readonly Dictionary<string, GroupState> _groups;
    private readonly SemaphoreSlim _retentionGate = new(1, 1);
    private readonly ITimer? _retentionTimer;
    private readonly Task _writer;

    // Owned by the writer loop once the log is open.
    private SafeFileHandle _activeHandle;
    private SegmentInfo _active;
    private long _activeBytes;
    private long _activeFileBytes;
    private byte[] _pending;
    private int _pendingLength;
    private long _nextOffset;
    private long _lastTimestampMicros;

    private LogState _state;
    private TaskCompletionSource _appended = NewSignal();
    private Exception? _fault;
    private Exception? _lastRetentionError;
    private int _disposed;
    private int _commitsInProgress; // under _sync
    private TaskCompletionSource? _commitsEnded; // under _sync: set by DisposeAsync while commits are in progress

    private EmbeddedLog(string location, EmbeddedLogOptions options, SafeFileHandle lockFile, SegmentInfo[] segments,
        SafeFileHandle activeHandle, long activeBytes, long endOffset, long lastTimestampMicros,
        Dictionary<string, long> committed, EmbeddedLogRecovery? recovery)
    {
        Location = location;
        Options = options;
        Recovery = recovery;
        _groupsDirectory = Path.Combine(location, LogFormat.GroupsDirectoryName);
        WriteGroupFileAsync = (group, nextOffset, committedAtMicros, cancellationToken) =>
            GroupOffsetFile.WriteAsync(_groupsDirectory, group, nextOffset, committedAtMicros, cancellationToken);
        _time = options.TimeProvider;
        _lockFile = lockFile;
        _active = segments[^1];
        _activeHandle = activeHandle;
        _activeBytes = _activeFileBytes = activeBytes;
        _nextOffset = endOffset;
        _lastTimestampMicros = lastTimestampMicros;
        _pending = ArrayPool<byte>.Shared.Rent(Math.Min(options.MaxBatchBytes, MaxPendingBufferBytes));
        _state = new LogState(segments, endOffset, activeBytes);
        _groups = new Dictionary<string, GroupState>(StringComparer.Ordinal);
        foreach (var (group, next) in committed)
        {
            _groups.Add(group, new GroupState { Committed = next, Durable = true });
        }

        _requests = Channel.CreateBounded<AppendRequest>(new BoundedChannelOptions(options.MaxPendingAppends)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _writer = Task.Run(RunWriterAsync);
        if (options.RetentionCheckInterval != Timeout.InfiniteTimeSpan && options.RetentionPeriod != Timeout.InfiniteTimeSpan)
        {
            _retentionTimer = _time.CreateTimer(static s => ((EmbeddedLog)s!).OnRetentionTimer(), this, options.RetentionCheckInterval, options.RetentionCheckInterval);
        }
    }

    /// <summary>The log's directory (full path).</summary>
    public string Location { get; }

    /// <summary>The options the log was opened with.</summary>
    public EmbeddedLogOptions Options { get; }

    /// <summary>What recovery repaired when the log was opened, or null if it found the log whole.</summary>
    public EmbeddedLogRecovery? Recovery { get; }

    /// <summary>The offset of the oldest record still kept (retention moves it forward).</summary>
    public long StartOffset => Volatile.Read(ref _state).StartOffset;

    /// <summary>The offset the next record will get; all records below it are durable and readable.</summary>
    public long EndOffset => Volatile.Read(ref _state).EndOffset;

    /// <summary>How many segment files the log has.</summary>
    public int SegmentCount => Volatile.Read(ref _state).Segments.Length;

    /// <summary>
    /// Each consumer group's durably committed position: the first offset it has not processed.
    /// A group's lag is <see cref="EndOffset"/> minus its value.
    /// </summary>
    public IReadOnlyDictionary<string, long> CommittedOffsets
    {
        get
        {
            lock (_sync)
            {
                var result = new Dictionary<string, long>(_groups.Count, StringComparer.Ordinal);
                foreach (var (group, state) in _groups)
                {
                    if (state.Durable)
                    {
                        result.Add(group, state.Committed);
                    }
                }

                return result;
            }
        }
    }

    /// <summary>The error of the last scheduled retention run that failed, or null.</summary>
    public Exception? LastRetentionError => Volatile.Read(ref _lastRetentionError);

    /// <summary>
    /// Why the log refuses appends (a write or fsync failed, e.g. a full disk), or null while it takes
    /// them. Permanent for this instance: the file's state is unknown, and only reopening (recovery) can
    /// tell what reached the disk.
    /// </summary>
    public Exception? Fault => Volatile.Read(ref _fault);

    internal LogState State => Volatile.Read(ref _state);

    /// <summary>Completes when the next append is published (or the log is disposed). Take it before reading <see cref="State"/>.</summary>
    internal Task AppendSignal => Volatile.Read(ref _appended).Task;

    internal TimeProvider Time => _time;

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>DisposeAsync is waiting for group commits in progress (for tests to hold it there).</summary>
    internal bool DisposeWaitsForCommits
    {
        get
        {
            lock (_sync)
            {
                return _commitsEnded is not null && !_commitsEnded.Task.IsCompleted;
            }
        }
    }

    /// <summary>
    /// Opens the log in <paramref name="directory"/>, creating it if needed, and recovers it: a torn
    /// tail of the last segment is cut off (see <see cref="Recovery"/>).
    /// </summary>
    /// <exception cref="EmbeddedLogCorruptionException">The last segment's header is bad or its offsets do not follow; a <c>.seg</c> file is not named by a base offset, a sealed segment's header is bad or names another base offset, or a sealed segment is too short for the offsets up to the next one; a group's offset file is unreadable, or past the log's end (acknowledged records missing). Nothing is changed then.</exception>
    /// <exception cref="IOException">The directory is already open by another <see cref="EmbeddedLog"/>, or the file system failed.</exception>
    public static async ValueTask<EmbeddedLog> OpenAsync(string directory, EmbeddedLogOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= EmbeddedLogOptions.Default;
        options.Validate();
        cancellationToken.ThrowIfCancellationRequested();

        var location = Path.GetFullPath(directory);
        if (File.Exists(location))
        {
            // Directory.CreateDirectory said only "The file '…' already exists", which read as a clash, not a wrong path.
            throw new IOException($"The embedded log at '{location}' is a file: the log is a directory of its own (a new one is created there when missing)");
        }

        if (!Directory.Exists(location))
        {
            Directory.CreateDirectory(location);
            DurableFiles.FsyncDirectory(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(location)) ?? location);
        }

        var lockFile = AcquireLock(location);
        SafeFileHandle? activeHandle = null;
        try
        {
            var groupsDirectory = Path.Combine(location, LogFormat.GroupsDirectoryName);
            if (!Directory.Exists(groupsDirectory))
            {
                Directory.CreateDirectory(groupsDirectory);
                DurableFiles.FsyncDirectory(location);
            }

            // Groups first: records a group has read were durable, so a cut below them is damage, not a torn tail.
            var committed = await GroupOffsetFile.LoadAllAsync(groupsDirectory, cancellationToken).ConfigureAwait(false);
            var segments = ListSegments(location);
            if (segments.Count == 0)
            {
                // Before the first segment is created: it would take the name of a deleted one an operator is to restore.
                ThrowIfGroupsPastEnd(groupsDirectory, committed, 0);
                segments.Add(await CreateSegmentAsync(location, 0, 0, cancellationToken).ConfigureAwait(false));
            }

            await CheckSealedSegmentsAsync(segments, cancellationToken).ConfigureAwait(false);
            var last = segments[^1];
            activeHandle = File.OpenHandle(last.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            var recovered = await RecoverLastSegmentAsync(last, segments.Count > 1 ? segments[^2] : null, activeHandle, options, committed, cancellationToken).ConfigureAwait(false);
            ThrowIfGroupsPastEnd(groupsDirectory, committed, recovered.EndOffset);
            return new EmbeddedLog(location, options, lockFile, [.. segments], activeHandle, recovered.ActiveBytes, recovered.EndOffset,
                recovered.LastTimestampMicros, committed, recovered.Recovery);
        }
        catch
        {
            activeHandle?.Dispose();
            lockFile.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Appends <paramref name="records"/> (in order, with dense offsets) and completes once they are
    /// fsync'd. Appends from concurrent callers share one fsync.
    /// </summary>
    /// <remarks>
    /// The log reads the list and its arrays until the returned task completes: do not change them
    /// before. A cancellation that comes after the call was queued may come too late to stop the
    /// write: the records may then be in the log although the call threw
    /// <see cref="OperationCanceledException"/> (consumers tolerate duplicates).
    /// </remarks>
    /// <returns>The offsets the records were given.</returns>
    /// <exception cref="ArgumentException">A key or payload is null, or a record is larger than <see cref="EmbeddedLogOptions.MaxRecordBytes"/>.</exception>
    /// <exception cref="IOException">A write or fsync failed; the log refuses appends until it is reopened.</exception>
    public async ValueTask<OffsetRange> AppendAsync(IReadOnlyList<(byte[] Key, byte[] Payload)> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        var count = records.Count;
        long bytes = 0;
        for (var i = 0; i < count; i++)
        {
            var (key, payload) = records[i];
            if (key is null || payload is null)
            {
                ThrowHelper.ThrowNullRecordPart(i, key is null ? "key" : "payload");
            }

            if ((long)key.Length + payload.Length > Options.MaxRecordBytes)
            {
                ThrowHelper.ThrowRecordTooLarge(i, (long)key.Length + payload.Length, Options.MaxRecordBytes);
            }

            bytes += LogFormat.RecordSize(key.Length, payload.Length);
        }

        if (Volatile.Read(ref _fault) is { } fault)
        {
            throw new IOException(fault.Message, fault);
        }

        if (count == 0)
        {
            return new OffsetRange(EndOffset, 0);
        }

        var request = new AppendRequest(records, count, bytes, cancellationToken);
        try
        {
            await _requests.Writer.WriteAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(EmbeddedLog));
        }

        return await request.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Opens a reader for consumer group <paramref name="group"/>, positioned after the group's
    /// committed offset (at <see cref="StartOffset"/> for a group that has committed nothing).
    /// A group has at most one open reader at a time.
    /// </summary>
    /// <param name="group">1–100 characters of <c>[A-Za-z0-9._-]</c>, not starting with a dot.</param>
    public ValueTask<EmbeddedLogSource> OpenSourceAsync(string group, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (!LogFormat.IsValidGroupName(group))
        {
            throw new ArgumentException($"Consumer group name '{group}' is not valid: use 1-100 characters of [A-Za-z0-9._-], not starting with '.'.", nameof(group));
        }

        long committed;
        lock (_sync)
        {
            if (_groups.TryGetValue(group, out var state))
            {
                if (state.Open)
                {
                    throw new InvalidOperationException($"Consumer group '{group}' already has an open reader on the embedded log at '{Location}'; dispose it first.");
                }

                if (state.Committed < _state.StartOffset)
                {
                    // Retention deletes only what every group has read: a segment the group has not read was deleted by hand.
                    throw new EmbeddedLogCorruptionException(Path.Combine(Location, LogFormat.GroupsDirectoryName, LogFormat.GroupFileName(group)), 0,
                        $"consumer group '{group}' has read up to offset {state.Committed}, but the log starts at offset {_state.StartOffset}: the segments holding offsets {state.Committed} to {_state.StartOffset - 1} are missing, so their records were never read; restore them, or, to skip them, stop Weft and delete this file (the group then reads from the log's start)");
                }

                state.Open = true;
            }
            else
            {
                // Registered before it commits, so retention keeps what it has yet to read.
                state = new GroupState { Committed = _state.StartOffset, Open = true };
                _groups.Add(group, state);
            }

            committed = state.Committed;
        }

        return ValueTask.FromResult(new EmbeddedLogSource(this, group, committed));
    }

    /// <summary>
    /// Deletes the oldest segments whose records are all below every consumer group's committed
    /// offset and older than <see cref="EmbeddedLogOptions.RetentionPeriod"/>. The active segment is
    /// never deleted, nor anything while no consumer group exists. Also runs every
    /// <see cref="EmbeddedLogOptions.RetentionCheckInterval"/>.
    /// </summary>
    /// <returns>How many segments were deleted.</returns>
    public async ValueTask<int> EnforceRetentionAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        await _retentionGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await EnforceRetentionCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _retentionGate.Release();
        }
    }

    /// <summary>Waits for queued appends to be written and group commits in progress to end, then closes the files and releases the directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_retentionTimer is not null)
        {
            await _retentionTimer.DisposeAsync().ConfigureAwait(false);
        }

        _requests.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        // A group file written after the lock is released could land under another process that opened the log since.
        Task commitsEnded;
        lock (_sync)
        {
            commitsEnded = _commitsInProgress == 0 ? Task.CompletedTask : (_commitsEnded = NewSignal()).Task;
        }

        await commitsEnded.ConfigureAwait(false);
        await _retentionGate.WaitAsync().ConfigureAwait(false);
        _activeHandle.Dispose();
        ArrayPool<byte>.Shared.Return(_pending);
        _pending = [];
        Interlocked.Exchange(ref _appended, NewSignal()).TrySetResult();
        _lockFile.Dispose();
    }

    // ------------------------------------------------------------------ consumer groups

    /// <summary>Writes a group's offset file; replaced by tests to fail a write partway.</summary>
    internal Func<string, long, long, CancellationToken, ValueTask> WriteGroupFileAsync { get; set; }

    internal async ValueTask CommitGroupAsync(string group, long nextOffset, CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            // Registered under the lock DisposeAsync counts them under: a commit either starts before the
            // disposal, which then waits for it, or throws here.
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            _commitsInProgress++;
        }

        try
        {
            try
            {
                await WriteGroupFileAsync(group, nextOffset, NowMicros(), cancellationToken).ConfigureAwait(false);
            }
            catch when (File.Exists(Path.Combine(_groupsDirectory, LogFormat.GroupFileName(group))))
            {
                // The write may have failed after its rename (the directory's fsync): the file may then hold
                // nextOffset where the group had no file before. Retention must count the group while this
                // log is open, at the offset it had (the file holds it or nextOffset, never less). Without a
                // file (a failure before the rename, a cancellation) a group that had none still has none.
                lock (_sync)
                {
                    if (_groups.TryGetValue(group, out var kept))
                    {
                        kept.MayHaveFile = true;
                    }
                    else
                    {
                        _groups.Add(group, new GroupState { Committed = nextOffset, MayHaveFile = true });
                    }
                }

                throw;
            }

            lock (_sync)
            {
                // The group's reader keeps it registered until its commits end; should it be gone anyway, the
                // file now exists, and retention must count it.
                if (!_groups.TryGetValue(group, out var state))
                {
                    state = new GroupState();
                    _groups.Add(group, state);
                }

                state.Committed = Math.Max(state.Committed, nextOffset);
                state.Durable = true;
            }
        }
        finally
        {
            lock (_sync)
            {
                if (--_commitsInProgress == 0)
                {
                    _commitsEnded?.TrySetResult();
                }
            }
        }
    }

    internal void ReleaseGroup(string group)
    {
        lock (_sync)
        {
            if (_groups.TryGetValue(group, out var state))
            {
                state.Open = false;
                if (!state.Durable && !state.MayHaveFile)
                {
                    _groups.Remove(group);
                }
            }
        }
    }

    // ------------------------------------------------------------------ writer loop

    private async Task RunWriterAsync()
    {
        var reader = _requests.Reader;
        var group = new List<AppendRequest>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            group.Clear();
            long bytes = 0;
            while (bytes < Options.MaxBatchBytes && reader.TryRead(out var request))
            {
                if (request.CancellationToken.IsCancellationRequested)
                {
                    request.Completion.TrySetCanceled(request.CancellationToken);
                    continue;
                }

                group.Add(request);
                bytes += request.Bytes;
            }

            if (group.Count == 0)
            {
                continue;
            }

            if (Volatile.Read(ref _fault) is { } fault)
            {
                Fail(group, new IOException(fault.Message, fault));
                continue;
            }

            try
            {
                await WriteGroupAsync(group).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Any failure here leaves the file in an unknown state: fault the log and tell every waiting caller.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                var failure = new IOException(
                    $"The embedded log at '{Location}' failed to write or fsync segment '{_active.Path}'; the records of the failed appends may or may not be on disk. "
                    + "The log refuses appends until it is reopened, which runs recovery.", ex);
                Volatile.Write(ref _fault, failure);
                Fail(group, failure);
            }
        }
    }

    private async ValueTask WriteGroupAsync(List<AppendRequest> group)
    {
        // Each group is stamped later than the previous one, even when the clock stood still or stepped
        // back: its records share the stamp, and recovery tells a torn last group from damage that later
        // (acknowledged) groups follow by counting distinct stamps after the bad frame.
        var timestamp = Math.Max(_lastTimestampMicros + 1, NowMicros());
        List<SegmentInfo>? rolled = null;
        foreach (var request in group)
        {
            request.FirstOffset = _nextOffset;
            var records = request.Records;
            for (var i = 0; i < request.Count; i++)
            {
                var (key, payload) = records[i];
                var size = LogFormat.RecordSize(key.Length, payload.Length);
                if (_activeBytes > LogFormat.SegmentHeaderSize && _activeBytes + size > Options.SegmentBytes)
                {
                    await FlushActiveAsync().ConfigureAwait(false);
                    (rolled ??= []).Add(await RollAsync(timestamp).ConfigureAwait(false));
                }

                if (_pendingLength + size > _pending.Length)
                {
                    await WritePendingAsync().ConfigureAwait(false);
                    if (size > _pending.Length)
                    {
                        ArrayPool<byte>.Shared.Return(_pending);
                        _pending = ArrayPool<byte>.Shared.Rent(size);
                    }
                }

                LogFormat.WriteRecord(_pending.AsSpan(_pendingLength, size), _nextOffset, timestamp, key, payload);
                _pendingLength += size;
                _activeBytes += size;
                _nextOffset++;
            }
        }

        await FlushActiveAsync().ConfigureAwait(false);
        _lastTimestampMicros = timestamp;
        Publish(rolled);
        foreach (var request in group)
        {
            request.Completion.TrySetResult(new OffsetRange(request.FirstOffset, request.Count));
        }
    }

    private async ValueTask WritePendingAsync()
    {
        if (_pendingLength == 0)
        {
            return;
        }

        await RandomAccess.WriteAsync(_activeHandle, _pending.AsMemory(0, _pendingLength), _activeFileBytes, CancellationToken.None).ConfigureAwait(false);
        _activeFileBytes += _pendingLength;
        _pendingLength = 0;
    }

    private async ValueTask FlushActiveAsync()
    {
        await WritePendingAsync().ConfigureAwait(false);
        RandomAccess.FlushToDisk(_activeHandle);
    }

    /// <summary>Seals the active segment (already flushed) and starts a new one at the next offset.</summary>
    private async ValueTask<SegmentInfo> RollAsync(long timestampMicros)
    {
        var next = await CreateSegmentAsync(Location, _nextOffset, timestampMicros, CancellationToken.None).ConfigureAwait(false);
        var handle = File.OpenHandle(next.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        _active.SealedLength = _activeBytes;
        _activeHandle.Dispose();
        _activeHandle = handle;
        _active = next;
        _activeBytes = _activeFileBytes = LogFormat.SegmentHeaderSize;
        return next;
    }

    /// <summary>Makes the flushed records visible to readers and wakes the waiting ones.</summary>
    private void Publish(List<SegmentInfo>? rolled)
    {
        lock (_sync)
        {
            var segments = _state.Segments;
            if (rolled is not null)
            {
                segments = [.. segments, .. rolled];
            }

            Volatile.Write(ref _state, new LogState(segments, _nextOffset, _activeBytes));
        }

        Interlocked.Exchange(ref _appended, NewSignal()).TrySetResult();
    }

    private static void Fail(List<AppendRequest> group, Exception failure)
    {
        foreach (var request in group)
        {
            request.Completion.TrySetException(failure);
        }
    }

    // ------------------------------------------------------------------ retention

    private void OnRetentionTimer() => _ = RunScheduledRetentionAsync();

    private async Task RunScheduledRetentionAsync()
    {
        if (IsDisposed || !await _retentionGate.WaitAsync(0).ConfigureAwait(false))
        {
            return;
        }

        try
        {
            await EnforceRetentionCoreAsync(CancellationToken.None).ConfigureAwait(false);
            Volatile.Write(ref _lastRetentionError, null);
        }
#pragma warning disable CA1031 // A timer has no caller to throw to; the error is kept for LastRetentionError.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Volatile.Write(ref _lastRetentionError, ex);
        }
        finally
        {
            _retentionGate.Release();
        }
    }

    private async ValueTask<int> EnforceRetentionCoreAsync(CancellationToken cancellationToken)
    {
        if (Options.RetentionPeriod == Timeout.InfiniteTimeSpan)
        {
            return 0;
        }

        var cutoff = NowMicros() - (Options.RetentionPeriod.Ticks / TimeSpan.TicksPerMicrosecond);
        var state = State;
        if (!TryGetMinCommitted(out var minCommitted))
        {
            return 0;
        }

        // Segment i holds offsets below segments[i+1].BaseOffset, all stamped no later than
        // segments[i+1]'s roll timestamp; the active (last) segment is never a candidate.
        var candidates = 0;
        while (candidates < state.Segments.Length - 1)
        {
            var next = state.Segments[candidates + 1];
            if (next.BaseOffset > minCommitted || await RollTimestampAsync(next, cancellationToken).ConfigureAwait(false) >= cutoff)
            {
                break;
            }

            candidates++;
        }

        if (candidates == 0)
        {
            return 0;
        }

        SegmentInfo[] deleted;
        lock (_sync)
        {
            // Checked again under the lock: a reader for a new group may have registered at the start since.
            TryGetMinCommitted(out minCommitted);
            var current = _state;
            var count = 0;
            while (count < candidates && current.Segments[count + 1].BaseOffset <= minCommitted)
            {
                count++;
            }

            if (count == 0)
            {
                return 0;
            }

            deleted = current.Segments[..count];
            Volatile.Write(ref _state, new LogState(current.Segments[count..], current.EndOffset, current.ActiveDurableBytes));
        }

        // Oldest first, each deletion durable before the next: a crash between them must leave a shorter
        // chain, never an old segment before a gap, which open would report as missing records.
        foreach (var segment in deleted)
        {
            File.Delete(segment.Path);
            DurableFiles.FsyncDirectory(Location);
        }

        return deleted.Length;
    }

    private bool TryGetMinCommitted(out long minCommitted)
    {
        lock (_sync)
        {
            minCommitted = long.MaxValue;
            foreach (var state in _groups.Values)
            {
                minCommitted = Math.Min(minCommitted, state.Committed);
            }

            return _groups.Count > 0;
        }
    }

    private async ValueTask<long> RollTimestampAsync(SegmentInfo segment, CancellationToken cancellationToken)
    {
        if (segment.RollTimestampMicros is { } known)
        {
            return known;
        }

        using var reader = SegmentReader.Open(segment.Path, LogFormat.SegmentHeaderSize);
        var header = await reader.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
        var problem = LogFormat.CheckSegmentHeader(header, segment.BaseOffset, out var rollTimestamp);
        if (problem is not null)
        {
            throw new EmbeddedLogCorruptionException(segment.Path, 0, problem);
        }

        segment.RollTimestampMicros = rollTimestamp;
        return rollTimestamp;
    }

    // ------------------------------------------------------------------ opening

    private static SafeFileHandle AcquireLock(string location)
    {
        var path = Path.Combine(location, LogFormat.LockFileName);
        try
        {
            // FileShare.None takes an exclusive advisory lock (flock) on Unix; the kernel drops it if the process dies.
            return File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new IOException($"The embedded log at '{location}' is already open (in this process or another): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// A group that has read past the log's end read records that are gone: acknowledged (a reader sees only
    /// durable records), so the log's last segment was deleted or cut by hand. Opening would give their
    /// offsets to new records, which the group, and whatever it fed, would then skip or take for the old ones.
    /// </summary>
    private static void ThrowIfGroupsPastEnd(string groupsDirectory, Dictionary<string, long> committed, long endOffset)
    {
        string? furthest = null;
        foreach (var (group, next) in committed)
        {
            if (next > endOffset && (furthest is null || next > committed[furthest] || (next == committed[furthest] && string.CompareOrdinal(group, furthest) < 0)))
            {
                furthest = group;
            }
        }

        if (furthest is not null)
        {
            var next = committed[furthest];
            throw new EmbeddedLogCorruptionException(Path.Combine(groupsDirectory, LogFormat.GroupFileName(furthest)), 0,
                $"consumer group '{furthest}' has committed up to offset {next}, but the log ends at offset {endOffset}: the records from offset {endOffset} to {next - 1} were acknowledged and are missing (the log's last segment deleted or cut short?), and opening would give their offsets to new records; restore the missing segment file. The log was not opened, and nothing was changed");
        }
    }

    private static List<SegmentInfo> ListSegments(string location)
    {
        var segments = new List<SegmentInfo>();
        foreach (var file in new DirectoryInfo(location).EnumerateFiles())
        {
            if (!file.Name.EndsWith(LogFormat.SegmentExtension, StringComparison.Ordinal))
            {
                continue;
            }

            // Skipped, a stray segment (a copy, a backup) would hide in the chain's order; taken for one, it
            // would be read, or rewritten as a torn last segment. Either way the operator must say which it is.
            if (!LogFormat.TryParseSegmentFileName(file.Name, out var baseOffset))
            {
                throw new EmbeddedLogCorruptionException(file.FullName,
                    $"a segment file's name must be its base offset in 20 digits (like '{LogFormat.SegmentFileName(0)}'), so this is not one of the log's segments; move it out of the log's folder. The log was not opened, and nothing was changed");
            }

            // Every segment but the last is sealed: complete and fsync'd before the next one was created.
            segments.Add(new SegmentInfo(baseOffset, file.FullName) { SealedLength = file.Length });
        }

        segments.Sort(static (a, b) => a.BaseOffset.CompareTo(b.BaseOffset));
        if (segments.Count > 0)
        {
            segments[^1].SealedLength = -1;
        }

        return segments;
    }

    /// <summary>
    /// Checks the chain of sealed segments from their headers and lengths only (open must not scan them):
    /// each header is valid and names the file's base offset, and each segment is long enough for a record
    /// per offset up to the next segment's base. A segment deleted from the middle, or a stray one, usually
    /// fails the length check; what passes it (an overlap, a gap smaller than the bytes that hide it) is
    /// reported by the reader that reaches it.
    /// </summary>
    private static async ValueTask CheckSealedSegmentsAsync(List<SegmentInfo> segments, CancellationToken cancellationToken)
    {
        for (int i = 0; i < segments.Count - 1; i++)
        {
            var segment = segments[i];
            var next = segments[i + 1];
            byte[] header;
            using (var reader = SegmentReader.Open(segment.Path, LogFormat.SegmentHeaderSize))
            {
                header = await reader.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
            }

            var problem = LogFormat.CheckSegmentHeader(header, segment.BaseOffset, out var rollTimestamp);
            if (problem is not null)
            {
                throw new EmbeddedLogCorruptionException(segment.Path, 0, $"{problem}. The log was not opened, and nothing was changed");
            }

            segment.RollTimestampMicros = rollTimestamp;
            long records = next.BaseOffset - segment.BaseOffset;
            if ((segment.SealedLength - LogFormat.SegmentHeaderSize) / LogFormat.RecordOverhead < records)
            {
                throw new EmbeddedLogCorruptionException(segment.Path, segment.SealedLength,
                    $"the sealed segment must hold the {records} records of offsets {segment.BaseOffset} to {next.BaseOffset - 1}, up to the next segment '{Path.GetFileName(next.Path)}', at least {LogFormat.RecordOverhead} bytes each after its {LogFormat.SegmentHeaderSize}-byte header, but it has {segment.SealedLength} bytes: records are missing (a segment deleted, or a stray segment file?); restore them, or move a stray file out of the log's folder. The log was not opened, and nothing was changed");
            }
        }
    }

    private static async ValueTask<SegmentInfo> CreateSegmentAsync(string location, long baseOffset, long rollTimestampMicros, CancellationToken cancellationToken)
    {
        var segment = new SegmentInfo(baseOffset, Path.Combine(location, LogFormat.SegmentFileName(baseOffset))) { RollTimestampMicros = rollTimestampMicros };
        var header = new byte[LogFormat.SegmentHeaderSize];
        LogFormat.WriteSegmentHeader(header, baseOffset, rollTimestampMicros);
        using (var handle = File.OpenHandle(segment.Path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
        {
            await RandomAccess.WriteAsync(handle, header, 0, cancellationToken).ConfigureAwait(false);
            RandomAccess.FlushToDisk(handle);
        }

        DurableFiles.FsyncDirectory(location);
        return segment;
    }

    private readonly record struct Recovered(long EndOffset, long ActiveBytes, long LastTimestampMicros, EmbeddedLogRecovery? Recovery);

    /// <summary>
    /// Scans the last segment; cuts off a torn tail (the first frame that is cut short, has an
    /// impossible length or a bad CRC, and everything after it), which only a crash between a
    /// write and its fsync leaves, since sealed segments are complete and fsync'd before a roll.
    /// A bad frame that intact records follow, or below an offset a consumer group has read, is
    /// damage to durable records: the log refuses to open and cuts nothing.
    /// </summary>
    private static async ValueTask<Recovered> RecoverLastSegmentAsync(SegmentInfo last, SegmentInfo? previous, SafeFileHandle handle, EmbeddedLogOptions options, IReadOnlyDictionary<string, long> committed, CancellationToken cancellationToken)
    {
        var length = RandomAccess.GetLength(handle);
        using var reader = new SegmentReader(last.Path, handle, ownsHandle: false, LogFormat.SegmentHeaderSize, options.ReadBufferBytes);
        var header = await reader.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
        // A crash while a roll created the segment: its header never became durable. The file is then
        // shorter than a header, or (a power cut after its size reached the disk but not its data) a
        // header's size of zeros. No record can be in it: records go in only after the header's fsync.
        if (length < LogFormat.SegmentHeaderSize || (length == LogFormat.SegmentHeaderSize && !header.AsSpan().ContainsAnyExcept((byte)0)))
        {
            var what = length < LogFormat.SegmentHeaderSize ? $"incomplete ({length} of {LogFormat.SegmentHeaderSize} bytes)" : "all zeros";
            foreach (var (group, next) in committed)
            {
                if (next > last.BaseOffset)
                {
                    // Records a group has read were durable, so were the header before them: damage. Nothing is rewritten.
                    throw new EmbeddedLogCorruptionException(last.Path, 0,
                        $"the segment header is {what}, but consumer group '{group}' has read up to offset {next}, so the segment held durable records: this is damage, not a crash during a roll, and nothing was rewritten");
                }
            }

            // The new roll timestamp must bound the previous segment's records (retention relies on it),
            // and the records appended next must not be stamped earlier than them: now is not enough
            // after a clock that stepped back. This scans the previous (sealed) segment, once, in this rare case.
            var before = previous is null ? default : await ScanSealedAsync(previous, options, cancellationToken).ConfigureAwait(false);
            // A roll creates a segment only once the one before is durable up to the offset before it (and
            // the log's first segment at offset 0): an empty file anywhere else is not a roll a crash cut short.
            // A scan that damage stopped short of it cannot tell: the damage is the sealed segment's, for its
            // readers to report, as open leaves every sealed segment's records to them.
            bool damagedBefore = before.Problem is not null && before.EndOffset < last.BaseOffset;
            if (before.EndOffset != last.BaseOffset && !damagedBefore)
            {
                var why = previous is null
                    ? "it is the log's only segment, and only a new log's first one, at offset 0, is created with nothing before it"
                    : $"the segment before it, '{Path.GetFileName(previous.Path)}', ends at offset {before.EndOffset}{(before.Problem is null ? "" : $" ({before.Problem})")}, and a roll creates the next segment at the offset after its last record";
                throw new EmbeddedLogCorruptionException(last.Path, 0,
                    $"the segment header is {what}, as a crash during a roll leaves it, but {why}: this file is not a segment the log created, and nothing was rewritten");
            }

            var now = Math.Max(ToMicros(options.TimeProvider.GetUtcNow()), before.LatestMicros);
            var fresh = new byte[LogFormat.SegmentHeaderSize];
            LogFormat.WriteSegmentHeader(fresh, last.BaseOffset, now);
            RandomAccess.SetLength(handle, 0);
            await RandomAccess.WriteAsync(handle, fresh, 0, cancellationToken).ConfigureAwait(false);
            RandomAccess.FlushToDisk(handle);
            // The roll died before it synced the folder: the file's entry may not be durable yet, and
            // appends into it are about to be acknowledged.
            DurableFiles.FsyncDirectory(Path.GetDirectoryName(last.Path)!);
            last.RollTimestampMicros = now;
            return new Recovered(last.BaseOffset, LogFormat.SegmentHeaderSize, now,
                new EmbeddedLogRecovery(last.Path, 0, length, $"the segment header was {what}; it was written again"));
        }

        var problem = LogFormat.CheckSegmentHeader(header, last.BaseOffset, out var rollTimestamp);
        if (problem is not null)
        {
            throw new EmbeddedLogCorruptionException(last.Path, 0, problem);
        }

        last.RollTimestampMicros = rollTimestamp;
        var expected = last.BaseOffset;
        var lastTimestamp = rollTimestamp;
        while (true)
        {
            var at = reader.Position;
            var status = reader.TryReadNext(length);
            if (status == FrameStatus.NeedsData)
            {
                if (await reader.FillAsync(length, cancellationToken).ConfigureAwait(false))
                {
                    continue;
                }

                status = FrameStatus.Torn;
            }

            if (status == FrameStatus.Record)
            {
                if (reader.Offset != expected)
                {
                    throw new EmbeddedLogCorruptionException(last.Path, at, $"expected the record with offset {expected}, found offset {reader.Offset}");
                }

                lastTimestamp = Math.Max(lastTimestamp, reader.TimestampMicros);
                expected++;
                continue;
            }

            if (status == FrameStatus.End)
            {
                return new Recovered(expected, length, lastTimestamp, null);
            }

            var reason = status == FrameStatus.Torn ? "a record cut short by the end of the file" : reader.Problem;
            string cutAnyway = $"to cut the log there anyway, losing the records from offset {expected} on, stop Weft and truncate the file to {at} bytes (truncate -s {at} '{last.Path}')";
            foreach (var (group, next) in committed)
            {
                if (next > expected)
                {
                    throw new EmbeddedLogCorruptionException(last.Path, at,
                        $"{reason}, but consumer group '{group}' has read up to offset {next}, so the records from offset {expected} on were durable: this is damage, not a torn tail, and nothing was cut; {cutAnyway}");
                }
            }

            // One append group is written, then fsync'd, before the next is written, and its records share
            // one timestamp. Whole records of two groups after the bad frame mean a group was written after
            // the damaged one was fsync'd: damage. Records of one group only may be the rest of the write a
            // crash tore (a power cut can write its pages out of order), so that is cut; the cut bytes are
            // kept beside the segment, so a cut of damage instead is undone by hand, not lost.
            var rest = await ReadRestAsync(handle, at + 1, length, cancellationToken).ConfigureAwait(false);
            if (FindIntactRecords(rest, expected) is { Groups: > 1 } intact)
            {
                throw new EmbeddedLogCorruptionException(last.Path, at,
                    $"{reason}, but intact records of later appends follow (offset {intact.Offset} at byte {at + 1 + intact.Position}): this is damage, not a torn tail, and nothing was cut; {cutAnyway}");
            }

            string kept = await KeepCutBytesAsync(last.Path, handle, at, length, cancellationToken).ConfigureAwait(false);
            RandomAccess.SetLength(handle, at);
            RandomAccess.FlushToDisk(handle);
            return new Recovered(expected, at, lastTimestamp, new EmbeddedLogRecovery(last.Path, at, length - at, reason) { KeptIn = kept });
        }
    }

    /// <summary>
    /// Scans a sealed segment: the latest timestamp of its records (its roll timestamp when it holds none),
    /// the offset after its last record, and what stopped the scan before its end (null when nothing did).
    /// Stops at the first bad frame: this bounds what lies before it; readers report the damage.
    /// </summary>
    private static async ValueTask<(long LatestMicros, long EndOffset, string? Problem)> ScanSealedAsync(SegmentInfo segment, EmbeddedLogOptions options, CancellationToken cancellationToken)
    {
        using var reader = SegmentReader.Open(segment.Path, options.ReadBufferBytes);
        var header = await reader.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
        if (LogFormat.CheckSegmentHeader(header, segment.BaseOffset, out var latest) is { } headerProblem)
        {
            return (0, segment.BaseOffset, headerProblem);
        }

        long expected = segment.BaseOffset;
        long limit = segment.SealedLength;
        while (true)
        {
            var at = reader.Position;
            var status = reader.TryReadNext(limit);
            if (status == FrameStatus.Record)
            {
                if (reader.Offset != expected)
                {
                    return (latest, expected, $"at byte {at}, the record with offset {expected} was expected, offset {reader.Offset} found");
                }

                latest = Math.Max(latest, reader.TimestampMicros);
                expected++;
            }
            else if (status == FrameStatus.End)
            {
                return (latest, expected, null);
            }
            else if (status != FrameStatus.NeedsData || !await reader.FillAsync(limit, cancellationToken).ConfigureAwait(false))
            {
                return (latest, expected, $"at byte {at}, {(status == FrameStatus.BadCrc || status == FrameStatus.BadLength ? reader.Problem : "a record cut short")}");
            }
        }
    }

    /// <summary>The bytes of the active segment from <paramref name="from"/> on (at most <see cref="Array.MaxLength"/>): read only when recovery found a bad frame.</summary>
    private static async ValueTask<byte[]> ReadRestAsync(SafeFileHandle handle, long from, long length, CancellationToken cancellationToken)
    {
        var rest = new byte[Math.Clamp(length - from, 0, Array.MaxLength)];
        int read = 0;
        while (read < rest.Length)
        {
            int n = await RandomAccess.ReadAsync(handle, rest.AsMemory(read), from + read, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return rest[..read];
            }

            read += n;
        }

        return rest;
    }

    /// <summary>
    /// In <paramref name="rest"/>: the first whole record with a good CRC and an offset from
    /// <paramref name="expected"/> on (its position in <paramref name="rest"/> and offset), and how many
    /// append groups (distinct timestamps) the whole records from it on span; null when there is none.
    /// </summary>
    internal static (long Position, long Offset, int Groups)? FindIntactRecords(ReadOnlySpan<byte> rest, long expected)
    {
        // Offsets past the damage are dense from `expected`: no record in these bytes can carry a larger one.
        long highest = expected + (rest.Length / LogFormat.RecordOverhead);
        for (int p = 0; p + LogFormat.RecordOverhead <= rest.Length; p++)
        {
            if (WholeRecordAt(rest, p, expected, highest) is not { } first)
            {
                continue;
            }

            // From the first, records follow one another: count the groups among them.
            var timestamps = new HashSet<long> { first.Timestamp };
            int q = p + first.Size;
            while (timestamps.Count < 2 && WholeRecordAt(rest, q, expected, highest) is { } next)
            {
                timestamps.Add(next.Timestamp);
                q += next.Size;
            }

            return (p, first.Offset, timestamps.Count);
        }

        return null;
    }

    private static (int Size, long Offset, long Timestamp)? WholeRecordAt(ReadOnlySpan<byte> bytes, int p, long lowest, long highest)
    {
        if (p + LogFormat.RecordOverhead > bytes.Length)
        {
            return null;
        }

        int body = BinaryPrimitives.ReadInt32LittleEndian(bytes[p..]);
        if (body < LogFormat.RecordFixedBodySize || body > bytes.Length - p - LogFormat.RecordPrefixSize)
        {
            return null;
        }

        long offset = BinaryPrimitives.ReadInt64LittleEndian(bytes[(p + LogFormat.RecordPrefixSize)..]);
        if (offset < lowest || offset > highest)
        {
            return null;
        }

        var frame = bytes.Slice(p, LogFormat.RecordPrefixSize + body);
        return LogFormat.RecordCrc(frame) == BinaryPrimitives.ReadUInt32LittleEndian(frame[4..])
            ? (frame.Length, offset, BinaryPrimitives.ReadInt64LittleEndian(frame[(LogFormat.RecordPrefixSize + 8)..]))
            : null;
    }

    /// <summary>Copies the bytes recovery is about to cut to <c>&lt;segment&gt;.cut-&lt;byte&gt;</c> (<c>.cut-&lt;byte&gt;.&lt;n&gt;</c> when an earlier cut took that name; fsync'd) and returns its path.</summary>
    private static async ValueTask<string> KeepCutBytesAsync(string segmentPath, SafeFileHandle handle, long at, long length, CancellationToken cancellationToken)
    {
        // An earlier cut at the same byte (the first append after that recovery torn again) may have kept
        // bytes no one has looked at yet: never overwrite it, take the next free name instead.
        string first = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{segmentPath}{LogFormat.CutExtension}{at}");
        string kept = first;
        for (int n = 1; File.Exists(kept); n++)
        {
            kept = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{first}.{n}");
        }

        using (var target = File.OpenHandle(kept, FileMode.CreateNew, FileAccess.Write))
        {
            var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                for (long position = at; position < length;)
                {
                    int n = await RandomAccess.ReadAsync(handle, buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - position)), position, cancellationToken).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }

                    await RandomAccess.WriteAsync(target, buffer.AsMemory(0, n), position - at, cancellationToken).ConfigureAwait(false);
                    position += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            RandomAccess.FlushToDisk(target);
        }

        DurableFiles.FsyncDirectory(Path.GetDirectoryName(segmentPath)!);
        return kept;
    }

    // ------------------------------------------------------------------ helpers

    private long NowMicros() => ToMicros(_time.GetUtcNow());

    private static long ToMicros(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class GroupState
    {
        /// <summary>The first offset the group has not processed (durable when <see cref="Durable"/>).</summary>
        public long Committed { get; set; }

        /// <summary>The group has an offset file.</summary>
        public bool Durable { get; set; }

        /// <summary>A reader for the group is open.</summary>
        public bool Open { get; set; }

        /// <summary>A commit failed partway: the group may have an offset file though it is not <see cref="Durable"/>.</summary>
        public bool MayHaveFile { get; set; }
    }

    private sealed class AppendRequest(IReadOnlyList<(byte[] Key, byte[] Payload)> records, int count, long bytes, CancellationToken cancellationToken)
    {
        public IReadOnlyList<(byte[] Key, byte[] Payload)> Records { get; } = records;

        public int Count { get; } = count;

        public long Bytes { get; } = bytes;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        public TaskCompletionSource<OffsetRange> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long FirstOffset { get; set; }
    }
}
