namespace Weft.Serving.Hosting;

/// <summary>
/// The addresses Kestrel listens on (<c>serving.urls</c> and <c>weft serve --urls</c>, <c>weft stream
/// --metrics-urls</c>): ';'-separated absolute http:// URLs with no path. Kestrel refuses others only
/// while it starts, with an exception from deep inside (a path: "A path base can only be configured
/// using IApplicationBuilder.UsePathBase()"; https without a certificate; another scheme), and
/// <c>weft</c> exited with its stack trace instead of naming the option.
/// </summary>
internal static class ListenUrls
{
    /// <summary>The addresses in <paramref name="urls"/>, trimmed, empty ones left out.</summary>
    public static string[] Split(string urls) => urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// Whether Kestrel listens on <paramref name="address"/> as given: http, an IP address or
    /// <c>localhost</c> and a port, no path (a lone '/' is none), no query. Kestrel binds any other host
    /// name to every interface (with a log line nobody reads), so a server meant for one network would
    /// be reachable from all.
    /// </summary>
    public static bool IsListenable(string address) =>
        Uri.TryCreate(address, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp
        && uri.AbsolutePath == "/" && uri.Query.Length == 0 && uri.Fragment.Length == 0 && uri.UserInfo.Length == 0
        && (uri.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 || string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase));

    /// <summary>What a listenable address is, for messages.</summary>
    public const string Expected = "an http:// address to listen on: an IP address or localhost (another host name would listen on every interface; 0.0.0.0 does so on purpose), a port, no path";

    /// <summary>The first address in <paramref name="urls"/> that is not listenable, or "" when there is none at all; null when all are.</summary>
    public static string? FirstInvalid(string urls)
    {
        var addresses = Split(urls);
        if (addresses.Length == 0)
        {
            return "";
        }

        foreach (var address in addresses)
        {
            if (!IsListenable(address))
            {
                return address;
            }
        }

        return null;
    }
}
