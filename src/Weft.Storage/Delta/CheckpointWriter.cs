using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Weft.Parquet;

namespace Weft.Storage;

/// <summary>
/// Writes a classic (V1 spec) checkpoint of a table version: <c>_delta_log/V.checkpoint.parquet</c>, one
/// action per row in the protocol's checkpoint schema (struct columns txn, add, remove, metaData,
/// protocol; maps for partition values, tags, format options and configuration), then points
/// <c>_delta_log/_last_checkpoint</c> at it. Other engines (Spark, delta-rs, DuckDB's delta extension)
/// start from the newest checkpoint instead of replaying every JSON entry, which for a stream's table
/// (~17,000 commits a day) is the difference between opening it and not. Weft's own opens use its log
/// snapshots, which also hold the commit summaries a checkpoint lacks.
/// </summary>
internal static class CheckpointWriter
{
    private const int RowGroupRows = 65_536;

    // A checkpoint is written in the background of a table's writer (a stream's): one thread, not the cores the stream needs.
    private static readonly ParquetWriterOptions WriterOptions = new() { MaxDegreeOfParallelism = 1 };

    private static readonly ParquetField TxnAppId = Text("txn.appId");
    private static readonly ParquetField TxnVersion = Long("txn.version");
    private static readonly ParquetField TxnLastUpdated = Long("txn.lastUpdated");
    private static readonly ParquetField AddPath = Text("add.path");
    private static readonly ParquetField AddPartitionKeys = MapKeys("add.partitionValues");
    private static readonly ParquetField AddPartitionValues = MapValues("add.partitionValues");
    private static readonly ParquetField AddSize = Long("add.size");
    private static readonly ParquetField AddModificationTime = Long("add.modificationTime");
    private static readonly ParquetField AddDataChange = Flag("add.dataChange");
    private static readonly ParquetField AddStats = Text("add.stats");
    private static readonly ParquetField AddTagKeys = MapKeys("add.tags");
    private static readonly ParquetField AddTagValues = MapValues("add.tags");
    private static readonly ParquetField RemovePath = Text("remove.path");
    private static readonly ParquetField RemoveDeletionTimestamp = Long("remove.deletionTimestamp");
    private static readonly ParquetField RemoveDataChange = Flag("remove.dataChange");
    private static readonly ParquetField RemoveExtended = Flag("remove.extendedFileMetadata");
    private static readonly ParquetField RemovePartitionKeys = MapKeys("remove.partitionValues");
    private static readonly ParquetField RemovePartitionValues = MapValues("remove.partitionValues");
    private static readonly ParquetField RemoveSize = Long("remove.size");
    private static readonly ParquetField MetaId = Text("metaData.id");
    private static readonly ParquetField MetaName = Text("metaData.name");
    private static readonly ParquetField MetaDescription = Text("metaData.description");
    private static readonly ParquetField MetaProvider = Text("metaData.format.provider");
    private static readonly ParquetField MetaOptionKeys = MapKeys("metaData.format.options");
    private static readonly ParquetField MetaOptionValues = MapValues("metaData.format.options");
    private static readonly ParquetField MetaSchemaString = Text("metaData.schemaString");
    private static readonly ParquetField MetaPartitionColumns = new("metaData.partitionColumns", ParquetType.String, Nullable: true, IsList: true);
    private static readonly ParquetField MetaConfigKeys = MapKeys("metaData.configuration");
    private static readonly ParquetField MetaConfigValues = MapValues("metaData.configuration");
    private static readonly ParquetField MetaCreatedTime = Long("metaData.createdTime");
    private static readonly ParquetField ProtocolReader = new("protocol.minReaderVersion", ParquetType.Int32, Nullable: true);
    private static readonly ParquetField ProtocolWriter = new("protocol.minWriterVersion", ParquetType.Int32, Nullable: true);

    /// <summary>The checkpoint schema, fields depth-first in group order (the groups' fields contiguous).</summary>
    public static ParquetSchema Schema { get; } = new(
        [
            TxnAppId, TxnVersion, TxnLastUpdated,
            AddPath, AddPartitionKeys, AddPartitionValues, AddSize, AddModificationTime, AddDataChange, AddStats, AddTagKeys, AddTagValues,
            RemovePath, RemoveDeletionTimestamp, RemoveDataChange, RemoveExtended, RemovePartitionKeys, RemovePartitionValues, RemoveSize,
            MetaId, MetaName, MetaDescription, MetaProvider, MetaOptionKeys, MetaOptionValues, MetaSchemaString, MetaPartitionColumns,
            MetaConfigKeys, MetaConfigValues, MetaCreatedTime,
            ProtocolReader, ProtocolWriter,
        ],
        [
            new ParquetGroup("txn", ParquetGroupKind.Struct, Nullable: true),
            new ParquetGroup("add", ParquetGroupKind.Struct, Nullable: true),
            new ParquetGroup("add.partitionValues", ParquetGroupKind.Map, Nullable: true),
            new ParquetGroup("add.tags", ParquetGroupKind.Map, Nullable: true),
            new ParquetGroup("remove", ParquetGroupKind.Struct, Nullable: true),
            new ParquetGroup("remove.partitionValues", ParquetGroupKind.Map, Nullable: true),
            new ParquetGroup("metaData", ParquetGroupKind.Struct, Nullable: true),
            new ParquetGroup("metaData.format", ParquetGroupKind.Struct, Nullable: true),
            new ParquetGroup("metaData.format.options", ParquetGroupKind.Map, Nullable: true),
            new ParquetGroup("metaData.configuration", ParquetGroupKind.Map, Nullable: true),
            new ParquetGroup("protocol", ParquetGroupKind.Struct, Nullable: true),
        ]);

    /// <summary>
    /// Writes the checkpoint of <paramref name="state"/> with <paramref name="tombstones"/> (the removes
    /// not yet expired) into <paramref name="logDirectory"/>: to a hidden temp file, synced, then published
    /// under its name unless a checkpoint of that version is already there (another writer's holds the
    /// same state). Then moves <c>_last_checkpoint</c> forward. Returns the checkpoint's path.
    /// </summary>
    public static async Task<string> WriteAsync(string logDirectory, TableState state, IReadOnlyList<RemoveAction> tombstones, CancellationToken cancellationToken)
    {
        var final = Path.Combine(logDirectory, DeltaLogNaming.CheckpointFileName(state.Version));
        var temp = Path.Combine(logDirectory, "." + DeltaLogNaming.CheckpointFileName(state.Version) + "." + Guid.NewGuid().ToString("N") + ".tmp");
        var rows = new List<DeltaAction>(state.Files.Count + tombstones.Count + state.Transactions.Count + 2) { state.Protocol, state.Metadata };
        rows.AddRange(state.Transactions.Values.OrderBy(t => t.AppId, StringComparer.Ordinal));
        foreach (var file in state.Files.Values.OrderBy(f => f.Path, StringComparer.Ordinal))
        {
            rows.Add(TableState.ToAddAction(file, file.PartitionValues, dataChange: false));
        }

        rows.AddRange(tombstones);
        long size;
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await using (var writer = await ParquetFileWriter.CreateAsync(stream, Schema, WriterOptions, cancellationToken).ConfigureAwait(false))
                {
                    for (int start = 0; start < rows.Count; start += RowGroupRows)
                    {
                        var (columns, groupNulls) = Columns(rows, start, Math.Min(RowGroupRows, rows.Count - start));
                        await writer.WriteRowGroupAsync(columns, groupNulls, cancellationToken).ConfigureAwait(false);
                    }

                    await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
                }

                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
                size = stream.Length;
            }

            if (!File.Exists(final))
            {
                try
                {
                    File.Move(temp, final, overwrite: false);
                }
                catch (IOException) when (File.Exists(final))
                {
                    // Another writer published this version's checkpoint first: the same state.
                }
            }
        }
        finally
        {
            File.Delete(temp);
        }

        await PointLastCheckpointAsync(logDirectory, state.Version, rows.Count, size, state.Files.Count, cancellationToken).ConfigureAwait(false);
        return final;
    }

    /// <summary>
    /// <c>_last_checkpoint</c> names the newest checkpoint; a reader only takes it as a hint (it lists the
    /// log), so a race between two writers that leaves an older version there costs a reader a longer listing, nothing more.
    /// </summary>
    private static async Task PointLastCheckpointAsync(string logDirectory, long version, int actions, long bytes, int addFiles, CancellationToken cancellationToken)
    {
        var path = Path.Combine(logDirectory, DeltaLogNaming.LastCheckpointFileName);
        try
        {
            if (File.Exists(path) && JsonNode.Parse(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false))?["version"]?.GetValue<long>() >= version)
            {
                return;
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            // A damaged pointer is replaced.
        }

        var content = new JsonObject { ["version"] = version, ["size"] = actions, ["sizeInBytes"] = bytes, ["numOfAddFiles"] = addFiles }.ToJsonString();
        var temp = Path.Combine(logDirectory, "." + DeltaLogNaming.LastCheckpointFileName + "." + Guid.NewGuid().ToString("N") + ".tmp");
        try
        {
            await File.WriteAllTextAsync(temp, content, cancellationToken).ConfigureAwait(false);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>One row group's columns and struct nulls for the actions <paramref name="start"/>…+<paramref name="count"/>.</summary>
    private static (ParquetColumnData[] Columns, Dictionary<string, bool[]> GroupNulls) Columns(List<DeltaAction> rows, int start, int count)
    {
        var txn = new bool[count];
        var add = new bool[count];
        var remove = new bool[count];
        var metadata = new bool[count];
        var format = new bool[count];
        var protocol = new bool[count];
        var txnAppId = new string?[count];
        var txnVersion = new long?[count];
        var txnLastUpdated = new long?[count];
        var addPath = new string?[count];
        var addPartitions = new Map(count);
        var addSize = new long?[count];
        var addTime = new long?[count];
        var addChange = new bool?[count];
        var addStats = new string?[count];
        var addTags = new Map(count);
        var removePath = new string?[count];
        var removeTime = new long?[count];
        var removeChange = new bool?[count];
        var removeExtended = new bool?[count];
        var removePartitions = new Map(count);
        var removeSize = new long?[count];
        var metaId = new string?[count];
        var metaName = new string?[count];
        var metaDescription = new string?[count];
        var provider = new string?[count];
        var options = new Map(count);
        var schemaString = new string?[count];
        var partitionColumns = new string[]?[count];
        var configuration = new Map(count);
        var createdTime = new long?[count];
        var minReader = new int?[count];
        var minWriter = new int?[count];
        for (int i = 0; i < count; i++)
        {
            var action = rows[start + i];
            add[i] = action is not AddAction;
            remove[i] = action is not RemoveAction;
            metadata[i] = format[i] = action is not MetadataAction;
            protocol[i] = action is not ProtocolAction;
            txn[i] = action is not TxnAction;
            switch (action)
            {
                case TxnAction t:
                    txnAppId[i] = t.AppId;
                    txnVersion[i] = t.Version;
                    txnLastUpdated[i] = t.LastUpdated;
                    break;
                case AddAction a:
                    addPath[i] = a.Path;
                    addPartitions.Set(i, a.PartitionValues);
                    addSize[i] = a.Size;
                    addTime[i] = a.ModificationTime;
                    addChange[i] = a.DataChange;
                    addStats[i] = a.Stats;
                    addTags.Set(i, a.Tags);
                    break;
                case RemoveAction r:
                    removePath[i] = r.Path;
                    removeTime[i] = r.DeletionTimestamp;
                    removeChange[i] = r.DataChange;
                    removeExtended[i] = r.ExtendedFileMetadata;
                    removePartitions.Set(i, r.PartitionValues);
                    removeSize[i] = r.Size;
                    break;
                case MetadataAction m:
                    metaId[i] = m.Id;
                    metaName[i] = m.Name;
                    metaDescription[i] = m.Description;
                    provider[i] = m.Format.Provider;
                    options.Set(i, m.Format.Options);
                    schemaString[i] = m.SchemaString;
                    partitionColumns[i] = [.. m.PartitionColumns];
                    configuration.Set(i, m.Configuration);
                    createdTime[i] = m.CreatedTime;
                    break;
                case ProtocolAction p:
                    minReader[i] = p.MinReaderVersion;
                    minWriter[i] = p.MinWriterVersion;
                    break;
            }
        }

        ParquetColumnData[] columns =
        [
            ParquetColumnData.FromStrings(TxnAppId, txnAppId), ParquetColumnData.FromNullable(TxnVersion, txnVersion), ParquetColumnData.FromNullable(TxnLastUpdated, txnLastUpdated),
            ParquetColumnData.FromStrings(AddPath, addPath), addPartitions.Keys(AddPartitionKeys), addPartitions.Values(AddPartitionValues),
            ParquetColumnData.FromNullable(AddSize, addSize), ParquetColumnData.FromNullable(AddModificationTime, addTime), ParquetColumnData.FromNullable(AddDataChange, addChange),
            ParquetColumnData.FromStrings(AddStats, addStats), addTags.Keys(AddTagKeys), addTags.Values(AddTagValues),
            ParquetColumnData.FromStrings(RemovePath, removePath), ParquetColumnData.FromNullable(RemoveDeletionTimestamp, removeTime),
            ParquetColumnData.FromNullable(RemoveDataChange, removeChange), ParquetColumnData.FromNullable(RemoveExtended, removeExtended),
            removePartitions.Keys(RemovePartitionKeys), removePartitions.Values(RemovePartitionValues), ParquetColumnData.FromNullable(RemoveSize, removeSize),
            ParquetColumnData.FromStrings(MetaId, metaId), ParquetColumnData.FromStrings(MetaName, metaName), ParquetColumnData.FromStrings(MetaDescription, metaDescription),
            ParquetColumnData.FromStrings(MetaProvider, provider), options.Keys(MetaOptionKeys), options.Values(MetaOptionValues),
            ParquetColumnData.FromStrings(MetaSchemaString, schemaString), ParquetColumnData.FromLists(MetaPartitionColumns, partitionColumns),
            configuration.Keys(MetaConfigKeys), configuration.Values(MetaConfigValues), ParquetColumnData.FromNullable(MetaCreatedTime, createdTime),
            ParquetColumnData.FromNullable(ProtocolReader, minReader), ParquetColumnData.FromNullable(ProtocolWriter, minWriter),
        ];
        var groupNulls = new Dictionary<string, bool[]>(StringComparer.Ordinal)
        {
            ["txn"] = txn,
            ["add"] = add,
            ["remove"] = remove,
            ["metaData"] = metadata,
            ["metaData.format"] = format,
            ["protocol"] = protocol,
        };
        return (columns, groupNulls);
    }

    private static ParquetField Text(string name) => new(name, ParquetType.String, Nullable: true);

    private static ParquetField Long(string name) => new(name, ParquetType.Int64, Nullable: true);

    private static ParquetField Flag(string name) => new(name, ParquetType.Boolean, Nullable: true);

    private static ParquetField MapKeys(string map) => new(map + ".key", ParquetType.String, Nullable: true, IsList: true);

    private static ParquetField MapValues(string map) => new(map + ".value", ParquetType.String, Nullable: true, IsList: true, ElementNullable: true);

    /// <summary>A map&lt;string, string&gt; column as the writer takes it: per row, keys and values in the same order; null where the map is.</summary>
    private sealed class Map(int rows)
    {
        private readonly string[]?[] _keys = new string[]?[rows];
        private readonly string?[]?[] _values = new string?[]?[rows];

        public void Set<TValue>(int row, IReadOnlyDictionary<string, TValue>? map)
            where TValue : class?
        {
            if (map is null)
            {
                return;
            }

            var keys = new string[map.Count];
            var values = new string?[map.Count];
            int i = 0;
            foreach (var (key, value) in map.OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                keys[i] = key;
                values[i++] = value as string;
            }

            _keys[row] = keys;
            _values[row] = values;
        }

        public ParquetColumnData Keys(ParquetField field) => ParquetColumnData.FromLists(field, _keys);

        public ParquetColumnData Values(ParquetField field) => ParquetColumnData.FromLists<string>(field, _values!);
    }

    /// <summary>
    /// How long removed files stay tombstoned in checkpoints: the table's <c>delta.deletedFileRetentionDuration</c>,
    /// else (absent or unreadable) the protocol's default of one week.
    /// </summary>
    public static TimeSpan TombstoneRetention(IReadOnlyDictionary<string, string> configuration) =>
        configuration.TryGetValue(DeletedFileRetentionProperty, out var text) && TryParseInterval(text, out var retention) ? retention : TimeSpan.FromDays(7);

    public const string DeletedFileRetentionProperty = "delta.deletedFileRetentionDuration";

    /// <summary>
    /// A Delta duration property as Spark writes and reads it: <c>interval 30 days</c>, <c>30 days</c>, or
    /// several parts (<c>interval 1 week 2 days</c>), in weeks, days, hours, minutes, seconds, milliseconds
    /// or microseconds (singular or plural, any case). Months and years are not durations Delta accepts.
    /// </summary>
    public static bool TryParseInterval(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var at = parts.Length > 0 && parts[0].Equals("interval", StringComparison.OrdinalIgnoreCase) ? 1 : 0;
        if (parts.Length - at < 2 || (parts.Length - at) % 2 != 0)
        {
            return false;
        }

        for (; at < parts.Length; at += 2)
        {
            if (!long.TryParse(parts[at], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                return false;
            }

            var one = parts[at + 1].ToLowerInvariant() switch
            {
                "week" or "weeks" => TimeSpan.FromDays(7),
                "day" or "days" => TimeSpan.FromDays(1),
                "hour" or "hours" => TimeSpan.FromHours(1),
                "minute" or "minutes" => TimeSpan.FromMinutes(1),
                "second" or "seconds" => TimeSpan.FromSeconds(1),
                "millisecond" or "milliseconds" => TimeSpan.FromMilliseconds(1),
                "microsecond" or "microseconds" => TimeSpan.FromMicroseconds(1),
                _ => TimeSpan.Zero,
            };
            if (one == TimeSpan.Zero || n > (TimeSpan.MaxValue - value).Ticks / one.Ticks)
            {
                return false;
            }

            value += one * n;
        }

        return true;
    }
}
