namespace Weft.Storage;

/// <summary>
/// An immutable view of a table at one version: schema, partitioning, and the active data files
/// (the <c>add</c>s not later removed, replayed from the log).
/// </summary>
public sealed class DeltaSnapshot
{
    private readonly TableState _state;
    private AddFile[]? _sortedFiles;

    internal DeltaSnapshot(string tablePath, TableState state)
    {
        TablePath = tablePath;
        _state = state;
    }

    /// <summary>Root directory of the table.</summary>
    public string TablePath { get; }

    public long Version => _state.Version;

    /// <summary>When this version was committed.</summary>
    public DateTimeOffset Timestamp => _state.Timestamp;

    /// <summary><c>metaData.id</c>, the table's unique identifier.</summary>
    public string TableId => _state.Metadata.Id;

    public DeltaSchema Schema => _state.Schema;

    public IReadOnlyList<string> PartitionColumns => _state.Metadata.PartitionColumns;

    /// <summary><c>metaData.configuration</c> (table properties such as <c>delta.appendOnly</c>).</summary>
    public IReadOnlyDictionary<string, string> Configuration => _state.Metadata.Configuration;

    /// <summary>Number of active files.</summary>
    public int FileCount => _state.Files.Count;

    internal TableState State => _state;

    /// <summary>How the table's columns are named in its files, partition values and statistics.</summary>
    internal ColumnMapping Mapping => _state.Mapping;

    /// <summary>
    /// The active files, ordered by path, pruned to the partitions <paramref name="filter"/> matches
    /// (all files when null). The filter may only name partition columns.
    /// </summary>
    public IReadOnlyList<AddFile> Files(PartitionFilter? filter = null)
    {
        var all = _sortedFiles ??= [.. _state.Files.Values.OrderBy(f => f.Path, StringComparer.Ordinal)];
        if (filter is null || filter.IsAll)
        {
            return all;
        }

        filter.Validate(PartitionColumns, TablePath);
        var result = new List<AddFile>();
        foreach (var file in all)
        {
            if (filter.Matches(Mapping.ByName(file.PartitionValues)))
            {
                result.Add(file);
            }
        }

        return result;
    }

    /// <summary>The absolute path of a data file of this table.</summary>
    public string FullPath(AddFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return Path.GetFullPath(Path.Combine(TablePath, file.Path));
    }
}
