using System.Globalization;

namespace Weft.Storage;

/// <summary>The one place that knows how log files are named (<c>_delta_log/00000000000000000042.json</c>).</summary>
internal static class DeltaLogNaming
{
    public const string LogDirectoryName = "_delta_log";
    public const string LastCheckpointFileName = "_last_checkpoint";
    private const int VersionDigits = 20;
    private const string CommitSuffix = ".json";

    /// <summary><c>NNNNNNNNNNNNNNNNNNNN.json</c>, the version zero-padded to 20 digits.</summary>
    public static string CommitFileName(long version)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        return version.ToString("D20", CultureInfo.InvariantCulture) + CommitSuffix;
    }

    /// <summary>True for exactly 20 ASCII digits followed by <c>.json</c>.</summary>
    public static bool TryParseCommitFileName(ReadOnlySpan<char> fileName, out long version)
    {
        version = -1;
        if (fileName.Length != VersionDigits + CommitSuffix.Length || !fileName.EndsWith(CommitSuffix, StringComparison.Ordinal))
        {
            return false;
        }

        var digits = fileName[..VersionDigits];
        foreach (var c in digits)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out version);
    }

    /// <summary>Classic, multi-part or UUID checkpoints: <c>NNNN….checkpoint….parquet|json</c>.</summary>
    public static bool IsCheckpointFileName(ReadOnlySpan<char> fileName) =>
        fileName.Length > VersionDigits
        && fileName[..VersionDigits].ContainsAnyExceptInRange('0', '9') is false
        && fileName[VersionDigits..].StartsWith(".checkpoint", StringComparison.Ordinal);

    /// <summary>
    /// A hidden, unique name for a commit being written. It never parses as a commit, so readers and
    /// listings ignore it even if a crash leaves it behind.
    /// </summary>
    public static string TempFileName(long version) =>
        "." + CommitFileName(version) + "." + Guid.NewGuid().ToString("N") + ".tmp";
}
