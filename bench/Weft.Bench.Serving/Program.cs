using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Serving;
using Weft.Serving.Hosting;
using Weft.Serving.Http;
using Weft.Serving.Security;
using Weft.Serving.Sequences;
using Weft.Storage;
using Weft.Streaming.Embedded;
using Weft.Streaming.Runtime;

// Serving benchmark (docs/PERFORMANCE.md, "Serving (issue 6)"). One run:
// 1. builds a deployment in a temp folder: a signal of 8 sequence columns and max_length 500; USERS users
//    with EVENTS events each over 6.5 days — all but the last day through `weft batch` (sealed history),
//    the last day through the stream into the SQLite online store — so every read merges both paths;
// 2. starts `weft serve` in this process on 127.0.0.1 (in-process stream, cache on);
// 3. in-process: ITERATIONS reads of random users through the handler's own code (parameters, timeline,
//    cut, JSON), cache warm; then the same with the cache off (store read + decode + merge every time);
// 4. over HTTP: wrk against /healthz, then against the sequence endpoint (random users), same server,
//    same settings; prints requests/s, p50/p99 and the ratio;
// 5. hybrid reads: click cut over to Weft, view served by a stand-in legacy service on loopback; wrk against
//    that service alone, then against the sequence endpoint with a consumer; the ratio.
var opt = Options.Parse(args);
var root = Path.Combine(Path.GetTempPath(), "weft-serving-bench", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(Path.Combine(root, "signals"));
try
{
    await RunAsync(opt, root);
}
finally
{
    Directory.Delete(root, recursive: true);
}

static async Task RunAsync(Options opt, string root)
{
    const string Key = "bench-key";
    var weft = new DefinitionCatalog();
    EventTypeBuilder Attrs(EventTypeBuilder t) => t.Attribute("item_id", WeftType.Int64, nullable: false).Attribute("dwell_ms", WeftType.Int32)
        .Attribute("surface", WeftType.String).Attribute("score", WeftType.Float64).Attribute("position", WeftType.Int32);
    var click = Attrs(weft.EventType("click"));
    var view = Attrs(weft.EventType("view"));
    weft.Signal("bench", tenant: "bench").Include(click).Include(view)
        .Element("item_id", "dwell_ms", "surface", "score", "position")
        .MaxLength(500).Lookback(TimeSpan.FromDays(7)).Bucket(TimeBucket.Hour).LateAllowance(TimeSpan.FromHours(6));
    var signal = weft.Build().Single();
    await File.WriteAllBytesAsync(Path.Combine(root, "signals", "bench.json"), SignalJsonWriter.Write(signal));

    // Data: events spaced evenly over 6.5 days before now, per user; the last day goes to the stream.
    long now = Timestamps.ToMicros(DateTimeOffset.UtcNow);
    long day = 86_400_000_000L, span = (day * 13) / 2;
    var rng = new Random(42);
    string[] surfaces = ["home", "search", "related", "profile", "notifications"];
    // Batch covers whole hour buckets up to a day ago: the stream's day starts on a bucket boundary.
    long batchEnd = TimeBuckets.StartOf(now - day, TimeBucket.Hour);
    var archived = new List<object?[]>();
    var streamed = new List<(byte[], byte[])>();
    for (long user = 1; user <= opt.Users; user++)
    {
        for (int i = 0; i < opt.Events; i++)
        {
            long time = now - span + (span * i / opt.Events) + rng.Next(0, 1_000_000);
            var row = new object?[] { $"u{user}-e{i:00000}", user, rng.Next(3) == 0 ? "click" : "view", time, time + rng.Next(1, 2_000_000),
                (long)rng.Next(1, 1_000_000), rng.Next(5) == 0 ? null : rng.Next(0, 60_000), surfaces[rng.Next(surfaces.Length)], Math.Round(rng.NextDouble(), 6), rng.Next(0, 50) };
            if (time < batchEnd)
            {
                archived.Add(row);
            }
            else
            {
                var json = string.Create(CultureInfo.InvariantCulture,
                    $$"""{"event_id":"{{row[0]}}","user_id":{{user}},"event_type":"{{row[2]}}","event_time":"{{Timestamps.Format((long)row[3]!)}}","ingest_time":"{{Timestamps.Format((long)row[4]!)}}","item_id":{{row[5]}},{{(row[6] is null ? "" : $"\"dwell_ms\":{row[6]},")}}"surface":"{{row[7]}}","score":{{row[8]}},"position":{{row[9]}}}""");
                streamed.Add((Encoding.UTF8.GetBytes(user.ToString(CultureInfo.InvariantCulture)), Encoding.UTF8.GetBytes(json)));
            }
        }
    }

    // A stand-in legacy service for the hybrid reads: each user's views (its own copy, newest first, at most
    // 500), answered from memory, so what is measured is Weft's side of the call.
    var legacyBodies = new Dictionary<long, byte[]>();
    var allRows = archived.ToList();
    foreach (var (_, json) in streamed)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var e = doc.RootElement;
        allRows.Add([e.GetProperty("event_id").GetString(), e.GetProperty("user_id").GetInt64(), e.GetProperty("event_type").GetString(),
            Timestamps.ToMicros(DateTimeOffset.Parse(e.GetProperty("event_time").GetString()!, CultureInfo.InvariantCulture)), null,
            e.GetProperty("item_id").GetInt64(), e.TryGetProperty("dwell_ms", out var d) ? d.GetInt32() : null, e.GetProperty("surface").GetString(), e.GetProperty("score").GetDouble(), e.GetProperty("position").GetInt32()]);
    }

    foreach (var group in allRows.Where(r => (string)r[2]! == "view").GroupBy(r => (long)r[1]!))
    {
        var events = group.OrderByDescending(r => (long)r[3]!).Take(500).Select(r => string.Create(CultureInfo.InvariantCulture,
            $$"""{"event_id":"L{{r[0]}}","event_type":"view","event_time":"{{Timestamps.Format((long)r[3]!)}}","item_id":{{r[5]}},{{(r[6] is null ? "" : $"\"dwell_ms\":{r[6]},")}}"surface":"{{r[7]}}","score":{{r[8]}},"position":{{r[9]}}}"""));
        legacyBodies[group.Key] = Encoding.UTF8.GetBytes("[" + string.Join(",", events) + "]");
    }

    await using var legacy = await LegacyStandIn.StartAsync(legacyBodies);
    await File.WriteAllTextAsync(Path.Combine(root, "weft.json"), $$"""
        {
          "lake": "lake", "signals": "signals",
          "archives": [ { "path": "raw/events", "format": "delta" } ],
          "online_store": { "kind": "sqlite", "path": "online.db" },
          "source": { "kind": "embedded", "path": "log" },
          "tenants": [ { "name": "bench", "api_keys_sha256": [ "{{ApiKeys.Digest(Key)}}" ] } ],
          "legacy": { "bench": { "endpoint": "{{legacy.Url}}/users/{user_id}/sequence" } },
          "serving": { "urls": "http://127.0.0.1:{{opt.Port}}", "stream_max_wait": "20ms" }
        }
        """);
    var config = WeftConfig.Load(Path.Combine(root, "weft.json"));
    // click cut over to Weft for every consumer; view not started, so legacy serves it.
    await using (var ledger = await Weft.Migration.MigrationStore.OpenAsync(config.MigrationStore))
    {
        var ok = (string kind) => new Weft.Migration.EvidenceInput(kind, true, "bench", "{}");
        await ledger.ShadowAsync("bench", "click", ok(Weft.Migration.MigrationStore.ShadowKind), null, "bench");
        await ledger.RecordComparisonAsync("bench", "click", ok(Weft.Migration.MigrationStore.ComparisonKind), "bench");
        await ledger.RecordAbTestAsync("bench", "click", ok(Weft.Migration.MigrationStore.AbTestKind), "bench");
        await ledger.CutoverAsync("bench", "click", Weft.Migration.MigrationRouting.DefaultConsumer, 100, null, "bench");
    }

    var sw = Stopwatch.StartNew();
    var rawSchema = signal.EventTypes[0].RawSchema;
    System.Collections.Immutable.ImmutableArray<FieldDefinition> schema = [.. StandardColumns.All, .. rawSchema];
    var builders = schema.Select(f => new ColumnBuilder(f.Type)).ToArray();
    foreach (var row in archived)
    {
        for (int c = 0; c < builders.Length; c++)
        {
            builders[c].Append(row[c] is int n ? (long)n : row[c]);
        }
    }

    var table = await EventTable.OpenOrCreateAsync(Path.Combine(root, "raw", "events"), schema, []);
    await table.AppendAsync(new EventBatch(schema, [.. builders.Select(b => b.Build())]), new Dictionary<string, string?>());
    var env = await SignalEnvironment.LoadAsync(config, "bench");
    var batch = await new BatchJob(env).RunAsync(new BatchRequest("bench", now - span, batchEnd), null, CancellationToken.None);
    await Console.Error.WriteLineAsync($"setup: {archived.Count:N0} archived events through weft batch ({batch.SealedBuckets.Count} sealed buckets) in {sw.Elapsed.TotalSeconds:F1} s");

    sw.Restart();
    await using (var log = await EmbeddedLog.OpenAsync(Path.Combine(root, "log")))
    {
        await log.AppendAsync(streamed);
    }

    await using (var host = await StreamHost.OpenAsync(config, "weft-stream", CancellationToken.None))
    {
        var runtime = await StreamRuntime.CreateAsync(config, host.Source, host.Store, null, new StreamOptions { MaxWait = TimeSpan.FromMilliseconds(10) });
        int empty = 0;
        while (empty < 3)
        {
            empty = await runtime.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
        }

        await runtime.FlushAsync(CancellationToken.None);
    }

    await Console.Error.WriteLineAsync($"setup: {streamed.Count:N0} events of the last day through the stream in {sw.Elapsed.TotalSeconds:F1} s");

    await using var server = await ServingServer.StartAsync(config, ServingOptions.FromConfig(config), logging: l => l.SetMinimumLevel(LogLevel.Warning));
    var state = server.State;
    string url = server.Urls[0];
    var args = new ReadArguments(null, null, null, null, null);

    // In-process: the handler's own path (parameters, timeline, cut, JSON) into a reused buffer.
    var output = new ArrayBufferWriter<byte>(256 * 1024);
    async Task<double[]> MeasureAsync(ServingState s, int iterations)
    {
        var times = new double[iterations];
        var pick = new Random(7);
        for (int i = 0; i < iterations; i++)
        {
            string user = pick.NextInt64(1, opt.Users + 1).ToString(CultureInfo.InvariantCulture);
            long start = Stopwatch.GetTimestamp();
            var (read, error) = await ServingEndpoints.PrepareReadAsync(s, "bench", "bench", user, args, CancellationToken.None);
            if (error is not null)
            {
                throw new InvalidOperationException(error.Message);
            }

            ServingEndpoints.WriteRead(read, output);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            if (read.Sequence.Rows.Count != 500 || read.Sequence.FromBatch == 0 || read.Sequence.FromStream == 0)
            {
                throw new InvalidOperationException($"expected 500 elements from both paths, got {read.Sequence.Rows.Count} ({read.Sequence.FromBatch} batch, {read.Sequence.FromStream} stream)");
            }

            if (i == 0)
            {
                await Console.Error.WriteLineAsync($"one response: {output.WrittenCount:N0} bytes, {read.Sequence.Rows.Count} elements × {read.Projection.Length} columns ({read.Sequence.FromBatch} from batch, {read.Sequence.FromStream} from stream)");
            }

            output.ResetWrittenCount();
        }

        return times;
    }

    await MeasureAsync(state, opt.Users * 2); // warm-up: JIT, and every user's timeline cached
    var cached = await MeasureAsync(state, opt.Iterations);
    var renderState = new ServingState(state.Config, state.Options, state.Signals, state.Keys, new SequenceService(state.Sequences.Store, state.Sequences.Cache, null), null, state.Time);
    await MeasureAsync(renderState, 1000);
    var rendering = await MeasureAsync(renderState, opt.Iterations);
    var uncachedState = new ServingState(state.Config, state.Options, state.Signals, state.Keys, new SequenceService(state.Sequences.Store, null), null, state.Time);
    await MeasureAsync(uncachedState, 200);
    var uncached = await MeasureAsync(uncachedState, Math.Max(200, opt.Iterations / 10));

    var report = new StringBuilder();
    report.AppendLine(CultureInfo.InvariantCulture, $"Serving benchmark: {opt.Users} users × {opt.Events} events (batch history + last day streamed), signal of 8 sequence columns, max_length 500");
    report.AppendLine(CultureInfo.InvariantCulture, $"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
    report.AppendLine();
    report.AppendLine("In-process read (parameters + timeline + cut + columnar JSON of 500 elements × 8 columns), µs:");
    report.AppendLine("| path                                          |  reads |    p50 |    p90 |    p99 |  p99.9 |    max |");
    report.AppendLine("|-----------------------------------------------|-------:|-------:|-------:|-------:|-------:|-------:|");
    Row(report, "caches on: timeline + rendered JSON (default)", cached);
    Row(report, "timeline cache only: JSON rendered each read", rendering);
    Row(report, "caches off: store read + decode + merge", uncached);

    if (opt.Wrk is not null)
    {
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"HTTP on loopback, wrk -t{opt.Threads} -c{opt.Connections} -d{opt.Duration}s, same server, same run:");
        var lua = Path.Combine(root, "sequence.lua");
        await File.WriteAllTextAsync(lua, $$"""
            math.randomseed(7)
            wrk.headers["Authorization"] = "Bearer {{Key}}"
            request = function()
              return wrk.format("GET", "/v1/signals/bench/users/" .. math.random(1, {{opt.Users}}) .. "/sequence")
            end
            """);
        var health = await WrkAsync(opt, url + "/healthz", null);
        var sequence = await WrkAsync(opt, url + "/v1/signals/bench/users/1/sequence", lua);
        report.AppendLine("| endpoint                    |  requests/s |  p50 ms |  p99 ms |   MB/s |");
        report.AppendLine("|-----------------------------|------------:|--------:|--------:|-------:|");
        report.AppendLine(CultureInfo.InvariantCulture, $"| GET /healthz                | {health.Rps,11:N0} | {health.P50,7:F3} | {health.P99,7:F3} | {health.MBps,6:F1} |");
        report.AppendLine(CultureInfo.InvariantCulture, $"| GET …/users/{{id}}/sequence   | {sequence.Rps,11:N0} | {sequence.P50,7:F3} | {sequence.P99,7:F3} | {sequence.MBps,6:F1} |");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"sequence / healthz requests/s: {sequence.Rps / health.Rps:P1}");

        // Hybrid reads: clicks from Weft, views from the stand-in legacy service; against that service alone.
        var legacyLua = Path.Combine(root, "legacy.lua");
        await File.WriteAllTextAsync(legacyLua, $$"""
            math.randomseed(7)
            request = function()
              return wrk.format("GET", "/users/" .. math.random(1, {{opt.Users}}) .. "/sequence")
            end
            """);
        var hybridLua = Path.Combine(root, "hybrid.lua");
        await File.WriteAllTextAsync(hybridLua, (await File.ReadAllTextAsync(lua)).Replace("/sequence\")", "/sequence?consumer=bench-ranker\")", StringComparison.Ordinal));
        var legacyAlone = await WrkAsync(opt, legacy.Url + "/users/1/sequence", legacyLua);
        var hybrid = await WrkAsync(opt, url + "/v1/signals/bench/users/1/sequence?consumer=bench-ranker", hybridLua);
        report.AppendLine();
        report.AppendLine("Hybrid reads (docs/migration.md): click from Weft, view from a stand-in legacy service on loopback answering from memory:");
        report.AppendLine("| endpoint                                      |  requests/s |  p50 ms |  p99 ms |   MB/s |");
        report.AppendLine("|-----------------------------------------------|------------:|--------:|--------:|-------:|");
        report.AppendLine(CultureInfo.InvariantCulture, $"| legacy service alone: GET /users/{{id}}/sequence | {legacyAlone.Rps,11:N0} | {legacyAlone.P50,7:F3} | {legacyAlone.P99,7:F3} | {legacyAlone.MBps,6:F1} |");
        report.AppendLine(CultureInfo.InvariantCulture, $"| GET …/users/{{id}}/sequence?consumer=…           | {hybrid.Rps,11:N0} | {hybrid.P50,7:F3} | {hybrid.P99,7:F3} | {hybrid.MBps,6:F1} |");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"hybrid / plain sequence requests/s: {hybrid.Rps / sequence.Rps:P1}; hybrid / legacy service alone: {hybrid.Rps / legacyAlone.Rps:P1}");
    }

    Console.Write(report.ToString());
}

static void Row(StringBuilder report, string name, double[] micros)
{
    Array.Sort(micros);
    double P(double q) => micros[Math.Min(micros.Length - 1, (int)Math.Ceiling(q * micros.Length) - 1)];
    report.AppendLine(CultureInfo.InvariantCulture, $"| {name,-45} | {micros.Length,6} | {P(0.5),6:F1} | {P(0.9),6:F1} | {P(0.99),6:F1} | {P(0.999),6:F1} | {micros[^1],6:F0} |");
}

static async Task<(double Rps, double P50, double P99, double MBps)> WrkAsync(Options opt, string url, string? script)
{
    var psi = new ProcessStartInfo(opt.Wrk!) { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in new[] { $"-t{opt.Threads}", $"-c{opt.Connections}", $"-d{opt.Duration}s", "--latency" })
    {
        psi.ArgumentList.Add(a);
    }

    if (script is not null)
    {
        psi.ArgumentList.Add("-s");
        psi.ArgumentList.Add(script);
    }
    else
    {
        psi.ArgumentList.Add("-H");
        psi.ArgumentList.Add("Connection: keep-alive");
    }

    psi.ArgumentList.Add(url);
    using var process = Process.Start(psi)!;
    string text = await process.StandardOutput.ReadToEndAsync();
    await process.WaitForExitAsync();
    await Console.Error.WriteLineAsync(text);
    double Ms(string label)
    {
        var m = Regex.Match(text, $@"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", RegexOptions.Multiline);
        double v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch { "us" => v / 1000, "s" => v * 1000, _ => v };
    }

    var rps = double.Parse(Regex.Match(text, @"Requests/sec:\s+([\d.]+)").Groups[1].Value, CultureInfo.InvariantCulture);
    var transfer = Regex.Match(text, @"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)");
    double mb = double.Parse(transfer.Groups[1].Value, CultureInfo.InvariantCulture) * transfer.Groups[2].Value switch { "GB" => 1024, "MB" => 1, "KB" => 1.0 / 1024, _ => 1.0 / 1024 / 1024 };
    return (rps, Ms("50%"), Ms("99%"), mb);
}

internal sealed record Options(int Users, int Events, int Iterations, int Port, string? Wrk, int Threads, int Connections, int Duration)
{
    public static Options Parse(string[] args)
    {
        var o = new Options(200, 600, 20_000, 18_080, "/usr/bin/wrk", 1, 16, 10);
        for (int i = 0; i < args.Length; i += 2)
        {
            string v = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--users" => o with { Users = int.Parse(v, CultureInfo.InvariantCulture) },
                "--events" => o with { Events = int.Parse(v, CultureInfo.InvariantCulture) },
                "--iterations" => o with { Iterations = int.Parse(v, CultureInfo.InvariantCulture) },
                "--port" => o with { Port = int.Parse(v, CultureInfo.InvariantCulture) },
                "--wrk" => o with { Wrk = v == "none" ? null : v },
                "--threads" => o with { Threads = int.Parse(v, CultureInfo.InvariantCulture) },
                "--connections" => o with { Connections = int.Parse(v, CultureInfo.InvariantCulture) },
                "--duration" => o with { Duration = int.Parse(v, CultureInfo.InvariantCulture) },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }

        return o;
    }
}

/// <summary>A legacy sequence service on loopback answering each user's precomputed JSON.</summary>
internal sealed class LegacyStandIn : IAsyncDisposable
{
    private readonly Microsoft.AspNetCore.Builder.WebApplication _app;

    private LegacyStandIn(Microsoft.AspNetCore.Builder.WebApplication app, string url) => (_app, Url) = (app, url);

    public string Url { get; }

    public static async Task<LegacyStandIn> StartAsync(IReadOnlyDictionary<long, byte[]> bodies)
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        Microsoft.AspNetCore.Hosting.HostingAbstractionsWebHostBuilderExtensions.UseUrls(builder.WebHost, "http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        Microsoft.AspNetCore.Builder.EndpointRouteBuilderExtensions.MapGet(app, "/users/{id}/sequence", async (Microsoft.AspNetCore.Http.HttpContext context, long id) =>
        {
            context.Response.ContentType = "application/json";
            var body = bodies.TryGetValue(id, out var b) ? b : "[]"u8.ToArray();
            context.Response.ContentLength = body.Length;
            await context.Response.Body.WriteAsync(body, context.RequestAborted);
        });
        await app.StartAsync();
        return new LegacyStandIn(app, app.Urls.First());
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
