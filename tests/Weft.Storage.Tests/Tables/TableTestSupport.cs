using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Weft.Storage.Tests.Tables;

/// <summary>Runs SQL through DuckDB with node and tests/interop/duckdb.mjs (as the Parquet tests do).</summary>
internal static class DuckDb
{
    private static readonly Lazy<string> RepoRoot = new(() =>
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

    public static async Task<IReadOnlyList<DuckResult>> RunAsync(params string[] statements)
    {
        var interop = Path.Combine(RepoRoot.Value, "tests", "interop");
        if (!Directory.Exists(Path.Combine(interop, "node_modules", "@duckdb", "node-api")))
        {
            throw new InvalidOperationException(
                $"DuckDB interop tests need the node modules in {interop}: run `npm ci --prefix tests/interop` from the repository root.");
        }

        using var temp = new TempDirectory();
        var file = temp.Combine("statements.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(statements));
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = interop,
            StandardOutputEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(Path.Combine(interop, "duckdb.mjs"));
        start.ArgumentList.Add("--file");
        start.ArgumentList.Add(file);

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("node did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("DuckDB interop tests need `node` on the PATH.", e);
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
                throw new TimeoutException($"duckdb.mjs did not finish within 60 s: {string.Join("; ", statements)}");
            }

            var output = await stdout;
            var errors = await stderr;
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"duckdb.mjs failed ({process.ExitCode}): {errors}");
            }

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
    }

    /// <summary>A SQL string literal.</summary>
    public static string Quote(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";
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
