using System.Runtime.InteropServices;
using Weft.Definitions;

namespace Weft.Engine.Sequences;

/// <summary>
/// Enriched rows grouped by user (users ascending) and ordered inside each group the way a sequence
/// is: event_time descending, then event_id ascending (ordinal), copies of one event adjacent with the
/// one the merge policy prefers first. Built once in O(n) plus small per-user sorts (a counting sort
/// by user, no global comparison sort), then <see cref="Select"/> cuts any number of sequences out of
/// it: a snapshot takes one per user, a training set one per label row.
/// </summary>
public sealed class SequenceIndex
{
    private readonly long[] _users;
    private readonly int[] _starts;
    private readonly int[] _rows;
    private readonly long[] _times;
    private readonly long[] _ingest;
    private readonly string?[] _ids;
    private readonly Dictionary<long, int> _groupOf;

    private SequenceIndex(long[] users, int[] starts, int[] rows, long[] times, long[] ingest, string?[] ids, Dictionary<long, int> groupOf)
    {
        _users = users;
        _starts = starts;
        _rows = rows;
        _times = times;
        _ingest = ingest;
        _ids = ids;
        _groupOf = groupOf;
    }

    /// <summary>Users with at least one row, ascending.</summary>
    public int UserCount => _users.Length;

    public long UserAt(int group) => _users[group];

    /// <summary>The group of <paramref name="userId"/>, or -1.</summary>
    public int FindUser(long userId) => _groupOf.TryGetValue(userId, out int g) ? g : -1;

    /// <summary>A group's rows (indices into the columns it was built from), in sequence order.</summary>
    public ReadOnlySpan<int> RowsOf(int group) => _rows.AsSpan(_starts[group], _starts[group + 1] - _starts[group]);

    /// <summary>
    /// Groups the rows of an enriched batch (standard columns required). <paramref name="fromBatch"/>
    /// marks rows of the batch path (null: all from one path); rows with <paramref name="admitted"/>
    /// false (e.g. stream rows of a sealed bucket) are left out.
    /// </summary>
    public static SequenceIndex Build(EventBatch rows, MergePolicyKind policy, bool[]? fromBatch = null, bool[]? admitted = null)
    {
        var users = ((PrimitiveColumn<long>)rows[StandardColumns.UserId]).Values;
        var times = ((PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
        var ingest = ((PrimitiveColumn<long>)rows[StandardColumns.IngestTime]).Values;
        var ids = ((StringColumn)rows[StandardColumns.EventId]).Values;
        return Build(users, times, ingest, ids, policy, fromBatch, admitted, rows.RowCount);
    }

    /// <summary>As <see cref="Build(EventBatch, MergePolicyKind, bool[], bool[])"/>, on raw column arrays of <paramref name="count"/> rows.</summary>
    public static SequenceIndex Build(long[] users, long[] times, long[] ingest, string?[] ids, MergePolicyKind policy, bool[]? fromBatch, bool[]? admitted, int count)
    {
        // 1. Dense group per user, then users ascending.
        var groupOf = new Dictionary<long, int>();
        var counts = new List<int>();
        var first = new int[count];
        for (int i = 0; i < count; i++)
        {
            if (admitted is not null && !admitted[i])
            {
                first[i] = -1;
                continue;
            }

            ref int g = ref CollectionsMarshal.GetValueRefOrAddDefault(groupOf, users[i], out bool exists);
            if (!exists)
            {
                g = counts.Count;
                counts.Add(0);
            }

            counts[g]++;
            first[i] = g;
        }

        var sortedUsers = new long[groupOf.Count];
        groupOf.Keys.CopyTo(sortedUsers, 0);
        Array.Sort(sortedUsers);
        var rank = new int[sortedUsers.Length]; // dense group → rank in user order
        for (int r = 0; r < sortedUsers.Length; r++)
        {
            int g = groupOf[sortedUsers[r]];
            rank[g] = r;
            groupOf[sortedUsers[r]] = r;
        }

        // 2. Counting sort of row indices by user rank.
        var starts = new int[sortedUsers.Length + 1];
        for (int g = 0; g < counts.Count; g++)
        {
            starts[rank[g] + 1] = counts[g];
        }

        for (int r = 0; r < sortedUsers.Length; r++)
        {
            starts[r + 1] += starts[r];
        }

        var cursor = starts.AsSpan(0, sortedUsers.Length).ToArray();
        var order = new int[starts[^1]];
        for (int i = 0; i < count; i++)
        {
            if (first[i] >= 0)
            {
                order[cursor[rank[first[i]]]++] = i;
            }
        }

        // 3. Each user's rows in sequence order; copies of one event adjacent, the preferred first.
        var comparer = new RowOrder(times, ids, ingest, fromBatch, policy);
        for (int r = 0; r < sortedUsers.Length; r++)
        {
            var span = order.AsSpan(starts[r], starts[r + 1] - starts[r]);
            if (span.Length > 1)
            {
                span.Sort(comparer);
            }
        }

        return new SequenceIndex(sortedUsers, starts, order, times, ingest, ids, groupOf);
    }

    /// <summary>
    /// The sequence of <paramref name="group"/> under <paramref name="cut"/>: rows inside the event-time
    /// and ingest-time cuts, one per event_id (the preferred copy), newest first, at most
    /// <see cref="SequenceCut.MaxLength"/>, appended to <paramref name="destination"/>. Returns whether
    /// more distinct events passed the cut than were kept (the sequence was truncated).
    /// </summary>
    public bool Select(int group, in SequenceCut cut, List<int> destination, HashSet<string>? seenScratch = null)
    {
        var rows = RowsOf(group);
        int kept = 0;
        string? previousId = null;
        long previousTime = 0;
        var seen = seenScratch;
        seen?.Clear();

        // Rows are newest first: skip what is after as_of with a binary search, stop at the lookback.
        int i = FirstAtOrBefore(rows, cut.AsOfMicros);
        for (; i < rows.Length; i++)
        {
            int row = rows[i];
            long time = _times[row];
            if (time < cut.FromMicros)
            {
                break;
            }

            if (_ingest[row] > cut.KnownAtMicros)
            {
                continue;
            }

            string id = _ids[row]!;
            if (time == previousTime && string.Equals(id, previousId, StringComparison.Ordinal))
            {
                continue; // another copy of the event just kept (the preferred copy sorts first)
            }

            // The same event_id at another event_time is rare (a corrupt re-send); catch it with a set
            // only once the sequence has more than one element.
            if (kept > 0)
            {
                seen ??= new HashSet<string>(StringComparer.Ordinal);
                if (seen.Count == 0)
                {
                    seen.Add(previousId!);
                }

                if (!seen.Add(id))
                {
                    continue;
                }
            }

            if (kept == cut.MaxLength)
            {
                return true;
            }

            destination.Add(row);
            kept++;
            previousId = id;
            previousTime = time;
        }

        return false;
    }

    private int FirstAtOrBefore(ReadOnlySpan<int> rows, long asOf)
    {
        int lo = 0, hi = rows.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_times[rows[mid]] > asOf)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private readonly struct RowOrder(long[] times, string?[] ids, long[] ingest, bool[]? fromBatch, MergePolicyKind policy) : IComparer<int>
    {
        public int Compare(int a, int b)
        {
            int c = times[b].CompareTo(times[a]);
            if (c != 0)
            {
                return c;
            }

            c = string.CompareOrdinal(ids[a], ids[b]);
            if (c != 0 || a == b)
            {
                return c;
            }

            bool aBatch = fromBatch is not null && fromBatch[a];
            bool bBatch = fromBatch is not null && fromBatch[b];
            if (MergePolicy.PrefersOver(policy, aBatch, ingest[a], bBatch, ingest[b]))
            {
                return MergePolicy.PrefersOver(policy, bBatch, ingest[b], aBatch, ingest[a]) ? a.CompareTo(b) : -1;
            }

            return 1;
        }
    }
}
