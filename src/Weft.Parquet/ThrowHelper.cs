using System.Diagnostics.CodeAnalysis;

namespace Weft.Parquet;

/// <summary>Throw helpers that keep throwing out of hot methods.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void Format(string problem) => throw new ParquetFormatException(problem);

    [DoesNotReturn]
    public static T Format<T>(string problem) => throw new ParquetFormatException(problem);

    [DoesNotReturn]
    public static void NotSupported(string problem) => throw new NotSupportedException(problem);

    [DoesNotReturn]
    public static (ParquetType, global::Weft.Parquet.Format.PhysicalType) NotSupportedType(string column, global::Weft.Parquet.Format.SchemaElement leaf) =>
        throw new NotSupportedException(
            $"Column '{column}' has physical type {leaf.Type} with logical type {leaf.LogicalType?.Kind.ToString() ?? "none"} " +
            $"(converted type {leaf.ConvertedType?.ToString() ?? "none"}); Weft reads BOOLEAN, INT32, INT64, FLOAT, DOUBLE, " +
            "UTF-8 BYTE_ARRAY and TIMESTAMP(MICROS).");
}
