// The server: status and health, the storage engine's figures (GET /stats), and request rate
// and latency charts from its own /metrics, read every two seconds while the page is open.
import { useEffect, useState } from 'preact/hooks';
import { bytes, call, text, type Stats, type Status } from '../api';
import { between, parseMetrics, traffic, type Point, type Traffic } from '../metrics';
import { ErrorBox } from '../ui';

const PERIOD_MS = 2000;
const POINTS = 60; // two minutes

// Kept while the tab lives, so leaving the page and coming back keeps the charts' history
// (a gap of more than three periods starts the rate over rather than average across it).
const kept: { points: Point[]; prev: { t: number; traffic: Traffic } | null } = { points: [], prev: null };

function duration(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

// A line chart of one or two series over the last POINTS samples, in SVG (no inline styles).
function Chart(props: { title: string; unit: string; points: Point[]; series: { key: keyof Point; label: string; cls: string }[] }) {
  const W = 600;
  const H = 160;
  const P = 4;
  const values = props.points.flatMap((p) => props.series.map((s) => p[s.key] as number)).filter(Number.isFinite);
  const max = Math.max(1e-9, ...values) * 1.1;
  const last = props.points[props.points.length - 1];
  const line = (key: keyof Point) =>
    props.points
      .map((p, i) => {
        const x = P + ((W - 2 * P) * (i + POINTS - props.points.length)) / (POINTS - 1);
        const v = Number.isFinite(p[key] as number) ? (p[key] as number) : 0;
        return `${x.toFixed(1)},${(H - P - ((H - 2 * P) * v) / max).toFixed(1)}`;
      })
      .join(' ');
  return (
    <figure class="chart" data-chart={props.title} data-points={props.points.length}>
      <figcaption>
        <strong>{props.title}</strong>{' '}
        {props.series.map((s) => (
          <span key={s.key} class={'legend ' + s.cls}>
            {s.label}: <span data-value={s.key}>{last ? fmt(last[s.key] as number) : '–'}</span> {props.unit}
          </span>
        ))}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title}, last two minutes, up to ${fmt(max)} ${props.unit}`} preserveAspectRatio="none">
        <line x1={P} y1={H - P} x2={W - P} y2={H - P} class="axis" />
        {props.series.map((s) => (
          <polyline key={s.key} points={line(s.key)} class={'series ' + s.cls} />
        ))}
      </svg>
    </figure>
  );
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function ServerPage() {
  const [status, setStatus] = useState<Status | null>(null);
  const [stats, setStats] = useState<Stats | null>(null);
  const [points, setPoints] = useState<Point[]>(kept.points);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    const tick = async () => {
      try {
        const [st, sx, m] = await Promise.all([call<Status>('GET', '/status'), call<Stats>('GET', '/stats'), text('/metrics')]);
        if (stopped) return;
        setStatus(st);
        setStats(sx);
        const now = Date.now();
        const t = traffic(parseMetrics(m));
        const prev = kept.prev;
        if (prev && now - prev.t <= 3 * PERIOD_MS) {
          kept.points = [...kept.points, between(prev.traffic, t, (now - prev.t) / 1000, now)].slice(-POINTS);
          setPoints(kept.points);
        }
        kept.prev = { t: now, traffic: t };
        setError(null);
      } catch (e) {
        if (!stopped) setError((e as Error).message);
      }
    };
    tick();
    const id = setInterval(tick, PERIOD_MS);
    return () => {
      stopped = true;
      clearInterval(id);
    };
  }, []);

  const e = stats?.engine;
  const lookups = e ? e.block_cache_hits + e.block_cache_misses : 0;
  return (
    <section aria-labelledby="h-server">
      <h1 id="h-server">Server</h1>
      <ErrorBox error={error} />
      {status ? (
        <dl class="facts" aria-label="Status">
          <dt>Status</dt>
          <dd data-fact="status">{status.status}</dd>
          <dt>Health</dt>
          <dd data-fact="health" class={status.health === 'SERVING' ? 'good' : 'bad'}>
            {status.health}
            {status.reason ? `: ${status.reason}` : ''}
          </dd>
          <dt>Version</dt>
          <dd>{status.version}</dd>
          <dt>Uptime</dt>
          <dd>{duration(status.uptime_seconds)}</dd>
          {stats ? (
            <>
              <dt>Memory (RSS)</dt>
              <dd>{bytes(stats.rss_bytes)}</dd>
              <dt>Documents</dt>
              <dd>{stats.total_documents}</dd>
              <dt>Vector kernel</dt>
              <dd>{stats.vector_kernel}</dd>
            </>
          ) : null}
        </dl>
      ) : null}
      <div class="charts">
        <Chart title="Requests" unit="/s" points={points} series={[{ key: 'rate', label: 'rate', cls: 's1' }]} />
        <Chart
          title="Latency"
          unit="ms"
          points={points}
          series={[
            { key: 'meanMs', label: 'mean', cls: 's1' },
            { key: 'p99Ms', label: 'p99', cls: 's2' },
          ]}
        />
      </div>
      {e ? (
        <section class="card" aria-labelledby="h-engine">
          <h2 id="h-engine">Storage engine</h2>
          <dl class="facts">
            <dt>Compactions</dt>
            <dd data-fact="compactions">{e.compactions}</dd>
            <dt>WAL syncs</dt>
            <dd data-fact="wal_syncs">{e.wal_syncs}</dd>
            <dt>Block cache hit rate</dt>
            <dd data-fact="cache">{lookups ? `${((100 * e.block_cache_hits) / lookups).toFixed(1)} % of ${lookups}` : 'no lookups yet'}</dd>
            <dt>Memtable</dt>
            <dd>{bytes(e.memtable_bytes)}</dd>
            <dt>Write amplification</dt>
            <dd>{e.write_amplification.toFixed(2)}</dd>
            <dt>Write stalls</dt>
            <dd>{e.write_stalls}</dd>
          </dl>
          <div class="scroll">
            <table class="grid" aria-label="LSM levels">
              <thead>
                <tr>
                  <th scope="col">Level</th>
                  <th scope="col" class="num">
                    Files
                  </th>
                  <th scope="col" class="num">
                    Bytes
                  </th>
                </tr>
              </thead>
              <tbody>
                {e.levels.map((l) => (
                  <tr key={l.level}>
                    <td>L{l.level}</td>
                    <td class="num">{l.files}</td>
                    <td class="num">{bytes(l.bytes)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ) : null}
    </section>
  );
}
