#!/usr/bin/env python3
"""Renders deploy/kubernetes/ for `podman kube play` (podman 4.3), for
tools/docker-smoke.sh step h. Prints one multi-document YAML file.

    kube-play-render.py KUBE_DIR IMAGE NAME BACKEND TLS_DIR

What it changes, and why (everything else is passed through as shipped):
  - names: the Deployment and Service become NAME, the ConfigMap NAME-config
    (podman names the pod NAME-pod-0 and the ConfigMap's volume after it),
    so that the test's objects never clash with anyone else's;
  - the Deployment: 1 replica (each replica would be a pod of its own;
    the test talks to one);
    `image` is the image just built, with imagePullPolicy Never (there is
    no registry);
  - container ports are dropped and the probes' named ports replaced by
    their numbers: podman 4.3 turns every containerPort into a host port
    mapping and refuses those outside a bridge/slirp4netns network, and
    the test runs the pod with --network none (its own loopback only);
  - the Secret volume becomes a hostPath volume of TLS_DIR holding the
    same two files (tls.crt, tls.key): podman 4.3.1 panics (nil pointer in
    VolumeFromSecret) on any `secret:` volume;
  - emptyDir volumes are renamed NAME-<volume>: podman 4.3 makes each a
    named volume called after the pod's volume (on disk: medium and
    sizeLimit are ignored), shared by every pod using that name and left
    behind by `podman kube down`;
  - the ConfigMap's upstream (the placeholder my-app.default.svc...) points
    at BACKEND, a host:port inside the pod's network namespace; its
    max_addresses (for DNS names only) goes with it. podman 4.3 ignores
    hostAliases, so the name cannot be kept.
The ConfigMap's listeners, admin address, drain timings, watch_config and
the pod's security settings are used unchanged.
"""
import sys

import yaml


def load(kube_dir, name):
    with open(f"{kube_dir}/{name}") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if len(docs) != 1:
        sys.exit(f"kube-play-render: {name}: expected one document, got {len(docs)}")
    return docs[0]


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    kube_dir, image, name, backend, tls_dir = sys.argv[1:]
    cm = load(kube_dir, "configmap.yaml")
    dep = load(kube_dir, "deployment.yaml")
    svc = load(kube_dir, "service.yaml")

    cm_old = cm["metadata"]["name"]
    cm["metadata"]["name"] = f"{name}-config"
    cfg = yaml.safe_load(cm["data"]["sluice.yaml"])
    servers = cfg["upstreams"]["app"]["servers"]
    if len(servers) != 1:
        sys.exit("kube-play-render: expected one server in upstreams.app")
    # Edit the text, not a re-dump of it, so that the comments and layout
    # the pod sees are the shipped ones.
    text = cm["data"]["sluice.yaml"]
    old = servers[0]["address"]
    lines = []
    for line in text.splitlines(keepends=True):
        if line.strip() == f"- address: {old}":
            line = line.replace(old, backend)
        elif line.strip().startswith("max_addresses:"):
            continue
        lines.append(line)
    new_text = "".join(lines)
    new_cfg = yaml.safe_load(new_text)
    if new_cfg["upstreams"]["app"]["servers"] != [{"address": backend}]:
        sys.exit(f"kube-play-render: could not rewrite the upstream: "
                 f"{new_cfg['upstreams']['app']['servers']}")
    cm["data"]["sluice.yaml"] = new_text

    dep["metadata"]["name"] = name
    dep["spec"]["replicas"] = 1
    pod = dep["spec"]["template"]["spec"]
    if len(pod["containers"]) != 1:
        sys.exit("kube-play-render: expected one container")
    c = pod["containers"][0]
    c["image"] = image
    c["imagePullPolicy"] = "Never"
    ports = {p["name"]: p["containerPort"] for p in c.pop("ports", [])}
    for probe in ("readinessProbe", "livenessProbe"):
        get = (c.get(probe) or {}).get("httpGet")
        if get and isinstance(get.get("port"), str):
            get["port"] = ports[get["port"]]
    renamed = {}
    for v in pod["volumes"]:
        if "emptyDir" in v:
            renamed[v["name"]] = f"{name}-{v['name']}"
            v["name"] = renamed[v["name"]]
    for m in c.get("volumeMounts", []):
        m["name"] = renamed.get(m["name"], m["name"])
    secrets = 0
    for v in pod["volumes"]:
        if "configMap" in v and v["configMap"]["name"] == cm_old:
            v["configMap"]["name"] = f"{name}-config"
        elif "secret" in v:
            del v["secret"]
            v["hostPath"] = {"path": tls_dir, "type": "Directory"}
            secrets += 1
    if secrets != 1:
        sys.exit(f"kube-play-render: expected one secret volume, got {secrets}")

    svc["metadata"]["name"] = name  # podman ignores Services; kept to show it

    yaml.safe_dump_all([cm, dep, svc], sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
