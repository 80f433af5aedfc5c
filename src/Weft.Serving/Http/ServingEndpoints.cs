using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Weft.Definitions;
using Weft.Engine;
using Weft.Serving.Hosting;
using Weft.Serving.Security;
using Weft.Serving.Sequences;
using Weft.Streaming.Embedded;

namespace Weft.Serving.Http;

/// <summary>The HTTP API (docs/serving.md): routes, authentication, limits, and the JSON they answer with.</summary>
internal static partial class ServingEndpoints
{
    public const string SequenceRoute = "/v1/signals/{signal}/users/{user_id}/sequence";
    public const string MultiGetRoute = "/v1/signals/{signal}/sequences";
    public const string EventsRoute = "/v1/events";
    public const string RoutesRoute = "/v1/signals/{signal}/users/{user_id}/routes";

    private static readonly string[] SequenceParameters = ["columns", "limit", "lookback", "as_of", "known_at", "consumer"];
    private static readonly string[] RoutesParameters = ["consumer"];

    /// <summary>Every read answers HEAD as it answers GET, headers only (RFC 9110: a server that supports GET supports HEAD).</summary>
    internal static readonly string[] ReadMethods = ["GET", "HEAD"];

    [ThreadStatic]
    private static HashSet<string>? t_seen;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_body;

    /// <summary>
    /// The method as a metric label: HTTP's own, or "other". A client without a key made a new series
    /// (and dashboard row) per made-up method, 2,000 methods growing /metrics from 31 KB to 3.2 MB.
    /// </summary>
    internal static string MethodLabel(string method) => method switch
    {
        "GET" or "HEAD" or "POST" or "PUT" or "DELETE" or "PATCH" or "OPTIONS" or "TRACE" or "CONNECT" => method,
        _ => "other",
    };

    private static readonly Microsoft.Extensions.Primitives.StringValues NoSniff = "nosniff";
    private static readonly Microsoft.Extensions.Primitives.StringValues NoFraming = "DENY";

    /// <summary>
    /// On every answer: browsers take each body as the type it is sent as (a JSON error echoing a
    /// request's text is never run as a page), and no other site frames the dashboard.
    /// </summary>
    internal static void SetSafetyHeaders(IHeaderDictionary headers)
    {
        headers.XContentTypeOptions = NoSniff;
        headers.XFrameOptions = NoFraming;
    }

    public static void Map(WebApplication app, ServingState state)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Weft.Serving");
        app.Use(async (context, next) =>
        {
            long start = Stopwatch.GetTimestamp();
            SetSafetyHeaders(context.Response.Headers);
            try
            {
                await next(context).ConfigureAwait(false);
                if (!context.Response.HasStarted && NoRoute(context) is { } noRoute)
                {
                    await WriteErrorAsync(context, noRoute).ConfigureAwait(false);
                }
            }
            catch (BadHttpRequestException ex) when (!context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted)
            {
                // The client's framing, not the server's fault (a malformed chunk, a body shorter than its
                // Content-Length, one sent slower than Kestrel's minimum rate): a 500 and an error with a
                // stack trace in the log for each such request said otherwise. The rest cannot be read: close.
                context.Response.Headers.Connection = "close";
                var error = ApiError.BadRequest($"the request body could not be read: {ex.Message}");
                // Kestrel's own status where it has one (408 for a body sent too slowly, 413 past its size limit).
                await WriteErrorAsync(context, ex.StatusCode is >= 400 and < 500 ? error with { Status = ex.StatusCode } : error).ConfigureAwait(false);
            }
            catch (Weft.Online.OnlineStoreException ex) when (ex.IsTransient && !context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted)
            {
                // The store is restarting or failing over (the store retried already): the client may
                // retry, which a 500 does not say. The store's address stays in the server log.
                ServingLog.RequestFailed(logger, context.Request.Method, RouteOf(context), ex);
                context.Response.Headers.RetryAfter = "1";
                await WriteErrorAsync(context, new ApiError(503, "the online store is unavailable for the moment; retry")).ConfigureAwait(false);
            }
            catch (Weft.Migration.MigrationLedgerException ex) when (!context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted)
            {
                // Not a bug of the server's: the operator has to mend the ledger. Its path and the
                // problem stay in the server log; the caller learns what is wrong, not where.
                ServingLog.RequestFailed(logger, context.Request.Method, RouteOf(context), ex);
                await WriteErrorAsync(context, new ApiError(503, "the migration ledger cannot be read, so a migration's routes cannot be decided; the operator's `weft migrate status` names the problem")).ConfigureAwait(false);
            }
            catch (Exception ex) when (!context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted)
            {
                ServingLog.RequestFailed(logger, context.Request.Method, RouteOf(context), ex);
                await WriteErrorAsync(context, new ApiError(500, "internal error; see the server log")).ConfigureAwait(false);
            }
            finally
            {
                string route = RouteOf(context);
                state.Metrics.Observe("weft_http_request_duration_seconds", "HTTP request latency, by route and method", Stopwatch.GetElapsedTime(start).TotalSeconds,
                    ("route", route), ("method", MethodLabel(context.Request.Method)));
                state.Metrics.Count("weft_http_requests_total", "HTTP requests, by route and status", 1,
                    ("route", route), ("status", context.Response.StatusCode.ToString(CultureInfo.InvariantCulture)));
            }
        });

        app.MapMethods("/healthz", ReadMethods, ([FromServices] ServingState s) => Health(s))
            .WithName("healthz").WithSummary("Liveness: 200 \"ok\" while the process serves; 503 naming the error once the in-process streaming runtime has stopped").WithTags("operations")
            .Produces<string>(200, "text/plain")
            .Produces<string>(503, "text/plain");

        app.MapMethods("/metrics", ReadMethods, (HttpContext context, [FromServices] ServingState s) => MetricsAsync(context, s))
            .WithName("metrics").WithSummary("Prometheus text format: request latency per route, stream freshness and lag, dead letters, batch history").WithTags("operations")
            .Produces<string>(200, "text/plain");

        app.MapMethods("/", ReadMethods, () => Results.Text(Dashboard.Html, "text/html; charset=utf-8"))
            .WithName("dashboard").WithSummary("The dashboard page (reads /metrics and /v1/status)").WithTags("operations")
            .Produces<string>(200, "text/html");

        app.MapMethods("/v1/status", ReadMethods, (HttpContext context, [FromServices] ServingState s) => StatusAsync(context, s))
            .WithName("status").WithSummary("The caller's signals: versions, batch history, stream watermark and lag").WithTags("sequences")
            .Produces<StatusDoc>(200).RequiresApiKey();

        app.MapMethods("/v1/signals", ReadMethods, (HttpContext context, [FromServices] ServingState s) => SignalsAsync(context, s))
            .WithName("signals").WithSummary("The caller's signals and their columns").WithTags("sequences")
            .Produces<SignalListDoc>(200).RequiresApiKey();

        app.MapMethods(SequenceRoute, ReadMethods, (HttpContext context, string signal, string user_id, [FromQuery] string? columns, [FromQuery] string? limit, [FromQuery] string? lookback, [FromQuery] string? as_of, [FromQuery] string? known_at, [FromQuery] string? consumer) =>
                consumer is null
                    ? SequenceAsync(context, state, signal, user_id, new ReadArguments(columns?.Split(','), limit, lookback, as_of, known_at, ReadRequest.QueryError(context.Request.Query, SequenceParameters)))
                    : HybridSequenceAsync(context, state, signal, user_id, new ReadArguments(columns?.Split(','), limit, lookback, as_of, known_at, ReadRequest.QueryError(context.Request.Query, SequenceParameters)), consumer))
            .WithName("sequence").WithTags("sequences")
            .WithSummary("One user's sequence of a signal, as columnar JSON with provenance")
            .WithDescription("The merge of the online store (stream tail) and the sealed batch history, cut to (as_of − lookback, as_of] and ingest_time ≤ known_at, newest first, at most limit elements. columns: comma-separated sequence columns (event_id and event_time always come). limit: ≤ the signal's max_length and serving.max_limit. lookback: a duration ≤ the signal's. as_of, known_at: ISO-8601 (default now; known_at defaults to as_of). consumer: during a migration off a legacy pipeline (docs/migration.md), the model or service reading; the sequence is then assembled from Weft's events of the types routed to Weft for this user and the legacy endpoint's events of the others, with an assembly object (its version and each event type's source); 409 when a type is routed to legacy and no legacy endpoint is configured, 502 when the legacy endpoint fails.")
            .Produces<SequenceDoc>(200).Produces<ErrorDoc>(400).RequiresApiKey().Produces<ErrorDoc>(404).Produces<ErrorDoc>(409).Produces<ErrorDoc>(429).Produces<ErrorDoc>(502).Produces<ErrorDoc>(503)
            .WithReadParameters();

        app.MapPost(MultiGetRoute, (HttpContext context, string signal) => MultiGetAsync(context, state, signal))
            .WithName("sequences").WithTags("sequences")
            .WithSummary("Sequences of many users of one signal in one call, from one store snapshot")
            .WithDescription("Body: {\"user_ids\": [...], \"columns\": [...], \"limit\": N, \"lookback\": \"7d\", \"as_of\": \"...\", \"known_at\": \"...\", \"consumer\": \"...\"}; one sequence per distinct user, in request order. At most serving.max_users_per_request users. With consumer, each user's hybrid sequence, as GET …/sequence?consumer= assembles it (409, 502 likewise).")
            .AddOpenApiOperationTransformer(RequestBody<MultiGetRequestDoc>("application/json"))
            .Produces<MultiGetDoc>(200).Produces<ErrorDoc>(400).RequiresApiKey().Produces<ErrorDoc>(404).Produces<ErrorDoc>(409).Produces<ErrorDoc>(415).Produces<ErrorDoc>(429).Produces<ErrorDoc>(502).Produces<ErrorDoc>(503);

        app.MapMethods(RoutesRoute, ReadMethods, (HttpContext context, string signal, string user_id, [FromQuery] string? consumer) => RoutesAsync(context, state, signal, user_id, consumer))
            .WithName("routes").WithTags("migration")
            .WithSummary("Which side, Weft or legacy, serves each event type of the signal to a consumer for a user")
            .WithDescription("During a migration off a legacy pipeline (weft migrate, docs/migration.md): per event type of the signal, the source the consumer reads it from for this user (a sticky hash of signal, event type and user against the consumer's route), the event type's stage, the route's percent and the user's bucket of 10,000. Users served while a route splits traffic are logged as exposures for the sample-ratio check (weft migrate srm). Routes are re-read from the ledger every few seconds, so a rollback reaches every server within that. Without a migration ledger every event type is served by Weft.")
            .Produces<RoutesDoc>(200).Produces<ErrorDoc>(400).RequiresApiKey().Produces<ErrorDoc>(404)
            .WithReadParameters(required: "consumer");

        app.MapPost(EventsRoute, (HttpContext context, [FromServices] ServingState s) => EventsAsync(context, s))
            .WithName("events").WithTags("events")
            .WithSummary("Append raw events to the embedded log; 202 once durable")
            .WithDescription("A JSON array of event objects, or NDJSON. Every event's event_type must be one of the caller's (included by its signals and no other tenant's); a tenant field, if present, must be the caller. The streaming runtime in this process then parses, enriches and serves them; bad events become dead letters. At most serving.max_events_per_request events and serving.max_request_bytes bytes. 429, with Retry-After, while the tenant is over its max_events_per_second.")
            .AddOpenApiOperationTransformer(EventsBody)
            .Produces<EventsAcceptedDoc>(202).Produces<ErrorDoc>(400).RequiresApiKey().Produces<ErrorDoc>(409).Produces<ErrorDoc>(415).Produces<ErrorDoc>(429).Produces<ErrorDoc>(503);
    }

    /// <summary>
    /// Documents a request body without <c>Accepts</c> metadata, which would make routing answer 415 to
    /// other content types: the endpoints read the body themselves and answer 400 with a reason.
    /// </summary>
    private static Func<OpenApiOperation, OpenApiOperationTransformerContext, CancellationToken, Task> RequestBody<T>(params string[] contentTypes) =>
        async (operation, context, cancellationToken) =>
        {
            var schema = await context.GetOrCreateSchemaAsync(typeof(T), null, cancellationToken).ConfigureAwait(false);
            var body = new OpenApiRequestBody { Required = true, Content = new Dictionary<string, OpenApiMediaType>() };
            foreach (var type in contentTypes)
            {
                body.Content[type] = new OpenApiMediaType { Schema = schema };
            }

            operation.RequestBody = body;
        };

    /// <summary>
    /// <c>POST /v1/events</c>'s body: in <c>application/json</c> an array of events or one event; in the
    /// line formats, text of one event object per line (an array schema there made generated clients send
    /// an array with an NDJSON type, which the server refuses).
    /// </summary>
    private static async Task EventsBody(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var one = await context.GetOrCreateSchemaAsync(typeof(EventDoc), null, cancellationToken).ConfigureAwait(false);
        var many = await context.GetOrCreateSchemaAsync(typeof(EventDoc[]), null, cancellationToken).ConfigureAwait(false);
        var lines = new OpenApiSchema { Type = JsonSchemaType.String, Description = "One event object (EventDoc) per line; blank lines are skipped." };
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/json"] = new() { Schema = new OpenApiSchema { OneOf = [many, one] } },
                ["application/x-ndjson"] = new() { Schema = lines },
                ["application/jsonl"] = new() { Schema = lines },
            },
        };
    }

    /// <summary>For an endpoint that takes no query parameters: answers 400 naming one a request gave (and returns true), as reads do for a misspelt one.</summary>
    private static async ValueTask<bool> RefusedQueryAsync(HttpContext context, string? why = null)
    {
        if (ReadRequest.QueryError(context.Request.Query, []) is not { } badQuery)
        {
            return false;
        }

        await WriteErrorAsync(context, why is null ? badQuery : badQuery with { Message = badQuery.Message + why }).ConfigureAwait(false);
        return true;
    }

    private static string RouteOf(HttpContext context) =>
        (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";

    private static bool TryTenant(HttpContext context, ServingState state, out string tenant)
    {
        tenant = state.Keys.Authenticate(ApiKeys.Presented(context.Request))!;
        if (tenant is null)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            return false;
        }

        return true;
    }

    private static readonly ApiError Unauthorized = new(401, "a valid API key is required: Authorization: Bearer <key>, or X-Api-Key: <key>");

    private static ApiError NoSignal(string name) => new(404, $"no signal '{ReadRequest.Shown(name)}'");

    private static async Task SequenceAsync(HttpContext context, ServingState state, string signalName, string userText, ReadArguments args)
    {
        if (!TryTenant(context, state, out var tenant))
        {
            await WriteErrorAsync(context, Unauthorized).ConfigureAwait(false);
            return;
        }

        var (read, error) = await PrepareReadAsync(state, tenant, signalName, userText, args, context.RequestAborted).ConfigureAwait(false);
        if (error is not null)
        {
            await WriteErrorAsync(context, error).ConfigureAwait(false);
            return;
        }

        // Rendered whole first, so the response carries a Content-Length (no chunked framing); the
        // buffer is this thread's and is copied into the response before any await.
        var body = t_body ??= new ArrayBufferWriter<byte>(64 * 1024);
        body.ResetWrittenCount();
        WriteRead(read, body);
        Begin(context, 200);
        context.Response.ContentLength = body.WrittenCount;
        context.Response.BodyWriter.Write(body.WrittenSpan);
        if (body.Capacity > 4 * 1024 * 1024)
        {
            t_body = null; // do not keep a rare huge response's buffer per thread
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>A single-user read, validated and cut, ready to be written.</summary>
    internal readonly record struct PreparedRead(ServedSignal Signal, ServedSequence Sequence, int[] Projection, ReadContext Context, RenderCache? Renders);

    /// <summary>
    /// Everything <c>GET …/sequence</c> does after authentication, up to the JSON: the signal (404 when
    /// the tenant does not own it), the parameters (400 naming the limit), the timeline and the cut
    /// (not made when <paramref name="cut"/> is false: a hybrid read cuts the timeline its own way).
    /// </summary>
    internal static async ValueTask<(PreparedRead Read, ApiError? Error)> PrepareReadAsync(
        ServingState state, string tenant, string signalName, string userText, ReadArguments args, CancellationToken cancellationToken, bool cut = true)
    {
        if (state.SignalFor(tenant, signalName) is not { } signal)
        {
            return (default, NoSignal(signalName));
        }

        if (args.QueryError is { } queryError)
        {
            return (default, queryError);
        }

        if (UserId(userText, out long userId) is { } badUser)
        {
            return (default, badUser);
        }

        if (ReadRequest.TryParse(state, signal, args, out var parameters) is { } error)
        {
            return (default, error);
        }

        if (state.Throttled(tenant, sequences: 1) is { } throttled)
        {
            return (default, throttled);
        }

        var timeline = await state.Sequences.TimelineAsync(signal, userId, cancellationToken).ConfigureAwait(false);
        var read = new ReadContext(parameters.Cut, parameters.Lookback, state.Stream?.LagMs);
        var sequence = cut ? SequenceService.Cut(timeline, parameters.Cut, t_seen ??= new HashSet<string>(StringComparer.Ordinal)) : new ServedSequence(timeline, [], false, 0, 0);
        return (new PreparedRead(signal, sequence, parameters.Projection, read, state.Sequences.Renders), null);
    }

    internal static void WriteRead(in PreparedRead read, IBufferWriter<byte> output)
    {
        using var w = new Utf8JsonWriter(output, SequenceJson.WriterOptions);
        SequenceJson.WriteSequence(w, read.Signal, read.Sequence, read.Projection, read.Context, includeSignal: true, read.Renders);
    }

    /// <summary>The caller's signal <paramref name="signalName"/>; null, with 401 or 404 written, when the key is not valid or the tenant has no such signal.</summary>
    private static async Task<ServedSignal?> AuthorizedSignalAsync(HttpContext context, ServingState state, string signalName)
    {
        if (!TryTenant(context, state, out var tenant))
        {
            await WriteErrorAsync(context, Unauthorized).ConfigureAwait(false);
            return null;
        }

        if (state.SignalFor(tenant, signalName) is not { } signal)
        {
            await WriteErrorAsync(context, NoSignal(signalName)).ConfigureAwait(false);
            return null;
        }

        return signal;
    }

    private static async Task MultiGetAsync(HttpContext context, ServingState state, string signalName)
    {
        if (await AuthorizedSignalAsync(context, state, signalName).ConfigureAwait(false) is not { } signal)
        {
            return;
        }

        // The body carries the read's parameters; one in the query would otherwise be ignored.
        if (await RefusedQueryAsync(context, ": a read's parameters go in the JSON body").ConfigureAwait(false))
        {
            return;
        }

        var (body, bodyError) = await ReadBodyAsync(context, state.Options.MaxRequestBytes).ConfigureAwait(false);
        if (bodyError is not null)
        {
            await WriteErrorAsync(context, bodyError).ConfigureAwait(false);
            return;
        }

        var parseError = EventIngest.EncodingError(context.Request.Headers.ContentEncoding) ?? EventIngest.JsonBodyTypeError(context.Request.ContentType);
        List<long> users = [];
        ReadArguments args = new(null, null, null, null, null);
        string? consumer = null;
        parseError ??= ParseMultiGet(body, state.Options.MaxUsersPerRequest, out users, out args, out consumer);
        ReadParameters parameters = null!;
        parseError ??= ReadRequest.TryParse(state, signal, args, out parameters);
        parseError ??= state.Throttled(signal.Definition.Tenant, sequences: users.Count);
        if (parseError is not null)
        {
            await WriteErrorAsync(context, parseError).ConfigureAwait(false);
            return;
        }

        var timelines = await state.Sequences.TimelinesAsync(signal, users, context.RequestAborted).ConfigureAwait(false);
        var read = new ReadContext(parameters.Cut, parameters.Lookback, state.Stream?.LagMs);
        if (consumer is not null)
        {
            await HybridSequencesAsync(context, state, signal, timelines, parameters.Projection, read, consumer).ConfigureAwait(false);
            return;
        }

        Begin(context, 200);
        using (var w = new Utf8JsonWriter(context.Response.BodyWriter, SequenceJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("signal"u8, signal.Name);
            w.WriteStartArray("sequences"u8);
            long sent = 0;
            foreach (var timeline in timelines)
            {
                // This thread's set, fetched for each user: a send may resume the loop on another thread.
                var sequence = SequenceService.Cut(timeline, parameters.Cut, t_seen ??= new HashSet<string>(StringComparer.Ordinal));
                SequenceJson.WriteSequence(w, signal, sequence, parameters.Projection, read, includeSignal: false, state.Sequences.Renders);
                if ((sent = await SendAsWrittenAsync(context, w, sent).ConfigureAwait(false)) < 0)
                {
                    return;
                }
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>A server path as a tenant may see it: relative to weft.json's folder, or only its last name when outside it.</summary>
    internal static string Shown(string configFolder, string path)
    {
        var relative = Path.GetRelativePath(configFolder, path);
        return relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal) || Path.IsPathRooted(relative)
            ? "…" + Path.DirectorySeparatorChar + Path.GetFileName(Path.TrimEndingDirectorySeparator(path))
            : relative;
    }

    /// <summary>What a multi-get answer writes before it sends: the response pipe holds at most about this much.</summary>
    internal const int MultiGetSendBytes = 256 * 1024;

    /// <summary>
    /// Sends what <paramref name="w"/> wrote once it passes <see cref="MultiGetSendBytes"/> since
    /// <paramref name="sent"/>, waiting for the client to take it: a thousand users' sequences (tens of
    /// megabytes) were held whole in the response pipe until the end, per request in flight. Returns
    /// what is sent, or -1 once the client no longer reads (the caller stops writing).
    /// </summary>
    internal static async ValueTask<long> SendAsWrittenAsync(HttpContext context, Utf8JsonWriter w, long sent)
    {
        if (w.BytesCommitted + w.BytesPending - sent < MultiGetSendBytes)
        {
            return sent;
        }

        await w.FlushAsync(context.RequestAborted).ConfigureAwait(false); // into the pipe: an IBufferWriter's flush only commits
        var flushed = await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        // A client that stopped reading: the rest would be rendered for no one.
        return flushed.IsCompleted || flushed.IsCanceled ? -1 : w.BytesCommitted;
    }

    private static ApiError? ParseMultiGet(byte[] body, int maxUsers, out List<long> users, out ReadArguments args, out string? consumer)
    {
        users = [];
        args = new ReadArguments(null, null, null, null, null);
        consumer = null;
        if (NotText.Holds(body))
        {
            return ApiError.BadRequest($"the body: {NotText.Reason(body)}");
        }

        JsonDocument doc;
        try
        {
            // A UTF-8 byte order mark, which some clients write, is not JSON but says nothing against it (as in /v1/events).
            doc = JsonDocument.Parse(body.AsMemory(body.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0));
        }
        catch (JsonException ex)
        {
            return ApiError.InvalidJson("the body", ex);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return ApiError.BadRequest("the body must be a JSON object: {\"user_ids\": [...], \"columns\": [...], \"limit\": N, \"as_of\": \"...\"}");
            }

            List<string>? columns = null;
            string? limit = null, lookback = null, asOf = null, knownAt = null;
            bool sawUsers = false;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in root.EnumerateObject())
            {
                if (!seen.Add(p.Name))
                {
                    // Which one counts is a parser's accident; a second user_ids also slipped past max_users_per_request.
                    return ApiError.BadRequest($"property '{ReadRequest.Shown(p.Name)}' appears more than once in the body", ReadRequest.Shown(p.Name));
                }

                switch (p.Name)
                {
                    case "user_ids":
                        sawUsers = true;
                        if (p.Value.ValueKind != JsonValueKind.Array)
                        {
                            return ApiError.BadRequest("user_ids must be an array of 64-bit integers", "user_ids");
                        }

                        if (p.Value.GetArrayLength() > maxUsers)
                        {
                            return ApiError.BadRequest($"{p.Value.GetArrayLength()} user_ids exceed serving.max_users_per_request ({maxUsers})", "user_ids", "serving.max_users_per_request");
                        }

                        var distinct = new HashSet<long>();
                        int i = 0;
                        foreach (var u in p.Value.EnumerateArray())
                        {
                            if (u.ValueKind != JsonValueKind.Number || !u.TryGetInt64(out long id))
                            {
                                return ApiError.BadRequest($"user_ids[{i}] must be a 64-bit integer, got {ReadRequest.Shown(u.GetRawText())}", "user_ids");
                            }

                            if (distinct.Add(id))
                            {
                                users.Add(id);
                            }

                            i++;
                        }

                        break;
                    case "columns":
                        if (p.Value.ValueKind != JsonValueKind.Array || p.Value.EnumerateArray().Any(c => c.ValueKind != JsonValueKind.String))
                        {
                            return ApiError.BadRequest("columns must be an array of column names", "columns");
                        }

                        columns = [.. p.Value.EnumerateArray().Select(c => c.GetString()!)];
                        break;
                    case "limit":
                        if (p.Value.ValueKind != JsonValueKind.Number)
                        {
                            return ApiError.BadRequest($"limit must be a positive integer, got {ReadRequest.Shown(p.Value.GetRawText())}", "limit");
                        }

                        limit = p.Value.GetRawText();
                        break;
                    case "lookback" or "as_of" or "known_at":
                        if (p.Value.ValueKind != JsonValueKind.String)
                        {
                            return ApiError.BadRequest($"{p.Name} must be a string, got {ReadRequest.Shown(p.Value.GetRawText())}", p.Name);
                        }

                        _ = p.Name switch
                        {
                            "lookback" => lookback = p.Value.GetString(),
                            "as_of" => asOf = p.Value.GetString(),
                            _ => knownAt = p.Value.GetString(),
                        };
                        break;
                    case "consumer":
                        if (p.Value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(p.Value.GetString()))
                        {
                            return ApiError.BadRequest($"consumer must name the model or service reading, got {ReadRequest.Shown(p.Value.GetRawText())}", "consumer");
                        }

                        if (Weft.Migration.MigrationRouting.ConsumerProblem(p.Value.GetString()) is { } badConsumer)
                        {
                            return ApiError.BadRequest(badConsumer, "consumer");
                        }

                        consumer = p.Value.GetString();
                        break;
                    default:
                        // Named in 'parameter' too, as a GET's unknown query parameter is: a client reads which one from there.
                        return ApiError.BadRequest($"unknown property '{ReadRequest.Shown(p.Name)}': the body has user_ids, columns, limit, lookback, as_of, known_at, consumer", ReadRequest.Shown(p.Name));
                }
            }

            if (!sawUsers)
            {
                return ApiError.BadRequest("user_ids is required", "user_ids");
            }

            args = new ReadArguments(columns, limit, lookback, asOf, knownAt);
            return null;
        }
    }

    /// <summary>
    /// Nothing restarts a stopped in-process runtime, and events posted after it stopped wait in the log
    /// unread: a liveness probe failing is what gets the process (and the runtime) started again.
    /// </summary>
    private static IResult Health(ServingState state) => state.Stream?.FailureShown is { } failure
        ? Results.Text(failure + "\n", statusCode: StatusCodes.Status503ServiceUnavailable)
        : state.Stream?.LogFaultShown is { } fault
            ? Results.Text(fault + "\n", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ok\n");

    private static async Task EventsAsync(HttpContext context, ServingState state)
    {
        if (!TryTenant(context, state, out var tenant))
        {
            await WriteErrorAsync(context, Unauthorized).ConfigureAwait(false);
            return;
        }

        if (await RefusedQueryAsync(context).ConfigureAwait(false))
        {
            return;
        }

        var stream = state.Stream;
        if (stream is null || stream.Failure is not null)
        {
            await WriteErrorAsync(context, new ApiError(409, stream is null
                ? "this server runs no streaming runtime (source.kind is not embedded, or serving.stream is off): send events to the configured source"
                : "the in-process streaming runtime has stopped (see the server log); restart weft serve")).ConfigureAwait(false);
            return;
        }

        var (body, bodyError) = await ReadBodyAsync(context, state.Options.MaxRequestBytes).ConfigureAwait(false);
        if (bodyError is not null)
        {
            await WriteErrorAsync(context, bodyError).ConfigureAwait(false);
            return;
        }

        var own = state.TenantEventTypes.TryGetValue(tenant, out var types) ? types : (IReadOnlySet<string>)new HashSet<string>();
        var records = new List<(byte[] Key, byte[] Payload)>();
        if ((EventIngest.EncodingError(context.Request.Headers.ContentEncoding)
             ?? EventIngest.TryParse(body, context.Request.ContentType, tenant, own, state.Options.MaxEventsPerRequest, out records)) is { } error)
        {
            await WriteErrorAsync(context, error).ConfigureAwait(false);
            return;
        }

        int maxRecord = stream.Log.Options.MaxRecordBytes;
        for (int i = 0; i < records.Count; i++)
        {
            long size = (long)records[i].Key.Length + records[i].Payload.Length;
            if (size > maxRecord)
            {
                await WriteErrorAsync(context, ApiError.BadRequest($"events[{i}] is {size:N0} bytes, more than the embedded log takes for one event ({maxRecord:N0} bytes)", limit: "embedded log per-event size")).ConfigureAwait(false);
                return;
            }
        }

        if (state.Throttled(tenant, events: records.Count) is { } throttled)
        {
            await WriteErrorAsync(context, throttled).ConfigureAwait(false);
            return;
        }

        stream.Sample();
        OffsetRange offsets;
        try
        {
            offsets = await stream.Log.AppendAsync(records, context.RequestAborted).ConfigureAwait(false);
        }
        catch (IOException) when (stream.LogFaultShown is { } fault)
        {
            // Not a client's error nor a passing one: the process must restart for recovery to run (/healthz says so too).
            // The error names the server's paths: it is in the server's log, not in the answer.
            await WriteErrorAsync(context, new ApiError(503, $"{fault}; this request's events may or may not be stored (send them again after the restart: copies collapse by event_id)")).ConfigureAwait(false);
            return;
        }

        state.Metrics.Count("weft_serving_events_accepted_total", "Events appended to the embedded log through POST /v1/events, by tenant", records.Count, ("tenant", tenant));
        Begin(context, 202);
        using (var w = new Utf8JsonWriter(context.Response.BodyWriter, SequenceJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteNumber("accepted"u8, records.Count);
            w.WriteString("partition"u8, EmbeddedLog.PartitionName);
            w.WriteNumber("first_offset"u8, offsets.FirstOffset);
            w.WriteNumber("last_offset"u8, offsets.LastOffset);
            w.WriteEndObject();
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task SignalsAsync(HttpContext context, ServingState state)
    {
        if (!TryTenant(context, state, out var tenant))
        {
            await WriteErrorAsync(context, Unauthorized).ConfigureAwait(false);
            return;
        }

        if (await RefusedQueryAsync(context).ConfigureAwait(false))
        {
            return;
        }

        Begin(context, 200);
        using (var w = new Utf8JsonWriter(context.Response.BodyWriter, SequenceJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("tenant"u8, tenant);
            w.WriteStartArray("signals"u8);
            foreach (var s in state.Signals.Where(s => s.Definition.Tenant == tenant))
            {
                w.WriteStartObject();
                w.WriteString("name"u8, s.Name);
                w.WriteNumber("version"u8, s.Definition.Version);
                w.WriteString("fingerprint"u8, s.Fingerprint);
                w.WriteNumber("max_length"u8, s.MaxLength);
                w.WriteString("lookback"u8, Durations.Format(s.Definition.Lookback));
                w.WriteStartArray("columns"u8);
                foreach (var c in s.SequenceColumns)
                {
                    w.WriteStartObject();
                    w.WriteString("name"u8, c.Name);
                    w.WriteString("type"u8, c.Type.ToString());
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteStartArray("event_types"u8);
                foreach (var t in s.Definition.EventTypes)
                {
                    w.WriteStringValue(t.Name);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>The path's user_id as a 64-bit integer; a 400 naming it when it is not one.</summary>
    private static ApiError? UserId(string text, out long userId)
    {
        // Digits with an optional sign only: .NET's parser also takes trailing NULs ("5\0" as user 5).
        userId = 0;
        return ReadRequest.IsDigits(text, text.StartsWith('-') || text.StartsWith('+') ? 1 : 0)
            && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out userId)
            ? null
            : ApiError.BadRequest($"user_id must be a 64-bit integer, got '{ReadRequest.Shown(text)}'", "user_id");
    }

    private static async Task RoutesAsync(HttpContext context, ServingState state, string signalName, string userText, string? consumer)
    {
        if (await AuthorizedSignalAsync(context, state, signalName).ConfigureAwait(false) is not { } signal)
        {
            return;
        }

        if (ReadRequest.QueryError(context.Request.Query, RoutesParameters) is { } badQuery)
        {
            await WriteErrorAsync(context, badQuery).ConfigureAwait(false);
            return;
        }

        if (UserId(userText, out long userId) is { } badUser)
        {
            await WriteErrorAsync(context, badUser).ConfigureAwait(false);
            return;
        }

        if (string.IsNullOrWhiteSpace(consumer))
        {
            await WriteErrorAsync(context, ApiError.BadRequest("consumer is required: the name of the model or service reading (routes are per consumer)", "consumer")).ConfigureAwait(false);
            return;
        }

        if (Weft.Migration.MigrationRouting.ConsumerProblem(consumer) is { } badConsumer)
        {
            await WriteErrorAsync(context, ApiError.BadRequest(badConsumer, "consumer")).ConfigureAwait(false);
            return;
        }

        var types = signal.Definition.EventTypes.Select(t => t.Name).ToList();
        IReadOnlyList<Weft.Migration.RouteDecision> decisions = state.Routes is { } router
            ? (await router.RouteAsync(signal.Name, types, consumer, userId, context.RequestAborted, recordExposures: !HttpMethods.IsHead(context.Request.Method)).ConfigureAwait(false)).Decisions
            : [.. types.Select(t => new Weft.Migration.RouteDecision(t, true, Weft.Migration.MigrationStage.LegacyDeprecated, null, Weft.Migration.MigrationRouting.Bucket(signal.Name, t, userId)))];
        Begin(context, 200);
        using (var w = new Utf8JsonWriter(context.Response.BodyWriter, SequenceJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("signal"u8, signal.Name);
            w.WriteNumber("user_id"u8, userId);
            w.WriteString("consumer"u8, consumer);
            w.WriteStartArray("routes"u8);
            foreach (var d in decisions)
            {
                w.WriteStartObject();
                w.WriteString("event_type"u8, d.EventType);
                w.WriteString("source"u8, d.ServedByWeft ? "weft" : "legacy");
                w.WriteString("stage"u8, state.Routes is null ? "not-migrating" : Weft.Migration.MigrationStages.Name(d.Stage));
                if (d.Percent is { } percent)
                {
                    w.WriteNumber("percent"u8, percent);
                }

                w.WriteNumber("bucket"u8, d.Bucket);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task StatusAsync(HttpContext context, ServingState state)
    {
        if (!TryTenant(context, state, out var tenant))
        {
            await WriteErrorAsync(context, Unauthorized).ConfigureAwait(false);
            return;
        }

        if (await RefusedQueryAsync(context).ConfigureAwait(false))
        {
            return;
        }

        var migrations = await MigrationsAsync(state, tenant, context.RequestAborted).ConfigureAwait(false);
        Begin(context, 200);
        using (var w = new Utf8JsonWriter(context.Response.BodyWriter, SequenceJson.WriterOptions))
        {
            Span<byte> text = stackalloc byte[32];
            w.WriteStartObject();
            w.WriteString("tenant"u8, tenant);
            w.WriteString("server_time"u8, text[..SequenceJson.FormatTimestamp(state.NowMicros, text)]);
            w.WriteStartArray("signals"u8);
            foreach (var s in state.Signals.Where(s => s.Definition.Tenant == tenant))
            {
                var h = s.History.Current;
                w.WriteStartObject();
                w.WriteString("name"u8, s.Name);
                w.WriteNumber("version"u8, s.Definition.Version);
                w.WriteString("fingerprint"u8, s.Fingerprint);
                w.WriteNumber("max_length"u8, s.MaxLength);
                w.WriteString("lookback"u8, Durations.Format(s.Definition.Lookback));
                w.WriteString("freshness_objective"u8, Durations.Format(s.Definition.FreshnessObjective));
                w.WriteNumber("history_version"u8, h.Version);
                w.WriteNumber("history_rows"u8, h.Rows.RowCount);
                w.WriteString("history_from"u8, text[..SequenceJson.FormatTimestamp(h.LoadedFromMicros, text)]);
                TimestampOrNull(w, "batch_sealed_through"u8, h.SealedThroughMicros);
                TimestampOrNull(w, "stream_watermark"u8, s.StreamWatermark);
                if (state.Stream?.Runtime.Metrics is { } m)
                {
                    w.WriteNumber("stream_events"u8, (long)m.Value("weft_stream_events_total", ("signal", s.Name)));
                    // The slowest event type's p99: freshness is measured per signal × event type, never mixed.
                    double? p99 = null;
                    foreach (var type in s.Definition.EventTypes)
                    {
                        if (m.Quantile("weft_freshness_seconds", 0.99, ("signal", s.Name), ("event_type", type.Name)) is { } q && (p99 is null || q > p99))
                        {
                            p99 = q;
                        }
                    }

                    if (p99 is { } v)
                    {
                        w.WriteNumber("freshness_p99_seconds"u8, v);
                    }
                }

                if (migrations.TryGetValue(s.Name, out var migration))
                {
                    WriteMigration(w, migration);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartObject("stream"u8);
            if (state.Stream is { } stream)
            {
                w.WriteBoolean("running"u8, stream.Failure is null);
                // Paths as weft.json's folder sees them: any tenant's key reads this, and the server's own layout is not theirs.
                string configFolder = Path.GetDirectoryName(Path.GetFullPath(state.Config.ConfigPath))!;
                w.WriteString("source"u8, "embedded:" + Shown(configFolder, stream.Log.Location));
                w.WriteNumber("end_offset"u8, stream.Log.EndOffset);
                w.WriteNumber("position"u8, stream.Source.Position);
                w.WriteNumber("committed_offset"u8, stream.Source.CommittedOffset);
                w.WriteNumber("lag_records"u8, stream.LagRecords);
                w.WriteNumber("lag_ms"u8, stream.LagMs);
                if (stream.Runtime.ArchiveFolder is { } archive)
                {
                    var m = stream.Runtime.Metrics;
                    w.WriteStartObject("archive"u8);
                    w.WriteString("folder"u8, Shown(configFolder, archive));
                    w.WriteNumber("records"u8, (long)m.Value("weft_stream_archive_records_total"));
                    w.WriteNumber("bytes"u8, (long)m.Value("weft_stream_archive_bytes_total"));
                    w.WriteNumber("files"u8, (long)m.Value("weft_stream_archive_files_total"));
                    TimestampOrNull(w, "last_committed"u8, stream.Runtime.ArchiveCommittedAtMicros);
                    w.WriteEndObject();
                }

                if (stream.FailureShown is { } failure)
                {
                    w.WriteString("error"u8, failure);
                }
            }
            else
            {
                w.WriteBoolean("running"u8, false);
            }

            w.WriteEndObject();
            w.WriteStartObject("cache"u8);
            if (state.Sequences.Cache is { } cache)
            {
                w.WriteNumber("users"u8, cache.Count);
                w.WriteNumber("capacity"u8, cache.Capacity);
                w.WriteNumber("hits"u8, cache.Hits);
                w.WriteNumber("misses"u8, cache.Misses);
                if (state.Sequences.Renders is { } renders)
                {
                    w.WriteNumber("rendered_users"u8, renders.Count);
                    w.WriteNumber("rendered_bytes"u8, renders.Bytes);
                }
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static void TimestampOrNull(Utf8JsonWriter w, ReadOnlySpan<byte> name, long? micros)
    {
        if (micros is { } m)
        {
            Span<byte> text = stackalloc byte[32];
            w.WriteString(name, text[..SequenceJson.FormatTimestamp(m, text)]);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static async Task MetricsAsync(HttpContext context, ServingState state)
    {
        ServingMetrics.Update(state);
        var text = new StringBuilder(16 * 1024);
        state.Metrics.WritePrometheus(text);
        state.Stream?.Runtime.Metrics.WritePrometheus(text);
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        byte[] body = Encoding.UTF8.GetBytes(text.ToString());
        context.Response.ContentLength = body.Length; // HEAD says how long GET's would be
        await context.Response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
    }

    private static void Begin(HttpContext context, int status)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
    }

    /// <summary>Reads the body, refusing more than <paramref name="max"/> bytes with a 400 that names the limit.</summary>
    private static async Task<(byte[] Body, ApiError? Error)> ReadBodyAsync(HttpContext context, int max)
    {
        var tooLarge = ApiError.BadRequest($"the request body exceeds serving.max_request_bytes ({max} bytes)", limit: "serving.max_request_bytes");
        if (context.Request.ContentLength > max)
        {
            await DrainAsync(context, max).ConfigureAwait(false);
            return ([], tooLarge);
        }

        // At most 64 KiB up front, grown as bytes arrive: a buffer sized by the declared Content-Length let
        // connections that declare a megabyte and send a byte hold a megabyte each (a few thousand of
        // them took the server's memory). At least 1: an empty body's Content-Length is 0.
        var buffer = new ArrayBufferWriter<byte>((int)Math.Clamp(context.Request.ContentLength ?? 16 * 1024, 1, Math.Min(max + 1L, 64 * 1024)));
        var body = context.Request.Body;
        while (true)
        {
            int read = await body.ReadAsync(buffer.GetMemory(Math.Min(64 * 1024, max + 1 - buffer.WrittenCount)), context.RequestAborted).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            buffer.Advance(read);
            if (buffer.WrittenCount > max)
            {
                await DrainAsync(context, max).ConfigureAwait(false);
                return ([], tooLarge);
            }
        }

        return (buffer.WrittenSpan.ToArray(), null);
    }

    /// <summary>
    /// Reads and discards what is left of a refused body (up to a bounded amount), so a client still
    /// sending it gets the 400 instead of a reset connection; past the bound the connection closes.
    /// </summary>
    private static async Task DrainAsync(HttpContext context, int max)
    {
        long budget = Math.Max(64L * 1024, 16L * max);
        var scratch = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while (budget > 0 && (read = await context.Request.Body.ReadAsync(scratch.AsMemory(0, (int)Math.Min(scratch.Length, budget)), context.RequestAborted).ConfigureAwait(false)) > 0)
            {
                budget -= read;
            }

            if (budget <= 0)
            {
                context.Response.Headers.Connection = "close";
            }
        }
        catch (Exception ex) when (ex is BadHttpRequestException or IOException)
        {
            context.Response.Headers.Connection = "close"; // the body could not be drained: answer and close
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    // Error messages quote values ('nope') for people reading them in curl: keep quotes and accents as
    // they are (the body is application/json, never HTML, so the default escaping protects nothing).
    private static readonly JsonWriterOptions ErrorWriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// The JSON error for what routing answered with an empty 404 (no such path) or 405 (a path without
    /// that method), so a client reading every error's "error" field is not left with an empty body.
    /// </summary>
    private static ApiError? NoRoute(HttpContext context)
    {
        var request = context.Request;
        string path = $"{request.PathBase}{request.Path}";
        return context.Response.StatusCode switch
        {
            404 when context.GetEndpoint() is null => new ApiError(404, $"no route {request.Method} {path}; the API is described at /openapi.json"),
            405 => new ApiError(405, $"{request.Method} is not allowed on {path}{(context.Response.Headers.Allow.Count > 0 ? $" (allowed: {context.Response.Headers.Allow})" : "")}"),
            _ => null,
        };
    }

    private static async Task WriteErrorAsync(HttpContext context, ApiError error)
    {
        Begin(context, error.Status);
        if (error.RetryAfterSeconds is { } wait)
        {
            context.Response.Headers.RetryAfter = wait.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        using (var w = new Utf8JsonWriter(context.Response.BodyWriter, ErrorWriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("error"u8, error.Message);
            if (error.Parameter is not null)
            {
                w.WriteString("parameter"u8, error.Parameter);
            }

            if (error.Limit is not null)
            {
                w.WriteString("limit"u8, error.Limit);
            }

            w.WriteEndObject();
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
