using System.Text;

namespace Weft.Parquet.Tests;

/// <summary>Builds, writes and compares columns in tests. All randomness is seeded by the caller.</summary>
internal static class TestColumns
{
    public static readonly ParquetType[] AllTypes = Enum.GetValues<ParquetType>();

    private static readonly string[] SpecialStrings =
        ["", "a", "Zürich", "日本語", "emoji 😀 pair", "tab\tnew\nline", "\u00e9\u0301", new string('x', 300), "\uFFFD", "\uE000 private"];

    private static readonly float[] SpecialFloats =
        [0f, -0f, 1f, -1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, float.MinValue, float.Epsilon];

    private static readonly double[] SpecialDoubles =
        [0d, -0d, 1d, -1d, double.NaN, double.PositiveInfinity, double.NegativeInfinity, double.MaxValue, double.MinValue, double.Epsilon, 0.1];

    /// <summary>
    /// A random column. With <paramref name="repetitive"/> most values come from a small pool (so a
    /// dictionary pays off); special values (extremes, NaN, -0, empty and non-ASCII strings) appear often.
    /// Each nullable level (row, inner list, element) is null at <paramref name="nullRate"/>.
    /// </summary>
    public static ParquetColumnData Random(ParquetField field, int rows, Random rng, bool repetitive = true, double nullRate = 0.15, int maxListLength = 5)
    {
        var values = new object?[rows];
        for (var i = 0; i < rows; i++)
        {
            values[i] = RandomRow(field, rng, repetitive, nullRate, maxListLength);
        }

        return FromRows(field, values);
    }

    /// <summary>One random row in the <see cref="ValueAt"/> shape.</summary>
    public static object? RandomRow(ParquetField field, Random rng, bool repetitive = true, double nullRate = 0.15, int maxListLength = 5)
    {
        if (field.Nullable && rng.NextDouble() < nullRate)
        {
            return null;
        }

        return field.ListDepth switch
        {
            0 => RandomValue(field.Type, rng, repetitive),
            1 => RandomList(field, rng, repetitive, nullRate, maxListLength),
            _ => Enumerable.Range(0, rng.Next(maxListLength + 1))
                .Select(_ => field.InnerListNullable && rng.NextDouble() < nullRate ? null : RandomList(field, rng, repetitive, nullRate, maxListLength))
                .ToArray(),
        };
    }

    private static object?[] RandomList(ParquetField field, Random rng, bool repetitive, double nullRate, int maxListLength) =>
        Enumerable.Range(0, rng.Next(maxListLength + 1))
            .Select(_ => field.ElementNullable && rng.NextDouble() < nullRate ? null : RandomValue(field.Type, rng, repetitive))
            .ToArray();

    /// <summary>
    /// A column from rows in the <see cref="ValueAt"/> shape: null, a boxed value, a list
    /// (<c>object?[]</c> of values or nulls) or a list of such lists (or nulls). Goes through the public
    /// factories (<see cref="ParquetColumnData.Create(ParquetField, Array, bool[], int[], bool[])"/>,
    /// <see cref="ParquetColumnData.CreateNested"/>) so their checks run.
    /// </summary>
    public static ParquetColumnData FromRows(ParquetField field, IReadOnlyList<object?> rows)
    {
        var nulls = rows.Select(r => r is null).ToArray();
        if (field.ListDepth == 0)
        {
            var values = Array.CreateInstance(field.ClrType, rows.Count);
            for (var i = 0; i < rows.Count; i++)
            {
                if (rows[i] is { } v)
                {
                    values.SetValue(v, i);
                }
            }

            return ParquetColumnData.Create(field, values, nulls);
        }

        // Depth 2: the inner lists of every row, in order; depth 1: the rows are the lists.
        int[]? offsets = null;
        var lists = rows;
        if (field.ListDepth == 2)
        {
            (offsets, var inner) = Flatten(rows);
            lists = inner;
        }

        var (elementOffsets, elements) = Flatten(lists);
        var data = Array.CreateInstance(field.ClrType, elements.Count);
        var elementNulls = new bool[elements.Count];
        for (var k = 0; k < elements.Count; k++)
        {
            if (elements[k] is { } v)
            {
                data.SetValue(v, k);
            }
            else
            {
                elementNulls[k] = true;
            }
        }

        return offsets is null
            ? ParquetColumnData.Create(field, data, nulls, elementOffsets, elementNulls)
            : ParquetColumnData.CreateNested(field, data, nulls, offsets, lists.Select(l => l is null).ToArray(), elementOffsets, elementNulls);
    }

    private static (int[] Offsets, List<object?> Items) Flatten(IReadOnlyList<object?> lists)
    {
        var offsets = new int[lists.Count + 1];
        var items = new List<object?>();
        for (var i = 0; i < lists.Count; i++)
        {
            if (lists[i] is object?[] list)
            {
                items.AddRange(list);
            }

            offsets[i + 1] = items.Count;
        }

        return (offsets, items);
    }

    public static object RandomValue(ParquetType type, Random rng, bool repetitive)
    {
        var pooled = repetitive && rng.Next(4) != 0;
        var special = rng.Next(8) == 0;
        switch (type)
        {
            case ParquetType.Boolean:
                return rng.Next(2) == 0;
            case ParquetType.Int32:
                if (special)
                {
                    return new[] { int.MinValue, int.MaxValue, 0, -1, 1 }[rng.Next(5)];
                }

                return pooled ? rng.Next(-10, 10) * 1000 : rng.Next(int.MinValue, int.MaxValue);
            case ParquetType.Int64:
                if (special)
                {
                    return new[] { long.MinValue, long.MaxValue, 0L, -1L, 1L }[rng.Next(5)];
                }

                return pooled ? rng.Next(-10, 10) * 1_000_000_007L : rng.NextInt64(long.MinValue, long.MaxValue);
            case ParquetType.TimestampMicros:
            {
                // 1900 .. 2100, in microseconds.
                const long min = -2_208_988_800_000_000L;
                const long max = 4_102_444_800_000_000L;
                return pooled ? 1_700_000_000_000_000L + rng.Next(10) * 3_600_000_000L : rng.NextInt64(min, max);
            }

            case ParquetType.Float:
                if (special)
                {
                    return SpecialFloats[rng.Next(SpecialFloats.Length)];
                }

                return pooled ? rng.Next(10) / 4f : (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-20, 20)));
            case ParquetType.Double:
                if (special)
                {
                    return SpecialDoubles[rng.Next(SpecialDoubles.Length)];
                }

                return pooled ? rng.Next(10) / 8d : (rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-200, 200));
            case ParquetType.String:
                if (special)
                {
                    return SpecialStrings[rng.Next(SpecialStrings.Length)];
                }

                return pooled ? "value-" + rng.Next(12) : RandomString(rng);
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }

    public static string RandomString(Random rng)
    {
        var length = rng.Next(0, 24);
        var sb = new StringBuilder(length);
        for (var i = 0; i < length; i++)
        {
            var pick = rng.Next(10);
            if (pick < 6)
            {
                sb.Append((char)rng.Next(0x20, 0x7F));
            }
            else if (pick < 8)
            {
                sb.Append((char)rng.Next(0xA0, 0xD7FF));
            }
            else if (pick < 9)
            {
                sb.Append((char)rng.Next(0xE000, 0xFFFE));
            }
            else
            {
                sb.Append(char.ConvertFromUtf32(rng.Next(0x10000, 0x10FFFF)));
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// The value of a row: null, a boxed value, or (list columns) an object?[] of elements (null for a
    /// null element), or (nested list columns) an object?[] of such arrays (null for a null inner list).
    /// </summary>
    public static object? ValueAt(ParquetColumnData column, int row)
    {
        if (column.IsNull(row))
        {
            return null;
        }

        if (column.Offsets is not { } offsets)
        {
            return column.Values.GetValue(row);
        }

        if (column.InnerOffsets is not { } inner)
        {
            return Elements(column, offsets[row], offsets[row + 1]);
        }

        var lists = new object?[offsets[row + 1] - offsets[row]];
        for (var j = 0; j < lists.Length; j++)
        {
            var index = offsets[row] + j;
            lists[j] = column.InnerNulls is { } innerNulls && innerNulls[index] ? null : Elements(column, inner[index], inner[index + 1]);
        }

        return lists;
    }

    private static object?[] Elements(ParquetColumnData column, int start, int end)
    {
        var list = new object?[end - start];
        for (var k = 0; k < list.Length; k++)
        {
            list[k] = column.ElementNulls is { } flags && flags[start + k] ? null : column.Values.GetValue(start + k);
        }

        return list;
    }

    /// <summary>The number of (repetition, definition) level pairs the column shreds into.</summary>
    public static int LevelCount(ParquetColumnData column) => Enumerable.Range(0, column.RowCount).Sum(r => ValueAt(column, r) switch
    {
        object?[] lists when column.InnerOffsets is not null => Math.Max(1, lists.Sum(l => l is object?[] inner ? Math.Max(1, inner.Length) : 1)),
        object?[] list => Math.Max(1, list.Length),
        _ => 1,
    });

    /// <summary>The non-null leaf values of the column, in order.</summary>
    public static List<object> PresentValues(ParquetColumnData column) =>
        Enumerable.Range(0, column.RowCount).SelectMany(r => Leaves(ValueAt(column, r))).ToList();

    private static IEnumerable<object> Leaves(object? value) => value switch
    {
        null => [],
        object?[] list => list.SelectMany(Leaves),
        _ => [value],
    };

    /// <summary>Compares two columns row by row; floating point values compare by bits.</summary>
    public static void AssertEqual(ParquetColumnData expected, ParquetColumnData actual, string context = "")
    {
        actual.Field.Should().Be(expected.Field, context);
        actual.RowCount.Should().Be(expected.RowCount, context);
        actual.Values.GetType().Should().Be(expected.Values.GetType(), context);
        for (var row = 0; row < expected.RowCount; row++)
        {
            var e = ValueAt(expected, row);
            var a = ValueAt(actual, row);
            if (!SameValue(e, a))
            {
                throw new Xunit.Sdk.XunitException(
                    $"{context} column '{expected.Field.Name}' row {row}: expected {Show(e)}, got {Show(a)}.");
            }
        }

        if (expected.Nulls is null || Array.IndexOf(expected.Nulls, true) < 0)
        {
            actual.Nulls.Should().BeNull($"{context}: a column without nulls reads back with Nulls == null");
        }

        if (expected.InnerNulls is null)
        {
            actual.InnerNulls.Should().BeNull($"{context}: a column without null inner lists reads back with InnerNulls == null");
        }

        if (expected.ElementNulls is null)
        {
            actual.ElementNulls.Should().BeNull($"{context}: a column without null elements reads back with ElementNulls == null");
        }
    }

    public static bool SameValue(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (null, _) or (_, null) => false,
        (float x, float y) => BitConverter.SingleToInt32Bits(x) == BitConverter.SingleToInt32Bits(y),
        (double x, double y) => BitConverter.DoubleToInt64Bits(x) == BitConverter.DoubleToInt64Bits(y),
        (object?[] x, object?[] y) => x.Length == y.Length && x.Zip(y).All(p => SameValue(p.First, p.Second)),
        _ => a.Equals(b),
    };

    public static string Show(object? value) => value switch
    {
        null => "null",
        object?[] list => "[" + string.Join(", ", list.Select(Show)) + "]",
        string s => "\"" + s + "\"",
        float f => f.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + "f",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "?",
    };

    /// <summary>Writes row groups to memory and returns the file bytes.</summary>
    public static async Task<byte[]> WriteAsync(ParquetSchema schema, ParquetWriterOptions options, params IReadOnlyList<ParquetColumnData>[] rowGroups)
    {
        using var stream = new MemoryStream();
        await using (var writer = await ParquetFileWriter.CreateAsync(stream, schema, options))
        {
            foreach (var group in rowGroups)
            {
                await writer.WriteRowGroupAsync(group);
            }

            await writer.CompleteAsync();
        }

        return stream.ToArray();
    }

    public static Task<ParquetFileReader> OpenAsync(byte[] file, string? path = null) =>
        ParquetFileReader.OpenAsync(new MemoryStream(file, writable: false), path);

    /// <summary>Concatenates row groups' worth of one column into one column.</summary>
    public static ParquetColumnData Concat(IReadOnlyList<ParquetColumnData> parts) =>
        FromRows(parts[0].Field, parts.SelectMany(p => Enumerable.Range(0, p.RowCount).Select(r => ValueAt(p, r))).ToArray());
}
