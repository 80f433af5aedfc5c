using System.Buffers.Binary;
using System.IO.Compression;
using Weft.Parquet.Format;

namespace Weft.Parquet.Encodings;

/// <summary>Page (de)compression for the codecs Weft supports.</summary>
internal static class PageCompression
{
    public static CompressionCodec ToThrift(ParquetCompression compression) => compression switch
    {
        ParquetCompression.Uncompressed => CompressionCodec.Uncompressed,
        ParquetCompression.Snappy => CompressionCodec.Snappy,
        ParquetCompression.Gzip => CompressionCodec.Gzip,
        _ => throw new ArgumentOutOfRangeException(nameof(compression), compression, "Unknown compression."),
    };

    /// <summary>Compresses <paramref name="input"/>; returns it unchanged for UNCOMPRESSED, else <paramref name="scratch"/>'s bytes.</summary>
    public static ReadOnlySpan<byte> Compress(CompressionCodec codec, ReadOnlySpan<byte> input, PooledBuffer scratch)
    {
        switch (codec)
        {
            case CompressionCodec.Uncompressed:
                return input;
            case CompressionCodec.Snappy:
                scratch.Clear();
                scratch.Advance(Snappy.Compress(input, scratch.GetSpan(Snappy.MaxCompressedLength(input.Length))));
                return scratch.WrittenSpan;
            case CompressionCodec.Gzip:
                scratch.Clear();
                using (var stream = new PooledBufferStream(scratch))
                using (var gzip = new GZipStream(stream, CompressionLevel.Optimal, leaveOpen: true))
                {
                    gzip.Write(input);
                }

                return scratch.WrittenSpan;
            default:
                throw new ArgumentOutOfRangeException(nameof(codec), codec, "Unsupported codec.");
        }
    }

    /// <summary>
    /// Checks, before any buffer is sized from it, that <paramref name="declared"/> agrees with what
    /// the compressed bytes say about their own size (snappy's length header, gzip's ISIZE trailer).
    /// </summary>
    public static void CheckDeclaredSize(CompressionCodec codec, ArraySegment<byte> input, int declared, string what)
    {
        var span = input.AsSpan();
        switch (codec)
        {
            case CompressionCodec.Uncompressed:
                if (span.Length != declared)
                {
                    ThrowHelper.Format($"{what}: uncompressed page is {span.Length} bytes but declares {declared}");
                }

                break;
            case CompressionCodec.Snappy:
                if (SnappyLength(span, what) != (ulong)declared)
                {
                    ThrowHelper.Format($"{what}: snappy block decodes to {SnappyLength(span, what)} bytes but the page declares {declared}");
                }

                break;
            case CompressionCodec.Gzip:
                if (span.Length < 18 || BinaryPrimitives.ReadUInt32LittleEndian(span[^4..]) != (uint)declared)
                {
                    ThrowHelper.Format($"{what}: gzip data does not end with the declared size {declared}");
                }

                break;
            case CompressionCodec.Zstd:
                // A frame may leave its content size out; when it states one, it must agree.
                ulong stated = ZstdContentSize(span, what);
                if (stated != 0 && stated != (ulong)declared)
                {
                    ThrowHelper.Format($"{what}: zstd frame decodes to {stated} bytes but the page declares {declared}");
                }

                break;
            case CompressionCodec.Lz4Raw:
                // An LZ4 block expands at most 255-fold: a larger declared size is a lie, not a page.
                if (declared < 0 || (long)declared > ((long)span.Length * 255) + 16)
                {
                    ThrowHelper.Format($"{what}: an LZ4 block of {span.Length} bytes cannot decode to the declared {declared}");
                }

                break;
            default:
                ThrowHelper.NotSupported(Unsupported(codec, what));
                break;
        }
    }

    /// <summary>The message for a codec Weft does not read, naming the ones it does.</summary>
    private static string Unsupported(CompressionCodec codec, string what) => codec == CompressionCodec.Lz4
        ? $"{what}: compression codec LZ4 (the deprecated Hadoop-framed one) is not supported; Weft reads UNCOMPRESSED, SNAPPY, GZIP, ZSTD and LZ4_RAW (rewrite the file with another codec)."
        : $"{what}: compression codec {codec.ToString().ToUpperInvariant()} is not supported; Weft reads UNCOMPRESSED, SNAPPY, GZIP, ZSTD and LZ4_RAW.";

    private static ulong ZstdContentSize(ReadOnlySpan<byte> span, string what)
    {
        try
        {
            return ZstdSharp.Decompressor.GetDecompressedSize(span);
        }
        catch (ZstdSharp.ZstdException e)
        {
            throw new ParquetFormatException(null, $"{what}: zstd frame header is corrupt ({e.Message})", e);
        }
    }

    /// <summary>
    /// Decompresses <paramref name="input"/> into exactly <c>destination.Length</c> bytes; input that is
    /// not valid for the codec, or that decodes to another length, throws <see cref="ParquetFormatException"/>.
    /// </summary>
    public static void Decompress(CompressionCodec codec, ArraySegment<byte> input, Span<byte> destination, string what)
    {
        switch (codec)
        {
            case CompressionCodec.Uncompressed:
                if (input.Count != destination.Length)
                {
                    ThrowHelper.Format($"{what}: uncompressed page is {input.Count} bytes but declares {destination.Length}");
                }

                input.AsSpan().CopyTo(destination);
                return;
            case CompressionCodec.Snappy:
                DecompressSnappy(input, destination, what);
                return;
            case CompressionCodec.Gzip:
                DecompressGzip(input, destination, what);
                return;
            case CompressionCodec.Zstd:
                DecompressZstd(input, destination, what);
                return;
            case CompressionCodec.Lz4Raw:
                DecompressLz4Raw(input, destination, what);
                return;
            default:
                ThrowHelper.NotSupported(Unsupported(codec, what));
                return;
        }
    }

    private static void DecompressZstd(ArraySegment<byte> input, Span<byte> destination, string what)
    {
        int written;
        try
        {
            using var decompressor = new ZstdSharp.Decompressor();
            if (!decompressor.TryUnwrap(input.AsSpan(), destination, out written))
            {
                ThrowHelper.Format($"{what}: zstd data decodes to more than the declared {destination.Length} bytes");
            }
        }
        catch (ZstdSharp.ZstdException e)
        {
            throw new ParquetFormatException(null, $"{what}: zstd data is corrupt ({e.Message})", e);
        }

        if (written != destination.Length)
        {
            ThrowHelper.Format($"{what}: zstd data decodes to {written} bytes, expected {destination.Length}");
        }
    }

    private static void DecompressLz4Raw(ArraySegment<byte> input, Span<byte> destination, string what)
    {
        // Decode stops at the end of the input; a block that needed more room than the destination
        // fails (negative), one that fills less is the wrong size.
        int written = K4os.Compression.LZ4.LZ4Codec.Decode(input.AsSpan(), destination);
        if (written < 0)
        {
            ThrowHelper.Format($"{what}: LZ4 block is corrupt or decodes to more than the declared {destination.Length} bytes");
        }

        if (written != destination.Length)
        {
            ThrowHelper.Format($"{what}: LZ4 block decodes to {written} bytes, expected {destination.Length}");
        }
    }

    private static void DecompressSnappy(ArraySegment<byte> input, Span<byte> destination, string what) =>
        Snappy.Decompress(input.AsSpan(), destination, what);

    private static ulong SnappyLength(ReadOnlySpan<byte> span, string what)
    {
        var length = Snappy.DecodedLength(span, out _);
        if (length < 0)
        {
            ThrowHelper.Format($"{what}: snappy block has no valid length header");
        }

        return (ulong)length;
    }

    private static void DecompressGzip(ArraySegment<byte> input, Span<byte> destination, string what)
    {
        try
        {
            using var source = new MemoryStream(input.Array!, input.Offset, input.Count, writable: false);
            using var gzip = new GZipStream(source, CompressionMode.Decompress);
            var read = gzip.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false);
            if (read != destination.Length)
            {
                ThrowHelper.Format($"{what}: gzip data decodes to {read} bytes, expected {destination.Length}");
            }

            Span<byte> probe = stackalloc byte[1];
            if (gzip.Read(probe) != 0)
            {
                ThrowHelper.Format($"{what}: gzip data decodes to more than the declared {destination.Length} bytes");
            }
        }
        catch (InvalidDataException e)
        {
            throw new ParquetFormatException(null, $"{what}: gzip data is corrupt ({e.Message})", e);
        }
    }
}
