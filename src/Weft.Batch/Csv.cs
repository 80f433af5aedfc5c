using System.Text;

namespace Weft.Batch;

/// <summary>A small RFC 4180 reader: comma-separated, double-quoted fields with "" escapes and embedded line breaks.</summary>
internal static class Csv
{
    /// <summary>Reads one record into <paramref name="fields"/>; false at end of input. <paramref name="line"/> counts physical lines.</summary>
    public static bool ReadRecord(TextReader reader, List<string?> fields, ref int line)
    {
        fields.Clear();
        int c = reader.Read();
        if (c < 0)
        {
            return false;
        }

        int first = line;
        var field = new StringBuilder();
        bool quoted = false, wasQuoted = false;
        while (true)
        {
            if (quoted)
            {
                if (c < 0)
                {
                    throw new FormatException($"line {first}: a quoted field is not closed before the end of the file (it takes in every line after it)");
                }

                if (c == '"')
                {
                    if (reader.Peek() == '"')
                    {
                        reader.Read();
                        field.Append('"');
                    }
                    else
                    {
                        quoted = false;
                    }
                }
                else
                {
                    if (c == '\n')
                    {
                        line++;
                    }

                    field.Append((char)c);
                }
            }
            else if (c == '"' && field.Length == 0 && !wasQuoted)
            {
                quoted = wasQuoted = true;
            }
            else if (c == ',' || c == '\n' || c < 0)
            {
                fields.Add(field.Length == 0 && !wasQuoted ? null : field.ToString());
                field.Clear();
                wasQuoted = false;
                if (c != ',')
                {
                    line++;
                    return true;
                }
            }
            else if (c != '\r')
            {
                field.Append((char)c);
            }

            c = reader.Read();
        }
    }
}
