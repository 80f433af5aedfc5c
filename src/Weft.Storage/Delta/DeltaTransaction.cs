namespace Weft.Storage;

/// <summary>
/// A frozen set of changes to commit atomically: files to add, files to remove, and optionally
/// partitions to replace. Built with <see cref="DeltaTransactionBuilder"/>.
/// </summary>
public sealed class DeltaTransaction
{
    internal DeltaTransaction(
        string operation,
        IReadOnlyDictionary<string, string> parameters,
        DeltaSchema? writerSchema,
        IReadOnlyList<AddFile> adds,
        IReadOnlyList<string> removes,
        PartitionFilter? replacedPartitions,
        bool dataChange,
        CommitOnce? once)
    {
        DataChange = dataChange;
        Once = once;
        Operation = operation;
        Parameters = parameters;
        WriterSchema = writerSchema;
        Adds = adds;
        Removes = removes;
        ReplacedPartitions = replacedPartitions;
    }

    /// <summary>Starts a transaction; <paramref name="operation"/> is recorded as <c>commitInfo.operation</c> (e.g. <c>WRITE</c>).</summary>
    public static DeltaTransactionBuilder Create(string operation) => new(operation);

    public string Operation { get; }

    /// <summary><c>commitInfo.operationParameters</c>.</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; }

    /// <summary>The schema the new files were written with; checked against the table's.</summary>
    public DeltaSchema? WriterSchema { get; }

    public IReadOnlyList<AddFile> Adds { get; }

    /// <summary>Relative paths of active files to remove.</summary>
    public IReadOnlyList<string> Removes { get; }

    /// <summary>When set, every file active in these partitions at commit time is removed.</summary>
    public PartitionFilter? ReplacedPartitions { get; }

    /// <summary>True when the transaction only adds files.</summary>
    public bool IsBlindAppend => Removes.Count == 0 && ReplacedPartitions is null;

    /// <summary>False for a commit that only rearranges rows (compaction): its add and remove actions say <c>dataChange: false</c>.</summary>
    public bool DataChange { get; }

    /// <summary>When set, the commit happens only if no other records the same parameter value (<see cref="CommitOnce"/>).</summary>
    public CommitOnce? Once { get; }
}

/// <summary>
/// A commit that must land at most once: it records <paramref name="Parameter"/> = <paramref name="Value"/>
/// in <c>commitInfo.operationParameters</c> and fails with <see cref="ConcurrentModificationException"/> if
/// a commit after <paramref name="CheckedThrough"/> records the same. The writer looked through the log up
/// to that version for an earlier commit of the same work and found none; two writers of that work (a
/// command started twice, the processes of one group) that both found none then commit it once, since
/// appends otherwise never conflict.
/// </summary>
public sealed record CommitOnce(string Parameter, string Value, long CheckedThrough);

/// <summary>Mutable builder of a <see cref="DeltaTransaction"/>.</summary>
public sealed class DeltaTransactionBuilder
{
    private readonly string _operation;
    private readonly Dictionary<string, string> _parameters = new(StringComparer.Ordinal);
    private readonly List<AddFile> _adds = [];
    private readonly List<string> _removes = [];
    private DeltaSchema? _writerSchema;
    private PartitionFilter? _replaced;
    private bool _dataChange = true;
    private CommitOnce? _once;

    public DeltaTransactionBuilder(string operation)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(operation);
        _operation = operation;
    }

    /// <summary>The schema the added files were written with. Required when the transaction adds files.</summary>
    public DeltaTransactionBuilder WithWriterSchema(DeltaSchema schema)
    {
        _writerSchema = schema ?? throw new ArgumentNullException(nameof(schema));
        return this;
    }

    /// <summary>Adds an entry to <c>commitInfo.operationParameters</c>.</summary>
    public DeltaTransactionBuilder WithParameter(string name, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(value);
        _parameters[name] = value;
        return this;
    }

    public DeltaTransactionBuilder Add(AddFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        _adds.Add(file);
        return this;
    }

    public DeltaTransactionBuilder Add(IEnumerable<AddFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        foreach (var file in files)
        {
            Add(file);
        }

        return this;
    }

    /// <summary>Removes an active file (relative path as listed by the snapshot).</summary>
    public DeltaTransactionBuilder Remove(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _removes.Add(path);
        return this;
    }

    /// <summary>
    /// Replaces the partitions <paramref name="partitions"/> matches: all their active files are removed
    /// and <paramref name="newFiles"/> (which must lie in those partitions) added, in one commit.
    /// </summary>
    public DeltaTransactionBuilder ReplacePartitions(PartitionFilter partitions, IEnumerable<AddFile> newFiles)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        if (_replaced is not null)
        {
            throw new InvalidOperationException("A transaction replaces one set of partitions; combine the conditions in one filter.");
        }

        _replaced = partitions;
        return Add(newFiles);
    }

    /// <summary>Marks the commit as a rearrangement of existing rows (e.g. compaction): no row is added or removed.</summary>
    public DeltaTransactionBuilder WithoutDataChange()
    {
        _dataChange = false;
        return this;
    }

    /// <summary>Commits only if no commit after <see cref="CommitOnce.CheckedThrough"/> records the same parameter value; records it too.</summary>
    public DeltaTransactionBuilder Once(CommitOnce once)
    {
        ArgumentNullException.ThrowIfNull(once);
        ArgumentOutOfRangeException.ThrowIfLessThan(once.CheckedThrough, -1);
        WithParameter(once.Parameter, once.Value);
        _once = once;
        return this;
    }

    /// <summary>Freezes the transaction; checks for duplicate paths.</summary>
    public DeltaTransaction Build()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in _adds)
        {
            if (!seen.Add(file.Path))
            {
                throw new ArgumentException($"File '{file.Path}' is added twice in one transaction.");
            }
        }

        foreach (var path in _removes)
        {
            if (seen.Contains(path))
            {
                throw new ArgumentException($"File '{path}' is both added and removed in one transaction.");
            }
        }

        if (_removes.Distinct(StringComparer.Ordinal).Count() != _removes.Count)
        {
            throw new ArgumentException("A file is removed twice in one transaction.");
        }

        return new DeltaTransaction(
            _operation,
            new Dictionary<string, string>(_parameters, StringComparer.Ordinal),
            _writerSchema,
            [.. _adds],
            [.. _removes],
            _replaced,
            _dataChange,
            _once);
    }
}
