using System.Security.Cryptography;
using System.Text.Json;

namespace Weft.Storage;

/// <summary>
/// Values that readers compute from a table's whole commit history, kept so that the next reader only
/// folds the commits after them: say, the newest offset per partition a stream has committed, which a
/// stream restarting after a month would otherwise gather from ~500,000 commit summaries. A fold named N
/// over the commits 0…V lives in <c>_delta_log/_weft_folds/N.json</c> with V and the length and SHA-256
/// of V's commit file. Like the log snapshots it is only a shortcut: one that is missing, damaged, or
/// whose commit file no longer matches (the table deleted and made again) is ignored. What a value means
/// is the caller's; the fold of any prefix of the log is correct, so writers never need to agree.
/// </summary>
internal sealed class LogFolds(string logDirectory)
{
    public const string DirectoryName = "_weft_folds";

    private readonly string _directory = Path.Combine(logDirectory, DirectoryName);

    /// <summary>The fold <paramref name="name"/> and the version it covers, or null when there is none usable.</summary>
    public async Task<(long Version, string Value)?> TryReadAsync(string name, IDeltaLogStore store, CancellationToken cancellationToken)
    {
        try
        {
            var bytes = await File.ReadAllBytesAsync(PathOf(name), cancellationToken).ConfigureAwait(false);
            var fold = JsonSerializer.Deserialize(bytes, DeltaJsonContext.Default.FoldFile);
            if (fold is null || fold.Version < 0
                || await store.ReadAsync(fold.Version, cancellationToken).ConfigureAwait(false) is not { } entry
                || entry.Content.Length != fold.EntryLength || Convert.ToHexString(SHA256.HashData(entry.Content)) != fold.EntrySha256)
            {
                return null;
            }

            return (fold.Version, fold.Value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Keeps <paramref name="value"/> as the fold <paramref name="name"/> over the commits 0…<paramref name="entry"/>'s version.</summary>
    public async Task WriteAsync(string name, LogEntry entry, string value, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_directory);
        var content = JsonSerializer.SerializeToUtf8Bytes(new FoldFile(entry.Version, entry.Content.Length, Convert.ToHexString(SHA256.HashData(entry.Content)), value), DeltaJsonContext.Default.FoldFile);
        await LogSnapshots.PublishAsync(_directory, PathOf(name), content, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Throws when <paramref name="name"/> is not a plain file name (letters, digits, '-', '_', '.').</summary>
    public static void Validate(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 100 || name[0] == '.' || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ArgumentException($"A fold name is letters, digits, '-', '_' and '.', not starting with '.': '{name}'.", nameof(name));
        }
    }

    private string PathOf(string name) => Path.Combine(_directory, name + ".json");
}

/// <summary>One fold file.</summary>
internal sealed record FoldFile(long Version, long EntryLength, string EntrySha256, string Value);
