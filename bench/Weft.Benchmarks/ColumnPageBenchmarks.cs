using BenchmarkDotNet.Attributes;
using Weft.Parquet;

namespace Weft.Benchmarks;

/// <summary>
/// Encode and decode the pages of one column chunk of 150,000 rows (one to four 1 MiB data pages, plus a
/// dictionary page where one is used) through the public API: a one-column, one-row-group file in a
/// <see cref="MemoryStream"/>. The columns mirror the end-to-end benchmark's table (bench/parquet) and get
/// the same encodings as there with default options: unique strings (PLAIN), a power-law int64 (PLAIN),
/// 4-value strings (dictionary), 5-value strings with 10 % nulls (dictionary), 1024-value int32
/// (dictionary), timestamps (PLAIN) and doubles (PLAIN, incompressible). 150,000 rows is just above the
/// 131,072 distinct 8-byte values a 1 MiB dictionary holds, so unique int64 and double stay PLAIN.
/// </summary>
[MemoryDiagnoser]
public class ColumnPageBenchmarks
{
    private const int Rows = 150_000;

    private static readonly string[] EventTypes = ["view", "click", "add_to_cart", "purchase"];
    private static readonly string[] Surfaces = ["home", "search", "pdp", "cart", "email"];

    private readonly MemoryStream _output = new();
    private ParquetSchema _schema = null!;
    private ParquetColumnData[] _columns = null!;
    private ParquetWriterOptions _options = null!;
    private ParquetFileReader _reader = null!;
    private MemoryStream _input = null!;

    /// <summary>The column kind.</summary>
    [Params("event_id", "user_id", "event_type", "surface", "embedding_bucket", "event_time", "score")]
    public string Column { get; set; } = "event_id";

    /// <summary>Page compression.</summary>
    [Params(ParquetCompression.Snappy, ParquetCompression.Uncompressed)]
    public ParquetCompression Compression { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        var random = new Random(42);
        var column = Column switch
        {
            "event_id" => Strings(new ParquetField(Column, ParquetType.String, false), i => $"e{(ulong)random.NextInt64():x16}", 0),
            "user_id" => ParquetColumnData.FromValues(
                new ParquetField(Column, ParquetType.Int64, false), Fill(_ => 1 + (long)(Math.Pow(random.NextDouble(), 3) * 999_999))),
            "event_type" => Strings(new ParquetField(Column, ParquetType.String, false), _ => EventTypes[random.Next(EventTypes.Length)], 0),
            "surface" => Strings(new ParquetField(Column, ParquetType.String, true), _ => Surfaces[random.Next(Surfaces.Length)], 0.10, random),
            "embedding_bucket" => ParquetColumnData.FromValues(new ParquetField(Column, ParquetType.Int32, false), Fill(_ => random.Next(1024))),
            "event_time" => ParquetColumnData.FromValues(
                new ParquetField(Column, ParquetType.TimestampMicros, false),
                Fill(i => 1_735_689_600_000_000 + (i * 259_200L) + random.NextInt64(60_000_000))),
            "score" => ParquetColumnData.FromValues(new ParquetField(Column, ParquetType.Double, false), Fill(_ => random.NextDouble())),
            _ => throw new ArgumentOutOfRangeException(nameof(Column), Column, "unknown column"),
        };

        _schema = new ParquetSchema([column.Field]);
        _columns = [column];
        _options = new ParquetWriterOptions { Compression = Compression, UseDictionary = true };
        await EncodeAsync().ConfigureAwait(false);
        _input = new MemoryStream(_output.ToArray(), writable: false);
        _reader = await ParquetFileReader.OpenAsync(_input).ConfigureAwait(false);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _reader.DisposeAsync().ConfigureAwait(false);
        await _input.DisposeAsync().ConfigureAwait(false);
        await _output.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Encodes the page (dictionary, levels, values, compression) and a footer.</summary>
    [Benchmark]
    public async Task<long> EncodeAsync()
    {
        _output.SetLength(0);
        await using (var writer = await ParquetFileWriter.CreateAsync(_output, _schema, _options).ConfigureAwait(false))
        {
            await writer.WriteRowGroupAsync(_columns).ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
        }

        return _output.Length;
    }

    /// <summary>Decodes the column chunk into arrays (decompression, levels, values, strings).</summary>
    [Benchmark]
    public async Task<int> DecodeAsync()
    {
        var column = await _reader.ReadColumnAsync(0, Column).ConfigureAwait(false);
        return column.RowCount;
    }

    private static T[] Fill<T>(Func<int, T> value)
    {
        var values = new T[Rows];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = value(i);
        }

        return values;
    }

    private static ParquetColumnData Strings(ParquetField field, Func<int, string> value, double nullShare, Random? random = null)
    {
        var values = new string?[Rows];
        bool[]? nulls = null;
        for (var i = 0; i < values.Length; i++)
        {
            if (nullShare > 0 && random!.NextDouble() < nullShare)
            {
                nulls ??= new bool[Rows];
                nulls[i] = true;
                continue;
            }

            values[i] = value(i);
        }

        return ParquetColumnData.FromValues(field, values, nulls);
    }
}
