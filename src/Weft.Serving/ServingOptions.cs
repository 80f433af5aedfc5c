using System.Globalization;
using System.Text.Json;
using Weft.Definitions;
using Weft.Engine.Configuration;

namespace Weft.Serving;

/// <summary>Whether <c>weft serve</c> runs the streaming runtime in its own process.</summary>
public enum ServingStreamMode
{
    /// <summary>Run it when the source is the embedded log (a single node); with Kafka, <c>weft stream</c> processes do.</summary>
    Auto,

    /// <summary>Never: this server only reads (e.g. one of many stateless servers over PostgreSQL).</summary>
    Off,
}

/// <summary>
/// Settings of <c>weft serve</c>, read from the <c>serving</c> object of <c>weft.json</c>. Immutable; every
/// property has the default documented here and in <c>docs/serving.md</c>; <see cref="Validate"/> and
/// <see cref="FromConfig"/> name the option (as its JSON path) and the value of every problem.
/// </summary>
public sealed record ServingOptions
{
    public static ServingOptions Default { get; } = new();

    /// <summary>Where to listen (<c>urls</c>, default <c>http://127.0.0.1:8080</c>); <c>weft serve --urls</c> overrides it.</summary>
    public string Urls { get; init; } = "http://127.0.0.1:8080";

    /// <summary>Largest request body, in bytes (<c>max_request_bytes</c>, default 1 MiB); larger bodies get 400.</summary>
    public int MaxRequestBytes { get; init; } = 1024 * 1024;

    /// <summary>The largest <see cref="MaxRequestBytes"/> allowed: a body is read whole into one array.</summary>
    private const int MaxRequestBytesCap = 1 << 30;

    /// <summary>Most events one <c>POST /v1/events</c> may carry (<c>max_events_per_request</c>, default 10,000).</summary>
    public int MaxEventsPerRequest { get; init; } = 10_000;

    /// <summary>Most <c>user_ids</c> one multi-get may ask for (<c>max_users_per_request</c>, default 1,000).</summary>
    public int MaxUsersPerRequest { get; init; } = 1_000;

    /// <summary>Server cap on <c>limit</c>, elements per sequence (<c>max_limit</c>, default 16,384); a signal's max_length also caps it.</summary>
    public int MaxLimit { get; init; } = 16_384;

    /// <summary>
    /// How far before <c>now − lookback</c> a read may reach (<c>history_horizon</c>, default 1d): the
    /// batch history kept in memory starts there. Older cuts are <c>weft snapshot</c>'s job.
    /// </summary>
    public TimeSpan HistoryHorizon { get; init; } = TimeSpan.FromDays(1);

    /// <summary>How often each signal's enriched table is checked for new batch commits (<c>history_refresh</c>, default 2s).</summary>
    public TimeSpan HistoryRefresh { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Users whose merged sequence is kept decoded in memory (<c>cache_users</c>, default 100,000; 0 turns
    /// the cache off). Used only when this process is the online store's writer (the embedded runtime
    /// runs in-process), since only then does it see every write that invalidates an entry.
    /// </summary>
    public int CacheUsers { get; init; } = 100_000;

    /// <summary>
    /// Bytes of rendered <c>columns</c> JSON kept for cached users (<c>cache_json_bytes</c>, default 256 MiB; 0
    /// turns it off), so re-reading an unchanged sequence copies bytes instead of writing every value.
    /// </summary>
    public long CacheJsonBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>Whether to run the streaming runtime in-process (<c>stream</c>: <c>auto</c> or <c>off</c>, default auto).</summary>
    public ServingStreamMode Stream { get; init; } = ServingStreamMode.Auto;

    /// <summary>How long the in-process runtime waits for the first record of a micro-batch (<c>stream_max_wait</c>, default 20ms).</summary>
    public TimeSpan StreamMaxWait { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>How often the in-process runtime flushes stream buckets to the lake and commits offsets (<c>stream_flush_interval</c>, default 5s).</summary>
    public TimeSpan StreamFlushInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option (as in weft.json) and its value.</summary>
    public void Validate()
    {
        foreach (var (option, value, message) in Problems())
        {
            throw new ArgumentOutOfRangeException(option, value, message);
        }
    }

    /// <summary>Every invalid option: its name in weft.json, its value, and a message naming both.</summary>
    internal IEnumerable<(string Option, object Value, string Message)> Problems()
    {
        var checks = new (bool Ok, string Option, object Value, string Expected)[]
        {
            (Hosting.ListenUrls.FirstInvalid(Urls) is null, "urls", Urls, "absolute http URLs without a path, ';'-separated, each with an IP address or localhost as host (another host name would listen on every interface), e.g. http://127.0.0.1:8080"),
            (MaxRequestBytes is >= 1024 and <= MaxRequestBytesCap, "max_request_bytes", MaxRequestBytes, "between 1024 and 1073741824 (1 GiB, one request body held in memory)"),
            (MaxEventsPerRequest >= 1, "max_events_per_request", MaxEventsPerRequest, "at least 1"),
            (MaxUsersPerRequest >= 1, "max_users_per_request", MaxUsersPerRequest, "at least 1"),
            (MaxLimit >= 1, "max_limit", MaxLimit, "at least 1"),
            (HistoryHorizon >= TimeSpan.Zero, "history_horizon", HistoryHorizon, "0 or more"),
            (HistoryRefresh > TimeSpan.Zero, "history_refresh", HistoryRefresh, "positive"),
            (CacheUsers >= 0, "cache_users", CacheUsers, "0 (off) or more"),
            (CacheJsonBytes >= 0, "cache_json_bytes", CacheJsonBytes, "0 (off) or more"),
            (StreamMaxWait >= TimeSpan.Zero, "stream_max_wait", StreamMaxWait, "0 or more"),
            (StreamFlushInterval > TimeSpan.Zero, "stream_flush_interval", StreamFlushInterval, "positive"),
        };
        foreach (var (ok, option, value, expected) in checks)
        {
            if (!ok)
            {
                string shown = value is TimeSpan t ? Durations.Format(t) : Convert.ToString(value, CultureInfo.InvariantCulture)!;
                yield return (option, value, $"serving.{option} was {shown}; it must be {expected}");
            }
        }
    }

    /// <summary>The options in the <c>serving</c> object of the config file (defaults for what it leaves out).</summary>
    /// <exception cref="ConfigException">A value has the wrong type or is out of range; each problem names <c>$.serving.&lt;option&gt;</c>.</exception>
    public static ServingOptions FromConfig(WeftConfig config)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(config.ConfigPath), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        return FromJson(doc.RootElement, config.ConfigPath);
    }

    internal static ServingOptions FromJson(JsonElement root, string configPath)
    {
        var options = Default;
        if (!root.TryGetProperty("serving", out var s) || s.ValueKind == JsonValueKind.Null)
        {
            return options;
        }

        var problems = new List<DefinitionProblem>();
        if (s.ValueKind != JsonValueKind.Object)
        {
            throw new ConfigException(configPath, [new DefinitionProblem("$.serving", "'serving' must be an object of options", "see docs/serving.md")]);
        }

        string[] known = ["urls", "max_request_bytes", "max_events_per_request", "max_users_per_request", "max_limit", "history_horizon", "history_refresh", "cache_users", "cache_json_bytes", "stream", "stream_max_wait", "stream_flush_interval"];
        foreach (var p in s.EnumerateObject())
        {
            if (Array.IndexOf(known, p.Name) < 0)
            {
                problems.Add(new DefinitionProblem($"$.serving.{p.Name}", $"unknown option '{p.Name}'", "one of " + string.Join(", ", known)));
            }
        }

        // A whole number too large for the option reads "must be a 32-bit integer", not "an integer".
        static string IntegerIn(string width, JsonElement v) =>
            v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d) && Math.Floor(d) == d
                ? $"{width} integer" : "an integer";

        int Int(string name, int current)
        {
            if (!s.TryGetProperty(name, out var v))
            {
                return current;
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int n))
            {
                problems.Add(new DefinitionProblem($"$.serving.{name}", $"'{name}' must be {IntegerIn("a 32-bit", v)}, got {v.GetRawText()}"));
                return current;
            }

            return n;
        }

        long Long(string name, long current)
        {
            if (!s.TryGetProperty(name, out var v))
            {
                return current;
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n))
            {
                problems.Add(new DefinitionProblem($"$.serving.{name}", $"'{name}' must be {IntegerIn("a 64-bit", v)}, got {v.GetRawText()}"));
                return current;
            }

            return n;
        }

        TimeSpan Duration(string name, TimeSpan current)
        {
            if (!s.TryGetProperty(name, out var v))
            {
                return current;
            }

            if (v.ValueKind != JsonValueKind.String || !Durations.TryParse(v.GetString(), out var d))
            {
                problems.Add(new DefinitionProblem($"$.serving.{name}", $"'{name}' must be a duration, got {v.GetRawText()}", "e.g. \"250ms\", \"5s\", \"1d\""));
                return current;
            }

            return d;
        }

        string urls = options.Urls;
        if (s.TryGetProperty("urls", out var u))
        {
            if (u.ValueKind == JsonValueKind.String && u.GetString()!.Length > 0)
            {
                urls = u.GetString()!;
            }
            else
            {
                problems.Add(new DefinitionProblem("$.serving.urls", $"'urls' must be a non-empty string, got {u.GetRawText()}", "e.g. \"http://127.0.0.1:8080\""));
            }
        }

        var stream = options.Stream;
        if (s.TryGetProperty("stream", out var st))
        {
            switch (st.ValueKind == JsonValueKind.String ? st.GetString() : null)
            {
                case "auto": stream = ServingStreamMode.Auto; break;
                case "off": stream = ServingStreamMode.Off; break;
                default: problems.Add(new DefinitionProblem("$.serving.stream", $"'stream' must be \"auto\" or \"off\", got {st.GetRawText()}")); break;
            }
        }

        options = new ServingOptions
        {
            Urls = urls,
            MaxRequestBytes = Int("max_request_bytes", options.MaxRequestBytes),
            MaxEventsPerRequest = Int("max_events_per_request", options.MaxEventsPerRequest),
            MaxUsersPerRequest = Int("max_users_per_request", options.MaxUsersPerRequest),
            MaxLimit = Int("max_limit", options.MaxLimit),
            HistoryHorizon = Duration("history_horizon", options.HistoryHorizon),
            HistoryRefresh = Duration("history_refresh", options.HistoryRefresh),
            CacheUsers = Int("cache_users", options.CacheUsers),
            CacheJsonBytes = Long("cache_json_bytes", options.CacheJsonBytes),
            Stream = stream,
            StreamMaxWait = Duration("stream_max_wait", options.StreamMaxWait),
            StreamFlushInterval = Duration("stream_flush_interval", options.StreamFlushInterval),
        };

        // Range checks run even when other options have type problems, so one edit fixes them all; an
        // option with a type problem kept its default, which is in range and so not reported twice.
        foreach (var (option, _, message) in options.Problems())
        {
            problems.Add(new DefinitionProblem($"$.serving.{option}", message));
        }

        return problems.Count == 0 ? options : throw new ConfigException(configPath, problems);
    }

    /// <summary>The options as one log line (nothing here is secret).</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"urls={Urls} max_request_bytes={MaxRequestBytes} max_events_per_request={MaxEventsPerRequest} max_users_per_request={MaxUsersPerRequest} max_limit={MaxLimit} history_horizon={Durations.Format(HistoryHorizon)} history_refresh={Durations.Format(HistoryRefresh)} cache_users={CacheUsers} cache_json_bytes={CacheJsonBytes} stream={Stream.ToString().ToLowerInvariant()} stream_max_wait={Durations.Format(StreamMaxWait)} stream_flush_interval={Durations.Format(StreamFlushInterval)}");
}
