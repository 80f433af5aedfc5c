using System.Buffers.Binary;
using System.IO.Hashing;
using System.Numerics;
using System.Text.Json.Serialization;

namespace Weft.Storage;

/// <summary>
/// The <c>deletionVector</c> of an <c>add</c> or <c>remove</c> action (PROTOCOL.md "Deletion Vector
/// Descriptor Schema"): the rows of the data file that a later DELETE, UPDATE or MERGE of another
/// engine invalidated without rewriting the file. Readers must not return those rows.
/// </summary>
/// <param name="StorageType"><c>u</c>: a file next to the data, named from a UUID; <c>p</c>: a file at an absolute path; <c>i</c>: inline in the log.</param>
/// <param name="PathOrInlineDv">For <c>u</c> an optional folder prefix and the Z85-encoded UUID (20 characters); for <c>p</c> the path; for <c>i</c> the Z85-encoded bitmap.</param>
/// <param name="SizeInBytes">The serialised bitmap's size, before any Z85 encoding.</param>
/// <param name="Cardinality">How many rows the vector removes.</param>
/// <param name="Offset">Where the vector starts in its file (absent for <c>i</c>).</param>
public sealed record DeletionVectorDescriptor(
    [property: JsonPropertyName("storageType")] string StorageType,
    [property: JsonPropertyName("pathOrInlineDv")] string PathOrInlineDv,
    [property: JsonPropertyName("sizeInBytes")] int SizeInBytes,
    [property: JsonPropertyName("cardinality")] long Cardinality,
    [property: JsonPropertyName("offset")] int? Offset = null)
{
    /// <summary>The protocol's <c>uniqueId</c>: what tells two vectors of one file apart.</summary>
    [JsonIgnore]
    public string UniqueId => Offset is { } offset ? $"{StorageType}{PathOrInlineDv}@{offset}" : StorageType + PathOrInlineDv;
}

/// <summary>The rows of one data file a deletion vector removes, as a bit per physical row.</summary>
internal sealed class DeletedRows
{
    private readonly ulong[] _bits;

    private DeletedRows(ulong[] bits, long count)
    {
        _bits = bits;
        Count = count;
    }

    /// <summary>How many rows are deleted.</summary>
    public long Count { get; }

    public bool Contains(long row) => (ulong)row < (ulong)_bits.Length * 64 && (_bits[row >> 6] & (1UL << (int)(row & 63))) != 0;

    /// <summary>How many rows of <c>[first, first + count)</c> are deleted.</summary>
    public int CountIn(long first, int count)
    {
        int deleted = 0;
        for (long row = first, end = first + count; row < end;)
        {
            long word = row >> 6;
            if (word >= _bits.Length)
            {
                break;
            }

            int from = (int)(row & 63);
            int to = (int)Math.Min(64, end - (word << 6));
            ulong mask = (to == 64 ? ulong.MaxValue : (1UL << to) - 1) & ~((1UL << from) - 1);
            deleted += BitOperations.PopCount(_bits[word] & mask);
            row = (word + 1) << 6;
        }

        return deleted;
    }

    /// <summary>
    /// Decodes a serialised <c>RoaringBitmapArray</c> (PROTOCOL.md "Deletion Vector Format": a magic
    /// number, then a 64-bit Roaring bitmap in the portable format of the RoaringFormatSpec) for a file
    /// of <paramref name="fileRows"/> rows. Also reads the "native" layout some Delta writers use (magic
    /// 1681511376: a count of 32-bit bitmaps, each with its length, the i-th holding the rows whose high
    /// 32 bits are i). Throws <see cref="FormatException"/> for anything malformed or a row past the file.
    /// </summary>
    public static DeletedRows Decode(ReadOnlySpan<byte> data, long fileRows)
    {
        if (data.Length < 4)
        {
            throw new FormatException($"the vector is {data.Length} bytes, too short to hold its magic number");
        }

        var bits = new ulong[(fileRows + 63) >> 6];
        long count = 0;
        int magic = BinaryPrimitives.ReadInt32LittleEndian(data);
        var rest = data[4..];
        switch (magic)
        {
            case PortableMagic:
            {
                ulong buckets = ReadUInt64(ref rest, "the number of buckets");
                uint previous = 0;
                for (ulong b = 0; b < buckets; b++)
                {
                    uint key = ReadUInt32(ref rest, "a bucket's key");
                    if (key > int.MaxValue || (b > 0 && key <= previous))
                    {
                        throw new FormatException($"bucket {b} has key {key}: keys must rise and keep their top bit clear");
                    }

                    previous = key;
                    count += ReadRoaring32(ref rest, (long)key << 32, bits, fileRows);
                }

                break;
            }

            case NativeMagic:
            {
                int bitmaps = (int)ReadUInt32(ref rest, "the number of bitmaps");
                for (int i = 0; i < bitmaps; i++)
                {
                    int length = (int)ReadUInt32(ref rest, "a bitmap's length");
                    if (length < 0 || length > rest.Length)
                    {
                        throw new FormatException($"bitmap {i} claims {length} bytes, but {rest.Length} remain");
                    }

                    var bitmap = rest[..length];
                    count += ReadRoaring32(ref bitmap, (long)i << 32, bits, fileRows);
                    if (!bitmap.IsEmpty)
                    {
                        throw new FormatException($"bitmap {i} ends {bitmap.Length} bytes before its stated length");
                    }

                    rest = rest[length..];
                }

                break;
            }

            default:
                throw new FormatException($"magic number {magic} is neither the portable ({PortableMagic}) nor the native ({NativeMagic}) format");
        }

        if (!rest.IsEmpty)
        {
            throw new FormatException($"{rest.Length} bytes follow the bitmap");
        }

        return new DeletedRows(bits, count);
    }

    private const int PortableMagic = 1681511377;
    private const int NativeMagic = 1681511376;
    private const ushort CookieNoRuns = 12346;
    private const ushort CookieWithRuns = 12347;

    /// <summary>Reads one 32-bit Roaring bitmap (RoaringFormatSpec), setting <paramref name="high"/> + each value; returns how many it set.</summary>
    private static long ReadRoaring32(ref ReadOnlySpan<byte> data, long high, ulong[] bits, long fileRows)
    {
        uint cookie = ReadUInt32(ref data, "a bitmap's cookie");
        int containers;
        ReadOnlySpan<byte> runFlags = default;
        bool hasOffsets;
        if ((cookie & 0xFFFF) == CookieWithRuns)
        {
            containers = (int)(cookie >> 16) + 1;
            runFlags = Take(ref data, (containers + 7) / 8, "the run-container flags");
            hasOffsets = containers >= 4;
        }
        else if (cookie == CookieNoRuns)
        {
            containers = (int)ReadUInt32(ref data, "the number of containers");
            if (containers is < 0 or > 65536)
            {
                throw new FormatException($"a bitmap claims {containers} containers; at most 65,536 fit");
            }

            hasOffsets = true;
        }
        else
        {
            throw new FormatException($"cookie {cookie} is not a Roaring bitmap's ({CookieNoRuns} or {CookieWithRuns})");
        }

        var header = Take(ref data, containers * 4, "the containers' keys and cardinalities");
        if (hasOffsets)
        {
            Take(ref data, containers * 4, "the containers' offsets"); // for random access; read in order instead
        }

        long set = 0;
        int previousKey = -1;
        for (int c = 0; c < containers; c++)
        {
            int key = BinaryPrimitives.ReadUInt16LittleEndian(header[(c * 4)..]);
            int cardinality = BinaryPrimitives.ReadUInt16LittleEndian(header[(c * 4 + 2)..]) + 1;
            if (key <= previousKey)
            {
                throw new FormatException($"container keys must rise, but {key} follows {previousKey}");
            }

            previousKey = key;
            long containerBase = high + ((long)key << 16);
            bool isRun = !runFlags.IsEmpty && (runFlags[c / 8] & (1 << (c % 8))) != 0;
            if (isRun)
            {
                int runs = BinaryPrimitives.ReadUInt16LittleEndian(Take(ref data, 2, "a run container's length"));
                var pairs = Take(ref data, runs * 4, "a run container's runs");
                for (int r = 0; r < runs; r++)
                {
                    int first = BinaryPrimitives.ReadUInt16LittleEndian(pairs[(r * 4)..]);
                    int length = BinaryPrimitives.ReadUInt16LittleEndian(pairs[(r * 4 + 2)..]) + 1;
                    if (first + length > 65536)
                    {
                        throw new FormatException($"a run from {first} of {length} values leaves its container");
                    }

                    for (int v = first; v < first + length; v++)
                    {
                        set += Set(bits, containerBase + v, fileRows);
                    }
                }
            }
            else if (cardinality <= 4096)
            {
                var values = Take(ref data, cardinality * 2, "an array container's values");
                for (int i = 0; i < cardinality; i++)
                {
                    set += Set(bits, containerBase + BinaryPrimitives.ReadUInt16LittleEndian(values[(i * 2)..]), fileRows);
                }
            }
            else
            {
                var words = Take(ref data, 8192, "a bitset container");
                for (int w = 0; w < 1024; w++)
                {
                    ulong word = BinaryPrimitives.ReadUInt64LittleEndian(words[(w * 8)..]);
                    while (word != 0)
                    {
                        set += Set(bits, containerBase + (w * 64) + BitOperations.TrailingZeroCount(word), fileRows);
                        word &= word - 1;
                    }
                }
            }
        }

        return set;
    }

    private static int Set(ulong[] bits, long row, long fileRows)
    {
        if (row >= fileRows)
        {
            throw new FormatException($"it deletes row {row}, but the data file holds {fileRows} rows");
        }

        ref ulong word = ref bits[row >> 6];
        ulong bit = 1UL << (int)(row & 63);
        if ((word & bit) != 0)
        {
            throw new FormatException($"it lists row {row} twice");
        }

        word |= bit;
        return 1;
    }

    private static ReadOnlySpan<byte> Take(scoped ref ReadOnlySpan<byte> data, int length, string what)
    {
        if (length > data.Length)
        {
            throw new FormatException($"it ends inside {what} ({length} bytes needed, {data.Length} left)");
        }

        var taken = data[..length];
        data = data[length..];
        return taken;
    }

    private static uint ReadUInt32(ref ReadOnlySpan<byte> data, string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(ref data, 4, what));

    private static ulong ReadUInt64(ref ReadOnlySpan<byte> data, string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(ref data, 8, what));
}

/// <summary>Finds and reads a data file's deletion vector (PROTOCOL.md "Deletion Vector File Storage Format").</summary>
internal static class DeletionVectorReader
{
    /// <summary>
    /// The rows <paramref name="vector"/> deletes from a data file of <paramref name="fileRows"/> rows in
    /// the table at <paramref name="tablePath"/>. Throws <see cref="FormatException"/> naming what is
    /// wrong: a vector file missing or short, a size or CRC-32 that does not match, a bitmap that does not
    /// decode, or one whose row count differs from the descriptor's cardinality.
    /// </summary>
    public static async Task<DeletedRows> ReadAsync(string tablePath, DeletionVectorDescriptor vector, long fileRows, CancellationToken cancellationToken)
    {
        if (vector.SizeInBytes < 4)
        {
            throw new FormatException($"deletion vector '{vector.UniqueId}' claims {vector.SizeInBytes} bytes");
        }

        byte[] data;
        if (vector.StorageType == "i")
        {
            var decoded = Z85.Decode(vector.PathOrInlineDv);
            if (decoded.Length < vector.SizeInBytes)
            {
                throw new FormatException($"inline deletion vector decodes to {decoded.Length} bytes, but claims {vector.SizeInBytes}");
            }

            data = decoded.AsSpan(0, vector.SizeInBytes).ToArray(); // Z85 pads to a multiple of 4
        }
        else
        {
            var path = FilePath(tablePath, vector);
            data = await ReadStoredAsync(path, vector, cancellationToken).ConfigureAwait(false);
        }

        DeletedRows rows;
        try
        {
            rows = DeletedRows.Decode(data, fileRows);
        }
        catch (FormatException e)
        {
            throw new FormatException($"deletion vector '{vector.UniqueId}' is not a bitmap Weft can read: {e.Message}", e);
        }

        if (rows.Count != vector.Cardinality)
        {
            throw new FormatException($"deletion vector '{vector.UniqueId}' deletes {rows.Count} rows, but its descriptor says {vector.Cardinality}");
        }

        return rows;
    }

    /// <summary>
    /// Where a stored vector lives: for <c>u</c>, <c>&lt;table&gt;/&lt;prefix&gt;/deletion_vector_&lt;uuid&gt;.bin</c>,
    /// the UUID being the last 20 characters decoded from Z85 and any characters before them the prefix;
    /// for <c>p</c>, the absolute path (a <c>file:</c> URI or a local path).
    /// </summary>
    public static string FilePath(string tablePath, DeletionVectorDescriptor vector)
    {
        switch (vector.StorageType)
        {
            case "u":
            {
                var text = vector.PathOrInlineDv;
                if (text.Length < 20)
                {
                    throw new FormatException($"deletion vector '{vector.UniqueId}' has storage type 'u' but no 20-character encoded UUID");
                }

                var uuid = Z85.Decode(text[^20..]);
                var name = $"deletion_vector_{new Guid(uuid, bigEndian: true):D}.bin";
                var prefix = text[..^20];
                return Path.GetFullPath(prefix.Length == 0 ? Path.Combine(tablePath, name) : Path.Combine(tablePath, prefix, name));
            }

            case "p":
            {
                var path = DeltaPaths.FromLogPath(vector.PathOrInlineDv);
                if (!Path.IsPathFullyQualified(path))
                {
                    throw new FormatException($"deletion vector path '{vector.PathOrInlineDv}' is not a local absolute path; Weft reads tables on a local file system");
                }

                return path;
            }

            default:
                throw new FormatException($"deletion vector has storage type '{vector.StorageType}'; the protocol defines 'u', 'p' and 'i'");
        }
    }

    private static async Task<byte[]> ReadStoredAsync(string path, DeletionVectorDescriptor vector, CancellationToken cancellationToken)
    {
        int offset = vector.Offset ?? 0;
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);

            // The vector's size (big-endian), then the bitmap, then the bitmap's CRC-32 (big-endian).
            var sizeBytes = new byte[4];
            await ReadExactlyAsync(handle, sizeBytes, offset, path, vector, cancellationToken).ConfigureAwait(false);
            int size = BinaryPrimitives.ReadInt32BigEndian(sizeBytes);
            if (size != vector.SizeInBytes)
            {
                throw new FormatException($"deletion vector file '{path}' holds a vector of {size} bytes at offset {offset}, but the log says {vector.SizeInBytes}");
            }

            var frame = new byte[size + 4];
            await ReadExactlyAsync(handle, frame, offset + 4L, path, vector, cancellationToken).ConfigureAwait(false);
            var bitmap = frame.AsSpan(0, size);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(size));
            uint actual = Crc32.HashToUInt32(bitmap);
            if (stored != actual)
            {
                throw new FormatException($"deletion vector file '{path}' fails its checksum at offset {offset} (CRC-32 {actual:x8}, stored {stored:x8})");
            }

            return bitmap.ToArray();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FormatException($"deletion vector file '{path}' is missing", e);
        }
    }

    private static async Task ReadExactlyAsync(
        Microsoft.Win32.SafeHandles.SafeFileHandle handle, byte[] buffer, long position, string path, DeletionVectorDescriptor vector, CancellationToken cancellationToken)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await RandomAccess.ReadAsync(handle, buffer.AsMemory(read), position + read, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new FormatException($"deletion vector file '{path}' ends at byte {position + read}, inside the vector at offset {vector.Offset ?? 0} of {vector.SizeInBytes} bytes");
            }

            read += n;
        }
    }
}

/// <summary>Z85 (ZeroMQ RFC 32), the Base85 variant Delta uses for UUIDs and inline vectors: 5 characters per 4 bytes, big-endian.</summary>
internal static class Z85
{
    private const string Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

    private static readonly sbyte[] Values = BuildValues();

    public static byte[] Decode(string text)
    {
        if (text.Length % 5 != 0)
        {
            throw new FormatException($"Z85 text is a multiple of 5 characters; '{text}' has {text.Length}");
        }

        var bytes = new byte[text.Length / 5 * 4];
        for (int i = 0, o = 0; i < text.Length; i += 5, o += 4)
        {
            ulong value = 0;
            for (int k = 0; k < 5; k++)
            {
                char c = text[i + k];
                int digit = c < 128 ? Values[c] : -1;
                if (digit < 0)
                {
                    throw new FormatException($"'{c}' at {i + k} is not a Z85 character");
                }

                value = (value * 85) + (ulong)digit;
            }

            if (value > uint.MaxValue)
            {
                throw new FormatException($"Z85 group at {i} exceeds 32 bits");
            }

            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(o), (uint)value);
        }

        return bytes;
    }

    private static sbyte[] BuildValues()
    {
        var values = new sbyte[128];
        Array.Fill(values, (sbyte)-1);
        for (int i = 0; i < Alphabet.Length; i++)
        {
            values[Alphabet[i]] = (sbyte)i;
        }

        return values;
    }
}
