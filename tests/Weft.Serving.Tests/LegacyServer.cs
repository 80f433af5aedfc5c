using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Weft.Tests.Legacy;

/// <summary>A legacy pipeline's online endpoint on loopback: answers each user's events as JSON, or fails as told.</summary>
internal sealed class LegacyServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LegacyServer(WebApplication app) => _app = app;

    public ConcurrentDictionary<long, string> Bodies { get; } = new();

    public int Requests;

    private int _failWith;
    private int _delayMs;

    /// <summary>A status every request fails with (0: none).</summary>
    public int FailWith { get => Volatile.Read(ref _failWith); set => Volatile.Write(ref _failWith, value); }

    public int DelayMs { get => Volatile.Read(ref _delayMs); set => Volatile.Write(ref _delayMs, value); }

    /// <summary>When set, each request waits for it before answering: a request held out as long as a test needs.</summary>
    public TaskCompletionSource? Hold { get; set; }

    /// <summary>Users whose requests fail with the given status.</summary>
    public ConcurrentDictionary<long, int> FailFor { get; } = new();

    public string Url => _app.Urls.First() + "/users/{user_id}/sequence";

    public static async Task<LegacyServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new LegacyServer(app);
        app.MapGet("/users/{id}/sequence", async (HttpContext context, long id) =>
        {
            Interlocked.Increment(ref server.Requests);
            if (server.DelayMs > 0)
            {
                await Task.Delay(server.DelayMs, context.RequestAborted);
            }

            if (server.Hold is { } hold)
            {
                await hold.Task.WaitAsync(context.RequestAborted);
            }

            int status = server.FailWith != 0 ? server.FailWith : server.FailFor.GetValueOrDefault(id);
            if (status != 0)
            {
                context.Response.StatusCode = status;
                return;
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(server.Bodies.TryGetValue(id, out var body) ? body : "[]", context.RequestAborted);
        });
        await app.StartAsync();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
