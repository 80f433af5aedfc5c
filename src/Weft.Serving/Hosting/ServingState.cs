using System.Collections.Frozen;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Weft.Engine.Observability;
using Weft.Serving.Security;
using Weft.Serving.Sequences;

namespace Weft.Serving.Hosting;

/// <summary>What the endpoints share: the frozen configuration, the signals, keys, the sequence reader, the in-process stream and the metrics.</summary>
internal sealed class ServingState
{
    public ServingState(WeftConfig config, ServingOptions options, IReadOnlyList<ServedSignal> signals, ApiKeys keys, SequenceService sequences, EmbeddedStream? stream, TimeProvider time)
    {
        Config = config;
        Options = options;
        Signals = signals;
        ByName = signals.ToFrozenDictionary(s => s.Name, StringComparer.Ordinal);
        Keys = keys;
        Sequences = sequences;
        Stream = stream;
        Time = time;
        TenantEventTypes = EventTypesByTenant(signals);
        Quotas = new TenantQuotas(config.Tenants, time);
    }

    /// <summary>The tenants' rate limits (<c>tenants[].max_events_per_second</c>, <c>max_sequences_per_second</c>).</summary>
    public TenantQuotas Quotas { get; }

    /// <summary>
    /// Null when the tenant may post <paramref name="events"/> events and read <paramref name="sequences"/>
    /// sequences now (and they are counted against its limits); else the 429, counted in
    /// <c>weft_serving_throttled_total</c>.
    /// </summary>
    public Http.ApiError? Throttled(string tenant, int events = 0, int sequences = 0)
    {
        var refusal = (events > 0 ? Quotas.TakeEvents(tenant, events) : null) ?? (sequences > 0 ? Quotas.TakeSequences(tenant, sequences) : null);
        if (refusal is null)
        {
            return null;
        }

        Metrics.Count("weft_serving_throttled_total", "Requests refused with 429 for a tenant's rate limit, by tenant and limit", 1, ("tenant", tenant), ("limit", refusal.Option));
        return Http.ApiError.TooManyRequests(refusal);
    }

    public WeftConfig Config { get; }

    public ServingOptions Options { get; }

    public IReadOnlyList<ServedSignal> Signals { get; }

    public FrozenDictionary<string, ServedSignal> ByName { get; }

    public ApiKeys Keys { get; }

    public SequenceService Sequences { get; }

    /// <summary>The in-process streaming runtime, or null when this server only reads.</summary>
    public EmbeddedStream? Stream { get; }

    public TimeProvider Time { get; }

    /// <summary>The migration routes (docs/migration.md), when the deployment migrates off a legacy pipeline; null otherwise.</summary>
    public Weft.Migration.MigrationRouter? Routes { get; init; }

    /// <summary>Legacy pipelines' sequence endpoints by signal (<c>legacy.&lt;signal&gt;.endpoint</c>), for hybrid sequences.</summary>
    public IReadOnlyDictionary<string, Weft.Migration.LegacyEndpoint> LegacyEndpoints { get; init; } = new Dictionary<string, Weft.Migration.LegacyEndpoint>();

    /// <summary>Request latencies, history and cache figures; the runtime keeps its own registry (<see cref="EmbeddedStream.Runtime"/>).</summary>
    public WeftMetrics Metrics { get; } = new();

    /// <summary>
    /// Event types a tenant may post: those included by at least one of its signals and by no other
    /// tenant's signal. The streaming runtime routes an event to every signal that includes its type, so
    /// an event type shared between tenants could carry one tenant's events into another's sequences.
    /// </summary>
    public FrozenDictionary<string, FrozenSet<string>> TenantEventTypes { get; }

    /// <summary>Event types included by signals of more than one tenant (refused for everyone), with the tenants.</summary>
    public IReadOnlyDictionary<string, string[]> SharedEventTypes { get; private set; } = new Dictionary<string, string[]>();

    /// <summary>The signal <paramref name="name"/> when <paramref name="tenant"/> owns it; null otherwise (absent and foreign look the same).</summary>
    public ServedSignal? SignalFor(string tenant, string name) =>
        ByName.TryGetValue(name, out var s) && string.Equals(s.Definition.Tenant, tenant, StringComparison.Ordinal) ? s : null;

    public long NowMicros => Timestamps.ToMicros(Time.GetUtcNow());

    private FrozenDictionary<string, FrozenSet<string>> EventTypesByTenant(IReadOnlyList<ServedSignal> signals)
    {
        var owners = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var s in signals)
        {
            foreach (var type in s.Definition.EventTypes)
            {
                if (!owners.TryGetValue(type.Name, out var set))
                {
                    owners[type.Name] = set = new SortedSet<string>(StringComparer.Ordinal);
                }

                set.Add(s.Definition.Tenant);
            }
        }

        var byTenant = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var shared = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var (type, tenants) in owners)
        {
            if (tenants.Count > 1)
            {
                shared[type] = [.. tenants];
                continue;
            }

            string tenant = tenants.Min!;
            if (!byTenant.TryGetValue(tenant, out var types))
            {
                byTenant[tenant] = types = new HashSet<string>(StringComparer.Ordinal);
            }

            types.Add(type);
        }

        SharedEventTypes = shared;
        return byTenant.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToFrozenSet(StringComparer.Ordinal), StringComparer.Ordinal);
    }
}
