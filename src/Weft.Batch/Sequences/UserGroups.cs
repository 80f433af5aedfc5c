namespace Weft.Batch.Sequences;

/// <summary>
/// The rows of an <see cref="EventStore"/> that are not duplicates, grouped by user, users ascending;
/// inside a group, rows in store order. A counting sort: directly on the user id when the ids are dense
/// enough (their range at most a few times the row count), else on ranks from a dictionary of the
/// distinct users.
/// </summary>
internal sealed class UserGroups
{
    private UserGroups(long[] users, int[] starts, int[] rows)
    {
        Users = users;
        Starts = starts;
        Rows = rows;
    }

    /// <summary>Distinct users, ascending.</summary>
    public long[] Users { get; }

    /// <summary>Group g's rows are <c>Rows[Starts[g] .. Starts[g + 1])</c>.</summary>
    public int[] Starts { get; }

    public int[] Rows { get; }

    public int Count => Users.Length;

    public ReadOnlySpan<int> RowsOf(int group) => Rows.AsSpan(Starts[group], Starts[group + 1] - Starts[group]);

    public static UserGroups Build(EventStore store)
    {
        int n = store.Count;
        var users = store.Users;
        var flags = store.Flags;
        long min = long.MaxValue, max = long.MinValue;
        int kept = 0;
        for (int r = 0; r < n; r++)
        {
            if ((flags[r] & EventStore.Duplicate) == 0)
            {
                min = Math.Min(min, users[r]);
                max = Math.Max(max, users[r]);
                kept++;
            }
        }

        if (kept == 0)
        {
            return new UserGroups([], [0], []);
        }

        // Dense ids: count straight into an array indexed by id - min.
        ulong range = (ulong)(max - min);
        return range < (ulong)Math.Max(1L << 16, 4L * kept) && range < int.MaxValue - 2
            ? Dense(store, kept, min, (int)range + 1)
            : Sparse(store, kept);
    }

    private static UserGroups Dense(EventStore store, int kept, long min, int range)
    {
        int n = store.Count;
        var users = store.Users;
        var flags = store.Flags;
        var counts = new int[range + 1];
        for (int r = 0; r < n; r++)
        {
            if ((flags[r] & EventStore.Duplicate) == 0)
            {
                counts[users[r] - min + 1]++;
            }
        }

        int distinct = 0;
        for (int u = 1; u <= range; u++)
        {
            distinct += counts[u] > 0 ? 1 : 0;
            counts[u] += counts[u - 1];
        }

        // counts[u] is now the start of user min + u.
        var sortedUsers = new long[distinct];
        var starts = new int[distinct + 1];
        int g = 0;
        for (int u = 0; u < range; u++)
        {
            if (counts[u + 1] > counts[u])
            {
                sortedUsers[g] = min + u;
                starts[g++] = counts[u];
            }
        }

        starts[distinct] = kept;
        var rows = new int[kept];
        for (int r = 0; r < n; r++)
        {
            if ((flags[r] & EventStore.Duplicate) == 0)
            {
                rows[counts[users[r] - min]++] = r;
            }
        }

        return new UserGroups(sortedUsers, starts, rows);
    }

    private static UserGroups Sparse(EventStore store, int kept)
    {
        int n = store.Count;
        var users = store.Users;
        var flags = store.Flags;
        var groupOf = new Dictionary<long, int>();
        var groups = new int[n];
        var counts = new List<int>();
        for (int r = 0; r < n; r++)
        {
            if ((flags[r] & EventStore.Duplicate) != 0)
            {
                groups[r] = -1;
                continue;
            }

            ref int g = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(groupOf, users[r], out bool exists);
            if (!exists)
            {
                g = counts.Count;
                counts.Add(0);
            }

            counts[g]++;
            groups[r] = g;
        }

        var sortedUsers = new long[groupOf.Count];
        groupOf.Keys.CopyTo(sortedUsers, 0);
        Array.Sort(sortedUsers);
        var rank = new int[sortedUsers.Length];
        for (int i = 0; i < sortedUsers.Length; i++)
        {
            rank[groupOf[sortedUsers[i]]] = i;
        }

        var starts = new int[sortedUsers.Length + 1];
        for (int g = 0; g < counts.Count; g++)
        {
            starts[rank[g] + 1] = counts[g];
        }

        for (int i = 0; i < sortedUsers.Length; i++)
        {
            starts[i + 1] += starts[i];
        }

        var cursor = starts.AsSpan(0, sortedUsers.Length).ToArray();
        var rows = new int[kept];
        for (int r = 0; r < n; r++)
        {
            if (groups[r] >= 0)
            {
                rows[cursor[rank[groups[r]]]++] = r;
            }
        }

        return new UserGroups(sortedUsers, starts, rows);
    }
}
