using System.Collections.Immutable;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;

namespace Weft.Serving.Sequences;

/// <summary>A hybrid sequence: its elements (sequence columns) and the rows served, newest first, with where they came from.</summary>
internal sealed record HybridSequence(EventBatch Elements, List<int> Rows, int FromStream, int FromBatch, int FromLegacy, bool Truncated);

/// <summary>
/// Assembles one user's sequence while some event types are migrated and some are not
/// (docs/migration.md): Weft's elements of the types Weft serves the consumer, and the legacy
/// pipeline's elements of the types legacy serves, under one cut. Both sides pass the same event-time
/// window; each side's copies of one event_id count once; the merge is newest first (event_id breaks
/// ties, as Weft's own order does) and keeps the cut's length. The ingest-time cut (known_at) applies to
/// Weft's side only: legacy answers no arrival times.
/// </summary>
internal static class HybridAssembly
{
    /// <param name="weft">Weft's rows of the user in <see cref="ServedSignal.RowSchema"/>, the first <paramref name="batchCount"/> from the batch history.</param>
    /// <param name="weftRows">Weft's rows under the cut with no length cap, newest first, one per event.</param>
    /// <param name="legacy">Legacy's elements, in <see cref="ServedSignal.SequenceColumns"/>, in any order.</param>
    /// <param name="legacyTypes">The event types legacy serves; Weft serves the others.</param>
    public static HybridSequence Assemble(
        ImmutableArray<FieldDefinition> sequenceColumns, EventBatch weft, int batchCount, List<int> weftRows, EventBatch legacy, IReadOnlySet<string> legacyTypes, in SequenceCut cut)
    {
        var weftTypes = (StringColumn)weft[StandardColumns.EventType];
        var keptWeft = new List<int>(weftRows.Count);
        foreach (int r in weftRows)
        {
            if (!legacyTypes.Contains(weftTypes.Values[r]!))
            {
                keptWeft.Add(r);
            }
        }

        var legacyIds = (StringColumn)legacy[StandardColumns.EventId];
        var legacyTypesColumn = (StringColumn)legacy[StandardColumns.EventType];
        var legacyTimes = ((PrimitiveColumn<long>)legacy[StandardColumns.EventTime]).Values;
        var keptLegacy = new List<int>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int r = 0; r < legacy.RowCount; r++)
        {
            long time = legacyTimes[r];
            if (legacyTypes.Contains(legacyTypesColumn.Values[r]!) && time <= cut.AsOfMicros && time >= cut.FromMicros && seen.Add(legacyIds.Values[r]!))
            {
                keptLegacy.Add(r);
            }
        }

        var parts = new List<EventBatch>(2) { weft.Project(sequenceColumns).Gather(keptWeft.ToArray()), legacy.Project(sequenceColumns).Gather(keptLegacy.ToArray()) };
        var elements = EventBatch.Concat(sequenceColumns, parts);
        var times = ((PrimitiveColumn<long>)elements[StandardColumns.EventTime]).Values;
        var ids = ((StringColumn)elements[StandardColumns.EventId]).Values;
        var order = new int[elements.RowCount];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, (a, b) =>
        {
            int byTime = times[b].CompareTo(times[a]);
            return byTime != 0 ? byTime : string.CompareOrdinal(ids[a], ids[b]);
        });

        int length = Math.Min(cut.MaxLength, order.Length);
        var rows = new List<int>(length);
        int fromStream = 0, fromBatch = 0, fromLegacy = 0;
        for (int i = 0; i < length; i++)
        {
            int row = order[i];
            rows.Add(row);
            if (row >= keptWeft.Count)
            {
                fromLegacy++;
            }
            else if (keptWeft[row] < batchCount)
            {
                fromBatch++;
            }
            else
            {
                fromStream++;
            }
        }

        return new HybridSequence(elements, rows, fromStream, fromBatch, fromLegacy, Truncated: order.Length > length);
    }
}
