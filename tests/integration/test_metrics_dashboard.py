"""GET /metrics against what operators build on it: the standard process_* series with sane
values (checked against the kernel's own figures for the server's pid), and every metric the
Grafana dashboard (deploy/grafana/nexadb-dashboard.json) queries exported by a real server."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import server_binary

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/nexadb-dashboard.json"

# Words of PromQL that look like metric names but are not: aggregation and binary-operator
# keywords (functions are recognised by the "(" after them).
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                   "unless", "offset", "atan2", "inf", "nan"}


def promql_metric_names(expr):
    """Metric names an expression selects: string literals, label matchers {..}, range and
    subquery brackets [..], and the label lists of by/without/on/ignoring/group_* are removed
    first; of the identifiers left, those followed by "(" are functions or aggregations."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?", e):
        if m.group(2) is None and m.group(1).lower() not in PROMQL_KEYWORDS:
            names.add(m.group(1))
    return names


def test_promql_metric_names():
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (method, le) (rate(a_seconds_bucket{instance=~"$instance", '
        'code!="OK"}[$__rate_interval])))') == {"a_seconds_bucket"}
    assert promql_metric_names('sum(rate(x_total[5m])) / (sum(rate(x_total[5m])) + sum(rate(y_total[5m])))') \
        == {"x_total", "y_total"}
    assert promql_metric_names('process_open_fds / on (instance) group_left process_max_fds > bool 0.5') \
        == {"process_open_fds", "process_max_fds"}
    assert promql_metric_names("sum without (job) (up offset 5m) and vector(1e3)") == {"up"}


def dashboard_exprs(dash):
    """(panel title, expr) of every query of every panel, rows' nested panels included."""
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))
    walk(dash["panels"])
    return out


def test_dashboard_shape():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["schemaVersion"] >= 36 and dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert {"h", "w", "x", "y"} <= p["gridPos"].keys() and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            assert 'instance=~"$instance"' in t["expr"], (p["title"], t["expr"])


def scrape(server):
    r = requests.get(f"{server.http_base}/metrics", headers={"X-API-Key": server.api_key}, timeout=10)
    assert r.status_code == 200, r.text
    return list(text_string_to_metric_families(r.text))


def proc_stat(pid):
    """(utime+stime seconds, starttime epoch seconds) of pid, read as proc(5) describes."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
    hz = os.sysconf("SC_CLK_TCK")
    btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                 if line.startswith("btime "))
    return (int(fields[11]) + int(fields[12])) / hz, btime + int(fields[19]) / hz


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory, pb):
    """A server that has answered a few calls, an error among them, over both transports."""
    from conftest import Server
    started = time.time()
    s = Server(str(tmp_path_factory.mktemp("metrics") / "data")).start()
    auth = (("x-api-key", s.api_key),)
    with grpc.insecure_channel(s.target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        for i in range(20):
            doc = pb.doc({"_id": f"d{i}", "n": i})
            docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="m", document=doc), metadata=auth, timeout=10)
        for i in range(20):
            docs.Get(pb.document_pb2.GetRequest(collection="m", id=f"d{i}"), metadata=auth, timeout=10)
        with pytest.raises(grpc.RpcError) as err:
            docs.Get(pb.document_pb2.GetRequest(collection="m", id="absent"), metadata=auth, timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert requests.get(f"{s.http_base}/stats", headers={"X-API-Key": s.api_key}, timeout=10).status_code == 200
    s.launched_at = started
    yield s
    s.stop()


def test_every_dashboard_metric_is_exported(busy_server):
    fams = scrape(busy_server)
    samples = {s.name for f in fams for s in f.samples}
    types = {f.name: f.type for f in fams}
    exprs = dashboard_exprs(json.loads(DASHBOARD.read_text()))
    referenced = {}
    for title, expr in exprs:
        names = promql_metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        for n in names:
            referenced.setdefault(n, title)
    missing = {n: t for n, t in referenced.items() if n not in samples}
    assert not missing, f"queried by the dashboard but not exported: {missing}"
    for n in referenced:
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if base != n:  # a histogram's series: the family must be a histogram
            assert types.get(base) == "histogram", (n, types.get(base))
    # what the brief's panels need, so the dashboard cannot quietly drop one
    for needed in ("nexadb_requests_total", "nexadb_request_duration_seconds_bucket", "nexadb_requests_in_flight",
                   "nexadb_write_stalls_total", "nexadb_compactions_total", "nexadb_wal_syncs_total",
                   "nexadb_block_cache_hits_total", "nexadb_block_cache_misses_total", "process_cpu_seconds_total",
                   "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "nexadb_documents"):
        assert needed in referenced, needed
    # the error panel has something to show: non-OK calls are counted with their code
    reqs = next(f for f in fams if f.name == "nexadb_requests")
    assert any(s.labels["code"] == "NOT_FOUND" and s.value >= 1 for s in reqs.samples)
    docs = next(f for f in fams if f.name == "nexadb_documents")
    assert docs.samples[0].value == 20


def test_process_metrics_are_sane(busy_server):
    pid = busy_server.proc.pid
    cpu_before, start_kernel = proc_stat(pid)
    fams = {f.name: f for f in scrape(busy_server)}
    cpu_after, _ = proc_stat(pid)
    now = time.time()

    def value(name):
        assert name in fams, sorted(fams)
        (s,) = fams[name].samples
        return s.value
    # Standard names and types, as Prometheus client libraries export them.
    assert fams["process_cpu_seconds"].type == "counter"
    assert [s.name for s in fams["process_cpu_seconds"].samples] == ["process_cpu_seconds_total"]
    for g in ("process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
              "process_max_fds", "process_start_time_seconds", "process_threads"):
        assert fams[g].type == "gauge", g
    assert "nexadb_process_resident_memory_bytes" not in fams  # replaced by the standard name

    cpu = value("process_cpu_seconds")
    assert 0 <= cpu_before <= cpu <= cpu_after, (cpu_before, cpu, cpu_after)
    rss, vm = value("process_resident_memory_bytes"), value("process_virtual_memory_bytes")
    assert 1 << 20 < rss <= vm
    open_fds, max_fds = value("process_open_fds"), value("process_max_fds")
    assert 3 <= open_fds <= max_fds
    assert abs(open_fds - len(os.listdir(f"/proc/{pid}/fd"))) <= 4  # connections come and go
    threads = value("process_threads")
    assert 2 <= threads and abs(threads - len(os.listdir(f"/proc/{pid}/task"))) <= 4  # gRPC's come and go
    start = value("process_start_time_seconds")
    assert now - 3600 < start <= now
    assert busy_server.launched_at - 2 <= start <= busy_server.launched_at + 30
    assert abs(start - start_kernel) < 1.5  # btime is whole seconds


def test_build_info_names_the_version_and_revision_of_version_flag(busy_server):
    (info,) = next(f for f in scrape(busy_server) if f.name == "nexadb_build_info").samples
    out = subprocess.run([server_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
    assert out == f"nexadb-server {info.labels['version']} (revision {info.labels['revision']})\n"
