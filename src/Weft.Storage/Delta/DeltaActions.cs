using System.Text.Json;
using System.Text.Json.Serialization;

namespace Weft.Storage;

// The actions of the Delta transaction log, field names exactly as in delta-io/delta PROTOCOL.md.
// Each log line is one object with one key naming the action: {"add":{...}}.
// Unknown actions and unknown fields are ignored on read, as the protocol requires.

/// <summary>One action of a log entry.</summary>
internal abstract record DeltaAction;

/// <summary><c>protocol</c>: the reader/writer versions (and, at 3/7, features) a client needs.</summary>
internal sealed record ProtocolAction(
    [property: JsonPropertyName("minReaderVersion")] int MinReaderVersion,
    [property: JsonPropertyName("minWriterVersion")] int MinWriterVersion,
    [property: JsonPropertyName("readerFeatures")] IReadOnlyList<string>? ReaderFeatures = null,
    [property: JsonPropertyName("writerFeatures")] IReadOnlyList<string>? WriterFeatures = null) : DeltaAction;

/// <summary><c>metaData.format</c>.</summary>
internal sealed record FormatSpec(
    [property: JsonPropertyName("provider")] string Provider,
    [property: JsonPropertyName("options")] IReadOnlyDictionary<string, string> Options)
{
    public static FormatSpec Parquet { get; } = new("parquet", new Dictionary<string, string>());
}

/// <summary><c>metaData</c>: table id, schema, partition columns, configuration.</summary>
internal sealed record MetadataAction(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("format")] FormatSpec Format,
    [property: JsonPropertyName("schemaString")] string SchemaString,
    [property: JsonPropertyName("partitionColumns")] IReadOnlyList<string> PartitionColumns,
    [property: JsonPropertyName("configuration")] IReadOnlyDictionary<string, string> Configuration,
    [property: JsonPropertyName("createdTime")] long? CreatedTime = null,
    [property: JsonPropertyName("name")] string? Name = null,
    [property: JsonPropertyName("description")] string? Description = null) : DeltaAction;

/// <summary><c>add</c>: a data file enters the table. <see cref="Path"/> is a URI reference (percent-encoded).</summary>
internal sealed record AddAction(
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("partitionValues")] IReadOnlyDictionary<string, string?> PartitionValues,
    [property: JsonPropertyName("size")] long Size,
    [property: JsonPropertyName("modificationTime")] long ModificationTime,
    [property: JsonPropertyName("dataChange")] bool DataChange,
    [property: JsonPropertyName("stats")] string? Stats = null,
    [property: JsonPropertyName("tags")] IReadOnlyDictionary<string, string>? Tags = null,
    [property: JsonPropertyName("deletionVector")] DeletionVectorDescriptor? DeletionVector = null) : DeltaAction;

/// <summary><c>remove</c>: a data file leaves the table (a tombstone until vacuumed).</summary>
internal sealed record RemoveAction(
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("deletionTimestamp")] long? DeletionTimestamp,
    [property: JsonPropertyName("dataChange")] bool DataChange,
    [property: JsonPropertyName("extendedFileMetadata")] bool? ExtendedFileMetadata = null,
    [property: JsonPropertyName("partitionValues")] IReadOnlyDictionary<string, string?>? PartitionValues = null,
    [property: JsonPropertyName("size")] long? Size = null,
    [property: JsonPropertyName("deletionVector")] DeletionVectorDescriptor? DeletionVector = null) : DeltaAction;

/// <summary>
/// <c>txn</c>: an application's transaction version (idempotent writers such as Spark streaming record
/// the last batch they committed). Weft writes none; it keeps the latest per <see cref="AppId"/> through
/// checkpoints and snapshots, as the protocol asks, so such a writer does not commit a batch twice.
/// </summary>
internal sealed record TxnAction(
    [property: JsonPropertyName("appId")] string AppId,
    [property: JsonPropertyName("version")] long Version,
    [property: JsonPropertyName("lastUpdated")] long? LastUpdated = null) : DeltaAction;

/// <summary>
/// <c>sidecar</c>: a Parquet file of a V2-spec checkpoint's add and remove actions, named relative to
/// <c>_delta_log/_sidecars/</c> (or by an absolute URI). Found only in checkpoints.
/// </summary>
internal sealed record SidecarAction(
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("sizeInBytes")] long SizeInBytes,
    [property: JsonPropertyName("modificationTime")] long ModificationTime,
    [property: JsonPropertyName("tags")] IReadOnlyDictionary<string, string?>? Tags = null) : DeltaAction;

/// <summary><c>checkpointMetadata</c>: marks a V2-spec checkpoint and names its version. Found only in checkpoints.</summary>
internal sealed record CheckpointMetadataAction(
    [property: JsonPropertyName("version")] long Version,
    [property: JsonPropertyName("tags")] IReadOnlyDictionary<string, string?>? Tags = null) : DeltaAction;

/// <summary>
/// <c>commitInfo</c>: provenance. Free-form in the protocol; the fields Weft reads are typed and
/// everything else (e.g. Spark's <c>operationMetrics</c>) is kept in <see cref="Extra"/>.
/// </summary>
internal sealed record CommitInfoAction : DeltaAction
{
    [JsonPropertyName("timestamp")]
    public long? Timestamp { get; init; }

    [JsonPropertyName("operation")]
    public string? Operation { get; init; }

    [JsonPropertyName("operationParameters")]
    [JsonConverter(typeof(LenientStringMapConverter))]
    public IReadOnlyDictionary<string, string>? OperationParameters { get; init; }

    [JsonPropertyName("readVersion")]
    public long? ReadVersion { get; init; }

    [JsonPropertyName("isBlindAppend")]
    public bool? IsBlindAppend { get; init; }

    [JsonPropertyName("engineInfo")]
    public string? EngineInfo { get; init; }

    [JsonPropertyName("txnId")]
    public string? TxnId { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; } // settable: source generation cannot init extension data
}

/// <summary>
/// Reads a JSON object whose values are strings (Spark writes <c>operationParameters</c> so); a value of
/// another kind is kept as its raw JSON text, since other writers may store any JSON there.
/// </summary>
internal sealed class LenientStringMapConverter : JsonConverter<IReadOnlyDictionary<string, string>>
{
    public override IReadOnlyDictionary<string, string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("Expected a JSON object of parameters.");
        }

        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType == JsonTokenType.String)
            {
                result[key] = reader.GetString()!;
            }
            else
            {
                using var value = JsonDocument.ParseValue(ref reader);
                result[key] = value.RootElement.GetRawText();
            }
        }

        return result;
    }

    public override void Write(Utf8JsonWriter writer, IReadOnlyDictionary<string, string> value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        foreach (var (key, item) in value)
        {
            writer.WriteString(key, item);
        }

        writer.WriteEndObject();
    }
}
