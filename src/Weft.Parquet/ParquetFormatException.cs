namespace Weft.Parquet;

/// <summary>
/// The bytes are not a Parquet file this codec can trust: bad magic, a footer length out of range, a
/// Thrift structure that does not decode, a page that runs past its column chunk, or values that do
/// not match their declared counts. Permanent: retrying reads the same bytes. The message names the
/// file (when known) and the problem.
/// </summary>
public sealed class ParquetFormatException : Exception
{
    /// <summary>Creates the exception for a problem in the file at <paramref name="filePath"/> (null when unknown).</summary>
    public ParquetFormatException(string? filePath, string problem, Exception? innerException = null)
        : base(Format(filePath, problem), innerException)
    {
        FilePath = filePath;
        Problem = problem;
    }

    internal ParquetFormatException(string problem)
        : this(null, problem)
    {
    }

    /// <summary>The file path, when the reader was given one.</summary>
    public string? FilePath { get; }

    /// <summary>The problem, without the file path.</summary>
    public string Problem { get; }

    /// <summary>Always false: a corrupt file stays corrupt.</summary>
    public bool IsTransient => false;

    private static string Format(string? filePath, string problem) =>
        filePath is null ? $"Invalid Parquet data: {problem}" : $"Invalid Parquet file '{filePath}': {problem}";
}
