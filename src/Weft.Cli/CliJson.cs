using System.Text.Json;
using System.Text.Json.Serialization;

namespace Weft.Cli;

/// <summary>How commands print a report with <c>--json</c>: snake_case names, indented, NaN and ±∞ as strings, enums by kebab-case name.</summary>
internal static class CliJson
{
    public static readonly JsonSerializerOptions Report = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    /// <summary><see cref="Report"/> on one line (what a ledger stores).</summary>
    public static readonly JsonSerializerOptions Compact = new(Report) { WriteIndented = false };
}
