using Weft.Definitions;
using Weft.Engine;

namespace Weft.Quality;

/// <summary>
/// Whether one column's values agree between a reference row and a candidate row, typed once per column
/// so that a row's comparison does not box. Both null agree; one null does not.
/// </summary>
internal abstract class ColumnComparer(string name)
{
    public string Name { get; } = name;

    /// <summary>
    /// True when the values agree. <paramref name="difference"/> is raised to the largest numeric
    /// |reference − candidate| seen (over list elements too), NaN when exactly one side is NaN.
    /// </summary>
    public abstract bool Agree(Column reference, int i, Column candidate, int j, ref double difference);

    public static ColumnComparer For(FieldDefinition field, Tolerance tolerance) => (field.Type.Kind, field.Type.IsList) switch
    {
        (ScalarKind.Bool, false) => new Scalar<bool>(field.Name, static (a, b, _, ref _) => a == b, tolerance),
        (ScalarKind.Int32, false) => new Scalar<int>(field.Name, static (a, b, t, ref d) => Numbers(a, b, t, ref d), tolerance),
        (ScalarKind.Int64 or ScalarKind.Timestamp, false) => new Scalar<long>(field.Name, static (a, b, t, ref d) => Integers(a, b, t, ref d), tolerance),
        (ScalarKind.Float32, false) => new Scalar<float>(field.Name, static (a, b, t, ref d) => Numbers(a, b, t, ref d), tolerance),
        (ScalarKind.Float64, false) => new Scalar<double>(field.Name, static (a, b, t, ref d) => Numbers(a, b, t, ref d), tolerance),
        (ScalarKind.String, false) => new Strings(field.Name),
        (ScalarKind.Bool, true) => new List<bool>(field.Name, static (a, b, _, ref _) => a == b, tolerance),
        (ScalarKind.Int32, true) => new List<int>(field.Name, static (a, b, t, ref d) => Numbers(a, b, t, ref d), tolerance),
        (ScalarKind.Int64 or ScalarKind.Timestamp, true) => new List<long>(field.Name, static (a, b, t, ref d) => Integers(a, b, t, ref d), tolerance),
        (ScalarKind.Float32, true) => new List<float>(field.Name, static (a, b, t, ref d) => Numbers(a, b, t, ref d), tolerance),
        (ScalarKind.Float64, true) => new List<double>(field.Name, static (a, b, t, ref d) => Numbers(a, b, t, ref d), tolerance),
        (ScalarKind.String, true) => new List<string>(field.Name, static (a, b, _, ref _) => string.Equals(a, b, StringComparison.Ordinal), tolerance),
        _ => throw new ArgumentOutOfRangeException(nameof(field), field.Type, $"Column '{field.Name}' has a type the comparison does not know."),
    };

    internal delegate bool ValueAgree<in T>(T reference, T candidate, Tolerance tolerance, ref double difference);

    private static bool Numbers(double a, double b, Tolerance tolerance, ref double difference)
    {
        Raise(ref difference, double.IsNaN(a) != double.IsNaN(b) ? double.NaN : a == b || double.IsNaN(a) ? 0 : Math.Abs(a - b));
        return tolerance.Agree(a, b);
    }

    // Exact for 64-bit integers: through double, values beyond 2^53 a few units apart (2^53 and 2^53 + 1)
    // became one number, agreeing within any tolerance with a difference of 0. The gap is taken in 128
    // bits, so it is exact up to 2^53 and never overflows.
    private static bool Integers(long a, long b, Tolerance tolerance, ref double difference)
    {
        if (a == b)
        {
            return true;
        }

        double gap = (double)(a > b ? (Int128)a - b : (Int128)b - a);
        Raise(ref difference, gap);
        return !tolerance.IsExact && gap <= tolerance.Absolute + (tolerance.Relative * Math.Max(Math.Abs((double)a), Math.Abs((double)b)));
    }

    private static void Raise(ref double difference, double value) => difference = Larger(difference, value);

    /// <summary>The larger of two differences; NaN (one side NaN, the other not) outranks every number.</summary>
    internal static double Larger(double a, double b) => double.IsNaN(a) || double.IsNaN(b) ? double.NaN : Math.Max(a, b);

    private sealed class Scalar<T>(string name, ValueAgree<T> agree, Tolerance tolerance) : ColumnComparer(name)
        where T : unmanaged
    {
        public override bool Agree(Column reference, int i, Column candidate, int j, ref double difference)
        {
            bool refNull = reference.IsNull(i), candNull = candidate.IsNull(j);
            if (refNull || candNull)
            {
                return refNull && candNull;
            }

            return agree(((PrimitiveColumn<T>)reference).Values[i], ((PrimitiveColumn<T>)candidate).Values[j], tolerance, ref difference);
        }
    }

    private sealed class Strings(string name) : ColumnComparer(name)
    {
        public override bool Agree(Column reference, int i, Column candidate, int j, ref double difference) =>
            string.Equals(((StringColumn)reference).Values[i], ((StringColumn)candidate).Values[j], StringComparison.Ordinal);
    }

    private sealed class List<T>(string name, ValueAgree<T> agree, Tolerance tolerance) : ColumnComparer(name)
    {
        public override bool Agree(Column reference, int i, Column candidate, int j, ref double difference)
        {
            var a = ((ListColumn<T>)reference).Values[i];
            var b = ((ListColumn<T>)candidate).Values[j];
            if (a is null || b is null)
            {
                return a is null && b is null;
            }

            bool same = a.Length == b.Length;
            int n = Math.Min(a.Length, b.Length);
            for (int k = 0; k < n; k++)
            {
                same &= agree(a[k], b[k], tolerance, ref difference); // every element, so the largest difference is seen
            }

            return same;
        }
    }
}
