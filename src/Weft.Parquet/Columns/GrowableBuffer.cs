using System.Buffers;
using System.Runtime.CompilerServices;

namespace Weft.Parquet.Columns;

/// <summary>An append-only buffer over <see cref="ArrayPool{T}.Shared"/>; dispose to return the array.</summary>
internal struct GrowableBuffer<T> : IDisposable
{
    private T[] _array;
    private int _count;

    public GrowableBuffer(int initialCapacity)
    {
        _array = initialCapacity > 0 ? ArrayPool<T>.Shared.Rent(initialCapacity) : [];
        _count = 0;
    }

    public readonly int Count => _count;

    public readonly ReadOnlySpan<T> Span => _array.AsSpan(0, _count);

    /// <summary>Appends <paramref name="count"/> default slots and returns them to be filled.</summary>
    public Span<T> Append(int count)
    {
        var needed = (long)_count + count;
        if (needed > _array.Length)
        {
            Grow(needed);
        }

        var span = _array.AsSpan(_count, count);
        _count += count;
        return span;
    }

    public readonly T[] ToArray() => _array.AsSpan(0, _count).ToArray();

    public void Dispose()
    {
        if (_array.Length > 0)
        {
            ArrayPool<T>.Shared.Return(_array, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        }

        _array = [];
        _count = 0;
    }

    private void Grow(long needed)
    {
        if (needed > Array.MaxLength)
        {
            ThrowHelper.Format($"a column chunk holds more than {Array.MaxLength} values");
        }

        var size = (int)Math.Min(Array.MaxLength, Math.Max(needed, Math.Max(16L, (long)_array.Length * 2)));
        var bigger = ArrayPool<T>.Shared.Rent(size);
        _array.AsSpan(0, _count).CopyTo(bigger);
        if (_array.Length > 0)
        {
            ArrayPool<T>.Shared.Return(_array, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        }

        _array = bigger;
    }
}
