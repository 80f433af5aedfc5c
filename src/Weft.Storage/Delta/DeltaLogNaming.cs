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
    /// Parses a checkpoint's file name: classic <c>V.checkpoint.parquet</c> (part 1 of 1), multi-part
    /// <c>V.checkpoint.OOOOOOOOOO.PPPPPPPPPP.parquet</c> (part O of P, both 10 digits), or UUID-named
    /// <c>V.checkpoint.&lt;uuid&gt;.json|parquet</c> (<see cref="CheckpointFile.UuidNamed"/>: the V2
    /// spec, whose actions may live in sidecar files). False for any other name.
    /// </summary>
    public static bool TryParseCheckpointFileName(string fileName, out CheckpointFile checkpoint)
    {
        checkpoint = default;
        const string Marker = ".checkpoint.";
        if (fileName.Length <= VersionDigits + Marker.Length
            || fileName.AsSpan(0, VersionDigits).ContainsAnyExceptInRange('0', '9')
            || !fileName.AsSpan(VersionDigits).StartsWith(Marker, StringComparison.Ordinal)
            || !long.TryParse(fileName.AsSpan(0, VersionDigits), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            return false;
        }

        var rest = fileName.AsSpan(VersionDigits + Marker.Length);
        if (rest.SequenceEqual("parquet"))
        {
            checkpoint = new CheckpointFile(version, 1, 1, fileName, UuidNamed: false);
            return true;
        }

        if (rest.Length == 10 + 1 + 10 + ".parquet".Length && rest[10] == '.' && rest.EndsWith(".parquet", StringComparison.Ordinal)
            && !rest[..10].ContainsAnyExceptInRange('0', '9') && !rest.Slice(11, 10).ContainsAnyExceptInRange('0', '9'))
        {
            int part = int.Parse(rest[..10], NumberStyles.None, CultureInfo.InvariantCulture);
            int parts = int.Parse(rest.Slice(11, 10), NumberStyles.None, CultureInfo.InvariantCulture);
            if (part < 1 || part > parts)
            {
                return false;
            }

            checkpoint = new CheckpointFile(version, part, parts, fileName, UuidNamed: false);
            return true;
        }

        int dot = rest.LastIndexOf('.');
        if (dot > 0 && (rest[(dot + 1)..].SequenceEqual("json") || rest[(dot + 1)..].SequenceEqual("parquet")) && Guid.TryParse(rest[..dot], out _))
        {
            checkpoint = new CheckpointFile(version, 1, 1, fileName, UuidNamed: true);
            return true;
        }

        return false;
    }

    /// <summary><c>V.checkpoint.parquet</c>, or part <paramref name="part"/> of a multi-part checkpoint when <paramref name="parts"/> &gt; 1.</summary>
    public static string CheckpointFileName(long version, int part = 1, int parts = 1) =>
        parts == 1
            ? version.ToString("D20", CultureInfo.InvariantCulture) + ".checkpoint.parquet"
            : string.Create(CultureInfo.InvariantCulture, $"{version:D20}.checkpoint.{part:D10}.{parts:D10}.parquet");

    /// <summary>
    /// A hidden, unique name for a commit being written. It never parses as a commit, so readers and
    /// listings ignore it even if a crash leaves it behind.
    /// </summary>
    public static string TempFileName(long version) =>
        "." + CommitFileName(version) + "." + Guid.NewGuid().ToString("N") + ".tmp";
}

/// <summary>One checkpoint file in the log directory: part <see cref="Part"/> of <see cref="Parts"/> of version <see cref="Version"/>'s checkpoint.</summary>
internal readonly record struct CheckpointFile(long Version, int Part, int Parts, string FileName, bool UuidNamed);
