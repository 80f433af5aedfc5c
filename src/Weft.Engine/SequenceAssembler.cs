using System.Collections.Immutable;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>One user's assembled sequence: elements newest first, with the sequence columns.</summary>
public sealed record UserSequence(long UserId, EventBatch Elements, bool Truncated);

/// <summary>
/// Order-and-truncate: keeps, per user, the events ordered by event_time descending then event_id
/// ascending, deduplicated by event_id (first delivery wins), trimmed to max_length and to the byte
/// budget. It accepts batches in any order and of any size, so feeding it one record at a time and
/// feeding it one table give the same sequences.
/// </summary>
public sealed class SequenceAssembler : IEventExecutor
{
    private readonly SignalDefinition _signal;
    private readonly ImmutableArray<FieldDefinition> _sequenceColumns;
    private readonly Dictionary<long, UserState> _users = [];
    private readonly long _lookbackMicros;
    private readonly long _asOf;

    /// <param name="asOfMicros">
    /// Events after this instant are not part of the sequences being built (long.MaxValue: "now",
    /// as the streaming path uses it). Truncation to max_length then happens among events up to
    /// as_of, so a snapshot as of that instant is exact.
    /// </param>
    public SequenceAssembler(SignalDefinition signal, long asOfMicros = long.MaxValue)
    {
        _signal = signal;
        _sequenceColumns = signal.SequenceColumns;
        _lookbackMicros = (long)(signal.Lookback.Ticks / 10);
        _asOf = asOfMicros;
    }

    /// <summary>Events ignored because they happened after as_of.</summary>
    public long AfterAsOf { get; private set; }

    public string Name => "assemble";

    public int UserCount => _users.Count;

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => input;

    private sealed class UserState
    {
        public List<Element> Elements { get; } = [];

        public long Bytes { get; set; }

        /// <summary>
        /// The earliest-ordered event ever dropped for length or bytes. Everything ordered at or after
        /// it stays out, which makes the kept set the longest in-budget prefix of all events seen, in
        /// whatever order they arrived.
        /// </summary>
        public (long Time, string Id)? Floor { get; set; }

        public void Drop(long time, string id)
        {
            if (Floor is not { } f || Compare(new Element(f.Time, f.Id, null!, 0, 0), time, id) > 0)
            {
                Floor = (time, id);
            }
        }
    }

    private readonly record struct Element(long EventTime, string EventId, EventBatch Batch, int Row, int Bytes);

    private static int Compare(in Element a, long time, string id)
    {
        // Newest first; ties by event_id ascending (ordinal).
        int c = time.CompareTo(a.EventTime);
        return c != 0 ? c : string.CompareOrdinal(a.EventId, id);
    }

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        Add(batch);
        return ValueTask.FromResult(batch);
    }

    public void Add(EventBatch enriched)
    {
        var projected = enriched.Project(_sequenceColumns);
        var users = ((PrimitiveColumn<long>)enriched[StandardColumns.UserId]).Values;
        var times = ((PrimitiveColumn<long>)enriched[StandardColumns.EventTime]).Values;
        var ids = ((StringColumn)enriched[StandardColumns.EventId]).Values;
        int maxLength = Math.Min(_signal.MaxLength, _signal.Budgets.MaxElements);
        for (int i = 0; i < enriched.RowCount; i++)
        {
            long time = times[i];
            if (time > _asOf)
            {
                AfterAsOf++;
                continue;
            }

            ref var state = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_users, users[i], out _);
            state ??= new UserState();
            var list = state.Elements;
            string id = ids[i]!;

            // Binary search for the insertion point in (time desc, id asc) order.
            int lo = 0, hi = list.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (Compare(list[mid], time, id) < 0)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            if (lo < list.Count && list[lo].EventTime == time && list[lo].EventId == id)
            {
                continue; // duplicate delivery
            }

            if (state.Floor is { } floor && Compare(new Element(floor.Time, floor.Id, null!, 0, 0), time, id) <= 0)
            {
                continue; // at or after the floor: an event ordered before it did not fit
            }

            if (lo >= maxLength)
            {
                state.Drop(time, id);
                continue; // older than everything kept, and the sequence is full
            }

            int bytes = 0;
            for (int c = 0; c < projected.Columns.Count; c++)
            {
                bytes += projected.Columns[c].ValueBytes(i);
            }

            list.Insert(lo, new Element(time, id, projected, i, bytes));
            state.Bytes += bytes;
            while (list.Count > maxLength || (state.Bytes > _signal.Budgets.MaxBytesPerUser && list.Count > 1))
            {
                var dropped = list[^1];
                state.Bytes -= dropped.Bytes;
                list.RemoveAt(list.Count - 1);
                state.Drop(dropped.EventTime, dropped.EventId);
            }
        }
    }

    /// <summary>
    /// Every user's sequence as of <paramref name="asOfMicros"/>: events in (as_of − lookback, as_of],
    /// newest first, users ascending. Exact for the as_of the assembler was built with (or any later
    /// instant); an earlier instant sees only what survived truncation.
    /// </summary>
    public IReadOnlyList<UserSequence> Snapshot(long asOfMicros)
    {
        var result = new List<UserSequence>(_users.Count);
        foreach (var user in _users.Keys.Order())
        {
            if (Sequence(user, asOfMicros) is { } s)
            {
                result.Add(s);
            }
        }

        return result;
    }

    public UserSequence? Sequence(long userId, long asOfMicros)
    {
        if (!_users.TryGetValue(userId, out var state))
        {
            return null;
        }

        long from = asOfMicros - _lookbackMicros;
        var parts = new List<EventBatch>();
        var rows = new List<int>();
        EventBatch? current = null;
        foreach (var e in state.Elements)
        {
            if (e.EventTime > asOfMicros || e.EventTime <= from)
            {
                continue;
            }

            if (!ReferenceEquals(e.Batch, current))
            {
                Flush();
                current = e.Batch;
            }

            rows.Add(e.Row);
        }

        Flush();
        if (parts.Count == 0)
        {
            return null;
        }

        // Truncated means an event inside the window was dropped: the floor is the newest dropped one.
        bool truncated = state.Floor is { } floor && floor.Time > from && floor.Time <= asOfMicros;
        return new UserSequence(userId, EventBatch.Concat(_sequenceColumns, parts), truncated);

        void Flush()
        {
            if (current is not null && rows.Count > 0)
            {
                parts.Add(current.Gather(rows.ToArray()));
            }

            rows.Clear();
        }
    }
}
