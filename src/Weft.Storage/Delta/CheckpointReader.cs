using System.Diagnostics.CodeAnalysis;
using Weft.Parquet;

namespace Weft.Storage;

/// <summary>
/// Reads a checkpoint: a classic one (one Parquet file, or every part of a multi-part one) or a UUID-named
/// one (V2 spec: one JSON or Parquet file), whose rows each hold one action as a struct column
/// (<c>protocol</c>, <c>metaData</c>, <c>add</c>, <c>remove</c>, <c>txn</c>, …; PROTOCOL.md "Checkpoint
/// Schema"), plus the sidecar files a V2-spec checkpoint keeps its adds and removes in
/// (<c>_delta_log/_sidecars/</c>). Weft's Parquet reader exposes a struct's fields as dotted columns
/// (<c>add.path</c>) and a map as two lists (<c>add.partitionValues.key</c> / <c>.value</c>). The
/// checkpoint is the table's reconciled state at its version: the protocol, the metadata and the adds,
/// plus removes that are tombstones (kept so that a checkpoint Weft writes later carries them forward, as
/// the protocol asks); domainMetadata and the rest are ignored as in JSON entries.
/// </summary>
internal static class CheckpointReader
{
    private static readonly IReadOnlyDictionary<string, string> NoStrings = new Dictionary<string, string>();

    /// <summary>
    /// The checkpoint's actions (one protocol, one metaData, the adds) and the newest modification time of
    /// its parts. Throws <see cref="DeltaLogException"/> naming the part at fault when a part is missing,
    /// is not Parquet Weft can read, lacks a column the protocol requires, or the checkpoint does not hold
    /// exactly one protocol and one metaData.
    /// </summary>
    public static async Task<(List<DeltaAction> Actions, DateTimeOffset LastModified)> ReadAsync(
        IDeltaLogStore store, string tablePath, IReadOnlyList<CheckpointFile> parts, CancellationToken cancellationToken)
    {
        var actions = new List<DeltaAction>();
        var lastModified = DateTimeOffset.MinValue;
        int protocols = 0, metadatas = 0;
        foreach (var part in parts)
        {
            var file = store.DescribeFile(part.FileName);
            var opened = await store.OpenFileAsync(part.FileName, cancellationToken).ConfigureAwait(false)
                ?? throw new DeltaLogException(tablePath, file, $"Checkpoint file '{file}' is missing.");
            lastModified = opened.LastModified > lastModified ? opened.LastModified : lastModified;
            if (part.FileName.EndsWith(".json", StringComparison.Ordinal))
            {
                await ReadJsonAsync(opened.Content, file, tablePath, actions, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ReadParquetAsync(opened.Content, file, "checkpoint", tablePath, actions, cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var action in actions)
        {
            protocols += action is ProtocolAction ? 1 : 0;
            metadatas += action is MetadataAction ? 1 : 0;
        }

        if (protocols != 1 || metadatas != 1)
        {
            var file = store.DescribeFile(parts[0].FileName);
            throw new DeltaLogException(tablePath, file,
                $"Checkpoint of version {parts[0].Version} ('{file}'{(parts.Count > 1 ? $" and {parts.Count - 1} more parts" : "")}) holds {protocols} protocol and {metadatas} metaData actions; a checkpoint holds exactly one of each.");
        }

        // A V2-spec checkpoint (UUID-named, or classic-named in a table with v2Checkpoint) may keep its
        // adds and removes in sidecar files: they are part of the checkpoint, and a reader that skipped
        // them would see a table without its files.
        var sidecars = actions.OfType<SidecarAction>().ToList();
        foreach (var sidecar in sidecars)
        {
            var name = SidecarFileName(store, tablePath, parts[0], sidecar);
            var file = store.DescribeFile(name);
            var opened = await store.OpenFileAsync(name, cancellationToken).ConfigureAwait(false)
                ?? throw new DeltaLogException(tablePath, file, $"Sidecar file '{file}' of the checkpoint '{store.DescribeFile(parts[0].FileName)}' is missing.");
            var before = actions.Count;
            await ReadParquetAsync(opened.Content, file, "sidecar", tablePath, actions, cancellationToken).ConfigureAwait(false);
            for (int i = before; i < actions.Count; i++)
            {
                if (actions[i] is not (AddAction or RemoveAction))
                {
                    throw new DeltaLogException(tablePath, file, $"Sidecar file '{file}' holds a {actions[i].GetType().Name.Replace("Action", "", StringComparison.Ordinal)} action; a sidecar holds only add and remove actions.");
                }
            }
        }

        return (actions, lastModified);
    }

    /// <summary>
    /// The name, relative to the log directory, of <paramref name="sidecar"/>'s file: <c>_sidecars/&lt;name&gt;</c>.
    /// The protocol names a sidecar by its file name in <c>_delta_log/_sidecars</c>, or by an absolute URI,
    /// which must then point into that folder.
    /// </summary>
    private static string SidecarFileName(IDeltaLogStore store, string tablePath, CheckpointFile checkpoint, SidecarAction sidecar)
    {
        var path = DeltaPaths.FromLogPath(sidecar.Path);
        string name = Path.IsPathFullyQualified(path)
            ? (string.Equals(Path.GetDirectoryName(Path.GetFullPath(path)), Path.GetFullPath(store.DescribeFile(SidecarDirectory)), StringComparison.Ordinal) ? Path.GetFileName(path) : "")
            : path;
        if (name.Length == 0 || name is "." or ".." || name.Contains('/', StringComparison.Ordinal) || name.Contains('\\', StringComparison.Ordinal))
        {
            var file = store.DescribeFile(checkpoint.FileName);
            throw new DeltaLogException(tablePath, file, $"Checkpoint '{file}' names sidecar '{sidecar.Path}', which is not a file in '{store.DescribeFile(SidecarDirectory)}'.");
        }

        return SidecarDirectory + "/" + name;
    }

    private const string SidecarDirectory = "_sidecars";

    private static async Task ReadJsonAsync(Stream content, string file, string tablePath, List<DeltaAction> actions, CancellationToken cancellationToken)
    {
        byte[] bytes;
        await using (content.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            await content.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            bytes = buffer.ToArray();
        }

        try
        {
            actions.AddRange(DeltaActionCodec.Parse(bytes));
        }
        catch (FormatException e)
        {
            throw new DeltaLogException(tablePath, file, $"Cannot read checkpoint file '{file}': {e.Message}", e);
        }
    }

    /// <summary>Adds the actions of a checkpoint or sidecar Parquet file (<paramref name="kind"/> names which in errors).</summary>
    private static async Task ReadParquetAsync(Stream content, string file, string kind, string tablePath, List<DeltaAction> actions, CancellationToken cancellationToken)
    {
        try
        {
            await using var owned = content.ConfigureAwait(false);
            await using var reader = await ParquetFileReader.OpenAsync(content, file, cancellationToken).ConfigureAwait(false);
            for (int rowGroup = 0; rowGroup < reader.RowGroups.Count; rowGroup++)
            {
                var columns = new Columns(reader, rowGroup, file, tablePath);
                await columns.ReadAsync(cancellationToken).ConfigureAwait(false);
                columns.AddActions(actions);
            }
        }
        catch (Exception e) when (e is ParquetFormatException or NotSupportedException or InvalidOperationException or IOException)
        {
            throw new DeltaLogException(tablePath, file, $"Cannot read {kind} file '{file}': {e.Message}", e);
        }
    }

    /// <summary>The columns of one row group that Weft reads; an optional column the file lacks stays null.</summary>
    private sealed class Columns(ParquetFileReader reader, int rowGroup, string file, string tablePath)
    {
        private ParquetColumnData? _protocolReader, _protocolWriter, _readerFeatures, _writerFeatures;
        private ParquetColumnData? _metaId, _metaName, _metaDescription, _provider, _optionKeys, _optionValues, _schemaString;
        private ParquetColumnData? _partitionColumns, _configKeys, _configValues, _createdTime;
        private ParquetColumnData? _addPath, _partitionKeys, _partitionValues, _size, _modificationTime, _dataChange, _stats, _tagKeys, _tagValues;
        private ParquetColumnData? _removePath, _removeTime, _removeChange, _removeExtended, _removeKeys, _removeValues, _removeSize;
        private VectorColumns? _addVector, _removeVector;
        private ParquetColumnData? _sidecarPath, _sidecarSize, _sidecarTime, _checkpointVersion;
        private ParquetColumnData? _txnAppId, _txnVersion, _txnLastUpdated;

        public async Task ReadAsync(CancellationToken cancellationToken)
        {
            // A checkpoint of a table without adds may have no add column at all; protocol and metaData
            // are in every checkpoint (checked by the caller's count).
            _protocolReader = await OptionalAsync("protocol.minReaderVersion", cancellationToken).ConfigureAwait(false);
            _protocolWriter = await OptionalAsync("protocol.minWriterVersion", cancellationToken).ConfigureAwait(false);
            _readerFeatures = await OptionalAsync("protocol.readerFeatures", cancellationToken).ConfigureAwait(false);
            _writerFeatures = await OptionalAsync("protocol.writerFeatures", cancellationToken).ConfigureAwait(false);
            _metaId = await OptionalAsync("metaData.id", cancellationToken).ConfigureAwait(false);
            _metaName = await OptionalAsync("metaData.name", cancellationToken).ConfigureAwait(false);
            _metaDescription = await OptionalAsync("metaData.description", cancellationToken).ConfigureAwait(false);
            _provider = await OptionalAsync("metaData.format.provider", cancellationToken).ConfigureAwait(false);
            _optionKeys = await OptionalAsync("metaData.format.options.key", cancellationToken).ConfigureAwait(false);
            _optionValues = await OptionalAsync("metaData.format.options.value", cancellationToken).ConfigureAwait(false);
            _schemaString = await OptionalAsync("metaData.schemaString", cancellationToken).ConfigureAwait(false);
            _partitionColumns = await OptionalAsync("metaData.partitionColumns", cancellationToken).ConfigureAwait(false);
            _configKeys = await OptionalAsync("metaData.configuration.key", cancellationToken).ConfigureAwait(false);
            _configValues = await OptionalAsync("metaData.configuration.value", cancellationToken).ConfigureAwait(false);
            _createdTime = await OptionalAsync("metaData.createdTime", cancellationToken).ConfigureAwait(false);
            _addPath = await OptionalAsync("add.path", cancellationToken).ConfigureAwait(false);
            if (_addPath is not null)
            {
                _partitionKeys = await OptionalAsync("add.partitionValues.key", cancellationToken).ConfigureAwait(false);
                _partitionValues = await OptionalAsync("add.partitionValues.value", cancellationToken).ConfigureAwait(false);
                _size = await OptionalAsync("add.size", cancellationToken).ConfigureAwait(false);
                _modificationTime = await OptionalAsync("add.modificationTime", cancellationToken).ConfigureAwait(false);
                _dataChange = await OptionalAsync("add.dataChange", cancellationToken).ConfigureAwait(false);
                _stats = await OptionalAsync("add.stats", cancellationToken).ConfigureAwait(false);
                _tagKeys = await OptionalAsync("add.tags.key", cancellationToken).ConfigureAwait(false);
                _tagValues = await OptionalAsync("add.tags.value", cancellationToken).ConfigureAwait(false);
                _addVector = await VectorColumnsAsync("add", cancellationToken).ConfigureAwait(false);
            }

            _sidecarPath = await OptionalAsync("sidecar.path", cancellationToken).ConfigureAwait(false);
            if (_sidecarPath is not null)
            {
                _sidecarSize = await OptionalAsync("sidecar.sizeInBytes", cancellationToken).ConfigureAwait(false);
                _sidecarTime = await OptionalAsync("sidecar.modificationTime", cancellationToken).ConfigureAwait(false);
            }

            _checkpointVersion = await OptionalAsync("checkpointMetadata.version", cancellationToken).ConfigureAwait(false);
            _txnAppId = await OptionalAsync("txn.appId", cancellationToken).ConfigureAwait(false);
            if (_txnAppId is not null)
            {
                _txnVersion = await OptionalAsync("txn.version", cancellationToken).ConfigureAwait(false);
                _txnLastUpdated = await OptionalAsync("txn.lastUpdated", cancellationToken).ConfigureAwait(false);
            }

            _removePath = await OptionalAsync("remove.path", cancellationToken).ConfigureAwait(false);
            if (_removePath is not null)
            {
                _removeTime = await OptionalAsync("remove.deletionTimestamp", cancellationToken).ConfigureAwait(false);
                _removeChange = await OptionalAsync("remove.dataChange", cancellationToken).ConfigureAwait(false);
                _removeExtended = await OptionalAsync("remove.extendedFileMetadata", cancellationToken).ConfigureAwait(false);
                _removeKeys = await OptionalAsync("remove.partitionValues.key", cancellationToken).ConfigureAwait(false);
                _removeValues = await OptionalAsync("remove.partitionValues.value", cancellationToken).ConfigureAwait(false);
                _removeSize = await OptionalAsync("remove.size", cancellationToken).ConfigureAwait(false);
                _removeVector = await VectorColumnsAsync("remove", cancellationToken).ConfigureAwait(false);
            }
        }

        public void AddActions(List<DeltaAction> actions)
        {
            int rows = checked((int)reader.RowGroups[rowGroup].RowCount);
            for (int row = 0; row < rows; row++)
            {
                if (Present(_protocolReader, row))
                {
                    actions.Add(new ProtocolAction(
                        checked((int)Long(_protocolReader, row, "protocol.minReaderVersion")),
                        checked((int)Long(Required(_protocolWriter, "protocol.minWriterVersion"), row, "protocol.minWriterVersion")),
                        StringList(_readerFeatures, row),
                        StringList(_writerFeatures, row)));
                }

                if (Present(_metaId, row))
                {
                    var provider = Str(Required(_provider, "metaData.format.provider"), row, "metaData.format.provider");
                    actions.Add(new MetadataAction(
                        Str(_metaId, row, "metaData.id"),
                        new FormatSpec(provider, Map(_optionKeys, _optionValues, row) ?? NoStrings),
                        Str(Required(_schemaString, "metaData.schemaString"), row, "metaData.schemaString"),
                        StringList(Required(_partitionColumns, "metaData.partitionColumns"), row) ?? [],
                        Map(_configKeys, _configValues, row) ?? NoStrings,
                        Present(_createdTime, row) ? Long(_createdTime, row, "metaData.createdTime") : null,
                        Present(_metaName, row) ? Str(_metaName, row, "metaData.name") : null,
                        Present(_metaDescription, row) ? Str(_metaDescription, row, "metaData.description") : null));
                }

                if (Present(_addPath, row))
                {
                    actions.Add(new AddAction(
                        Str(_addPath, row, "add.path"),
                        PartitionValues(row),
                        Long(Required(_size, "add.size"), row, "add.size"),
                        Long(Required(_modificationTime, "add.modificationTime"), row, "add.modificationTime"),
                        Present(_dataChange, row) && _dataChange!.GetValues<bool>()[row],
                        Present(_stats, row) ? Str(_stats, row, "add.stats") : null,
                        Map(_tagKeys, _tagValues, row),
                        Vector(_addVector, row, "add")));
                }

                if (Present(_sidecarPath, row))
                {
                    actions.Add(new SidecarAction(
                        Str(_sidecarPath, row, "sidecar.path"),
                        Present(_sidecarSize, row) ? Long(_sidecarSize, row, "sidecar.sizeInBytes") : 0,
                        Present(_sidecarTime, row) ? Long(_sidecarTime, row, "sidecar.modificationTime") : 0));
                }

                if (Present(_checkpointVersion, row))
                {
                    actions.Add(new CheckpointMetadataAction(Long(_checkpointVersion, row, "checkpointMetadata.version")));
                }

                if (Present(_txnAppId, row))
                {
                    actions.Add(new TxnAction(
                        Str(_txnAppId, row, "txn.appId"),
                        Long(Required(_txnVersion, "txn.version"), row, "txn.version"),
                        Present(_txnLastUpdated, row) ? Long(_txnLastUpdated, row, "txn.lastUpdated") : null));
                }

                if (Present(_removePath, row))
                {
                    actions.Add(new RemoveAction(
                        Str(_removePath, row, "remove.path"),
                        Present(_removeTime, row) ? Long(_removeTime, row, "remove.deletionTimestamp") : null,
                        Present(_removeChange, row) && _removeChange.GetValues<bool>()[row],
                        Present(_removeExtended, row) ? _removeExtended.GetValues<bool>()[row] : null,
                        Map<string?>(_removeKeys, _removeValues, row),
                        Present(_removeSize, row) ? Long(_removeSize, row, "remove.size") : null,
                        Vector(_removeVector, row, "remove")));
                }
            }
        }

        /// <summary>The leaves of an action's <c>deletionVector</c> struct, or null when the checkpoint has none.</summary>
        private async Task<VectorColumns?> VectorColumnsAsync(string action, CancellationToken cancellationToken)
        {
            var storageType = await OptionalAsync($"{action}.deletionVector.storageType", cancellationToken).ConfigureAwait(false);
            if (storageType is null)
            {
                return null;
            }

            return new VectorColumns(
                storageType,
                await OptionalAsync($"{action}.deletionVector.pathOrInlineDv", cancellationToken).ConfigureAwait(false),
                await OptionalAsync($"{action}.deletionVector.offset", cancellationToken).ConfigureAwait(false),
                await OptionalAsync($"{action}.deletionVector.sizeInBytes", cancellationToken).ConfigureAwait(false),
                await OptionalAsync($"{action}.deletionVector.cardinality", cancellationToken).ConfigureAwait(false));
        }

        /// <summary>The deletion vector of one row's action; null when the struct is null there.</summary>
        private DeletionVectorDescriptor? Vector(VectorColumns? columns, int row, string action)
        {
            if (columns is null || !Present(columns.StorageType, row))
            {
                return null;
            }

            string prefix = action + ".deletionVector.";
            return new DeletionVectorDescriptor(
                Str(columns.StorageType, row, prefix + "storageType"),
                Str(Required(columns.PathOrInlineDv, prefix + "pathOrInlineDv"), row, prefix + "pathOrInlineDv"),
                checked((int)Long(Required(columns.SizeInBytes, prefix + "sizeInBytes"), row, prefix + "sizeInBytes")),
                Long(Required(columns.Cardinality, prefix + "cardinality"), row, prefix + "cardinality"),
                Present(columns.Offset, row) ? checked((int)Long(columns.Offset, row, prefix + "offset")) : null);
        }

        private sealed record VectorColumns(
            ParquetColumnData StorageType, ParquetColumnData? PathOrInlineDv, ParquetColumnData? Offset, ParquetColumnData? SizeInBytes, ParquetColumnData? Cardinality);

        private async Task<ParquetColumnData?> OptionalAsync(string column, CancellationToken cancellationToken) =>
            reader.Schema.IndexOf(column) < 0 ? null : await reader.ReadColumnAsync(rowGroup, column, cancellationToken).ConfigureAwait(false);

        private ParquetColumnData Required(ParquetColumnData? column, string name) =>
            column ?? throw new DeltaLogException(tablePath, file,
                $"Checkpoint file '{file}' has no readable column '{name}'{(reader.UnsupportedColumns.TryGetValue(name, out var why) ? $" ({why})" : "")}, which the Delta protocol requires.");

        private static bool Present([NotNullWhen(true)] ParquetColumnData? column, int row) => column is not null && !column.IsNull(row);

        private string Str(ParquetColumnData column, int row, string name) =>
            column.Field.Type == ParquetType.String && !column.Field.IsList && column.GetValues<string>()[row] is { } value
                ? value
                : throw Problem(name, row, column.Field.IsList || column.Field.Type != ParquetType.String ? $"is {column.Field.TypeName}, not a string" : "is null");

        private long Long(ParquetColumnData column, int row, string name)
        {
            if (column.IsNull(row))
            {
                throw Problem(name, row, "is null");
            }

            return column.Field switch
            {
                { IsList: false, Type: ParquetType.Int64 } => column.GetValues<long>()[row],
                { IsList: false, Type: ParquetType.Int32 } => column.GetValues<int>()[row],
                _ => throw Problem(name, row, $"is {column.Field.TypeName}, not an integer"),
            };
        }

        private static IReadOnlyList<string>? StringList(ParquetColumnData? column, int row) =>
            column is null || column.IsNull(row) || column.Field is not { IsList: true, ListDepth: 1, Type: ParquetType.String }
                ? null
                : column.GetList<string>(row).ToArray();

        private IReadOnlyDictionary<string, string?> PartitionValues(int row) =>
            // An unpartitioned table's adds carry an empty map; a null one is read the same way.
            Map<string?>(_partitionKeys, _partitionValues, row) ?? new Dictionary<string, string?>(StringComparer.Ordinal);

        /// <summary>A map column's entries for one row (values may be null); null when the map is null or absent.</summary>
        private Dictionary<string, string>? Map(ParquetColumnData? keys, ParquetColumnData? values, int row) =>
            Map<string>(keys, values, row);

        /// <summary>As <see cref="Map(ParquetColumnData?, ParquetColumnData?, int)"/>, as the dictionary type the action holds (partition values may be null).</summary>
        private Dictionary<string, TValue>? Map<TValue>(ParquetColumnData? keys, ParquetColumnData? values, int row)
            where TValue : class?
        {
            if (keys is null || keys.IsNull(row))
            {
                return null;
            }

            if (values is null || keys.Field.Type != ParquetType.String || values.Field.Type != ParquetType.String)
            {
                throw Problem(keys.Field.Name, row, "is not a map of strings to strings");
            }

            var k = keys.GetList<string>(row);
            var v = values.GetList<string>(row);
            if (k.Length != v.Length)
            {
                throw Problem(keys.Field.Name, row, $"has {k.Length} keys but {v.Length} values");
            }

            var map = new Dictionary<string, TValue>(k.Length, StringComparer.Ordinal);
            for (int i = 0; i < k.Length; i++)
            {
                map[k[i]] = (TValue)(object?)v[i]!; // a null value stays null: partition values may be null
            }

            return map;
        }

        private DeltaLogException Problem(string column, int row, string what) =>
            new(tablePath, file, $"Checkpoint file '{file}', row group {rowGroup}, row {row}: '{column}' {what}.");
    }
}
