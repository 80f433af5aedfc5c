namespace Weft.Bench.Batch;

internal static class Report
{
    public static int Print(string[] json, string? machine) => 1;
}
