namespace Weft.Cli.Tests;

/// <summary>Runs the weft CLI in-process with captured output, in a temp directory of its own.</summary>
public sealed class CliHarness : IDisposable
{
    public CliHarness() => Directory.CreateDirectory(Root);

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "weft-cli-" + Guid.NewGuid().ToString("N"));

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Build.props")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
        }
    }

    public string PathOf(string relative) => Path.Combine(Root, relative);

    public async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await WeftCli.RunAsync(args, stdout, stderr, CancellationToken.None);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    /// <summary>
    /// Starts <c>weft serve</c> in-process on a free port (<paramref name="args"/> after "serve", without
    /// --urls) and waits until it listens: the run (completes when <paramref name="stop"/> is cancelled)
    /// and its base URL. Fails naming its output if it stops or does not listen within 20 s.
    /// </summary>
    public static async Task<(Task<int> Run, string Url)> StartServeAsync(string[] args, StringWriter stdout, StringWriter stderr, CancellationToken stop)
    {
        var run = WeftCli.RunAsync(["serve", .. args, "--urls", "http://127.0.0.1:0"], TextWriter.Synchronized(stdout), TextWriter.Synchronized(stderr), stop);
        for (int i = 0; i < 400 && !run.IsCompleted; i++)
        {
            var listening = System.Text.RegularExpressions.Regex.Match(stdout.ToString(), @"listening on (http://127\.0\.0\.1:\d+)");
            if (listening.Success)
            {
                return (run, listening.Groups[1].Value);
            }

            await Task.Delay(50, stop);
        }

        throw new InvalidOperationException($"weft serve did not listen; stdout: {stdout}, stderr: {stderr}");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
