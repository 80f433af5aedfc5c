using Weft.Definitions;

namespace Weft.Engine;

/// <summary>Appends values of one type row by row and produces a column; used by parsers and tests.</summary>
public sealed class ColumnBuilder
{
    private readonly WeftType _type;
    private readonly List<object?> _values = [];

    public ColumnBuilder(WeftType type) => _type = type;

    public int Count => _values.Count;

    /// <summary>Appends a boxed value in the engine's representation (long for ints and timestamps, double for floats, arrays for lists) or null.</summary>
    public void Append(object? value) => _values.Add(value);

    public void AppendNull() => _values.Add(null);

    public Column Build() => Build(_type, _values);

    public static Column Build(WeftType type, IReadOnlyList<object?> values)
    {
        int n = values.Count;
        bool[]? nulls = null;
        for (int i = 0; i < n; i++)
        {
            if (values[i] is null)
            {
                nulls ??= new bool[n];
                nulls[i] = true;
            }
        }

        var column = Column.Empty(type, n, nulls);
        for (int i = 0; i < n; i++)
        {
            if (values[i] is null)
            {
                continue;
            }

            if (type.IsList)
            {
                SetList(column, i, values[i]!);
            }
            else
            {
                Casts.Set(column, i, values[i] switch
                {
                    int x => (long)x,
                    float f => (double)f,
                    var v => v,
                });
            }
        }

        return column;
    }

    private static void SetList(Column column, int i, object value)
    {
        switch (column)
        {
            case ListColumn<float> f: f.Values[i] = (float[])value; break;
            case ListColumn<double> d: d.Values[i] = (double[])value; break;
            case ListColumn<long> l: l.Values[i] = (long[])value; break;
            case ListColumn<int> x: x.Values[i] = (int[])value; break;
            case ListColumn<bool> b: b.Values[i] = (bool[])value; break;
            case ListColumn<string> s: s.Values[i] = (string[])value; break;
            default: throw new InvalidOperationException($"unsupported list column {column.Type}");
        }
    }
}
