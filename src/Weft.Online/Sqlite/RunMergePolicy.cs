namespace Weft.Online.Sqlite;

/// <summary>
/// When the SQLite store merges runs, and which: size tiers. A run's tier is 0 below
/// <c>baseRows</c> rows and grows by one per factor of <c>fanIn</c>; once a tier holds
/// <c>fanIn</c> runs, its oldest <c>fanIn</c> are merged into one run of the next tier. So a
/// signal keeps at most <c>fanIn - 1</c> runs per tier (a read seeks each once), and each element
/// is rewritten about once per tier it climbs: log_fanIn(rows / baseRows) times.
/// </summary>
internal sealed class RunMergePolicy(int baseRows, int fanIn)
{
    private readonly Lock _gate = new();
    private readonly HashSet<string> _due = new(StringComparer.Ordinal);
    private readonly int _baseRows = Math.Max(1, baseRows);
    private readonly int _fanIn = Math.Max(2, fanIn);

    public bool HasDue
    {
        get
        {
            lock (_gate)
            {
                return _due.Count > 0;
            }
        }
    }

    /// <summary>Notes whether <paramref name="signal"/>, with these runs, has a merge due; returns whether it has.</summary>
    public bool Due(string signal, IReadOnlyList<(long Run, long Rows)> runs)
    {
        bool due = Plan(runs) is not null;
        lock (_gate)
        {
            if (due)
            {
                _due.Add(signal);
            }
            else
            {
                _due.Remove(signal);
            }
        }

        return due;
    }

    /// <summary>A signal with a merge due (no longer noted as due), or null.</summary>
    public string? Next()
    {
        lock (_gate)
        {
            foreach (var signal in _due)
            {
                _due.Remove(signal);
                return signal;
            }

            return null;
        }
    }

    /// <summary>The runs to merge now, largest first; null when none is due. <paramref name="runs"/> come oldest first.</summary>
    public List<long>? Plan(IReadOnlyList<(long Run, long Rows)> runs)
    {
        if (runs.Count < _fanIn)
        {
            return null;
        }

        var byTier = new SortedDictionary<int, List<(long Run, long Rows)>>();
        foreach (var run in runs)
        {
            int tier = Tier(run.Rows);
            if (!byTier.TryGetValue(tier, out var list))
            {
                byTier[tier] = list = [];
            }

            list.Add(run);
        }

        foreach (var (_, list) in byTier)
        {
            if (list.Count >= _fanIn)
            {
                var chosen = list.Take(_fanIn).ToList();
                chosen.Sort((a, b) => b.Rows.CompareTo(a.Rows));
                return chosen.ConvertAll(r => r.Run);
            }
        }

        return null;
    }

    internal int Tier(long rows)
    {
        int tier = 0;
        long limit = _baseRows;
        while (rows >= limit)
        {
            tier++;
            if (limit > long.MaxValue / _fanIn)
            {
                break;
            }

            limit *= _fanIn;
        }

        return tier;
    }
}
