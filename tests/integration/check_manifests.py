#!/usr/bin/python3
"""Checks docker/ (Dockerfile, compose.yaml, k8s/*.yaml) against the spillwayd binary.

  check_manifests.py --spillwayd PATH [--spillway PATH | --build-dir DIR] [--source-dir DIR]
                     [--self-test]

What "against the binary" means:
  * every SPILLWAY_* name (ConfigMap key, container env, compose environment,
    Dockerfile ENV) is a setting `spillwayd --help` lists;
  * container ports, Service target ports, probe ports, EXPOSE and compose port
    mappings equal spillwayd's HTTP_PORT / GRPC_PORT (the configured value, else the
    --help default);
  * the probe paths are /healthz and /readyz, and a spillwayd started with the
    ConfigMap's settings (and again with compose's) answers them with 200, serves the
    HPA's metric on /metrics, passes the Dockerfile's HEALTHCHECK command and exits 0
    on SIGTERM;
  * the spill emptyDir is mounted at SPILLWAY_FILE_UPLOAD_TEMP_DIR, MAX_SPILL_BYTES is
    below its sizeLimit, terminationGracePeriodSeconds exceeds preStop + DRAIN_TIMEOUT,
    pods run as non-root with a read-only root filesystem;
  * the consumers target the headless Service's gRPC port, and (when the `spillway`
    CLI is built) use only flags `spillway consume --help` lists;
  * the runtime stage installs the Debian package of every library `ldd` lists.

--self-test then breaks copies of the parsed files one way at a time (a typo'd env
var, a wrong port, ...) and requires each to be reported: the checker can fail.
Exit status 0 when everything holds, 1 otherwise (each problem on stderr).
"""

import argparse
import copy
import glob
import http.client
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

try:
    import yaml
except ImportError:
    sys.exit("check_manifests: python3-yaml is missing (scripts/setup.sh installs it)")

NAMESPACED_KINDS = {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                    "PodDisruptionBudget"}
# Libraries of the slim base image itself (Essential: yes).
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}


# ---------------------------------------------------------------- quantities

def parse_bytes(text):
    """spillwayd sizes ("1800Mi", "2.5Mi", "1G", "123") and Kubernetes quantities."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGTP]i?|[kmgtp]i?)?[Bb]?\s*", str(text))
    if not m:
        raise ValueError(f"not a size: {text!r}")
    number = float(m.group(1))
    unit = (m.group(2) or "")
    power = " KMGTP".index(unit[0].upper()) if unit else 0
    base = 1024 if unit.endswith("i") else 1000
    return int(number * base ** power)


def parse_seconds(text):
    """spillwayd durations: "30s", "1m", "500ms", "1h", "1m30s"."""
    total, rest = 0.0, str(text).strip()
    if re.fullmatch(r"[0-9.]+", rest):
        return float(rest)
    for number, unit in re.findall(r"([0-9.]+)(ms|s|m|h)", rest):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    if not re.fullmatch(r"(?:[0-9.]+(?:ms|s|m|h))+", rest):
        raise ValueError(f"not a duration: {text!r}")
    return total


# ---------------------------------------------------------------- inputs

def spillwayd_settings(binary):
    """{"SPILLWAY_HTTP_PORT": "8080", ...}: every setting of `spillwayd --help`."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        sys.exit(f"check_manifests: {binary} --help exited {out.returncode}: {out.stderr}")
    settings = dict(re.findall(r'--[a-z0-9-]+\s+\(env (SPILLWAY_[A-Z0-9_]+), default "([^"]*)"\)',
                               out.stdout))
    if len(settings) < 10:
        sys.exit(f"check_manifests: could not read the settings of {binary} --help:\n{out.stdout}")
    return settings


def load_inputs(source_dir):
    docker_dir = os.path.join(source_dir, "docker")
    k8s = []
    for path in sorted(glob.glob(os.path.join(docker_dir, "k8s", "*.yaml")) +
                       glob.glob(os.path.join(docker_dir, "k8s", "*.yml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    k8s.append((os.path.relpath(path, source_dir), doc))
    with open(os.path.join(docker_dir, "compose.yaml")) as f:
        compose = yaml.safe_load(f)
    with open(os.path.join(docker_dir, "Dockerfile")) as f:
        dockerfile = f.read()
    return {"k8s": k8s, "compose": compose, "dockerfile": dockerfile}


def dockerfile_instructions(text):
    """[(INSTRUCTION, arguments, stage index)], continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    result, stage = [], -1
    for line in joined.splitlines():
        line = line.strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        result.append((word, rest.strip(), stage))
    return result


# ---------------------------------------------------------------- the checks

class Checker:
    def __init__(self, settings, inputs, spillway_help=None, ldd_packages=None):
        self.settings = settings
        self.inputs = inputs
        self.spillway_help = spillway_help   # `spillway consume --help`, or None
        self.ldd_packages = ldd_packages     # {library: package} of the binaries, or None
        self.errors = []
        self.facts = {}  # what the live run needs: env to start with, paths to probe

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    def known_env(self, where, name):
        if name.startswith("SPILLWAY_") and name not in self.settings:
            self.error(where, f"{name} is not a setting spillwayd reads (not in `spillwayd --help`)")

    def run(self):
        for where, check in (("docker/k8s", self.check_k8s), ("docker/compose.yaml", self.check_compose),
                             ("docker/Dockerfile", self.check_dockerfile)):
            try:
                check()
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
                self.error(where, f"unreadable or incomplete ({type(e).__name__}: {e}); "
                                  "the checks after it did not run")
        return self.errors

    # ---- Kubernetes

    def objects(self, kind):
        return [(path, doc) for path, doc in self.inputs["k8s"] if doc.get("kind") == kind]

    def one(self, kind, predicate=lambda doc: True, what=None):
        found = [(p, d) for p, d in self.objects(kind) if predicate(d)]
        if len(found) != 1:
            self.error("docker/k8s", f"expected exactly one {what or kind}, found {len(found)}")
            return None, None
        return found[0]

    def check_k8s(self):
        docs = self.inputs["k8s"]
        namespaces = [d["metadata"]["name"] for _, d in self.objects("Namespace")]
        namespace = namespaces[0] if len(namespaces) == 1 else None
        for path, doc in docs:
            where = f"{path} {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            for key in ("apiVersion", "kind", "metadata"):
                if key not in doc:
                    self.error(where, f"no {key}")
            if doc.get("kind") in NAMESPACED_KINDS and doc["metadata"].get("namespace") != namespace:
                self.error(where, f"namespace {doc['metadata'].get('namespace')!r}, "
                                  f"expected the Namespace object's {namespace!r}")

        configmaps = {d["metadata"]["name"]: (p, d) for p, d in self.objects("ConfigMap")}
        for name, (path, cm) in configmaps.items():
            for key, value in (cm.get("data") or {}).items():
                self.known_env(f"{path} ConfigMap/{name}", key)
                if not isinstance(value, str):
                    self.error(f"{path} ConfigMap/{name}", f"{key}: value {value!r} is not a string")

        # The server: the Deployment whose container runs the image's entrypoint.
        def is_server(d):
            return not d["spec"]["template"]["spec"]["containers"][0].get("command")
        path, server = self.one("Deployment", is_server, "spillwayd Deployment (no command)")
        if server is None:
            return
        where = f"{path} Deployment/{server['metadata']['name']}"
        pod = server["spec"]["template"]
        spec = pod["spec"]
        labels = pod["metadata"].get("labels", {})
        if not matches(server["spec"]["selector"].get("matchLabels", {}), labels):
            self.error(where, "selector does not match the pod template's labels")
        container = spec["containers"][0]

        # The settings spillwayd will run with: defaults < ConfigMaps (envFrom) < env.
        env = {}
        for source in container.get("envFrom", []):
            ref = (source.get("configMapRef") or {}).get("name")
            if ref not in configmaps:
                self.error(where, f"envFrom names ConfigMap {ref!r}, which docker/k8s does not define")
                continue
            env.update(configmaps[ref][1].get("data") or {})
        for item in container.get("env", []):
            self.known_env(where, item["name"])
            if "value" in item:
                env[item["name"]] = item["value"]
        effective = dict(self.settings, **env)
        self.facts["k8s_env"] = env
        http_port = int(effective["SPILLWAY_HTTP_PORT"])
        grpc_port = int(effective["SPILLWAY_GRPC_PORT"])
        drain = parse_seconds(effective["SPILLWAY_DRAIN_TIMEOUT"])

        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        if ports != {"http": http_port, "grpc": grpc_port}:
            self.error(where, f"container ports {ports}, expected http={http_port} grpc={grpc_port} "
                              "(SPILLWAY_HTTP_PORT / SPILLWAY_GRPC_PORT)")

        def port_of(ref):
            return ports.get(ref) if isinstance(ref, str) else ref

        probes = {}
        for probe, path_expected in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (container.get(probe) or {}).get("httpGet")
            if not get:
                self.error(where, f"no {probe}.httpGet")
                continue
            if get.get("path") != path_expected:
                self.error(where, f"{probe} path {get.get('path')!r}, expected {path_expected}")
            if port_of(get.get("port")) != http_port:
                self.error(where, f"{probe} port {get.get('port')!r} is not the HTTP port {http_port}")
            probes[probe] = get.get("path")
        self.facts["probe_paths"] = probes

        annotations = pod["metadata"].get("annotations", {})
        if "prometheus.io/port" in annotations and int(annotations["prometheus.io/port"]) != http_port:
            self.error(where, f"prometheus.io/port {annotations['prometheus.io/port']} is not {http_port}")
        if annotations.get("prometheus.io/path", "/metrics") != "/metrics":
            self.error(where, f"prometheus.io/path {annotations['prometheus.io/path']!r} is not /metrics")

        # Drain: grace period > preStop sleep + DRAIN_TIMEOUT.
        pre_stop = (container.get("lifecycle") or {}).get("preStop")
        pre_stop_seconds = 0.0
        if not pre_stop:
            self.error(where, "no lifecycle.preStop (the drain's delay before SIGTERM)")
        elif "exec" in pre_stop:
            command = pre_stop["exec"]["command"]
            text = command[-1] if command[:2] in (["sh", "-c"], ["bash", "-c"]) else shlex.join(command)
            m = re.search(r"\bsleep\s+([0-9.]+)", text)
            pre_stop_seconds = float(m.group(1)) if m else 0.0
        elif "sleep" in pre_stop:
            pre_stop_seconds = float(pre_stop["sleep"]["seconds"])
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if not grace > drain + pre_stop_seconds:
            self.error(where, f"terminationGracePeriodSeconds {grace} is not above preStop "
                              f"({pre_stop_seconds:g}s) + SPILLWAY_DRAIN_TIMEOUT ({drain:g}s)")

        self.check_pod_security(where, spec, container)
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(kind, {}):
                    self.error(where, f"no resources.{kind}.{resource}")

        # The spill directory: an emptyDir with a sizeLimit, above MAX_SPILL_BYTES.
        temp_dir = effective["SPILLWAY_FILE_UPLOAD_TEMP_DIR"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == temp_dir]
        if not temp_dir or not mounts:
            self.error(where, f"no volume mounted at SPILLWAY_FILE_UPLOAD_TEMP_DIR ({temp_dir!r}); "
                              f"mounts: {[m['mountPath'] for m in container.get('volumeMounts', [])]}")
        else:
            volume = volumes.get(mounts[0]["name"], {})
            size_limit = (volume.get("emptyDir") or {}).get("sizeLimit")
            if size_limit is None:
                self.error(where, f"the volume at {temp_dir} is not an emptyDir with a sizeLimit")
            else:
                spill = parse_bytes(effective["SPILLWAY_MAX_SPILL_BYTES"])
                if not 0 < spill < parse_bytes(size_limit):
                    self.error(where, f"SPILLWAY_MAX_SPILL_BYTES {effective['SPILLWAY_MAX_SPILL_BYTES']} "
                                      f"is not between 0 and the emptyDir sizeLimit {size_limit}")
            if mounts[0].get("readOnly"):
                self.error(where, f"{temp_dir} is mounted read-only")

        # Services: every port reaches the right container port; one headless.
        services = self.objects("Service")
        headless = None
        for spath, service in services:
            swhere = f"{spath} Service/{service['metadata']['name']}"
            if not matches(service["spec"].get("selector", {}), labels):
                self.error(swhere, "selector does not select the spillwayd pods")
            for port in service["spec"]["ports"]:
                target = port_of(port.get("targetPort", port["port"]))
                if target not in (http_port, grpc_port):
                    self.error(swhere, f"port {port.get('name')} targets {port.get('targetPort')!r}, "
                                       "not a spillwayd container port")
                if port["port"] != target:
                    self.error(swhere, f"port {port.get('name')}: {port['port']} differs from the "
                                       f"container's {target}")
            if service["spec"].get("clusterIP") == "None":
                headless = service
            else:
                exposed = {port_of(p.get("targetPort", p["port"])) for p in service["spec"]["ports"]}
                if exposed != {http_port, grpc_port}:
                    self.error(swhere, f"exposes {sorted(exposed)}, expected HTTP {http_port} and gRPC {grpc_port}")
        if headless is None:
            self.error("docker/k8s", "no headless Service (clusterIP: None) for consumers")

        # HPA on the in-flight gauge (Pods metric) plus CPU.
        hpath, hpa = self.one("HorizontalPodAutoscaler")
        if hpa:
            hwhere = f"{hpath} HorizontalPodAutoscaler/{hpa['metadata']['name']}"
            ref = hpa["spec"]["scaleTargetRef"]
            if (ref.get("kind"), ref.get("name")) != ("Deployment", server["metadata"]["name"]):
                self.error(hwhere, f"scaleTargetRef {ref} is not the spillwayd Deployment")
            metrics = hpa["spec"].get("metrics", [])
            pod_metrics = [m["pods"] for m in metrics if m.get("type") == "Pods"]
            if not pod_metrics:
                self.error(hwhere, "no Pods metric (uploads in flight)")
            for metric in pod_metrics:
                name = metric["metric"]["name"]
                self.facts.setdefault("hpa_metrics", []).append(name)
                if name != "spillway_uploads_in_flight":
                    self.error(hwhere, f"Pods metric {name!r}, expected spillway_uploads_in_flight")
                target = metric["target"]
                if target.get("type") != "AverageValue" or not (
                        0 < parse_bytes(target["averageValue"]) <
                        int(effective["SPILLWAY_MAX_CONCURRENT_UPLOADS"])):
                    self.error(hwhere, f"target {target} is not an AverageValue below "
                                       "SPILLWAY_MAX_CONCURRENT_UPLOADS")
            if not any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in metrics):
                self.error(hwhere, "no CPU fallback metric")
            min_replicas = hpa["spec"].get("minReplicas", 1)
        else:
            min_replicas = server["spec"].get("replicas", 1)

        ppath, pdb = self.one("PodDisruptionBudget")
        if pdb:
            pwhere = f"{ppath} PodDisruptionBudget/{pdb['metadata']['name']}"
            if not matches(pdb["spec"]["selector"].get("matchLabels", {}), labels):
                self.error(pwhere, "selector does not select the spillwayd pods")
            if "maxUnavailable" in pdb["spec"] and not 0 < int(pdb["spec"]["maxUnavailable"]) < min_replicas:
                self.error(pwhere, f"maxUnavailable {pdb['spec']['maxUnavailable']} blocks drains or "
                                   f"allows all {min_replicas} replicas down")

        # The consumer Deployment: `spillway consume --target dns:///<headless>...`.
        cpath, consumer = self.one("Deployment", lambda d: not is_server(d), "consumer Deployment")
        if consumer and headless:
            cwhere = f"{cpath} Deployment/{consumer['metadata']['name']}"
            ccontainer = consumer["spec"]["template"]["spec"]["containers"][0]
            argv = list(ccontainer.get("command", [])) + list(ccontainer.get("args", []))
            expected = (f"dns:///{headless['metadata']['name']}.{headless['metadata']['namespace']}"
                        f".svc.cluster.local:{grpc_port}")
            self.check_consume(cwhere, argv, [expected],
                               [m["mountPath"] for m in ccontainer.get("volumeMounts", [])])
            self.check_pod_security(cwhere, consumer["spec"]["template"]["spec"], ccontainer)
        self.facts["run_as_user"] = spec.get("securityContext", {}).get("runAsUser")
        self.facts["k8s_temp_dir"] = temp_dir

    def check_pod_security(self, where, spec, container):
        pod_sc = spec.get("securityContext", {})
        sc = container.get("securityContext", {})
        if (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True):
            self.error(where, "runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser", 10001)) == 0:
            self.error(where, "runAsUser is 0")
        if sc.get("readOnlyRootFilesystem") is not True:
            self.error(where, "readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            self.error(where, "allowPrivilegeEscalation is not false")

    def check_consume(self, where, argv, targets, mount_paths):
        if argv[:2] != ["spillway", "consume"]:
            self.error(where, f"runs {argv[:2]}, expected `spillway consume`")
            return
        flags = flag_values(argv[2:])
        if flags.get("--target") not in targets:
            self.error(where, f"--target {flags.get('--target')!r}, expected one of {targets}")
        if flags.get("--to") not in mount_paths:
            self.error(where, f"--to {flags.get('--to')!r} is not a mounted volume ({mount_paths})")
        if self.spillway_help is not None:
            for flag in flags:
                if not re.search(re.escape(flag) + r"\b", self.spillway_help):
                    self.error(where, f"{flag} is not in `spillway consume --help`")

    # ---- compose

    def check_compose(self):
        compose = self.inputs["compose"]
        services = compose.get("services", {})
        where = "docker/compose.yaml"
        server = services.get("spillwayd")
        if not server:
            self.error(where, "no service spillwayd")
            return
        env = server.get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        for name in env:
            self.known_env(f"{where} spillwayd", name)
        env = {k: str(v) for k, v in env.items()}
        self.facts["compose_env"] = env
        effective = dict(self.settings, **env)
        http_port, grpc_port = int(effective["SPILLWAY_HTTP_PORT"]), int(effective["SPILLWAY_GRPC_PORT"])
        container_ports = {int(str(p).split(":")[-1].split("/")[0]) for p in server.get("ports", [])}
        if container_ports != {http_port, grpc_port}:
            self.error(f"{where} spillwayd", f"publishes container ports {sorted(container_ports)}, "
                                             f"expected {http_port} and {grpc_port}")
        temp_dir = effective["SPILLWAY_FILE_UPLOAD_TEMP_DIR"]
        if server.get("read_only") and temp_dir not in volume_targets(server):
            self.error(f"{where} spillwayd", f"read-only, and nothing is mounted at "
                                             f"SPILLWAY_FILE_UPLOAD_TEMP_DIR ({temp_dir!r})")
        grace = parse_seconds(server.get("stop_grace_period", "10s"))
        if not grace > parse_seconds(effective["SPILLWAY_DRAIN_TIMEOUT"]):
            self.error(f"{where} spillwayd", f"stop_grace_period {grace:g}s is not above "
                                             "SPILLWAY_DRAIN_TIMEOUT")
        consumers = [(name, s) for name, s in services.items() if name != "spillwayd"]
        if len(consumers) != 1:
            self.error(where, f"expected one consumer service, found {len(consumers)}")
        for name, consumer in consumers:
            argv = as_list(consumer.get("entrypoint")) + as_list(consumer.get("command"))
            self.check_consume(f"{where} {name}", argv, [f"spillwayd:{grpc_port}", f"dns:///spillwayd:{grpc_port}"],
                               volume_targets(consumer))
            depends = consumer.get("depends_on", {})
            if "spillwayd" not in depends:
                self.error(f"{where} {name}", "does not depend on spillwayd")

    # ---- Dockerfile

    def check_dockerfile(self):
        where = "docker/Dockerfile"
        instructions = dockerfile_instructions(self.inputs["dockerfile"])
        froms = [args for word, args, _ in instructions if word == "FROM"]
        if len(froms) < 2 or not froms[0].startswith("debian:12 ") or not froms[-1].startswith("debian:12-slim"):
            self.error(where, f"stages {froms}: expected a debian:12 build stage and a debian:12-slim runtime")
        last = len(froms) - 1
        runtime = [(w, a) for w, a, stage in instructions if stage == last]
        build_runs = " ".join(a for w, a, stage in instructions if stage < last and w == "RUN")
        if "scripts/setup.sh" not in build_runs:
            self.error(where, "the build stage does not run scripts/setup.sh")
        targets = re.search(r"--target\s+([\w\s-]+?)(?:&&|$)", build_runs)
        if not targets or set(targets.group(1).split()) != {"spillwayd", "spillway"}:
            self.error(where, "the build stage does not build exactly the targets spillwayd and spillway")
        copies = " ".join(a for w, a in runtime if w == "COPY")
        for binary in ("spillwayd", "spillway"):
            if not re.search(r"/" + binary + r"(\s|$)", copies):
                self.error(where, f"the runtime stage does not copy {binary}")
        exposed = {int(p.split("/")[0]) for w, a in runtime if w == "EXPOSE" for p in a.split()}
        if exposed != {int(self.settings["SPILLWAY_HTTP_PORT"]), int(self.settings["SPILLWAY_GRPC_PORT"])}:
            self.error(where, f"EXPOSE {sorted(exposed)} is not spillwayd's default HTTP and gRPC ports")
        env = {}
        for w, a in runtime:
            if w == "ENV":
                for name, value in re.findall(r"(\w+)=(\S+)", a):
                    self.known_env(where, name)
                    env[name] = value
        temp_dir = env.get("SPILLWAY_FILE_UPLOAD_TEMP_DIR")
        if temp_dir and not re.search(re.escape(temp_dir) + r"\b", " ".join(a for w, a in runtime if w == "RUN")):
            self.error(where, f"SPILLWAY_FILE_UPLOAD_TEMP_DIR {temp_dir} is not created in the image")
        users = [a for w, a in runtime if w == "USER"]
        uid = users[-1].split(":")[0] if users else "0"
        if not uid.isdigit() or int(uid) == 0:
            self.error(where, f"USER {uid!r}: expected a numeric non-root uid")
        elif self.facts.get("run_as_user") not in (None, int(uid)):
            self.error(where, f"USER {uid} differs from the Deployment's runAsUser {self.facts['run_as_user']}")
        entry = [a for w, a in runtime if w == "ENTRYPOINT"]
        if not entry or json.loads(entry[-1]) != ["spillwayd"]:
            self.error(where, f"ENTRYPOINT {entry}, expected [\"spillwayd\"]")
        health = [a for w, a in runtime if w == "HEALTHCHECK"]
        command = None
        if health:
            m = re.search(r"CMD\s+(\[.*\])\s*$", health[-1])
            command = json.loads(m.group(1)) if m else None
        if not command or "/healthz" not in " ".join(command):
            self.error(where, "no HEALTHCHECK CMD [...] on /healthz")
        self.facts["healthcheck"] = command
        if self.ldd_packages is not None:
            installed = set()
            for w, a in runtime:
                m = re.search(r"apt-get install (.*?)(?:&&|$)", a) if w == "RUN" else None
                if m:
                    installed |= {p for p in m.group(1).split() if not p.startswith("-")}
            for library, package in sorted(self.ldd_packages.items()):
                if package not in installed | BASE_PACKAGES:
                    self.error(where, f"{library} (Debian package {package}) is not installed in the runtime stage")


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def as_list(value):
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else list(value)


def flag_values(args):
    """{"--target": "x", ...} from ["--target", "x", "--to=/d", ...]."""
    flags, i = {}, 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg.split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                name, value = arg, args[i + 1]
                i += 1
            else:
                name, value = arg, None
            flags[name] = value
        i += 1
    return flags


def volume_targets(service):
    targets = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            targets.append(volume.split(":")[1] if ":" in volume else volume)
        else:
            targets.append(volume.get("target"))
    return targets + [t.split(":")[0] for t in as_list(service.get("tmpfs"))]


# ---------------------------------------------------------------- the live run

def http_get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def run_spillwayd(binary, label, env_settings, facts, errors):
    """Starts spillwayd with `env_settings` (ports and directories made local), probes it."""
    with tempfile.TemporaryDirectory(prefix="spillway-manifests-") as temp_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPILLWAY_")}
        env.update(env_settings)
        env.update({"SPILLWAY_HTTP_PORT": "0", "SPILLWAY_GRPC_PORT": "0",
                    "SPILLWAY_LISTEN_ADDRESS": "127.0.0.1",
                    "SPILLWAY_FILE_UPLOAD_TEMP_DIR": temp_dir})
        process = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            port = None
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                if '"event":"listening"' in line:
                    port = json.loads(line)["http_port"]
                    break
            if not port:
                process.kill()
                errors.append(f"{label}: spillwayd with these settings did not start: "
                              f"{process.stderr.read().strip()}")
                return
            for probe, path in sorted(facts.get("probe_paths", {}).items()):
                status, body = http_get(port, path)
                if status != 200:
                    errors.append(f"{label}: {probe} GET {path} answered {status} {body!r}")
            status, metrics = http_get(port, "/metrics")
            for name in facts.get("hpa_metrics", []):
                if not re.search(r"^" + re.escape(name) + r"[ {]", metrics, re.M):
                    errors.append(f"{label}: /metrics has no {name} (the HPA's metric)")
            command = facts.get("healthcheck")
            if command:
                check_env = dict(os.environ, SPILLWAY_HTTP_PORT=str(port))
                result = subprocess.run(command, env=check_env, capture_output=True, text=True,
                                        timeout=10)
                if result.returncode != 0:
                    errors.append(f"{label}: the Dockerfile HEALTHCHECK failed against a healthy "
                                  f"spillwayd: exit {result.returncode} {result.stderr.strip()}")
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=parse_seconds(env_settings.get(
                    "SPILLWAY_DRAIN_TIMEOUT", "30s")) + 5)
            except subprocess.TimeoutExpired:
                errors.append(f"{label}: spillwayd did not exit after SIGTERM")
                return
            if code != 0:
                errors.append(f"{label}: spillwayd exited {code} after SIGTERM")
            if command:  # ... and the health check notices a dead server.
                result = subprocess.run(command, env=dict(os.environ, SPILLWAY_HTTP_PORT=str(port)),
                                        capture_output=True, timeout=10)
                if result.returncode == 0:
                    errors.append(f"{label}: the Dockerfile HEALTHCHECK passes with spillwayd stopped")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


# ---------------------------------------------------------------- self-test

def mutations():
    """(description, function breaking a copy of the inputs) pairs."""
    def k8s_doc(inputs, kind, predicate=lambda d: True):
        return next(d for _, d in inputs["k8s"] if d["kind"] == kind and predicate(d))

    def server(inputs):
        return k8s_doc(inputs, "Deployment",
                       lambda d: not d["spec"]["template"]["spec"]["containers"][0].get("command"))

    def container(inputs):
        return server(inputs)["spec"]["template"]["spec"]["containers"][0]

    def typo_configmap(inputs):
        data = k8s_doc(inputs, "ConfigMap")["data"]
        data["SPILLWAY_DRAIN_TIMEOUTT"] = data.pop("SPILLWAY_DRAIN_TIMEOUT")

    def typo_env(inputs):
        container(inputs).setdefault("env", []).append({"name": "SPILLWAY_MAX_SPIL_BYTES", "value": "1"})

    def wrong_port(inputs):
        container(inputs)["ports"][0]["containerPort"] += 1

    def wrong_probe(inputs):
        container(inputs)["readinessProbe"]["httpGet"]["path"] = "/ready"

    def wrong_mount(inputs):
        container(inputs)["volumeMounts"][0]["mountPath"] = "/tmp/spill"

    def spill_over_limit(inputs):
        k8s_doc(inputs, "ConfigMap")["data"]["SPILLWAY_MAX_SPILL_BYTES"] = "3Gi"

    def short_grace(inputs):
        server(inputs)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30

    def root(inputs):
        server(inputs)["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False

    def writable_root(inputs):
        container(inputs)["securityContext"]["readOnlyRootFilesystem"] = False

    def wrong_service_port(inputs):
        k8s_doc(inputs, "Service", lambda d: d["spec"].get("clusterIP") != "None")["spec"]["ports"][1]["targetPort"] = 50052

    def wrong_hpa_metric(inputs):
        hpa = k8s_doc(inputs, "HorizontalPodAutoscaler")
        next(m for m in hpa["spec"]["metrics"] if m["type"] == "Pods")["pods"]["metric"]["name"] = "uploads"

    def wrong_consumer_target(inputs):
        args = k8s_doc(inputs, "Deployment",
                       lambda d: d["spec"]["template"]["spec"]["containers"][0].get("command"))[
            "spec"]["template"]["spec"]["containers"][0]["args"]
        args[args.index("--target") + 1] = "dns:///spillway.spillway.svc.cluster.local:50051"

    def compose_typo(inputs):
        inputs["compose"]["services"]["spillwayd"]["environment"]["SPILLWAY_HTTP_PROT"] = "8080"

    def compose_port(inputs):
        inputs["compose"]["services"]["spillwayd"]["ports"] = ["8080:8081", "50051:50051"]

    def dockerfile_expose(inputs):
        inputs["dockerfile"] = inputs["dockerfile"].replace("EXPOSE 8080 50051", "EXPOSE 8000 50051")

    def dockerfile_root(inputs):
        inputs["dockerfile"] = re.sub(r"^USER .*$", "USER root", inputs["dockerfile"], flags=re.M)

    def dockerfile_library(inputs):
        inputs["dockerfile"] = inputs["dockerfile"].replace(" libisal2 ", " ")

    return [(f.__name__, f) for f in (
        typo_configmap, typo_env, wrong_port, wrong_probe, wrong_mount, spill_over_limit,
        short_grace, root, writable_root, wrong_service_port, wrong_hpa_metric,
        wrong_consumer_target, compose_typo, compose_port, dockerfile_expose, dockerfile_root,
        dockerfile_library)]


# ---------------------------------------------------------------- main

def find_cli(args):
    if args.spillway:
        return args.spillway
    if args.build_dir:
        for root, dirs, files in os.walk(args.build_dir):
            dirs[:] = [d for d in dirs if d != "CMakeFiles"]
            candidate = os.path.join(root, "spillway")
            if "spillway" in files and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return os.path.join(root, "spillway")
    return None


# A sanitizer build (make asan / make tsan) links these runtimes; the image is a
# Release build that never does, so they say nothing about its runtime stage.
SANITIZER_RUNTIMES = re.compile(r"lib(asan|ubsan|tsan|lsan|atomic)\.so")


def ldd_packages(binaries):
    """{library file name: Debian package} for every shared library of `binaries`."""
    libraries = set()
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True)
        libraries |= {library for library in re.findall(r"=> (/\S+)", out.stdout)
                      if not SANITIZER_RUNTIMES.search(os.path.basename(library))}
    # One dpkg -S for all (it is slow to start). With /lib a symlink to /usr/lib, dpkg
    # knows a library by either path: ask for both.
    real = {os.path.realpath(library): os.path.basename(library) for library in libraries}
    real.update({library: os.path.basename(library) for library in libraries})
    out = subprocess.run(["dpkg", "-S"] + sorted(real), capture_output=True, text=True)
    result = {}
    for line in out.stdout.splitlines():
        packages, _, path = line.partition(": ")
        if path in real:
            result[real[path]] = packages.split(",")[0].split(":")[0].strip()
    missing = sorted(set(real.values()) - set(result))
    if missing:
        sys.exit(f"check_manifests: dpkg -S knows no package for {missing}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spillwayd", required=True)
    parser.add_argument("--spillway", help="the spillway CLI (optional)")
    parser.add_argument("--build-dir", help="where to look for the spillway CLI")
    parser.add_argument("--source-dir", default=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))
    parser.add_argument("--self-test", action="store_true",
                        help="also require each of a set of broken variants to be reported")
    args = parser.parse_args()

    settings = spillwayd_settings(args.spillwayd)
    inputs = load_inputs(args.source_dir)
    cli = find_cli(args)
    spillway_help = None
    binaries = [args.spillwayd]
    if cli:
        out = subprocess.run([cli, "consume", "--help"], capture_output=True, text=True, timeout=30)
        spillway_help = out.stdout + out.stderr
        binaries.append(cli)
        print(f"check_manifests: spillway CLI {cli}")
    else:
        print("check_manifests: the spillway CLI is not built; consumer flags not checked against it")
    packages = ldd_packages(binaries) if subprocess.run(
        ["sh", "-c", "command -v dpkg && command -v ldd"], capture_output=True).returncode == 0 else None

    checker = Checker(settings, inputs, spillway_help, packages)
    static_errors = list(checker.run())
    errors = list(static_errors)
    if "k8s_env" in checker.facts:
        run_spillwayd(args.spillwayd, "ConfigMap settings", checker.facts["k8s_env"], checker.facts, errors)
    if "compose_env" in checker.facts:
        run_spillwayd(args.spillwayd, "compose settings", checker.facts["compose_env"], checker.facts, errors)
    documents = len(inputs["k8s"])
    print(f"check_manifests: {documents} Kubernetes objects, compose.yaml and the Dockerfile "
          f"against {len(settings)} settings of {args.spillwayd}")

    if args.self_test:
        for name, mutate in mutations():
            broken = copy.deepcopy(inputs)
            mutate(broken)
            try:
                found = Checker(settings, broken, spillway_help, packages).run()
            except Exception as e:  # a crash is no report
                found = static_errors
                errors.append(f"self-test: {name}: the checker raised {e!r}")
            new = [e for e in found if e not in static_errors]
            if not new:
                errors.append(f"self-test: breaking the files with {name} went unnoticed")
            else:
                print(f"check_manifests: self-test {name} reported: {new[0]}")
    for error in errors:
        print(f"check_manifests: {error}", file=sys.stderr)
    print(f"check_manifests: {'FAILED, ' + str(len(errors)) + ' problem(s)' if errors else 'OK'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
