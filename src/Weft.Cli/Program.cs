using Weft.Cli;

// Not disposed: a Ctrl-C that lands while the process is exiting still calls Cancel, and a disposed
// source would throw there (seen after "serve: stopped"). It lives as long as the process anyway.
var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};
return await WeftCli.RunAsync(args, Console.Out, Console.Error, cts.Token).ConfigureAwait(false);
