using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Weft.Cli;

/// <summary>
/// Writes log events of <see cref="LogLevel.Information"/> and above as lines on a command's error
/// output (<c>weft stream: kafka: …</c>), where the command's own progress goes. librdkafka's threads
/// log too, so lines are written whole under a lock.
/// </summary>
internal sealed class TextWriterLogger(TextWriter writer, string prefix) : ILogger
{
    private readonly Lock _gate = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information && logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        var level = logLevel switch
        {
            LogLevel.Warning => "warning: ",
            LogLevel.Error or LogLevel.Critical => "error: ",
            _ => "",
        };
        var line = string.Create(CultureInfo.InvariantCulture, $"{prefix}{level}{formatter(state, exception)}{(exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")}");
        lock (_gate)
        {
            writer.WriteLine(line);
            writer.Flush();
        }
    }
}
