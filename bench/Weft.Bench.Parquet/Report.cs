using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Weft.Bench.Parquet;

/// <summary>Prints the Weft vs DuckDB table from the two sides' JSON figures.</summary>
internal static class Report
{
    public static int Print(string weftJson, string duckdbJson)
    {
        var weft = JsonNode.Parse(File.ReadAllText(weftJson))!.AsObject();
        var duck = JsonNode.Parse(File.ReadAllText(duckdbJson))!.AsObject();
        var rows = weft["rows"]!.GetValue<long>();
        var logical = weft["logicalBytes"]!.GetValue<long>();
        var configs = duck["configs"]!.AsArray();
        var defaultThreads = duck["defaultThreads"]!.GetValue<int>();
        var one = configs.First(c => c!["threads"]!.GetValue<int>() == 1)!;

        var text = new StringBuilder();
        text.AppendLine(Inv(
            $"Weft {weft["runtime"]} vs DuckDB {duck["version"]}: {rows:N0} rows x 10 columns, row groups of {weft["rowGroupSize"]} rows, SNAPPY, dictionary on"));
        text.AppendLine(Inv($"Logical data (PLAIN bytes of all values): {logical / 1e6:F1} MB. Median of {weft["write"]!["seconds"]!.AsArray().Count} runs."));
        text.AppendLine();
        text.AppendLine(Inv($"| {"operation",-6} | {"side",-28} | {"median s",8} | {"runs s",-23} | {"M rows/s",8} | {"MB/s",7} | {"cpu/wall",8} |"));
        text.AppendLine("|--------|------------------------------|---------:|-------------------------|---------:|--------:|---------:|");
        foreach (var op in new[] { "write", "scan" })
        {
            Row(text, op, op == "scan" ? "Weft (1 thread, UTF-8)" : "Weft (1 thread)", weft[op]!, rows, logical);
            if (op == "scan" && weft["scanStrings"] is { } strings)
            {
                Row(text, op, "Weft (1 thread, .NET strs)", strings, rows, logical);
            }

            foreach (var c in configs)
            {
                var threads = c!["threads"]!.GetValue<int>();
                var label = threads == 1 ? "DuckDB threads=1" : $"DuckDB threads={threads} (default)";
                if (threads != 1 && threads != defaultThreads)
                {
                    label = $"DuckDB threads={threads}";
                }

                Row(text, op, label, c[op]!, rows, logical);
            }
        }

        text.AppendLine();
        var weftBytes = weft["fileBytes"]!.GetValue<long>();
        text.Append(Inv($"File size: Weft {weftBytes / 1e6:F1} MB"));
        foreach (var c in configs)
        {
            text.Append(Inv($", DuckDB threads={c!["threads"]} {c["fileBytes"]!.GetValue<long>() / 1e6:F1} MB"));
        }

        text.AppendLine();
        text.AppendLine();

        var writeRatio = Median(one["write"]!) / Median(weft["write"]!);
        var scanRatio = Median(one["scan"]!) / Median(weft["scan"]!);
        var sizeRatio = (double)weftBytes / one["fileBytes"]!.GetValue<long>();
        text.AppendLine("Weft vs DuckDB threads=1 (target: throughput ratio >= 1.00, size ratio within 1.00 +/- 0.10):");
        text.AppendLine(Inv($"  write throughput  Weft/DuckDB = {writeRatio:F2}x  {Verdict(writeRatio >= 1.0)}"));
        text.AppendLine(Inv($"  scan throughput   Weft/DuckDB = {scanRatio:F2}x  {Verdict(scanRatio >= 1.0)} (strings as UTF-8 bytes, as DuckDB keeps them)"));
        if (weft["scanStrings"] is { } stringScan)
        {
            text.AppendLine(Inv($"  (scan with .NET strings, one object a value: Weft/DuckDB = {Median(one["scan"]!) / Median(stringScan):F2}x)"));
        }

        text.AppendLine(Inv($"  file size         Weft/DuckDB = {sizeRatio:F3}   {Verdict(Math.Abs(sizeRatio - 1) <= 0.10)}"));

        text.AppendLine(CompareAggregates(weft["aggregates"], one["aggregates"]));

        if (duck["columns"] is JsonObject columns)
        {
            text.AppendLine();
            text.AppendLine("Compressed bytes per column (all row groups) and encodings:");
            text.AppendLine(Inv($"| {"column",-16} | {"Weft MB",8} | {"DuckDB t=1 MB",13} | {"ratio",6} | {"Weft encodings",-32} | {"DuckDB encodings",-32} |"));
            text.AppendLine("|------------------|---------:|--------------:|-------:|----------------------------------|----------------------------------|");
            var w = columns["weft"]!.AsArray();
            var d = columns["duckdb"]!.AsArray();
            for (var i = 0; i < w.Count; i++)
            {
                var wb = w[i]!["compressed"]!.GetValue<long>();
                var db = d[i]!["compressed"]!.GetValue<long>();
                text.AppendLine(Inv(
                    $"| {w[i]!["name"],-16} | {wb / 1e6,8:F2} | {db / 1e6,13:F2} | {(double)wb / db,6:F3} | {w[i]!["encodings"],-32} | {d[i]!["encodings"],-32} |"));
            }
        }

        if (weft["scanSecondsByColumn"] is JsonObject byColumn)
        {
            text.AppendLine();
            text.Append("Weft scan seconds by column (last run, UTF-8 strings):");
            foreach (var (name, seconds) in byColumn)
            {
                text.Append(Inv($" {name} {seconds!.GetValue<double>():F3};"));
            }

            text.AppendLine();
            if (weft["scanStringsSecondsByColumn"] is JsonObject stringsByColumn)
            {
                text.Append("Weft scan seconds by column (last run, .NET strings):");
                foreach (var (name, seconds) in stringsByColumn)
                {
                    text.Append(Inv($" {name} {seconds!.GetValue<double>():F3};"));
                }

                text.AppendLine();
            }

            if (duck["scanSecondsByColumn"] is JsonObject duckByColumn)
            {
                // One query per column of Weft's file: each column's own cost, beside Weft's share of its full scan.
                text.Append("DuckDB threads=1 seconds by column (one query per column, median):");
                foreach (var (name, seconds) in duckByColumn)
                {
                    text.Append(Inv($" {name} {seconds!.GetValue<double>():F3};"));
                }

                text.AppendLine();
            }
        }

        Console.Out.Write(text.ToString());
        return 0;
    }

    /// <summary>Weft's scan aggregates against DuckDB's (integer sums modulo 2^64, the double sum to 1e-9).</summary>
    private static string CompareAggregates(JsonNode? weft, JsonNode? duck)
    {
        if (weft is null || duck is null)
        {
            return "Scan aggregates: not available.";
        }

        var differences = new List<string>();
        if (weft["rows"]!.GetValue<long>() != duck["rows"]!.GetValue<long>())
        {
            differences.Add("rows");
        }

        var compared = 1;
        foreach (var (name, value) in weft.AsObject())
        {
            if (name == "rows")
            {
                continue;
            }

            var other = duck[name]!;
            compared += 2;
            if (value!["count"]!.GetValue<long>() != other["count"]!.GetValue<long>())
            {
                differences.Add($"count({name})");
            }

            var a = value["sum"]!;
            var b = other["sum"]!;
            var equal = a.GetValueKind() == System.Text.Json.JsonValueKind.Number
                ? Math.Abs(a.GetValue<double>() - b.GetValue<double>()) <= 1e-9 * Math.Abs(b.GetValue<double>())
                : long.Parse(a.GetValue<string>(), CultureInfo.InvariantCulture) == (long)(ulong)(System.Numerics.BigInteger.Parse(b.GetValue<string>(), CultureInfo.InvariantCulture) & ulong.MaxValue);
            if (!equal)
            {
                differences.Add($"sum({name})");
            }
        }

        return differences.Count == 0
            ? Inv($"Scan aggregates (count(*), count and sum of every column): Weft's scan equals DuckDB's ({compared} values).")
            : $"Scan aggregates DIFFER between Weft and DuckDB: {string.Join(", ", differences)}";
    }

    private static void Row(StringBuilder text, string op, string label, JsonNode figures, long rows, long logical)
    {
        var seconds = figures["seconds"]!.AsArray().Select(s => s!.GetValue<double>()).ToArray();
        var cpu = figures["cpuSeconds"]!.AsArray().Select(s => s!.GetValue<double>()).ToArray();
        var median = Median(figures);
        var cpuMedian = MedianOf(cpu);
        var runs = string.Join(", ", seconds.Select(s => s.ToString("F3", CultureInfo.InvariantCulture)));
        text.AppendLine(Inv(
            $"| {op,-6} | {label,-28} | {median,8:F3} | {runs,-23} | {rows / median / 1e6,8:F2} | {logical / median / 1e6,7:F0} | {cpuMedian / median,8:F2} |"));
    }

    private static double Median(JsonNode figures) =>
        MedianOf(figures["seconds"]!.AsArray().Select(s => s!.GetValue<double>()).ToArray());

    private static double MedianOf(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string Verdict(bool pass) => pass ? "meets target" : "MISSES target";

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
