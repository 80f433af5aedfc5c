using System.Diagnostics;
using System.Globalization;
using Weft.Online;

namespace Weft.Bench.Streaming.Modes;

/// <summary>
/// An <see cref="IOnlineStore"/> that delegates every call and, right after an append returns (a read
/// would see the elements), notes the <see cref="Stopwatch"/> time against
/// each element's event sequence number, parsed back from the generated event id
/// (<c>{seed:x4}-{i:x12}</c>, see <see cref="ClickEvents"/>). The first time wins (appends are idempotent).
/// </summary>
internal sealed class TimingOnlineStore(IOnlineStore inner, long[] servableAt) : IOnlineStore
{
    private long _appended;

    /// <summary>Elements handed to appends whose sequence number was in range (duplicates included).</summary>
    public long Appended => Interlocked.Read(ref _appended);

    public string Describe => inner.Describe;

    public async ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, OnlineDurability durability, CancellationToken cancellationToken)
    {
        var stored = await inner.AppendAsync(signal, elements, checkpoint, durability, cancellationToken).ConfigureAwait(false);
        var now = Stopwatch.GetTimestamp();
        long noted = 0;
        for (var i = 0; i < elements.Count; i++)
        {
            if (SequenceOf(elements[i].EventId) is { } seq && seq < servableAt.Length)
            {
                // One appender at a time (the runtime's loop), but be safe against a concurrent one.
                Interlocked.CompareExchange(ref servableAt[seq], now, 0);
                noted++;
            }
        }

        Interlocked.Add(ref _appended, noted);
        return stored;
    }

    public ValueTask SyncAsync(CancellationToken cancellationToken) => inner.SyncAsync(cancellationToken);

    public ValueTask<IReadOnlyList<OnlineElement>> ReadAsync(string signal, long userId, OnlineReadOptions options, CancellationToken cancellationToken) =>
        inner.ReadAsync(signal, userId, options, cancellationToken);

    public ValueTask<IReadOnlyDictionary<long, IReadOnlyList<OnlineElement>>> ReadManyAsync(string signal, IReadOnlyList<long> userIds, OnlineReadOptions options, CancellationToken cancellationToken) =>
        inner.ReadManyAsync(signal, userIds, options, cancellationToken);

    public ValueTask<long> TrimAsync(string signal, int keep, CancellationToken cancellationToken) =>
        inner.TrimAsync(signal, keep, cancellationToken);

    public ValueTask<IReadOnlyDictionary<string, long>> ReadCheckpointAsync(string consumer, CancellationToken cancellationToken) =>
        inner.ReadCheckpointAsync(consumer, cancellationToken);

    public ValueTask<OnlineStoreStats> StatsAsync(string signal, CancellationToken cancellationToken) =>
        inner.StatsAsync(signal, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    /// <summary>The sequence number of a generated event id (the hex after the last '-'); null for other ids.</summary>
    internal static long? SequenceOf(string eventId)
    {
        var dash = eventId.LastIndexOf('-');
        return dash >= 0 && long.TryParse(eventId.AsSpan(dash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var seq) && seq >= 0
            ? seq
            : null;
    }
}
