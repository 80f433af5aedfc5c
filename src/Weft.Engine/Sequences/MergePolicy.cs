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
    /// copy of an event (by ingest time) wins in <see cref="PrefersOver"/>.
    /// </summary>
    public static bool Admits(MergePolicyKind policy, bool fromBatch, bool bucketSealed) =>
        policy switch
        {
            MergePolicyKind.BatchSealsStreamFills => fromBatch || !bucketSealed,
            _ => true,
        };

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
