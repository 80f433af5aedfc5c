using System.Buffers.Binary;
using System.Numerics;

namespace Weft.Online.Sqlite;

/// <summary>
/// The writer's memory of which keys (user, event time, event id) a signal holds: a split-block Bloom
/// filter (one 512-bit block per key, one bit set in each of its eight words), ~12 bits a key. "No"
/// is certain, so a new element is stored without a lookup; "maybe" (every stored key, and about 1 %
/// of new ones) is checked against the user's blocks. Keys are never removed: a trimmed key stays a
/// "maybe" until the filter is rebuilt, which happens when it has taken as many keys as it was sized for.
/// </summary>
internal sealed class KeyFilter
{
    private const int BitsPerKey = 12;
    private const int MinimumKeys = 65_536;

    private readonly ulong[] _words;
    private readonly ulong _blockMask;

    public KeyFilter(long capacity)
    {
        Capacity = Math.Max(MinimumKeys, capacity);
        long blocks = (long)BitOperations.RoundUpToPowerOf2((ulong)((Capacity * BitsPerKey + 511) / 512));
        _words = new ulong[blocks * 8];
        _blockMask = (ulong)blocks - 1;
    }

    /// <summary>Keys the filter was sized for; past that its error rate grows, so the store rebuilds it.</summary>
    public long Capacity { get; }

    /// <summary>Keys added (a key added twice counts twice).</summary>
    public long Count { get; private set; }

    public void Add(ulong hash)
    {
        int block = (int)((hash >> 40) & _blockMask) * 8;
        for (int i = 0; i < 8; i++)
        {
            _words[block + i] |= 1UL << (int)((hash >> (i * 5)) & 63);
        }

        Count++;
    }

    public bool MayContain(ulong hash)
    {
        int block = (int)((hash >> 40) & _blockMask) * 8;
        for (int i = 0; i < 8; i++)
        {
            if ((_words[block + i] & (1UL << (int)((hash >> (i * 5)) & 63))) == 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A 64-bit hash of a key (the event id as UTF-8, so stored and new keys hash alike).</summary>
    public static ulong Hash(long user, long eventTime, ReadOnlySpan<byte> eventIdUtf8)
    {
        const ulong P1 = 0x9E3779B97F4A7C15;
        const ulong P2 = 0xC2B2AE3D27D4EB4F;
        ulong h = ((ulong)user * P1) ^ BitOperations.RotateLeft((ulong)eventTime * P2, 29) ^ (ulong)eventIdUtf8.Length;
        while (eventIdUtf8.Length >= 8)
        {
            h = BitOperations.RotateLeft(h ^ (BinaryPrimitives.ReadUInt64LittleEndian(eventIdUtf8) * P2), 27) * P1;
            eventIdUtf8 = eventIdUtf8[8..];
        }

        ulong tail = 0;
        for (int i = 0; i < eventIdUtf8.Length; i++)
        {
            tail |= (ulong)eventIdUtf8[i] << (i * 8);
        }

        h = BitOperations.RotateLeft(h ^ (tail * P2), 27) * P1;

        // Final avalanche (splitmix64's): every input bit reaches every output bit.
        h ^= h >> 30;
        h *= 0xBF58476D1CE4E5B9;
        h ^= h >> 27;
        h *= 0x94D049BB133111EB;
        return h ^ (h >> 31);
    }
}
