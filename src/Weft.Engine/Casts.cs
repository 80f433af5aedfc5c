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
                    // [-2^63, 2^63): every double there rounds to an int64 (NaN fails both tests). The bound
                    // was 9.2e18, which refused 9.2e18 .. 9.22e18, values an int64 holds.
                    case double d when d >= -9223372036854775808.0 && d < 9223372036854775808.0: l = (long)Math.Round(d, MidpointRounding.AwayFromZero); break;
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
            {
                double d;
                switch (value)
                {
                    case double v: d = v; break;
                    case long l: d = l; break;
                    case bool b: d = b ? 1.0 : 0.0; break;
                    case string s when double.TryParse(s, NumberStyles.Float, inv, out var p): d = p; break;
                    default: return false;
                }

                if (to.Kind == ScalarKind.Float32 && double.IsFinite(d) && float.IsInfinity((float)d))
                {
                    return false; // beyond float32 (1e300): not a value of the type, as a float32 literal may not be
                }

                result = d;
                return true;
            }

            case ScalarKind.Timestamp:
                switch (value)
                {
                    // A timestamp is an instant of years 1-9999: one outside has no date, and formatting it
                    // (a cast to string, a served read) threw or wrapped round to another instant.
                    case long l when (from.IsInteger || from.Kind == ScalarKind.Timestamp) && l >= Timestamps.MinMicros && l <= Timestamps.MaxMicros: result = l; return true;
                    // ISO 8601 only (a date, or a date and time): the framework's parser completed "12:30"
                    // with today's date and "Jan 5" with this year, so the stream and a batch run on
                    // another day cast one event differently. As raw events read their text.
                    case string s when IsoTimestamp.TryParseGeneral(s, out long micros): result = micros; return true;
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
