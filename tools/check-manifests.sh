#!/usr/bin/env bash
# Checks everything under deploy/ without a cluster, an engine or systemd
# running:
#
#   tools/check-manifests.sh [SLUICE_BINARY]
#
# SLUICE_BINARY defaults to build/src/sluice; when that does not exist either,
# the checks that need it are reported as skipped.
#
#   - every *.yaml / *.yml parses, and is recognised (a Kubernetes object, a
#     compose file, or a sluice config);
#   - every sluice config (files, the ConfigMap's embedded sluice.yaml, the
#     compose services' mounted configs) passes `sluice -t`;
#   - Kubernetes: required fields; probes on the config's admin port;
#     Prometheus scrape annotations on the admin port; the ServiceMonitor's
#     Service port reaching the admin port; the config's TLS files are keys
#     of a mounted kubernetes.io/tls Secret (mounted beside /etc/sluice, not
#     in it), and the embedded config passes `sluice -t` with a generated
#     self-signed certificate in the Secret's place; examples that say
#     "NOT in kustomization.yaml" are left out of it, all others listed;
#     terminationGracePeriodSeconds > drain_delay + shutdown_timeout; the
#     ConfigMap mounted as a folder (no subPath); /tmp writable for the pid
#     file on a read-only root; selectors, Service target ports, HPA and PDB
#     targets and kustomization resources all resolve;
#   - compose: every service has an image or build, mounted folders exist,
#     the proxy's upstreams are service names (or services' fixed addresses
#     inside the subnet),
#     stop_grace_period > drain_delay + shutdown_timeout;
#   - Grafana dashboards (deploy/**/*.json) parse (the metrics they query are
#     checked against a real scrape by tests/e2e/grafana_dashboard.sh);
#   - systemd: `systemd-analyze verify` of each unit (skipped with a message
#     when systemd-analyze is missing), TimeoutStopSec against the example
#     config, pid_file inside RuntimeDirectory.
#
# Needs python3 with PyYAML (python3-yaml, installed with apt if missing).
# Exit status: 0 when everything checked passed, 1 otherwise.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE=${1:-$ROOT/build/src/sluice}

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || true)
if [ -z "$PY" ] || ! "$PY" -c 'import yaml' 2>/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "check-manifests: installing python3-yaml" >&2
    { apt-get install -y -qq --no-install-recommends python3 python3-yaml >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-yaml >/dev/null; }; } ||
      { echo "check-manifests: cannot install python3-yaml" >&2; exit 1; }
    PY=/usr/bin/python3
  else
    echo "check-manifests: needs python3 with PyYAML (apt-get install python3-yaml)" >&2
    exit 1
  fi
fi

if [ -x "$SLUICE" ]; then
  SLUICE=$(cd "$(dirname "$SLUICE")" && pwd)/$(basename "$SLUICE")
elif [ $# -ge 1 ]; then
  echo "check-manifests: $SLUICE is not an executable sluice binary" >&2
  exit 1
else
  echo "check-manifests: no sluice binary at $SLUICE: the sluice -t checks are skipped (pass one as \$1)" >&2
  SLUICE=""
fi

SYSTEMD_ANALYZE=$(command -v systemd-analyze || true)

exec "$PY" - "$ROOT" "$SLUICE" "$SYSTEMD_ANALYZE" <<'PYTHON'
import base64
import binascii
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

root, sluice, systemd_analyze = sys.argv[1], sys.argv[2], sys.argv[3]
deploy = os.path.join(root, "deploy")
passed = 0
failed = 0
skipped = 0


def rel(path):
    return os.path.relpath(path, root)


def ok(what):
    global passed
    passed += 1
    print(f"ok    {what}")


def fail(what):
    global failed
    failed += 1
    print(f"FAIL  {what}")


def skip(what):
    global skipped
    skipped += 1
    print(f"skip  {what}")


def check(cond, what, why=""):
    if cond:
        ok(what)
    else:
        fail(what + (f": {why}" if why else ""))
    return cond


def dig(obj, *keys):
    for k in keys:
        if isinstance(k, int):
            if not isinstance(obj, list) or len(obj) <= k:
                return None
        elif not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def seconds(text):
    """A sluice duration ("5s", "250ms", "0") or a compose/systemd one ("40s", "1m30s", "45")."""
    if text is None:
        return None
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        return float(text)
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+)(ms|s|m|h|min)", text):
        if m.start() != pos:
            return None
        total += int(m.group(1)) * UNITS.get(m.group(2), 60)
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def stop_budget(cfg):
    """drain_delay + shutdown_timeout of a sluice config (defaults 0 and 30s)."""
    return seconds(cfg.get("drain_delay", "0")) + seconds(cfg.get("shutdown_timeout", "30s"))


def port_of(address):
    m = re.search(r":(\d+)$", str(address))
    return int(m.group(1)) if m else None


def host_of(address):
    return str(address).rsplit(":", 1)[0].strip("[]")


# --- sluice -t ---------------------------------------------------------------
def sluice_test(path, label):
    if not sluice:
        skip(f"{label}: sluice -t (no binary)")
        return
    r = subprocess.run([sluice, "-t", "-c", path], capture_output=True, text=True)
    check(r.returncode == 0, f"{label}: sluice -t",
          (r.stdout + r.stderr).strip().replace("\n", " | "))


def sluice_test_text(text, label):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
        name = f.name
    try:
        sluice_test(name, label)
    finally:
        os.unlink(name)


# --- parse everything -------------------------------------------------------
files = []
for dirpath, dirnames, filenames in os.walk(deploy):
    dirnames.sort()
    for fn in sorted(filenames):
        if fn.endswith((".yaml", ".yml")):
            files.append(os.path.join(dirpath, fn))

k8s = []       # (path, doc)
composes = []  # (path, doc)
configs = {}   # path -> doc
for path in files:
    try:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        fail(f"{rel(path)}: parses: {str(e).splitlines()[0]} ({getattr(e, 'problem_mark', '')})")
        continue
    ok(f"{rel(path)}: parses ({len(docs)} document{'s' if len(docs) != 1 else ''})")
    for doc in docs:
        if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
            k8s.append((path, doc))
        elif isinstance(doc, dict) and "services" in doc:
            composes.append((path, doc))
        elif isinstance(doc, dict) and "listeners" in doc:
            configs[path] = doc
        else:
            fail(f"{rel(path)}: not recognised as a Kubernetes object, compose file or sluice config")

for path in configs:
    sluice_test(path, rel(path))

# --- Kubernetes -------------------------------------------------------------
by_kind = {}
for path, doc in k8s:
    name = dig(doc, "metadata", "name")
    label = f"{rel(path)}: {doc['kind']}" + (f"/{name}" if name else "")
    if doc["kind"] != "Kustomization":
        check(bool(name), f"{label}: metadata.name")
    by_kind.setdefault(doc["kind"], []).append((path, doc, label))

configmaps = {}  # name -> {key: parsed sluice config}
configmap_texts = {}  # (name, key) -> (text, label)
for path, doc, label in by_kind.get("ConfigMap", []):
    data = doc.get("data") or {}
    check(bool(data), f"{label}: data")
    parsed = {}
    for key, text in data.items():
        if not key.endswith((".yaml", ".yml")):
            continue
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as e:
            fail(f"{label}: data.{key} parses: {str(e).splitlines()[0]}")
            continue
        if isinstance(cfg, dict) and "listeners" in cfg:
            parsed[key] = cfg
            configmap_texts[(doc["metadata"]["name"], key)] = (text, label)
    configmaps[doc["metadata"]["name"]] = parsed


secrets = {}  # name -> data keys
for path, doc, label in by_kind.get("Secret", []):
    data = dict(doc.get("data") or {})
    data.update({k: None for k in doc.get("stringData") or {}})
    if doc.get("type") == "kubernetes.io/tls":
        check("tls.crt" in data and "tls.key" in data, f"{label}: a kubernetes.io/tls Secret has tls.crt and tls.key")
    for k, v in (doc.get("data") or {}).items():
        try:
            base64.b64decode(str(v), validate=True)
            good = True
        except (binascii.Error, ValueError):
            good = False
        check(good, f"{label}: data.{k} is base64")
    secrets[doc["metadata"]["name"]] = set(data)


def tls_files(cfg):
    """Every certificate and key file a sluice config reads for its listeners."""
    out = []
    for lst in cfg.get("listeners") or []:
        for c in dig(lst, "tls", "certificates") or []:
            out += [c.get(k) for k in ("cert", "key", "ocsp") if c.get(k)]
    return out


_generated_tls = None


def generated_tls_dir():
    """A folder with a throw-away self-signed tls.crt/tls.key (openssl)."""
    global _generated_tls
    if _generated_tls is None:
        d = tempfile.mkdtemp(prefix="check-manifests-tls.")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-days", "1", "-subj", "/CN=check-manifests.invalid",
                            "-keyout", os.path.join(d, "tls.key"), "-out", os.path.join(d, "tls.crt")],
                           capture_output=True, text=True)
        _generated_tls = d if r.returncode == 0 else ""
    return _generated_tls


config_tested = set()  # (configmap, key) already run through sluice -t


def labels_match(selector, labels):
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


deployments = {}
for path, doc, label in by_kind.get("Deployment", []):
    check(doc.get("apiVersion") == "apps/v1", f"{label}: apiVersion apps/v1", str(doc.get("apiVersion")))
    spec = doc.get("spec") or {}
    tmpl_labels = dig(spec, "template", "metadata", "labels")
    check(labels_match(dig(spec, "selector", "matchLabels"), tmpl_labels),
          f"{label}: spec.selector.matchLabels matches the pod template's labels")
    pod = dig(spec, "template", "spec") or {}
    containers = pod.get("containers") or []
    if not check(bool(containers), f"{label}: spec.template.spec.containers"):
        continue
    c = containers[0]
    deployments[doc["metadata"]["name"]] = (doc, c)
    check(bool(c.get("image")), f"{label}: containers[0].image")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    check(bool(ports), f"{label}: containers[0].ports")
    res = c.get("resources") or {}
    check(bool(dig(res, "requests", "cpu")) and bool(dig(res, "requests", "memory")),
          f"{label}: resources.requests cpu and memory")
    check(bool(dig(res, "limits", "memory")), f"{label}: resources.limits.memory")

    # The sluice config this pod runs: the ConfigMap mounted at /etc/sluice.
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = {m.get("mountPath"): m for m in c.get("volumeMounts") or []}
    cfg = None
    conf_mount = mounts.get("/etc/sluice")
    if check(conf_mount is not None, f"{label}: a volume mounted at /etc/sluice"):
        check("subPath" not in conf_mount, f"{label}: /etc/sluice mounted as a folder (no subPath)",
              "subPath mounts are not updated when the ConfigMap changes")
        cm_name = dig(volumes.get(conf_mount.get("name")), "configMap", "name")
        if check(cm_name in configmaps, f"{label}: mounts ConfigMap {cm_name!r}", "no such ConfigMap under deploy/"):
            cfg = configmaps[cm_name].get("sluice.yaml")
            check(cfg is not None, f"{label}: ConfigMap {cm_name} has a sluice.yaml")

    # Secret volumes: what the config reads from them, and sluice -t with a
    # generated certificate in the Secret's place.
    secret_mounts = {}  # mountPath -> secret name
    for mp, m in mounts.items():
        sname = dig(volumes.get(m.get("name")), "secret", "secretName")
        if sname:
            secret_mounts[mp.rstrip("/")] = sname
            check(sname in secrets, f"{label}: Secret {sname!r} has an example under deploy/",
                  "no such Secret")
            if conf_mount is not None:
                check(not mp.startswith("/etc/sluice/"), f"{label}: Secret {sname} mounted beside, not inside, /etc/sluice",
                      "the ConfigMap's folder is read-only: the runtime cannot create a mount point in it")
    if cfg is not None:
        for f in tls_files(cfg):
            d, base = os.path.dirname(f), os.path.basename(f)
            sname = secret_mounts.get(d)
            if check(sname is not None, f"{label}: {f} is in a mounted Secret"):
                check(base in secrets.get(sname, set()), f"{label}: {f} is a key of Secret {sname}",
                      f"keys: {', '.join(sorted(secrets.get(sname, set())))}")
        text, cm_label = configmap_texts[(cm_name, "sluice.yaml")]
        if secret_mounts and tls_files(cfg):
            gen = generated_tls_dir()
            if check(bool(gen), f"{label}: openssl made a test certificate for the Secret's files"):
                for mp in secret_mounts:
                    text = text.replace(mp + "/", gen + "/")
                sluice_test_text(text, f"{cm_label}: data.sluice.yaml (Secret files: a generated certificate)")
        else:
            sluice_test_text(text, f"{cm_label}: data.sluice.yaml")
        config_tested.add((cm_name, "sluice.yaml"))

    # Prometheus scrape annotations on the pod template.
    ann = dig(spec, "template", "metadata", "annotations") or {}
    if "prometheus.io/scrape" in ann and cfg is not None:
        admin = dig(cfg, "admin", "address")
        check(ann.get("prometheus.io/scrape") == "true", f"{label}: prometheus.io/scrape is \"true\"")
        check(str(ann.get("prometheus.io/port")) == str(port_of(admin)),
              f"{label}: prometheus.io/port {ann.get('prometheus.io/port')} is the admin port",
              f"admin.address is {admin}")
        check(ann.get("prometheus.io/path", "/metrics") == "/metrics", f"{label}: prometheus.io/path is /metrics")
        check(all(isinstance(v, str) for v in ann.values()), f"{label}: annotations are strings")

    sc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    check(sc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, f"{label}: runAsNonRoot")
    if csc.get("readOnlyRootFilesystem"):
        ok(f"{label}: readOnlyRootFilesystem")
        if cfg and cfg.get("pid_file"):
            pid_dir = os.path.dirname(cfg["pid_file"])
            check(any(pid_dir == m or pid_dir.startswith(m.rstrip("/") + "/") for m in mounts
                      if "emptyDir" in (volumes.get(mounts[m].get("name")) or {})),
                  f"{label}: pid_file {cfg['pid_file']} is on a writable emptyDir")
    else:
        fail(f"{label}: readOnlyRootFilesystem")

    for probe, path_want in (("readinessProbe", "/ready"), ("livenessProbe", "/healthz")):
        p = c.get(probe)
        if not check(isinstance(p, dict), f"{label}: {probe}"):
            continue
        if "httpGet" in p:
            check(p["httpGet"].get("path") == path_want, f"{label}: {probe} GETs {path_want}",
                  str(p["httpGet"].get("path")))
            port = p["httpGet"].get("port")
            port = ports.get(port, port) if isinstance(port, str) else port
            if cfg is not None:
                admin = dig(cfg, "admin", "address")
                if check(admin is not None, f"{label}: the config has an admin listener for {probe}"):
                    check(port == port_of(admin), f"{label}: {probe} port {port} is the admin port",
                          f"admin.address is {admin}")
                    check(host_of(admin) not in ("127.0.0.1", "localhost", "::1"),
                          f"{label}: admin listens beyond loopback (kubelet probes the pod IP)", str(admin))
        elif "exec" in p:
            cmd = " ".join(dig(p, "exec", "command") or [])
            check("sluice health" in cmd or "sluice" in cmd, f"{label}: {probe} execs sluice health", cmd)
        else:
            fail(f"{label}: {probe} is neither httpGet nor exec")

    grace = pod.get("terminationGracePeriodSeconds", 30)
    if cfg is not None:
        need = stop_budget(cfg)
        check(grace > need,
              f"{label}: terminationGracePeriodSeconds {grace} > drain_delay + shutdown_timeout ({need:g}s)")

for (cm_name, key), (text, cm_label) in configmap_texts.items():
    if (cm_name, key) not in config_tested:
        sluice_test_text(text, f"{cm_label}: data.{key}")

services = {}  # name -> (doc, container ports of the pods it selects)
for path, doc, label in by_kind.get("Service", []):
    spec = doc.get("spec") or {}
    sports = spec.get("ports") or []
    check(bool(sports) and all("port" in p for p in sports), f"{label}: spec.ports with port")
    targets = [(n, d, c) for n, (d, c) in deployments.items()
               if labels_match(spec.get("selector"), dig(d, "spec", "template", "metadata", "labels"))]
    if check(bool(targets), f"{label}: selector matches a Deployment's pods"):
        cports = {p.get("name"): p.get("containerPort") for p in targets[0][2].get("ports") or []}
        services[doc["metadata"]["name"]] = (doc, cports, targets[0][1])
        for p in sports:
            t = p.get("targetPort", p.get("port"))
            check(t in cports if isinstance(t, str) else t in cports.values(),
                  f"{label}: targetPort {t} is a container port")

for path, doc, label in by_kind.get("HorizontalPodAutoscaler", []):
    spec = doc.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    check(ref.get("kind") == "Deployment" and ref.get("name") in deployments,
          f"{label}: scaleTargetRef is Deployment/{ref.get('name')}")
    check(1 <= spec.get("minReplicas", 1) <= spec.get("maxReplicas", 0),
          f"{label}: 1 <= minReplicas <= maxReplicas")
    if ref.get("name") in deployments:
        _, c = deployments[ref["name"]]
        for m in spec.get("metrics") or []:
            r = dig(m, "resource", "name")
            if r:
                check(bool(dig(c, "resources", "requests", r)),
                      f"{label}: the target requests {r} (utilization is relative to it)")

for path, doc, label in by_kind.get("PodDisruptionBudget", []):
    sel = dig(doc, "spec", "selector", "matchLabels")
    check(any(labels_match(sel, dig(d, "spec", "template", "metadata", "labels"))
              for d, _ in deployments.values()), f"{label}: selector matches a Deployment's pods")

for path, doc, label in by_kind.get("ServiceMonitor", []):
    check(doc.get("apiVersion") == "monitoring.coreos.com/v1", f"{label}: apiVersion monitoring.coreos.com/v1")
    sel = dig(doc, "spec", "selector", "matchLabels")
    picked = [(n, s) for n, s in services.items() if labels_match(sel, dig(s[0], "metadata", "labels"))]
    if not check(len(picked) == 1, f"{label}: selector matches exactly one Service",
                 ", ".join(n for n, _ in picked) or "none"):
        continue
    sname, (sdoc, cports, dep) = picked[0]
    sports = {p.get("name"): p for p in dig(sdoc, "spec", "ports") or []}
    eps = dig(doc, "spec", "endpoints") or []
    check(bool(eps), f"{label}: spec.endpoints")
    cm_name = None
    for v in dig(dep, "spec", "template", "spec", "volumes") or []:
        cm_name = cm_name or dig(v, "configMap", "name")
    cfg = (configmaps.get(cm_name) or {}).get("sluice.yaml")
    for ep in eps:
        p = sports.get(ep.get("port"))
        if not check(p is not None, f"{label}: endpoint port {ep.get('port')!r} names a port of Service {sname}"):
            continue
        check(ep.get("path", "/metrics") == "/metrics", f"{label}: endpoint path is /metrics")
        t = p.get("targetPort", p.get("port"))
        cport = cports.get(t) if isinstance(t, str) else t
        if cfg is not None:
            admin = dig(cfg, "admin", "address")
            check(cport == port_of(admin), f"{label}: endpoint {ep.get('port')} reaches the admin port",
                  f"container port {cport}, admin.address {admin}")

for path, doc, label in by_kind.get("Kustomization", []):
    base = os.path.dirname(path)
    res = doc.get("resources") or []
    missing = [r for r in res if not os.path.exists(os.path.join(base, r))]
    check(not missing, f"{label}: resources exist", ", ".join(missing))
    others = sorted({os.path.basename(p) for p, d in k8s
                     if os.path.dirname(p) == base and d.get("kind") != "Kustomization"})
    # An example kept out of the kustomization on purpose says so in its
    # header ("NOT in kustomization.yaml") and must then really be left out.
    optional = set()
    for f in others:
        with open(os.path.join(base, f)) as fh:
            head = "".join(line for line in fh if line.startswith("#"))
        if "NOT in kustomization.yaml" in head:
            optional.add(f)
    left = [f for f in others if f not in res and f not in optional]
    check(not left, f"{label}: lists every manifest beside it", ", ".join(left))
    for f in sorted(optional):
        check(f not in res, f"{label}: leaves out {f}, as its header says")

# --- Grafana dashboards -------------------------------------------------------
for dirpath, dirnames, filenames in os.walk(deploy):
    dirnames.sort()
    for fn in sorted(filenames):
        if not fn.endswith(".json"):
            continue
        jpath = os.path.join(dirpath, fn)
        try:
            with open(jpath) as f:
                dash = json.load(f)
        except ValueError as e:
            fail(f"{rel(jpath)}: parses as JSON: {e}")
            continue
        ok(f"{rel(jpath)}: parses as JSON")
        if "panels" in dash:
            check(bool(dash.get("uid")) and bool(dash.get("title")), f"{rel(jpath)}: dashboard uid and title")
            # (Every metric a panel queries is checked against a real scrape
            # by tests/e2e/grafana_dashboard.sh.)

# --- compose ----------------------------------------------------------------
for path, doc in composes:
    base = os.path.dirname(path)
    services = doc.get("services") or {}
    check(bool(services), f"{rel(path)}: services")
    subnets = []
    for net in (doc.get("networks") or {}).values():
        for c in dig(net, "ipam", "config") or []:
            if c.get("subnet"):
                subnets.append(ipaddress.ip_network(c["subnet"]))
    fixed = {}  # ip -> service
    svc_cfg = {}
    for name, svc in services.items():
        label = f"{rel(path)}: service {name}"
        check(bool(svc.get("image") or svc.get("build")), f"{label}: image or build")
        b = svc.get("build")
        if b:
            ctx = os.path.join(base, b if isinstance(b, str) else b.get("context", "."))
            df = "Dockerfile" if isinstance(b, str) else b.get("dockerfile", "Dockerfile")
            check(os.path.isfile(os.path.join(ctx, df)), f"{label}: build context has {df}")
        for v in svc.get("volumes") or []:
            src, _, rest = str(v).partition(":")
            dst = rest.split(":")[0]
            if src.startswith((".", "/")):
                host = os.path.normpath(os.path.join(base, src))
                check(os.path.exists(host), f"{label}: mounted {src} exists")
                if dst == "/etc/sluice":
                    cfgp = os.path.join(host, "sluice.yaml")
                    if check(cfgp in configs, f"{label}: {src}/sluice.yaml is a sluice config"):
                        svc_cfg[name] = configs[cfgp]
        for net in (svc.get("networks") or {}).values() if isinstance(svc.get("networks"), dict) else []:
            ip = (net or {}).get("ipv4_address")
            if ip:
                check(any(ipaddress.ip_address(ip) in s for s in subnets),
                      f"{label}: ipv4_address {ip} inside the network's subnet")
                fixed[ip] = name
        if name in svc_cfg:
            grace = seconds(svc.get("stop_grace_period", "10s"))
            need = stop_budget(svc_cfg[name])
            check(grace is not None and grace > need,
                  f"{label}: stop_grace_period {svc.get('stop_grace_period', '10s')} > drain_delay + shutdown_timeout ({need:g}s)")
    for name, cfg in svc_cfg.items():
        for up, u in (cfg.get("upstreams") or {}).items():
            for s in u.get("servers") or []:
                addr = s.get("address", "")
                host, port = host_of(addr), port_of(addr)
                label = f"{rel(path)}: {name} upstream {up} server {addr}"
                try:
                    ipaddress.ip_address(host)
                    is_ip = True
                except ValueError:
                    is_ip = False
                if is_ip:
                    # A fixed address must be a service's, inside the subnet.
                    in_net = any(ipaddress.ip_address(host) in sn for sn in subnets)
                    if not in_net:
                        continue
                    target = fixed.get(host)
                    check(target is not None, f"{label} is a service's ipv4_address")
                else:
                    # A name: compose's DNS answers service names.
                    target = host if host in services else None
                    check(target is not None, f"{label} names a service of the compose file")
                if target is not None:
                    ports = {port_of(l.get("address")) for l in (svc_cfg.get(target) or {}).get("listeners", [])}
                    check(port in ports or target not in svc_cfg, f"{label}: {target} listens on {port}")

# --- systemd ----------------------------------------------------------------
units = []
for dirpath, _, filenames in os.walk(deploy):
    units += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith((".service", ".socket"))]
for unit in units:
    label = rel(unit)
    text = open(unit).read()
    kv = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z]+)=(.*)$", line)
        if m:
            kv.setdefault(m.group(1), m.group(2).strip())
    example = os.path.join(os.path.dirname(unit), "sluice.yaml")
    cfg = configs.get(example)
    if cfg is not None:
        t = seconds(kv.get("TimeoutStopSec", "90s"))
        need = stop_budget(cfg)
        check(t is not None and t > need,
              f"{label}: TimeoutStopSec {kv.get('TimeoutStopSec')} > drain_delay + shutdown_timeout of {rel(example)} ({need:g}s)")
        rd = kv.get("RuntimeDirectory")
        check(bool(rd) and str(cfg.get("pid_file", "")).startswith(f"/run/{rd}/"),
              f"{label}: pid_file {cfg.get('pid_file')} is inside RuntimeDirectory=/run/{rd}")
    for cmd in ("ExecStartPre", "ExecStart", "ExecReload", "ExecStop"):
        check(cmd in kv and "sluice" in kv[cmd], f"{label}: {cmd} runs sluice")
    if not systemd_analyze:
        skip(f"{label}: systemd-analyze verify (systemd-analyze not installed)")
        continue
    if not sluice:
        skip(f"{label}: systemd-analyze verify (needs a sluice binary for the Exec paths)")
        continue
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, os.path.basename(unit))
        with open(copy, "w") as f:
            f.write(text.replace("/usr/local/bin/sluice", sluice))
        r = subprocess.run([systemd_analyze, "verify", copy], capture_output=True, text=True)
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and not out, f"{label}: systemd-analyze verify",
              out.replace("\n", " | ") or f"exit {r.returncode}")

if _generated_tls:
    shutil.rmtree(_generated_tls, ignore_errors=True)

summary = f"check-manifests: {passed} passed, {failed} failed"
print(summary + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PYTHON
