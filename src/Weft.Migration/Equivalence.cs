using MathNet.Numerics.Distributions;

namespace Weft.Migration;

/// <summary>
/// The outcome of a paired two one-sided tests (TOST) equivalence test on a consuming model's scores
/// of the same examples, replayed on legacy sequences (control) and on Weft's (treatment).
/// </summary>
/// <param name="Pairs">Examples both replays scored.</param>
/// <param name="ControlOnly">Examples only the control replay scored (not paired).</param>
/// <param name="TreatmentOnly">Examples only the treatment replay scored.</param>
/// <param name="MeanDifference">Mean of treatment − control over the pairs.</param>
/// <param name="StdDifference">Sample standard deviation of the differences.</param>
/// <param name="Lower">Lower end of the (1 − 2α) confidence interval of the mean difference.</param>
/// <param name="Upper">Upper end of that interval.</param>
/// <param name="Margin">The equivalence margin: differences within ±Margin count as no effect.</param>
/// <param name="PValue">The larger of the two one-sided p-values; equivalent when below <paramref name="Alpha"/>.</param>
/// <param name="Correlation">Pearson correlation of the paired scores (NaN when either side is constant).</param>
/// <param name="Failures">Why the test did not show equivalence; empty when it did.</param>
public sealed record EquivalenceResult(
    long Pairs,
    long ControlOnly,
    long TreatmentOnly,
    double MeanDifference,
    double StdDifference,
    double Lower,
    double Upper,
    double Margin,
    double Alpha,
    double PValue,
    double Correlation,
    IReadOnlyList<string> Failures)
{
    public bool Passed => Failures.Count == 0;
}

/// <summary>Paired TOST equivalence of two replays' scores.</summary>
public static class Equivalence
{
    /// <summary>Most examples one replay may score and the other not before the test refuses to call them the same replay (1 %).</summary>
    public const double MaxUnpairedShare = 0.01;

    /// <summary>
    /// Pairs <paramref name="control"/> and <paramref name="treatment"/> by key and tests whether the
    /// mean paired difference lies within ±<paramref name="margin"/> at level <paramref name="alpha"/>.
    /// Non-finite scores are refused by the caller; a key repeated within a side is an error.
    /// </summary>
    public static EquivalenceResult Test(IReadOnlyDictionary<string, double> control, IReadOnlyDictionary<string, double> treatment, double margin, double alpha = 0.05)
    {
        ArgumentNullException.ThrowIfNull(control);
        ArgumentNullException.ThrowIfNull(treatment);
        CheckTest(margin, alpha);

        // Welford's running mean and variance of the differences, and sums for the correlation.
        long n = 0;
        double mean = 0, m2 = 0, meanC = 0, meanT = 0, cov = 0, varC = 0, varT = 0;
        foreach (var (key, c) in control)
        {
            if (!treatment.TryGetValue(key, out double t))
            {
                continue;
            }

            n++;
            double d = t - c;
            double delta = d - mean;
            mean += delta / n;
            m2 += delta * (d - mean);
            double dc = c - meanC, dt = t - meanT;
            meanC += dc / n;
            meanT += dt / n;
            cov += dc * (t - meanT);
            varC += dc * (c - meanC);
            varT += dt * (t - meanT);
        }

        long controlOnly = control.Count - n, treatmentOnly = treatment.Count - n;
        var failures = new List<string>();
        double sd = n > 1 ? Math.Sqrt(m2 / (n - 1)) : double.NaN;
        double lower = double.NaN, upper = double.NaN, p = 1;
        if (n < 2)
        {
            failures.Add($"only {n} example(s) were scored by both replays; the test needs at least 2");
        }
        else if (sd == 0)
        {
            // Every difference is the same: the mean is known exactly.
            lower = upper = mean;
            p = Math.Abs(mean) < margin ? 0 : 1;
        }
        else
        {
            double se = sd / Math.Sqrt(n);
            var t = new StudentT(0, 1, n - 1);
            double pLower = 1 - t.CumulativeDistribution((mean + margin) / se); // H0: mean <= -margin
            double pUpper = t.CumulativeDistribution((mean - margin) / se); // H0: mean >= +margin
            p = Math.Max(pLower, pUpper);
            double critical = t.InverseCumulativeDistribution(1 - alpha);
            lower = mean - critical * se;
            upper = mean + critical * se;
        }

        if (n >= 2 && !(p < alpha))
        {
            failures.Add($"the mean score difference {mean:G4} (interval {lower:G4} .. {upper:G4}) is not shown to lie within ±{margin:G4} (p = {p:G3}, alpha {alpha:G3})");
        }

        long all = n + controlOnly + treatmentOnly;
        if (all > 0 && (double)(controlOnly + treatmentOnly) / all > MaxUnpairedShare)
        {
            failures.Add($"{controlOnly:N0} example(s) only the control replay scored and {treatmentOnly:N0} only the treatment replay did, over {MaxUnpairedShare:P0} of {all:N0}: the replays did not score the same examples");
        }

        double correlation = varC > 0 && varT > 0 ? cov / Math.Sqrt(varC * varT) : double.NaN;
        return new EquivalenceResult(n, controlOnly, treatmentOnly, n == 0 ? double.NaN : mean, sd, lower, upper, margin, alpha, p, correlation, failures);
    }

    /// <summary>An equivalence test's margin is positive and finite, and each one-sided test's level lies in (0, 0.5).</summary>
    internal static void CheckTest(double margin, double alpha)
    {
        if (!(margin > 0) || double.IsInfinity(margin))
        {
            throw new ArgumentOutOfRangeException(nameof(margin), margin, "The equivalence margin must be a positive number.");
        }

        if (!(alpha > 0 && alpha < 0.5))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must lie in (0, 0.5).");
        }
    }
}
