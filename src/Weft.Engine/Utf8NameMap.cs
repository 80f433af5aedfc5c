using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Weft.Engine;

/// <summary>
/// A fixed map from UTF-8 names (JSON property names, event type names) to values, looked up by a span
/// of bytes so the hot path never allocates a string for a name. Open addressing over a power-of-two
/// table at most half full; built once, read-only afterwards (safe to share between threads).
/// </summary>
internal sealed class Utf8NameMap<TValue>
{
    private readonly byte[]?[] _keys;
    private readonly TValue[] _values;
    private readonly int _mask;

    /// <summary>Later entries with an equal name replace earlier ones.</summary>
    public Utf8NameMap(IEnumerable<KeyValuePair<string, TValue>> entries)
    {
        var list = entries.ToList();
        int size = 8;
        while (size < list.Count * 2)
        {
            size *= 2;
        }

        _keys = new byte[]?[size];
        _values = new TValue[size];
        _mask = size - 1;
        foreach (var (name, value) in list)
        {
            byte[] key = Encoding.UTF8.GetBytes(name);
            int slot = (int)Hash(key) & _mask;
            while (_keys[slot] is { } existing && !existing.AsSpan().SequenceEqual(key))
            {
                slot = (slot + 1) & _mask;
            }

            _keys[slot] = key;
            _values[slot] = value;
        }
    }

    public bool TryGetValue(ReadOnlySpan<byte> name, out TValue value) => TryGetValue(name, ref Unsafe.NullRef<int>(), out value);

    /// <summary>
    /// Looks <paramref name="name"/> up, trying the slot in <paramref name="hint"/> first and leaving the
    /// slot found there: events of one producer list their properties in the same order, so a hint kept
    /// per property position usually saves the hashing and probing.
    /// </summary>
    public bool TryGetValue(ReadOnlySpan<byte> name, ref int hint, out TValue value)
    {
        bool hinted = !Unsafe.IsNullRef(ref hint);
        if (hinted && (uint)hint < (uint)_keys.Length && _keys[hint] is { } guess && name.SequenceEqual(guess))
        {
            value = _values[hint];
            return true;
        }

        int slot = (int)Hash(name) & _mask;
        while (_keys[slot] is { } key)
        {
            if (name.SequenceEqual(key))
            {
                if (hinted)
                {
                    hint = slot;
                }

                value = _values[slot];
                return true;
            }

            slot = (slot + 1) & _mask;
        }

        value = default!;
        return false;
    }

    // The length and the first and last four bytes: O(1) per name, and names that share a prefix
    // (event_id, event_time, event_type) still differ at the end. Collisions only cost a probe.
    private static uint Hash(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 4)
        {
            uint small = (uint)bytes.Length;
            foreach (byte b in bytes)
            {
                small = (small * 31) + b;
            }

            return small * 0x9E3779B1;
        }

        uint head = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        uint tail = BinaryPrimitives.ReadUInt32LittleEndian(bytes[^4..]);
        uint h = (head * 0x9E3779B1) ^ (tail * 0x85EBCA77) ^ (uint)bytes.Length;
        return h ^ (h >> 15);
    }
}
