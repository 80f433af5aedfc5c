using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Weft.Bench.Batch;

/// <summary>Prints the Weft vs DuckDB table from the figures bench/batch/run.sh leaves in each run folder.</summary>
internal static class Report
{
    public static int Print(string[] runs, string? machine)
    {
        _ = machine;
        var text = new StringBuilder();
        var rows = new List<(long Events, JsonNode Weft, JsonNode WeftProcess, JsonNode? Duck, JsonNode? DuckProcess, JsonNode? Compare)>();
        foreach (var run in runs)
        {
            var events = long.Parse(Path.GetFileName(run.TrimEnd('/')), CultureInfo.InvariantCulture);
            rows.Add((events, Read(run, "weft-result.json")!, Read(run, "weft-process.json")!, Read(run, "duckdb-result.json"), Read(run, "duckdb-process.json"), Read(run, "compare.json")));
        }

        var first = rows[0];
        text.AppendLine(Inv($"Weft {first.Weft["runtime"]} (SequenceBuild, {first.Weft["processors"]} cores) vs DuckDB {first.Duck?["version"] ?? "-"} (threads={first.Duck?["threads"] ?? "-"}, memory_limit={first.Duck?["memoryLimit"] ?? "-"}, {first.Duck?["form"] ?? "-"} form)"));
        text.AppendLine("Wall and CPU time and peak RSS of each whole process (/usr/bin/time), start-up included.");
        text.AppendLine();
        text.AppendLine("| events | users | elements | Weft wall s | Weft CPU s | Weft peak GB | DuckDB wall s | DuckDB CPU s | DuckDB peak GB | wall Weft/DuckDB | peak Weft/DuckDB | outputs |");
        text.AppendLine("|-------:|------:|---------:|------------:|-----------:|-------------:|--------------:|-------------:|---------------:|-----------------:|-----------------:|---------|");
        foreach (var r in rows)
        {
            double ws = Num(r.WeftProcess, "seconds"), wc = Num(r.WeftProcess, "cpuSeconds"), wm = Num(r.WeftProcess, "peakRssBytes") / 1e9;
            bool duckOk = r.DuckProcess is not null && Num(r.DuckProcess, "exitCode") == 0 && r.Duck?["failed"] is null;
            string duck = duckOk
                ? Inv($"{Num(r.DuckProcess!, "seconds"),13:F1} | {Num(r.DuckProcess!, "cpuSeconds"),12:F1} | {Num(r.DuckProcess!, "peakRssBytes") / 1e9,14:F2} | {ws / Num(r.DuckProcess!, "seconds"),16:F2} | {wm / (Num(r.DuckProcess!, "peakRssBytes") / 1e9),16:F2}")
                : r.DuckProcess is null ? "            - |            - |              - |                - |                -"
                : Inv($"failed ({Num(r.DuckProcess, "seconds"):F0} s, exit {Num(r.DuckProcess, "exitCode")}, peak {Num(r.DuckProcess, "peakRssBytes") / 1e9:F1} GB) | | | |");
            string outputs = r.Compare is null ? "not compared" : Num(r.Compare, "differingUsers") == 0 ? "equal" : Inv($"{Num(r.Compare, "differingUsers")} users DIFFER");
            text.AppendLine(Inv($"| {r.Events / 1e6,5:F0}M | {r.Weft["users"]} | {r.Weft["elements"]} | {ws,11:F1} | {wc,10:F1} | {wm,12:F2} | {duck} | {outputs} |"));
        }

        text.AppendLine();
        text.AppendLine("Weft per million events (linear cost: these stay flat as the input grows):");
        foreach (var r in rows)
        {
            double m = r.Events / 1e6;
            text.AppendLine(Inv($"  {m,4:F0}M: {Num(r.WeftProcess, "seconds") / m:F2} s wall, {Num(r.WeftProcess, "cpuSeconds") / m:F2} s CPU, {Num(r.WeftProcess, "peakRssBytes") / 1e9 / m:F3} GB peak per M events; load average {r.WeftProcess["loadAverage"]}"));
        }

        text.AppendLine();
        text.AppendLine("Weft phases (s), GC:");
        foreach (var r in rows)
        {
            var phases = string.Join("; ", r.Weft["phases"]!.AsObject().Select(p => Inv($"{p.Key} {p.Value!.GetValue<double>():F2}")));
            text.AppendLine(Inv($"  {r.Events / 1e6,4:F0}M: {phases}; GC pauses {Num(r.Weft, "gcPauseSeconds"):F2} s, allocated {Num(r.Weft, "allocatedBytes") / 1e9:F1} GB; {r.Weft["duplicates"]} duplicates, {r.Weft["hotUserCapped"]} capped, {r.Weft["truncatedUsers"]} users truncated"));
        }

        var last = rows[^1];
        if (last.DuckProcess is not null && Num(last.DuckProcess, "exitCode") == 0 && last.Duck?["failed"] is null)
        {
            double wall = Num(last.WeftProcess, "seconds") / Num(last.DuckProcess, "seconds");
            double peak = Num(last.WeftProcess, "peakRssBytes") / Num(last.DuckProcess, "peakRssBytes");
            text.AppendLine();
            text.AppendLine(Inv($"Target at {last.Events / 1e6:F0}M events (Weft at most half of DuckDB):"));
            text.AppendLine(Inv($"  wall  Weft/DuckDB = {wall:F2}  {(wall <= 0.5 ? "meets target" : "MISSES target")}"));
            text.AppendLine(Inv($"  peak  Weft/DuckDB = {peak:F2}  {(peak <= 0.5 ? "meets target" : "MISSES target")}"));
        }

        Console.Out.Write(text.ToString());
        return 0;
    }

    private static JsonNode? Read(string run, string name)
    {
        string path = Path.Combine(run, name);
        return File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) : null;
    }

    private static double Num(JsonNode node, string name) => node[name]?.GetValue<double>() ?? double.NaN;

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
