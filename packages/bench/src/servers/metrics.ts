import { monitorEventLoopDelay } from 'node:perf_hooks';

// prom-client's settings (10 ms resolution, reset at every scrape), so the bench's own
// servers report the event-loop delay exactly as a Switchyard node does.
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

/** GET /metrics of the bench's uws_raw and Socket.IO servers: the two figures the bench reads. */
export function metricsText(): string {
  const p99 = delay.count > 0 ? delay.percentile(99) / 1e9 : 0;
  delay.reset();
  return `nodejs_eventloop_lag_p99_seconds ${p99}\nnodejs_heap_size_used_bytes ${process.memoryUsage().heapUsed}\n`;
}
