using System.Runtime.InteropServices;
using Weft.Cli;

// Not disposed: a signal that lands while the process is exiting still calls Cancel, and a disposed
// source would throw there (seen after "serve: stopped"). It lives as long as the process anyway.
var cts = new CancellationTokenSource();

// The first Ctrl-C or SIGTERM (what Kubernetes and systemd send) cancels the command, which stops as it
// documents (a stream flushes, commits and leaves its group; a batch run stops between chunks); a second
// one ends the process at once, for a stop that hangs. The registrations live until the process ends.
// Counted, not read from the token: two signals handled at once must not both pass for the first.
int signals = 0;
void Stop(PosixSignalContext context)
{
    if (Interlocked.Increment(ref signals) == 1)
    {
        context.Cancel = true;
        cts.Cancel();
    }
}

using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
return await WeftCli.RunAsync(args, Console.Out, Console.Error, cts.Token).ConfigureAwait(false);
