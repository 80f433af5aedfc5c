using System.Globalization;
using System.Text;

namespace Weft.Storage;

/// <summary>
/// Path helpers for data files: Hive-style partition directories (<c>bucket=2026-11-23T10/path=stream</c>)
/// and the URI form of paths stored in <c>add.path</c>/<c>remove.path</c>.
/// </summary>
/// <remarks>
/// Two layers of escaping apply, as Spark writes them. A partition value becomes a directory name by
/// Hive escaping (<c>%XX</c> for control characters and <c>"#%'*/:=?\{[]^</c> and DEL); a null value is
/// <c>__HIVE_DEFAULT_PARTITION__</c>. The relative file path then goes into the log as an RFC 2396 URI
/// reference, so <c>%</c> becomes <c>%25</c>: value <c>bar+%23</c> → directory <c>_2=bar+%2523</c>
/// → log path <c>_2=bar+%252523/part-….parquet</c>. The directory name is only a convention; readers
/// take partition values from the log.
/// </remarks>
public static class DeltaPaths
{
    /// <summary>Directory name used for a null partition value.</summary>
    public const string NullPartitionDirectoryValue = "__HIVE_DEFAULT_PARTITION__";

    /// <summary>
    /// The relative directory for a partition, columns in the table's partition order, e.g.
    /// <c>bucket=2026-11-23T10/path=stream</c>; empty for an unpartitioned table.
    /// </summary>
    public static string PartitionDirectory(IReadOnlyList<string> partitionColumns, IReadOnlyDictionary<string, string?> partitionValues)
    {
        ArgumentNullException.ThrowIfNull(partitionColumns);
        ArgumentNullException.ThrowIfNull(partitionValues);
        var builder = new StringBuilder();
        foreach (var column in partitionColumns)
        {
            if (!partitionValues.TryGetValue(column, out var value))
            {
                throw new ArgumentException($"No value given for partition column '{column}'.", nameof(partitionValues));
            }

            if (builder.Length > 0)
            {
                builder.Append('/');
            }

            builder.Append(EscapePathSegment(column)).Append('=').Append(EscapePartitionValue(value));
        }

        return builder.ToString();
    }

    /// <summary>
    /// A fresh relative path for a data file in a partition:
    /// <c>bucket=2026-11-23T10/path=stream/part-&lt;guid&gt;.parquet</c>.
    /// </summary>
    public static string NewDataFilePath(IReadOnlyList<string> partitionColumns, IReadOnlyDictionary<string, string?> partitionValues, string extension = ".parquet")
    {
        var directory = PartitionDirectory(partitionColumns, partitionValues);
        var file = "part-" + Guid.NewGuid().ToString("D") + extension;
        return directory.Length == 0 ? file : directory + "/" + file;
    }

    /// <summary>Hive escaping of one partition value for a directory name; null or empty gives the default-partition name.</summary>
    public static string EscapePartitionValue(string? value) =>
        string.IsNullOrEmpty(value) ? NullPartitionDirectoryValue : EscapePathSegment(value);

    /// <summary>Reverses <see cref="EscapePartitionValue"/>; the default-partition name gives null.</summary>
    public static string? UnescapePartitionValue(string directoryValue)
    {
        ArgumentNullException.ThrowIfNull(directoryValue);
        if (directoryValue == NullPartitionDirectoryValue)
        {
            return null;
        }

        var builder = new StringBuilder(directoryValue.Length);
        for (var i = 0; i < directoryValue.Length; i++)
        {
            var c = directoryValue[i];
            if (c == '%' && i + 2 < directoryValue.Length
                && int.TryParse(directoryValue.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
            {
                builder.Append((char)code);
                i += 2;
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }

    /// <summary>Encodes a relative file path (with '/' separators) as the URI reference stored in the log.</summary>
    internal static string ToLogPath(string relativePath)
    {
        ArgumentNullException.ThrowIfNull(relativePath);
        StringBuilder? builder = null;
        for (var i = 0; i < relativePath.Length; i++)
        {
            var c = relativePath[i];
            if (c >= 0x80 || IsUriPathChar(c))
            {
                builder?.Append(c);
                continue;
            }

            builder ??= new StringBuilder(relativePath, 0, i, relativePath.Length + 16);
            builder.Append('%').Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
        }

        return builder?.ToString() ?? relativePath;
    }

    /// <summary>Decodes a log path back to a file path; <c>file:</c> URIs become local paths.</summary>
    internal static string FromLogPath(string logPath)
    {
        ArgumentNullException.ThrowIfNull(logPath);
        if (logPath.StartsWith("file:", StringComparison.OrdinalIgnoreCase) && Uri.TryCreate(logPath, UriKind.Absolute, out var uri))
        {
            return uri.LocalPath;
        }

        return Uri.UnescapeDataString(logPath);
    }

    internal static string EscapePathSegment(string value)
    {
        StringBuilder? builder = null;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (!NeedsHiveEscape(c))
            {
                builder?.Append(c);
                continue;
            }

            builder ??= new StringBuilder(value, 0, i, value.Length + 8);
            builder.Append('%').Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
        }

        return builder?.ToString() ?? value;
    }

    /// <summary>
    /// Hidden names are never data: they start with '.' or '_' (<c>_delta_log</c>, <c>.crc</c> files, temp files),
    /// except a partition directory such as <c>_2=x</c> whose column starts with '_'.
    /// </summary>
    internal static bool IsHiddenName(string name, IReadOnlyList<string> partitionColumns)
    {
        if (name.StartsWith('.'))
        {
            return true;
        }

        if (!name.StartsWith('_'))
        {
            return false;
        }

        foreach (var column in partitionColumns)
        {
            var prefix = EscapePathSegment(column) + "=";
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Null when <paramref name="path"/> is a valid relative data-file path for the table, else the problem:
    /// '/'-separated, relative, no empty, '.' or '..' segments, no hidden file or directory.
    /// </summary>
    internal static string? CheckDataFilePath(string path, IReadOnlyList<string> partitionColumns)
    {
        if (string.IsNullOrEmpty(path))
        {
            return "the path is empty";
        }

        if (path.Contains('\\', StringComparison.Ordinal) || path.StartsWith('/') || Path.IsPathRooted(path) || path.Contains(':', StringComparison.Ordinal))
        {
            return "the path must be relative to the table root and use '/' separators";
        }

        var segments = path.Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            if (segment.Length == 0 || segment == "." || segment == "..")
            {
                return "the path has an empty, '.' or '..' segment";
            }

            var isFileName = i == segments.Length - 1;
            if (isFileName ? segment[0] is '.' or '_' : IsHiddenName(segment, partitionColumns))
            {
                return $"'{segment}' is a hidden name (starting with '.' or '_'), which readers and vacuum skip";
            }
        }

        return null;
    }

    private static bool NeedsHiveEscape(char c) =>
        c is (>= '\u0001' and <= '\u001F') or '"' or '#' or '%' or '\'' or '*' or '/' or ':' or '=' or '?' or '\\' or '\u007F' or '{' or '[' or ']' or '^';

    // RFC 2396 characters allowed unescaped in a path: unreserved, the path punctuation, and '/'.
    // ':' is escaped too, so a relative path can never be mistaken for one with a URI scheme.
    private static bool IsUriPathChar(char c) =>
        char.IsAsciiLetterOrDigit(c)
        || c is '-' or '_' or '.' or '!' or '~' or '*' or '\'' or '(' or ')'
        || c is ';' or '@' or '&' or '=' or '+' or '$' or ',' or '/';
}
