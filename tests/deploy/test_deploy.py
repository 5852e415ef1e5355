"""Offline checks of deploy/: the Dockerfile, the kustomize base and the Helm chart.

Run by tests/deploy/run.sh (ctest `deploy_manifests`), which installs the tools through
deploy/scripts/tools.sh and passes their paths in NEXADB_HELM, NEXADB_KUBECTL, NEXADB_HADOLINT
(and the server binary, when the build has one, in NEXADB_SERVER_BIN).

What is checked:
  * every rendered object validates strictly (unknown fields rejected) against the Kubernetes
    1.27 and 1.37 OpenAPI schemas shipped by kubernetes-validate; ServiceMonitor against
    servicemonitor.schema.json beside this file;
  * the objects fit together: selectors, Service ports, probes, grace period arithmetic,
    Secret and ConfigMap references, mounts, security context, resources;
  * Helm with default values and the kustomize base render the same objects (and the same
    again with the ServiceMonitor switched on);
  * helm lint, and the chart refusing to render without an API key or with bad values;
  * the Dockerfile's structure and hadolint. Building and running the image is
    tests/deploy/test_image.sh (make test-image).
"""

import copy
import difflib
import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "nexadb"
KDIR = DEPLOY / "k8s"          # base + the Secret generated from the operator's file
KBASE = KDIR / "base"          # every object but the Secret
DOCKERFILE = DEPLOY / "Dockerfile"
HERE = Path(__file__).resolve().parent

K8S_VERSIONS = ("1.27.0", "1.37.0")  # oldest with GA gRPC probes, newest schemas shipped
HTTP_PORT, GRPC_PORT = 6969, 6970
HEALTH_SERVICE = "nexadb.v1.DocumentService"


def _tool(env_name):
    path = os.environ.get(env_name)
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{env_name} is not set to an executable; run through tests/deploy/run.sh")
    return path


def _run(cmd, env=None, check=True):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
                    f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def _docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def _random_key():
    return secrets.token_hex(32)


# ---------------------------------------------------------------------------- renderers


class Helm:
    def __init__(self, exe, home):
        self.exe = exe
        self.env = dict(os.environ)
        # Keep helm's caches and config out of the user's home.
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            d = home / var.lower()
            d.mkdir(parents=True, exist_ok=True)
            self.env[var] = str(d)

    def run(self, *args, check=True):
        return _run([self.exe, *args], env=self.env, check=check)

    def template(self, release="nexadb", namespace="nexadb", values=None, sets=(),
                 kube_version="1.37.0", check=True):
        args = ["template", release, str(CHART), "--namespace", namespace,
                "--kube-version", kube_version]
        if values:
            args += ["--values", str(values)]
        for s in sets:
            args += ["--set-string" if s.startswith("apiKey.value=") else "--set", s]
        return self.run(*args, check=check)


@pytest.fixture(scope="session")
def helm(tmp_path_factory):
    return Helm(_tool("NEXADB_HELM"), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def kubectl():
    return _tool("NEXADB_KUBECTL")


@pytest.fixture(scope="session")
def custom_values(tmp_path_factory):
    """Non-default values an operator might use: existing Secret, ServiceMonitor on, ..."""
    values = {
        "image": {"repository": "registry.example.com/db/nexadb", "tag": "0.1.0-rc1",
                  "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}],
        "apiKey": {"existingSecret": "prod-nexadb-key", "existingSecretKey": "token"},
        "config": {"logLevel": "debug", "extra": {"NEXADB_EXAMPLE_SETTING": 7}},
        "shutdown": {"preStopSleepSeconds": 10, "graceSeconds": 45, "marginSeconds": 15},
        "probes": {"startup": {"periodSeconds": 15, "timeoutSeconds": 5,
                               "failureThreshold": 240}},
        "service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"},
                    "ports": {"http": 8080, "grpc": 9090}},
        "persistence": {"size": "200Gi", "storageClassName": "fast-ssd",
                        "accessModes": ["ReadWriteOncePod"],
                        "retentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"}},
        "resources": {"requests": {"cpu": "2", "memory": "8Gi"},
                      "limits": {"cpu": "4", "memory": "8Gi"}},
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1, "maxUnavailable": None},
        "serviceMonitor": {"enabled": True, "namespace": "monitoring",
                           "labels": {"release": "kube-prometheus-stack"},
                           "interval": "15s", "scrapeTimeout": "5s",
                           "apiKeySecret": {"name": "nexadb-metrics-ro", "key": "key"}},
        "priorityClassName": "database",
        "nodeSelector": {"kubernetes.io/arch": "amd64"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db",
                         "effect": "NoSchedule"}],
        "podAnnotations": {"example.com/team": "storage"},
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
    }
    path = tmp_path_factory.mktemp("values") / "custom.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _kustomize_tree(tmp_path_factory, with_servicemonitor):
    """Copies deploy/k8s, writes an operator key file, optionally adds an overlay."""
    work = tmp_path_factory.mktemp("kustomize")
    k8s = work / "k8s"
    shutil.copytree(KDIR, k8s, ignore=shutil.ignore_patterns("api-key.txt"))
    (k8s / "api-key.txt").write_text(_random_key())
    if not with_servicemonitor:
        return k8s
    overlay = work / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../k8s"],
        "components": ["../k8s/components/servicemonitor"],
    }))
    return overlay


def _readme_overlay(tmp_path_factory):
    """The overlay example in deploy/README.md, laid out as it describes."""
    text = (DEPLOY / "README.md").read_text()
    m = re.search(r"```yaml\n# overlays/prod/kustomization.yaml[^\n]*\n(.*?)```", text, re.S)
    assert m, "deploy/README.md lost its overlay example"
    work = tmp_path_factory.mktemp("readme-overlay")
    shutil.copytree(KDIR, work / "deploy" / "k8s", ignore=shutil.ignore_patterns("api-key.txt"))
    overlay = work / "overlays" / "prod"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(m.group(1))
    (overlay / "api-key.txt").write_text(_random_key())
    return overlay


@pytest.fixture(scope="session")
def renders(helm, kubectl, custom_values, tmp_path_factory):
    """name -> (objects, expectations). Rendered once per session."""
    out = {}
    out["helm-default"] = (
        _docs(helm.template(sets=[f"apiKey.value={_random_key()}"]).stdout),
        dict(fullname="nexadb", secret_in_render=True, secret_name="nexadb-api-key",
             secret_key="api-key", servicemonitor=False, http=HTTP_PORT, grpc=GRPC_PORT))
    out["helm-servicemonitor"] = (
        _docs(helm.template(sets=[f"apiKey.value={_random_key()}",
                                  "serviceMonitor.enabled=true"]).stdout),
        dict(fullname="nexadb", secret_in_render=True, secret_name="nexadb-api-key",
             secret_key="api-key", servicemonitor=True, http=HTTP_PORT, grpc=GRPC_PORT))
    out["helm-custom"] = (
        _docs(helm.template(release="prod", namespace="databases", values=custom_values).stdout),
        dict(fullname="prod-nexadb", secret_in_render=False, secret_name="prod-nexadb-key",
             secret_key="token", servicemonitor=True, http=8080, grpc=9090,
             monitor_secret={"name": "nexadb-metrics-ro", "key": "key"}))
    for name, with_sm in (("kustomize-base", False), ("kustomize-servicemonitor", True)):
        tree = _kustomize_tree(tmp_path_factory, with_sm)
        out[name] = (
            _docs(_run([kubectl, "kustomize", str(tree)]).stdout),
            dict(fullname="nexadb", secret_in_render=True, secret_name="nexadb-api-key",
                 secret_key="api-key", servicemonitor=with_sm, http=HTTP_PORT,
                 grpc=GRPC_PORT, hashed=True))
    out["kustomize-readme-overlay"] = (
        _docs(_run([kubectl, "kustomize", str(_readme_overlay(tmp_path_factory))]).stdout),
        dict(fullname="nexadb", secret_in_render=True, secret_name="nexadb-api-key",
             secret_key="api-key", servicemonitor=True, http=HTTP_PORT, grpc=GRPC_PORT,
             hashed=True))
    # The bare base, for operators who create the Secret themselves.
    out["kustomize-base-only"] = (
        _docs(_run([kubectl, "kustomize", str(KBASE)]).stdout),
        dict(fullname="nexadb", secret_in_render=False, secret_name="nexadb-api-key",
             secret_key="api-key", servicemonitor=False, http=HTTP_PORT, grpc=GRPC_PORT))
    return out


RENDERS = ("helm-default", "helm-servicemonitor", "helm-custom", "kustomize-base",
           "kustomize-servicemonitor", "kustomize-base-only", "kustomize-readme-overlay")


# ---------------------------------------------------------------------------- schemas

SERVICEMONITOR_SCHEMA = json.loads((HERE / "servicemonitor.schema.json").read_text())


@pytest.mark.parametrize("render", RENDERS)
def test_objects_validate_against_kubernetes_schemas(renders, render):
    objs, _ = renders[render]
    assert objs, f"{render} rendered no objects"
    errors = []
    for obj in objs:
        what = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("kind") == "ServiceMonitor":
            validator = jsonschema.Draft202012Validator(SERVICEMONITOR_SCHEMA)
            errors += [f"{what}: {e.message} at {list(e.absolute_path)}"
                       for e in validator.iter_errors(obj)]
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{what} (k8s {version}): {e.message} at {list(e.absolute_path)}")
            except kubernetes_validate.SchemaNotFoundError as e:
                errors.append(f"{what} (k8s {version}): {e.message}")
    assert not errors, "\n".join(errors)


def test_schema_validation_rejects_a_broken_object(renders):
    """The validator in use does fail: an unknown field and a wrong type are both caught."""
    objs, _ = renders["helm-default"]
    sts = copy.deepcopy(_one(objs, "StatefulSet"))
    sts["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpcc"] = {"port": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, "1.37.0", strict=True)
    sts = copy.deepcopy(_one(objs, "StatefulSet"))
    sts["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, "1.37.0", strict=True)
    sm = copy.deepcopy(_one(renders["helm-servicemonitor"][0], "ServiceMonitor"))
    sm["spec"]["endpoints"][0]["interval"] = "30 seconds"
    assert list(jsonschema.Draft202012Validator(SERVICEMONITOR_SCHEMA).iter_errors(sm))


# ---------------------------------------------------------------------------- invariants


def _one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _find(objs, kind, name):
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    return None


def _selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_FACTORS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def _quantity(q):
    m = _QUANTITY.match(str(q))
    assert m, f"not a Kubernetes quantity: {q!r}"
    return float(m.group(1)) * _FACTORS[m.group(2)]


def _addr_port(addr):
    host, _, port = addr.rpartition(":")
    assert host and port.isdigit(), f"not host:port: {addr!r}"
    return host, int(port)


@pytest.mark.parametrize("render", RENDERS)
def test_objects_fit_together(renders, render):
    objs, want = renders[render]
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert len(names) == len(objs), "two objects share a kind and name"

    sts = _one(objs, "StatefulSet")
    assert sts["metadata"]["name"] == want["fullname"]
    spec = sts["spec"]
    assert spec["replicas"] == 1
    pod = spec["template"]
    pod_labels = pod["metadata"]["labels"]
    selector = spec["selector"]["matchLabels"]
    assert _selects(selector, pod_labels), "StatefulSet selector does not match its pods"
    assert {"app.kubernetes.io/name", "app.kubernetes.io/instance"} <= set(selector)
    podspec = pod["spec"]
    (ctr,) = podspec["containers"]

    # Ports.
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    assert ports == {"http": HTTP_PORT, "grpc": GRPC_PORT}

    # Services: the headless governing Service and a client Service, both ports each.
    headless = _find(objs, "Service", spec["serviceName"])
    assert headless, f"serviceName {spec['serviceName']} names no Service"
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"].get("publishNotReadyAddresses") is True
    services = [o for o in objs if o["kind"] == "Service"]
    clients = [s for s in services if s["spec"].get("clusterIP") != "None"]
    assert len(clients) == 1, "expected exactly one client Service"
    client = clients[0]
    assert client["metadata"]["name"] == want["fullname"]
    for svc in services:
        assert _selects(svc["spec"]["selector"], pod_labels), f"{svc['metadata']['name']} selects no pod"
        by_target = {p["targetPort"]: p for p in svc["spec"]["ports"]}
        assert set(by_target) == {"http", "grpc"}, f"{svc['metadata']['name']} must expose both ports"
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in ports
    client_ports = {p["name"]: p["port"] for p in client["spec"]["ports"]}
    assert client_ports == {"http": want["http"], "grpc": want["grpc"]}

    # Configuration: ConfigMap through envFrom, addresses matching the container ports.
    (env_from,) = ctr["envFrom"]
    cm = _find(objs, "ConfigMap", env_from["configMapRef"]["name"])
    assert cm, f"envFrom names ConfigMap {env_from['configMapRef']['name']}, not rendered"
    cfg = cm["data"]
    for k, v in cfg.items():
        assert k.startswith("NEXADB_") and isinstance(v, str), (k, v)
    host, port = _addr_port(cfg["NEXADB_GRPC_ADDR"])
    assert (host, port) == ("0.0.0.0", GRPC_PORT)
    host, port = _addr_port(cfg["NEXADB_HTTP_ADDR"])
    assert (host, port) == ("0.0.0.0", HTTP_PORT)
    assert cfg["NEXADB_LOG_LEVEL"] in ("debug", "info", "warn", "error")
    grace = int(cfg["NEXADB_SHUTDOWN_GRACE"])
    env = {e["name"]: e for e in ctr.get("env", [])}
    assert not set(env) & set(cfg), "env and ConfigMap set the same variable"
    assert "NEXADB_API_KEY" not in env and "NEXADB_API_KEY" not in cfg, \
        "the key must come from the Secret file, not a plain variable"
    assert podspec.get("enableServiceLinks") is False

    # Probes: native gRPC on the gRPC port; readiness on the document service; the startup
    # probe leaves room for WAL replay.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert ctr[probe]["grpc"]["port"] == GRPC_PORT, probe
        assert not {"httpGet", "tcpSocket", "exec"} & set(ctr[probe]), probe
    assert ctr["readinessProbe"]["grpc"].get("service") == HEALTH_SERVICE
    assert ctr["livenessProbe"]["grpc"].get("service", "") == ""
    startup = ctr["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, \
        "startup probe allows less than 10 minutes for WAL replay"

    # Shutdown: preStop sleep, then SIGTERM and the server's drain, all inside the grace period.
    cmd = ctr["lifecycle"]["preStop"]["exec"]["command"]
    assert cmd[0] == "sleep" and len(cmd) == 2
    pre_stop = int(cmd[1])
    assert pre_stop >= 1
    assert podspec["terminationGracePeriodSeconds"] >= pre_stop + grace + 5, \
        "terminationGracePeriodSeconds leaves no margin after preStop + drain"

    # API key: a Secret volume, read through NEXADB_API_KEY_FILE.
    volumes = {v["name"]: v for v in podspec["volumes"]}
    mounts = {m["name"]: m for m in ctr["volumeMounts"]}
    secret_vols = [v for v in volumes.values() if "secret" in v]
    assert len(secret_vols) == 1
    sv = secret_vols[0]["secret"]
    secret_name = sv["secretName"]
    if want.get("hashed"):  # kustomize generators append "-<content hash>"
        assert re.fullmatch(re.escape(want["secret_name"]) + r"-[a-z0-9]{10}", secret_name)
    else:
        assert secret_name == want["secret_name"]
    (item,) = sv["items"]
    assert item["key"] == want["secret_key"]
    assert sv["defaultMode"] & 0o007 == 0, "key file readable by others"
    key_mount = mounts[secret_vols[0]["name"]]
    assert key_mount.get("readOnly") is True
    assert env["NEXADB_API_KEY_FILE"]["value"] == f"{key_mount['mountPath']}/{item['path']}"
    secret = _find(objs, "Secret", sv["secretName"])
    if want["secret_in_render"]:
        assert secret, "the referenced Secret is not rendered"
        assert secret.get("type") == "Opaque"
        assert set(secret["data"]) == {item["key"]}
        assert len(secret["data"][item["key"]]) >= 24, "API key too short"
    else:
        assert secret is None
        assert not [o for o in objs if o["kind"] == "Secret"], "existingSecret must not render a Secret"

    # Storage: the claim template mounted at the data directory.
    (claim,) = spec["volumeClaimTemplates"]
    data_mount = mounts[claim["metadata"]["name"]]
    assert data_mount["mountPath"] == cfg["NEXADB_DATA_DIR"] == "/data"
    assert _quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 2**30
    for m in mounts:
        assert m in volumes or m == claim["metadata"]["name"], f"mount {m} has no volume"
    assert set(spec["persistentVolumeClaimRetentionPolicy"].values()) <= {"Retain", "Delete"}

    # Security.
    psc, csc = podspec["securityContext"], ctr["securityContext"]
    assert psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True
    for sc in (psc, csc):
        assert sc.get("runAsUser", 1) != 0 and sc.get("runAsGroup", 1) != 0
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["readOnlyRootFilesystem"] is True
    assert csc.get("privileged", False) is False
    assert "ALL" in csc["capabilities"]["drop"]
    assert psc.get("fsGroup"), "fsGroup makes the fresh volume writable for the non-root user"
    assert podspec.get("automountServiceAccountToken") is False
    sa_name = podspec.get("serviceAccountName")
    if sa_name and sa_name != "default":
        sa = _find(objs, "ServiceAccount", sa_name)
        assert sa and sa.get("automountServiceAccountToken") is False
    writable = {m["mountPath"] for m in ctr["volumeMounts"] if not m.get("readOnly")}
    assert {"/data", "/tmp"} <= writable

    # Resources: requests and limits for CPU and memory, requests within limits.
    res = ctr["resources"]
    for r in ("cpu", "memory"):
        assert _quantity(res["requests"][r]) <= _quantity(res["limits"][r]), r

    # PodDisruptionBudget over the same pods, exactly one of min/max.
    pdb = _one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert len({"minAvailable", "maxUnavailable"} & set(pdb["spec"])) == 1

    # ServiceMonitor: present when asked for, selecting exactly the client Service's http port.
    monitors = [o for o in objs if o["kind"] == "ServiceMonitor"]
    assert len(monitors) == (1 if want["servicemonitor"] else 0)
    for sm in monitors:
        sel = sm["spec"]["selector"]["matchLabels"]
        picked = [s for s in services if _selects(sel, s["metadata"].get("labels", {}))]
        assert picked == [client], "ServiceMonitor must select the client Service only"
        (ep,) = sm["spec"]["endpoints"]
        assert ep["port"] in client_ports and ep["port"] == "http"
        assert ep["path"] == "/metrics"
        # /metrics needs a key: a Bearer token from a Secret, by default the pod's own key
        # (same name, hashed alike by kustomize, in the same namespace).
        auth = ep["authorization"]
        assert auth["type"] == "Bearer"
        assert auth["credentials"] == want.get("monitor_secret",
                                               {"name": secret_name, "key": want["secret_key"]})


def test_custom_values_reach_the_objects(renders):
    """Spot checks that the operator's values are used, not ignored."""
    objs, _ = renders["helm-custom"]
    sts = _one(objs, "StatefulSet")
    podspec = sts["spec"]["template"]["spec"]
    (ctr,) = podspec["containers"]
    assert ctr["image"] == "registry.example.com/db/nexadb:0.1.0-rc1"
    assert ctr["imagePullPolicy"] == "Always"
    assert podspec["imagePullSecrets"] == [{"name": "regcred"}]
    assert podspec["terminationGracePeriodSeconds"] == 10 + 45 + 15
    assert ctr["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    cm = _one(objs, "ConfigMap")
    assert cm["data"]["NEXADB_SHUTDOWN_GRACE"] == "45"
    assert cm["data"]["NEXADB_LOG_LEVEL"] == "debug"
    assert cm["data"]["NEXADB_EXAMPLE_SETTING"] == "7"
    assert {"name": "TZ", "value": "UTC"} in ctr["env"]
    assert ctr["startupProbe"]["failureThreshold"] == 240
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast-ssd"
    assert claim["accessModes"] == ["ReadWriteOncePod"]
    assert claim["resources"]["requests"]["storage"] == "200Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    assert ctr["resources"]["limits"]["memory"] == "8Gi"
    assert podspec["priorityClassName"] == "database"
    assert podspec["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    assert podspec["tolerations"][0]["key"] == "dedicated"
    assert sts["spec"]["template"]["metadata"]["annotations"]["example.com/team"] == "storage"
    svc = _one(objs, "Service", "prod-nexadb")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["metadata"]["annotations"] == {"example.com/lb": "internal"}
    assert _one(objs, "PodDisruptionBudget")["spec"] == {
        "minAvailable": 1, "selector": sts["spec"]["selector"]}
    sm = _one(objs, "ServiceMonitor")
    assert sm["metadata"]["namespace"] == "monitoring"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["databases"]}
    assert sm["spec"]["endpoints"][0]["interval"] == "15s"
    # in another namespace than the pod's Secret: the operator names a Secret there
    assert sm["spec"]["endpoints"][0]["authorization"] == {
        "type": "Bearer", "credentials": {"name": "nexadb-metrics-ro", "key": "key"}}
    for o in objs:
        if o["kind"] != "ServiceMonitor":
            assert o["metadata"]["namespace"] == "databases", o["kind"]


def test_readme_overlay_applies_its_changes(renders):
    objs, _ = renders["kustomize-readme-overlay"]
    assert {o["metadata"].get("namespace") for o in objs} == {"nexadb"}
    sts = _one(objs, "StatefulSet")
    (ctr,) = sts["spec"]["template"]["spec"]["containers"]
    assert ctr["image"] == "registry.example.com/nexadb:0.2.0"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "100Gi"
    cm = _one(objs, "ConfigMap")
    assert cm["data"]["NEXADB_LOG_LEVEL"] == "debug"
    assert cm["data"]["NEXADB_DATA_DIR"] == "/data"  # merged, not replaced
    assert len([o for o in objs if o["kind"] == "Secret"]) == 1


# ---------------------------------------------------------------------------- helm == kustomize

# Labels that name the tool that rendered an object; everything else must be equal.
_TOOL_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by"}


def _generated_names(objs):
    """kustomize appends a content hash to generated ConfigMap/Secret names: map them back."""
    bases = set()
    for kfile in (KDIR / "kustomization.yaml", KBASE / "kustomization.yaml"):
        kust = yaml.safe_load(kfile.read_text())
        bases |= {g["name"] for g in
                  kust.get("configMapGenerator", []) + kust.get("secretGenerator", [])}
    mapping = {}
    for o in objs:
        name = o["metadata"]["name"]
        m = re.match(r"^(.*)-[a-z0-9]{10}$", name)
        if o["kind"] in ("ConfigMap", "Secret") and m and m.group(1) in bases:
            mapping[name] = m.group(1)
    assert len(mapping) == len(bases), f"generated objects not found: {bases} vs {mapping}"
    return mapping


def _normalise(obj, renames):
    def walk(x, parent_key=None):
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                if k == "annotations" and parent_key == "metadata":
                    continue  # checksums (helm) and nothing (kustomize)
                if k == "namespace" and parent_key == "metadata":
                    continue  # helm sets the release namespace; the base leaves it to overlays
                if k == "labels" and parent_key == "metadata" and isinstance(v, dict):
                    v = {lk: lv for lk, lv in v.items() if lk not in _TOOL_LABELS}
                out[k] = walk(v, k)
            return out
        if isinstance(x, list):
            return [walk(i, parent_key) for i in x]
        if isinstance(x, str):
            return renames.get(x, x)
        return x

    out = walk(obj)
    if out["kind"] == "Secret":
        out["data"] = {k: "<key material>" for k in out.get("data", {})}
    return out


def _keyed(objs, renames):
    return {(o["kind"], renames.get(o["metadata"]["name"], o["metadata"]["name"])):
            _normalise(o, renames) for o in objs}


@pytest.mark.parametrize("helm_render,kust_render", [
    ("helm-default", "kustomize-base"),
    ("helm-servicemonitor", "kustomize-servicemonitor"),
])
def test_helm_and_kustomize_render_the_same_objects(renders, helm_render, kust_render):
    helm_objs, _ = renders[helm_render]
    kust_objs, _ = renders[kust_render]
    h = _keyed(helm_objs, {})
    k = _keyed(kust_objs, _generated_names(kust_objs))
    assert sorted(h) == sorted(k), f"kinds/names differ: helm {sorted(h)} kustomize {sorted(k)}"
    diffs = []
    for key in sorted(h):
        a = yaml.safe_dump(h[key], sort_keys=True).splitlines()
        b = yaml.safe_dump(k[key], sort_keys=True).splitlines()
        if a != b:
            diffs.append(f"{key}:\n" + "\n".join(difflib.unified_diff(a, b, "helm", "kustomize",
                                                                         lineterm="")))
    assert not diffs, "\n".join(diffs)


# ---------------------------------------------------------------------------- helm behaviour


def test_helm_lint_and_package(helm, custom_values, tmp_path):
    helm.run("lint", "--strict", "--kube-version", "1.37.0", str(CHART),
             "--set-string", f"apiKey.value={_random_key()}")
    helm.run("lint", "--strict", "--kube-version", "1.27.0", str(CHART),
             "--values", str(custom_values))
    helm.run("package", str(CHART), "--destination", str(tmp_path))
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (tmp_path / f"nexadb-{chart['version']}.tgz").is_file()


@pytest.mark.parametrize("sets,message", [
    ([], "an API key is required"),
    (["apiKey.value=" + "a" * 32, "apiKey.existingSecret=mine"], "set only one of apiKey.value"),
    (["apiKey.value=short"], "apiKey/value"),
    (["apiKey.value=" + "a" * 129], "apiKey/value"),  # the server takes 16 to 128 bytes
    (["apiKey.value=" + "a" * 32, "replicaCount=2"], "replicaCount"),  # a cluster has an odd number
    (["apiKey.value=" + "a" * 32, "config.logLevel=verbose"], "logLevel"),
    (["apiKey.value=" + "a" * 32, "podDisruptionBudget.minAvailable=1"], "only one of podDisruptionBudget"),
])
def test_helm_refuses_bad_values(helm, sets, message):
    proc = helm.template(sets=sets, check=False)
    assert proc.returncode != 0, f"rendered despite {sets}"
    assert message in proc.stderr, proc.stderr


def test_helm_cluster(helm):
    """replicaCount 3: a Raft cluster whose pods find each other by the headless Service's names."""
    objs = _docs(helm.template(release="db", namespace="data",
                               sets=[f"apiKey.value={_random_key()}", "replicaCount=3"]).stdout)
    for obj in objs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    sts = _one(objs, "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["podManagementPolicy"] == "Parallel"  # none is ready before a majority runs
    (ctr,) = sts["spec"]["template"]["spec"]["containers"]
    assert {"name": "raft", "containerPort": 6971, "protocol": "TCP"} in ctr["ports"]
    headless = _find(objs, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert any(p["name"] == "raft" and p["port"] == 6971 for p in headless["spec"]["ports"])
    cm = _one(objs, "ConfigMap")["data"]
    want = ",".join(f"{i + 1}=db-nexadb-{i}.db-nexadb-headless.data.svc.cluster.local:6971" for i in range(3))
    assert cm["NEXADB_PEERS"] == want
    assert cm["NEXADB_NODE_ID_FROM_HOSTNAME"] == "true"
    assert cm["NEXADB_RAFT_BIND_ADDR"] == "0.0.0.0:6971"
    # the Raft port (unauthenticated) answers only the chart's own pods
    np = _one(objs, "NetworkPolicy")
    selector = sts["spec"]["selector"]["matchLabels"]
    assert np["spec"]["podSelector"]["matchLabels"] == selector
    raft_rule = next(r for r in np["spec"]["ingress"] if any(p["port"] == "raft" for p in r["ports"]))
    assert raft_rule["from"] == [{"podSelector": {"matchLabels": selector}}]
    # a voluntary disruption never takes a majority
    assert _one(objs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    # with TLS the pods call each other over TLS, trusting the Secret's CA
    objs = _docs(helm.template(sets=[f"apiKey.value={_random_key()}", "replicaCount=3", "tls.enabled=true",
                                     "tls.secretName=nexadb-tls"]).stdout)
    (ctr,) = _one(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in ctr["env"]}
    assert env["NEXADB_TLS_PEER_CA"] == "/etc/nexadb/tls/ca.crt"


def test_helm_optional_switches(helm):
    key = f"apiKey.value={_random_key()}"
    objs = _docs(helm.template(sets=[key, "persistence.storageClassName=-",
                                     "serviceAccount.create=false",
                                     "podDisruptionBudget.enabled=false"]).stdout)
    sts = _one(objs, "StatefulSet")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == ""
    assert sts["spec"]["template"]["spec"]["serviceAccountName"] == "default"
    assert not [o for o in objs if o["kind"] in ("ServiceAccount", "PodDisruptionBudget")]
    objs = _docs(helm.template(release="db", sets=[key, "fullnameOverride=vectors"]).stdout)
    assert {o["metadata"]["name"] for o in objs if o["kind"] == "Service"} == \
        {"vectors", "vectors-headless"}
    assert _one(objs, "StatefulSet")["spec"]["serviceName"] == "vectors-headless"


def test_helm_respects_kube_version_floor(helm):
    ok = helm.template(sets=[f"apiKey.value={_random_key()}"], kube_version="1.27.0", check=False)
    assert ok.returncode == 0, ok.stderr
    old = helm.template(sets=[f"apiKey.value={_random_key()}"], kube_version="1.26.9", check=False)
    assert old.returncode != 0 and "kubeVersion" in old.stderr


def test_kustomize_needs_the_operators_key_file(kubectl, tmp_path):
    k8s = tmp_path / "k8s"
    shutil.copytree(KDIR, k8s, ignore=shutil.ignore_patterns("api-key.txt"))
    proc = _run([kubectl, "kustomize", str(k8s)], check=False)
    assert proc.returncode != 0 and "api-key.txt" in proc.stderr, proc.stderr


def test_no_key_material_in_deploy():
    """Nothing under deploy/ may carry an API key (the operator supplies it)."""
    suspicious = re.compile(r"\b[0-9a-fA-F]{32,}\b|b8c37e33faa946d43c2f6e5a0bc7e7e0")
    hits = []
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.name != "api-key.txt":
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if suspicious.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["apiKey"]["value"] == "" and values["apiKey"]["existingSecret"] == ""
    assert not hits, "\n".join(hits)


# ---------------------------------------------------------------------------- Dockerfile


def _dockerfile_stages():
    """[(stage_name, base_image, [(INSTRUCTION, args)])] with continuation lines joined."""
    text = DOCKERFILE.read_text()
    logical, cur = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if cur and line.startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        logical.append(cur + line)
        cur = ""
    args, stages = {}, []
    for line in logical:
        instr, _, rest = line.partition(" ")
        instr, rest = instr.upper(), rest.strip()
        if instr == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
        elif instr == "FROM":
            m = re.match(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            assert m, line
            image = re.sub(r"\$\{?(\w+)\}?", lambda g: args.get(g.group(1), ""), m.group(1))
            stages.append((m.group(2), image, []))
        else:
            assert stages, f"instruction before FROM: {line}"
            stages[-1][2].append((instr, rest))
    return stages


def test_dockerfile_structure():
    stages = _dockerfile_stages()
    assert len(stages) >= 2, "multi-stage build expected"
    build = next(s for s in stages if s[0] == "build")
    assert re.match(r"^debian:12(\b|-|$)|^debian:bookworm", build[1]), f"build: {build[1]} is not Debian 12"
    _, runtime_base, runtime = stages[-1]
    assert stages[-1][0] != "build"
    assert runtime_base == "scratch", "the runtime stage carries the server's files and nothing else"

    build_runs = " ".join(a for i, a in build[2] if i == "RUN")
    assert "scripts/install-deps.sh --build" in build_runs, "build stage: the dependency script's build half"
    assert "cmake --preset release" in build_runs
    # the runtime root holds the libraries ldd resolves for the binaries, and CA certificates
    assert "ldd /rootfs/usr/local/bin/*" in build_runs and "cp -L --parents" in build_runs
    assert "ca-certificates.crt /rootfs/etc/ssl/certs/" in build_runs
    assert [a for i, a in runtime if i == "COPY"] == ["--from=build /rootfs/ /"]

    def last(instr):
        found = [a for i, a in runtime if i == instr]
        assert found, f"runtime stage has no {instr}"
        return found[-1]

    user = last("USER").split(":")[0]
    assert user not in ("root", "0"), "runtime must not run as root"
    assert user.isdigit(), "numeric USER lets Kubernetes verify runAsNonRoot"
    volume = last("VOLUME")
    assert "/data" in (json.loads(volume) if volume.startswith("[") else volume.split())
    exposed = set(" ".join(a for i, a in runtime if i == "EXPOSE").split())
    assert {"6969", "6970"} <= {p.split("/")[0] for p in exposed}
    assert last("STOPSIGNAL") == "SIGTERM"
    entry = json.loads(last("ENTRYPOINT"))  # exec form: the server is PID 1, not a shell
    assert entry[0].endswith("/nexadb-server"), entry
    assert not [a for i, a in runtime if i == "CMD" and not a.startswith("[")]
    assert "nexadb-health" in last("HEALTHCHECK"), "HEALTHCHECK asks the gRPC health service"
    env = " ".join(a for i, a in runtime if i == "ENV")
    assert "NEXADB_DATA_DIR=/data" in env and f"NEXADB_HTTP_ADDR=0.0.0.0:{HTTP_PORT}" in env
    assert f"NEXADB_GRPC_ADDR=0.0.0.0:{GRPC_PORT}" in env

    # The image's user is the one the manifests run as.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert str(values["podSecurityContext"]["runAsUser"]) == user
    assert str(values["podSecurityContext"]["fsGroup"]) == last("USER").split(":")[1]


def test_hadolint():
    exe = _tool("NEXADB_HADOLINT")
    _run([exe, "--failure-threshold", "warning", str(DOCKERFILE)])


# ---------------------------------------------------------------------------- the real server
#
# The manifests' configuration, given to the real nexadb-server: the ConfigMap's variables, the
# key file as the Secret mount presents it, the server as PID 1 of its own PID namespace (as in
# a container without an init), probed the way the kubelet probes (gRPC health, no API key),
# stopped the way the kubelet stops it (SIGTERM). Addresses are moved to 127.0.0.1 ephemeral
# ports and /data to a temporary directory; everything else is as rendered.


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pod_env(objs, data_dir, key_file):
    sts = _one(objs, "StatefulSet")
    (ctr,) = sts["spec"]["template"]["spec"]["containers"]
    cm = _find(objs, "ConfigMap", ctr["envFrom"][0]["configMapRef"]["name"])
    env = dict(cm["data"])
    for e in ctr.get("env", []):
        env[e["name"]] = e["value"]
    assert env["NEXADB_DATA_DIR"] == "/data" and env["NEXADB_API_KEY_FILE"].startswith("/etc/")
    env["NEXADB_DATA_DIR"] = str(data_dir)
    env["NEXADB_API_KEY_FILE"] = str(key_file)
    env["NEXADB_GRPC_ADDR"] = f"127.0.0.1:{_free_port()}"
    env["NEXADB_HTTP_ADDR"] = f"127.0.0.1:{_free_port()}"
    # Nothing from the caller's environment leaks in, as in a container.
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    return env, grace


def _child_pid(parent):
    """unshare --fork runs the server as its child: the child's host PID, or None."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:  # fields after "(comm)": state, ppid, ...
            return int(stat.parent.name)
    return None


class _Server:
    def __init__(self, binary, env, workdir):
        self.env = env
        self.workdir = workdir
        self.stderr = open(workdir / "stderr.log", "w+")
        cmd = [binary]
        self.pid1 = False
        if shutil.which("unshare") and subprocess.run(
                ["unshare", "--pid", "--fork", "--kill-child", "true"],
                capture_output=True).returncode == 0:
            cmd = ["unshare", "--pid", "--fork", "--kill-child", "--", binary]
            self.pid1 = True
        self.proc = subprocess.Popen(cmd, env=env, cwd=workdir / "cwd", stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)

    def server_pid(self, deadline):
        if not self.pid1:
            return self.proc.pid
        import time
        while time.monotonic() < deadline:
            pid = _child_pid(self.proc.pid)
            if pid:
                return pid
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited at once ({self.proc.returncode})\n{self.log()}")
            time.sleep(0.05)
        pytest.fail("the server process did not appear under unshare")

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.stderr.close()


@pytest.fixture
def server_setup(renders, tmp_path):
    binary = os.environ.get("NEXADB_SERVER_BIN", "")
    if not binary or not os.path.isfile(binary):
        pytest.skip("nexadb-server is not built in this tree yet")
    binary = os.path.abspath(binary)
    objs, _ = renders["kustomize-base"]
    (tmp_path / "cwd").mkdir()
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    key = _random_key()
    key_file = secret_dir / "api-key"
    key_file.write_text(key)  # as the README's command writes it: no newline
    # As the kubelet mounts it for a non-root pod: root:<fsGroup> 0440. The server accepts group
    # read only on a root-owned file, so a non-root test run uses 0400, its own file.
    key_file.chmod(0o440 if os.geteuid() == 0 else 0o400)
    env, grace = _pod_env(objs, tmp_path / "data", key_file)
    return binary, env, grace, key, tmp_path


def _wait_serving(target, service, deadline):
    import time
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    last = None
    with grpc.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            try:
                # No metadata: the kubelet's gRPC probe sends no API key.
                r = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                last = r.status
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as e:
                last = e.code()
                if e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND,
                                grpc.StatusCode.PERMISSION_DENIED):
                    pytest.fail(f"health check for {service!r} answered {e.code()}: the kubelet's "
                                f"probe would fail forever ({e.details()})")
            time.sleep(0.2)
    pytest.fail(f"health {service!r} not SERVING in time (last: {last})")


def test_server_runs_with_the_manifests_configuration(server_setup):
    """Start as PID 1 with the pod's env; probes pass without a key; SIGTERM exits 0 in time."""
    import signal
    import time
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    binary, env, grace, key, tmp = server_setup
    srv = _Server(binary, env, tmp)
    try:
        deadline = time.monotonic() + 60
        pid = srv.server_pid(deadline)
        for service in ("", HEALTH_SERVICE):
            _wait_serving(env["NEXADB_GRPC_ADDR"], service, deadline)
        assert srv.proc.poll() is None, srv.log()

        # The mounted key file is the one in force: a wrong key is refused on a real method.
        with grpc.insecure_channel(env["NEXADB_GRPC_ADDR"]) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5,
                              metadata=[("x-api-key", key)]).status == \
                health_pb2.HealthCheckResponse.SERVING
            call = ch.unary_unary("/nexadb.v1.DocumentService/ListCollections",
                                  request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)

            def code(api_key):
                try:
                    call(b"", timeout=5, metadata=[("x-api-key", api_key)])
                    return grpc.StatusCode.OK
                except grpc.RpcError as e:
                    return e.code()

            assert code(key) not in (grpc.StatusCode.UNAUTHENTICATED,
                                     grpc.StatusCode.PERMISSION_DENIED), "mounted key refused"
            assert code("0" * 64) == grpc.StatusCode.UNAUTHENTICATED, "a wrong key was accepted"

        # The kubelet's stop: SIGTERM to PID 1 (the server itself, no init in between).
        started = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        try:
            rc = srv.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {grace} s (terminationGracePeriodSeconds) after "
                        f"SIGTERM; the kubelet would SIGKILL it\n{srv.log()}")
        took = time.monotonic() - started
        assert rc == 0, f"exit {rc} after SIGTERM\n{srv.log()}"
        log = srv.log()
    finally:
        srv.kill()

    # Logs: JSON lines on stderr. State: only under the data directory (the root is read-only).
    lines = [ln for ln in log.splitlines() if ln.strip()]
    assert lines
    for ln in lines:
        json.loads(ln)
    assert list((tmp / "cwd").iterdir()) == [], "the server wrote outside its data directory"
    assert (tmp / "data").is_dir()
    assert took < grace


def test_server_http_port_serves_status_and_metrics(server_setup):
    """GET /status without a key; GET /metrics with the mounted key as the ServiceMonitor sends
    it (Bearer), and 401 without one, on the HTTP port the Services expose."""
    import time
    import urllib.error
    import urllib.request

    binary, env, grace, key, tmp = server_setup
    needed = _run(["readelf", "-d", binary]).stdout
    if "libmicrohttpd" not in needed:
        pytest.skip("this nexadb-server has no HTTP shim linked yet (no libmicrohttpd)")
    srv = _Server(binary, env, tmp)
    try:
        deadline = time.monotonic() + 60
        _wait_serving(env["NEXADB_GRPC_ADDR"], "", deadline)
        base = f"http://{env['NEXADB_HTTP_ADDR']}"
        with urllib.request.urlopen(f"{base}/status", timeout=5) as r:
            assert r.status == 200
        try:
            urllib.request.urlopen(f"{base}/metrics", timeout=5)
            pytest.fail("/metrics answered without an API key")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        req = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
            body = r.read().decode()
            assert re.search(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+", body, re.M), body[:500]
    finally:
        srv.kill()


def test_helm_tls(helm):
    """tls.enabled mounts the kubernetes.io/tls Secret and points the server at it; the probes
    move off the kubelet's plaintext gRPC check; the ServiceMonitor scrapes over HTTPS."""
    key = f"apiKey.value={_random_key()}"
    objs = _docs(helm.template(sets=[key, "tls.enabled=true", "tls.secretName=nexadb-tls",
                                     "serviceMonitor.enabled=true"]).stdout)
    sts = _one(objs, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["NEXADB_TLS_CERT"] == "/etc/nexadb/tls/tls.crt"
    assert env["NEXADB_TLS_KEY"] == "/etc/nexadb/tls/tls.key"
    assert "NEXADB_TLS_CLIENT_CA" not in env and "NEXADB_TLS_PEER_CA" not in env  # one node calls no other
    mount = [m for m in c["volumeMounts"] if m["name"] == "tls"][0]
    assert mount["mountPath"] == "/etc/nexadb/tls" and mount["readOnly"]
    vol = [v for v in pod["volumes"] if v["name"] == "tls"][0]
    assert vol["secret"]["secretName"] == "nexadb-tls"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"scheme": "HTTPS", "path": "/status", "port": 6969}, probe
        assert "grpc" not in c[probe]
    ep = _one(objs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert ep["scheme"] == "https" and ep["tlsConfig"]["ca"]["secret"] == {"name": "nexadb-tls", "key": "ca.crt"}
    for obj in objs:
        if obj["kind"] == "ServiceMonitor":
            assert not list(jsonschema.Draft202012Validator(SERVICEMONITOR_SCHEMA).iter_errors(obj))
        else:
            kubernetes_validate.validate(obj, K8S_VERSIONS[-1], strict=True)

    # mTLS: the client CA comes from the same Secret; the kubelet has no client certificate
    objs = _docs(helm.template(sets=[key, "tls.enabled=true", "tls.secretName=nexadb-tls",
                                     "tls.requireClientCerts=true", "serviceMonitor.enabled=true"]).stdout)
    c = _one(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["NEXADB_TLS_CLIENT_CA"] == "/etc/nexadb/tls/ca.crt"
    assert c["readinessProbe"]["tcpSocket"] == {"port": 6970}
    ep = _one(objs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert ep["tlsConfig"]["keySecret"] == {"name": "nexadb-tls", "key": "tls.key"}
    assert not list(jsonschema.Draft202012Validator(SERVICEMONITOR_SCHEMA).iter_errors(_one(objs, "ServiceMonitor")))

    # off by default: no TLS variables, the gRPC probes as before
    c = _one(_docs(helm.template(sets=[key]).stdout), "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert not [e for e in c["env"] if e["name"].startswith("NEXADB_TLS")]
    assert c["readinessProbe"]["grpc"] == {"port": 6970, "service": "nexadb.v1.DocumentService"}


@pytest.mark.parametrize("sets,message", [
    (["tls.enabled=true"], "tls.enabled needs tls.secretName"),
    (["tls.requireClientCerts=true"], "tls.requireClientCerts needs tls.enabled"),
    (["tls.enabled=yes"], "tls/enabled"),
])
def test_helm_refuses_bad_tls_values(helm, sets, message):
    proc = helm.template(sets=[f"apiKey.value={_random_key()}", *sets], check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
