using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;

namespace Weft.Streaming.Embedded;

/// <summary>
/// The on-disk format of the embedded log, in one place: file names, the segment header and the
/// record frame. All integers are little-endian. See <c>docs/embedded-log.md</c>.
/// </summary>
/// <remarks>
/// Segment header (<see cref="SegmentHeaderSize"/> bytes):
/// <code>
///  0  8  magic "WEFTSEG" + format version 0x01
///  8  8  base offset (the offset of the segment's first record; also the file name)
/// 16  8  roll timestamp, µs: no record in an earlier segment has a later timestamp
/// 24  4  reserved, zero
/// 28  4  CRC-32C of bytes 0..28
/// </code>
/// Record frame (<see cref="RecordOverhead"/> bytes plus key and payload):
/// <code>
///  0  4  body length L (bytes after this 8-byte prefix: 20 + key length + payload length)
///  4  4  CRC-32C of bytes 0..4 followed by the L body bytes
///  8  8  offset
/// 16  8  timestamp, µs since the Unix epoch (append time; never decreases along the log)
/// 24  4  key length K
/// 28  K  key
/// 28+K   payload (L - 20 - K bytes)
/// </code>
/// </remarks>
internal static class LogFormat
{
    public const string SegmentExtension = ".seg";
    public const string GroupsDirectoryName = "groups";
    public const string GroupFileExtension = ".offset";
    public const string TempExtension = ".tmp";
    public const string LockFileName = ".lock";

    /// <summary>What recovery cut off the active segment is kept in <c>&lt;segment&gt;.seg.cut-&lt;byte&gt;</c>: a listing of <c>*.seg</c> files does not match it.</summary>
    public const string CutExtension = ".cut-";

    public const int SegmentHeaderSize = 32;
    public const int RecordPrefixSize = 8;
    public const int RecordFixedBodySize = 20;
    public const int RecordOverhead = RecordPrefixSize + RecordFixedBodySize;

    /// <summary>The largest body a reader accepts, whatever the options said when the record was written.</summary>
    public const int MaxBodyLength = 256 * 1024 * 1024;

    private const int OffsetDigits = 20;
    private static ReadOnlySpan<byte> Magic => "WEFTSEG\u0001"u8;

    // ------------------------------------------------------------------ names

    public static string SegmentFileName(long baseOffset) =>
        baseOffset.ToString("D" + OffsetDigits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) + SegmentExtension;

    public static bool TryParseSegmentFileName(ReadOnlySpan<char> fileName, out long baseOffset)
    {
        baseOffset = 0;
        if (fileName.Length != OffsetDigits + SegmentExtension.Length || !fileName.EndsWith(SegmentExtension, StringComparison.Ordinal))
        {
            return false;
        }

        var digits = fileName[..OffsetDigits];
        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out baseOffset);
    }

    public static string GroupFileName(string group) => group + GroupFileExtension;

    /// <summary>
    /// A consumer group name becomes a file name, so it is limited to 1–100 of <c>[A-Za-z0-9._-]</c>
    /// and may not start with a dot.
    /// </summary>
    public static bool IsValidGroupName(string? group)
    {
        if (string.IsNullOrEmpty(group) || group.Length > 100 || group[0] == '.')
        {
            return false;
        }

        foreach (var c in group)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    // ------------------------------------------------------------------ segment header

    public static void WriteSegmentHeader(Span<byte> destination, long baseOffset, long rollTimestampMicros)
    {
        Debug.Assert(destination.Length >= SegmentHeaderSize);
        Magic.CopyTo(destination);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], baseOffset);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], rollTimestampMicros);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[24..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[28..], Crc32C.Compute(destination[..28]));
    }

    /// <summary>Checks a segment header; returns null when it is valid, else what is wrong with it.</summary>
    public static string? CheckSegmentHeader(ReadOnlySpan<byte> header, long expectedBaseOffset, out long rollTimestampMicros)
    {
        rollTimestampMicros = 0;
        if (header.Length < SegmentHeaderSize)
        {
            return $"the segment header is incomplete ({header.Length} of {SegmentHeaderSize} bytes)";
        }

        if (!header[..7].SequenceEqual(Magic[..7]))
        {
            return "the segment header does not start with the magic bytes 'WEFTSEG'";
        }

        if (header[7] != Magic[7])
        {
            return $"the segment format version is {header[7]}, this build reads version {Magic[7]}";
        }

        var stored = BinaryPrimitives.ReadUInt32LittleEndian(header[28..]);
        var computed = Crc32C.Compute(header[..28]);
        if (stored != computed)
        {
            return $"the segment header CRC-32C does not match (stored 0x{stored:x8}, computed 0x{computed:x8})";
        }

        var baseOffset = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
        if (baseOffset != expectedBaseOffset)
        {
            return $"the segment header says base offset {baseOffset} but the file name says {expectedBaseOffset}";
        }

        rollTimestampMicros = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        return null;
    }

    // ------------------------------------------------------------------ record frame

    public static int RecordSize(int keyLength, int payloadLength) => RecordOverhead + keyLength + payloadLength;

    /// <summary>Writes one framed record into <paramref name="destination"/> (exactly <see cref="RecordSize"/> bytes).</summary>
    public static void WriteRecord(Span<byte> destination, long offset, long timestampMicros, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload)
    {
        var bodyLength = RecordFixedBodySize + key.Length + payload.Length;
        var frame = destination[..(RecordPrefixSize + bodyLength)];
        BinaryPrimitives.WriteInt32LittleEndian(frame, bodyLength);
        BinaryPrimitives.WriteInt64LittleEndian(frame[8..], offset);
        BinaryPrimitives.WriteInt64LittleEndian(frame[16..], timestampMicros);
        BinaryPrimitives.WriteInt32LittleEndian(frame[24..], key.Length);
        key.CopyTo(frame[RecordOverhead..]);
        payload.CopyTo(frame[(RecordOverhead + key.Length)..]);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], RecordCrc(frame));
    }

    /// <summary>The CRC of a frame: its length field followed by its body (the CRC field itself is skipped).</summary>
    public static uint RecordCrc(ReadOnlySpan<byte> frame) =>
        Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Seed, frame[..4]), frame[RecordPrefixSize..]));
}
