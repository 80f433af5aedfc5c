using Weft.Definitions;

namespace Weft.Engine.Sequences;

/// <summary>
/// The merge policy of DESIGN.md in one place: serving, snapshots and training exports all decide
/// through it which copy of an event a sequence uses. Rows come from the batch path (sealed or not)
/// and from the stream path; each row says which and whether its time bucket is sealed.
/// </summary>
public static class MergePolicy
{
    /// <summary>
    /// Whether a row takes part at all. Batch seals, stream fills: in a sealed bucket only the batch
    /// path counts (it has the late events and corrected enrichments); in an open bucket both paths
    /// count and duplicates collapse by event_id. Last-write-wins: every row counts, and the newest
    /// copy of an event (by ingest time) wins in <see cref="PrefersOver"/>. Except that under batch seals, stream fills a
    /// stream row of a sealed bucket takes part when it arrived (<paramref name="ingestMicros"/>) after
    /// the run that sealed the bucket began reading (<paramref name="sealReadAtMicros"/>;
    /// <see cref="long.MaxValue"/> when unknown): an event that run could not have seen, accepted late,
    /// is amended online at once rather than hidden until the next run. No margin before the read: a
    /// row that arrived before it may be one the run left out on purpose (the hot-user cap, a dead
    /// letter), and one it missed because the stream had not archived it yet is recomputed by the same
    /// unsharded batch command run again (its late-arrival check).
    /// </summary>
    public static bool Admits(MergePolicyKind policy, bool fromBatch, bool bucketSealed, long ingestMicros, long sealReadAtMicros) =>
        policy switch
        {
            MergePolicyKind.BatchSealsStreamFills => fromBatch || !bucketSealed || ArrivedAfterSeal(ingestMicros, sealReadAtMicros),
            _ => true,
        };

    /// <summary>Whether a stream row arrived after the run that sealed its bucket began reading (never, when that time is unknown: <see cref="long.MaxValue"/>).</summary>
    public static bool ArrivedAfterSeal(long ingestMicros, long sealReadAtMicros) =>
        sealReadAtMicros != long.MaxValue && ingestMicros > sealReadAtMicros;

    /// <summary>
    /// Between two copies of one event (same event_id, both admitted), whether copy A wins. Batch
    /// seals, stream fills: the batch copy wins over a stream copy (corrected enrichments), else the
    /// earliest ingested. Last-write-wins: the latest ingested.
    /// </summary>
    public static bool PrefersOver(MergePolicyKind policy, bool aFromBatch, long aIngest, bool bFromBatch, long bIngest) =>
        policy switch
        {
            MergePolicyKind.BatchSealsStreamFills => aFromBatch != bFromBatch ? aFromBatch : aIngest <= bIngest,
            _ => aIngest >= bIngest,
        };
}
