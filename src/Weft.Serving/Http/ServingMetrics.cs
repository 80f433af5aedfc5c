using Weft.Serving.Hosting;

namespace Weft.Serving.Http;

/// <summary>Gauges read at scrape time: stream lag, batch history, stream watermark, cache.</summary>
internal static class ServingMetrics
{
    public static void Update(ServingState state)
    {
        var m = state.Metrics;
        double now = state.NowMicros / 1e6;
        foreach (var s in state.Signals)
        {
            var h = s.History.Current;
            m.Gauge("weft_serving_history_version", "Version of enriched/<signal> the served batch history reflects, by signal", h.Version, ("signal", s.Name));
            m.Gauge("weft_serving_history_rows", "Batch rows held in memory for reads, by signal", h.Rows.RowCount, ("signal", s.Name));
            if (h.SealedThroughMicros is { } sealedThrough)
            {
                m.Gauge("weft_serving_batch_sealed_through_seconds", "End of the newest sealed bucket (the batch watermark), by signal (Unix seconds)", sealedThrough / 1e6, ("signal", s.Name));
                m.Gauge("weft_serving_batch_age_seconds", "Now minus the batch watermark, by signal", now - (sealedThrough / 1e6), ("signal", s.Name));
            }

            m.Gauge("weft_serving_other_definition_elements_total", "Online elements of another definition of the signal met while building sequences since start (each build counts those it met, whether or not batch rows stand in for them): non-zero while the store holds elements streamed before a deployment, by signal",
                s.OtherDefinitionElements, ("signal", s.Name));
            if (s.StreamWatermark is { } watermark)
            {
                m.Gauge("weft_serving_stream_watermark_seconds", "Newest event time the stream has made servable, by signal (Unix seconds)", watermark / 1e6, ("signal", s.Name));
            }
        }

        if (state.Stream is { } stream)
        {
            // The runtime's own lag gauges, as `weft stream` exposes them (total and per partition).
            stream.Runtime.RefreshLag();
            m.Gauge("weft_stream_lag_seconds", "Time since the runtime was last caught up with the embedded log (0 when caught up)", stream.LagMs / 1000.0);
            m.Gauge("weft_stream_uncommitted_records", "Records not yet covered by a committed offset (flushed to the lake)", Math.Max(0, stream.Log.EndOffset - stream.Source.CommittedOffset));
            m.Gauge("weft_stream_running", "1 while the in-process streaming runtime runs", stream.Failure is null ? 1 : 0);
            // The embedded log's own state: what retention keeps on disk, and whether it takes appends.
            m.Gauge("weft_embedded_log_start_offset", "Offset of the oldest record the embedded log keeps (retention moves it)", stream.Log.StartOffset);
            m.Gauge("weft_embedded_log_end_offset", "Offset the next record appended to the embedded log gets", stream.Log.EndOffset);
            m.Gauge("weft_embedded_log_segments", "Segment files the embedded log keeps", stream.Log.SegmentCount);
            m.Gauge("weft_embedded_log_faulted", "1 once a write or fsync of the embedded log failed: it refuses appends until weft serve restarts", stream.Log.Fault is null ? 0 : 1);
        }

        if (state.Sequences.Cache is { } cache)
        {
            m.Gauge("weft_serving_cache_users", "Users whose merged sequence is cached", cache.Count);
            m.Gauge("weft_serving_cache_hits", "Cache hits since start", cache.Hits);
            m.Gauge("weft_serving_cache_misses", "Cache misses since start", cache.Misses);
            if (state.Sequences.Renders is { } renders)
            {
                m.Gauge("weft_serving_cache_json_bytes", "Bytes of rendered columns JSON kept for cached users", renders.Bytes);
            }
        }
    }
}
