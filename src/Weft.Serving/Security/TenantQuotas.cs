using System.Collections.Frozen;
using Weft.Engine.Configuration;

namespace Weft.Serving.Security;

/// <summary>
/// One tenant's average rate of something (events posted, sequences read), as a token bucket that may
/// go into debt: a request is taken whole while the bucket holds any tokens, and its cost comes off
/// even when that leaves the bucket below zero; the next is refused until the rate has paid the debt
/// back. So a request larger than a second's worth (a 10,000-event post under 1,000 events a second)
/// is never refused for its size alone, and the tenant's average still keeps to the rate. The bucket
/// holds at most a second's worth, so an idle tenant bursts that much.
/// </summary>
internal sealed class RateQuota
{
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private double _tokens;
    private DateTimeOffset _updated;

    public RateQuota(long perSecond, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(perSecond, 1);
        PerSecond = perSecond;
        _time = time;
        _tokens = perSecond;
        _updated = time.GetUtcNow();
    }

    public long PerSecond { get; }

    /// <summary>
    /// Takes <paramref name="cost"/> when the bucket is not in debt; else takes nothing and returns
    /// false, with how long until it is out of debt.
    /// </summary>
    public bool TryTake(long cost, out TimeSpan retryAfter)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            // A clock set back refills nothing (and does not drain either).
            double elapsed = Math.Max(0, (now - _updated).TotalSeconds);
            _updated = now > _updated ? now : _updated;
            _tokens = Math.Min(PerSecond, _tokens + (elapsed * PerSecond));
            if (_tokens > 0)
            {
                _tokens -= cost;
                retryAfter = TimeSpan.Zero;
                return true;
            }

            // Past the moment the debt is repaid: at that moment the bucket holds 0, which still refuses.
            retryAfter = TimeSpan.FromSeconds((-_tokens + 1) / PerSecond);
            return false;
        }
    }
}

/// <summary>The rate limits of every tenant that has one (<c>tenants[].max_events_per_second</c>, <c>max_sequences_per_second</c>).</summary>
internal sealed class TenantQuotas
{
    private readonly FrozenDictionary<string, (RateQuota? Events, RateQuota? Sequences, int Index)> _tenants;

    public TenantQuotas(IReadOnlyList<TenantConfig> tenants, TimeProvider time)
    {
        var byName = new Dictionary<string, (RateQuota?, RateQuota?, int)>(StringComparer.Ordinal);
        for (int i = 0; i < tenants.Count; i++)
        {
            var t = tenants[i];
            if (t.MaxEventsPerSecond is not null || t.MaxSequencesPerSecond is not null)
            {
                byName[t.Name] = (
                    t.MaxEventsPerSecond is { } events ? new RateQuota(events, time) : null,
                    t.MaxSequencesPerSecond is { } sequences ? new RateQuota(sequences, time) : null,
                    i);
            }
        }

        _tenants = byName.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Null when the tenant may post <paramref name="events"/> events now, else the refusal.</summary>
    public QuotaRefusal? TakeEvents(string tenant, int events) =>
        _tenants.TryGetValue(tenant, out var q) && q.Events is { } quota ? Take(quota, tenant, q.Index, events, "max_events_per_second", "events") : null;

    /// <summary>Null when the tenant may read <paramref name="sequences"/> sequences now, else the refusal.</summary>
    public QuotaRefusal? TakeSequences(string tenant, int sequences) =>
        _tenants.TryGetValue(tenant, out var q) && q.Sequences is { } quota ? Take(quota, tenant, q.Index, sequences, "max_sequences_per_second", "sequences") : null;

    private static QuotaRefusal? Take(RateQuota quota, string tenant, int index, int cost, string option, string what)
    {
        if (quota.TryTake(cost, out var wait))
        {
            return null;
        }

        int seconds = (int)Math.Clamp(Math.Ceiling(wait.TotalSeconds), 1, int.MaxValue);
        return new QuotaRefusal(
            $"tenant '{tenant}' is over its {option} ({quota.PerSecond:N0} {what} a second on average): this request ({cost:N0} {what}) was refused; retry after {seconds} s",
            $"tenants[{index}].{option}",
            option,
            seconds);
    }
}

/// <summary>A request refused for a tenant's rate: the message, the config path of the limit, the option's name, and the seconds to wait.</summary>
internal sealed record QuotaRefusal(string Message, string Limit, string Option, int RetryAfterSeconds);
