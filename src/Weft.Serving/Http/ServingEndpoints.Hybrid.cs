using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Weft.Definitions;
using Weft.Engine;
using Weft.Migration;
using Weft.Serving.Hosting;
using Weft.Serving.Sequences;

namespace Weft.Serving.Http;

/// <summary>
/// Hybrid sequences during a migration off a legacy pipeline (docs/migration.md): <c>GET …/sequence?consumer=C</c>
/// and the multi-get with <c>"consumer"</c>.
/// </summary>
internal static partial class ServingEndpoints
{
    /// <summary>Reads of a legacy endpoint a multi-get has out at once.</summary>
    private const int LegacyReadsInFlight = 8;

    /// <summary>One user's routes and, when some types are routed to legacy, legacy's answer.</summary>
    private sealed record UserAssembly(UserTimeline Timeline, RouteSet Routes, HashSet<string> LegacyTypes, EventBatch Legacy);

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

        var (read, error) = await PrepareReadAsync(state, tenant, signalName, userText, args, context.RequestAborted, cut: false).ConfigureAwait(false);
        if (error is null && string.IsNullOrWhiteSpace(consumer))
        {
            error = ApiError.BadRequest("consumer, when given, names the model or service reading (routes are per consumer)", "consumer");
        }
        else if (error is null && Weft.Migration.MigrationRouting.ConsumerProblem(consumer) is { } badConsumer)
        {
            error = ApiError.BadRequest(badConsumer, "consumer");
        }

        if (error is not null)
        {
            await WriteErrorAsync(context, error).ConfigureAwait(false);
            return;
        }

        var (assemblies, failure) = await AssembleAsync(state, read.Signal, [read.Sequence.Timeline], consumer, !HttpMethods.IsHead(context.Request.Method), context.RequestAborted).ConfigureAwait(false);
        if (failure is not null)
        {
            await WriteErrorAsync(context, failure).ConfigureAwait(false);
            return;
        }

        var body = t_body ??= new ArrayBufferWriter<byte>(64 * 1024);
        body.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(body, SequenceJson.WriterOptions))
        {
            WriteHybrid(w, read.Signal, assemblies[0], read.Projection, read.Context, consumer, includeSignal: true);
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

    /// <summary>The multi-get with a consumer: each user's hybrid sequence, in request order; one user legacy cannot answer fails the request.</summary>
    private static async Task HybridSequencesAsync(HttpContext context, ServingState state, ServedSignal signal, UserTimeline[] timelines, int[] projection, ReadContext read, string consumer)
    {
        var (assemblies, failure) = await AssembleAsync(state, signal, timelines, consumer, recordExposures: true, context.RequestAborted).ConfigureAwait(false);
        if (failure is not null)
        {
            await WriteErrorAsync(context, failure).ConfigureAwait(false);
            return;
        }

        Begin(context, 200);
        using (var w = new Utf8JsonWriter(context.Response.BodyWriter, SequenceJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("signal"u8, signal.Name);
            w.WriteStartArray("sequences"u8);
            long sent = 0;
            foreach (var assembly in assemblies)
            {
                WriteHybrid(w, signal, assembly, projection, read, consumer, includeSignal: false);
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

    /// <summary>Each user's routes, and legacy's answers for the users with types routed to legacy (a few at a time); the error to answer instead, if any.</summary>
    private static async Task<(UserAssembly[] Assemblies, ApiError? Failure)> AssembleAsync(ServingState state, ServedSignal signal, IReadOnlyList<UserTimeline> timelines, string consumer, bool recordExposures, CancellationToken cancellationToken)
    {
        var types = signal.Definition.EventTypes.Select(t => t.Name).ToList();
        var assemblies = new UserAssembly[timelines.Count];
        var asked = new List<int>();
        for (int i = 0; i < timelines.Count; i++)
        {
            long user = timelines[i].UserId;
            RouteSet routes = state.Routes is { } router
                ? await router.RouteAsync(signal.Name, types, consumer, user, cancellationToken, recordExposures).ConfigureAwait(false)
                : new RouteSet([.. types.Select(t => new RouteDecision(t, true, MigrationStage.LegacyDeprecated, null, MigrationRouting.Bucket(signal.Name, t, user)))], 0);
            var legacyTypes = routes.Decisions.Where(d => !d.ServedByWeft).Select(d => d.EventType).ToHashSet(StringComparer.Ordinal);
            assemblies[i] = new UserAssembly(timelines[i], routes, legacyTypes, EventBatch.Empty(signal.SequenceColumns));
            if (legacyTypes.Count > 0)
            {
                asked.Add(i);
            }
        }

        if (asked.Count == 0)
        {
            return (assemblies, null);
        }

        if (!state.LegacyEndpoints.TryGetValue(signal.Name, out var endpoint))
        {
            var first = assemblies[asked[0]];
            return (assemblies, new ApiError(409,
                $"event type(s) {string.Join(", ", first.LegacyTypes.Order(StringComparer.Ordinal))} are served to consumer '{ReadRequest.Shown(consumer)}' by legacy for user {first.Timeline.UserId}, and legacy.{signal.Name}.endpoint is not configured: "
                + "Weft cannot assemble the sequence (configure the endpoint, or read routes and combine the two sides)", "consumer"));
        }

        var failures = new string?[assemblies.Length];
        await Parallel.ForEachAsync(asked, new ParallelOptions { MaxDegreeOfParallelism = LegacyReadsInFlight, CancellationToken = cancellationToken }, async (i, ct) =>
        {
            long start = Stopwatch.GetTimestamp();
            try
            {
                // Only the types routed to legacy for this user: the others are Weft's, and reading them would be wasted.
                var fetched = await endpoint.FetchAsync(assemblies[i].Timeline.UserId, signal.SequenceColumns, ct, types: assemblies[i].LegacyTypes).ConfigureAwait(false);
                assemblies[i] = assemblies[i] with { Legacy = fetched.Rows };
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
                failures[i] = e.Message;
            }
        }).ConfigureAwait(false);

        int failed = Array.FindIndex(failures, f => f is not null);
        return failed < 0 ? (assemblies, null) : (assemblies, new ApiError(502, failures[failed]!));
    }

    private static void WriteHybrid(Utf8JsonWriter w, ServedSignal signal, UserAssembly assembly, int[] projection, in ReadContext read, string consumer, bool includeSignal)
    {
        // Weft's side uncapped, so that elements of legacy's types cannot crowd Weft's out of the length.
        var timeline = assembly.Timeline;
        var cut = read.Cut;
        var weftRows = new List<int>();
        timeline.Select(cut with { MaxLength = int.MaxValue }, weftRows, t_seen ??= new HashSet<string>(StringComparer.Ordinal));
        var hybrid = HybridAssembly.Assemble(signal.SequenceColumns, timeline.Rows, timeline.BatchCount, weftRows, assembly.Legacy, assembly.LegacyTypes, cut);
        SequenceJson.WriteHybrid(w, signal, timeline.UserId, hybrid.Elements, hybrid.Rows, projection, read, timeline.History,
            (hybrid.FromStream, hybrid.FromBatch, hybrid.FromLegacy), hybrid.Truncated, consumer, assembly.Routes.AssemblyVersion,
            [.. assembly.Routes.Decisions.Select(d => (d.EventType, d.ServedByWeft))], includeSignal);
    }

    private static void CountLegacy(ServingState state, string signal, string outcome, long start)
    {
        state.Metrics.Count("weft_legacy_requests_total", "Requests to legacy endpoints for hybrid sequences, by signal and outcome (ok, failed, or not_asked while the endpoint's breaker is open)", 1, ("signal", signal), ("outcome", outcome));
        if (outcome != "not_asked")
        {
            // Only requests made: an open breaker's instant refusals pulled the p99 of a timing-out endpoint to ~0 ms.
            state.Metrics.Observe("weft_legacy_request_duration_seconds", "Latency of legacy endpoints' answers (and failures) for hybrid sequences, by signal; requests the open breaker did not make are not in it", Stopwatch.GetElapsedTime(start).TotalSeconds, ("signal", signal));
        }
    }

    /// <summary>One signal's migration as <c>/v1/status</c> reports it.</summary>
    private sealed record SignalMigration(IReadOnlyList<MigrationStatus> Statuses, long AssemblyVersion, LegacyEndpoint? Endpoint);

    /// <summary>
    /// The migrations of the tenant's signals that have one (a type past not-started, or a legacy
    /// endpoint configured), read before the status is written: the ledger is read asynchronously.
    /// </summary>
    private static async Task<Dictionary<string, SignalMigration>> MigrationsAsync(ServingState state, string tenant, CancellationToken cancellationToken)
    {
        var migrations = new Dictionary<string, SignalMigration>(StringComparer.Ordinal);
        if (state.Routes is not { } router)
        {
            return migrations;
        }

        foreach (var signal in state.Signals.Where(s => s.Definition.Tenant == tenant))
        {
            var types = signal.Definition.EventTypes.Select(t => t.Name).ToList();
            var (statuses, version) = await router.StatusAsync(signal.Name, types, cancellationToken).ConfigureAwait(false);
            state.LegacyEndpoints.TryGetValue(signal.Name, out var endpoint);
            if (endpoint is not null || statuses.Values.Any(s => s.Stage != MigrationStage.NotStarted))
            {
                migrations[signal.Name] = new SignalMigration([.. types.Select(t => statuses[t])], version, endpoint);
            }
        }

        return migrations;
    }

    private static void WriteMigration(Utf8JsonWriter w, SignalMigration migration)
    {
        w.WriteStartObject("migration"u8);
        w.WriteNumber("assembly_version"u8, migration.AssemblyVersion);
        if (migration.Endpoint is { } endpoint)
        {
            var health = endpoint.Health;
            w.WriteStartObject("legacy_endpoint"u8);
            w.WriteString("url"u8, endpoint.DisplayUrl);
            w.WriteString("timeout"u8, Durations.Format(endpoint.Timeout));
            w.WriteNumber("failures_in_a_row"u8, health.FailuresInARow);
            TimestampOrNull(w, "not_asked_until"u8, health.NotAskedUntil is { } until ? Timestamps.ToMicros(until) : null);
            w.WriteString("last_failure"u8, health.LastFailure);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("legacy_endpoint"u8);
        }

        w.WriteStartArray("event_types"u8);
        foreach (var status in migration.Statuses)
        {
            w.WriteStartObject();
            w.WriteString("event_type"u8, status.EventType);
            w.WriteString("stage"u8, MigrationStages.Name(status.Stage));
            TimestampOrNull(w, "since"u8, status.Since is { } since ? Timestamps.ToMicros(since) : null);
            w.WriteStartArray("routes"u8);
            foreach (var route in status.Routes)
            {
                w.WriteStartObject();
                w.WriteString("consumer"u8, route.Consumer);
                w.WriteNumber("percent"u8, route.Percent);
                TimestampOrNull(w, "since"u8, Timestamps.ToMicros(route.Since));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartObject("evidence"u8);
            WriteEvidence(w, "shadow"u8, status.Shadow);
            WriteEvidence(w, "comparison"u8, status.Comparison);
            WriteEvidence(w, "abtest"u8, status.AbTest);
            w.WriteStartArray("outcomes"u8); // per consumer the outcome test that holds its route (the latest, or an uncleared failure)
            foreach (var outcome in status.Outcomes)
            {
                w.WriteStartObject();
                w.WriteString("consumer"u8, outcome.Consumer);
                WriteEvidenceFields(w, outcome);
                w.WriteBoolean("undecided"u8, OnlineOutcome.IsUndecided(outcome));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteEvidence(Utf8JsonWriter w, ReadOnlySpan<byte> name, MigrationEvidence? evidence)
    {
        if (evidence is null)
        {
            w.WriteNull(name);
            return;
        }

        w.WriteStartObject(name);
        WriteEvidenceFields(w, evidence);
        w.WriteEndObject();
    }

    private static void WriteEvidenceFields(Utf8JsonWriter w, MigrationEvidence evidence)
    {
        w.WriteNumber("id"u8, evidence.Id);
        w.WriteBoolean("passed"u8, evidence.Passed);
        TimestampOrNull(w, "at"u8, Timestamps.ToMicros(evidence.At));
        w.WriteString("summary"u8, evidence.Summary);
    }
}
