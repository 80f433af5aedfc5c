using System.Globalization;
using System.Text;

namespace Weft.Streaming.LogWriter;

/// <summary>The deterministic key and payload of record <c>index</c> of call <c>seq</c> of an appender: the crash test recomputes them.</summary>
public static class RecordContent
{
    public static (byte[] Key, byte[] Payload) Make(int appender, int seq, int index, int size)
    {
        var key = Encoding.UTF8.GetBytes(appender.ToString(CultureInfo.InvariantCulture));
        var head = string.Create(CultureInfo.InvariantCulture, $"{{\"event_id\":\"a{appender}-s{seq}-i{index}\",\"user_id\":{appender},\"pad\":\"");
        var body = head.Length + 2 >= size ? head + "\"}" : head + new string((char)('a' + ((seq + index) % 26)), size - head.Length - 2) + "\"}";
        return (key, Encoding.UTF8.GetBytes(body));
    }
}
