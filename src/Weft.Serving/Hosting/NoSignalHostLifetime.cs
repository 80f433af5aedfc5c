using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Weft.Serving.Hosting;

/// <summary>
/// A web host's lifetime that leaves SIGINT and SIGTERM to the process (the CLI's Program.cs: the first
/// signal stops the command cleanly, a second ends the process at once). The default ConsoleLifetime
/// registers its own handlers, which cancel every signal's default action while the host lives: a second
/// SIGTERM to a <c>weft serve</c> (or <c>weft stream --metrics-urls</c>) whose stop hung did nothing.
/// The host stops when its owner stops or disposes it.
/// </summary>
public sealed class NoSignalHostLifetime : IHostLifetime
{
    /// <summary>Puts this lifetime in place of the default one in a host's services.</summary>
    public static void Use(IServiceCollection services) => services.AddSingleton<IHostLifetime, NoSignalHostLifetime>();

    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
