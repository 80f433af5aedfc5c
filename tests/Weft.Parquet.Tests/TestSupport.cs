using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Weft.Parquet.Tests;

/// <summary>Locates the repository and gives each test its own temporary directory.</summary>
internal static class RepoPaths
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Directory.Build.props")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} holds Directory.Build.props.");
    });

    public static string RepoRoot => Root.Value;

    public static string InteropDir => Path.Combine(RepoRoot, "tests", "interop");
}

/// <summary>A temporary directory deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "weft-parquet-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder must not fail a test.
        }
    }
}

/// <summary>One statement's result from tests/interop/duckdb.mjs.</summary>
internal sealed record DuckResult(IReadOnlyList<string> Columns, IReadOnlyList<string> Types, IReadOnlyList<JsonElement[]> Rows)
{
    public int Index(string column)
    {
        for (var i = 0; i < Columns.Count; i++)
        {
            if (Columns[i] == column)
            {
                return i;
            }
        }

        throw new KeyNotFoundException($"DuckDB result has no column '{column}' ({string.Join(", ", Columns)}).");
    }
}

/// <summary>Runs SQL through DuckDB with node and tests/interop/duckdb.mjs.</summary>
internal static class DuckDb
{
    public static async Task<IReadOnlyList<DuckResult>> RunAsync(params string[] statements)
    {
        var output = await NodeScript.RunAsync("duckdb.mjs", JsonSerializer.Serialize(statements), string.Join("; ", statements));
        using var doc = JsonDocument.Parse(output);
        var results = new List<DuckResult>();
        foreach (var result in doc.RootElement.EnumerateArray())
        {
            var columns = result.GetProperty("columns").EnumerateArray().Select(c => c.GetString()!).ToArray();
            var types = result.GetProperty("types").EnumerateArray().Select(c => c.GetString()!).ToArray();
            var rows = result.GetProperty("rows").EnumerateArray()
                .Select(r => r.EnumerateArray().Select(v => v.Clone()).ToArray())
                .ToArray();
            results.Add(new DuckResult(columns, types, rows));
        }

        return results;
    }

    /// <summary>A SQL string literal.</summary>
    public static string Quote(string path) => "'" + path.Replace("'", "''", StringComparison.Ordinal) + "'";
}

/// <summary>Runs one of the reference scripts in tests/interop with node: <c>node SCRIPT --file request.json</c>, returning its stdout.</summary>
internal static class NodeScript
{
    public static async Task<string> RunAsync(string script, string requestJson, string describe)
    {
        var interop = RepoPaths.InteropDir;
        if (!Directory.Exists(Path.Combine(interop, "node_modules", "@duckdb", "node-api")) || !Directory.Exists(Path.Combine(interop, "node_modules", "roaring-wasm")))
        {
            throw new InvalidOperationException(
                $"Interop tests need the node modules in {interop}: run `npm ci --prefix tests/interop` from the repository root.");
        }

        using var temp = new TempDir();
        var file = temp.File("request.json");
        await File.WriteAllTextAsync(file, requestJson);
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = interop,
            StandardOutputEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(Path.Combine(interop, script));
        start.ArgumentList.Add("--file");
        start.ArgumentList.Add(file);

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("node did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("Interop tests need `node` on the PATH.", e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{script} did not finish within 60 s: {describe}");
            }

            var output = await stdout;
            var errors = await stderr;
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{script} failed ({process.ExitCode}): {errors}");
            }

            return output;
        }
    }
}
