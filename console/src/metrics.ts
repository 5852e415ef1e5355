// The server's own figures, read from GET /metrics (Prometheus text format 0.0.4): request
// counts and the latency histogram, turned into a rate and latencies between two scrapes.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

// Calls the console itself makes while watching (its metrics scrapes and files) are left out,
// so an idle server shows no traffic.
const OWN = new Set(['/metrics', '/console']);

export interface Traffic {
  requests: number; // calls finished, all methods and transports
  errors: number; // of those, not OK
  durationSum: number; // seconds
  buckets: Map<number, number>; // le → cumulative count, summed over methods
}

export function traffic(samples: Sample[]): Traffic {
  const t: Traffic = { requests: 0, errors: 0, durationSum: 0, buckets: new Map() };
  for (const s of samples) {
    if (OWN.has(s.labels.method)) continue;
    if (s.name === 'nexadb_requests_total') {
      t.requests += s.value;
      if (s.labels.code !== 'OK') t.errors += s.value;
    } else if (s.name === 'nexadb_request_duration_seconds_sum') {
      t.durationSum += s.value;
    } else if (s.name === 'nexadb_request_duration_seconds_bucket') {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      t.buckets.set(le, (t.buckets.get(le) ?? 0) + s.value);
    }
  }
  return t;
}

// The q-quantile (0..1) of a cumulative histogram, interpolated inside its bucket as
// Prometheus's histogram_quantile does; NaN when it holds nothing.
export function quantile(q: number, buckets: Map<number, number>): number {
  const les = [...buckets.keys()].sort((a, b) => a - b);
  const total = les.length ? buckets.get(les[les.length - 1])! : 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const le of les) {
    const c = buckets.get(le)!;
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(c - prevCount, 1e-12);
    }
    prevLe = le;
    prevCount = c;
  }
  return prevLe;
}

export interface Point {
  t: number; // ms since the epoch
  rate: number; // requests per second
  meanMs: number;
  p99Ms: number;
}

// One chart point from two scrapes seconds apart (counters that went down mean the server
// restarted: the later scrape alone is the delta).
export function between(a: Traffic, b: Traffic, seconds: number, t: number): Point {
  const reset = b.requests < a.requests;
  const base = reset ? { requests: 0, errors: 0, durationSum: 0, buckets: new Map<number, number>() } : a;
  const n = b.requests - base.requests;
  const delta = new Map<number, number>();
  for (const [le, c] of b.buckets) delta.set(le, c - (base.buckets.get(le) ?? 0));
  return {
    t,
    rate: seconds > 0 ? n / seconds : 0,
    meanMs: n > 0 ? ((b.durationSum - base.durationSum) / n) * 1000 : 0,
    p99Ms: n > 0 ? quantile(0.99, delta) * 1000 : 0,
  };
}
