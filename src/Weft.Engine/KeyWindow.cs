using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Weft.Engine;

/// <summary>
/// The most recent <c>capacity</c> distinct 128-bit keys, first in, first out: an open-addressing table
/// (linear probing, backward-shift deletion, at most half full) and a ring of the keys in arrival order.
/// </summary>
/// <remarks>
/// Keys are hashes already (uniform bits), so a key's low bits are its slot. A probe reads one or two
/// cache lines, where a <see cref="HashSet{T}"/> reads a bucket and an entry elsewhere, and eviction
/// needs no tombstones. Zero marks an empty slot, so the key 0 is stored as 1 (the two then count as
/// one key: a 2^-128 chance for hashed keys).
/// </remarks>
internal sealed class KeyWindow
{
    private readonly int _capacity;
    private UInt128[] _slots;
    private int _mask;
    private UInt128[] _ring = new UInt128[16];
    private int _head; // the oldest key's place in the ring
    private int _count;

    public KeyWindow(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _slots = new UInt128[(int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(capacity * 2L, 4, 1024))];
        _mask = _slots.Length - 1;
    }

    /// <summary>Keys held now (at most the capacity).</summary>
    public int Count => _count;

    /// <summary>
    /// <see cref="Add"/> for each key in turn, <paramref name="added"/> receiving the answers. A full
    /// window of millions of keys is far larger than the caches, so each add would wait on memory twice
    /// (its own slot, the evicted key's slot); this asks for both slots a few keys ahead, so the waits overlap.
    /// </summary>
    public void AddMany(ReadOnlySpan<UInt128> keys, Span<bool> added)
    {
        const int Ahead = 8;
        for (int i = 0; i < keys.Length; i++)
        {
            if (i + Ahead < keys.Length)
            {
                Prefetch(keys[i + Ahead]);
                if (_count + Ahead >= _capacity)
                {
                    Prefetch(_ring[(_head + Ahead) % _ring.Length]);
                }
            }

            added[i] = Add(keys[i]);
        }
    }

    /// <summary>A hint only: an address the garbage collector has since moved is harmless to prefetch.</summary>
    private unsafe void Prefetch(UInt128 key)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(Unsafe.AsPointer(ref _slots[(int)(ulong)key & _mask]));
        }
    }

    /// <summary>Whether <paramref name="key"/> is held.</summary>
    public bool Contains(UInt128 key) => _slots[Find(ref key)] != UInt128.Zero;

    /// <summary>Adds <paramref name="key"/> unless it is held; when that makes one key too many, the oldest leaves. False when it was held.</summary>
    public bool Add(UInt128 key)
    {
        int i = Find(ref key);
        if (_slots[i] != UInt128.Zero)
        {
            return false;
        }

        _slots[i] = key;
        Enqueue(key);
        if (_count > _capacity)
        {
            Remove(Dequeue());
        }
        else if (_count * 2 > _slots.Length)
        {
            Grow();
        }

        return true;
    }

    /// <summary>
    /// The slot holding <paramref name="key"/> (made 1 if it was 0, the empty mark), or the empty slot
    /// that ends its probe run, where it would go.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Find(ref UInt128 key)
    {
        if (key == UInt128.Zero)
        {
            key = UInt128.One;
        }

        int i = (int)(ulong)key & _mask;
        while (_slots[i] != UInt128.Zero && _slots[i] != key)
        {
            i = (i + 1) & _mask;
        }

        return i;
    }

    private void Remove(UInt128 key)
    {
        int i = (int)(ulong)key & _mask;
        while (_slots[i] != key)
        {
            i = (i + 1) & _mask;
        }

        // Backward shift: pull later keys of the run into the hole unless their home slot lies after
        // the hole (cyclically), so every key stays reachable from its home by probing forward.
        int j = i;
        while (true)
        {
            j = (j + 1) & _mask;
            var next = _slots[j];
            if (next == UInt128.Zero)
            {
                break;
            }

            int home = (int)(ulong)next & _mask;
            bool stays = i <= j ? home > i && home <= j : home > i || home <= j;
            if (!stays)
            {
                _slots[i] = next;
                i = j;
            }
        }

        _slots[i] = UInt128.Zero;
    }

    private void Enqueue(UInt128 key)
    {
        if (_count == _ring.Length)
        {
            var ring = new UInt128[Math.Min(_ring.Length * 2, _capacity + 1)];
            int first = _ring.Length - _head;
            Array.Copy(_ring, _head, ring, 0, first);
            Array.Copy(_ring, 0, ring, first, _head);
            (_ring, _head) = (ring, 0);
        }

        _ring[(_head + _count) % _ring.Length] = key;
        _count++;
    }

    private UInt128 Dequeue()
    {
        var key = _ring[_head];
        _head = (_head + 1) % _ring.Length;
        _count--;
        return key;
    }

    private void Grow()
    {
        var old = _slots;
        _slots = new UInt128[old.Length * 2];
        _mask = _slots.Length - 1;
        foreach (var key in old)
        {
            if (key != UInt128.Zero)
            {
                int i = (int)(ulong)key & _mask;
                while (_slots[i] != UInt128.Zero)
                {
                    i = (i + 1) & _mask;
                }

                _slots[i] = key;
            }
        }
    }
}
