using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Weft.Definitions;
using Weft.Engine;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>
/// <c>dead_letters/&lt;signal&gt;</c>: every rejected event with where it came from (file and row, or
/// partition and offset), the stage that rejected it, the reason and the raw payload, partitioned by
/// the path that saw it. Appends are idempotent per (run, chunk): a resumed run never records a dead
/// letter twice.
/// </summary>
public static class DeadLetterTable
{
    public static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new("recorded_at", WeftType.Timestamp, Nullable: false),
        new("run", WeftType.String, Nullable: false),
        new("stage", WeftType.String, Nullable: false),
        new("reason", WeftType.String, Nullable: false),
        new("source", WeftType.String),
        new("event_id", WeftType.String),
        new("user_id", WeftType.Int64),
        new("event_type", WeftType.String),
        new("payload", WeftType.String),
    ];

    public static readonly IReadOnlyList<string> PartitionColumns = [EventLayout.PathColumn];

    public static Task<EventTable> OpenAsync(string path, CancellationToken cancellationToken) =>
        EventTable.OpenOrCreateAsync(path, Schema, PartitionColumns, cancellationToken: cancellationToken);

    /// <summary>
    /// Appends <paramref name="deadLetters"/> in one commit tagged <paramref name="commitTag"/>. With
    /// <paramref name="onlyOnce"/> (a tag a resumed run repeats), nothing is appended when a commit with
    /// that tag is already in the table. A fresh tag (the stream's flushes) skips that check.
    /// <paramref name="commitParameters"/> are recorded in the same commit (the stream's offsets).
    /// </summary>
    public static async Task AppendAsync(
        EventTable table, string path, string run, string commitTag, bool onlyOnce, IReadOnlyList<DeadLetter> deadLetters, long recordedAtMicros, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? commitParameters = null)
    {
        if (deadLetters.Count == 0)
        {
            return;
        }

        long checkedThrough = -1;
        if (onlyOnce)
        {
            (bool tagged, checkedThrough) = await IsTaggedAsync(table, run, commitTag, cancellationToken).ConfigureAwait(false);
            if (tagged)
            {
                return;
            }
        }

        int n = deadLetters.Count;
        var recorded = new long[n];
        Array.Fill(recorded, recordedAtMicros);
        var runs = new string?[n];
        Array.Fill(runs, run);
        var users = new long[n];
        var userNulls = new bool[n];
        for (int i = 0; i < n; i++)
        {
            users[i] = deadLetters[i].UserId ?? 0;
            userNulls[i] = deadLetters[i].UserId is null;
        }

        var batch = new EventBatch(Schema,
        [
            new PrimitiveColumn<long>(WeftType.Timestamp, recorded),
            new StringColumn(runs),
            new StringColumn(deadLetters.Select(d => (string?)d.Stage).ToArray()),
            new StringColumn(deadLetters.Select(d => (string?)d.Reason).ToArray()),
            new StringColumn(deadLetters.Select(d => d.Source).ToArray()),
            new StringColumn(deadLetters.Select(d => d.EventId).ToArray()),
            new PrimitiveColumn<long>(WeftType.Int64, users, userNulls),
            new StringColumn(deadLetters.Select(d => d.EventType).ToArray()),
            new StringColumn(deadLetters.Select(d => d.Payload).ToArray()),
        ]);
        var partitioner = EventPartitioner.Single(new Dictionary<string, string?> { [EventLayout.PathColumn] = path });
        var parameters = Parameters(run, commitTag, onlyOnce, commitParameters);
        if (!onlyOnce)
        {
            await table.AppendAsync(batch, partitioner, parameters, cancellationToken).ConfigureAwait(false);
            return;
        }

        try
        {
            // Conditional on the tag: another process of the same run (the streams of one group
            // recomputing a changed signal's tail) may have checked the same tag just as this one did.
            await table.AppendAsync(batch, partitioner, parameters, new CommitOnce(TagParameter, commitTag, checkedThrough), cancellationToken).ConfigureAwait(false);
        }
        catch (ConcurrentModificationException) when (!cancellationToken.IsCancellationRequested)
        {
            // The other process recorded them: done. Any other conflict (a schema change) stands.
            if (!(await IsTaggedAsync(table, run, commitTag, cancellationToken).ConfigureAwait(false)).Tagged)
            {
                throw;
            }
        }
    }

    /// <summary>
    /// What the batch path has already recorded under <paramref name="path"/>, read once per job:
    /// <see cref="NotYetRecorded"/> then keeps a rejected record from being recorded again by a later
    /// run over the same history (every run re-reads the archives), by each run's first chunk (the
    /// records whose event_time cannot be read), or once per delivery (the stream archive is at least
    /// once, and its replayed copies carry a later read stamp).
    /// </summary>
    /// <param name="root">The deployment's folder: a source under it is known relative to it (<see cref="Located"/>), also one recorded before sources were.</param>
    public static async Task<HashSet<string>> ReadRecordedAsync(EventTable table, string path, string root, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(table);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        string prefix = Prefix(root);
        var partitions = PartitionFilter.All.Equal(EventLayout.PathColumn, path);
        await foreach (var batch in table.ReadAsync(["stage", "event_id", "source"], partitions, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var stages = (StringColumn)batch["stage"];
            var ids = (StringColumn)batch["event_id"];
            var sources = (StringColumn)batch["source"];
            for (int i = 0; i < batch.RowCount; i++)
            {
                if (Key(stages.Values[i]!, ids.Values[i], Relative(sources.Values[i], prefix)) is { } key)
                {
                    keys.Add(key);
                }
            }
        }

        return keys;
    }

    /// <summary>
    /// The dead letters with each source in a file under <paramref name="root"/> (the deployment's folder)
    /// made relative to it (<c>raw/events/part-1.jsonl:12</c>). A record without an event_id is known by
    /// where it is, and by its absolute path a deployment moved, or reached by another path (a shard on a
    /// host that mounts the lake elsewhere), recorded the same record again.
    /// </summary>
    public static List<DeadLetter> Located(IReadOnlyList<DeadLetter> deadLetters, string root)
    {
        ArgumentNullException.ThrowIfNull(deadLetters);
        var located = new List<DeadLetter>(deadLetters.Count);
        string prefix = Prefix(root);
        foreach (var dead in deadLetters)
        {
            located.Add(Relative(dead.Source, prefix) is var source && !ReferenceEquals(source, dead.Source) ? dead with { Source = source } : dead);
        }

        return located;
    }

    /// <summary>The start of a source under <paramref name="root"/>: the folder and its separator ("/" itself ends in one).</summary>
    private static string Prefix(string root) => Path.EndsInDirectorySeparator(root) ? root : root + Path.DirectorySeparatorChar;

    private static string? Relative(string? source, string prefix)
    {
        return source is not null && source.StartsWith(prefix, StringComparison.Ordinal) && source.Length > prefix.Length
            ? source[prefix.Length..].Replace('\\', '/')
            : source;
    }

    /// <summary>
    /// The dead letters not in <paramref name="recorded"/>, each added to it. An event is recorded once
    /// per stage by its event_id (whichever copy or archive it came from); a record without an id, once
    /// per stage by where it is (file and line or row). One with neither is always new.
    /// </summary>
    public static List<DeadLetter> NotYetRecorded(IReadOnlyList<DeadLetter> deadLetters, HashSet<string> recorded)
    {
        ArgumentNullException.ThrowIfNull(deadLetters);
        ArgumentNullException.ThrowIfNull(recorded);
        var fresh = new List<DeadLetter>(deadLetters.Count);
        foreach (var dead in deadLetters)
        {
            if (Key(dead.Stage, dead.EventId, dead.Source) is not { } key || recorded.Add(key))
            {
                fresh.Add(dead);
            }
        }

        return fresh;
    }

    private static string? Key(string stage, string? eventId, string? source) =>
        !string.IsNullOrEmpty(eventId) ? string.Concat("id\0", stage, "\0", eventId)
        : !string.IsNullOrEmpty(source) ? string.Concat("at\0", stage, "\0", source)
        : null;

    /// <summary>
    /// A commit's parameters: the tag, and for a run that checks its tags (one a resumed run repeats)
    /// the run too, so that its first commit can be found (<see cref="RunStarts"/>). The stream's
    /// appends, one run with a fresh tag per flush, do not name a run.
    /// </summary>
    private static Dictionary<string, string> Parameters(string run, string commitTag, bool onlyOnce, IReadOnlyDictionary<string, string>? commitParameters)
    {
        var parameters = new Dictionary<string, string>(commitParameters ?? new Dictionary<string, string>()) { [TagParameter] = commitTag };
        if (onlyOnce)
        {
            parameters[LakeParameters.Run] = run;
        }

        return parameters;
    }

    /// <summary>
    /// The run a dead-letter commit belongs to: the one it names, or for a commit written before runs were
    /// named, the run in a batch tag (<c>batch:&lt;run&gt;:&lt;chunk&gt;…</c>).
    /// </summary>
    internal static string? RunOf(CommitSummary commit)
    {
        if (commit.Parameters.TryGetValue(LakeParameters.Run, out var run))
        {
            return run;
        }

        if (commit.Parameters.TryGetValue(TagParameter, out var tag) && tag.StartsWith("batch:", StringComparison.Ordinal))
        {
            int end = tag.IndexOf(':', 6);
            return end > 6 ? tag[6..end] : null;
        }

        return null;
    }

    private const string TagParameter = "weft.tag";

    /// <summary>The tags committed so far, per open table and run: each check reads only the commits since the last.</summary>
    private static readonly ConditionalWeakTable<EventTable, Dictionary<string, TagIndex>> Tags = new();

    /// <returns>Whether a commit of <paramref name="run"/> carries <paramref name="tag"/>, and the version the log was read through.</returns>
    private static async Task<(bool Tagged, long CheckedThrough)> IsTaggedAsync(EventTable table, string run, string tag, CancellationToken cancellationToken)
    {
        var runs = Tags.GetValue(table, _ => new Dictionary<string, TagIndex>(StringComparer.Ordinal));
        TagIndex index;
        lock (runs)
        {
            if (!runs.TryGetValue(run, out index!))
            {
                runs[run] = index = new TagIndex();
            }
        }

        await index.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // The first check starts at the run's first commit (or where the run-starts fold ends): a
            // table the stream has written dead letters to for months is not read from version 0.
            RunStarts? starts = null;
            if (!index.Started)
            {
                starts = await RunStarts.ReadAsync(table.Log, RunOf, cancellationToken).ConfigureAwait(false);
                index.Version = starts.ReadAfter(run);
                index.Started = true;
            }

            foreach (var commit in await table.Log.GetCommitsAfterAsync(index.Version, cancellationToken).ConfigureAwait(false))
            {
                starts?.Observe(commit);
                if (commit.Parameters.TryGetValue(TagParameter, out var committed) && RunOf(commit) == run)
                {
                    index.Committed.Add(committed);
                }

                index.Version = commit.Version;
            }

            if (starts is not null)
            {
                await starts.KeepAsync(table.Log, cancellationToken).ConfigureAwait(false);
            }

            return (index.Committed.Contains(tag), index.Version);
        }
        finally
        {
            index.Gate.Release();
        }
    }

    private sealed class TagIndex
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public bool Started { get; set; }

        public long Version { get; set; } = -1;

        public HashSet<string> Committed { get; } = new(StringComparer.Ordinal);
    }
}
