namespace Weft.Streaming.Embedded;

/// <summary>
/// A consumer group's reader of an <see cref="EmbeddedLog"/>, as an <see cref="IEventSource"/>:
/// it tails the log (a read with nothing new waits for the writer's next flush, without polling),
/// delivers records of partition <see cref="EmbeddedLog.PartitionName"/> in offset order, and
/// stores the group's committed offset in <c>groups/&lt;group&gt;.offset</c>, replaced atomically.
/// Open one with <see cref="EmbeddedLog.OpenSourceAsync"/>; dispose it before the log.
/// </summary>
/// <remarks>
/// Reads are sequential and buffered (one pooled buffer per reader). Each record's key and payload
/// are copied out of that buffer into slabs shared by many records (<see cref="MessageBytes"/>).
/// Commits never move a group backwards: committing an offset below the committed one does nothing.
/// </remarks>
public sealed class EmbeddedLogSource : IEventSource
{
    private readonly EmbeddedLog _log;
    private readonly SemaphoreSlim _commitGate = new(1, 1);
    private readonly MessageBytes _bytes = new(); // one read at a time copies into it
    private SegmentInfo? _segment;
    private SegmentReader? _reader;
    private long _readerNext;
    private long _position;
    private long _committed;
    private int _busy;
    private int _disposed;

    internal EmbeddedLogSource(EmbeddedLog log, string group, long committed)
    {
        _log = log;
        Group = group;
        _committed = committed;
        _position = Math.Max(committed, log.StartOffset);
        Name = "embedded:" + log.Location;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>The consumer group this reader reads for.</summary>
    public string Group { get; }

    /// <summary>The offset of the next record this reader will deliver.</summary>
    public long Position => Volatile.Read(ref _position);

    /// <summary>The group's committed position: the first offset it has not processed.</summary>
    public long CommittedOffset => Volatile.Read(ref _committed);

    /// <summary>Records appended but not yet committed by the group: <see cref="EmbeddedLog.EndOffset"/> minus <see cref="CommittedOffset"/>.</summary>
    public long Lag => Math.Max(0, _log.EndOffset - CommittedOffset);

    /// <inheritdoc />
    /// <remarks>One partition: the log's end offset minus the next offset this reader delivers.</remarks>
    public IReadOnlyDictionary<string, long> Backlog() =>
        new Dictionary<string, long>(StringComparer.Ordinal) { [EmbeddedLog.PartitionName] = Math.Max(0, _log.EndOffset - Position) };

    /// <inheritdoc />
    public IReadOnlyDictionary<string, long> EndOffsets() =>
        new Dictionary<string, long>(StringComparer.Ordinal) { [EmbeddedLog.PartitionName] = _log.EndOffset };

    /// <inheritdoc />
    /// <exception cref="EmbeddedLogCorruptionException">The next record in the log is damaged; the message names the file and byte offset. A batch that reaches damage after some records returns those records, and the next read throws.</exception>
    public async ValueTask<IReadOnlyList<SourceRecord>> ReadBatchAsync(int maxRecords, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRecords);
        if (maxWait < TimeSpan.Zero && maxWait != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(maxWait), maxWait, "The wait must be zero or more, or Timeout.InfiniteTimeSpan.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            throw new InvalidOperationException($"A read of consumer group '{Group}' is already in progress; a source is read by one task at a time.");
        }

        try
        {
            var started = _log.Time.GetTimestamp();
            while (true)
            {
                ThrowIfDisposed();
                var signal = _log.AppendSignal;
                var state = _log.State;
                if (_position < state.EndOffset)
                {
                    return await ReadAvailableAsync(state, maxRecords, cancellationToken).ConfigureAwait(false);
                }

                var remaining = maxWait == Timeout.InfiniteTimeSpan ? maxWait : maxWait - _log.Time.GetElapsedTime(started);
                if (remaining != Timeout.InfiniteTimeSpan && remaining <= TimeSpan.Zero)
                {
                    return [];
                }

                if (!await WaitForAppendAsync(signal, remaining, cancellationToken).ConfigureAwait(false))
                {
                    return [];
                }
            }
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">A partition other than <see cref="EmbeddedLog.PartitionName"/> is named.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The offset is not in the log.</exception>
    public async ValueTask CommitAsync(IReadOnlyDictionary<string, long> processedOffsets, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(processedOffsets);
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfDisposed();
        long? last = null;
        foreach (var (partition, offset) in processedOffsets)
        {
            if (partition != EmbeddedLog.PartitionName)
            {
                throw new ArgumentException($"The embedded log has one partition, '{EmbeddedLog.PartitionName}'; cannot commit partition '{partition}'.", nameof(processedOffsets));
            }

            last = offset;
        }

        if (last is not { } processed)
        {
            return;
        }

        var end = _log.EndOffset;
        if (processed < -1 || processed >= end)
        {
            throw new ArgumentOutOfRangeException(nameof(processedOffsets), processed,
                $"Offset {processed} of partition '{EmbeddedLog.PartitionName}' is not in the log, whose records have offsets below {end}.");
        }

        await _commitGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Checked again under the gate: DisposeAsync takes the gate before it releases the group, so
            // a commit either ends before the release (and is tracked) or sees the disposal here and writes nothing.
            ThrowIfDisposed();
            var next = processed + 1;
            if (next <= _committed)
            {
                return;
            }

            await _log.CommitGroupAsync(Group, next, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _committed, next);
        }
        finally
        {
            _commitGate.Release();
        }
    }

    /// <summary>
    /// Closes the reader's file and lets another reader open the group. Does not commit: waits for a
    /// commit in progress to end, and a commit that has not started writing by then throws
    /// <see cref="ObjectDisposedException"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // A commit writes the group's file first and records it with the log after: releasing a group that
        // has no file yet in between would drop it from the log's groups while its file exists (the commit
        // then found no group, and retention ignored the file until the next open).
        await _commitGate.WaitAsync().ConfigureAwait(false);
        try
        {
            CloseReader();
            _log.ReleaseGroup(Group);
        }
        finally
        {
            _commitGate.Release();
        }
    }

    /// <summary>
    /// Reads what is durable now, up to <paramref name="maxRecords"/>. Damage after some records ends the
    /// batch before it (the next read throws); on any other failure, or damage first, the position is left unchanged.
    /// </summary>
    private async ValueTask<IReadOnlyList<SourceRecord>> ReadAvailableAsync(LogState state, int maxRecords, CancellationToken cancellationToken)
    {
        var position = _position;
        var records = new List<SourceRecord>((int)Math.Min(maxRecords, Math.Min(state.EndOffset - position, 4096)));
        try
        {
            if (_reader is null || _readerNext > position)
            {
                await OpenReaderAsync(state, position, cancellationToken).ConfigureAwait(false);
            }

            while (records.Count < maxRecords && position < state.EndOffset)
            {
                var reader = _reader!;
                var limit = state.LimitOf(_segment!);
                var at = reader.Position;
                switch (reader.TryReadNext(limit))
                {
                    case FrameStatus.Record:
                        if (reader.Offset != _readerNext)
                        {
                            ThrowHelper.ThrowCorrupt(reader.Path, at, $"expected the record with offset {_readerNext}, found offset {reader.Offset}");
                        }

                        if (_readerNext == position)
                        {
                            var key = reader.Key;
                            records.Add(new SourceRecord(EmbeddedLog.PartitionName, position, _bytes.Copy(key), _bytes.Copy(reader.Payload), reader.TimestampMicros));
                            position++;
                        }

                        _readerNext++;
                        break;

                    case FrameStatus.NeedsData:
                        if (!await reader.FillAsync(limit, cancellationToken).ConfigureAwait(false))
                        {
                            ThrowHelper.ThrowCorrupt(reader.Path, reader.Position, $"the file ends before byte {limit}, where its durable records end");
                        }

                        break;

                    case FrameStatus.End:
                        await MoveToNextSegmentAsync(state, cancellationToken).ConfigureAwait(false);
                        break;

                    case FrameStatus.Torn:
                        ThrowHelper.ThrowCorrupt(reader.Path, at, $"a record is cut short by the end of the segment at byte {limit}");
                        break;

                    default:
                        ThrowHelper.ThrowCorrupt(reader.Path, at, reader.Problem);
                        break;
                }
            }
        }
        catch (EmbeddedLogCorruptionException) when (records.Count > 0)
        {
            // The records before the damage are whole and checked: deliver them rather than hold the
            // consumer back before records it can process. The next read starts afresh at the damage
            // and throws there; the position never passes it.
            CloseReader();
        }
        catch
        {
            // The buffered reader may be past records that were not returned: start it afresh next time.
            CloseReader();
            throw;
        }

        Volatile.Write(ref _position, position);
        return records;
    }

    private async ValueTask OpenReaderAsync(LogState state, long position, CancellationToken cancellationToken)
    {
        CloseReader();
        var segment = state.Find(position)
            ?? throw new InvalidOperationException($"Offset {position} is below the log's start offset {state.StartOffset}: retention deleted records consumer group '{Group}' had not committed.");
        await OpenSegmentAsync(segment, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>At the end of a sealed segment: the next segment must start at the next offset.</summary>
    private async ValueTask MoveToNextSegmentAsync(LogState state, CancellationToken cancellationToken)
    {
        var current = _segment!;
        if (ReferenceEquals(current, state.Active))
        {
            ThrowHelper.ThrowCorrupt(current.Path, state.ActiveDurableBytes, $"the active segment ends at offset {_readerNext}, but the log's end offset is {state.EndOffset}");
        }

        // The segment after this one in the log (not a lookup by offset, which an empty sealed
        // segment would answer with itself) must start at the next offset.
        var index = Array.IndexOf(state.Segments, current);
        var next = index >= 0 && index + 1 < state.Segments.Length ? state.Segments[index + 1] : state.StartingAt(_readerNext);
        if (next is null || next.BaseOffset != _readerNext)
        {
            // Open checks only what headers and lengths show: an overlap, or a gap the segment's bytes could
            // have covered, is first seen here. Naming the next file points at the stray one.
            ThrowHelper.ThrowCorrupt(current.Path, current.SealedLength, next is null
                ? $"the sealed segment ends before offset {_readerNext}, and no segment starts at that offset"
                : next.BaseOffset < _readerNext
                    ? $"the sealed segment holds the records up to offset {_readerNext - 1}, but the next segment, '{Path.GetFileName(next.Path)}', starts at offset {next.BaseOffset}: they overlap (a stray segment file?)"
                    : $"the sealed segment holds the records up to offset {_readerNext - 1}, but the next segment, '{Path.GetFileName(next.Path)}', starts at offset {next.BaseOffset}: the records of offsets {_readerNext} to {next.BaseOffset - 1} are missing (a segment deleted?)");
        }

        CloseReader();
        await OpenSegmentAsync(next, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask OpenSegmentAsync(SegmentInfo segment, CancellationToken cancellationToken)
    {
        var reader = SegmentReader.Open(segment.Path, _log.Options.ReadBufferBytes);
        try
        {
            var header = await reader.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
            var problem = LogFormat.CheckSegmentHeader(header, segment.BaseOffset, out _);
            if (problem is not null)
            {
                ThrowHelper.ThrowCorrupt(segment.Path, 0, problem);
            }
        }
        catch
        {
            reader.Dispose();
            throw;
        }

        _reader = reader;
        _segment = segment;
        _readerNext = segment.BaseOffset;
    }

    private void CloseReader()
    {
        _reader?.Dispose();
        _reader = null;
        _segment = null;
    }

    private async ValueTask<bool> WaitForAppendAsync(Task signal, TimeSpan remaining, CancellationToken cancellationToken)
    {
        if (signal.IsCompleted)
        {
            return true;
        }

        using var delayCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(remaining, _log.Time, delayCancellation.Token);
        var first = await Task.WhenAny(signal, delay).ConfigureAwait(false);
        await delayCancellation.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return first == signal;
    }

    private void ThrowIfDisposed()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_log.IsDisposed)
        {
            throw new ObjectDisposedException(nameof(EmbeddedLog), $"The embedded log at '{_log.Location}' was disposed before this reader of group '{Group}'.");
        }
    }
}
