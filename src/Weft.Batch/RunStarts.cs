using System.Globalization;
using System.Text;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>
/// Where each batch run's commits begin in a table, kept as a fold of its log (<c>run-starts</c>,
/// <see cref="DeltaTable.ReadFoldAsync"/>): the first version of every run that committed to versions
/// 0…V. A run resumed on a table a stream has committed to for months then reads the commits from its
/// own first one (or from V, when it has none yet), not every commit since version 0.
/// <para>
/// Use: <see cref="ReadAsync"/>, then read the table's commits after <see cref="ReadAfter"/> in order,
/// passing each to <see cref="Observe"/>, then <see cref="KeepAsync"/>. The fold is a pure function of
/// the commits it covers, so any reader may write it; one that is missing or damaged reads as none
/// (the reader starts at version 0, as before).
/// </para>
/// </summary>
internal sealed class RunStarts
{
    internal const string Fold = "run-starts";

    private readonly Dictionary<string, long> _starts;
    private readonly Func<CommitSummary, string?> _runOf;
    private readonly long _foldVersion; // the version the fold read covers, -1 for none
    private long _observed; // the newest commit observed
    private int _read;
    private bool _unkeepable; // a run the fold's format cannot hold was observed

    private RunStarts(Dictionary<string, long> starts, long foldVersion, Func<CommitSummary, string?> runOf)
    {
        _starts = starts;
        _foldVersion = foldVersion;
        _observed = foldVersion;
        _runOf = runOf;
    }

    /// <summary>The fold <paramref name="log"/> keeps, or none; <paramref name="runOf"/> names the run of a commit (null: no run's).</summary>
    public static async Task<RunStarts> ReadAsync(DeltaTable log, Func<CommitSummary, string?> runOf, CancellationToken cancellationToken)
    {
        if (await log.ReadFoldAsync(Fold, cancellationToken).ConfigureAwait(false) is { } fold && TryParse(fold.Value, out var starts))
        {
            return new RunStarts(starts, fold.Version, runOf);
        }

        return new RunStarts(new Dictionary<string, long>(StringComparer.Ordinal), -1, runOf);
    }

    /// <summary>The version after which every commit of <paramref name="run"/> lies.</summary>
    public long ReadAfter(string run) =>
        _starts.TryGetValue(run, out long first) ? Math.Min(first - 1, _foldVersion) : _foldVersion;

    /// <summary>A commit read after <see cref="ReadAfter"/>, oldest first.</summary>
    public void Observe(CommitSummary commit)
    {
        if (commit.Version <= _observed)
        {
            return; // covered by the fold already (a run's own commits before its version)
        }

        if (commit.Version != _observed + 1)
        {
            throw new InvalidOperationException($"Commits must be observed in order: {commit.Version} after {_observed}.");
        }

        _observed = commit.Version;
        _read++;
        if (_runOf(commit) is { } run)
        {
            _unkeepable |= !IsKeepable(run);
            _starts.TryAdd(run, commit.Version);
        }
    }

    /// <summary>Keeps the fold through the newest commit observed, when enough were read since the last one.</summary>
    public async Task KeepAsync(DeltaTable log, CancellationToken cancellationToken)
    {
        if (_read >= DeltaTable.FoldWorthKeeping && !_unkeepable)
        {
            await log.WriteFoldAsync(Fold, _observed, Format(_starts), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Run ids Weft makes are hex; anything else would have to be escaped in the fold, so it is never kept.</summary>
    private static bool IsKeepable(string run) => run.Length > 0 && run.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or ':' or '.');

    internal static string Format(IReadOnlyDictionary<string, long> starts)
    {
        var text = new StringBuilder();
        foreach (var (run, version) in starts.OrderBy(s => s.Value).ThenBy(s => s.Key, StringComparer.Ordinal))
        {
            text.Append(text.Length == 0 ? "" : ",").Append(run).Append('=').Append(version.ToString(CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    internal static bool TryParse(string value, out Dictionary<string, long> starts)
    {
        starts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var entry in value.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int equals = entry.LastIndexOf('=');
            if (equals <= 0 || !long.TryParse(entry.AsSpan(equals + 1), NumberStyles.None, CultureInfo.InvariantCulture, out long version)
                || !starts.TryAdd(entry[..equals], version))
            {
                return false;
            }
        }

        return true;
    }
}
