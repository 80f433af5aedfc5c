using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using FluentAssertions;
using Xunit;

namespace Weft.Cli.Tests;

/// <summary>
/// The CLI's Ctrl-C and SIGTERM handling (Program.cs), as a user or Kubernetes meets it: the real weft
/// process is sent a real signal. The first one stops the command cleanly (exit 0, its last line); a
/// second one ends the process at once.
/// </summary>
public sealed partial class SignalTests : IDisposable
{
    private const int SigInt = 2;
    private const int SigTerm = 15;

    /// <summary>How long a process is given to end after its signal; a stop that hangs fails the test within it.</summary>
    private static readonly TimeSpan StopGuard = TimeSpan.FromSeconds(20);

    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    /// <summary>
    /// SIGTERM mid-stream: the stream flushes, commits the offsets of what it read and exits 0 with its
    /// last line. Nothing is committed before the signal (the flush interval is longer than the test),
    /// so the offsets in the log's group file are the stop's own; a restart reads only the records after
    /// them, and the store and the lake hold every event once.
    /// </summary>
    [Fact]
    public async Task Weft_stream_given_SIGTERM_mid_stream_commits_what_it_read_and_exits_0_and_a_restart_reads_only_the_rest()
    {
        var (config, lines) = await StreamSetup.EmbeddedStreamAsync(_cli, events: 100000, users: 200, items: 100, days: 2);

        long committed;
        using (var child = StreamSetup.StartWeft(_cli, "stream", "--config", config, "--max-batch", "250", "--flush-interval", "10m", "--exit-when-idle", "60s"))
        {
            try
            {
                var output = new ChildOutput(child);
                await output.Err.WaitForAsync(l => ReadSoFar(l) >= 8000, "a progress line of 8,000 records or more");
                CommittedOffset().Should().BeNull("nothing is flushed or committed before the signal: the commit after it is the stop's");

                Send(child, SigTerm);

                (await ExitAsync(child)).Should().Be(0, output.Text);
                await output.Drained;
                var last = Regex.Match(output.Out.Text, @"stream: stopped after reading ([\d,]+) records \(redeliveries included\); offsets committed up to what the lake and the online store hold");
                last.Success.Should().BeTrue($"the clean stop's last line; output: {output.Text}");
                long read = long.Parse(last.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
                read.Should().BeLessThan(lines.Count, "the signal must land mid-stream");
                committed = CommittedOffset() ?? 0;
                committed.Should().BeGreaterThan(0, "the stop committed the offsets of what it flushed").And.BeLessThanOrEqualTo(read);
            }
            finally
            {
                KillIfRunning(child);
            }
        }

        var restart = await _cli.RunAsync("stream", "--config", config, "--exit-when-idle", "2s");
        restart.Exit.Should().Be(0, restart.Err);
        restart.Out.Should().Contain($"stream: stopped after reading {lines.Count - committed:N0} records", "the restart reads from the stop's commit: only the records the first run did not commit");
        await StreamSetup.ShouldHoldEveryEventOnceAsync(_cli, config, null, lines);
    }

    /// <summary>SIGTERM (what Kubernetes and systemd send) and SIGINT (Ctrl-C) stop weft serve: "serve: stopped", exit 0.</summary>
    [Theory]
    [InlineData(SigTerm)]
    [InlineData(SigInt)]
    public async Task Weft_serve_given_a_signal_stops_cleanly_with_its_stopped_line_and_exit_0(int signal)
    {
        ServeCommandTests.WriteDeployment(_cli, "{}");
        using var child = StreamSetup.StartWeft(_cli, "serve", "--config", _cli.PathOf("weft.json"), "--urls", "http://127.0.0.1:0");
        try
        {
            var output = new ChildOutput(child);
            string listening = await output.Out.WaitForAsync(l => l.StartsWith("serve: listening on http://127.0.0.1:", StringComparison.Ordinal), "serve's listening line");
            string url = Regex.Match(listening, @"http://127\.0\.0\.1:\d+").Value;
            using var client = new HttpClient();
            (await client.GetStringAsync(url + "/healthz")).Should().Be("ok\n");

            Send(child, signal);

            (await ExitAsync(child)).Should().Be(0, output.Text);
            await output.Drained;
            output.Out.Text.Should().Contain("serve: stopped");
            output.Err.Text.Should().NotContain("   at ", "a clean stop, no stack trace");
            output.Out.Text.Should().NotContain("dbug:", "the host's debug lines stay out of serve's log once it has started");
        }
        finally
        {
            KillIfRunning(child);
        }
    }

    /// <summary>
    /// A stop that hangs ends at the second signal. The stop is made to hang for sure: once the stream
    /// has opened its log, a FIFO takes the path of the temp file the offset commit writes, so the stop's
    /// commit blocks opening it (no reader ever comes). The first SIGTERM is seen to start the stop by the
    /// stop's flush writing stream rows to the lake (nothing is flushed before it); the second then ends the
    /// process as SIGTERM's default does, exit 143 (128 + 15), without the clean stop's last line.
    /// </summary>
    /// <remarks>With <c>--metrics-urls</c> the stream runs a web host for its endpoints, whose default lifetime took the signals too.</remarks>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_second_SIGTERM_ends_weft_stream_at_once_when_its_clean_stop_hangs(bool metrics)
    {
        var (config, _) = await StreamSetup.EmbeddedStreamAsync(_cli, events: 20000, users: 100, items: 50, days: 1);
        string[] endpoints = metrics ? ["--metrics-urls", "http://127.0.0.1:0"] : [];
        using var child = StreamSetup.StartWeft(_cli, ["stream", "--config", config, "--max-batch", "250", "--flush-interval", "10m", "--exit-when-idle", "60s", .. endpoints]);
        try
        {
            var output = new ChildOutput(child);
            await output.Err.WaitForAsync(l => ReadSoFar(l) > 0, "a progress line");
            await SecondSigtermEndsTheHungStopAsync(child, output, "stream: stopped");
        }
        finally
        {
            KillIfRunning(child);
        }
    }

    /// <summary>
    /// The same for weft serve running the stream in-process (serving.stream "auto" over the embedded log):
    /// its web host must not keep the second signal from ending the process.
    /// </summary>
    [Fact]
    public async Task A_second_SIGTERM_ends_weft_serve_at_once_when_its_clean_stop_hangs()
    {
        var (config, _) = await StreamSetup.EmbeddedStreamAsync(_cli, events: 20000, users: 100, items: 50, days: 1);
        await File.WriteAllTextAsync(config, "{ \"serving\": { \"stream_flush_interval\": \"10m\" }," + (await File.ReadAllTextAsync(config)).TrimStart()[1..]);
        using var child = StreamSetup.StartWeft(_cli, "serve", "--config", config, "--urls", "http://127.0.0.1:0");
        try
        {
            var output = new ChildOutput(child);
            string listening = await output.Out.WaitForAsync(l => l.StartsWith("serve: listening on http://127.0.0.1:", StringComparison.Ordinal), "serve's listening line");
            string url = Regex.Match(listening, @"http://127\.0\.0\.1:\d+").Value;
            using var client = new HttpClient();
            using (var guard = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                string metrics;
                while (!Regex.IsMatch(metrics = await client.GetStringAsync(url + "/metrics", guard.Token), @"^weft_stream_records_total(\{[^}]*\})? [1-9]", RegexOptions.Multiline))
                {
                    guard.IsCancellationRequested.Should().BeFalse($"the in-process stream was expected to read the log; metrics: {metrics}");
                    await Task.Delay(50, guard.Token);
                }
            }

            await SecondSigtermEndsTheHungStopAsync(child, output, "serve: stopped");
        }
        finally
        {
            KillIfRunning(child);
        }
    }

    /// <summary>
    /// Hangs the stop of a process streaming from <c>log</c> (its offset commit), sends SIGTERM, waits for the
    /// stop's flush to reach the lake, sends SIGTERM again: the process must end at once, exit 143.
    /// </summary>
    private async Task SecondSigtermEndsTheHungStopAsync(Process child, ChildOutput output, string cleanStopLine)
    {
        // The log removes a temp file a crash left behind when it opens, so the FIFO comes after.
        string temp = _cli.PathOf("log/groups/weft-stream.offset.tmp");
        Posix.MkFifo(temp, Convert.ToUInt32("600", 8)).Should().Be(0, $"mkfifo {temp}: errno {Marshal.GetLastPInvokeError()}");
        LakeFiles().Should().BeEmpty("nothing is flushed before the signal");

        Send(child, SigTerm);
        using (var guard = new CancellationTokenSource(StopGuard))
        {
            while (LakeFiles().Count == 0)
            {
                child.HasExited.Should().BeFalse($"the stop cannot finish while its commit waits on the FIFO; output: {output.Text}");
                guard.IsCancellationRequested.Should().BeFalse("the first SIGTERM was expected to start the stop's flush");
                await Task.Delay(20);
            }
        }

        Send(child, SigTerm);

        (await ExitAsync(child)).Should().Be(128 + SigTerm, output.Text);
        await output.Drained;
        output.Out.Text.Should().NotContain(cleanStopLine, "the process ended before its clean stop did");
    }

    /// <summary>The records read so far on a stream progress line ("stream: 12,000 records  …"), else -1.</summary>
    private static long ReadSoFar(string line) =>
        line.StartsWith("stream: ", StringComparison.Ordinal) && line.Split(' ') is [_, var count, "records", ..]
            && long.TryParse(count, NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out long read) ? read : -1;

    /// <summary>The stream's committed position in the embedded log (its group file), or null when it has not committed.</summary>
    private long? CommittedOffset()
    {
        string path = _cli.PathOf("log/groups/weft-stream.offset");
        if (!File.Exists(path))
        {
            return null;
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.GetProperty("next_offset").GetInt64();
    }

    private List<string> LakeFiles() =>
        Directory.Exists(_cli.PathOf("lake")) ? [.. Directory.EnumerateFiles(_cli.PathOf("lake"), "*.parquet", SearchOption.AllDirectories)] : [];

    private static void Send(Process child, int signal) =>
        Posix.Kill(child.Id, signal).Should().Be(0, $"kill({child.Id}, {signal}): errno {Marshal.GetLastPInvokeError()}");

    /// <summary>The child's exit code once it exits; fails if it does not within <see cref="StopGuard"/>.</summary>
    private static async Task<int> ExitAsync(Process child)
    {
        try
        {
            await child.WaitForExitAsync().WaitAsync(StopGuard);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"weft did not exit within {StopGuard.TotalSeconds:F0} s of the signal");
        }

        return child.ExitCode;
    }

    private static void KillIfRunning(Process child)
    {
        if (!child.HasExited)
        {
            child.Kill(entireProcessTree: true);
            child.WaitForExit();
        }
    }

    private static partial class Posix
    {
        [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
        public static partial int Kill(int pid, int signal);

        [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int MkFifo(string path, uint mode);
    }

    /// <summary>A child process's output and error, each read line by line as it comes (so neither pipe fills).</summary>
    private sealed class ChildOutput(Process child)
    {
        public OutputLines Out { get; } = new(child.StandardOutput);

        public OutputLines Err { get; } = new(child.StandardError);

        public Task Drained => Task.WhenAll(Out.Drained, Err.Drained);

        public string Text => $"stdout: {Out.Text}; stderr: {Err.Text}";
    }

    private sealed class OutputLines
    {
        private readonly List<string> _lines = [];

        public OutputLines(StreamReader reader) => Drained = Task.Run(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                lock (_lines)
                {
                    _lines.Add(line);
                }
            }
        });

        public Task Drained { get; }

        public string Text
        {
            get
            {
                lock (_lines)
                {
                    return string.Join('\n', _lines);
                }
            }
        }

        /// <summary>The first line matching <paramref name="match"/>; fails if the output ends, or 30 s pass, without one.</summary>
        public async Task<string> WaitForAsync(Func<string, bool> match, string what)
        {
            using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (true)
            {
                bool ended = Drained.IsCompleted;
                lock (_lines)
                {
                    if (_lines.FirstOrDefault(match) is { } line)
                    {
                        return line;
                    }
                }

                if (ended || guard.IsCancellationRequested)
                {
                    throw new InvalidOperationException($"no {what} ({(ended ? "the output ended" : "30 s passed")}); output so far: {Text}");
                }

                await Task.Delay(20);
            }
        }
    }
}
