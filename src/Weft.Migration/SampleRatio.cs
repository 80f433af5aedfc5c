using MathNet.Numerics.Distributions;

namespace Weft.Migration;

/// <summary>
/// A sample-ratio-mismatch check of an online split: did the share of exposed users that Weft served
/// come out as the route's percent? A mismatch means the split is broken (a consumer caching routes,
/// a bot hitting one side, exposures lost on one side) and any A/B result over it is not to be trusted.
/// </summary>
/// <param name="PValue">Of Pearson's χ² test (1 degree of freedom) of the observed split against the expected one.</param>
public sealed record SampleRatioResult(long WeftUsers, long LegacyUsers, double Percent, double ObservedPercent, double ChiSquare, double PValue)
{
    /// <summary>The p-value below which the split is called broken: 0.001, as sample-ratio checks conventionally use.</summary>
    public const double Threshold = 0.001;

    public bool Mismatch => PValue < Threshold;
}

public static class SampleRatio
{
    public static SampleRatioResult Test(long weftUsers, long legacyUsers, double percent)
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
        double expectedWeft = total * share, expectedLegacy = total - expectedWeft;
        double chi = (Math.Pow(weftUsers - expectedWeft, 2) / expectedWeft) + (Math.Pow(legacyUsers - expectedLegacy, 2) / expectedLegacy);
        double p = 1 - ChiSquared.CDF(1, chi);
        return new SampleRatioResult(weftUsers, legacyUsers, percent, 100.0 * weftUsers / total, chi, p);
    }
}
