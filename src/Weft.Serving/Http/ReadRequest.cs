using System.Globalization;
using System.Text.Json;
using Weft.Definitions;
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
    public static ApiError BadRequest(string message, string? parameter = null, string? limit = null) => new(400, message, parameter, limit);

    /// <summary>400 for JSON that does not parse, saying where.</summary>
    public static ApiError InvalidJson(string what, JsonException ex) => BadRequest($"{what} is not valid JSON at {JsonErrors.Where(ex)}");
}

/// <summary>A read's parameters as they came (query string or JSON body), before validation.</summary>
internal sealed record ReadArguments(IReadOnlyList<string>? Columns, string? Limit, string? Lookback, string? AsOf, string? KnownAt);

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
                    return ApiError.BadRequest($"unknown column '{name}': signal '{signal.Name}' has {string.Join(", ", signal.SequenceColumns.Select(f => f.Name))}", "columns");
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
            if (!long.TryParse(args.Limit, NumberStyles.None, CultureInfo.InvariantCulture, out long asked) || asked < 1)
            {
                return ApiError.BadRequest($"limit must be a positive integer, got '{args.Limit}'", "limit");
            }

            if (asked > state.Options.MaxLimit)
            {
                return ApiError.BadRequest($"limit {asked} exceeds the server cap serving.max_limit ({state.Options.MaxLimit})", "limit", "serving.max_limit");
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
            if (!Durations.TryParse(args.Lookback, out var asked) || asked <= TimeSpan.Zero)
            {
                return ApiError.BadRequest($"lookback must be a positive duration such as 7d, 6h or 30m, got '{args.Lookback}'", "lookback");
            }

            if (asked > definition.Lookback)
            {
                return ApiError.BadRequest($"lookback {args.Lookback} exceeds the lookback of signal '{signal.Name}' ({Durations.Format(definition.Lookback)})", "lookback", "lookback");
            }

            lookback = asked;
        }

        long now = state.NowMicros;
        long asOf = now;
        if (args.AsOf is not null && !TryTimestamp(args.AsOf, out asOf))
        {
            return ApiError.BadRequest($"as_of must be an ISO-8601 time, e.g. 2026-11-20T12:00:00Z, got '{args.AsOf}'", "as_of");
        }

        long knownAt = asOf;
        if (args.KnownAt is not null && !TryTimestamp(args.KnownAt, out knownAt))
        {
            return ApiError.BadRequest($"known_at must be an ISO-8601 time, e.g. 2026-11-20T12:00:00Z, got '{args.KnownAt}'", "known_at");
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

    public static bool TryTimestamp(string text, out long micros) => Timestamps.TryParseInstant(text, out micros);
}
