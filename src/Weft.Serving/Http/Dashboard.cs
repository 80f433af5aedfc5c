namespace Weft.Serving.Http;

/// <summary>The dashboard page, embedded in the assembly (Dashboard/index.html).</summary>
internal static class Dashboard
{
    public static string Html { get; } = Load();

    private static string Load()
    {
        using var stream = typeof(Dashboard).Assembly.GetManifestResourceStream("dashboard/index.html")
            ?? throw new InvalidOperationException("the dashboard page is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
