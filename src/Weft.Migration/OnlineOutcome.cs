using System.Collections.Immutable;
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
/// <param name="Lower">Lower end of the (1 − 2α) confidence interval of the difference.</param>
/// <param name="DegreesOfFreedom">Welch–Satterthwaite degrees of freedom.</param>
/// <param name="PValue">The larger of the two one-sided p-values; equivalent when below Alpha.</param>
/// <param name="Exposed">The sample-ratio check of every exposed user.</param>
/// <param name="Measured">The sample-ratio check of the exposed users with an outcome: a consumer that logs one arm's users less often biases the comparison.</param>
/// <param name="ExposedWithoutOutcome">Exposed users the outcomes do not mention (left out).</param>
/// <param name="UnexposedWithOutcome">Users with outcomes who were not exposed to this split (left out).</param>
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
    double DegreesOfFreedom,
    double PValue,
    SampleRatioResult Exposed,
    SampleRatioResult? Measured,
    long ExposedWithoutOutcome,
    long UnexposedWithOutcome,
    IReadOnlyList<string> Failures)
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
            foreach (var column in (string[])[userColumn, metricColumn])
            {
                if (!names.Contains(column))
                {
                    throw new MigrationInputException($"outcomes '{path}' have no column '{column}' (they have: {string.Join(", ", names.Order(StringComparer.Ordinal))}); name it with --user-column / --metric");
                }
            }

            ImmutableArray<FieldDefinition> schema = [new(userColumn, WeftType.Int64), new(metricColumn, WeftType.Float64)];
            var (read, bad) = await TableInputs.ReadEnrichmentAsync(location, schema, cancellationToken).ConfigureAwait(false);
            if (bad.Count > 0)
            {
                throw new MigrationInputException($"outcomes '{path}': {bad.Count:N0} row(s) cannot be read as {userColumn} (integer) and {metricColumn} (number), e.g. {bad[0].Source}: {bad[0].Reason}");
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
                throw new MigrationInputException($"outcomes '{path}': row {i + 1} has no {userColumn}");
            }

            if (values.IsNull(i) || !double.IsFinite(values.Values[i]))
            {
                throw new MigrationInputException($"outcomes '{path}': row {i + 1} ({userColumn} {users.Values[i]}) has no finite {metricColumn}");
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
    public static OnlineOutcomeResult Test(
        string metric, IReadOnlyDictionary<long, double> outcomes, IReadOnlySet<long> weftUsers, IReadOnlySet<long> legacyUsers,
        double percent, double margin, double alpha = 0.05)
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
        var exposed = SampleRatio.Test(weftUsers.Count, legacyUsers.Count, percent);
        if (exposed.Mismatch)
        {
            failures.Add($"the exposed users split {exposed.ObservedPercent:0.##} % to Weft against the route's {percent:0.##} % (p = {exposed.PValue:G3}): the split is broken, and no outcome over it is to be trusted");
        }

        SampleRatioResult? measured = null;
        if (weft.Count + legacy.Count > 0)
        {
            measured = SampleRatio.Test(weft.Count, legacy.Count, percent);
            if (measured.Mismatch)
            {
                failures.Add($"the users with an outcome split {measured.ObservedPercent:0.##} % to Weft against the route's {percent:0.##} % (p = {measured.PValue:G3}): the consumer's logs cover one arm's users more than the other's");
            }
        }

        double difference = double.NaN, lower = double.NaN, upper = double.NaN, df = double.NaN, p = 1;
        if (weft.Count < 2 || legacy.Count < 2)
        {
            failures.Add($"{weft.Count:N0} of Weft's and {legacy.Count:N0} of legacy's exposed users have an outcome; the test needs at least 2 in each arm");
        }
        else
        {
            difference = weft.Mean - legacy.Mean;
            double vw = weft.Variance / weft.Count, vl = legacy.Variance / legacy.Count;
            double se = Math.Sqrt(vw + vl);
            if (se == 0)
            {
                // Every user of both arms has the same outcome within their arm: the difference is known exactly.
                lower = upper = difference;
                p = Math.Abs(difference) < margin ? 0 : 1;
                df = weft.Count + legacy.Count - 2;
            }
            else
            {
                df = (vw + vl) * (vw + vl) / ((vw * vw / (weft.Count - 1)) + (vl * vl / (legacy.Count - 1)));
                var t = new StudentT(0, 1, df);
                double pLower = 1 - t.CumulativeDistribution((difference + margin) / se); // H0: difference <= -margin
                double pUpper = t.CumulativeDistribution((difference - margin) / se); // H0: difference >= +margin
                p = Math.Max(pLower, pUpper);
                double critical = t.InverseCumulativeDistribution(1 - alpha);
                lower = difference - (critical * se);
                upper = difference + (critical * se);
            }

            if (!(p < alpha))
            {
                failures.Add($"the difference in mean {metric} {difference:G4} (Weft {weft.Mean:G4} against legacy {legacy.Mean:G4}; interval {lower:G4} .. {upper:G4}) is not shown to lie within ±{margin:G4} (p = {p:G3}, alpha {alpha:G3})");
            }
        }

        return new OnlineOutcomeResult(
            metric, weft.Count, legacy.Count, weft.Count > 0 ? weft.Mean : double.NaN, legacy.Count > 0 ? legacy.Mean : double.NaN,
            difference, lower, upper, margin, alpha, df, p, exposed, measured,
            weftUsers.Count + legacyUsers.Count - weft.Count - legacy.Count, unexposed, failures);
    }

    /// <summary>An arm's users with an outcome: count, mean and sample variance (Welford).</summary>
    private static (long Count, double Mean, double Variance) Arm(IReadOnlyDictionary<long, double> outcomes, IReadOnlySet<long> users)
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

        return (n, mean, n > 1 ? m2 / (n - 1) : 0);
    }
}
