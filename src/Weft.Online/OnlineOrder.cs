namespace Weft.Online;

/// <summary>The read order in C#: event_time descending, then event_id ascending by code point.</summary>
internal sealed class OnlineOrder : IComparer<OnlineElement>
{
    public static OnlineOrder Instance { get; } = new();

    public int Compare(OnlineElement x, OnlineElement y)
    {
        var byTime = y.EventTimeMicros.CompareTo(x.EventTimeMicros);
        return byTime != 0 ? byTime : CompareEventIds(x.EventId, y.EventId);
    }

    /// <summary>
    /// Code point order, which is the byte order of UTF-8 (SQLite's BINARY, PostgreSQL's "C"
    /// collation). It differs from UTF-16 ordinal order only between surrogate pairs and U+E000–U+FFFF.
    /// </summary>
    public static int CompareEventIds(string x, string y)
    {
        var common = x.AsSpan().CommonPrefixLength(y);
        if (common == x.Length || common == y.Length)
        {
            return x.Length.CompareTo(y.Length);
        }

        return Weight(x[common]).CompareTo(Weight(y[common]));
    }

    /// <summary>Moves surrogates (U+D800–U+DFFF) above U+FFFF so UTF-16 units compare as code points.</summary>
    private static int Weight(char c) => c >= '\uE000' ? c - 0x800 : c >= '\uD800' ? c + 0x2000 : c;

    /// <summary>True when the list is already in read order (the common case for what a database returns).</summary>
    public static bool IsSorted(List<OnlineElement> elements)
    {
        for (var i = 1; i < elements.Count; i++)
        {
            if (Instance.Compare(elements[i - 1], elements[i]) > 0)
            {
                return false;
            }
        }

        return true;
    }
}
