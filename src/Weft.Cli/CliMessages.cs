namespace Weft.Cli;

/// <summary>What a command prints of an error it reports (exit 2).</summary>
internal static class CliMessages
{
    /// <summary>
    /// The exception's message without what .NET appends to an argument error for a programmer
    /// ("(Parameter 'request')", "Actual value was 99."): the message already names the option.
    /// </summary>
    public static string Of(Exception ex)
    {
        string message = ex.Message;
        if (ex is ArgumentOutOfRangeException { ActualValue: { } actual })
        {
            message = message.Replace($"{Environment.NewLine}Actual value was {actual}.", "", StringComparison.Ordinal);
        }

        if (ex is ArgumentException { ParamName: { } name })
        {
            message = message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal);
        }

        return message;
    }
}
