using System.Collections.Immutable;

namespace Weft.Storage;

/// <summary>
/// The reconciled state of a table at one version: the latest protocol and metadata, and the active
/// files keyed by their decoded relative path. Immutable; applying a commit shares structure with the
/// previous state, so replaying new versions onto a cached state is cheap.
/// </summary>
internal sealed class TableState
{
    private static readonly ImmutableDictionary<string, AddFile> NoFiles = ImmutableDictionary.Create<string, AddFile>(StringComparer.Ordinal);
    private static readonly ImmutableDictionary<string, TxnAction> NoTransactions = ImmutableDictionary.Create<string, TxnAction>(StringComparer.Ordinal);

    private TableState(
        long version,
        ProtocolAction protocol,
        long protocolVersion,
        MetadataAction metadata,
        DeltaSchema schema,
        ImmutableDictionary<string, AddFile> files,
        ImmutableDictionary<string, TxnAction> transactions,
        DateTimeOffset timestamp)
    {
        Transactions = transactions;
        Version = version;
        Protocol = protocol;
        ProtocolVersion = protocolVersion;
        Metadata = metadata;
        Schema = schema;
        Files = files;
        Timestamp = timestamp;
    }

    public long Version { get; }

    public ProtocolAction Protocol { get; }

    /// <summary>The version whose entry set <see cref="Protocol"/>, to name its file in errors.</summary>
    public long ProtocolVersion { get; }

    public MetadataAction Metadata { get; }

    public DeltaSchema Schema { get; }

    public ImmutableDictionary<string, AddFile> Files { get; }

    /// <summary>The latest <c>txn</c> of each application, for checkpoints and snapshots to carry on.</summary>
    public ImmutableDictionary<string, TxnAction> Transactions { get; }

    /// <summary>The commit time of <see cref="Version"/>: <c>commitInfo.timestamp</c>, else the entry's file time.</summary>
    public DateTimeOffset Timestamp { get; }

    /// <summary>The table's column mapping; <see cref="ColumnMappingProblem"/> says why it cannot be read, if so.</summary>
    public ColumnMapping Mapping => (_mapping ??= MappingOf()).Mapping;

    /// <summary>Null when Weft can resolve the table's columns, else the reason it cannot.</summary>
    public string? ColumnMappingProblem => (_mapping ??= MappingOf()).Problem;

    // Computed on first use (replaying a log builds a state per commit); a reference, so that readers on
    // other threads see it whole or not at all.
    private MappingResult? _mapping;

    private MappingResult MappingOf() => new(ColumnMapping.Of(Protocol, Metadata, Schema, out var problem), problem);

    private sealed record MappingResult(ColumnMapping Mapping, string? Problem);

    /// <summary>
    /// Applies one log entry. Within an entry, removes are applied before adds (the protocol does not
    /// order actions inside a version). Throws <see cref="DeltaLogException"/> naming <paramref name="file"/>
    /// for a metadata action Weft cannot use or a first version without protocol and metadata.
    /// </summary>
    public static TableState Apply(
        TableState? previous,
        long version,
        IReadOnlyList<DeltaAction> actions,
        DateTimeOffset fileTime,
        string tablePath,
        string file)
    {
        var protocol = previous?.Protocol;
        var protocolVersion = previous?.ProtocolVersion ?? version;
        var metadata = previous?.Metadata;
        var schema = previous?.Schema;
        var files = (previous?.Files ?? NoFiles).ToBuilder();
        var transactions = previous?.Transactions ?? NoTransactions;
        long? commitTimestamp = null;

        foreach (var action in actions)
        {
            switch (action)
            {
                case ProtocolAction p:
                    protocol = p;
                    protocolVersion = version;
                    break;
                case MetadataAction m:
                    schema = ParseMetadata(m, tablePath, file);
                    metadata = m;
                    break;
                case RemoveAction r:
                    files.Remove(DeltaPaths.FromLogPath(r.Path));
                    break;
                case CommitInfoAction c:
                    commitTimestamp ??= c.Timestamp;
                    break;
                case TxnAction t:
                    transactions = transactions.SetItem(t.AppId, t);
                    break;
            }
        }

        foreach (var action in actions)
        {
            if (action is AddAction add)
            {
                var added = ToAddFile(add);
                files[added.Path] = added;
            }
        }

        if (protocol is null || metadata is null || schema is null)
        {
            throw new DeltaLogException(tablePath, file,
                $"Log entry '{file}' is the first version read but lacks a {(protocol is null ? "protocol" : "metaData")} action; the table's log is incomplete.");
        }

        var timestamp = commitTimestamp is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : fileTime;
        return new TableState(version, protocol, protocolVersion, metadata, schema, files.ToImmutable(), transactions, timestamp);
    }

    /// <summary>The log's <c>add</c> action for <paramref name="file"/>, with the partition values as given.</summary>
    public static AddAction ToAddAction(AddFile file, IReadOnlyDictionary<string, string?> partitionValues, bool dataChange) =>
        new(DeltaPaths.ToLogPath(file.Path), partitionValues, file.Size, file.ModificationTime.ToUnixTimeMilliseconds(), dataChange, file.Stats, file.Tags, file.DeletionVector);

    public static AddFile ToAddFile(AddAction add) =>
        new(DeltaPaths.FromLogPath(add.Path),
            add.PartitionValues,
            add.Size,
            DateTimeOffset.FromUnixTimeMilliseconds(add.ModificationTime),
            add.Stats,
            add.DataChange,
            add.DeletionVector,
            add.Tags);

    private static DeltaSchema ParseMetadata(MetadataAction metadata, string tablePath, string file)
    {
        if (!string.Equals(metadata.Format.Provider, "parquet", StringComparison.OrdinalIgnoreCase))
        {
            throw new DeltaLogException(tablePath, file,
                $"Log entry '{file}' declares data format '{metadata.Format.Provider}'; Weft reads only 'parquet' tables.");
        }

        DeltaSchema schema;
        try
        {
            schema = DeltaSchema.Parse(metadata.SchemaString);
        }
        catch (FormatException e)
        {
            throw new DeltaLogException(tablePath, file, $"Log entry '{file}' has a metaData.schemaString Weft cannot use: {e.Message}", e);
        }

        foreach (var column in metadata.PartitionColumns)
        {
            if (schema.Find(column) is null)
            {
                throw new DeltaLogException(tablePath, file,
                    $"Log entry '{file}' names partition column '{column}', which is not in the table schema.");
            }
        }

        return schema;
    }
}

/// <summary>
/// The protocol versions and features Weft implements: it writes reader 1 / writer 2 without table
/// features, and it reads those, reader version 2 (column mapping) and reader version 3 with the reader
/// features in <see cref="ReadableFeatures"/>, which is what Databricks and Delta Lake 3 give new tables.
/// </summary>
internal static class ProtocolSupport
{
    public const int ReaderVersion = 1;
    public const int WriterVersion = 2;

    /// <summary>
    /// Reader features Weft honours: <c>columnMapping</c> in mode <c>name</c> (columns found by their physical
    /// names; see <see cref="ColumnMapping"/>), <c>deletionVectors</c> (rows another engine deleted are
    /// skipped), <c>timestampNtz</c> (such a column reads as if its wall-clock times were UTC),
    /// <c>typeWidening</c> (and its preview name; files written before a column was widened read as the
    /// wider type: an integer as a long or double, a float as a double, a date as a timestamp),
    /// <c>variantType</c> (and its preview name; a variant column is one Weft does not read: skipped unless
    /// asked for, then refused naming its type), <c>v2Checkpoint</c> (UUID-named checkpoints, JSON or Parquet, and sidecar files; read when a
    /// log was cleaned up behind one) and <c>vacuumProtocolCheck</c> (it asks only that vacuum check the
    /// protocol, which Weft's does: it never vacuums a table it cannot write). Reader version 2 is column
    /// mapping alone.
    /// </summary>
    public static readonly IReadOnlySet<string> ReadableFeatures = new HashSet<string>(StringComparer.Ordinal) { "columnMapping", "deletionVectors", "timestampNtz", "typeWidening", "typeWidening-preview", "v2Checkpoint", "vacuumProtocolCheck", "variantType", "variantType-preview" };

    /// <summary>Null when Weft can read a table with this protocol, else the reason it cannot.</summary>
    public static string? ReadProblem(ProtocolAction protocol)
    {
        if (protocol.MinReaderVersion <= 2)
        {
            return null; // 2: column mapping, whose mode the table's metadata sets (checked with it)
        }

        if (protocol.MinReaderVersion == 3)
        {
            var missing = (protocol.ReaderFeatures ?? []).Where(f => !ReadableFeatures.Contains(f)).ToList();
            return missing.Count == 0
                ? null
                : $"it requires reader feature{(missing.Count == 1 ? "" : "s")} [{string.Join(", ", missing)}], which Weft does not implement (Weft reads protocol versions 1 and 2, and version 3 with [{string.Join(", ", ReadableFeatures.Order(StringComparer.Ordinal))}])";
        }

        return $"it requires Delta reader version {protocol.MinReaderVersion}; Weft reads versions 1 and 2, and version 3 with features [{string.Join(", ", ReadableFeatures.Order(StringComparer.Ordinal))}]";
    }

    /// <summary>Null when Weft can write (and vacuum) the table, else the reason it cannot.</summary>
    public static string? WriteProblem(TableState state)
    {
        if (ReadProblem(state.Protocol) is { } readProblem)
        {
            return readProblem;
        }

        if (state.Protocol.MinWriterVersion > WriterVersion)
        {
            var features = state.Protocol.WriterFeatures is { Count: > 0 } f ? $" with writer features [{string.Join(", ", f)}]" : "";
            return $"it requires Delta writer version {state.Protocol.MinWriterVersion}{features}; Weft writes version {WriterVersion}";
        }

        if (state.Schema.HasInvariants)
        {
            return "its schema declares column invariants (delta.invariants), which Weft does not enforce";
        }

        if (state.Schema.UnreadableColumns.FirstOrDefault() is { Key: { } unreadable, Value: var unreadableType })
        {
            return $"its column '{unreadable}' is {unreadableType}, which Weft does not read or write";
        }

        if (state.Schema.ConvertedColumns.FirstOrDefault() is { Key: { } converted, Value: var convertedType })
        {
            return $"its column '{converted}' is {convertedType}, which Weft reads through a conversion but does not write";
        }

        if (state.Schema.StructColumns.Count > 0)
        {
            return $"its column '{state.Schema.StructColumns.Order(StringComparer.Ordinal).First()}' is a struct, whose fields Weft reads by their dotted paths but does not write";
        }

        if (state.Schema.Fields.FirstOrDefault(f => f.Type == DeltaDataType.Binary) is { } binary)
        {
            return $"its column '{binary.Name}' is {binary.TypeName}, which Weft does not read or write";
        }

        return null;
    }
}
