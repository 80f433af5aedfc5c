using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Weft.Streaming.Embedded;

/// <summary>Throws kept out of the hot methods, so those stay small enough to inline.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowNullRecordPart(int index, string part) =>
        throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Record {index} has a null {part}; use an empty array for none."), "records");

    [DoesNotReturn]
    public static void ThrowRecordTooLarge(int index, long size, int max) =>
        throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
            $"Record {index} has {size} bytes of key and payload, more than {nameof(EmbeddedLogOptions)}.{nameof(EmbeddedLogOptions.MaxRecordBytes)} = {max}."), "records");

    [DoesNotReturn]
    public static void ThrowCorrupt(string path, long byteOffset, string problem) =>
        throw new EmbeddedLogCorruptionException(path, byteOffset, problem);
}
