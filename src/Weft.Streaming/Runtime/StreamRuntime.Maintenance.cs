using Weft.Storage;

namespace Weft.Streaming.Runtime;

// The stream's table maintenance: compaction of closed buckets' small files and vacuum, now or in the background.
public sealed partial class StreamRuntime
{
    /// <summary>
    /// Compacts the small files of every signal's closed stream buckets, and the stream files of the
    /// dead-letter and late-event tables, now (see <see cref="StreamOptions.CompactInterval"/>); waits
    /// for the background maintenance in flight first. Returns the files removed.
    /// </summary>
    public async Task<int> CompactAsync(CancellationToken cancellationToken)
    {
        if (_maintaining is { } running)
        {
            await running.ConfigureAwait(false);
        }

        return await CompactAsync(CompactionTargets(), cancellationToken).ConfigureAwait(false);
    }

    private async Task StopMaintenanceAsync()
    {
        if (_maintaining is { } running)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await running.ConfigureAwait(false); // it ends quietly when cancelled
            _maintaining = null;
        }
    }

    /// <summary>What a compaction covers, read on the loop (the watermarks are the loop's).</summary>
    private List<(string Table, string Path, PartitionFilter Partitions)> CompactionTargets()
    {
        var stream = PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.StreamPath);
        var targets = new List<(string, string, PartitionFilter)>();
        foreach (var s in _signals)
        {
            var name = s.Env.Definition.Name;
            if (s.LastClosedBucket() is { } closed)
            {
                Add(_config.EnrichedTable(name), stream.Between(EventLayout.BucketColumn, null, closed));
            }

            Add(_config.DeadLetterTable(name), stream);
            Add(_config.LateEventTable(name), PartitionFilter.All); // partitioned by bucket only: every row is the stream's
        }

        Add(_config.DeadLetterTable(UnroutedDeadLetters), stream);
        return targets;

        void Add(string path, PartitionFilter partitions) =>
            targets.Add((Path.GetRelativePath(_config.Lake, path).Replace('\\', '/'), path, partitions));
    }

    /// <summary>
    /// Vacuums the stream's tables now (see <see cref="StreamOptions.VacuumInterval"/>), even when the
    /// interval turns background vacuuming off; waits for the background maintenance in flight first.
    /// Returns the files deleted.
    /// </summary>
    public async Task<int> VacuumAsync(CancellationToken cancellationToken)
    {
        if (_maintaining is { } running)
        {
            await running.ConfigureAwait(false);
        }

        return await VacuumAsync(VacuumTargets(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every table the stream writes: each signal's enriched, dead-letter and late-event tables, and the unrouted dead letters.</summary>
    private List<(string Table, string Path)> VacuumTargets()
    {
        var tables = new List<(string, string)>();
        foreach (var s in _signals)
        {
            var name = s.Env.Definition.Name;
            Add(_config.EnrichedTable(name));
            Add(_config.DeadLetterTable(name));
            Add(_config.LateEventTable(name));
        }

        Add(_config.DeadLetterTable(UnroutedDeadLetters));
        return tables;

        void Add(string path) => tables.Add((Path.GetRelativePath(_config.Lake, path).Replace('\\', '/'), path));
    }

    /// <summary>
    /// Each table through a handle of its own, on the runtime's clock, kept for the next vacuum, which then
    /// replays only the commits since this one's horizon. A table that fails is counted and left for next time.
    /// </summary>
    private async Task<int> VacuumAsync(List<(string Table, string Path)> tables, CancellationToken cancellationToken)
    {
        int deleted = 0;
        foreach (var (name, path) in tables)
        {
            try
            {
                if (!Directory.Exists(Path.Combine(path, "_delta_log")))
                {
                    continue;
                }

                DeltaTable? table;
                lock (_vacuumed)
                {
                    _vacuumed.TryGetValue(path, out table);
                }

                if (table is null)
                {
                    table = await DeltaTable.OpenAsync(path, new DeltaTableOptions { TimeProvider = _time }, cancellationToken).ConfigureAwait(false);
                    lock (_vacuumed)
                    {
                        _vacuumed[path] = table;
                    }
                }

                var result = await table.VacuumAsync(_options.VacuumRetention, dryRun: false, cancellationToken).ConfigureAwait(false);

                // Moves the table's fold of stream commits on, so that a restart reads at most the commits since.
                await StreamCommitsAsync(table, cancellationToken).ConfigureAwait(false);
                deleted += result.Files.Count;
                Metrics.Count("weft_stream_vacuumed_files_total", "Files no longer referenced, past the retention, deleted by the stream's vacuum, by table", result.Files.Count, ("table", name));
                Metrics.Count("weft_stream_vacuumed_bytes_total", "Bytes of the files the stream's vacuum deleted, by table", result.Files.Sum(f => f.Size), ("table", name));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                LastVacuumFailure = e;
                Metrics.Count("weft_stream_vacuum_failures_total", "Vacuums of a table that failed (tried again at the next interval)", 1, ("table", name));
            }
        }

        return deleted;
    }

    /// <summary>
    /// Each table through its own handle (the flushes keep theirs): the log's optimistic concurrency
    /// keeps a flush that commits meanwhile, and a table that fails is counted and left for next time.
    /// </summary>
    private async Task<int> CompactAsync(List<(string Table, string Path, PartitionFilter Partitions)> targets, CancellationToken cancellationToken)
    {
        int removed = 0;
        foreach (var (name, path, partitions) in targets)
        {
            try
            {
                if (!Directory.Exists(Path.Combine(path, "_delta_log")))
                {
                    continue;
                }

                var table = await EventTable.OpenAsync(path, cancellationToken).ConfigureAwait(false);
                var result = await table.CompactAsync(partitions, _options.CompactMinFiles, cancellationToken).ConfigureAwait(false);
                removed += result.FilesRemoved;
                Metrics.Count("weft_stream_compacted_files_total", "Small stream files rewritten into larger ones, by table", result.FilesRemoved, ("table", name));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                LastCompactionFailure = e;
                Metrics.Count("weft_stream_compaction_failures_total", "Background compactions of a table that failed (tried again at the next interval)", 1, ("table", name));
            }
        }

        return removed;
    }

    private async Task MaintainInBackgroundAsync(List<(string Table, string Path, PartitionFilter Partitions)> compactions, List<(string Table, string Path)> vacuums)
    {
        try
        {
            await CompactAsync(compactions, _stopping.Token).ConfigureAwait(false);
            await VacuumAsync(vacuums, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // stopped: what was not committed is left as it was
        }
    }
}
