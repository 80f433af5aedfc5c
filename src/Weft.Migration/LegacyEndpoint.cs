using System.Collections.Immutable;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;

namespace Weft.Migration;

/// <summary>One user's sequence as a legacy pipeline's endpoint answered it: the rows read, the elements that could not be, and (when asked for) every property name the elements carry.</summary>
public sealed record LegacySequence(EventBatch Rows, IReadOnlyList<DeadLetter> Unreadable, IReadOnlySet<string> Columns);

/// <summary>A legacy endpoint that did not answer a usable sequence: unreachable, too slow, an error status, or a body that is not one.</summary>
public sealed class LegacyEndpointException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>True when the endpoint was not asked: it had failed too often in a row (<see cref="LegacyEndpoint.OpenAfter"/>).</summary>
    public bool NotAsked { get; init; }
}

/// <summary>
/// The HTTP adapter of a legacy pipeline (<c>legacy.&lt;signal&gt;.endpoint</c>): GET the URL with the
/// user's id in place of <c>{user_id}</c>, and read the answer as that user's sequence: a JSON array of
/// event objects, or an object whose <c>events</c> is one. Each object carries the signal's sequence
/// columns by name (event_id, event_type and event_time, as ISO-8601 or µs since the epoch, are
/// required; an element column it lacks reads as null); an element that cannot be read as them is left
/// out and reported, the others are used.
/// </summary>
/// <summary>A breaking endpoint's state: its failures in a row, until when it is not asked (null: it is), and the last failure.</summary>
public sealed record LegacyEndpointHealth(int FailuresInARow, DateTimeOffset? NotAskedUntil, string? LastFailure);

public sealed class LegacyEndpoint : IDisposable
{
    /// <summary>The largest answer read: a user's sequence is kilobytes, and a runaway one must not take the server's memory.</summary>
    public const int MaxResponseBytes = 16 * 1024 * 1024;

    /// <summary>Failures in a row after which a breaking endpoint stops being asked for <see cref="OpenFor"/>.</summary>
    public const int OpenAfter = 5;

    /// <summary>How long a breaking endpoint is not asked; then one request tries it again.</summary>
    public static readonly TimeSpan OpenFor = TimeSpan.FromSeconds(5);

    private readonly HttpClient _http;
    private readonly bool _breaks;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private int _failuresInARow;
    private DateTimeOffset _openUntil = DateTimeOffset.MinValue;
    private string? _lastFailure;

    /// <param name="breaks">
    /// Stop asking after <see cref="OpenAfter"/> failures in a row, for <see cref="OpenFor"/> (a circuit
    /// breaker): a server reading a legacy service that is down must not hold every request for the
    /// timeout, nor pile load on a service trying to recover.
    /// </param>
    public LegacyEndpoint(string urlTemplate, TimeSpan timeout, bool breaks = false, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(urlTemplate);
        if (LegacyConfig.EndpointProblem(urlTemplate) is { } problem)
        {
            throw new ArgumentException($"'{urlTemplate}' {problem}", nameof(urlTemplate));
        }

        UrlTemplate = urlTemplate;
        _breaks = breaks;
        _time = time ?? TimeProvider.System;
        _http = new HttpClient();
        _http.Timeout = timeout;
        _http.MaxResponseContentBufferSize = MaxResponseBytes;
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
    }

    public string UrlTemplate { get; }

    /// <summary>The endpoint as shown to people (status, the dashboard, errors a client reads): <see cref="Redact"/>ed.</summary>
    public string DisplayUrl => Redact(UrlTemplate);

    /// <summary>The URL as <see cref="LegacyConfig.Redact"/> shows it: no user info, query values elided.</summary>
    public static string Redact(string url) => LegacyConfig.Redact(url);

    public TimeSpan Timeout => _http.Timeout;

    /// <summary>The breaker's state now, for operators (an endpoint made without <c>breaks</c> never stops being asked).</summary>
    public LegacyEndpointHealth Health
    {
        get
        {
            lock (_gate)
            {
                var now = _time.GetUtcNow();
                return new LegacyEndpointHealth(_failuresInARow, now < _openUntil ? _openUntil : null, _lastFailure);
            }
        }
    }

    /// <summary>The URL asked for a user as errors show it: redacted, and naming the user when the redaction hid the id (a query's value).</summary>
    private string Shown(Uri url, long userId)
    {
        int query = UrlTemplate.IndexOf('?', StringComparison.Ordinal);
        bool idInQuery = query >= 0 && UrlTemplate.IndexOf(LegacyConfig.UserIdToken, query, StringComparison.Ordinal) >= 0;
        string shown = Redact(url.OriginalString);
        return idInQuery ? $"{shown} (user {userId})" : shown;
    }

    public Uri UrlFor(long userId) =>
        new(UrlTemplate.Replace(LegacyConfig.UserIdToken, userId.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));

    /// <summary>The user's legacy sequence with the columns of <paramref name="schema"/>; throws <see cref="LegacyEndpointException"/> naming the URL when there is none to use.</summary>
    /// <param name="withColumns">Collect every property name the elements carry (<see cref="LegacySequence.Columns"/>): a comparison needs them, a read does not.</param>
    /// <param name="types">Read only elements of these event types (an element whose event_type is not text is read all the same, and reported unreadable); null: every type.</param>
    public async Task<LegacySequence> FetchAsync(long userId, ImmutableArray<FieldDefinition> schema, CancellationToken cancellationToken, bool withColumns = false, IReadOnlyCollection<string>? types = null)
    {
        var url = UrlFor(userId);
        if (_breaks)
        {
            lock (_gate)
            {
                var now = _time.GetUtcNow();
                if (now < _openUntil)
                {
                    throw new LegacyEndpointException(
                        $"legacy endpoint {DisplayUrl} is not asked until {_openUntil:HH:mm:ss.fff}Z: it failed {_failuresInARow} times in a row, the last: {_lastFailure}") { NotAsked = true };
                }

                if (_failuresInARow >= OpenAfter)
                {
                    _openUntil = now + OpenFor; // half-open: this request tries it; the others wait for its answer's verdict
                }
            }
        }

        try
        {
            var sequence = await FetchOnceAsync(url, Shown(url, userId), schema, withColumns, types, cancellationToken).ConfigureAwait(false);
            if (_breaks)
            {
                lock (_gate)
                {
                    (_failuresInARow, _openUntil) = (0, DateTimeOffset.MinValue);
                }
            }

            return sequence;
        }
        catch (LegacyEndpointException e) when (_breaks)
        {
            lock (_gate)
            {
                _lastFailure = e.Message;
                if (++_failuresInARow >= OpenAfter)
                {
                    _openUntil = _time.GetUtcNow() + OpenFor;
                }
            }

            throw;
        }
    }

    private async Task<LegacySequence> FetchOnceAsync(Uri url, string shown, ImmutableArray<FieldDefinition> schema, bool withColumns, IReadOnlyCollection<string>? types, CancellationToken cancellationToken)
    {
        byte[] body;
        try
        {
            using var response = await _http.GetAsync(url, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new LegacyEndpointException($"legacy endpoint {shown} answered {(int)response.StatusCode} {response.ReasonPhrase}");
            }

            body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new LegacyEndpointException($"legacy endpoint {shown} did not answer within {Durations.Format(_http.Timeout)}", e);
        }
        catch (HttpRequestException e)
        {
            throw new LegacyEndpointException($"legacy endpoint {shown} failed: {e.Message}", e);
        }

        return Read(body, shown, schema, withColumns, types);
    }

    /// <summary>Reads an endpoint's answer (see the class summary); <paramref name="source"/> names it in errors and dead letters.</summary>
    public static LegacySequence Read(ReadOnlyMemory<byte> body, string source, ImmutableArray<FieldDefinition> schema, bool withColumns = false, IReadOnlyCollection<string>? types = null)
    {
        var columns = new HashSet<string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(body.Span);
            doc = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new LegacyEndpointException($"legacy endpoint {source} answered a body that is not JSON at {JsonErrors.Where(e)}", e);
        }

        using (doc)
        {
            var events = doc.RootElement;
            if (events.ValueKind == JsonValueKind.Object && events.TryGetProperty("events", out var inner))
            {
                events = inner;
            }

            if (events.ValueKind != JsonValueKind.Array)
            {
                throw new LegacyEndpointException($"legacy endpoint {source} answered JSON that is neither an array of events nor an object with an \"events\" array");
            }

            var elements = new List<JsonElement>(events.GetArrayLength());
            var positions = new List<int>(events.GetArrayLength()); // each read element's index in the answer, for errors
            int position = -1;
            foreach (var e in events.EnumerateArray())
            {
                position++;
                if (withColumns && e.ValueKind == JsonValueKind.Object)
                {
                    foreach (var property in e.EnumerateObject())
                    {
                        columns.Add(property.Name);
                    }
                }

                if (types is null || !OtherType(e, types))
                {
                    elements.Add(e);
                    positions.Add(position);
                }
            }

            // Only the keys are required of legacy: a column it never had reads as null, and is told
            // apart from a disagreement by the comparison (Columns) rather than refused element by element.
            var relaxed = schema.Select(f => f.Name is StandardColumns.EventId or StandardColumns.EventType or StandardColumns.EventTime ? f : f with { Nullable = true }).ToImmutableArray();
            var (rows, bad) = JsonRows.Read(elements, i => $"{source} events[{positions[i]}]", relaxed, "legacy-endpoint");
            return new LegacySequence(rows, bad, columns);
        }
    }

    /// <summary>Whether the element names an event type, as text, that is none of <paramref name="types"/> (compared without allocating).</summary>
    private static bool OtherType(JsonElement element, IReadOnlyCollection<string> types)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(StandardColumns.EventType, out var type) || type.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        foreach (var wanted in types)
        {
            if (type.ValueEquals(wanted))
            {
                return false;
            }
        }

        return true;
    }

    public void Dispose() => _http.Dispose();
}
