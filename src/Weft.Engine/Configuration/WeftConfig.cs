using System.Collections.Immutable;
using System.Text.Json;
using Weft.Definitions;

namespace Weft.Engine.Configuration;

/// <summary>Formats of raw event archives and enrichment tables that Weft reads.</summary>
public enum TableFormat
{
    /// <summary>A Delta table of Parquet files (what <c>weft gen</c> writes).</summary>
    Delta,
    /// <summary>A folder (searched recursively) or a single file of Parquet.</summary>
    Parquet,
    /// <summary>A folder or a single file of JSON lines, one event per line.</summary>
    Jsonl,
    /// <summary>A folder or a single file of CSV with a header row; column names as in the raw schema.</summary>
    Csv,
}

/// <summary>A table Weft reads: where and in which format. Paths are absolute once loaded.</summary>
public sealed record TableLocation(string Path, TableFormat Format)
{
    /// <summary>
    /// Read when it exists and holds files, else passed over: the stream's raw archive
    /// (<see cref="SourceConfig.Archive"/>), which a config that has not streamed yet lacks.
    /// </summary>
    public bool Optional { get; init; }
}

/// <summary>
/// A legacy pipeline being migrated from, through its adapters: its enriched events as a table
/// (<see cref="Output"/>) and, optionally, a second run of it over the same input (<see cref="Replica"/>),
/// from which the noise floor (legacy against itself) is measured; and its online sequences over HTTP
/// (<see cref="Endpoint"/>, a URL with <c>{user_id}</c> in it), which <c>weft serve</c> assembles
/// hybrid sequences from. At least one of the table and the endpoint is given.
/// </summary>
public sealed record LegacyConfig(TableLocation? Output, TableLocation? Replica, string? Endpoint = null)
{
    public const string UserIdToken = "{user_id}";

    /// <summary>
    /// A URL (as written, percent-encoding kept) without its user info and with its query values
    /// elided, keys kept: either may hold a credential (<c>http://svc:secret@host/…?token=…</c>), and
    /// these texts reach API clients and the dashboard.
    /// </summary>
    public static string Redact(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        int authority = scheme < 0 ? 0 : scheme + 3;
        int pathStart = url.IndexOfAny(['/', '?', '#'], authority);
        int authorityEnd = pathStart < 0 ? url.Length : pathStart;
        int at = authorityEnd > authority ? url.LastIndexOf('@', authorityEnd - 1, authorityEnd - authority) : -1;
        if (at >= 0)
        {
            url = string.Concat(url.AsSpan(0, authority), "…@", url.AsSpan(at + 1));
        }

        int query = url.IndexOf('?', StringComparison.Ordinal);
        if (query < 0)
        {
            return url;
        }

        int fragment = url.IndexOf('#', query);
        var text = new System.Text.StringBuilder(url.Length).Append(url.AsSpan(0, query + 1));
        var pairs = url[(query + 1)..(fragment < 0 ? url.Length : fragment)].Split('&');
        for (int i = 0; i < pairs.Length; i++)
        {
            int equals = pairs[i].IndexOf('=', StringComparison.Ordinal);
            text.Append(i == 0 ? "" : "&").Append(equals < 0 ? pairs[i] : pairs[i][..(equals + 1)] + "…");
        }

        return text.Append(fragment < 0 ? "" : url.AsSpan(fragment)).ToString();
    }

    /// <summary>Why a legacy endpoint URL cannot be used, or null: an absolute http(s) URL with <c>{user_id}</c> in it.</summary>
    public static string? EndpointProblem(string url)
    {
        if (!url.Contains(UserIdToken, StringComparison.Ordinal))
        {
            return "has no {user_id}: the endpoint answers one user's sequence";
        }

        return Uri.TryCreate(url.Replace(UserIdToken, "0", StringComparison.Ordinal), UriKind.Absolute, out var uri)
            && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? null
            : "is not an absolute http:// or https:// URL";
    }

    public static readonly TimeSpan DefaultEndpointTimeout = TimeSpan.FromMilliseconds(500);

    /// <summary>How long <c>weft serve</c> waits for the endpoint's answer before the read fails.</summary>
    public TimeSpan EndpointTimeout { get; init; } = DefaultEndpointTimeout;
}

/// <summary>The online store: <c>sqlite</c> (embedded default, one file) or <c>postgres</c>.</summary>
public sealed record OnlineStoreConfig(string Kind, string? Path, string? ConnectionString)
{
    /// <summary>
    /// What to show in logs: the path, or <c>postgres:host:port/database</c> as the store names itself.
    /// Only those keys are shown: removing the password from the whole string missed its other names
    /// (<c>Pwd</c>, <c>PSW</c>) and the rest of a quoted one holding a ';'.
    /// </summary>
    public string Describe() => Kind == "sqlite" ? $"sqlite:{Path}" : $"postgres:{HostPortDatabase(ConnectionString ?? "")}";

    private static string HostPortDatabase(string connection)
    {
        var settings = new System.Data.Common.DbConnectionStringBuilder();
        try
        {
            settings.ConnectionString = connection;
        }
        catch (ArgumentException)
        {
            return "(connection string not shown: it does not parse)";
        }

        string? Value(params string[] keys) => keys.Select(k => settings.TryGetValue(k, out var v) ? Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) : null).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));
        return $"{Value("Host", "Server") ?? "localhost"}:{Value("Port") ?? "5432"}/{Value("Database", "DB") ?? Value("Username", "User Name", "User ID", "UserId", "User") ?? "postgres"}";
    }
}

/// <summary>Where the streaming path reads raw events: the embedded log (default) or Kafka.</summary>
/// <param name="Topics">Kafka: the topics read (<c>$.source.topic</c>, or several as <c>$.source.topics</c>); empty for the embedded log.</param>
public sealed record SourceConfig(string Kind, string? Path, string? BootstrapServers, ImmutableArray<string> Topics, string? GroupId)
{
    /// <summary>
    /// The folder of JSON lines the stream writes every record it reads to, before it commits them
    /// (<c>$.source.archive</c>: a path, or <c>false</c>): a raw archive the batch path reads, so an
    /// event that arrived only through this source is in the history batch recomputes. Default
    /// <c>&lt;lake&gt;/raw/stream</c> for the embedded log, which nothing else archives; none for Kafka,
    /// whose topics are usually archived by a sink of their own.
    /// </summary>
    public string? Archive { get; init; }

    /// <summary>
    /// Embedded log: how long records every consumer group has read stay on disk before their segment
    /// is deleted (<c>$.source.retention</c>, 1h … 3650d, default 7d). The raw archive keeps what the
    /// stream read for the batch path either way; this is the log's own replay window.
    /// </summary>
    public TimeSpan Retention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Kafka: the client id brokers log (<c>$.source.client_id</c>, default <c>weft</c>).</summary>
    public string ClientId { get; init; } = "weft";

    /// <summary>Kafka: where a group without a committed offset starts (<c>$.source.auto_offset_reset</c>: <c>earliest</c>, the default, or <c>latest</c>).</summary>
    public string AutoOffsetReset { get; init; } = "earliest";

    /// <summary>
    /// Kafka: how long a stopping stream waits for its consumer to leave the group and close
    /// (<c>$.source.close_timeout</c>, 1s … 10m, default 60s); past it the process stops anyway and the
    /// group's session timeout moves the partitions on. Keep it under a supervisor's grace period.
    /// </summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Kafka: how long a rebalance waits for the stream to flush and commit what it processed of the
    /// partitions being taken from it (<c>$.source.rebalance_timeout</c>, 1s … 10m, default 60s); past
    /// it the partitions move on from their last commit and their next owner reads the rest again.
    /// </summary>
    public TimeSpan RebalanceTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Kafka: further librdkafka consumer properties (<c>$.source.config</c>: security, timeouts, fetch
    /// sizes), as text. A value written <c>${NAME}</c> stands for the environment variable NAME, read
    /// when the source opens, so secrets need not sit in the file (see <see cref="EnvironmentReference"/>).
    /// </summary>
    public ImmutableSortedDictionary<string, string> Config { get; init; } = ImmutableSortedDictionary<string, string>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>
    /// Keys of <c>$.source.config</c> the stream sets itself, with where to set them instead: the
    /// connection and the group are options of their own, and offsets move only when the lake and the
    /// online store hold the records (never by librdkafka's auto-commit).
    /// </summary>
    public static readonly ImmutableSortedDictionary<string, string> ReservedKafkaKeys = new Dictionary<string, string>
    {
        ["bootstrap.servers"] = "set $.source.bootstrap_servers",
        ["metadata.broker.list"] = "set $.source.bootstrap_servers",
        ["group.id"] = "set $.source.group_id",
        ["client.id"] = "set $.source.client_id",
        ["auto.offset.reset"] = "set $.source.auto_offset_reset",
        ["enable.auto.commit"] = "the stream commits offsets itself, once the lake and the online store hold the records",
        ["enable.auto.offset.store"] = "the stream commits offsets itself, once the lake and the online store hold the records",
    }.ToImmutableSortedDictionary(StringComparer.Ordinal);

    /// <summary>
    /// The environment variable a config value names when it is written <c>${NAME}</c> (letters, digits
    /// and <c>_</c>, not starting with a digit), else null.
    /// </summary>
    public static string? EnvironmentReference(string value)
    {
        if (value.Length < 4 || !value.StartsWith("${", StringComparison.Ordinal) || value[^1] != '}')
        {
            return null;
        }

        var name = value[2..^1];
        if (char.IsAsciiDigit(name[0]))
        {
            return null;
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                return null;
            }
        }

        return name;
    }
}

/// <summary>A tenant and the SHA-256 hashes (hex) of its API keys; keys themselves are never stored.</summary>
public sealed record TenantConfig(string Name, ImmutableArray<string> ApiKeySha256)
{
    /// <summary>Events a second <c>POST /v1/events</c> takes from the tenant on average (<c>max_events_per_second</c>); null: no limit.</summary>
    public long? MaxEventsPerSecond { get; init; }

    /// <summary>Sequences a second the tenant reads on average, a multi-get counting each user (<c>max_sequences_per_second</c>); null: no limit.</summary>
    public long? MaxSequencesPerSecond { get; init; }
}

/// <summary>
/// The deployment configuration, <c>weft.json</c> (DESIGN.md, "Command line"): where the lake is, which
/// signals run, which raw archives and enrichment tables feed them, the online store, the stream
/// source and the tenants. Relative paths are resolved against the folder of the file. Built once
/// and frozen; every runtime reads the same record.
/// </summary>
public sealed record WeftConfig
{
    public required string ConfigPath { get; init; }

    /// <summary>Root of the tables: <c>enriched/&lt;signal&gt;</c>, <c>sequences/&lt;signal&gt;</c>, <c>dead_letters/&lt;signal&gt;</c>.</summary>
    public required string Lake { get; init; }

    /// <summary>Folder of compiled signal JSON files (<c>weft compile</c> output).</summary>
    public required string Signals { get; init; }

    /// <summary>Raw event archives, read by the batch path.</summary>
    public required ImmutableArray<TableLocation> Archives { get; init; }

    /// <summary>Enrichment tables by source name.</summary>
    public required ImmutableDictionary<string, TableLocation> Enrichments { get; init; }

    public required OnlineStoreConfig OnlineStore { get; init; }

    public required SourceConfig Source { get; init; }

    public required ImmutableArray<TenantConfig> Tenants { get; init; }

    /// <summary>Legacy pipelines being migrated from, by the signal that replaces them (<c>weft migrate</c>).</summary>
    public ImmutableDictionary<string, LegacyConfig> Legacy { get; init; } = ImmutableDictionary<string, LegacyConfig>.Empty;

    /// <summary>The SQLite file holding migration stages, routes, evidence and the audit log.</summary>
    public string MigrationStore { get; init; } = "migration.db";

    public string EnrichedTable(string signal) => System.IO.Path.Combine(Lake, "enriched", signal);

    public string SequencesTable(string signal) => System.IO.Path.Combine(Lake, "sequences", signal);

    public string DeadLetterTable(string signal) => System.IO.Path.Combine(Lake, "dead_letters", signal);

    public string LateEventTable(string signal) => System.IO.Path.Combine(Lake, "late_events", signal);

    /// <summary>Reads and validates <paramref name="path"/>; every problem is reported with its JSON path.</summary>
    public static WeftConfig Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException(path, [new DefinitionProblem("$", $"no config file at '{path}'", "pass --config with the path of a weft.json")]);
        }

        byte[] bytes = File.ReadAllBytes(path);
        return Parse(bytes, System.IO.Path.GetFullPath(path));
    }

    /// <summary>The keys a weft.json may hold at its top level.</summary>
    private static readonly string[] TopLevelKeys = ["lake", "signals", "archives", "enrichments", "online_store", "source", "serving", "tenants", "legacy", "migration_store"];

    /// <summary>Parses config JSON; relative paths are resolved against the folder of <paramref name="configPath"/>.</summary>
    public static WeftConfig Parse(ReadOnlySpan<byte> json, string configPath)
    {
        var problems = new List<DefinitionProblem>();
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new ConfigException(configPath, [new DefinitionProblem("$", $"not valid JSON at {JsonErrors.Where(ex)}")]);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ConfigException(configPath, [new DefinitionProblem("$", "the config must be a JSON object")]);
            }

            if (!JsonErrors.CheckText(root, "$", problems))
            {
                throw new ConfigException(configPath, problems);
            }

            // A misspelt key inside a section would otherwise fall back to its default without a word
            // ("pth" → the default log folder, "api_key_sha256" → a tenant with no keys).
            void Keys(JsonElement o, string at, params string[] known)
            {
                foreach (var property in o.EnumerateObject())
                {
                    if (System.Array.IndexOf(known, property.Name) < 0)
                    {
                        problems.Add(new DefinitionProblem($"{at}.{property.Name}", $"unknown key '{property.Name}'", ExprTyper.Suggest(property.Name, known)));
                    }
                }
            }

            string baseDir = System.IO.Path.GetDirectoryName(configPath) ?? ".";
            string Resolve(string p) => System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, p));
            string? Str(JsonElement o, string name, string at, bool required, string? hint = null)
            {
                if (o.ValueKind != JsonValueKind.Object)
                {
                    return null; // the caller reports the shape of `o`
                }

                if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
                {
                    if (required)
                    {
                        problems.Add(new DefinitionProblem($"{at}.{name}", $"'{name}' is required", hint));
                    }

                    return null;
                }

                if (v.ValueKind != JsonValueKind.String || v.GetString()!.Length == 0)
                {
                    problems.Add(new DefinitionProblem($"{at}.{name}", $"'{name}' must be a non-empty string", hint));
                    return null;
                }

                if (v.GetString()!.Contains("${", StringComparison.Ordinal))
                {
                    // Taken literally it became a folder named "${WEFT_LAKE}".
                    // The value is not shown: a connection string written with ${…} holds a password beside it.
                    problems.Add(new DefinitionProblem($"{at}.{name}", "its '${…}' is not expanded here", "environment variables (${NAME}) are read only in $.source.config values; write the value itself"));
                    return null;
                }

                return v.GetString();
            }

            TableLocation? Table(JsonElement e, string at)
            {
                if (e.ValueKind == JsonValueKind.String)
                {
                    return new TableLocation(Resolve(e.GetString()!), TableFormat.Delta);
                }

                if (e.ValueKind != JsonValueKind.Object)
                {
                    problems.Add(new DefinitionProblem(at, "a table is a path or {\"path\": ..., \"format\": \"delta|parquet|jsonl|csv\"}"));
                    return null;
                }

                Keys(e, at, "path", "format");
                var p = Str(e, "path", at, required: true);
                var f = Str(e, "format", at, required: false) ?? "delta";
                if (!Enum.TryParse<TableFormat>(f, ignoreCase: true, out var format) || int.TryParse(f, out _))
                {
                    problems.Add(new DefinitionProblem($"{at}.format", $"unknown format '{f}'", "one of delta, parquet, jsonl, csv"));
                    return null;
                }

                return p is null ? null : new TableLocation(Resolve(p), format);
            }

            // A misspelt key would otherwise fall back to its default without a word ("lakee" → ./lake).
            foreach (var property in root.EnumerateObject())
            {
                if (!TopLevelKeys.Contains(property.Name))
                {
                    problems.Add(new DefinitionProblem($"$.{property.Name}", $"unknown key '{property.Name}'", ExprTyper.Suggest(property.Name, TopLevelKeys)));
                }
            }

            var lake = Str(root, "lake", "$", required: false) ?? "lake";
            if (File.Exists(Resolve(lake)))
            {
                problems.Add(new DefinitionProblem("$.lake", $"'{Resolve(lake)}' is a file: the lake is a folder of tables", "name a folder (created when absent)"));
            }

            var signals = Str(root, "signals", "$", required: true, "the folder `weft compile` wrote the signal JSON to");

            var archives = ImmutableArray.CreateBuilder<TableLocation>();
            if (root.TryGetProperty("archives", out var arch))
            {
                if (arch.ValueKind != JsonValueKind.Array)
                {
                    problems.Add(new DefinitionProblem("$.archives", "'archives' must be an array of tables"));
                }
                else
                {
                    int i = 0;
                    foreach (var a in arch.EnumerateArray())
                    {
                        if (Table(a, $"$.archives[{i++}]") is { } t)
                        {
                            archives.Add(t);
                        }
                    }
                }
            }

            var enrichments = ImmutableDictionary.CreateBuilder<string, TableLocation>(StringComparer.Ordinal);
            if (root.TryGetProperty("enrichments", out var enr))
            {
                if (enr.ValueKind != JsonValueKind.Object)
                {
                    problems.Add(new DefinitionProblem("$.enrichments", "'enrichments' must be an object: source name → table"));
                }
                else
                {
                    foreach (var p in enr.EnumerateObject())
                    {
                        if (Table(p.Value, $"$.enrichments.{p.Name}") is { } t)
                        {
                            enrichments[p.Name] = t;
                        }
                    }
                }
            }

            var store = new OnlineStoreConfig("sqlite", Resolve("online.db"), null);
            if (root.TryGetProperty("online_store", out var os) && os.ValueKind != JsonValueKind.Object)
            {
                problems.Add(new DefinitionProblem("$.online_store", "'online_store' must be an object", "{\"kind\": \"sqlite\", \"path\": \"online.db\"} or {\"kind\": \"postgres\", \"connection_string\": \"...\"}"));
            }
            else if (os.ValueKind == JsonValueKind.Object)
            {
                var kind = Str(os, "kind", "$.online_store", required: false) ?? "sqlite";
                if (kind is "sqlite" or "postgres")
                {
                    Keys(os, "$.online_store", "kind", kind == "sqlite" ? "path" : "connection_string");
                }

                if (kind == "sqlite")
                {
                    store = new OnlineStoreConfig(kind, Resolve(Str(os, "path", "$.online_store", required: false) ?? "online.db"), null);
                    if (Directory.Exists(store.Path))
                    {
                        problems.Add(new DefinitionProblem("$.online_store.path", $"'{store.Path}' is a folder: the SQLite online store is one file", "name a file, e.g. online.db (created when absent)"));
                    }
                }
                else if (kind == "postgres")
                {
                    store = new OnlineStoreConfig(kind, null, Str(os, "connection_string", "$.online_store", required: true, "an Npgsql connection string, e.g. Host=127.0.0.1;Database=weft"));
                }
                else
                {
                    problems.Add(new DefinitionProblem("$.online_store.kind", $"unknown online store '{kind}'", "sqlite or postgres"));
                }
            }

            string defaultArchive = System.IO.Path.Combine(Resolve(lake), "raw", "stream");
            var source = new SourceConfig("embedded", Resolve("log"), null, [], null) { Archive = defaultArchive };
            if (root.TryGetProperty("source", out var src) && src.ValueKind != JsonValueKind.Object)
            {
                problems.Add(new DefinitionProblem("$.source", "'source' must be an object", "{\"kind\": \"embedded\", \"path\": \"log\"} or {\"kind\": \"kafka\", ...}"));
            }
            else if (src.ValueKind == JsonValueKind.Object)
            {
                var kind = Str(src, "kind", "$.source", required: false) ?? "embedded";
                if (kind == "embedded")
                {
                    Keys(src, "$.source", "kind", "path", "archive", "retention");
                }
                else if (kind == "kafka")
                {
                    Keys(src, "$.source", "kind", "bootstrap_servers", "topic", "topics", "group_id", "client_id", "auto_offset_reset", "config", "close_timeout", "rebalance_timeout", "archive");
                }

                if (kind == "embedded")
                {
                    source = new SourceConfig(kind, Resolve(Str(src, "path", "$.source", required: false) ?? "log"), null, [], null) { Archive = defaultArchive };
                    if (Str(src, "retention", "$.source", required: false) is { } retentionText)
                    {
                        if (Durations.TryParse(retentionText, out var retention) && retention >= TimeSpan.FromHours(1) && retention <= TimeSpan.FromDays(3650))
                        {
                            source = source with { Retention = retention };
                        }
                        else
                        {
                            problems.Add(new DefinitionProblem("$.source.retention", $"'{retentionText}' is not a duration between 1h and 3650d", "e.g. 2d: how long the embedded log keeps records every consumer has read"));
                        }
                    }
                }
                else if (kind == "kafka")
                {
                    source = new SourceConfig(kind, null,
                        Str(src, "bootstrap_servers", "$.source", required: true, "host:port[,host:port…]"),
                        KafkaTopics(src, problems),
                        Str(src, "group_id", "$.source", required: false) ?? "weft-stream")
                    {
                        ClientId = Str(src, "client_id", "$.source", required: false) ?? "weft",
                        AutoOffsetReset = Str(src, "auto_offset_reset", "$.source", required: false) ?? "earliest",
                        Config = KafkaProperties(src, problems),
                    };
                    if (Str(src, "close_timeout", "$.source", required: false) is { } closeText)
                    {
                        if (Durations.TryParse(closeText, out var close) && close >= TimeSpan.FromSeconds(1) && close <= TimeSpan.FromMinutes(10))
                        {
                            source = source with { CloseTimeout = close };
                        }
                        else
                        {
                            problems.Add(new DefinitionProblem("$.source.close_timeout", $"'{closeText}' is not a duration between 1s and 10m", "e.g. 20s, under the grace period a supervisor gives a stopping process"));
                        }
                    }
                    if (Str(src, "rebalance_timeout", "$.source", required: false) is { } rebalanceText)
                    {
                        if (Durations.TryParse(rebalanceText, out var rebalance) && rebalance >= TimeSpan.FromSeconds(1) && rebalance <= TimeSpan.FromMinutes(10))
                        {
                            source = source with { RebalanceTimeout = rebalance };
                        }
                        else
                        {
                            problems.Add(new DefinitionProblem("$.source.rebalance_timeout", $"'{rebalanceText}' is not a duration between 1s and 10m", "e.g. 60s, well under the group's max.poll.interval.ms (5 min by default)"));
                        }
                    }
                    if (source.AutoOffsetReset is not ("earliest" or "latest"))
                    {
                        problems.Add(new DefinitionProblem("$.source.auto_offset_reset", $"unknown offset reset '{source.AutoOffsetReset}'", "earliest (read what the topic holds) or latest (only what arrives from now on)"));
                    }
                }
                else
                {
                    problems.Add(new DefinitionProblem("$.source.kind", $"unknown source '{kind}'", "embedded or kafka"));
                }

                if (src.TryGetProperty("archive", out var archive) && archive.ValueKind != JsonValueKind.Null)
                {
                    if (archive.ValueKind == JsonValueKind.False)
                    {
                        source = source with { Archive = null };
                    }
                    else if (archive.ValueKind == JsonValueKind.String && archive.GetString()!.Length > 0)
                    {
                        source = source with { Archive = Resolve(archive.GetString()!) };
                    }
                    else
                    {
                        problems.Add(new DefinitionProblem("$.source.archive", $"'archive' must be a folder path or false, got {archive.GetRawText()}", "e.g. \"raw/stream\": the stream writes what it reads there as JSON lines for the batch path"));
                    }
                }
            }

            // The stream's archive is one of the batch path's raw archives, unless listed already (as the
            // JSON lines it is). Inside another listed archive, or holding one, its files would be read
            // twice or not as what they are.
            if (source.Archive is { } streamArchive)
            {
                var same = archives.FirstOrDefault(a => PathsEqual(a.Path, streamArchive));
                var nested = archives.FirstOrDefault(a => !PathsEqual(a.Path, streamArchive) && (Inside(streamArchive, a.Path) || Inside(a.Path, streamArchive)));
                if (same is not null && same.Format != TableFormat.Jsonl)
                {
                    problems.Add(new DefinitionProblem("$.source.archive", $"the stream's archive '{streamArchive}' is also listed in $.archives as {same.Format.ToString().ToLowerInvariant()}: the stream writes JSON lines there", "give the stream a folder of its own (default <lake>/raw/stream)"));
                }
                else if (nested is not null)
                {
                    problems.Add(new DefinitionProblem("$.source.archive", $"the stream's archive '{streamArchive}' and the archive '{nested.Path}' in $.archives lie one inside the other: the batch path would read the same files twice, or JSON lines as {nested.Format.ToString().ToLowerInvariant()}", "give the stream a folder of its own (default <lake>/raw/stream)"));
                }
                else if (same is null)
                {
                    archives.Add(new TableLocation(streamArchive, TableFormat.Jsonl) { Optional = true });
                }
            }

            var tenants = ImmutableArray.CreateBuilder<TenantConfig>();
            if (root.TryGetProperty("tenants", out var ten) && ten.ValueKind != JsonValueKind.Array)
            {
                problems.Add(new DefinitionProblem("$.tenants", "'tenants' must be an array", "[{\"name\": \"home-feed\", \"api_keys_sha256\": [\"<sha256 hex>\"]}]"));
            }
            else if (ten.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                // A key is one tenant's: under two, a request would be served as whichever came last.
                var keyOwners = new Dictionary<string, string>(StringComparer.Ordinal);
                var tenantNames = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var t in ten.EnumerateArray())
                {
                    string at = $"$.tenants[{i++}]";
                    if (t.ValueKind != JsonValueKind.Object)
                    {
                        problems.Add(new DefinitionProblem(at, "a tenant must be an object with 'name' and 'api_keys_sha256'"));
                        continue;
                    }

                    Keys(t, at, "name", "api_keys_sha256", "max_events_per_second", "max_sequences_per_second");
                    var name = Str(t, "name", at, required: true);
                    long? Rate(string key)
                    {
                        if (!t.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
                        {
                            return null;
                        }

                        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long rate) && rate is >= 1 and <= 1_000_000_000)
                        {
                            return rate;
                        }

                        problems.Add(new DefinitionProblem($"{at}.{key}", $"'{key}' must be a whole number from 1 to 1000000000, not {(v.ValueKind == JsonValueKind.Number ? v.GetRawText() : "a " + v.ValueKind.ToString().ToLowerInvariant())}", "leave it out for no limit"));
                        return null;
                    }

                    long? maxEvents = Rate("max_events_per_second"), maxSequences = Rate("max_sequences_per_second");
                    var keys = ImmutableArray.CreateBuilder<string>();
                    if (t.TryGetProperty("api_keys_sha256", out var ks) && ks.ValueKind is not (JsonValueKind.Array or JsonValueKind.Null))
                    {
                        problems.Add(new DefinitionProblem($"{at}.api_keys_sha256", "'api_keys_sha256' must be an array of SHA-256 hex digests"));
                    }
                    else if (ks.ValueKind == JsonValueKind.Array)
                    {
                        int k = 0;
                        foreach (var key in ks.EnumerateArray())
                        {
                            var hex = key.ValueKind == JsonValueKind.String ? key.GetString()! : "";
                            if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
                            {
                                problems.Add(new DefinitionProblem($"{at}.api_keys_sha256[{k}]", "not a SHA-256 hex digest", "store sha256(key) in hex, never the key"));
                            }
                            else if (keyOwners.TryGetValue(hex.ToLowerInvariant(), out var owner))
                            {
                                problems.Add(new DefinitionProblem($"{at}.api_keys_sha256[{k}]", $"this key is already a key of {owner}", "give each tenant keys of its own: a key under two tenants could only be served as one of them"));
                            }
                            else
                            {
                                keys.Add(hex.ToLowerInvariant());
                                keyOwners[hex.ToLowerInvariant()] = $"tenant '{name}' ({at})";
                            }

                            k++;
                        }
                    }

                    if (name is not null && tenantNames.TryGetValue(name, out var first))
                    {
                        problems.Add(new DefinitionProblem($"{at}.name", $"tenant '{name}' is already defined at {first}", "one entry per tenant, with all its keys"));
                    }
                    else if (name is not null)
                    {
                        tenantNames[name] = at;
                        tenants.Add(new TenantConfig(name, keys.ToImmutable()) { MaxEventsPerSecond = maxEvents, MaxSequencesPerSecond = maxSequences });
                    }
                }
            }

            var legacy = ImmutableDictionary.CreateBuilder<string, LegacyConfig>(StringComparer.Ordinal);
            if (root.TryGetProperty("legacy", out var leg))
            {
                if (leg.ValueKind != JsonValueKind.Object)
                {
                    problems.Add(new DefinitionProblem("$.legacy", "'legacy' must be an object: signal name → {\"output\": table, \"replica\": table, \"endpoint\": URL}"));
                }
                else
                {
                    foreach (var p in leg.EnumerateObject())
                    {
                        string at = $"$.legacy.{p.Name}";
                        if (p.Value.ValueKind != JsonValueKind.Object)
                        {
                            problems.Add(new DefinitionProblem(at, "a legacy pipeline is {\"output\": table, \"replica\": table (optional), \"endpoint\": URL (optional)}"));
                            continue;
                        }

                        foreach (var key in p.Value.EnumerateObject())
                        {
                            if (key.Name is not ("output" or "replica" or "endpoint" or "endpoint_timeout"))
                            {
                                problems.Add(new DefinitionProblem($"{at}.{key.Name}", $"unknown key '{key.Name}'", "output, replica, endpoint or endpoint_timeout"));
                            }
                        }

                        bool hasOutput = p.Value.TryGetProperty("output", out var output);
                        string? endpoint = Str(p.Value, "endpoint", at, required: false);
                        if (!hasOutput && endpoint is null && !p.Value.TryGetProperty("endpoint", out _))
                        {
                            problems.Add(new DefinitionProblem($"{at}.output", "a legacy pipeline needs 'output' (its enriched events, a table, for weft migrate) or 'endpoint' (its sequences over HTTP, for weft serve), or both"));
                            continue;
                        }

                        if (endpoint is not null && LegacyConfig.EndpointProblem(endpoint) is { } endpointProblem)
                        {
                            problems.Add(new DefinitionProblem($"{at}.endpoint", $"'{LegacyConfig.Redact(endpoint)}' {endpointProblem}", "e.g. http://legacy.internal/users/{user_id}/sequence"));
                            endpoint = null;
                        }

                        var timeout = LegacyConfig.DefaultEndpointTimeout;
                        if (Str(p.Value, "endpoint_timeout", at, required: false) is { } timeoutText)
                        {
                            if (Durations.TryParse(timeoutText, out var t) && t >= TimeSpan.FromMilliseconds(1) && t <= TimeSpan.FromMinutes(1))
                            {
                                timeout = t;
                            }
                            else
                            {
                                problems.Add(new DefinitionProblem($"{at}.endpoint_timeout", $"'{timeoutText}' is not a duration between 1ms and 1m", "e.g. 200ms, inside the consumer's own deadline"));
                            }
                        }

                        var outputTable = hasOutput ? Table(output, $"{at}.output") : null;
                        var replicaTable = p.Value.TryGetProperty("replica", out var replica) ? Table(replica, $"{at}.replica") : null;
                        if (replicaTable is not null && !hasOutput)
                        {
                            problems.Add(new DefinitionProblem($"{at}.replica", "a replica is a second run of the legacy output table, and there is no 'output' to compare it with"));
                        }

                        if (outputTable is not null || (!hasOutput && endpoint is not null))
                        {
                            legacy[p.Name] = new LegacyConfig(outputTable, replicaTable, endpoint) { EndpointTimeout = timeout };
                        }
                    }
                }
            }

            var migrationStore = Resolve(Str(root, "migration_store", "$", required: false) ?? "migration.db");

            if (problems.Count > 0 || signals is null)
            {
                throw new ConfigException(configPath, problems);
            }

            return new WeftConfig
            {
                ConfigPath = configPath,
                Lake = Resolve(lake),
                Signals = Resolve(signals),
                Archives = archives.ToImmutable(),
                Enrichments = enrichments.ToImmutable(),
                OnlineStore = store,
                Source = source,
                Tenants = tenants.ToImmutable(),
                Legacy = legacy.ToImmutable(),
                MigrationStore = migrationStore,
            };
        }
    }

    /// <summary>Whether <paramref name="inner"/> lies strictly below the folder <paramref name="outer"/>.</summary>
    private static bool Inside(string inner, string outer) =>
        System.IO.Path.TrimEndingDirectorySeparator(inner).StartsWith(System.IO.Path.TrimEndingDirectorySeparator(outer) + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static bool PathsEqual(string a, string b) =>
        string.Equals(System.IO.Path.TrimEndingDirectorySeparator(a), System.IO.Path.TrimEndingDirectorySeparator(b), StringComparison.Ordinal);

    /// <summary>
    /// The raw archives the batch path reads now: <see cref="Archives"/> without an optional one (the
    /// stream's) that does not exist yet or holds no JSON lines.
    /// </summary>
    public ImmutableArray<TableLocation> ReadableArchives() =>
        [.. Archives.Where(a => !a.Optional || (Directory.Exists(a.Path) && Directory.EnumerateFiles(a.Path, "*.jsonl", SearchOption.AllDirectories).Any()))];

    /// <summary><c>$.source.topic</c> (one) or <c>$.source.topics</c> (several): exactly one of them.</summary>
    private static ImmutableArray<string> KafkaTopics(JsonElement source, List<DefinitionProblem> problems)
    {
        bool hasOne = source.TryGetProperty("topic", out var one) && one.ValueKind != JsonValueKind.Null;
        bool hasMany = source.TryGetProperty("topics", out var many) && many.ValueKind != JsonValueKind.Null;
        if (hasOne == hasMany)
        {
            problems.Add(hasOne
                ? new DefinitionProblem("$.source.topics", "set 'topic' or 'topics', not both")
                : new DefinitionProblem("$.source.topic", "'topic' is required", "the topic to read, or 'topics': [\"clicks\", \"searches\"] for several"));
            return [];
        }

        if (hasOne)
        {
            if (one.ValueKind == JsonValueKind.String && one.GetString() is { Length: > 0 } topic)
            {
                return [topic];
            }

            problems.Add(new DefinitionProblem("$.source.topic", "'topic' must be a non-empty string"));
            return [];
        }

        var topics = ImmutableArray.CreateBuilder<string>();
        if (many.ValueKind != JsonValueKind.Array || many.GetArrayLength() == 0)
        {
            problems.Add(new DefinitionProblem("$.source.topics", "'topics' must be a non-empty array of topic names"));
            return [];
        }

        int i = 0;
        foreach (var t in many.EnumerateArray())
        {
            if (t.ValueKind == JsonValueKind.String && t.GetString() is { Length: > 0 } topic)
            {
                if (topics.Contains(topic))
                {
                    problems.Add(new DefinitionProblem($"$.source.topics[{i}]", $"'{topic}' is listed twice"));
                }

                topics.Add(topic);
            }
            else
            {
                problems.Add(new DefinitionProblem($"$.source.topics[{i}]", "a topic must be a non-empty string"));
            }

            i++;
        }

        return topics.ToImmutable();
    }

    /// <summary><c>$.source.config</c>: librdkafka properties, each a string, number or boolean, none of them reserved.</summary>
    private static ImmutableSortedDictionary<string, string> KafkaProperties(JsonElement source, List<DefinitionProblem> problems)
    {
        var result = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        if (!source.TryGetProperty("config", out var config) || config.ValueKind == JsonValueKind.Null)
        {
            return result.ToImmutable();
        }

        if (config.ValueKind != JsonValueKind.Object)
        {
            problems.Add(new DefinitionProblem("$.source.config", "'config' must be an object of librdkafka consumer properties", "e.g. {\"security.protocol\": \"SASL_SSL\", \"sasl.password\": \"${KAFKA_PASSWORD}\"}"));
            return result.ToImmutable();
        }

        foreach (var p in config.EnumerateObject())
        {
            string at = $"$.source.config[\"{p.Name}\"]";
            if (SourceConfig.ReservedKafkaKeys.TryGetValue(p.Name, out var instead) || p.Name.StartsWith("dotnet.", StringComparison.Ordinal))
            {
                problems.Add(new DefinitionProblem(at, $"'{p.Name}' is set by the stream itself", instead ?? "Confluent.Kafka's own dotnet.* settings are the stream's"));
                continue;
            }

            string? value = p.Value.ValueKind switch
            {
                JsonValueKind.String => p.Value.GetString(),
                JsonValueKind.Number => p.Value.GetRawText(),
                JsonValueKind.True => "true",
                JsonValueKind.False => "false",
                _ => null,
            };
            if (value is null)
            {
                problems.Add(new DefinitionProblem(at, "a property's value must be a string, number or boolean"));
            }
            else if (value.StartsWith("${", StringComparison.Ordinal) && SourceConfig.EnvironmentReference(value) is null)
            {
                problems.Add(new DefinitionProblem(at, $"'{value}' is not an environment variable reference", "write ${NAME}, NAME of letters, digits and _"));
            }
            else
            {
                result[p.Name] = value;
            }
        }

        return result.ToImmutable();
    }

    /// <summary>Loads every signal JSON in <see cref="Signals"/>; invalid files fail with every problem.</summary>
    public IReadOnlyList<SignalDefinition> LoadSignals(Func<string, bool>? customExecutorExists = null)
    {
        var result = new List<SignalDefinition>();
        var fileOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (file, read) in ReadSignalFiles(customExecutorExists))
        {
            if (!read.IsValid)
            {
                throw new DefinitionException(file, read.Problems);
            }

            // Two definitions of one signal would write the same tables and store; which one a command
            // took depended on the command.
            if (!fileOf.TryAdd(read.Signal!.Name, file))
            {
                throw DefinedTwice(read.Signal.Name, fileOf[read.Signal.Name], file);
            }

            result.Add(read.Signal!);
        }

        return result;
    }

    /// <summary>
    /// The signal named <paramref name="name"/>, or a clear error listing the ones there are. Another
    /// signal's file that does not load does not stop a command about this one (a half-edited file of
    /// one team's signal would otherwise stop every other team's batch run); a broken file that names
    /// this signal does.
    /// </summary>
    public SignalDefinition LoadSignal(string name, Func<string, bool>? customExecutorExists = null)
    {
        SignalDefinition? found = null;
        string? foundIn = null;
        var known = new List<string>();
        var broken = new List<(string File, string? Declared, IReadOnlyList<DefinitionProblem> Problems)>();
        foreach (var (file, read) in ReadSignalFiles(customExecutorExists))
        {
            if (!read.IsValid)
            {
                var declared = DeclaredName(file);
                if (declared == name)
                {
                    throw new DefinitionException(file, read.Problems);
                }

                broken.Add((file, declared, read.Problems));
                continue;
            }

            known.Add(read.Signal!.Name);
            if (read.Signal.Name != name)
            {
                continue;
            }

            if (foundIn is not null)
            {
                throw DefinedTwice(name, foundIn, file);
            }

            found = read.Signal;
            foundIn = file;
        }

        if (found is not null)
        {
            return found;
        }

        // One of the files that do not load may be the signal asked for, under a name we cannot read.
        if (broken.Count == 1 && broken[0].Declared is null)
        {
            throw new DefinitionException(broken[0].File, broken[0].Problems);
        }

        string hint = $"known: {(known.Count == 0 ? "none" : string.Join(", ", known))}";
        if (broken.Count > 0)
        {
            hint += $"; {broken.Count} file(s) do not load: " + string.Join(", ", broken.Select(b => $"{Path.GetFileName(b.File)} ({b.Problems[0]})"));
        }

        throw new ConfigException(ConfigPath, [new DefinitionProblem("--signal", $"no signal '{name}' in '{Signals}'", hint)]);
    }

    private IEnumerable<(string File, SignalReadResult Read)> ReadSignalFiles(Func<string, bool>? customExecutorExists)
    {
        if (!Directory.Exists(Signals))
        {
            throw new ConfigException(ConfigPath, [new DefinitionProblem("$.signals", $"no folder '{Signals}'", "run `weft compile DEFS --out DIR` and point 'signals' at DIR")]);
        }

        foreach (var file in Directory.EnumerateFiles(Signals, "*.json").Order(StringComparer.Ordinal))
        {
            yield return (file, SignalJsonReader.Read(File.ReadAllBytes(file), customExecutorExists));
        }
    }

    private ConfigException DefinedTwice(string name, string first, string second) =>
        new(ConfigPath, [new DefinitionProblem("$.signals", $"signal '{name}' is defined twice in '{Signals}': {Path.GetFileName(first)} and {Path.GetFileName(second)}", "keep one of the two files")]);

    /// <summary>The top-level <c>name</c> of a signal file that does not load, when it can be read at all.</summary>
    private static string? DeclaredName(string file)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("name", out var n)
                && n.ValueKind == JsonValueKind.String
                ? n.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>A <c>weft.json</c> that cannot be used; <see cref="Problems"/> names each JSON path.</summary>
public sealed class ConfigException(string path, IReadOnlyList<DefinitionProblem> problems)
    : Exception($"{path}: {problems.Count} problem(s):\n" + string.Join('\n', problems.Select(p => "  " + p)))
{
    public string ConfigPath { get; } = path;

    public IReadOnlyList<DefinitionProblem> Problems { get; } = problems;
}
