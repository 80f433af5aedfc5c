using System.Globalization;
using System.Collections.Immutable;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Engine.Sequences;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>Rows read from <c>enriched/&lt;signal&gt;</c> with what the merge policy needs to know of each.</summary>
/// <param name="Rows">Sequence columns plus user_id and ingest_time.</param>
/// <param name="FromBatch">Per row: written by the batch path.</param>
/// <param name="Admitted">Per row: the merge policy lets it take part (e.g. stream rows of sealed buckets do not).</param>
public sealed record EnrichedRows(EventBatch Rows, bool[] FromBatch, bool[] Admitted, int BatchRows, int StreamRows)
{
    /// <summary>
    /// Columns that may hold nulls as the lake has them, whatever the definition declares: one added
    /// to the signal after rows were written has none for them (an additive change), so a file of
    /// these rows must allow nulls there.
    /// </summary>
    public IReadOnlySet<string> NullableColumns { get; } = Rows.Schema.Where(f => f.Nullable).Select(f => f.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The admitted rows <paramref name="where"/> keeps, one copy of each event_id: the copy
    /// <paramref name="policy"/> prefers, as a sequence takes it (in an open bucket, or a sealed one with
    /// events that arrived after its seal, both paths may hold an event). Row order otherwise kept.
    /// </summary>
    public int[] OneCopyEach(MergePolicyKind policy, Func<int, bool> where)
    {
        ArgumentNullException.ThrowIfNull(where);
        var ids = ((StringColumn)Rows[StandardColumns.EventId]).Values;
        var users = ((PrimitiveColumn<long>)Rows[StandardColumns.UserId]).Values;
        var ingest = ((PrimitiveColumn<long>)Rows[StandardColumns.IngestTime]).Values;
        var chosen = new Dictionary<(long User, string Id), int>();
        var order = new List<(long User, string Id)>();
        for (int i = 0; i < Rows.RowCount; i++)
        {
            if (!Admitted[i] || !where(i))
            {
                continue;
            }

            // Per user, as a sequence de-duplicates; on a tie (neither copy preferred) the earlier row stays, as SequenceIndex orders them.
            var key = (users[i], ids[i]!);
            if (!chosen.TryGetValue(key, out int held))
            {
                chosen[key] = i;
                order.Add(key);
            }
            else if (MergePolicy.PrefersOver(policy, FromBatch[i], ingest[i], FromBatch[held], ingest[held])
                && !MergePolicy.PrefersOver(policy, FromBatch[held], ingest[held], FromBatch[i], ingest[i]))
            {
                chosen[key] = i;
            }
        }

        var rows = new int[order.Count];
        for (int k = 0; k < rows.Length; k++)
        {
            rows[k] = chosen[order[k]];
        }

        Array.Sort(rows);
        return rows;
    }
}

/// <summary>The state of an enriched table that provenance reports: version, sealed buckets, watermarks.</summary>
/// <param name="SealedThroughMicros">End of the newest sealed bucket (the batch watermark), or null.</param>
public sealed record LakeState(long Version, ImmutableHashSet<string> SealedBuckets, long? SealedThroughMicros)
{
    /// <summary>
    /// For a sealed bucket, when the batch run that sealed it (last) began reading the raw archives
    /// (µs, <c>weft.read_at</c>); absent when its commit does not say. Stream rows that arrived after
    /// it are events that run could not see (<see cref="MergePolicy.Admits(MergePolicyKind, bool, bool, long, long)"/>).
    /// </summary>
    public ImmutableDictionary<string, long> SealReadAt { get; init; } = ImmutableDictionary<string, long>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>When the run that sealed <paramref name="bucket"/> read, or <see cref="long.MaxValue"/> when unknown or not sealed.</summary>
    public long SealReadAtMicros(string bucket) => SealReadAt.TryGetValue(bucket, out long at) ? at : long.MaxValue;
}

/// <summary>
/// Reads <c>enriched/&lt;signal&gt;</c>, where the stream path and the batch path both write
/// (partition <c>path</c>), and applies the merge policy: sealed buckets from batch, the rest from
/// both paths with duplicates collapsed. Snapshots, training sets and serving all read through it.
/// </summary>
public sealed class EnrichedLake
{
    private readonly EventTable _table;
    private readonly SignalDefinition _signal;
    private LakeState? _state;

    private EnrichedLake(EventTable table, SignalDefinition signal)
    {
        _table = table;
        _signal = signal;
    }

    public EventTable Table => _table;

    /// <summary>The signal whose merge policy the reads apply.</summary>
    public SignalDefinition Signal => _signal;

    /// <summary>The columns read: the sequence columns plus user_id and ingest_time.</summary>
    public ImmutableArray<string> Columns =>
        [.. _signal.SequenceColumns.Select(f => f.Name), StandardColumns.UserId, StandardColumns.IngestTime];

    /// <summary>
    /// The signal's enriched table, as the batch and stream writers open it: an additive change to the
    /// signal (an element or enrichment column added) adds the column to the table, and rows written
    /// before read it as null, as this class's readers do before any writer has opened the table again.
    /// A retyped column, or a non-null one this definition lacks, fails naming it and what to do.
    /// </summary>
    public static async Task<EventTable> OpenForWritingAsync(WeftConfig config, CompiledSignal signal, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(signal);
        string path = config.EnrichedTable(signal.Definition.Name);
        try
        {
            return await EventTable.OpenOrCreateAsync(path, signal.EnrichedSchema, EventLayout.PartitionColumns, new EventTableOptions { AddColumns = true }, cancellationToken).ConfigureAwait(false);
        }
        catch (SchemaMismatchException e)
        {
            bool produced = signal.EnrichedSchema.Any(f => f.Name == e.Column);
            if (e.ColumnsNotAddedBecause is { } layout)
            {
                throw new InputException(
                    $"signal '{signal.Definition.Name}' v{signal.Definition.Version} cannot write its enriched table '{path}': column '{e.Column}' is new, " +
                    $"and Weft adds columns only to a table in its own layout, which this one is not: {layout}. Add the column with the engine that keeps the table, " +
                    $"or {MoveAside(config.ConfigPath, signal.Definition.Name, path)} ({e.Message})");
            }

            throw new InputException(
                $"signal '{signal.Definition.Name}' v{signal.Definition.Version} cannot write its enriched table '{path}': column '{e.Column}' " +
                (produced ? "has another type there" : "is one every row of the table has, and this definition no longer produces it") +
                $" (columns can be added to the table, and a nullable one left to nulls, not changed). {WayOut(config.ConfigPath, signal.Definition.Name, path, e.Column)} ({e.Message})");
        }
    }

    /// <summary>What to do about a column the table holds otherwise than the definition: the commands, whole (with the config when known).</summary>
    private static string WayOut(string? configPath, string signal, string path, string column) =>
        $"Keep column '{column}' as it was, or {MoveAside(configPath, signal, path)}";

    private static string MoveAside(string? configPath, string signal, string path) =>
        "move the table aside and recompute the history under this definition: " +
        $"mv {path} {path}.v-old && weft backfill{(configPath is null ? "" : " --config " + configPath)} --signal {signal} --from <first day of the history> --to {Timestamps.Format(Timestamps.ToMicros(DateTimeOffset.UtcNow))}.";

    /// <summary>The fingerprint of the lake's newest stream commit, or null when the stream never wrote it.</summary>
    public static async Task<string?> LastStreamedUnderAsync(EventTable table, CancellationToken cancellationToken)
    {
        // A stream commits every few seconds: its newest commit is nearly always among the last few
        // dozen (batch runs and compactions between); the whole history only when it is not.
        foreach (int? limit in new int?[] { 64, null })
        {
            var history = await table.Log.GetHistoryAsync(limit, cancellationToken).ConfigureAwait(false);
            foreach (var commit in history)
            {
                if (commit.Parameters.GetValueOrDefault(LakeParameters.Path) == EventLayout.StreamPath
                    && commit.Parameters.GetValueOrDefault(LakeParameters.Fingerprint) is { } fingerprint)
                {
                    return fingerprint;
                }
            }

            if (limit is { } l && history.Count < l)
            {
                break;
            }
        }

        return null;
    }

    /// <summary>What <see cref="LastStreamedUnderAsync(EventTable, CancellationToken)"/> says of this lake's table.</summary>
    public Task<string?> LastStreamedUnderAsync(CancellationToken cancellationToken) => LastStreamedUnderAsync(_table, cancellationToken);

    public static async Task<EnrichedLake> OpenAsync(string path, SignalDefinition signal, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(Path.Combine(path, "_delta_log")))
        {
            throw new InputException($"no enriched table for signal '{signal.Name}' at '{path}': run `weft batch` (or the stream) first");
        }

        return new EnrichedLake(await EventTable.OpenAsync(path, cancellationToken).ConfigureAwait(false), signal);
    }

    /// <summary>The table's version and sealed buckets (re-read only when the version moved).</summary>
    public async Task<LakeState> GetStateAsync(CancellationToken cancellationToken) =>
        _state = await ReadStateAsync(_table, _state, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// <paramref name="table"/>'s version and sealed buckets (those a batch commit sealed), from
    /// <paramref name="known"/> on when given: a reader that only needs which buckets are sealed (quality).
    /// </summary>
    public static async Task<LakeState> ReadStateAsync(EventTable table, LakeState? known, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(table);
        var snapshot = await table.Log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
        if (known is { } cached && cached.Version == snapshot.Version)
        {
            return cached;
        }

        // Only the commits since the cached state: a stream flushes every few seconds, and re-reading
        // the whole history at each refresh would cost more the longer the table lives. A first read
        // starts from the sealed buckets a previous reader kept (a fold of the log, DeltaTable.ReadFoldAsync).
        var previous = known is { } earlier && earlier.Version < snapshot.Version ? earlier : null;
        var sealedBuckets = previous?.SealedBuckets.ToBuilder() ?? ImmutableHashSet.CreateBuilder<string>(StringComparer.Ordinal);
        var readAts = previous?.SealReadAt.ToBuilder() ?? ImmutableDictionary.CreateBuilder<string, long>(StringComparer.Ordinal);
        long? through = previous?.SealedThroughMicros;
        long after = previous?.Version ?? -1;
        var fold = previous is null ? await table.Log.ReadFoldAsync(SealedFold, cancellationToken).ConfigureAwait(false) : null;
        if (previous is null && fold is null && await table.Log.ReadFoldAsync(BucketsOnlyFold, cancellationToken).ConfigureAwait(false) is { } older && older.Version <= snapshot.Version)
        {
            // Kept by a Weft that folded buckets alone: they seal, their read times unknown (so their late
            // stream rows stay hidden until a run seals them again). A log cleaned up behind a checkpoint
            // may no longer hold the commits that sealed them.
            after = older.Version;
            foreach (var bucket in older.Value.Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                Seal(bucket, null);
            }
        }
        else if (fold is { } kept && kept.Version <= snapshot.Version)
        {
            after = kept.Version;
            foreach (var entry in kept.Value.Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                // "bucket@read_at", or "bucket" when the run that sealed it did not record when it read.
                int at = entry.IndexOf('@', StringComparison.Ordinal);
                Seal(at < 0 ? entry : entry[..at], at >= 0 && long.TryParse(entry.AsSpan(at + 1), NumberStyles.None, CultureInfo.InvariantCulture, out long readAt) ? readAt : null);
            }
        }

        long folded = after;
        int read = 0;
        foreach (var commit in await table.Log.GetCommitsAfterAsync(after, cancellationToken).ConfigureAwait(false))
        {
            if (commit.Version > snapshot.Version)
            {
                break; // committed after the snapshot was taken: the next call reads it
            }

            if (commit.Parameters.TryGetValue(LakeParameters.Sealed, out var list) && list.Length > 0)
            {
                long? readAt = commit.Parameters.TryGetValue(LakeParameters.ReadAt, out var text)
                    && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long micros) ? micros : null;
                foreach (var bucket in list.Split(','))
                {
                    Seal(bucket, readAt);
                }
            }

            (folded, read) = (commit.Version, read + 1);
        }

        if (previous is null && read >= FoldKeepAfter)
        {
            await table.Log.WriteFoldAsync(SealedFold, folded,
                string.Join(',', sealedBuckets.Order(StringComparer.Ordinal).Select(b => readAts.TryGetValue(b, out long at) ? $"{b}@{at.ToString(CultureInfo.InvariantCulture)}" : b)), cancellationToken).ConfigureAwait(false);
        }

        return new LakeState(snapshot.Version, sealedBuckets.ToImmutable(), through) { SealReadAt = readAts.ToImmutable() };

        void Seal(string bucket, long? readAt)
        {
            // A commit another writer named a bucket in that is no bucket ("", "a,,b") seals nothing.
            if (!TimeBuckets.TryParse(bucket, out var kind, out long start))
            {
                return;
            }

            // The latest sealing run's read time: a commit that does not record one leaves it unknown.
            if (readAt is { } at)
            {
                readAts[bucket] = at;
            }
            else
            {
                readAts.Remove(bucket);
            }

            if (sealedBuckets.Add(bucket))
            {
                long end = start + TimeBuckets.LengthMicros(kind);
                through = through is { } t ? Math.Max(t, end) : end;
            }
        }
    }

    /// <summary>The name of the fold of sealed buckets this table keeps for its next first reader.</summary>
    /// (Entries are "bucket@read_at"; a name of its own, so a Weft that folded buckets alone neither reads
    /// these, where it would find no bucket, nor is read as lacking read times.)
    internal const string SealedFold = "sealed-buckets-read-at";

    /// <summary>The fold a Weft kept before read times were folded: bucket names alone.</summary>
    internal const string BucketsOnlyFold = "sealed-buckets";

    /// <summary>Commits a first read folds before it keeps the sealed buckets for the next one.</summary>
    internal const int FoldKeepAfter = DeltaTable.FoldWorthKeeping;

    /// <summary>Every row with event_time in [<paramref name="fromMicros"/>, <paramref name="toMicros"/>], marked for the merge.</summary>
    public async Task<EnrichedRows> ReadAsync(long fromMicros, long toMicros, CancellationToken cancellationToken)
    {
        var state = await GetStateAsync(cancellationToken).ConfigureAwait(false);
        // A column the signal has gained since the table was last written (an additive change deployed,
        // no batch or stream run since) is read as null, as the rows written before it are. The columns
        // are the read version's: a long-lived reader (serving's history) sees those a writer added since it opened.
        var snapshot = await _table.Log.GetSnapshotAsync(state.Version, cancellationToken).ConfigureAwait(false);
        var tableSchema = ColumnConversions.ToDataFields(snapshot.Schema, snapshot.PartitionColumns);
        foreach (var column in _signal.SequenceColumns)
        {
            if (tableSchema.FirstOrDefault(t => t.Name == column.Name) is { } held && held.Type != column.Type)
            {
                throw new InputException(
                    $"signal '{_signal.Name}' v{_signal.Version} reads column '{column.Name}' as {column.Type}, but its enriched table '{_table.Path}' holds it as {held.Type} " +
                    $"(a retyped column: the rows there are another definition's). Deploy the definition that wrote them, or: {WayOut(null, _signal.Name, _table.Path, column.Name)}");
            }
        }

        var missing = _signal.SequenceColumns.Where(f => !tableSchema.Any(t => t.Name == f.Name)).Select(f => f with { Nullable = true }).ToImmutableArray();
        string[] columns = [.. Columns.Where(c => !missing.Any(f => f.Name == c)), EventLayout.PathColumn, EventLayout.BucketColumn];
        var filter = TimeBuckets.Filter(Math.Max(fromMicros, TimeBuckets.MinMicros), Math.Min(toMicros, TimeBuckets.MaxMicros), _signal.Bucket);
        var range = new ColumnRange(StandardColumns.EventTime, fromMicros, toMicros);
        var parts = new List<EventBatch>();
        await foreach (var batch in _table.ReadAsync(columns, filter, range, state.Version, cancellationToken).ConfigureAwait(false))
        {
            parts.Add(batch);
        }

        var schema = tableSchema.Where(f => Columns.Contains(f.Name)).Concat(missing).ToImmutableArray();
        if (parts.Count == 0)
        {
            return new EnrichedRows(EventBatch.Empty(Order(schema)), [], [], 0, 0);
        }

        var all = EventBatch.Concat(parts[0].Schema, parts);
        if (missing.Length > 0)
        {
            all = new EventBatch([.. all.Schema, .. missing], [.. all.Columns, .. missing.Select(f => Column.AllNull(f.Type, all.RowCount))]);
        }

        var paths = ((StringColumn)all[EventLayout.PathColumn]).Values;
        var buckets = ((StringColumn)all[EventLayout.BucketColumn]).Values;
        var ingest = ((PrimitiveColumn<long>)all[StandardColumns.IngestTime]).Values;
        int n = all.RowCount;
        var fromBatch = new bool[n];
        var admitted = new bool[n];
        int batchRows = 0, streamRows = 0;
        for (int i = 0; i < n; i++)
        {
            fromBatch[i] = paths[i] == EventLayout.BatchPath;
            bool sealedBucket = state.SealedBuckets.Contains(buckets[i]!);
            admitted[i] = MergePolicy.Admits(_signal.Merge, fromBatch[i], sealedBucket, ingest[i], sealedBucket ? state.SealReadAtMicros(buckets[i]!) : long.MaxValue);
            if (admitted[i])
            {
                if (fromBatch[i])
                {
                    batchRows++;
                }
                else
                {
                    streamRows++;
                }
            }
        }

        return new EnrichedRows(all.Project(Order(schema)), fromBatch, admitted, batchRows, streamRows);
    }

    private ImmutableArray<FieldDefinition> Order(ImmutableArray<FieldDefinition> schema) =>
        [.. Columns.Select(c => schema.First(f => f.Name == c))];
}
