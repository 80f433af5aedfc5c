using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Weft.Engine;
using Weft.Storage;

// Times full scans of DIR/dv (files with deletion vectors) and DIR/plain (the same files without), each
// aggregating every column, K times; prints JSON {"<case>": {"seconds": [..], "rows": n, "score": s}}.
//   dotnet Weft.Bench.DeletionVectors.dll --dir DIR --runs K
var dir = Arg("--dir");
var runs = int.Parse(Arg("--runs"), CultureInfo.InvariantCulture);
var result = new Dictionary<string, object>();
foreach (var name in new[] { "dv", "plain" })
{
    await ScanAsync(await EventTable.OpenAsync(Path.Combine(dir, name))); // warm-up: the JIT, the page cache
}

foreach (var name in new[] { "dv", "plain" })
{
    var seconds = new List<double>();
    (long Rows, double Score) last = default;
    for (int r = 0; r < runs; r++)
    {
        var clock = Stopwatch.StartNew();
        var table = await EventTable.OpenAsync(Path.Combine(dir, name));
        last = await ScanAsync(table);
        seconds.Add(clock.Elapsed.TotalSeconds);
    }

    result[name] = new { seconds, rows = last.Rows, score = last.Score };
}

Console.WriteLine(JsonSerializer.Serialize(result));

string Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? throw new ArgumentException($"missing {name}");

// The same aggregates as DuckDB's query: every column decoded and used.
static async Task<(long Rows, double Score)> ScanAsync(EventTable table)
{
    long rows = 0, users = 0, items = 0, dwell = 0, last = long.MinValue, ids = 0, types = 0;
    double score = 0;
    await foreach (var batch in table.ReadAsync())
    {
        rows += batch.RowCount;
        var userIds = ((PrimitiveColumn<long>)batch["user_id"]).Values;
        var itemIds = ((PrimitiveColumn<long>)batch["item_id"]).Values;
        var times = ((PrimitiveColumn<long>)batch["event_time"]).Values;
        var dwells = (PrimitiveColumn<int>)batch["dwell_ms"];
        var scores = ((PrimitiveColumn<double>)batch["score"]).Values;
        var eventIds = (StringColumn)batch["event_id"];
        var eventTypes = (StringColumn)batch["event_type"];
        var dwellNulls = dwells.Nulls;
        var dwellValues = dwells.Values;
        for (int i = 0; i < batch.RowCount; i++)
        {
            users += userIds[i];
            items += itemIds[i];
            last = Math.Max(last, times[i]);
            score += scores[i];
            dwell += dwellNulls is not null && dwellNulls[i] ? 0 : dwellValues[i];
            ids += eventIds.IsNull(i) ? 0 : 1;
            types += eventTypes.IsNull(i) ? 0 : 1;
        }
    }

    GC.KeepAlive((users, items, dwell, last, ids, types));
    return (rows, score);
}
