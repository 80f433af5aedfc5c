using System.Numerics;

namespace Weft.Batch.Sequences;

/// <summary>
/// The dedup stage of the batch path over a whole <see cref="EventStore"/>: of the deliveries of one
/// event_id within one chunk of the run, the first to arrive (earliest ingest time; then the first
/// read) is kept, as <c>DedupExecutor</c> keeps it for <c>weft batch</c>, which runs chunk by chunk over
/// events in arrival order. The others are flagged <see cref="EventStore.Duplicate"/>. An id kept in
/// more than one chunk (a re-send with another event_time) is flagged
/// <see cref="EventStore.RepeatedAcrossChunks"/>, so that selection collapses it per user as
/// <c>SequenceIndex.Select</c> does.
/// </summary>
/// <remarks>
/// Ids are grouped without a global hash table: rows are partitioned by the top bits of a 64-bit hash of
/// their id (a counting sort), each partition (a few hundred rows) is sorted by hash in cache, and only
/// rows sharing a hash have their bytes compared. Partitions are processed in parallel.
/// </remarks>
internal static class Deduplication
{
    /// <summary>Flags duplicates; returns how many rows were flagged <see cref="EventStore.Duplicate"/>.</summary>
    public static long Run(EventStore store, long fromMicros, long chunkMicros, int parallelism)
    {
        int n = store.Count;
        if (n < 2)
        {
            return 0;
        }

        var hashes = new ulong[n];
        Parallel.For(0, parallelism, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, part =>
        {
            var (start, end) = Slice(n, parallelism, part);
            for (int r = start; r < end; r++)
            {
                hashes[r] = EventIds.Hash(store.Id(r));
            }
        });

        // Partitions of about 256 rows.
        int bits = Math.Clamp(BitOperations.Log2((uint)n) - 8, 1, 24);
        int shift = 64 - bits;
        var starts = new int[(1 << bits) + 1];
        foreach (ulong h in hashes)
        {
            starts[(int)(h >> shift) + 1]++;
        }

        for (int b = 1; b < starts.Length; b++)
        {
            starts[b] += starts[b - 1];
        }

        var rows = new int[n];
        var cursor = starts.AsSpan(0, starts.Length - 1).ToArray();
        for (int r = 0; r < n; r++)
        {
            rows[cursor[(int)(hashes[r] >> shift)]++] = r;
        }

        cursor = null;
        long duplicates = 0;
        int partitions = 1 << bits;
        Parallel.For(0, parallelism, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, part =>
        {
            var (first, last) = Slice(partitions, parallelism, part);
            var keys = new ulong[256];
            long found = 0;
            for (int b = first; b < last; b++)
            {
                int length = starts[b + 1] - starts[b];
                if (length < 2)
                {
                    continue;
                }

                if (keys.Length < length)
                {
                    keys = new ulong[length * 2];
                }

                var members = rows.AsSpan(starts[b], length);
                var k = keys.AsSpan(0, length);
                for (int i = 0; i < length; i++)
                {
                    k[i] = hashes[members[i]];
                }

                k.Sort(members);
                for (int i = 0; i < length;)
                {
                    int j = i + 1;
                    while (j < length && k[j] == k[i])
                    {
                        j++;
                    }

                    if (j - i > 1)
                    {
                        found += Resolve(store, members[i..j], fromMicros, chunkMicros);
                    }

                    i = j;
                }
            }

            Interlocked.Add(ref duplicates, found);
        });

        return duplicates;
    }

    /// <summary>Rows sharing a hash: group them by id bytes, then keep the first arrival of each id per chunk.</summary>
    private static int Resolve(EventStore store, Span<int> rows, long fromMicros, long chunkMicros)
    {
        // Same hash, so almost always the same id: sort by (id, chunk, ingest, row) and walk the runs.
        rows.Sort(new ArrivalOrder(store, fromMicros, chunkMicros));
        var flags = store.Flags;
        int dropped = 0;
        for (int i = 0; i < rows.Length;)
        {
            int j = i + 1;
            int chunks = 1;
            while (j < rows.Length && store.Id(rows[j]).SequenceEqual(store.Id(rows[i])))
            {
                if (Chunk(store.Times[rows[j]], fromMicros, chunkMicros) == Chunk(store.Times[rows[j - 1]], fromMicros, chunkMicros))
                {
                    flags[rows[j]] |= EventStore.Duplicate;
                    dropped++;
                }
                else
                {
                    chunks++;
                }

                j++;
            }

            if (chunks > 1)
            {
                for (int k = i; k < j; k++)
                {
                    if ((flags[rows[k]] & EventStore.Duplicate) == 0)
                    {
                        flags[rows[k]] |= EventStore.RepeatedAcrossChunks;
                    }
                }
            }

            i = j;
        }

        return dropped;
    }

    internal static long Chunk(long time, long fromMicros, long chunkMicros) => Math.DivRem(time - fromMicros, chunkMicros, out long rem) - (rem < 0 ? 1 : 0);

    internal static (int Start, int End) Slice(int count, int parts, int part) =>
        ((int)((long)count * part / parts), (int)((long)count * (part + 1) / parts));

    /// <summary>Id bytes, then chunk, then ingest time, then row: the first of each (id, chunk) run is the delivery the stream saw first.</summary>
    private readonly struct ArrivalOrder(EventStore store, long fromMicros, long chunkMicros) : IComparer<int>
    {
        public int Compare(int a, int b)
        {
            int c = store.Id(a).SequenceCompareTo(store.Id(b));
            if (c != 0)
            {
                return c;
            }

            c = Chunk(store.Times[a], fromMicros, chunkMicros).CompareTo(Chunk(store.Times[b], fromMicros, chunkMicros));
            if (c != 0)
            {
                return c;
            }

            c = store.Ingest[a].CompareTo(store.Ingest[b]);
            return c != 0 ? c : a.CompareTo(b);
        }
    }
}
