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

    public bool TryGetValue(ReadOnlySpan<byte> name, out TValue value)
    {
        int slot = (int)Hash(name) & _mask;
        while (_keys[slot] is { } key)
        {
            if (name.SequenceEqual(key))
            {
                value = _values[slot];
                return true;
            }

            slot = (slot + 1) & _mask;
        }

        value = default!;
        return false;
    }

    // FNV-1a: names are short, so a byte loop beats anything that needs setting up.
    private static uint Hash(ReadOnlySpan<byte> bytes)
    {
        uint h = 2166136261;
        foreach (byte b in bytes)
        {
            h = (h ^ b) * 16777619;
        }

        return h;
    }
}
