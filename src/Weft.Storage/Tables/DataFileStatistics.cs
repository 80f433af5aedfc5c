using System.Collections.Immutable;
using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet.Encodings;

namespace Weft.Storage;

/// <summary>
/// The Delta <c>add.stats</c> of a data file: <c>numRecords</c>, <c>nullCount</c> for every column,
/// and <c>minValues</c>/<c>maxValues</c> for scalar columns (not lists), computed from the rows written.
/// Timestamps are bounded at millisecond precision the way Delta stores them (min rounded down, max
/// rounded up, so both stay true bounds). NaN is ignored; infinite bounds and strings longer than
/// <see cref="MaxStringStatLength"/> (max side) are left out. Strings compare in UTF-8 byte order.
/// </summary>
internal static class DataFileStatistics
{
    /// <summary>String minimums are cut to this many chars (a prefix is still a lower bound); longer maximums are omitted.</summary>
    public const int MaxStringStatLength = 32;

    private const long MicrosPerMilli = 1000;

    public static string Build(ImmutableArray<FieldDefinition> fields, Column[] columns, ReadOnlySpan<int> rows)
    {
        var accumulator = new Accumulator(fields);
        accumulator.Add(columns, rows);
        return accumulator.ToJson();
    }

    /// <summary>
    /// The statistics of a file written a row group at a time: each <see cref="Add"/> folds in one group's
    /// rows, and <see cref="ToJson"/> gives what <see cref="Build"/> gives for all of them at once (bounds
    /// are kept exact until then, so truncation and omission apply to the file's bounds, not a group's).
    /// </summary>
    public sealed class Accumulator(ImmutableArray<FieldDefinition> fields)
    {
        private readonly Bounds[] _columns = CreateBounds(fields.Length);
        private long _rows;

        public long RowCount => _rows;

        public void Add(Column[] columns, ReadOnlySpan<int> rows)
        {
            for (var c = 0; c < columns.Length; c++)
            {
                var bounds = _columns[c];
                switch (columns[c])
                {
                    case PrimitiveColumn<bool> column:
                        bounds.Nulls += BoolBounds(column, rows, out var anyFalse, out var anyTrue);
                        bounds.AnyFalse |= anyFalse;
                        bounds.AnyTrue |= anyTrue;
                        break;
                    case PrimitiveColumn<int> column:
                        Fold(column, rows, bounds, static (b, low, high) => b.Include(low, high));
                        break;
                    case PrimitiveColumn<long> column:
                        Fold(column, rows, bounds, static (b, low, high) => b.Include(low, high));
                        break;
                    case PrimitiveColumn<float> column:
                        Fold(column, rows, bounds, static (b, low, high) => b.Include(low, high));
                        break;
                    case PrimitiveColumn<double> column:
                        Fold(column, rows, bounds, static (b, low, high) => b.Include(low, high));
                        break;
                    case StringColumn column:
                        bounds.Nulls += StringBounds(column.Values, rows, out var lowString, out var highString);
                        if (lowString is not null && (bounds.LowString is null || Utf8Order.Compare(lowString, bounds.LowString) < 0))
                        {
                            bounds.LowString = lowString;
                        }

                        if (highString is not null && (bounds.HighString is null || Utf8Order.Compare(highString, bounds.HighString) > 0))
                        {
                            bounds.HighString = highString;
                        }

                        break;
                    default:
                        bounds.Nulls += CountNulls(columns[c].Nulls, rows);
                        break;
                }
            }

            _rows += rows.Length;
        }

        /// <summary>Folds one numeric column's nulls and bounds over <paramref name="rows"/> into <paramref name="bounds"/>.</summary>
        private static void Fold<T>(PrimitiveColumn<T> column, ReadOnlySpan<int> rows, Bounds bounds, Action<Bounds, T, T> include)
            where T : unmanaged, INumberBase<T>, IComparisonOperators<T, T, bool>
        {
            if (NumericBounds(column, rows, out var nulls, out var low, out var high))
            {
                include(bounds, low, high);
            }

            bounds.Nulls += nulls;
        }

        public string ToJson()
        {
            var min = new JsonObject();
            var max = new JsonObject();
            var nullCount = new JsonObject();
            for (var c = 0; c < _columns.Length; c++)
            {
                var name = fields[c].Name;
                var bounds = _columns[c];
                switch (bounds.Kind)
                {
                    case BoundKind.Int:
                        min[name] = (int)bounds.LowLong;
                        max[name] = (int)bounds.HighLong;
                        break;
                    case BoundKind.Long when fields[c].Type.Kind == ScalarKind.Timestamp:
                        AddTimestamp(min, name, bounds.LowLong, roundUp: false);
                        AddTimestamp(max, name, bounds.HighLong, roundUp: true);
                        break;
                    case BoundKind.Long:
                        min[name] = bounds.LowLong;
                        max[name] = bounds.HighLong;
                        break;
                    case BoundKind.Float:
                        AddFinite(min, name, (float)bounds.LowDouble);
                        AddFinite(max, name, (float)bounds.HighDouble);
                        break;
                    case BoundKind.Double:
                        AddFinite(min, name, bounds.LowDouble);
                        AddFinite(max, name, bounds.HighDouble);
                        break;
                    default:
                        if (bounds.AnyFalse || bounds.AnyTrue)
                        {
                            min[name] = !bounds.AnyFalse;
                            max[name] = bounds.AnyTrue;
                        }
                        else if (bounds.LowString is { } lowString && bounds.HighString is { } highString)
                        {
                            min[name] = Truncate(lowString);
                            if (highString.Length <= MaxStringStatLength)
                            {
                                max[name] = highString;
                            }
                        }

                        break;
                }

                nullCount[name] = bounds.Nulls;
            }

            return new FileStatistics(_rows, min, max, nullCount).ToJson();
        }

        private static Bounds[] CreateBounds(int count)
        {
            var bounds = new Bounds[count];
            for (var i = 0; i < count; i++)
            {
                bounds[i] = new Bounds();
            }

            return bounds;
        }
    }

    private enum BoundKind
    {
        None,
        Int,
        Long,
        Float,
        Double,
    }

    /// <summary>One column's bounds so far. Floats are held as doubles, which hold every float exactly.</summary>
    private sealed class Bounds
    {
        public long Nulls;
        public bool AnyFalse;
        public bool AnyTrue;
        public BoundKind Kind;
        public long LowLong;
        public long HighLong;
        public double LowDouble;
        public double HighDouble;
        public string? LowString;
        public string? HighString;

        public void Include(int low, int high) => Include((long)low, high, BoundKind.Int);

        public void Include(long low, long high) => Include(low, high, BoundKind.Long);

        public void Include(float low, float high) => Include((double)low, high, BoundKind.Float);

        public void Include(double low, double high) => Include(low, high, BoundKind.Double);

        private void Include(long low, long high, BoundKind kind)
        {
            if (Kind == BoundKind.None)
            {
                (Kind, LowLong, HighLong) = (kind, low, high);
                return;
            }

            LowLong = low < LowLong ? low : LowLong;
            HighLong = high > HighLong ? high : HighLong;
        }

        private void Include(double low, double high, BoundKind kind)
        {
            if (Kind == BoundKind.None)
            {
                (Kind, LowDouble, HighDouble) = (kind, low, high);
                return;
            }

            // Strict comparisons keep the earlier of equal bounds (0 and -0), as one pass over all rows does.
            LowDouble = low < LowDouble ? low : LowDouble;
            HighDouble = high > HighDouble ? high : HighDouble;
        }
    }

    /// <summary>
    /// False when the file's log statistics prove that no row has <paramref name="range"/>'s column in
    /// range (every value null, or the bounds lie outside). True when they do not, or are absent.
    /// </summary>
    public static bool MayContain(AddFile file, ColumnRange range, ScalarKind kind)
    {
        if (!FileStatistics.TryParse(file.Stats, out var stats))
        {
            return true;
        }

        if (stats.NumRecords == 0)
        {
            return false;
        }

        if (stats.NullCount?[range.Column] is JsonValue nullValue && nullValue.TryGetValue(out long nulls) && nulls >= stats.NumRecords)
        {
            return false;
        }

        if (range.Max is { } upper && TryGetBound(stats.MinValues, range.Column, kind, isMax: false, out var fileMin) && fileMin > upper)
        {
            return false;
        }

        if (range.Min is { } lower && TryGetBound(stats.MaxValues, range.Column, kind, isMax: true, out var fileMax) && fileMax < lower)
        {
            return false;
        }

        return true;
    }

    private static bool TryGetBound(JsonObject? values, string column, ScalarKind kind, bool isMax, out long bound)
    {
        bound = 0;
        if (values?[column] is not JsonValue value)
        {
            return false;
        }

        if (kind == ScalarKind.Timestamp)
        {
            if (!value.TryGetValue(out string? text)
                || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var instant))
            {
                return false;
            }

            bound = Timestamps.ToMicros(instant);
            if (isMax)
            {
                // Other writers truncate the max to milliseconds; widen it so it stays an upper bound.
                bound += MicrosPerMilli - 1;
            }

            return true;
        }

        return value.TryGetValue(out bound);
    }

    private static long FloorDiv(long a, long b)
    {
        var q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
    }

    private static void AddTimestamp(JsonObject target, string name, long micros, bool roundUp)
    {
        if (micros < TimeBuckets.MinMicros || micros > TimeBuckets.MaxMicros)
        {
            return;
        }

        var millis = roundUp ? -FloorDiv(-micros, MicrosPerMilli) : FloorDiv(micros, MicrosPerMilli);
        var rounded = millis * MicrosPerMilli;
        if (rounded <= TimeBuckets.MaxMicros)
        {
            target[name] = FileStatistics.FormatTimestamp(Timestamps.FromMicros(rounded));
        }
    }

    private static void AddFinite(JsonObject target, string name, double value)
    {
        if (double.IsFinite(value))
        {
            target[name] = value;
        }
    }

    private static void AddFinite(JsonObject target, string name, float value)
    {
        if (float.IsFinite(value))
        {
            target[name] = value;
        }
    }

    private static int CountNulls(bool[]? nulls, ReadOnlySpan<int> rows)
    {
        if (nulls is null)
        {
            return 0;
        }

        var count = 0;
        foreach (var row in rows)
        {
            count += nulls[row] ? 1 : 0;
        }

        return count;
    }

    private static int BoolBounds(PrimitiveColumn<bool> column, ReadOnlySpan<int> rows, out bool anyFalse, out bool anyTrue)
    {
        var values = column.Values;
        var mask = column.Nulls;
        anyFalse = anyTrue = false;
        var nulls = 0;
        foreach (var row in rows)
        {
            if (mask is not null && mask[row])
            {
                nulls++;
            }
            else if (values[row])
            {
                anyTrue = true;
            }
            else
            {
                anyFalse = true;
            }
        }

        return nulls;
    }

    private static bool NumericBounds<T>(PrimitiveColumn<T> column, ReadOnlySpan<int> rows, out int nulls, out T low, out T high)
        where T : unmanaged, INumberBase<T>, IComparisonOperators<T, T, bool>
    {
        var values = column.Values;
        var mask = column.Nulls;
        nulls = 0;
        low = high = default;
        var any = false;
        foreach (var row in rows)
        {
            if (mask is not null && mask[row])
            {
                nulls++;
                continue;
            }

            var value = values[row];
            if (T.IsNaN(value))
            {
                continue;
            }

            if (!any)
            {
                low = high = value;
                any = true;
            }
            else if (value < low)
            {
                low = value;
            }
            else if (value > high)
            {
                high = value;
            }
        }

        return any;
    }

    private static int StringBounds(string?[] values, ReadOnlySpan<int> rows, out string? low, out string? high)
    {
        low = high = null;
        var nulls = 0;
        foreach (var row in rows)
        {
            var value = values[row];
            if (value is null)
            {
                nulls++;
                continue;
            }

            if (ReferenceEquals(value, low) || ReferenceEquals(value, high))
            {
                continue; // repeated values of a column (types, surfaces) are mostly one instance each
            }

            if (low is null || Utf8Order.Compare(value, low) < 0)
            {
                low = value;
            }

            if (high is null || Utf8Order.Compare(value, high) > 0)
            {
                high = value;
            }
        }

        return nulls;
    }

    private static string Truncate(string value)
    {
        if (value.Length <= MaxStringStatLength)
        {
            return value;
        }

        var length = char.IsHighSurrogate(value[MaxStringStatLength - 1]) ? MaxStringStatLength - 1 : MaxStringStatLength;
        return value[..length];
    }
}
