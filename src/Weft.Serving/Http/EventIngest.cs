using System.Globalization;
using System.Text;
using System.Text.Json;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Serving.Http;

/// <summary>
/// The body of <c>POST /v1/events</c>: a JSON array of event objects or one event object
/// (<c>application/json</c>), or NDJSON, one object per line (<c>application/x-ndjson</c>); without a
/// JSON type, whichever of these the body holds. A type that cannot hold events is refused (415).
/// Each event must be a JSON object whose <c>event_type</c> is one of the caller's event types and whose
/// <c>tenant</c>, when present, is the caller. Everything else about an event (user_id, times,
/// attributes) is checked by the streaming runtime's parser, which dead-letters bad events with a reason
/// like any other source. The log keeps each event's bytes exactly as sent; the key is its user_id text.
/// </summary>
internal static class EventIngest
{
    /// <summary>How the body is read, from its declared media type.</summary>
    private enum BodyFormat
    {
        /// <summary><c>application/json</c> (or <c>+json</c>): one JSON value, an array of events or one event.</summary>
        Json,

        /// <summary><c>application/x-ndjson</c> and the JSON Lines names: one event per line.</summary>
        Lines,

        /// <summary>No type, or a generic one (text/plain, curl's form default, octet-stream): an array, one event, or NDJSON, by what the body holds.</summary>
        Sniff,
    }

    public const string Accepted = "application/json (an array of event objects, or one event object) or application/x-ndjson (one event object per line)";

    /// <summary>The body's format from its Content-Type, or null for a type that cannot hold events (answered 415).</summary>
    private static BodyFormat? FormatOf(string? contentType)
    {
        string media = (contentType is null ? "" : contentType.Split(';', 2)[0]).Trim().ToLowerInvariant();
        return media switch
        {
            "application/json" or "text/json" => BodyFormat.Json,
            _ when media.StartsWith("application/", StringComparison.Ordinal) && media.EndsWith("+json", StringComparison.Ordinal) => BodyFormat.Json,
            "application/x-ndjson" or "application/ndjson" or "application/jsonl" or "application/x-jsonlines" or "application/jsonlines" => BodyFormat.Lines,
            "" or "text/plain" or "application/x-www-form-urlencoded" or "application/octet-stream" => BodyFormat.Sniff,
            _ => null,
        };
    }

    /// <summary>
    /// A 415 for a request body of one JSON value (the multi-get's) sent with a type that cannot hold
    /// one, e.g. <c>image/png</c>, or as NDJSON; null for JSON and the generic types a client sends
    /// when it names none (curl's form default among them).
    /// </summary>
    public static ApiError? JsonBodyTypeError(string? contentType) =>
        FormatOf(contentType) is BodyFormat.Json or BodyFormat.Sniff
            ? null
            : new ApiError(415, $"Content-Type '{ReadRequest.Shown(contentType ?? "")}' cannot hold this request: send application/json");

    /// <summary>
    /// A 415 for a body sent compressed (<c>Content-Encoding: gzip</c>, as some producers do by default),
    /// or null for none or <c>identity</c>. The compressed bytes were read as JSON, and the producer heard
    /// "'0x1F' is an invalid start of a value".
    /// </summary>
    public static ApiError? EncodingError(string? contentEncoding)
    {
        string encoding = (contentEncoding ?? "").Trim();
        return encoding.Length == 0 || encoding.Equals("identity", StringComparison.OrdinalIgnoreCase)
            ? null
            : new ApiError(415, $"Content-Encoding '{ReadRequest.Shown(encoding.ToString())}' is not supported: send the body uncompressed");
    }

    public static ApiError? TryParse(ReadOnlyMemory<byte> body, string? contentType, string tenant, IReadOnlySet<string> ownTypes, int maxEvents, out List<(byte[] Key, byte[] Payload)> records)
    {
        records = [];
        if (FormatOf(contentType) is not { } format)
        {
            return new ApiError(415, $"Content-Type '{ReadRequest.Shown(contentType ?? "")}' cannot hold events: send {Accepted}");
        }

        var span = body.Span;
        int first = span.StartsWith("\uFEFF"u8) ? 3 : 0;
        while (first < span.Length && span[first] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            first++;
        }

        var events = new List<ReadOnlyMemory<byte>>();
        var bodyLines = new List<(int Line, int Column)>(); // NDJSON: each event's body line, and the byte of that line it starts after
        bool array = format != BodyFormat.Lines && first < span.Length && span[first] == (byte)'[';
        if (!array && format != BodyFormat.Lines && first < span.Length && span[first] == (byte)'{'
            && SingleValueLength(span[first..]) is int length)
        {
            events.Add(body.Slice(first, length)); // one event, which may span lines (pretty-printed)
        }
        else if (!array && format == BodyFormat.Json && first < span.Length)
        {
            return ApiError.BadRequest($"an application/json body must be one JSON array of event objects or one event object (for one event per line, send application/x-ndjson){JsonProblem(span[first..])}");
        }
        else if (array)
        {
            try
            {
                var reader = new Utf8JsonReader(span[first..], new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
                reader.Read();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        return ApiError.BadRequest($"events[{events.Count}] must be a JSON object");
                    }

                    long start = reader.TokenStartIndex;
                    reader.Skip();
                    events.Add(body.Slice(first + (int)start, (int)(reader.BytesConsumed - start)));
                    if (events.Count > maxEvents)
                    {
                        return TooMany(maxEvents);
                    }
                }

                if (reader.TokenType != JsonTokenType.EndArray || reader.Read())
                {
                    return ApiError.BadRequest("the body is not one JSON array of events");
                }
            }
            catch (JsonException ex)
            {
                return ApiError.InvalidJson("the body", ex);
            }
        }
        else
        {
            int at = first;
            int lineNumber = 1 + span[..first].Count((byte)'\n');
            int column = first - (span[..first].LastIndexOf((byte)'\n') + 1); // a BOM or spaces the first line starts with
            while (at < span.Length)
            {
                int end = span[at..].IndexOf((byte)'\n');
                end = end < 0 ? span.Length : at + end;
                var line = body[at..end];
                var trimmed = line.Span.Trim(" \t\r"u8);
                if (trimmed.Length > 0)
                {
                    events.Add(line);
                    bodyLines.Add((lineNumber, column));
                    if (events.Count > maxEvents)
                    {
                        return TooMany(maxEvents);
                    }
                }

                at = end + 1;
                lineNumber++;
                column = 0;
            }
        }

        if (events.Count == 0)
        {
            return ApiError.BadRequest("no events in the body: send a JSON array of event objects or NDJSON, one object per line");
        }

        for (int i = 0; i < events.Count; i++)
        {
            if (Check(events[i], i, i < bodyLines.Count ? bodyLines[i] : ((int, int)?)null, tenant, ownTypes, out var key) is { } error)
            {
                records = [];
                return error;
            }

            records.Add((key, events[i].ToArray()));
        }

        return null;
    }

    /// <summary>The length of the one JSON value <paramref name="json"/> holds, when nothing but whitespace follows it; else null.</summary>
    private static int? SingleValueLength(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            reader.Read();
            reader.Skip();
            int length = (int)reader.BytesConsumed;
            return json[length..].Trim(" \t\r\n"u8).IsEmpty ? length : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string JsonProblem(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            reader.Read();
            reader.Skip();
            return reader.Read() ? $" (content follows the first value at byte {reader.TokenStartIndex})" : "";
        }
        catch (JsonException ex)
        {
            return $" (not valid JSON at {JsonErrors.Where(ex)})";
        }
    }

    private static ApiError TooMany(int maxEvents) =>
        ApiError.BadRequest($"more than {maxEvents} events in one request (serving.max_events_per_request)", limit: "serving.max_events_per_request");

    private static ApiError? Check(ReadOnlyMemory<byte> json, int index, (int Line, int Column)? bodyLine, string tenant, IReadOnlySet<string> ownTypes, out byte[] key)
    {
        key = [];
        if (NotText.Holds(json.Span))
        {
            // Not text (a lone surrogate escape, or bytes that are not UTF-8, which the JSON reader only
            // finds when it decodes the string): refused here, where the producer hears why, rather than dead-lettered later.
            return ApiError.BadRequest($"events[{index}]: {NotText.Reason(json.Span)}");
        }

        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return ApiError.BadRequest($"events[{index}] must be a JSON object");
            }

            if (!root.TryGetProperty(StandardColumns.EventType, out var type) || type.ValueKind != JsonValueKind.String)
            {
                return ApiError.BadRequest($"events[{index}] has no event_type string");
            }

            // One message for unknown and foreign types alike: nothing is learnt about other tenants.
            if (!ownTypes.Contains(type.GetString()!))
            {
                return ApiError.BadRequest($"events[{index}]: event_type '{ReadRequest.Shown(type.GetString()!)}' is not one of tenant '{tenant}''s event types ({string.Join(", ", ownTypes.Order(StringComparer.Ordinal))})");
            }

            if (root.TryGetProperty(StandardColumns.Tenant, out var t) && t.ValueKind != JsonValueKind.Null
                && (t.ValueKind != JsonValueKind.String || !string.Equals(t.GetString(), tenant, StringComparison.Ordinal)))
            {
                return ApiError.BadRequest($"events[{index}]: tenant {ReadRequest.Shown(t.GetRawText())} is not the tenant of the API key");
            }

            if (root.TryGetProperty(StandardColumns.UserId, out var user))
            {
                // The user id as the parser reads it ("007" and 7 are one user), in the decimal text the
                // stream checks keys against; what it cannot read is a dead letter downstream, keyed as sent.
                key = user.ValueKind == JsonValueKind.Number && user.TryGetInt64(out long id)
                      || user.ValueKind == JsonValueKind.String && long.TryParse(user.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out id)
                    ? Weft.Streaming.Kafka.KafkaEventProducer.KeyOf(id)
                    : user.ValueKind == JsonValueKind.String ? Encoding.UTF8.GetBytes(user.GetString()!) : Encoding.UTF8.GetBytes(user.GetRawText());
            }

            return null;
        }
        catch (JsonException ex) when (bodyLine is var (line, column))
        {
            // The reader counts within the one line it was given: "line 1" of every event said nothing.
            return ApiError.BadRequest($"events[{index}] is not valid JSON at line {line} of the body, byte {column + (ex.BytePositionInLine ?? 0) + 1} of that line: {JsonErrors.Message(ex)}");
        }
        catch (JsonException ex)
        {
            return ApiError.InvalidJson($"events[{index}]", ex);
        }
    }
}
