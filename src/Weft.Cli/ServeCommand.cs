using System.CommandLine;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine.Configuration;
using Weft.Serving;
using Weft.Storage;

namespace Weft.Cli;

/// <summary><c>weft serve --config weft.json [--urls http://127.0.0.1:PORT]</c>: the serving API (and, on a single node, the stream) until Ctrl-C.</summary>
internal static class ServeCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var config = new Option<string>("--config") { Description = "The deployment config (weft.json); its \"serving\" object holds the options (docs/serving.md)", DefaultValueFactory = _ => "weft.json" };
        var urls = new Option<string?>("--urls") { Description = "Where to listen, e.g. http://127.0.0.1:8080 (overrides serving.urls)" };
        var command = new Command("serve", "Serve sequences over HTTP with provenance; on a single node also run the stream (POST /v1/events)") { config, urls };
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                var weft = WeftConfig.Load(parse.GetValue(config)!);
                var options = ServingOptions.FromConfig(weft);
                if (parse.GetValue(urls) is { } u)
                {
                    options = options with { Urls = u };
                    try
                    {
                        options.Validate();
                    }
                    catch (ArgumentOutOfRangeException ex)
                    {
                        throw new ArgumentException($"--urls: {CliMessages.Of(ex)}", ex);
                    }
                }

                await using var server = await ServingServer.StartAsync(weft, options, cancellationToken: ct).ConfigureAwait(false);
                await stdout.WriteLineAsync($"serve: listening on {string.Join(", ", server.Urls)} (dashboard at /, OpenAPI at /openapi.json); Ctrl-C stops").ConfigureAwait(false);
                try
                {
                    await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    // Ctrl-C: stopped below
                }

                // Stopped before it says so: dispose stops Kestrel, flushes the stream and closes the store
                // (the line came first, so a stop that then hung or failed had already said "stopped").
                await server.DisposeAsync().ConfigureAwait(false);
                await stdout.WriteLineAsync("serve: stopped").ConfigureAwait(false);
                return 0;
            }
            // UnauthorizedAccessException: a log, lake or archive folder the process may not create or write
            // (it went unhandled: a stack trace and exit 1).
            catch (Exception ex) when (ex is ConfigException or InputException or DefinitionException or DeltaException or IOException or UnauthorizedAccessException
                                           or ArgumentException or NotSupportedException or Weft.Online.OnlineStoreException)
            {
                await stderr.WriteLineAsync($"serve: {CliMessages.Of(ex)}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }
}
