import { describe, expect, it } from 'vitest';
import { between, parseMetrics, quantile, traffic } from '../src/metrics';

const scrape = (ok: number, sum: number, b1: number, b2: number, own = 5) => `# HELP nexadb_requests_total calls
# TYPE nexadb_requests_total counter
nexadb_requests_total{transport="http",method="/nexadb.v1.DocumentService/Find",code="OK"} ${ok}
nexadb_requests_total{transport="http",method="/nexadb.v1.DocumentService/Find",code="INVALID_ARGUMENT"} 1
nexadb_requests_total{transport="http",method="/metrics",code="OK"} ${own}
nexadb_request_duration_seconds_bucket{transport="http",method="/nexadb.v1.DocumentService/Find",code="OK",le="0.001"} ${b1}
nexadb_request_duration_seconds_bucket{transport="http",method="/nexadb.v1.DocumentService/Find",code="OK",le="0.01"} ${b2}
nexadb_request_duration_seconds_bucket{transport="http",method="/nexadb.v1.DocumentService/Find",code="OK",le="+Inf"} ${ok}
nexadb_request_duration_seconds_sum{transport="http",method="/nexadb.v1.DocumentService/Find",code="OK"} ${sum}
nexadb_request_duration_seconds_bucket{transport="http",method="/metrics",code="OK",le="+Inf"} ${own}
nexadb_collection_documents{collection="a\\"b",kind="documents"} 3
`;

describe('parseMetrics', () => {
  it('reads names, labels (escaped quotes too) and values', () => {
    const s = parseMetrics(scrape(10, 0.5, 4, 9));
    expect(s.find((x) => x.name === 'nexadb_collection_documents')).toEqual({
      name: 'nexadb_collection_documents',
      labels: { collection: 'a"b', kind: 'documents' },
      value: 3,
    });
    expect(s.filter((x) => x.labels.le === '+Inf').map((x) => x.value)).toEqual([10, 5]);
  });
});

describe('traffic and between', () => {
  it("counts calls but the console's own scrapes", () => {
    const t = traffic(parseMetrics(scrape(10, 0.5, 4, 9, 99)));
    expect(t.requests).toBe(11);
    expect(t.errors).toBe(1);
    expect(t.buckets.get(Infinity)).toBe(10);
  });
  it('turns two scrapes into a rate and latencies', () => {
    const a = traffic(parseMetrics(scrape(10, 0.5, 4, 9)));
    const b = traffic(parseMetrics(scrape(30, 0.7, 14, 29)));
    const p = between(a, b, 2, 1000);
    expect(p.rate).toBe(10);
    expect(p.meanMs).toBeCloseTo(10, 6);
    expect(p.p99Ms).toBeGreaterThan(1);
    expect(p.p99Ms).toBeLessThanOrEqual(10);
  });
  it('takes counters that went down for a restart', () => {
    const a = traffic(parseMetrics(scrape(100, 5, 50, 90)));
    const b = traffic(parseMetrics(scrape(4, 0.004, 4, 4)));
    expect(between(a, b, 2, 0).rate).toBe(2.5); // 4 calls + the error, in 2 s
  });
});

describe('quantile', () => {
  it("interpolates inside the bucket as Prometheus's histogram_quantile does", () => {
    const b = new Map([
      [0.1, 50],
      [0.2, 100],
      [Infinity, 100],
    ]);
    expect(quantile(0.5, b)).toBeCloseTo(0.1, 9);
    expect(quantile(0.75, b)).toBeCloseTo(0.15, 9);
    expect(quantile(0.5, new Map())).toBeNaN();
  });
});
