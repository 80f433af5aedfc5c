using MathNet.Numerics;
using MathNet.Numerics.Distributions;

namespace Weft.Migration;

/// <summary>
/// A sample-ratio-mismatch check of an online split: did the share of exposed users that Weft served
/// come out as the route's percent? A mismatch means the split is broken (a consumer caching routes,
/// a bot hitting one side, exposures lost on one side) and any A/B result over it is not to be trusted.
/// </summary>
/// <param name="ChiSquare">Pearson's χ² statistic (1 degree of freedom) of the observed split against the expected one.</param>
/// <param name="PValue">Of the χ² test; when Sequential, the always-valid p-value of the beta-binomial mixture test.</param>
/// <param name="Sequential">Valid however often the split is checked as it grows (the χ² test is valid at one look).</param>
public sealed record SampleRatioResult(long WeftUsers, long LegacyUsers, double Percent, double ObservedPercent, double ChiSquare, double PValue, bool Sequential = false)
{
    /// <summary>The p-value below which the split is called broken: 0.001, as sample-ratio checks conventionally use.</summary>
    public const double Threshold = 0.001;

    public bool Mismatch => PValue < Threshold;
}

public static class SampleRatio
{
    /// <summary>
    /// Prior concentration of the sequential check's beta mixture over the share Weft serves, centred on
    /// the expected share: like a prior of 100 users' worth, it spreads over shares a broken split
    /// plausibly gives without giving up much power near the expected one.
    /// </summary>
    internal const double MixtureConcentration = 100;

    /// <param name="sequential">
    /// Check with a test that stays valid however often it is repeated while the split gathers users
    /// (the beta-binomial mixture likelihood ratio, a test martingale; as in Lindon and Malek,
    /// "Anytime-Valid Inference for Multinomial Count Data", 2022). The χ² test repeated after every
    /// day of exposures raises false mismatches far more often than its threshold says.
    /// </param>
    public static SampleRatioResult Test(long weftUsers, long legacyUsers, double percent, bool sequential = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(weftUsers);
        ArgumentOutOfRangeException.ThrowIfNegative(legacyUsers);
        if (!(percent > 0 && percent < 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "A split's percent lies strictly between 0 and 100.");
        }

        long total = weftUsers + legacyUsers;
        if (total == 0)
        {
            throw new ArgumentException("No exposed users: nothing to check.", nameof(weftUsers));
        }

        // The bucket boundary is what the hash splits on, so the expected share is the bucket share.
        double share = Math.Round(percent * (MigrationRouting.Buckets / 100), MidpointRounding.AwayFromZero) / MigrationRouting.Buckets;
        if (share is <= 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, $"A split of {percent} % sends every user to one side: routes split users in steps of {100.0 / MigrationRouting.Buckets} %.");
        }

        double expectedWeft = total * share, expectedLegacy = total - expectedWeft;
        double chi = (Math.Pow(weftUsers - expectedWeft, 2) / expectedWeft) + (Math.Pow(legacyUsers - expectedLegacy, 2) / expectedLegacy);
        double p = sequential ? MixtureP(weftUsers, legacyUsers, share) : 1 - ChiSquared.CDF(1, chi);
        return new SampleRatioResult(weftUsers, legacyUsers, percent, 100.0 * weftUsers / total, chi, p, sequential);
    }

    /// <summary>
    /// 1 over the Bayes factor of a Beta(c·s, c·(1 − s)) mixture over the share against the share
    /// <paramref name="share"/>, capped at 1: under the expected share the factor is a nonnegative
    /// martingale of mean 1 in the users counted, so it ever reaches 1/p with probability at most p.
    /// </summary>
    internal static double MixtureP(long weftUsers, long legacyUsers, double share)
    {
        double a = MixtureConcentration * share, b = MixtureConcentration * (1 - share);
        double logFactor = SpecialFunctions.BetaLn(a + weftUsers, b + legacyUsers) - SpecialFunctions.BetaLn(a, b)
            - (weftUsers * Math.Log(share)) - (legacyUsers * Math.Log(1 - share));
        return logFactor <= 0 ? 1 : Math.Exp(-logFactor);
    }
}
