using System.Collections.Frozen;
using System.Collections.Immutable;
using Weft.Definitions;
using Weft.Engine.Sequences;
using Weft.Online;

namespace Weft.Serving.Sequences;

/// <summary>
/// A signal as the server holds it: its frozen definition and fingerprint, the codec of its online
/// payloads, the columns of a merged row, its batch history, and the counters that invalidate cached
/// sequences.
/// </summary>
internal sealed class ServedSignal
{
    /// <summary>Stripes of per-user write counters (a power of two): an append bumps its users' stripes.</summary>
    private const int WriteStripes = 1024;

    private readonly long[] _writes = new long[WriteStripes];
    private long _generation;
    private long _otherDefinitionElements;
    private long _streamWatermark = long.MinValue;

    public ServedSignal(int slot, SignalDefinition definition, BatchHistory history)
    {
        Slot = slot;
        Definition = definition;
        Fingerprint = SignalJsonWriter.Fingerprint(definition);
        Codec = new ElementCodec(definition, Fingerprint);
        History = history;
        RowSchema = RowSchemaOf(definition);
        SequenceColumns = definition.SequenceColumns;
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < SequenceColumns.Length; i++)
        {
            index[SequenceColumns[i].Name] = i;
        }

        ColumnIndex = index.ToFrozenDictionary(StringComparer.Ordinal);
        MaxLength = Math.Min(definition.MaxLength, definition.Budgets.MaxElements);
        Retention = OnlineStores.KeptPerUser(MaxLength);
    }

    /// <summary>Index of this signal in the server's list (the cache key's first half).</summary>
    public int Slot { get; }

    public SignalDefinition Definition { get; }

    public string Name => Definition.Name;

    public string Fingerprint { get; }

    public ElementCodec Codec { get; }

    public BatchHistory History { get; }

    /// <summary>Columns of a merged row: the sequence columns (event_id, event_type, event_time, element…), then user_id and ingest_time.</summary>
    public ImmutableArray<FieldDefinition> RowSchema { get; }

    /// <summary>Columns a response may project, in their canonical order.</summary>
    public ImmutableArray<FieldDefinition> SequenceColumns { get; }

    /// <summary>Sequence column name → its index in <see cref="RowSchema"/> (and <see cref="SequenceColumns"/>).</summary>
    public FrozenDictionary<string, int> ColumnIndex { get; }

    /// <summary>The longest sequence served: max_length (capped by the element budget).</summary>
    public int MaxLength { get; }

    /// <summary>Elements per user the online store keeps (<see cref="OnlineStores.KeptPerUser"/>): what a read takes from it.</summary>
    public int Retention { get; }

    /// <summary>Changes whenever every cached sequence of the signal becomes stale: a new batch history, a trim.</summary>
    public long Generation => Volatile.Read(ref _generation);

    /// <summary>The newest event time the stream has made servable, or null when unknown.</summary>
    public long? StreamWatermark => Volatile.Read(ref _streamWatermark) is var w && w != long.MinValue ? w : null;

    public void Invalidate() => Interlocked.Increment(ref _generation);

    /// <summary>
    /// Online elements of another definition of the signal met while building sequences since start
    /// (streamed before a deployment): each build counts those it met, so it is a flag of stale elements
    /// in the store, not a count of events missing (batch rows may stand in for them).
    /// </summary>
    public long OtherDefinitionElements => Interlocked.Read(ref _otherDefinitionElements);

    public void SkippedOtherDefinition(int elements) => Interlocked.Add(ref _otherDefinitionElements, elements);

    public long WritesOf(long userId) => Volatile.Read(ref _writes[Stripe(userId)]);

    public void Written(long userId) => Interlocked.Increment(ref _writes[Stripe(userId)]);

    public void AdvanceStreamWatermark(long eventTimeMicros)
    {
        long current;
        do
        {
            current = Volatile.Read(ref _streamWatermark);
            if (eventTimeMicros <= current)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _streamWatermark, eventTimeMicros, current) != current);
    }

    /// <summary>
    /// An element's event time as the watermark counts it: no later than its arrival. A skewed client's
    /// event from hours ahead is served, but must not claim the stream is complete up to that hour.
    /// </summary>
    public static long ServableTime(in OnlineElement element) => Math.Min(element.EventTimeMicros, element.IngestTimeMicros);

    /// <summary>
    /// Moves the watermark to the newest of <paramref name="elements"/>, read from the online store: what a
    /// read sees is servable, even when the append that wrote it has not reported back yet (or was made by
    /// another process), so provenance never names a watermark older than an element it serves (an element
    /// from ahead of its arrival counts at its arrival, <see cref="ServableTime"/>).
    /// </summary>
    public void AdvanceStreamWatermark(IReadOnlyList<OnlineElement> elements)
    {
        long newest = long.MinValue;
        for (int i = 0; i < elements.Count; i++)
        {
            newest = Math.Max(newest, ServableTime(elements[i]));
        }

        if (newest != long.MinValue)
        {
            AdvanceStreamWatermark(newest);
        }
    }

    public static ImmutableArray<FieldDefinition> RowSchemaOf(SignalDefinition definition) =>
    [
        .. definition.SequenceColumns,
        new FieldDefinition(StandardColumns.UserId, WeftType.Int64, Nullable: false),
        new FieldDefinition(StandardColumns.IngestTime, WeftType.Timestamp, Nullable: false),
    ];

    private static int Stripe(long userId) => (int)((ulong)(userId * unchecked((long)0x9E3779B97F4A7C15)) >> 54) & (WriteStripes - 1);
}
