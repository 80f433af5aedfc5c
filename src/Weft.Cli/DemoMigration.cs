using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Cli;

/// <summary>
/// The demo's migration step: a stand-in legacy pipeline's output (two runs of it, for the noise
/// floor) and a stand-in consuming model's offline replay, then <c>weft migrate</c> walks one event
/// type from shadow to cut-over while the other stays behind.
/// </summary>
internal static class DemoMigration
{
    /// <summary>Where the demo's config points legacy's output and its replica (relative to the demo folder).</summary>
    public const string OutputPath = "legacy/engagement.parquet";
    public const string ReplicaPath = "legacy/engagement-rerun.parquet";

    /// <summary>Share of events each legacy run loses (by a hash of the event id, differently per run).</summary>
    private const double LegacyLoss = 0.003;

    /// <summary>Runs the step; returns the stand-in legacy output, which the serve step answers hybrid sequences from.</summary>
    public static async Task<EventBatch> RunAsync(string dir, string configPath, SignalDefinition signal, EnrichedLake lake, long watchUser, long asOf, TextWriter o, CancellationToken ct)
    {
        // What Weft serves for the signal, as the legacy pipeline would have written it: the same
        // events and values, less a few it lost (a different few in each run, as online jitter does).
        var served = await lake.ReadAsync(Timestamps.MinMicros, Timestamps.MaxMicros, ct).ConfigureAwait(false);
        var admitted = Enumerable.Range(0, served.Rows.RowCount).Where(i => served.Admitted[i]).ToArray();
        var weftRows = served.Rows.Gather(admitted);
        weftRows = weftRows.Project([.. weftRows.Schema.Where(f => f.Name != StandardColumns.IngestTime)]);
        var legacy = LegacyRun(weftRows, "run-1");
        await ParquetExport.WriteAsync(Path.Combine(dir, OutputPath), legacy, ct).ConfigureAwait(false);
        await ParquetExport.WriteAsync(Path.Combine(dir, ReplicaPath), LegacyRun(weftRows, "run-2"), ct).ConfigureAwait(false);
        await o.WriteLineAsync($"  stand-in legacy pipeline: {legacy.RowCount:N0} enriched events → {OutputPath}, and a second run of it → {ReplicaPath} (each lost {LegacyLoss:0.#%} of events, different ones)").ConfigureAwait(false);

        // A stand-in consuming model replayed offline on each side's sequences: one score per user.
        string control = Path.Combine("legacy", "replay-on-legacy.parquet"), treatment = Path.Combine("legacy", "replay-on-weft.parquet");
        await ParquetExport.WriteAsync(Path.Combine(dir, control), Scores(legacy, asOf), ct).ConfigureAwait(false);
        await ParquetExport.WriteAsync(Path.Combine(dir, treatment), Scores(weftRows, asOf), ct).ConfigureAwait(false);
        await o.WriteLineAsync("  stand-in consuming model (score = 1 − e^(−recency-weighted long-dwell engagement)) replayed on both sides' events → legacy/replay-on-*.parquet").ConfigureAwait(false);

        string[] common = ["--config", configPath, "--signal", signal.Name];
        string[] click = [.. common, "--event-type", "click", "--actor", "demo"];
        string[] save = [.. common, "--event-type", "save", "--actor", "demo"];
        await MigrateAsync(o, ["shadow", .. click]).ConfigureAwait(false);
        await MigrateAsync(o, ["compare", .. click]).ConfigureAwait(false);
        await MigrateAsync(o, ["abtest", .. click, "--control", Path.Combine(dir, control), "--treatment", Path.Combine(dir, treatment), "--margin", "0.005"]).ConfigureAwait(false);
        await MigrateAsync(o, ["cutover", .. click, "--percent", "10"]).ConfigureAwait(false);
        await MigrateAsync(o, ["route", .. common, "--consumer", "home-feed", "--user", watchUser.ToString(System.Globalization.CultureInfo.InvariantCulture)]).ConfigureAwait(false);
        string clicks = await SplitAsync(dir, configPath, signal, weftRows, ct).ConfigureAwait(false);
        await o.WriteLineAsync($"  the home-feed consumer reads every user's routes through the router weft serve uses (exposures logged), and logs its own clicks → {Path.GetRelativePath(dir, clicks)}").ConfigureAwait(false);
        await MigrateAsync(o, ["srm", .. common, "--event-type", "click", "--consumer", "home-feed"]).ConfigureAwait(false);
        await MigrateAsync(o, ["outcome", .. click, "--consumer", "home-feed", "--outcomes", clicks, "--metric", "clicked", "--margin", "0.03", "--sequential"]).ConfigureAwait(false);
        await MigrateAsync(o, ["outcome", .. click, "--consumer", "home-feed", "--outcomes", clicks, "--metric", "clicked", "--margin", "0.03"]).ConfigureAwait(false);
        await MigrateAsync(o, ["rollback", .. click, "--reason", "demo: a rollback is one command and instant"]).ConfigureAwait(false);
        await MigrateAsync(o, ["cutover", .. click, "--percent", "100"]).ConfigureAwait(false);
        await MigrateAsync(o, ["shadow", .. save]).ConfigureAwait(false);
        await MigrateAsync(o, ["status", .. common]).ConfigureAwait(false);
        return legacy;
    }

    /// <summary>
    /// The online split as a consumer lives it: each user's routes asked of the router <c>weft serve</c>
    /// uses (which logs the split's exposures), and the consumer's own log of impressions, clicked with
    /// the same probability whichever side served the user (Weft's sequences are legacy's here, less the
    /// events legacy lost). Returns the log's path.
    /// </summary>
    private static async Task<string> SplitAsync(string dir, string configPath, SignalDefinition signal, EventBatch weftRows, CancellationToken ct)
    {
        var config = Weft.Engine.Configuration.WeftConfig.Load(configPath);
        var users = ((PrimitiveColumn<long>)weftRows[StandardColumns.UserId]).Values[..weftRows.RowCount].ToArray().Distinct().Order().ToArray();
        string[] types = [.. signal.EventTypes.Select(t => t.Name)];
        await using (var router = new Weft.Migration.MigrationRouter(await Weft.Migration.MigrationStore.OpenAsync(config.MigrationStore, cancellationToken: ct).ConfigureAwait(false)))
        {
            foreach (long user in users)
            {
                await router.RouteAsync(signal.Name, types, "home-feed", user, ct).ConfigureAwait(false);
            }
        }

        var random = new Random(17);
        var log = new StringBuilder("user_id,clicked\n");
        foreach (long user in users)
        {
            for (int n = 20 + random.Next(41); n > 0; n--)
            {
                log.Append(user).Append(',').Append(random.NextDouble() < 0.3 ? '1' : '0').Append('\n');
            }
        }

        string path = Path.Combine(dir, "legacy", "home-feed-clicks.csv");
        await File.WriteAllTextAsync(path, log.ToString(), ct).ConfigureAwait(false);
        return path;
    }

    /// <summary>
    /// The stand-in legacy pipeline's online endpoint, on loopback for the serve step only (the demo's
    /// weft.json does not name it: it is gone when the demo ends): GET /users/{id}/sequence answers the
    /// user's events of the legacy output as a JSON array, as a legacy sequence service would.
    /// </summary>
    public sealed class StandInEndpoint : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private StandInEndpoint(WebApplication app, string url)
        {
            _app = app;
            Url = url;
        }

        /// <summary>The endpoint as <c>legacy.&lt;signal&gt;.endpoint</c> takes it.</summary>
        public string Url { get; }

        public static async Task<StandInEndpoint> StartAsync(EventBatch legacy, CancellationToken ct)
        {
            var users = ((PrimitiveColumn<long>)legacy[StandardColumns.UserId]).Values;
            var rowsOf = new Dictionary<long, List<int>>();
            for (int r = 0; r < legacy.RowCount; r++)
            {
                if (!rowsOf.TryGetValue(users[r], out var rows))
                {
                    rowsOf[users[r]] = rows = [];
                }

                rows.Add(r);
            }

            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "weft-demo-legacy", ContentRootPath = AppContext.BaseDirectory });
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            Weft.Serving.Hosting.NoSignalHostLifetime.Use(builder.Services); // the process's signals are the CLI's
            builder.Logging.ClearProviders();
            var app = builder.Build();
            app.MapGet("/users/{id}/sequence", async (HttpContext context, long id) =>
            {
                context.Response.ContentType = "application/json";
                using (var w = new Utf8JsonWriter(context.Response.BodyWriter))
                {
                    w.WriteStartArray();
                    foreach (int r in rowsOf.GetValueOrDefault(id) ?? [])
                    {
                        JsonRows.WriteRow(w, legacy, r);
                    }

                    w.WriteEndArray();
                }

                await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            });
            await app.StartAsync(ct).ConfigureAwait(false);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new StandInEndpoint(app, address.TrimEnd('/') + "/users/{user_id}/sequence");
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync().ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Runs <c>weft migrate ARGS</c> in-process and prints the command and its output.</summary>
    private static async Task MigrateAsync(TextWriter o, string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = await WeftCli.RunAsync(["migrate", .. args], stdout, stderr, CancellationToken.None).ConfigureAwait(false);
        var shown = new List<string>(); // the config and actor are the same every time; files by name
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "--config" or "--actor")
            {
                i++;
                continue;
            }

            shown.Add(File.Exists(args[i]) ? Path.GetFileName(args[i]) : args[i].Contains(' ', StringComparison.Ordinal) ? $"'{args[i]}'" : args[i]);
        }

        await o.WriteLineAsync($"  $ weft migrate {string.Join(' ', shown)}{(exit == 0 ? "" : $"   # exit {exit}")}").ConfigureAwait(false);
        foreach (var line in (stdout.ToString() + stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            await o.WriteLineAsync("    " + line.TrimEnd('\r')).ConfigureAwait(false);
        }
    }

    private static EventBatch LegacyRun(EventBatch rows, string run)
    {
        var ids = ((StringColumn)rows[StandardColumns.EventId]).Values;
        var keep = new List<int>(rows.RowCount);
        Span<byte> hash = stackalloc byte[32];
        for (int i = 0; i < rows.RowCount; i++)
        {
            SHA256.HashData(Encoding.UTF8.GetBytes(run + ids[i]), hash);
            if (BinaryPrimitives.ReadUInt64LittleEndian(hash) % 1_000_000 >= LegacyLoss * 1_000_000)
            {
                keep.Add(i);
            }
        }

        return rows.Gather(keep.ToArray());
    }

    /// <summary>The stand-in model's score of each user: 1 − e^(−Σ e^(−age in days) × (2 for a long dwell, else 1) / 10) over the user's events.</summary>
    private static EventBatch Scores(EventBatch rows, long asOf)
    {
        var users = ((PrimitiveColumn<long>)rows[StandardColumns.UserId]).Values;
        var times = ((PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
        var longDwell = (PrimitiveColumn<bool>)rows["long_dwell"];
        var sums = new SortedDictionary<long, double>();
        for (int i = 0; i < rows.RowCount; i++)
        {
            double ageDays = Math.Max(0, asOf - times[i]) / 86_400_000_000.0;
            sums[users[i]] = sums.GetValueOrDefault(users[i]) + Math.Exp(-ageDays) * (!longDwell.IsNull(i) && longDwell.Values[i] ? 2 : 1);
        }

        ImmutableArray<FieldDefinition> schema = [new("example_id", WeftType.Int64, Nullable: false), new("score", WeftType.Float64, Nullable: false)];
        return new EventBatch(schema, [
            new PrimitiveColumn<long>(WeftType.Int64, [.. sums.Keys]),
            new PrimitiveColumn<double>(WeftType.Float64, [.. sums.Values.Select(s => 1 - Math.Exp(-s / 10))]),
        ]);
    }
}
