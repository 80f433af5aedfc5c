using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Migration;
using Weft.Serving.Hosting;
using Weft.Serving.Sequences;

namespace Weft.Serving.Http;

/// <summary><c>GET …/sequence?consumer=C</c>: a hybrid sequence during a migration off a legacy pipeline (docs/migration.md).</summary>
internal static partial class ServingEndpoints
{
    /// <summary>
    /// The sequence as the consumer's routes assemble it: Weft's elements of the event types routed to
    /// Weft for this user, the legacy endpoint's of the others. A type routed to legacy is never filled
    /// from Weft when legacy cannot answer (409 without an endpoint, 502 when it fails): during a split
    /// that would serve the legacy arm Weft's data and spoil the experiment.
    /// </summary>
    private static async Task HybridSequenceAsync(HttpContext context, ServingState state, string signalName, string userText, ReadArguments args, string consumer)
    {
        if (!TryTenant(context, state, out var tenant))
        {
            await WriteErrorAsync(context, Unauthorized).ConfigureAwait(false);
            return;
        }

        var (read, error) = await PrepareReadAsync(state, tenant, signalName, userText, args, context.RequestAborted).ConfigureAwait(false);
        if (error is null && string.IsNullOrWhiteSpace(consumer))
        {
            error = ApiError.BadRequest("consumer, when given, names the model or service reading (routes are per consumer)", "consumer");
        }

        if (error is not null)
        {
            await WriteErrorAsync(context, error).ConfigureAwait(false);
            return;
        }

        var signal = read.Signal;
        var timeline = read.Sequence.Timeline;
        var types = signal.Definition.EventTypes.Select(t => t.Name).ToList();
        RouteSet routes = state.Routes is { } router
            ? await router.RouteAsync(signal.Name, types, consumer, timeline.UserId, context.RequestAborted).ConfigureAwait(false)
            : new RouteSet([.. types.Select(t => new RouteDecision(t, true, MigrationStage.LegacyDeprecated, null, MigrationRouting.Bucket(signal.Name, t, timeline.UserId)))], 0);
        var legacyTypes = routes.Decisions.Where(d => !d.ServedByWeft).Select(d => d.EventType).ToHashSet(StringComparer.Ordinal);

        var legacy = EventBatch.Empty(signal.SequenceColumns);
        if (legacyTypes.Count > 0)
        {
            if (!state.LegacyEndpoints.TryGetValue(signal.Name, out var endpoint))
            {
                await WriteErrorAsync(context, new ApiError(409,
                    $"event type(s) {string.Join(", ", legacyTypes.Order(StringComparer.Ordinal))} are served to consumer '{consumer}' by legacy for this user, and legacy.{signal.Name}.endpoint is not configured: "
                    + "Weft cannot assemble the sequence (configure the endpoint, or read routes and combine the two sides)", "consumer")).ConfigureAwait(false);
                return;
            }

            long start = Stopwatch.GetTimestamp();
            try
            {
                var fetched = await endpoint.FetchAsync(timeline.UserId, signal.SequenceColumns, context.RequestAborted).ConfigureAwait(false);
                legacy = fetched.Rows;
                CountLegacy(state, signal.Name, "ok", start);
                if (fetched.Unreadable.Count > 0)
                {
                    state.Metrics.Count("weft_legacy_unreadable_elements_total", "Elements a legacy endpoint answered that could not be read as the signal's sequence columns (left out), by signal",
                        fetched.Unreadable.Count, ("signal", signal.Name));
                }
            }
            catch (LegacyEndpointException e)
            {
                CountLegacy(state, signal.Name, e.NotAsked ? "not_asked" : "failed", start);
                await WriteErrorAsync(context, new ApiError(502, e.Message)).ConfigureAwait(false);
                return;
            }
        }

        // Weft's side uncapped, so that elements of legacy's types cannot crowd Weft's out of the length.
        var cut = read.Context.Cut;
        var uncapped = cut with { MaxLength = int.MaxValue };
        var weftRows = new List<int>();
        timeline.Select(uncapped, weftRows, t_seen ??= new HashSet<string>(StringComparer.Ordinal));
        var hybrid = HybridAssembly.Assemble(signal.SequenceColumns, timeline.Rows, timeline.BatchCount, weftRows, legacy, legacyTypes, cut);

        var body = t_body ??= new ArrayBufferWriter<byte>(64 * 1024);
        body.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(body, SequenceJson.WriterOptions))
        {
            SequenceJson.WriteHybrid(w, signal, timeline.UserId, hybrid.Elements, hybrid.Rows, read.Projection, read.Context, timeline.History,
                (hybrid.FromStream, hybrid.FromBatch, hybrid.FromLegacy), hybrid.Truncated, consumer, routes.AssemblyVersion,
                [.. routes.Decisions.Select(d => (d.EventType, d.ServedByWeft))]);
        }

        Begin(context, 200);
        context.Response.ContentLength = body.WrittenCount;
        context.Response.BodyWriter.Write(body.WrittenSpan);
        if (body.Capacity > 4 * 1024 * 1024)
        {
            t_body = null; // as for plain reads: no rare huge response's buffer kept per thread
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static void CountLegacy(ServingState state, string signal, string outcome, long start)
    {
        state.Metrics.Count("weft_legacy_requests_total", "Requests to legacy endpoints for hybrid sequences, by signal and outcome (ok, failed, or not_asked while the endpoint's breaker is open)", 1, ("signal", signal), ("outcome", outcome));
        state.Metrics.Observe("weft_legacy_request_duration_seconds", "Latency of legacy endpoints' answers for hybrid sequences, by signal", Stopwatch.GetElapsedTime(start).TotalSeconds, ("signal", signal));
    }
}
