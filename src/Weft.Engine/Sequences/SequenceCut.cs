using Weft.Definitions;

namespace Weft.Engine.Sequences;

/// <summary>
/// Which events a sequence read may contain (DESIGN.md, "Merge policy"; issue "bitemporal reads"):
/// event_time in (<see cref="AsOfMicros"/> − <see cref="LookbackMicros"/>, <see cref="AsOfMicros"/>]
/// — the event-time cut — and ingest_time ≤ <see cref="KnownAtMicros"/> — the ingest-time cut, "what
/// the system knew then" — keeping at most <see cref="MaxLength"/> elements, newest first.
/// </summary>
public readonly record struct SequenceCut(long AsOfMicros, long KnownAtMicros, long LookbackMicros, int MaxLength)
{
    /// <summary>The cut a signal declares, as of <paramref name="asOfMicros"/> (known_at defaults to as_of).</summary>
    public static SequenceCut For(SignalDefinition signal, long asOfMicros, long? knownAtMicros = null, int? limit = null, TimeSpan? lookback = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit ?? 1, 1, nameof(limit)); // a cut of no elements (or a negative one, which read as "no cap") is never what a caller means
        int max = Math.Min(signal.MaxLength, signal.Budgets.MaxElements);
        return new SequenceCut(
            asOfMicros,
            knownAtMicros ?? asOfMicros,
            (lookback ?? signal.Lookback).Ticks / TimeSpan.TicksPerMicrosecond,
            limit is { } l ? Math.Min(l, max) : max);
    }

    /// <summary>The lowest event_time that is still inside the lookback (exclusive bound + 1); long.MinValue when that is below every long.</summary>
    /// <remarks>
    /// The underflow test is exact: the one it replaced (<c>LookbackMicros &gt;= AsOfMicros - long.MinValue / 2</c>)
    /// itself overflowed for an as_of past 2^62 µs, and dropped the lookback altogether (long.MaxValue as
    /// "now" read every event ever), and it clipped cuts near long.MinValue that had no underflow.
    /// </remarks>
    public long FromMicros => LookbackMicros > 0 && AsOfMicros < long.MinValue + LookbackMicros ? long.MinValue : AsOfMicros - LookbackMicros + 1;

    public bool Admits(long eventTime, long ingestTime) =>
        eventTime <= AsOfMicros && eventTime >= FromMicros && ingestTime <= KnownAtMicros;
}
