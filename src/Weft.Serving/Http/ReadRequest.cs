using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Serving.Hosting;
using Weft.Serving.Sequences;

namespace Weft.Serving.Http;

/// <summary>
/// An error answer: <paramref name="Parameter"/> names the request parameter at fault (when one is),
/// <paramref name="Limit"/> the cap it exceeded (a server option or a property of the signal).
/// </summary>
internal sealed record ApiError(int Status, string Message, string? Parameter = null, string? Limit = null)
{
    /// <summary>Seconds a refused client should wait (the <c>Retry-After</c> header), for a 429.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>429 for a tenant over a rate limit, with the wait in <c>Retry-After</c>.</summary>
    public static ApiError TooManyRequests(Security.QuotaRefusal refusal) => new(429, refusal.Message, Limit: refusal.Limit) { RetryAfterSeconds = refusal.RetryAfterSeconds };

    public static ApiError BadRequest(string message, string? parameter = null, string? limit = null) => new(400, message, parameter, limit);

    /// <summary>400 for JSON that does not parse, saying where.</summary>
    public static ApiError InvalidJson(string what, JsonException ex) => BadRequest($"{what} is not valid JSON at {JsonErrors.Where(ex)}");
}

/// <summary>A read's parameters as they came (query string or JSON body), before validation.</summary>
/// <remarks><paramref name="QueryError"/>: what is wrong with a GET's query as a whole (<see cref="ReadRequest.QueryError"/>), reported after the signal is found.</remarks>
internal sealed record ReadArguments(IReadOnlyList<string>? Columns, string? Limit, string? Lookback, string? AsOf, string? KnownAt, ApiError? QueryError = null);

/// <summary>A validated read: the projection (indices into the sequence columns) and the cut.</summary>
internal sealed record ReadParameters(int[] Projection, SequenceCut Cut, TimeSpan Lookback);

/// <summary>Turns <see cref="ReadArguments"/> into <see cref="ReadParameters"/>, or an error that names the parameter and the limit.</summary>
internal static class ReadRequest
{
    public static ApiError? TryParse(ServingState state, ServedSignal signal, ReadArguments args, out ReadParameters parameters)
    {
        parameters = null!;
        var definition = signal.Definition;

        // Projection: event_id and event_time always (they identify and order the elements), then the columns asked for.
        int[] projection;
        if (args.Columns is null)
        {
            projection = [.. Enumerable.Range(0, signal.SequenceColumns.Length)];
        }
        else
        {
            var chosen = new List<int> { signal.ColumnIndex[StandardColumns.EventId], signal.ColumnIndex[StandardColumns.EventTime] };
            foreach (var raw in args.Columns)
            {
                var name = raw.Trim();
                if (name.Length == 0)
                {
                    continue;
                }

                if (!signal.ColumnIndex.TryGetValue(name, out int c))
                {
                    return ApiError.BadRequest($"unknown column '{Shown(name)}': signal '{signal.Name}' has {string.Join(", ", signal.SequenceColumns.Select(f => f.Name))}", "columns");
                }

                if (!chosen.Contains(c))
                {
                    chosen.Add(c);
                }
            }

            projection = [.. chosen];
        }

        int maxLength = signal.MaxLength;
        int limit = Math.Min(maxLength, state.Options.MaxLimit);
        if (args.Limit is not null)
        {
            // Digits only: .NET's parser also takes trailing NULs ("5\0"). Digits too many for a long are a
            // limit past the cap, not a malformed one.
            long asked = !IsDigits(args.Limit, 0) ? 0
                : long.TryParse(args.Limit, NumberStyles.None, CultureInfo.InvariantCulture, out long parsed) ? parsed : long.MaxValue;
            if (asked < 1)
            {
                return ApiError.BadRequest($"limit must be a positive integer, got '{Shown(args.Limit)}'", "limit");
            }

            if (asked > state.Options.MaxLimit)
            {
                return ApiError.BadRequest($"limit {Shown(args.Limit)} exceeds the server cap serving.max_limit ({state.Options.MaxLimit})", "limit", "serving.max_limit");
            }

            if (asked > maxLength)
            {
                return ApiError.BadRequest($"limit {asked} exceeds the max_length of signal '{signal.Name}' ({maxLength})", "limit", "max_length");
            }

            limit = (int)asked;
        }

        var lookback = definition.Lookback;
        if (args.Lookback is not null)
        {
            if (!Durations.TryParse(WithoutLeadingZeros(args.Lookback), out var asked) || asked <= TimeSpan.Zero)
            {
                return IsDurationTooLong(args.Lookback)
                    ? ApiError.BadRequest($"lookback {Shown(args.Lookback)} exceeds the lookback of signal '{signal.Name}' ({Durations.Format(definition.Lookback)})", "lookback", "lookback")
                    : ApiError.BadRequest($"lookback must be a positive duration such as 7d, 6h or 30m, got '{Shown(args.Lookback)}'", "lookback");
            }

            if (asked > definition.Lookback)
            {
                return ApiError.BadRequest($"lookback {Shown(args.Lookback)} exceeds the lookback of signal '{signal.Name}' ({Durations.Format(definition.Lookback)})", "lookback", "lookback");
            }

            lookback = asked;
        }

        long now = state.NowMicros;
        long asOf = now;
        if (args.AsOf is not null && !TryTimestamp(args.AsOf, out asOf))
        {
            return ApiError.BadRequest($"as_of must be an ISO-8601 time, e.g. 2026-11-20T12:00:00Z, got '{Shown(args.AsOf)}'", "as_of");
        }

        long knownAt = asOf;
        if (args.KnownAt is not null && !TryTimestamp(args.KnownAt, out knownAt))
        {
            return ApiError.BadRequest($"known_at must be an ISO-8601 time, e.g. 2026-11-20T12:00:00Z, got '{Shown(args.KnownAt)}'", "known_at");
        }

        var cut = SequenceCut.For(definition, asOf, knownAt, limit, lookback);
        var history = signal.History.Current;
        if (cut.FromMicros < history.LoadedFromMicros)
        {
            return ApiError.BadRequest(
                $"as_of {Timestamps.Format(asOf)} minus lookback {Durations.Format(lookback)} reaches before the history this server holds ({Timestamps.Format(history.LoadedFromMicros)}: now − the signal's lookback − serving.history_horizon {Durations.Format(state.Options.HistoryHorizon)}); use `weft snapshot` for older cuts",
                "as_of", "serving.history_horizon");
        }

        parameters = new ReadParameters(projection, cut, lookback);
        return null;
    }

    /// <summary>
    /// <c>as_of</c> and <c>known_at</c>: an ISO-8601 (RFC 3339) instant, either a date (its midnight UTC) or
    /// a date and a time (seconds and a fraction of any number of digits optional, as RFC 3339 allows; past the sixth, dropped)
    /// with an offset, <c>Z</c> or <c>±hh:mm</c>. A time without an offset is refused rather than read as
    /// UTC: it may be the caller's local time.
    /// </summary>
    public static bool TryTimestamp(string text, out long micros)
    {
        micros = 0;
        if (!IsIsoInstant(text, out var fractionEnd))
        {
            return false;
        }

        // Digits past the microsecond are dropped, not rounded: .NET would round 0.99999999 s up to the next second.
        if (fractionEnd > 26)
        {
            text = string.Concat(text.AsSpan(0, 26), text.AsSpan(fractionEnd));
        }

        return Timestamps.TryParseInstant(text, out micros);
    }

    /// <remarks><paramref name="fractionEnd"/>: where a fraction of a second ends (0 when there is none).</remarks>
    private static bool IsIsoInstant(string s, out int fractionEnd)
    {
        // The date's digits and dashes are the shared parser's check; this one is the shape after them.
        fractionEnd = 0;
        if (s.Length == 10)
        {
            return true;
        }

        // RFC 3339 lets a space stand for the T (Python's str() of a datetime writes one).
        if (s.Length < 17 || s[10] is not ('T' or 't' or ' ') || !TwoDigits(s, 11) || s[13] != ':' || !TwoDigits(s, 14))
        {
            return false;
        }

        var i = 16;
        if (i < s.Length && s[i] == ':')
        {
            if (!TwoDigits(s, i + 1))
            {
                return false;
            }

            i += 3;
            if (i < s.Length && s[i] == '.')
            {
                var start = ++i;
                while (i < s.Length && char.IsAsciiDigit(s[i]))
                {
                    i++;
                }

                // Any number of digits: RFC 3339 sets no bound, and a client's clock may print more than nine.
                if (i == start)
                {
                    return false;
                }

                fractionEnd = i;
            }
        }

        return (i == s.Length - 1 && s[i] is 'Z' or 'z')
            || (i == s.Length - 6 && s[i] is '+' or '-' && TwoDigits(s, i + 1) && s[i + 3] == ':' && TwoDigits(s, i + 4));

        static bool TwoDigits(string text, int at) =>
            at + 2 <= text.Length && char.IsAsciiDigit(text[at]) && char.IsAsciiDigit(text[at + 1]);
    }

    /// <summary>True when <paramref name="text"/> from <paramref name="start"/> on is one or more ASCII digits and nothing else.</summary>
    public static bool IsDigits(string text, int start) =>
        text.Length > start && text.AsSpan(start).IndexOfAnyExceptInRange('0', '9') < 0;

    /// <summary>A value as an error message quotes it: a long one cut short, so a 400 does not echo a whole URL back.</summary>
    /// <remarks>The cut never splits a surrogate pair: half a character is written as U+FFFD, a character the client never sent.</remarks>
    public static string Shown(string text) => DisplayText.Cut(text);

    /// <summary>"0001d" as "1d": the duration parser counts leading zeros among its 15 digits, and a small lookback with many is still small.</summary>
    private static string WithoutLeadingZeros(string text)
    {
        int zeros = 0;
        while (zeros + 1 < text.Length && text[zeros] == '0' && char.IsAsciiDigit(text[zeros + 1]))
        {
            zeros++;
        }

        return zeros == 0 ? text : text[zeros..];
    }

    /// <summary>A well-formed duration (digits and a unit) too long for any signal, which the parser turns down as it would a malformed one.</summary>
    private static bool IsDurationTooLong(string text)
    {
        var digits = 0;
        while (digits < text.Length && char.IsAsciiDigit(text[digits]))
        {
            digits++;
        }

        return digits > 0 && text.AsSpan(0, digits).TrimStart('0').Length > 0 && text[digits..] is "ms" or "s" or "m" or "h" or "d";
    }

    /// <summary>
    /// 400 for a query parameter the endpoint does not take (a misspelt one would otherwise read as its
    /// default) or one given more than once; null when the query is fine. Names are matched without regard
    /// to case, as the endpoints bind them.
    /// </summary>
    public static ApiError? QueryError(IQueryCollection query, string[] accepted)
    {
        if (query.Count == 0)
        {
            return null;
        }

        foreach (var (name, values) in query)
        {
            if (Array.FindIndex(accepted, a => string.Equals(a, name, StringComparison.OrdinalIgnoreCase)) < 0)
            {
                return ApiError.BadRequest(accepted.Length == 0
                    ? $"unknown parameter '{Shown(name)}'; this endpoint takes no query parameters"
                    : $"unknown parameter '{Shown(name)}'; this endpoint takes {string.Join(", ", accepted)}", Shown(name));
            }

            if (values.Count > 1)
            {
                return ApiError.BadRequest($"parameter '{Shown(name)}' appears more than once", Shown(name));
            }
        }

        return null;
    }
}
