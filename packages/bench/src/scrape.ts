/**
 * Reads a node's Prometheus text (GET /metrics): prom-client's defaults for Switchyard, the
 * same names from the bench's own uws_raw and Socket.IO servers, Go's for Centrifugo.
 * Scraping prom-client resets its event-loop delay histogram, so a scrape at the start of a
 * phase and one at its end give that phase's figure.
 */
export async function scrape(port: number): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) return values;
    for (const line of (await res.text()).split('\n')) {
      if (line.startsWith('#') || line === '') continue;
      const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m !== null && !values.has(m[1]!)) values.set(m[1]!, Number(m[2]));
    }
  } catch {
    /* a node that does not answer has no figure */
  }
  return values;
}

/** Worst event-loop delay p99 over the nodes, in ms (null where no node exports one: not Node). */
export async function eventLoopP99Ms(ports: readonly number[]): Promise<number | null> {
  const all = await Promise.all(ports.map(scrape));
  const p99 = all.map((m) => m.get('nodejs_eventloop_lag_p99_seconds')).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return p99.length === 0 ? null : Math.max(...p99) * 1000;
}

/** Heap in use, summed over the nodes (V8's for Node, the Go runtime's for Centrifugo); null if none says. */
export async function heapBytes(ports: readonly number[]): Promise<number | null> {
  const all = await Promise.all(ports.map(scrape));
  let total = 0;
  let any = false;
  for (const m of all) {
    const v = m.get('nodejs_heap_size_used_bytes') ?? m.get('go_memstats_heap_inuse_bytes');
    if (v !== undefined && Number.isFinite(v)) {
      total += v;
      any = true;
    }
  }
  return any ? total : null;
}
