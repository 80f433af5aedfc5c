using System.Collections.Immutable;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;

namespace Weft.Batch;

/// <summary>
/// Sequences in columnar form: output row r (a user, or a label row) owns the elements
/// <c>Elements[Offsets[r] .. Offsets[r+1])</c>, newest first. <see cref="Keys"/> holds the per-row
/// columns (user_id, and for training sets label_time and the label columns).
/// </summary>
public sealed record SequenceTable(EventBatch Keys, int[] Offsets, EventBatch Elements, bool[] Truncated)
{
    public int RowCount => Keys.RowCount;

    public int Length(int row) => Offsets[row + 1] - Offsets[row];
}

/// <summary>Cuts sequences out of merged enriched rows: the code snapshots, training sets and serving share.</summary>
public static class SequenceBuilder
{
    /// <summary>
    /// One row per user with at least one element under <paramref name="cut"/>, users ascending. With
    /// <paramref name="enrichments"/>, enrichment columns are re-read as known at the cut's known-at
    /// time (as a training set's as-served mode does at each label time) when the element carries the
    /// join key; without, they are the values the lake stored (the latest corrected versions).
    /// </summary>
    public static SequenceTable Snapshot(EnrichedRows rows, SignalDefinition signal, SequenceCut cut, IReadOnlyDictionary<string, EnrichmentTable>? enrichments = null)
    {
        var index = SequenceIndex.Build(rows.Rows, signal.Merge, rows.FromBatch, rows.Admitted);
        var users = new List<long>(index.UserCount);
        var offsets = new List<int>(index.UserCount + 1) { 0 };
        var truncated = new List<bool>(index.UserCount);
        var picked = new List<int>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int g = 0; g < index.UserCount; g++)
        {
            int before = picked.Count;
            bool cutShort = index.Select(g, cut, picked, seen);
            if (picked.Count == before)
            {
                continue;
            }

            users.Add(index.UserAt(g));
            offsets.Add(picked.Count);
            truncated.Add(cutShort);
        }

        var keys = new EventBatch([new FieldDefinition(StandardColumns.UserId, WeftType.Int64, Nullable: false)],
            [new PrimitiveColumn<long>(WeftType.Int64, users.ToArray())]);
        var elements = rows.Rows.Project(signal.SequenceColumns).Gather(picked.ToArray());
        if (enrichments is not null)
        {
            elements = ReEnrich(elements, signal, enrichments, _ => cut.KnownAtMicros);
        }

        return new SequenceTable(keys, offsets.ToArray(), elements, truncated.ToArray());
    }

    /// <summary>
    /// One output row per label row: the sequence of the label's user as it stood at
    /// <paramref name="labelTimes"/>[i] (events strictly before it). <paramref name="knownAtLabelTime"/>
    /// adds the ingest-time cut (as-served); enrichments are then re-read as known at the label time
    /// from <paramref name="enrichments"/> when the element carries the join key, and without it
    /// (corrected) re-read at their latest versions, also for rows the stream stored with the version it
    /// knew then. An enrichment whose join key the element lacks keeps the values the lake stored.
    /// </summary>
    public static SequenceTable ForLabels(
        EnrichedRows rows, SignalDefinition signal, EventBatch labels, long[] labelUsers, long[] labelTimes, bool knownAtLabelTime,
        IReadOnlyDictionary<string, EnrichmentTable>? enrichments, int? maxLength = null)
    {
        var index = SequenceIndex.Build(rows.Rows, signal.Merge, rows.FromBatch, rows.Admitted);
        return LabelRows(index, rows, signal, labels, labelUsers, labelTimes, knownAtLabelTime, enrichments, maxLength, 0, int.MaxValue, out _);
    }

    /// <summary>
    /// <see cref="ForLabels"/> in parts of consecutive label rows, each closed once it holds
    /// <paramref name="elementsPerPart"/> elements: a training set over many labels of heavy users holds
    /// far more elements than its lake rows (each label repeats its user's history), so it is written
    /// part by part instead of built whole in memory.
    /// </summary>
    public static IEnumerable<SequenceTable> ForLabelsInParts(
        EnrichedRows rows, SignalDefinition signal, EventBatch labels, long[] labelUsers, long[] labelTimes, bool knownAtLabelTime,
        IReadOnlyDictionary<string, EnrichmentTable>? enrichments, int? maxLength = null, int elementsPerPart = 1 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(elementsPerPart, 1);
        var index = SequenceIndex.Build(rows.Rows, signal.Merge, rows.FromBatch, rows.Admitted);
        int first = 0;
        do
        {
            yield return LabelRows(index, rows, signal, labels, labelUsers, labelTimes, knownAtLabelTime, enrichments, maxLength, first, elementsPerPart, out int next);
            first = next;
        }
        while (first < labelUsers.Length);
    }

    /// <summary>Label rows from <paramref name="first"/> on, until they hold <paramref name="elementBudget"/> elements or the labels end.</summary>
    private static SequenceTable LabelRows(
        SequenceIndex index, EnrichedRows rows, SignalDefinition signal, EventBatch labels, long[] labelUsers, long[] labelTimes, bool knownAtLabelTime,
        IReadOnlyDictionary<string, EnrichmentTable>? enrichments, int? maxLength, int first, int elementBudget, out int next)
    {
        var offsets = new List<int> { 0 };
        var truncated = new List<bool>();
        var picked = new List<int>();
        var labelOfElement = new List<int>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int i = first;
        for (; i < labelUsers.Length && picked.Count < elementBudget; i++)
        {
            int g = index.FindUser(labelUsers[i]);
            bool cutShort = false;
            if (g >= 0)
            {
                // A read at label_time, less an event at label_time itself (it may be the labelled
                // action): the end moves back a microsecond and the lookback with it, so the window
                // starts where a snapshot or a served read at label_time starts.
                var cut = SequenceCut.For(signal, labelTimes[i] - 1, knownAtLabelTime ? labelTimes[i] : long.MaxValue, maxLength, lookback: signal.Lookback - TimeSpan.FromMicroseconds(1));
                int before = picked.Count;
                cutShort = index.Select(g, cut, picked, seen);
                for (int k = before; k < picked.Count; k++)
                {
                    labelOfElement.Add(i);
                }
            }

            truncated.Add(cutShort);
            offsets.Add(picked.Count);
        }

        next = i;
        var elements = rows.Rows.Project(signal.SequenceColumns).Gather(picked.ToArray());
        if (enrichments is not null)
        {
            // As served: the versions known at each label time. Corrected: the latest, re-read too, since
            // a stream row (an open bucket no batch run has recomputed yet) stores the version the stream
            // knew when it read the event, which a correction may have replaced since.
            elements = knownAtLabelTime
                ? ReEnrich(elements, signal, enrichments, e => labelTimes[labelOfElement[e]])
                : ReEnrich(elements, signal, enrichments, _ => long.MaxValue);
        }

        var keys = first == 0 && next == labels.RowCount ? labels : labels.Gather(Enumerable.Range(first, next - first).ToArray());
        return new SequenceTable(keys, offsets.ToArray(), elements, truncated.ToArray());
    }

    /// <summary>Replaces each enrichment column by its value as known at <paramref name="knownAtOf"/>(element).</summary>
    private static EventBatch ReEnrich(EventBatch elements, SignalDefinition signal, IReadOnlyDictionary<string, EnrichmentTable> enrichments, Func<int, long> knownAtOf)
    {
        var columns = elements.Columns.ToArray();
        foreach (var enrichment in signal.Enrichments)
        {
            if (!elements.TryGetColumn(enrichment.On, out var keyColumn) || !enrichments.TryGetValue(enrichment.Source, out var table))
            {
                continue; // the element does not carry the join key: the stored (latest) values stay
            }

            var rows = new int[elements.RowCount];
            var types = enrichment.EventTypes.IsDefaultOrEmpty ? null : enrichment.EventTypes.ToHashSet(StringComparer.Ordinal);
            var eventTypes = ((StringColumn)elements[StandardColumns.EventType]).Values;
            for (int e = 0; e < rows.Length; e++)
            {
                long knownAt = knownAtOf(e);
                rows[e] = keyColumn.IsNull(e) || (types is not null && !types.Contains(eventTypes[e]!)) ? -1
                    : keyColumn is StringColumn s ? table.Find(s.Values[e]!, knownAt)
                    : table.Find(Convert.ToInt64(keyColumn.GetValue(e), System.Globalization.CultureInfo.InvariantCulture), knownAt);
            }

            foreach (var name in enrichment.Columns)
            {
                int c = IndexOf(elements.Schema, name);
                if (c >= 0)
                {
                    columns[c] = GatherOrNull(table.Rows[name], rows, elements.Schema[c].Type);
                }
            }
        }

        return new EventBatch(elements.Schema, columns);
    }

    private static int IndexOf(ImmutableArray<FieldDefinition> schema, string name)
    {
        for (int i = 0; i < schema.Length; i++)
        {
            if (schema[i].Name == name)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Rows of <paramref name="source"/> by index; -1 gives null.</summary>
    internal static Column GatherOrNull(Column source, int[] rows, WeftType type)
    {
        var safe = new int[rows.Length];
        var nulls = new bool[rows.Length];
        bool anyNull = false;
        for (int i = 0; i < rows.Length; i++)
        {
            if (rows[i] < 0 || source.IsNull(rows[i]))
            {
                nulls[i] = anyNull = true;
            }
            else
            {
                safe[i] = rows[i];
            }
        }

        if (source.Length == 0)
        {
            return Column.AllNull(type, rows.Length);
        }

        var gathered = source.Gather(safe);
        if (!anyNull)
        {
            return gathered;
        }

        return gathered switch
        {
            StringColumn s => new StringColumn(s.Values.Select((v, i) => nulls[i] ? null : v).ToArray()),
            PrimitiveColumn<long> p => new PrimitiveColumn<long>(type, p.Values, nulls),
            PrimitiveColumn<int> p => new PrimitiveColumn<int>(type, p.Values, nulls),
            PrimitiveColumn<double> p => new PrimitiveColumn<double>(type, p.Values, nulls),
            PrimitiveColumn<float> p => new PrimitiveColumn<float>(type, p.Values, nulls),
            PrimitiveColumn<bool> p => new PrimitiveColumn<bool>(type, p.Values, nulls),
            ListColumn<float> l => new ListColumn<float>(type, l.Values.Select((v, i) => nulls[i] ? null : v).ToArray(), nulls),
            ListColumn<double> l => new ListColumn<double>(type, l.Values.Select((v, i) => nulls[i] ? null : v).ToArray(), nulls),
            ListColumn<long> l => new ListColumn<long>(type, l.Values.Select((v, i) => nulls[i] ? null : v).ToArray(), nulls),
            ListColumn<int> l => new ListColumn<int>(type, l.Values.Select((v, i) => nulls[i] ? null : v).ToArray(), nulls),
            ListColumn<string> l => new ListColumn<string>(type, l.Values.Select((v, i) => nulls[i] ? null : v).ToArray(), nulls),
            _ => throw new NotSupportedException($"column type {type}"),
        };
    }
}
