using System.Collections.Immutable;
using System.Text.Json;
using MathNet.Numerics.Distributions;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;

namespace Weft.Migration;

/// <summary>
/// The online A/B outcome of a split: a consumer's own metric per user (from its logs), compared
/// between the users Weft served and those legacy served, with Welch's two one-sided tests (TOST)
/// for equivalence within ±Margin. Users are the unit: each user's observations are averaged first,
/// since a user's requests are not independent of each other and the split is by user.
/// </summary>
/// <param name="WeftUsers">Exposed users Weft served that have an outcome.</param>
/// <param name="LegacyUsers">Exposed users legacy served that have an outcome.</param>
/// <param name="Difference">Mean of Weft's users − mean of legacy's users.</param>
/// <param name="Lower">Lower end of the (1 − 2α) confidence interval of the difference; of the (1 − α) always-valid one when Sequential.</param>
/// <param name="Sequential">An always-valid test (a confidence sequence), valid however often the growing log is tested; else the fixed-horizon one, valid at one planned look.</param>
/// <param name="DegreesOfFreedom">Welch–Satterthwaite degrees of freedom (NaN when Sequential, which uses the normal limit).</param>
/// <param name="PValue">The larger of the two one-sided p-values (always-valid ones when Sequential); equivalent when below Alpha.</param>
/// <param name="Exposed">The sample-ratio check of every exposed user.</param>
/// <param name="Measured">The sample-ratio check of the exposed users with an outcome: a consumer that logs one arm's users less often biases the comparison.</param>
/// <param name="ExposedWithoutOutcome">Exposed users the outcomes do not mention (left out).</param>
/// <param name="UnexposedWithOutcome">Users with outcomes who were not exposed to this split (left out).</param>
/// <param name="Undecided">A sequential test that has neither shown equivalence nor a difference beyond the margin yet, with no other failure: collect more users and test again.</param>
public sealed record OnlineOutcomeResult(
    string Metric,
    long WeftUsers,
    long LegacyUsers,
    double WeftMean,
    double LegacyMean,
    double Difference,
    double Lower,
    double Upper,
    double Margin,
    double Alpha,
    bool Sequential,
    double DegreesOfFreedom,
    double PValue,
    SampleRatioResult Exposed,
    SampleRatioResult? Measured,
    long ExposedWithoutOutcome,
    long UnexposedWithOutcome,
    IReadOnlyList<string> Failures,
    bool Undecided = false)
{
    public bool Passed => Failures.Count == 0;
}

/// <summary>Reads a consumer's outcomes and tests a split's arms for equivalence.</summary>
public static class OnlineOutcome
{
    /// <summary>
    /// Each user's mean of <paramref name="metricColumn"/> over their rows of the file (Parquet, CSV or
    /// JSON lines, by extension). A row without a user id, or with a missing or non-finite value, fails
    /// naming the file and the row: a silently dropped outcome would bias one arm.
    /// </summary>
    public static async Task<IReadOnlyDictionary<long, double>> ReadAsync(string path, string userColumn, string metricColumn, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var location = new TableLocation(Path.GetFullPath(path), TableInputs.FormatOfFile(path)
            ?? throw new MigrationInputException($"outcomes '{path}': unknown format; use a .parquet, .csv or .jsonl file"));
        EventBatch rows;
        try
        {
            var names = await TableInputs.ColumnNamesAsync(location, cancellationToken).ConfigureAwait(false);
            if (names.Count == 0)
            {
                // A CSV or JSON lines file names its columns by its rows: with none, "no column 'user_id'" blamed a header that names it.
                throw new MigrationInputException($"outcomes '{path}' hold no rows (a header at most): no outcome was logged");
            }

            foreach (var column in (string[])[userColumn, metricColumn])
            {
                if (!names.Contains(column))
                {
                    throw new MigrationInputException($"outcomes '{path}' have no column '{column}' (they have: {string.Join(", ", names.Order(StringComparer.Ordinal))}); name it with --user-column / --metric");
                }
            }

            // Required, so that a CSV or JSON lines row without one is refused naming its file line, as a
            // row of the wrong type is (Parquet has no lines: its nulls are named by row below).
            ImmutableArray<FieldDefinition> schema = [new(userColumn, WeftType.Int64, Nullable: false), new(metricColumn, WeftType.Float64, Nullable: false)];
            var (read, bad) = await TableInputs.ReadEnrichmentAsync(location, schema, cancellationToken).ConfigureAwait(false);
            if (bad.Count > 0)
            {
                throw new MigrationInputException($"outcomes '{path}': {bad.Count:N0} row(s) cannot be read as {userColumn} (integer) and {metricColumn} (number), both required, e.g. {bad[0].Source}: {bad[0].Reason}");
            }

            rows = read;
        }
        catch (InputException ex)
        {
            throw new MigrationInputException($"outcomes '{path}': {ex.Message}");
        }

        var users = (PrimitiveColumn<long>)rows.Columns[0];
        var values = (PrimitiveColumn<double>)rows.Columns[1];
        var sums = new Dictionary<long, (double Sum, long Count)>();
        for (int i = 0; i < rows.RowCount; i++)
        {
            if (users.IsNull(i))
            {
                throw new MigrationInputException($"outcomes '{path}': row {i + 1} of the file has no {userColumn}");
            }

            if (values.IsNull(i) || !double.IsFinite(values.Values[i]))
            {
                throw new MigrationInputException($"outcomes '{path}': row {i + 1} of the file ({userColumn} {users.Values[i]}) has no finite {metricColumn}");
            }

            var (sum, count) = sums.GetValueOrDefault(users.Values[i]);
            sums[users.Values[i]] = (sum + values.Values[i], count + 1);
        }

        return sums.ToDictionary(s => s.Key, s => s.Value.Sum / s.Value.Count);
    }

    /// <summary>
    /// Compares the outcomes of the users exposed to the split (Weft's arm, legacy's arm) at
    /// <paramref name="percent"/>. Fails when the split or its measured users are not as the percent
    /// says (a sample-ratio mismatch), when an arm has fewer than 2 measured users, or when the
    /// difference is not shown to lie within ±<paramref name="margin"/>.
    /// </summary>
    /// <param name="sequential">
    /// Test so that looking again and again as the split gathers users keeps the error rates at
    /// <paramref name="alpha"/> (always-valid: the sample-ratio checks and the equivalence test are
    /// sequential ones). The fixed-horizon test is valid only at one look planned in advance: tested
    /// after every day of logs and stopped at the first pass, it calls arms equivalent that are not
    /// far more often than alpha.
    /// </param>
    public static OnlineOutcomeResult Test(
        string metric, IReadOnlyDictionary<long, double> outcomes, IReadOnlySet<long> weftUsers, IReadOnlySet<long> legacyUsers,
        double percent, double margin, double alpha = 0.05, bool sequential = false)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        ArgumentNullException.ThrowIfNull(weftUsers);
        ArgumentNullException.ThrowIfNull(legacyUsers);
        Equivalence.CheckTest(margin, alpha);

        if (weftUsers.Count + legacyUsers.Count == 0)
        {
            throw new ArgumentException("No exposed users: nothing to compare.", nameof(weftUsers));
        }

        var weft = Arm(outcomes, weftUsers);
        var legacy = Arm(outcomes, legacyUsers);
        long unexposed = 0;
        foreach (var user in outcomes.Keys)
        {
            if (!weftUsers.Contains(user) && !legacyUsers.Contains(user))
            {
                unexposed++;
            }
        }

        var failures = new List<string>();
        var exposed = SampleRatio.Test(weftUsers.Count, legacyUsers.Count, percent, sequential);
        if (exposed.Mismatch)
        {
            failures.Add($"the exposed users split {exposed.ObservedPercent:0.##} % to Weft against the route's {percent:0.##} % (p = {exposed.PValue:G3}): the split is broken, and no outcome over it is to be trusted");
        }

        SampleRatioResult? measured = null;
        if (weft.Count + legacy.Count > 0)
        {
            measured = SampleRatio.Test(weft.Count, legacy.Count, percent, sequential);
            if (measured.Mismatch)
            {
                failures.Add($"the users with an outcome split {measured.ObservedPercent:0.##} % to Weft against the route's {percent:0.##} % (p = {measured.PValue:G3}): the consumer's logs cover one arm's users more than the other's");
            }
        }

        var comparison = Compare(metric, weft, legacy, margin, alpha, sequential);
        if (comparison.Failure is { } failure)
        {
            failures.Add(failure);
        }

        return new OnlineOutcomeResult(
            metric, weft.Count, legacy.Count, weft.Count > 0 ? weft.Mean : double.NaN, legacy.Count > 0 ? legacy.Mean : double.NaN,
            comparison.Difference, comparison.Lower, comparison.Upper, margin, alpha, sequential, comparison.DegreesOfFreedom, comparison.PValue, exposed, measured,
            weftUsers.Count + legacyUsers.Count - weft.Count - legacy.Count, unexposed, failures, comparison.Undecided && failures.Count == 1);
    }

    /// <summary>
    /// Whether a stored outcome test is a sequential one that needs more users rather than a failure: its
    /// details (the result as <c>weft migrate outcome</c> stores it, with snake_case names) say
    /// <c>"undecided": true</c>. Evidence stored otherwise reads as its verdict says.
    /// </summary>
    public static bool IsUndecided(MigrationEvidence outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        if (outcome.Passed)
        {
            return false;
        }

        try
        {
            using var details = JsonDocument.Parse(outcome.Details);
            return details.RootElement.ValueKind == JsonValueKind.Object
                && details.RootElement.TryGetProperty("undecided", out var undecided) && undecided.ValueKind == JsonValueKind.True;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// The equivalence test of two arms' summaries: the difference of their means (Weft's − legacy's),
    /// its interval and p-value, and why it did not pass (null when it did).
    /// </summary>
    internal static Comparison Compare(string metric, ArmSummary weft, ArmSummary legacy, double margin, double alpha, bool sequential)
    {
        if (weft.Count < 2 || legacy.Count < 2)
        {
            return new Comparison(double.NaN, double.NaN, double.NaN, double.NaN, 1,
                $"{weft.Count:N0} of Weft's and {legacy.Count:N0} of legacy's exposed users have an outcome; the test needs at least 2 in each arm");
        }

        double difference = weft.Mean - legacy.Mean;
        double vw = weft.Variance / weft.Count, vl = legacy.Variance / legacy.Count;
        double variance = vw + vl;
        double se = Math.Sqrt(variance);
        string Described(double lower, double upper, string interval) =>
            $"the difference in mean {metric} {difference:G4} (Weft {weft.Mean:G4} against legacy {legacy.Mean:G4}; {interval} {lower:G4} .. {upper:G4})";

        if (weft.Variance == 0 || legacy.Variance == 0)
        {
            // An arm without spread has a standard error estimated as 0, as if its mean were known: a few users
            // all clicking (or none converting) made a 0.07 gap "equivalent within 0.05" in a third of splits.
            // Users are a sample; a later one may differ, so no interval is claimed until each arm varies.
            string which = weft.Variance == 0 && legacy.Variance == 0
                ? $"every user of both arms has had the same {metric} within their arm (Weft {weft.Mean:G4}, legacy {legacy.Mean:G4})"
                : weft.Variance == 0 ? $"every one of Weft's {weft.Count:N0} users has had the same {metric} ({weft.Mean:G4})"
                : $"every one of legacy's {legacy.Count:N0} users has had the same {metric} ({legacy.Mean:G4})";
            return new Comparison(difference, double.NaN, double.NaN, double.NaN, 1,
                $"{which} so far: an arm without spread gives no estimate of its error, so the test cannot bound the difference; "
                + (sequential ? "keep collecting" : "test again once both arms vary (more users; a metric constant in an arm, such as a conversion no user made, never will)"), Undecided: sequential);
        }

        if (sequential)
        {
            double tau2 = MixtureVariance(margin, alpha);
            double half = MixtureHalfWidth(variance, tau2, alpha);
            double lower = difference - half, upper = difference + half;
            double pLower = difference > -margin ? MixtureP(difference + margin, variance, tau2) : 1; // H0: difference <= -margin
            double pUpper = difference < margin ? MixtureP(difference - margin, variance, tau2) : 1; // H0: difference >= +margin
            double p = Math.Max(pLower, pUpper);
            string? failure = null;
            bool undecided = false;
            if (lower > margin || upper < -margin)
            {
                failure = $"{Described(lower, upper, "always-valid interval")} lies outside ±{margin:G4}: the consumer's {metric} differs on Weft's sequences by more than the margin (alpha {alpha:G3})";
            }
            else if (!(p < alpha))
            {
                undecided = true;
                failure = $"{Described(lower, upper, "always-valid interval")} is not yet shown to lie within ±{margin:G4} (always-valid p = {p:G3}, alpha {alpha:G3}): keep collecting and test the growing log again";
            }

            return new Comparison(difference, lower, upper, double.NaN, p, failure, undecided);
        }

        double df = variance * variance / ((vw * vw / (weft.Count - 1)) + (vl * vl / (legacy.Count - 1)));
        var t = new StudentT(0, 1, df);
        double pBelow = 1 - t.CumulativeDistribution((difference + margin) / se); // H0: difference <= -margin
        double pAbove = t.CumulativeDistribution((difference - margin) / se); // H0: difference >= +margin
        double pValue = Math.Max(pBelow, pAbove);
        double critical = t.InverseCumulativeDistribution(1 - alpha);
        double low = difference - (critical * se), high = difference + (critical * se);
        return new Comparison(difference, low, high, df, pValue,
            pValue < alpha ? null : $"{Described(low, high, "interval")} is not shown to lie within ±{margin:G4} (p = {pValue:G3}, alpha {alpha:G3})");
    }

    /// <summary>
    /// The variance τ² of the normal mixture over differences that the always-valid test averages its
    /// likelihood ratio over (the mSPRT of Johari et al., "Always Valid Inference", 2017, with the
    /// normal limit of Waudby-Smith et al.'s asymptotic confidence sequences). τ² sets where the
    /// interval is tightest; it must not depend on the data, or looks would lose their validity. It is
    /// chosen from the margin: tightest when the interval's half-width equals the margin, the first
    /// moment two identical arms could be shown equivalent. There the width's minimum over τ² is at
    /// τ² = v·r with r = −2 ln α + ln(1 + r), and the half-width is √(v(1 + r)), so v = M²/(1 + r).
    /// </summary>
    internal static double MixtureVariance(double margin, double alpha)
    {
        double r = -2 * Math.Log(alpha);
        for (int i = 0; i < 100; i++)
        {
            r = (-2 * Math.Log(alpha)) + Math.Log(1 + r); // a contraction: its slope 1/(1 + r) is below 1
        }

        return r / (1 + r) * margin * margin;
    }

    /// <summary>
    /// Half-width of the (1 − α) always-valid interval of an estimate of variance <paramref name="variance"/>:
    /// the differences θ whose mixture likelihood ratio stays below 1/α.
    /// </summary>
    internal static double MixtureHalfWidth(double variance, double tau2, double alpha) =>
        Math.Sqrt(2 * variance * (variance + tau2) / tau2 * (Math.Log(1 / alpha) + (0.5 * Math.Log((variance + tau2) / variance))));

    /// <summary>
    /// The always-valid p-value of a hypothesised difference that the estimate exceeds by
    /// <paramref name="distance"/>: 1 over the mixture likelihood ratio, capped at 1. By Ville's
    /// inequality the ratio reaches 1/α at any look with probability at most α when the hypothesis holds.
    /// </summary>
    internal static double MixtureP(double distance, double variance, double tau2)
    {
        double logRatio = (0.5 * Math.Log(variance / (variance + tau2))) + (tau2 * distance * distance / (2 * variance * (variance + tau2)));
        return logRatio <= 0 ? 1 : Math.Exp(-logRatio);
    }

    /// <summary>An arm's users with an outcome: count, mean and sample variance (Welford).</summary>
    private static ArmSummary Arm(IReadOnlyDictionary<long, double> outcomes, IReadOnlySet<long> users)
    {
        long n = 0;
        double mean = 0, m2 = 0;
        foreach (var user in users)
        {
            if (!outcomes.TryGetValue(user, out double x))
            {
                continue;
            }

            n++;
            double delta = x - mean;
            mean += delta / n;
            m2 += delta * (x - mean);
        }

        return new ArmSummary(n, mean, n > 1 ? m2 / (n - 1) : 0);
    }
}

/// <summary>An arm's users with an outcome: how many, their mean and their sample variance.</summary>
internal readonly record struct ArmSummary(long Count, double Mean, double Variance);

/// <summary>An equivalence test's figures, and why it did not pass (null when it did).</summary>
/// <param name="Undecided">Sequential, and neither equivalence nor a difference beyond the margin is shown yet.</param>
internal readonly record struct Comparison(double Difference, double Lower, double Upper, double DegreesOfFreedom, double PValue, string? Failure, bool Undecided = false);
