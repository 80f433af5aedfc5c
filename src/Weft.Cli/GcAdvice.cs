namespace Weft.Cli;

/// <summary>
/// What to tell a stream's operator when .NET cannot size generation 0 on this machine. The GC sizes
/// it from the CPU's cache size, which Linux reports under <c>/sys/devices/system/cpu/cpu0/cache</c>;
/// where that is missing (some VMs), the budget falls to a few megabytes and a busy stream collects
/// over a hundred times a second (docs/stream-runtime.md, "Garbage collector").
/// </summary>
internal static class GcAdvice
{
    public const string CacheDirectory = "/sys/devices/system/cpu/cpu0/cache";

    /// <summary>The note for <c>weft stream</c>, or null when the caches are reported or a budget is set.</summary>
    /// <param name="cacheDirectory">Where Linux reports the first CPU's caches.</param>
    /// <param name="environment">Reads an environment variable (the GC reads DOTNET_ and COMPlus_ names).</param>
    /// <param name="isLinux">Whether this is Linux (elsewhere the caches are read another way).</param>
    public static string? ForStream(string cacheDirectory, Func<string, string?> environment, bool isLinux)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (!isLinux || Directory.Exists(cacheDirectory) || environment("DOTNET_GCgen0size") is not null || environment("COMPlus_GCgen0size") is not null)
        {
            return null;
        }

        return $"stream: note: this machine does not report its CPU caches ({cacheDirectory} is missing), so .NET sizes generation 0 at a few MB and collects many times a second under load; start weft stream with DOTNET_GCgen0size=0x10000000 (a 256 MB budget; see docs/stream-runtime.md)";
    }
}
