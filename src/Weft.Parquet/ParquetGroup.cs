namespace Weft.Parquet;

/// <summary>What a <see cref="ParquetGroup"/> is written as.</summary>
public enum ParquetGroupKind
{
    /// <summary><c>&lt;optional|required&gt; group name { fields }</c>.</summary>
    Struct,

    /// <summary>
    /// <c>&lt;optional|required&gt; group name (MAP) { repeated group key_value { required key; &lt;optional|required&gt; value } }</c>,
    /// whose keys and values are the list fields <c>name.key</c> and <c>name.value</c>.
    /// </summary>
    Map,
}

/// <summary>
/// A group node of a <see cref="ParquetSchema"/> (a struct or a map), named by its dotted path (<c>add</c>,
/// <c>metaData.format</c>, <c>add.partitionValues</c>). Its fields are the schema's fields whose names
/// start with <c>Path + "."</c>. <paramref name="Nullable"/> writes the group OPTIONAL: a null struct's
/// rows are given to the writer as group null flags, a null map's as null rows of its key and value lists.
/// </summary>
/// <param name="Path">Dotted path; every dotted prefix of it must be a declared struct group.</param>
/// <param name="Kind">Struct or map.</param>
/// <param name="Nullable">Whether the group may be null in a row.</param>
public sealed record ParquetGroup(string Path, ParquetGroupKind Kind, bool Nullable);
