using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Weft.Storage;

/// <summary>
/// Newline-delimited JSON for log entries: one action per line, each line <c>{"&lt;action&gt;":{...}}</c>.
/// </summary>
internal static class DeltaActionCodec
{
    private const string ProtocolKey = "protocol";
    private const string MetadataKey = "metaData";
    private const string AddKey = "add";
    private const string RemoveKey = "remove";
    private const string CommitInfoKey = "commitInfo";
    private const string SidecarKey = "sidecar";
    private const string CheckpointMetadataKey = "checkpointMetadata";
    private const string TxnKey = "txn";

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        // Log files are not HTML: keep '+', '\'' and non-ASCII characters as they are.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    /// <summary>Serialises actions in the given order, one line each, every line ending in '\n'.</summary>
    public static byte[] Serialize(IEnumerable<DeltaAction> actions)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using var writer = new Utf8JsonWriter(buffer, WriterOptions);
        foreach (var action in actions)
        {
            writer.Reset(buffer);
            writer.WriteStartObject();
            switch (action)
            {
                case CommitInfoAction commitInfo:
                    writer.WritePropertyName(CommitInfoKey);
                    JsonSerializer.Serialize(writer, commitInfo, DeltaJsonContext.Default.CommitInfoAction);
                    break;
                case ProtocolAction protocol:
                    writer.WritePropertyName(ProtocolKey);
                    JsonSerializer.Serialize(writer, protocol, DeltaJsonContext.Default.ProtocolAction);
                    break;
                case MetadataAction metadata:
                    writer.WritePropertyName(MetadataKey);
                    JsonSerializer.Serialize(writer, metadata, DeltaJsonContext.Default.MetadataAction);
                    break;
                case RemoveAction remove:
                    writer.WritePropertyName(RemoveKey);
                    JsonSerializer.Serialize(writer, remove, DeltaJsonContext.Default.RemoveAction);
                    break;
                case TxnAction txn:
                    writer.WritePropertyName(TxnKey);
                    JsonSerializer.Serialize(writer, txn, DeltaJsonContext.Default.TxnAction);
                    break;
                case AddAction add:
                    writer.WritePropertyName(AddKey);
                    JsonSerializer.Serialize(writer, add, DeltaJsonContext.Default.AddAction);
                    break;
                default:
                    throw new ArgumentException($"Cannot serialise action {action.GetType().Name}.", nameof(actions));
            }

            writer.WriteEndObject();
            writer.Flush();
            buffer.Write("\n"u8);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Parses a log entry. Blank lines are skipped; unknown actions (cdc, domainMetadata, …) are ignored.
    /// A line that is not a single JSON object, or a known action with missing or mistyped required fields,
    /// throws <see cref="FormatException"/> naming the 1-based line number.
    /// </summary>
    public static List<DeltaAction> Parse(ReadOnlySpan<byte> content)
    {
        var actions = new List<DeltaAction>();
        var lineNumber = 0;
        while (!content.IsEmpty)
        {
            lineNumber++;
            var end = content.IndexOf((byte)'\n');
            var line = end < 0 ? content : content[..end];
            content = end < 0 ? default : content[(end + 1)..];
            if (line.Trim(" \t\r"u8).IsEmpty)
            {
                continue;
            }

            try
            {
                ParseLine(line, actions);
            }
            catch (JsonException e)
            {
                throw new FormatException($"line {lineNumber}, byte {(e.BytePositionInLine ?? 0) + 1}: {Weft.Definitions.JsonErrors.Message(e)}", e);
            }
        }

        return actions;
    }

    private static void ParseLine(ReadOnlySpan<byte> line, List<DeltaAction> actions)
    {
        var reader = new Utf8JsonReader(line, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("expected a JSON object holding one action.");
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = reader.GetString();
            reader.Read();
            if (reader.TokenType == JsonTokenType.Null)
            {
                continue;
            }

            DeltaAction? action = key switch
            {
                ProtocolKey => JsonSerializer.Deserialize(ref reader, DeltaJsonContext.Default.ProtocolAction),
                MetadataKey => JsonSerializer.Deserialize(ref reader, DeltaJsonContext.Default.MetadataAction),
                AddKey => JsonSerializer.Deserialize(ref reader, DeltaJsonContext.Default.AddAction),
                RemoveKey => JsonSerializer.Deserialize(ref reader, DeltaJsonContext.Default.RemoveAction),
                CommitInfoKey => JsonSerializer.Deserialize(ref reader, DeltaJsonContext.Default.CommitInfoAction),
                SidecarKey => JsonSerializer.Deserialize(ref reader, DeltaJsonContext.Default.SidecarAction),
                CheckpointMetadataKey => JsonSerializer.Deserialize(ref reader, DeltaJsonContext.Default.CheckpointMetadataAction),
                TxnKey => JsonSerializer.Deserialize(ref reader, DeltaJsonContext.Default.TxnAction),
                _ => null,
            };

            if (action is null)
            {
                reader.Skip();
            }
            else
            {
                actions.Add(action);
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
        {
            throw new JsonException("expected exactly one JSON object on the line.");
        }
    }
}

[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(ProtocolAction))]
[JsonSerializable(typeof(MetadataAction))]
[JsonSerializable(typeof(AddAction))]
[JsonSerializable(typeof(RemoveAction))]
[JsonSerializable(typeof(CommitInfoAction))]
[JsonSerializable(typeof(SidecarAction))]
[JsonSerializable(typeof(CheckpointMetadataAction))]
[JsonSerializable(typeof(TxnAction))]
[JsonSerializable(typeof(SnapshotHeader))]
[JsonSerializable(typeof(SnapshotCommit))]
[JsonSerializable(typeof(FoldFile))]
internal sealed partial class DeltaJsonContext : JsonSerializerContext;
