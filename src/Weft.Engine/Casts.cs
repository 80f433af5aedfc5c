using System.Globalization;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>Scalar casts between column types; a value that does not convert is a row error, not an exception.</summary>
public static class Casts
{
    public static Column Cast(Column c, WeftType target, RowErrors errors)
    {
        if (c.Type == target)
        {
            return c;
        }

        int n = c.Length;
        var nulls = c.Nulls is null ? null : (bool[])c.Nulls.Clone();
        var result = Column.Empty(target, n, nulls);
        for (int i = 0; i < n; i++)
        {
            if (c.IsNull(i))
            {
                continue;
            }

            if (!TryConvert(c.GetValue(i)!, c.Type, target, out var value))
            {
                errors.Add(i, $"cannot cast {ValueFormat.Format(c.GetValue(i), c.Type)} ({c.Type}) to {target}");
                continue;
            }

            Set(result, i, value);
        }

        return result;
    }

    /// <summary>Converts a boxed value (long, double, string, bool) between scalar types.</summary>
    public static bool TryConvert(object value, WeftType from, WeftType to, out object? result)
    {
        result = null;
        var inv = CultureInfo.InvariantCulture;
        switch (to.Kind)
        {
            case ScalarKind.String:
                result = from.Kind == ScalarKind.Timestamp ? Timestamps.Format((long)value) : ValueFormat.Format(value, from);
                return true;
            case ScalarKind.Bool:
                switch (value)
                {
                    case bool b: result = b; return true;
                    case long l: result = l != 0; return true;
                    case double d: result = d != 0; return true;
                    case string s when bool.TryParse(s, out var pb): result = pb; return true;
                    case string s when s is "0" or "1": result = s == "1"; return true;
                    default: return false;
                }

            case ScalarKind.Int32 or ScalarKind.Int64:
            {
                long l;
                switch (value)
                {
                    case long v: l = v; break;
                    case bool b: l = b ? 1 : 0; break;
                    case double d when !double.IsNaN(d) && Math.Abs(d) < 9.2e18: l = (long)Math.Round(d, MidpointRounding.AwayFromZero); break;
                    case string s when long.TryParse(s, NumberStyles.Integer, inv, out var p): l = p; break;
                    default: return false;
                }

                if (to.Kind == ScalarKind.Int32 && l is < int.MinValue or > int.MaxValue)
                {
                    return false;
                }

                result = l;
                return true;
            }

            case ScalarKind.Float32 or ScalarKind.Float64:
                switch (value)
                {
                    case double d: result = d; return true;
                    case long l: result = (double)l; return true;
                    case bool b: result = b ? 1.0 : 0.0; return true;
                    case string s when double.TryParse(s, NumberStyles.Float, inv, out var p): result = p; return true;
                    default: return false;
                }

            case ScalarKind.Timestamp:
                switch (value)
                {
                    case long l when from.IsInteger || from.Kind == ScalarKind.Timestamp: result = l; return true;
                    case string s when DateTimeOffset.TryParse(s, inv, DateTimeStyles.AssumeUniversal, out var t): result = Timestamps.ToMicros(t); return true;
                    default: return false;
                }

            default:
                return false;
        }
    }

    /// <summary>Stores a boxed value (as produced by <see cref="TryConvert"/>) into row <paramref name="i"/>.</summary>
    internal static void Set(Column column, int i, object? value)
    {
        switch (column)
        {
            case PrimitiveColumn<bool> b: b.Values[i] = (bool)value!; break;
            case PrimitiveColumn<int> x: x.Values[i] = (int)(long)value!; break;
            case PrimitiveColumn<long> x: x.Values[i] = (long)value!; break;
            case PrimitiveColumn<float> x: x.Values[i] = (float)(double)value!; break;
            case PrimitiveColumn<double> x: x.Values[i] = (double)value!; break;
            case StringColumn s: s.Values[i] = (string?)value; break;
            default: throw new InvalidOperationException($"cannot set a scalar into a {column.Type} column");
        }
    }
}
