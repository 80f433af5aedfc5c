using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Weft.Streaming.Embedded;

/// <summary>
/// A consumer group's committed position: <c>groups/&lt;group&gt;.offset</c>, a one-line JSON object
/// <c>{"group":"g1","next_offset":120,"committed_at_micros":…}</c>, replaced atomically on each
/// commit. <c>next_offset</c> is the first offset the group has not processed.
/// </summary>
internal static class GroupOffsetFile
{
    public static byte[] Format(string group, long nextOffset, long committedAtMicros) =>
        Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"{{\"group\":\"{group}\",\"next_offset\":{nextOffset},\"committed_at_micros\":{committedAtMicros}}}\n"));

    public static async ValueTask WriteAsync(string groupsDirectory, string group, long nextOffset, long committedAtMicros, CancellationToken cancellationToken)
    {
        var path = Path.Combine(groupsDirectory, LogFormat.GroupFileName(group));
        await DurableFiles.ReplaceAtomicallyAsync(path, Format(group, nextOffset, committedAtMicros), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads every group's committed offset; removes temp files a crash left behind.</summary>
    public static async ValueTask<Dictionary<string, long>> LoadAllAsync(string groupsDirectory, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(groupsDirectory))
        {
            var name = Path.GetFileName(path);
            if (name.EndsWith(LogFormat.TempExtension, StringComparison.Ordinal))
            {
                File.Delete(path);
                continue;
            }

            if (!name.EndsWith(LogFormat.GroupFileExtension, StringComparison.Ordinal))
            {
                continue;
            }

            var group = name[..^LogFormat.GroupFileExtension.Length];
            if (!LogFormat.IsValidGroupName(group))
            {
                continue;
            }

            var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            result[group] = Parse(path, group, bytes);
        }

        return result;
    }

    private static long Parse(string path, string group, byte[] bytes)
    {
        try
        {
            using var document = JsonDocument.Parse(bytes);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("group", out var g) && g.ValueKind == JsonValueKind.String && g.GetString() == group
                && root.TryGetProperty("next_offset", out var next) && next.TryGetInt64(out var nextOffset) && nextOffset >= 0)
            {
                return nextOffset;
            }
        }
        catch (JsonException)
        {
            // Reported below with the file name.
        }

        throw new EmbeddedLogCorruptionException(path, 0, $"it is not a consumer group offset file for group '{group}' (expected {{\"group\":\"{group}\",\"next_offset\":N,…}})");
    }
}
