namespace Weft.Parquet;

/// <summary>Page compression codecs Weft writes (and reads).</summary>
public enum ParquetCompression
{
    /// <summary>No compression.</summary>
    Uncompressed,

    /// <summary>Snappy (block format), Weft's own allocation-free codec.</summary>
    Snappy,

    /// <summary>GZIP (RFC 1952), via System.IO.Compression.</summary>
    Gzip,
}

/// <summary>
/// Frozen options for <see cref="ParquetFileWriter"/>. Defaults: <see cref="Compression"/> Snappy,
/// <see cref="UseDictionary"/> true, <see cref="MaxDictionarySize"/> 1 MiB,
/// <see cref="DataPageSize"/> 1 MiB.
/// </summary>
public sealed record ParquetWriterOptions
{
    /// <summary>The default for <see cref="MaxDictionarySize"/>: 1 MiB.</summary>
    public const int DefaultMaxDictionarySize = 1 << 20;

    /// <summary>The default for <see cref="DataPageSize"/>: 1 MiB.</summary>
    public const int DefaultDataPageSize = 1 << 20;

    /// <summary>The options with every default.</summary>
    public static ParquetWriterOptions Default { get; } = new();

    /// <summary>Page compression. Default <see cref="ParquetCompression.Snappy"/>.</summary>
    public ParquetCompression Compression { get; init; } = ParquetCompression.Snappy;

    /// <summary>
    /// Whether to dictionary-encode columns (all types except Boolean). A column chunk whose dictionary
    /// would exceed <see cref="MaxDictionarySize"/>, or whose first 4,096 values are more than three in
    /// four distinct (ids, timestamps: a dictionary of them is larger than PLAIN), is written PLAIN
    /// instead. Default true.
    /// </summary>
    public bool UseDictionary { get; init; } = true;

    /// <summary>
    /// The largest dictionary, in PLAIN-encoded bytes, one column chunk may use before falling back to
    /// PLAIN. Default <see cref="DefaultMaxDictionarySize"/>; at least 1.
    /// </summary>
    public int MaxDictionarySize { get; init; } = DefaultMaxDictionarySize;

    /// <summary>
    /// Target uncompressed size of a data page, in bytes (estimated from PLAIN sizes; pages always
    /// end at a row boundary, so a single large row can exceed it). Default
    /// <see cref="DefaultDataPageSize"/>; at least 1.
    /// </summary>
    public int DataPageSize { get; init; } = DefaultDataPageSize;

    /// <summary>
    /// How many columns of one row group may be encoded at once (default: the processor count; 1 encodes
    /// them one after another). Column chunks are independent, so the bytes written are the same either
    /// way; a row group of fewer than <see cref="ParallelMinRows"/> rows is always encoded on the calling thread.
    /// </summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Row groups smaller than this are not worth handing columns to other threads.</summary>
    public const int ParallelMinRows = 4_096;

    /// <summary>Throws when an option is out of range, naming the option and the value.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Compression))
        {
            throw new ArgumentOutOfRangeException(nameof(Compression), Compression, $"{nameof(ParquetWriterOptions)}.{nameof(Compression)} = {Compression} is not a known codec.");
        }

        if (MaxDictionarySize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDictionarySize), MaxDictionarySize, $"{nameof(ParquetWriterOptions)}.{nameof(MaxDictionarySize)} = {MaxDictionarySize} must be at least 1.");
        }

        if (DataPageSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(DataPageSize), DataPageSize, $"{nameof(ParquetWriterOptions)}.{nameof(DataPageSize)} = {DataPageSize} must be at least 1.");
        }

        if (MaxDegreeOfParallelism < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDegreeOfParallelism), MaxDegreeOfParallelism, $"{nameof(ParquetWriterOptions)}.{nameof(MaxDegreeOfParallelism)} = {MaxDegreeOfParallelism} must be at least 1.");
        }
    }
}
