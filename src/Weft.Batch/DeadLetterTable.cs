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

        if (onlyOnce && await IsTaggedAsync(table, commitTag, cancellationToken).ConfigureAwait(false))
        {
            return;
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
        await table.AppendAsync(batch, EventPartitioner.Single(new Dictionary<string, string?> { [EventLayout.PathColumn] = path }),
            new Dictionary<string, string>(commitParameters ?? new Dictionary<string, string>()) { [TagParameter] = commitTag }, cancellationToken).ConfigureAwait(false);
    }

    private const string TagParameter = "weft.tag";

    /// <summary>The tags committed so far, per open table: each check reads only the commits since the last.</summary>
    private static readonly ConditionalWeakTable<EventTable, TagIndex> Tags = new();

    private static async Task<bool> IsTaggedAsync(EventTable table, string tag, CancellationToken cancellationToken)
    {
        var index = Tags.GetValue(table, _ => new TagIndex());
        await index.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var commit in await table.Log.GetCommitsAfterAsync(index.Version, cancellationToken).ConfigureAwait(false))
            {
                if (commit.Parameters.TryGetValue(TagParameter, out var committed))
                {
                    index.Committed.Add(committed);
                }

                index.Version = commit.Version;
            }

            return index.Committed.Contains(tag);
        }
        finally
        {
            index.Gate.Release();
        }
    }

    private sealed class TagIndex
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public long Version { get; set; } = -1;

        public HashSet<string> Committed { get; } = new(StringComparer.Ordinal);
    }
}
