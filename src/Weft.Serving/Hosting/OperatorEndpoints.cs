using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Weft.Engine.Observability;

namespace Weft.Serving.Hosting;

/// <summary>
/// The operator endpoints of a process that serves no sequences (<c>weft stream</c>): <c>GET /metrics</c>
/// (Prometheus text of its registry, as <c>weft serve</c> renders its own) and <c>GET /healthz</c>
/// (200 while the caller reports no problem, else 503 with the problem). A stream on its own is how a
/// Kafka deployment runs it; without these, its freshness and lag were only in its log.
/// </summary>
public sealed class OperatorEndpoints : IAsyncDisposable
{
    private readonly WebApplication _app;

    private OperatorEndpoints(WebApplication app, IReadOnlyList<string> urls)
    {
        _app = app;
        Urls = urls;
    }

    /// <summary>The addresses bound (a port 0 asked for is the one the system chose).</summary>
    public IReadOnlyList<string> Urls { get; }

    /// <param name="urls">Where to listen, ';'-separated (e.g. <c>http://127.0.0.1:9464</c>).</param>
    /// <param name="metrics">The registry <c>/metrics</c> renders.</param>
    /// <param name="problem">What is wrong, or null when healthy; asked at each <c>/healthz</c>.</param>
    /// <param name="beforeScrape">Sets the gauges read at scrape time (a stream's lag), before each <c>/metrics</c>.</param>
    public static async Task<OperatorEndpoints> StartAsync(string urls, WeftMetrics metrics, Func<string?> problem, Action? beforeScrape, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(problem);
        var addresses = ParseUrls(urls);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "weft-operator", ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls(addresses);
        NoSignalHostLifetime.Use(builder.Services); // the process's signals are its owner's (weft stream's)
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.Use((context, next) =>
        {
            Http.ServingEndpoints.SetSafetyHeaders(context.Response.Headers);
            return next(context);
        });
        app.MapMethods("/metrics", Http.ServingEndpoints.ReadMethods, async (HttpContext context) =>
        {
            beforeScrape?.Invoke();
            var text = new StringBuilder(16 * 1024);
            metrics.WritePrometheus(text);
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await context.Response.WriteAsync(text.ToString(), context.RequestAborted).ConfigureAwait(false);
        });
        app.MapMethods("/healthz", Http.ServingEndpoints.ReadMethods, async (HttpContext context) =>
        {
            var wrong = problem();
            context.Response.StatusCode = wrong is null ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync(wrong ?? "ok", context.RequestAborted).ConfigureAwait(false);
        });
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"cannot listen on {urls}: {e.Message}", e);
        }

        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [.. addresses];
        return new OperatorEndpoints(app, bound);
    }

    /// <summary>The addresses in <paramref name="urls"/> (';'-separated), each an absolute http:// URL without a path; throws <see cref="ArgumentException"/> naming the first that is not.</summary>
    public static string[] ParseUrls(string urls)
    {
        ArgumentNullException.ThrowIfNull(urls);
        switch (ListenUrls.FirstInvalid(urls))
        {
            case "":
                throw new ArgumentException("no address to listen on (e.g. http://127.0.0.1:9464)", nameof(urls));
            case { } address:
                throw new ArgumentException($"'{address}' is not {ListenUrls.Expected} (e.g. http://127.0.0.1:9464; /metrics and /healthz are served at its root)", nameof(urls));
            default:
                return ListenUrls.Split(urls);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
