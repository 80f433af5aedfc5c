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
    /// </summary>
    public static ParquetColumnData Random(ParquetField field, int rows, Random rng, bool repetitive = true, double nullRate = 0.15, int maxListLength = 5)
    {
        bool[]? nulls = null;
        if (field.Nullable)
        {
            nulls = new bool[rows];
            for (var i = 0; i < rows; i++)
            {
                nulls[i] = rng.NextDouble() < nullRate;
            }
        }

        if (!field.IsList)
        {
            var values = Array.CreateInstance(field.ClrType, rows);
            for (var i = 0; i < rows; i++)
            {
                if (nulls is null || !nulls[i])
                {
                    values.SetValue(RandomValue(field.Type, rng, repetitive), i);
                }
            }

            return ParquetColumnData.Create(field, values, nulls);
        }

        var offsets = new int[rows + 1];
        for (var i = 0; i < rows; i++)
        {
            var length = nulls is not null && nulls[i] ? 0 : rng.Next(maxListLength + 1);
            offsets[i + 1] = offsets[i] + length;
        }

        var elements = Array.CreateInstance(field.ClrType, offsets[rows]);
        for (var k = 0; k < elements.Length; k++)
        {
            elements.SetValue(RandomValue(field.Type, rng, repetitive), k);
        }

        return ParquetColumnData.Create(field, elements, nulls, offsets);
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

    /// <summary>The value of a row: null, a boxed value, or (list columns) an object?[] of elements.</summary>
    public static object? ValueAt(ParquetColumnData column, int row)
    {
        if (column.IsNull(row))
        {
            return null;
        }

        if (column.Offsets is { } offsets)
        {
            var list = new object?[offsets[row + 1] - offsets[row]];
            for (var k = 0; k < list.Length; k++)
            {
                list[k] = column.Values.GetValue(offsets[row] + k);
            }

            return list;
        }

        return column.Values.GetValue(row);
    }

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
    public static ParquetColumnData Concat(IReadOnlyList<ParquetColumnData> parts)
    {
        var field = parts[0].Field;
        var rows = parts.Sum(p => p.RowCount);
        var valueCount = parts.Sum(p => p.Values.Length);
        var values = Array.CreateInstance(field.ClrType, valueCount);
        var nulls = new bool[rows];
        var offsets = field.IsList ? new int[rows + 1] : null;
        int row = 0, at = 0;
        foreach (var part in parts)
        {
            Array.Copy(part.Values, 0, values, at, part.Values.Length);
            for (var i = 0; i < part.RowCount; i++)
            {
                nulls[row + i] = part.IsNull(i);
                if (offsets is not null)
                {
                    offsets[row + i + 1] = at + part.Offsets![i + 1];
                }
            }

            row += part.RowCount;
            at += part.Values.Length;
        }

        return ParquetColumnData.Create(field, values, nulls, offsets);
    }
}
