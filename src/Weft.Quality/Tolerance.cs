using System.Globalization;

namespace Weft.Quality;

/// <summary>
/// How far two numeric values may be apart and still agree: <c>|a − b| ≤ Absolute + Relative × max(|a|, |b|)</c>.
/// Applies to every numeric kind (timestamps in µs included) and to each element of a numeric list.
/// NaN agrees only with NaN, an infinity only with itself. The default is exact.
/// </summary>
public readonly record struct Tolerance(double Absolute, double Relative)
{
    public static Tolerance Exact => default;

    public bool IsExact => Absolute == 0 && Relative == 0;

    public bool Agree(double a, double b)
    {
        if (a == b)
        {
            return true;
        }

        if (double.IsNaN(a) || double.IsNaN(b))
        {
            return double.IsNaN(a) && double.IsNaN(b);
        }

        if (double.IsInfinity(a) || double.IsInfinity(b))
        {
            return false; // equal infinities were caught above; anything else is infinitely far
        }

        double gap = Math.Abs(a - b);
        if (double.IsInfinity(gap))
        {
            // Two finite values more than double.MaxValue apart: the bound may overflow too, and inf <= inf
            // agreed. Halved, both sides are finite and exact at this magnitude.
            return Math.Abs((a / 2) - (b / 2)) <= (Absolute / 2) + (Relative / 2 * Math.Max(Math.Abs(a), Math.Abs(b)));
        }

        return gap <= Absolute + (Relative * Math.Max(Math.Abs(a), Math.Abs(b)));
    }

    /// <summary>
    /// Parses <c>ABS</c> or <c>ABS,REL</c> (invariant culture, e.g. <c>0.001</c> or <c>0,1e-6</c>); both
    /// must be finite and not negative.
    /// </summary>
    public static bool TryParse(string? text, out Tolerance tolerance, out string? problem)
    {
        tolerance = Exact;
        problem = null;
        var parts = (text ?? "").Split(',');
        if (parts.Length is < 1 or > 2 || !TryBound(parts[0], out double absolute) || (parts.Length == 2 && !TryBound(parts[1], out _)))
        {
            problem = $"'{text}' is not a tolerance: give ABS or ABS,REL, finite numbers of at least 0 (e.g. 0.001 or 0,1e-6)";
            return false;
        }

        double relative = 0;
        if (parts.Length == 2)
        {
            TryBound(parts[1], out relative);
        }

        tolerance = new Tolerance(absolute, relative);
        return true;
    }

    public override string ToString() => Relative == 0
        ? Absolute.ToString("R", CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"{Absolute:R},{Relative:R}");

    private static bool TryBound(string text, out double value) =>
        double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value) && value >= 0;
}
