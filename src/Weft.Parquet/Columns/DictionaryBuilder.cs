using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Weft.Parquet.Encodings;

namespace Weft.Parquet.Columns;

/// <summary>
/// Builds a column chunk's dictionary: the distinct values in first-seen order and, per value, its
/// index. An open-addressing table (linear probing, load at most 1/2) over pooled arrays, hashed and
/// compared through the codec's static members, so a lookup makes no interface or delegate call.
/// One builder per chunk; dispose to return the arrays.
/// </summary>
internal sealed class DictionaryBuilder<T, TCodec> : IDisposable
    where TCodec : IValueCodec<T>
{
    private const int MinSlots = 1 << 10;
    private const int MaxInitialSlots = 1 << 16;

    private Slot[] _slots;
    private T[] _entries;
    private int _count;
    private int _mask;

    /// <summary>
    /// A builder for up to <paramref name="values"/> values and a dictionary of at most
    /// <paramref name="maxBytes"/> PLAIN bytes: the table starts large enough for the most distinct
    /// values those allow (up to 2^15), so a chunk that fills it rehashes a few times, not a dozen.
    /// </summary>
    public DictionaryBuilder(int values, int maxBytes)
    {
        var maxEntries = Math.Min(values, maxBytes / Math.Max(1, TCodec.FixedPlainSize == 0 ? 4 : TCodec.FixedPlainSize));
        var slots = (int)Math.Clamp(BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, maxEntries) * 2), MinSlots, MaxInitialSlots);
        _slots = ArrayPool<Slot>.Shared.Rent(slots);
        _slots.AsSpan(0, slots).Clear();
        _mask = slots - 1;
        _entries = ArrayPool<T>.Shared.Rent(slots / 2);
        _count = 0;
    }

    /// <summary>The distinct values, in first-seen order.</summary>
    public ReadOnlySpan<T> Entries => _entries.AsSpan(0, _count);

    public int Count => _count;

    /// <summary>Values a chunk's dictionary is judged on before the rest are looked up.</summary>
    internal const int Probe = 4096;

    /// <summary>
    /// Fills <paramref name="indices"/> with each value's dictionary index. Returns false, leaving the
    /// builder unusable, as soon as the dictionary's PLAIN size would exceed <paramref name="maxBytes"/>,
    /// or when more than three in four of the first <see cref="Probe"/> values are distinct (ids,
    /// timestamps): such a dictionary repeats nearly every value once in its page and adds an index
    /// per value, so it costs more bytes than PLAIN and a hash lookup per value to build.
    /// </summary>
    public bool TryBuild(ReadOnlySpan<T> values, Span<int> indices, int maxBytes)
    {
        long size = 0;
        ref var first = ref MemoryMarshal.GetReference(values);
        ref var index = ref MemoryMarshal.GetReference(indices);
        for (var i = 0; i < values.Length; i++)
        {
            if (i == Probe && _count > Probe / 4 * 3)
            {
                return false;
            }

            var value = Unsafe.Add(ref first, i);
            var hash = TCodec.DictionaryHash(value);
            var slot = hash & _mask;
            int found;
            while (true)
            {
                ref var s = ref _slots[slot];
                if (s.Index == 0)
                {
                    size += TCodec.PlainSize(value);
                    if (size > maxBytes)
                    {
                        return false;
                    }

                    found = Add(value, hash, ref s);
                    break;
                }

                if (s.Hash == hash && TCodec.DictionaryEquals(_entries[s.Index - 1], value))
                {
                    found = s.Index - 1;
                    break;
                }

                slot = (slot + 1) & _mask;
            }

            Unsafe.Add(ref index, i) = found;
        }

        return true;
    }

    public void Dispose()
    {
        if (_slots.Length > 0)
        {
            ArrayPool<Slot>.Shared.Return(_slots);
            ArrayPool<T>.Shared.Return(_entries, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        }

        _slots = [];
        _entries = [];
        _count = 0;
    }

    private int Add(T value, int hash, ref Slot slot)
    {
        var index = _count;
        if (index == _entries.Length)
        {
            var bigger = ArrayPool<T>.Shared.Rent(index * 2);
            _entries.AsSpan(0, index).CopyTo(bigger);
            ArrayPool<T>.Shared.Return(_entries, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
            _entries = bigger;
        }

        _entries[index] = value;
        _count = index + 1;
        slot = new Slot(hash, index + 1);
        if (_count * 2 > _mask + 1)
        {
            Rehash();
        }

        return index;
    }

    private void Rehash()
    {
        var size = (_mask + 1) * 2;
        var slots = ArrayPool<Slot>.Shared.Rent(size);
        slots.AsSpan(0, size).Clear();
        var mask = size - 1;
        for (var i = 0; i <= _mask; i++)
        {
            var s = _slots[i];
            if (s.Index == 0)
            {
                continue;
            }

            var at = s.Hash & mask;
            while (slots[at].Index != 0)
            {
                at = (at + 1) & mask;
            }

            slots[at] = s;
        }

        ArrayPool<Slot>.Shared.Return(_slots);
        _slots = slots;
        _mask = mask;
    }

    /// <summary>A table slot: the key's hash and its entry index + 1 (0: empty).</summary>
    private readonly record struct Slot(int Hash, int Index);
}
