using System.Text;
using System.Text.Json;
using Weft.Definitions;

namespace Weft.Serving.Http;

/// <summary>
/// The body of <c>POST /v1/events</c>: a JSON array of event objects, or NDJSON (one object per line).
/// Each event must be a JSON object whose <c>event_type</c> is one of the caller's event types and whose
/// <c>tenant</c>, when present, is the caller. Everything else about an event (user_id, times,
/// attributes) is checked by the streaming runtime's parser, which dead-letters bad events with a reason
/// like any other source. The log keeps each event's bytes exactly as sent; the key is its user_id text.
/// </summary>
internal static class EventIngest
{
    public static ApiError? TryParse(ReadOnlyMemory<byte> body, string tenant, IReadOnlySet<string> ownTypes, int maxEvents, out List<(byte[] Key, byte[] Payload)> records)
    {
        records = [];
        var span = body.Span;
        int first = span.StartsWith("\uFEFF"u8) ? 3 : 0;
        while (first < span.Length && span[first] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            first++;
        }

        var events = new List<ReadOnlyMemory<byte>>();
        if (first < span.Length && span[first] == (byte)'[')
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
                return ApiError.BadRequest($"the body is not valid JSON (line {ex.LineNumber + 1}): {ex.Message}");
            }
        }
        else
        {
            int at = first;
            while (at < span.Length)
            {
                int end = span[at..].IndexOf((byte)'\n');
                end = end < 0 ? span.Length : at + end;
                var line = body[at..end];
                var trimmed = line.Span.Trim(" \t\r"u8);
                if (trimmed.Length > 0)
                {
                    events.Add(line);
                    if (events.Count > maxEvents)
                    {
                        return TooMany(maxEvents);
                    }
                }

                at = end + 1;
            }
        }

        if (events.Count == 0)
        {
            return ApiError.BadRequest("no events in the body: send a JSON array of event objects or NDJSON, one object per line");
        }

        for (int i = 0; i < events.Count; i++)
        {
            if (Check(events[i], i, tenant, ownTypes, out var key) is { } error)
            {
                records = [];
                return error;
            }

            records.Add((key, events[i].ToArray()));
        }

        return null;
    }

    private static ApiError TooMany(int maxEvents) =>
        ApiError.BadRequest($"more than {maxEvents} events in one request (serving.max_events_per_request)", "serving.max_events_per_request");

    private static ApiError? Check(ReadOnlyMemory<byte> json, int index, string tenant, IReadOnlySet<string> ownTypes, out byte[] key)
    {
        key = [];
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
                return ApiError.BadRequest($"events[{index}]: event_type '{type.GetString()}' is not one of tenant '{tenant}''s event types ({string.Join(", ", ownTypes.Order(StringComparer.Ordinal))})");
            }

            if (root.TryGetProperty(StandardColumns.Tenant, out var t) && t.ValueKind != JsonValueKind.Null
                && (t.ValueKind != JsonValueKind.String || !string.Equals(t.GetString(), tenant, StringComparison.Ordinal)))
            {
                return ApiError.BadRequest($"events[{index}]: tenant {t.GetRawText()} is not the tenant of the API key");
            }

            if (root.TryGetProperty(StandardColumns.UserId, out var user))
            {
                key = user.ValueKind == JsonValueKind.String ? Encoding.UTF8.GetBytes(user.GetString()!) : Encoding.UTF8.GetBytes(user.GetRawText());
            }

            return null;
        }
        catch (JsonException ex)
        {
            return ApiError.BadRequest($"events[{index}] is not valid JSON: {ex.Message}");
        }
    }
}
