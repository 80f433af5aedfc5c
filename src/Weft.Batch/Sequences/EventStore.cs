using System.Collections.Immutable;
using System.Diagnostics;
using System.Text;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Batch.Sequences;

/// <summary>
/// The raw events of one sequence build, kept compactly: per row the user, event time, ingest time,
/// event type (a byte code) and the event id as UTF-8 bytes in one arena, plus the index of the row's
/// output of the signal's executor chain (-1 when the chain dropped it) and the flags the later stages
/// set. Rows are numbered in the order the archive delivered them. Appended by one thread; read by many
/// once <see cref="Seal"/> has run.
/// </summary>
internal sealed class EventStore
{
    public const byte Duplicate = 1;
    public const byte RepeatedAcrossChunks = 2;
    public const byte Capped = 4;

    private readonly ImmutableArray<FieldDefinition> _elementSchema;
    private readonly Dictionary<string, byte> _typeCodes = new(StringComparer.Ordinal);
    private List<EventBatch>? _elementParts = [];
    private int _elementCount;

    public EventStore(ImmutableArray<string> typeNames, ImmutableArray<FieldDefinition> elementSchema, int capacity)
    {
        if (typeNames.Length > byte.MaxValue)
        {
            throw new NotSupportedException($"the sequence build keeps event types as bytes; this signal has {typeNames.Length} types");
        }

        TypeNames = typeNames;
        for (int i = 0; i < typeNames.Length; i++)
        {
            _typeCodes[typeNames[i]] = (byte)i;
        }

        _elementSchema = elementSchema;
        Allocate(Math.Max(capacity, 1024), 0);
    }

    public ImmutableArray<string> TypeNames { get; }

    public int Count { get; private set; }

    public long[] Users { get; private set; } = [];

    public long[] Times { get; private set; } = [];

    public long[] Ingest { get; private set; } = [];

    public byte[] Types { get; private set; } = [];

    /// <summary>Per row: its row in <see cref="Elements"/>, or -1 when the executor chain dropped it.</summary>
    public int[] ElementRows { get; private set; } = [];

    public byte[] Flags { get; private set; } = [];

    /// <summary>Row r's id is <c>IdBytes[IdOffsets[r] .. IdOffsets[r + 1])</c>.</summary>
    public int[] IdOffsets { get; private set; } = [0];

    public byte[] IdBytes { get; private set; } = [];

    /// <summary>The executor chain's output columns the sequences need, one row per surviving event (after <see cref="Seal"/>).</summary>
    public EventBatch Elements { get; private set; } = null!;

    public ReadOnlySpan<byte> Id(int row) => IdBytes.AsSpan(IdOffsets[row], IdOffsets[row + 1] - IdOffsets[row]);

    public string IdString(int row) => Encoding.UTF8.GetString(Id(row));

    /// <summary>
    /// Appends the parsed rows of <paramref name="events"/> (the signal's raw schema) and the chain's output
    /// for them: <paramref name="chainRows"/>[k] is the row of <paramref name="events"/> that output row k of
    /// <paramref name="chained"/> came from.
    /// </summary>
    public void Append(EventBatch events, EventBatch chained, ReadOnlySpan<int> chainRows)
    {
        int n = events.RowCount;
        int first = Count;
        EnsureCapacity(n);
        ((PrimitiveColumn<long>)events[StandardColumns.UserId]).Values.AsSpan(0, n).CopyTo(Users.AsSpan(first));
        ((PrimitiveColumn<long>)events[StandardColumns.EventTime]).Values.AsSpan(0, n).CopyTo(Times.AsSpan(first));
        ((PrimitiveColumn<long>)events[StandardColumns.IngestTime]).Values.AsSpan(0, n).CopyTo(Ingest.AsSpan(first));
        ElementRows.AsSpan(first, n).Fill(-1);

        var types = ((StringColumn)events[StandardColumns.EventType]).Values;
        string? lastType = null;
        byte lastCode = 0;
        for (int i = 0; i < n; i++)
        {
            // Types come from a dictionary page or a small set of parsed strings: mostly the same instance.
            string type = types[i]!;
            if (!ReferenceEquals(type, lastType))
            {
                lastCode = _typeCodes[type];
                lastType = type;
            }

            Types[first + i] = lastCode;
        }

        var ids = ((StringColumn)events[StandardColumns.EventId]).Values;
        int at = IdOffsets[first];
        for (int i = 0; i < n; i++)
        {
            string id = ids[i]!;
            int max = Encoding.UTF8.GetMaxByteCount(id.Length);
            if ((long)at + max > IdBytes.Length)
            {
                GrowIds(at + max, at);
            }

            at += Encoding.UTF8.GetBytes(id, IdBytes.AsSpan(at));
            IdOffsets[first + i + 1] = at;
        }

        for (int k = 0; k < chainRows.Length; k++)
        {
            ElementRows[first + chainRows[k]] = _elementCount + k;
        }

        if (first == 0 && n > 0)
        {
            // Size the arena once for the expected total from the first batch's average id length.
            long expected = (long)(at / (double)n * Users.Length * 1.05);
            if (expected > IdBytes.Length)
            {
                GrowIds((int)Math.Min(Array.MaxLength, expected), at);
            }
        }

        if (chained.RowCount > 0)
        {
            _elementParts!.Add(chained.Project(_elementSchema));
            _elementCount += chained.RowCount;
        }

        Count = first + n;
    }

    /// <summary>Ends appending: the chain's outputs become one batch and the per-row flags are allocated.</summary>
    public void Seal()
    {
        Debug.Assert(_elementParts is not null, "sealed twice");
        Elements = _elementParts.Count == 0 ? EventBatch.Empty(_elementSchema) : EventBatch.Concat(_elementSchema, _elementParts);
        _elementParts = null;
        Flags = new byte[Count];
    }

    private void EnsureCapacity(int more)
    {
        long needed = (long)Count + more;
        if (needed <= Users.Length)
        {
            return;
        }

        if (needed > Array.MaxLength - 1)
        {
            throw new InputException($"a sequence build holds at most {Array.MaxLength - 1:N0} events in one process; split the job by user");
        }

        Allocate((int)Math.Min(Array.MaxLength - 1, Math.Max(needed, Users.Length * 3L / 2)), IdBytes.Length);
    }

    private void Allocate(int capacity, int idBytes)
    {
        Users = Resize(Users, capacity, Count);
        Times = Resize(Times, capacity, Count);
        Ingest = Resize(Ingest, capacity, Count);
        Types = Resize(Types, capacity, Count);
        ElementRows = Resize(ElementRows, capacity, Count);
        IdOffsets = Resize(IdOffsets, capacity + 1, Count + 1);
        if (IdBytes.Length == 0)
        {
            IdBytes = new byte[(int)Math.Min(Array.MaxLength, Math.Max(idBytes, capacity * 20L))];
        }
    }

    private void GrowIds(long needed, int used)
    {
        if (needed > Array.MaxLength)
        {
            throw new InputException($"a sequence build holds at most 2 GiB of event ids in one process; split the job by user");
        }

        var bigger = new byte[(int)Math.Min(Array.MaxLength, Math.Max(needed, IdBytes.Length * 3L / 2))];
        IdBytes.AsSpan(0, used).CopyTo(bigger);
        IdBytes = bigger;
    }

    private static T[] Resize<T>(T[] array, int capacity, int used)
    {
        if (array.Length == capacity)
        {
            return array;
        }

        var bigger = new T[capacity];
        array.AsSpan(0, Math.Min(array.Length, used)).CopyTo(bigger);
        return bigger;
    }
}
