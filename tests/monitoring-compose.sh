#!/bin/bash
# monitoring-compose.sh - docker/monitoring-compose.yml adds to
# docker/docker-compose.yml a Prometheus built from Debian's package
# (docker/prometheus.Dockerfile) that scrapes the three roles by their
# service names and ports, with the jobs and rules the alerts expect. No
# Docker engine is needed: the files are parsed with python3-yaml.
. "$(dirname "$0")/lib.sh"

python3 -c 'import yaml' 2>/dev/null ||
	tap_skip_all "python3 with the yaml module (python3-yaml) not found"

# not exec: the harness's trap removes its temporary directory at exit
python3 - "$top_srcdir" <<'PY'
import os
import re
import sys
import yaml

top = sys.argv[1]
checks = []


def check(desc, fn):
    checks.append((desc, fn))


def load(rel):
    with open(os.path.join(top, rel)) as f:
        return yaml.safe_load(f)


def text(rel):
    with open(os.path.join(top, rel)) as f:
        return f.read()


def prom():
    return mon["services"]["prometheus"]


def dockerfile():
    """The Dockerfile's instructions, continuation lines joined."""
    lines = re.sub(r"\\\n", " ", text("docker/prometheus.Dockerfile"))
    return [l.strip() for l in lines.splitlines()
            if l.strip() and not l.strip().startswith("#")]


def copies():
    """COPY source -> destination of the Dockerfile."""
    out = {}
    for l in dockerfile():
        w = l.split()
        if w[0] == "COPY" and not w[1].startswith("--"):
            out[w[1]] = w[2]
    return out


def ignored(path):
    """Whether the build context leaves path out (last pattern wins)."""
    out = False
    for l in text("docker/prometheus.Dockerfile.dockerignore").splitlines():
        l = l.strip()
        if not l or l.startswith("#"):
            continue
        neg = l.startswith("!")
        pat = l[1:] if neg else l
        if pat == "*" or pat == path or path.startswith(pat.rstrip("/") + "/"):
            out = not neg
    return out


def targets():
    """job -> [host:port] of docker/prometheus.yml."""
    return {j["job_name"]: [t for s in j["static_configs"]
                            for t in s["targets"]]
            for j in scrape["scrape_configs"]}


def rule_jobs():
    """Job names the alert rules select, literal or by regex."""
    rules = load("monitoring/diplom-rules.yml")
    out = []
    for g in rules["groups"]:
        for r in g["rules"]:
            out += re.findall(r'job(=~?)"([^"]*)"', str(r["expr"]))
    return out


roles = {"diplom-gateway": ("gateway", "8080"),
         "diplom-ingest": ("ingest", "8081"),
         "diplom-processor": ("processor", "8082")}

check("the prometheus service is built from docker/prometheus.Dockerfile "
      "with the top of the tree as context",
      lambda: prom()["build"] == {"context": "..",
                                  "dockerfile": "docker/prometheus.Dockerfile"})
check("prometheus is published on 127.0.0.1 only, port 9090 by default",
      lambda: prom()["ports"] ==
      ["127.0.0.1:${DIPLOM_PROMETHEUS_PORT:-9090}:9090"])
check("prometheus keeps its data on a declared volume",
      lambda: prom()["volumes"][0].split(":")[0] in mon["volumes"] and
      prom()["volumes"][0].split(":")[1] in
      " ".join(dockerfile()))
check("prometheus has a healthcheck on /-/ready",
      lambda: "/-/ready" in " ".join(prom()["healthcheck"]["test"]))
check("no service of monitoring-compose.yml clashes with docker-compose.yml",
      lambda: not set(mon["services"]) & set(pipeline["services"]))
check("the image is Debian 12 slim, the base of the diplom image",
      lambda: [l for l in dockerfile() if l.startswith("FROM")] ==
      ["FROM debian:bookworm-slim"])
check("the image installs Debian's prometheus package",
      lambda: any(re.search(r"apt-get install .*\bprometheus\b", l)
                  for l in dockerfile()))
check("the image runs prometheus as its own user, not root",
      lambda: "USER prometheus" in dockerfile())
check("the image copies docker/prometheus.yml to its configuration",
      lambda: copies().get("docker/prometheus.yml") ==
      "/etc/prometheus/prometheus.yml" and
      "--config.file=/etc/prometheus/prometheus.yml" in " ".join(dockerfile()))
check("the image copies the rules where prometheus.yml loads them",
      lambda: [copies().get("monitoring/diplom-rules.yml")] ==
      scrape["rule_files"])
check("the build checks the configuration with promtool",
      lambda: any("promtool check config" in l for l in dockerfile()))
check("the build context holds what the image copies, and nothing else",
      lambda: all(not ignored(s) for s in copies()) and ignored("src") and
      ignored(".git"))
for job, (svc, port) in roles.items():
    # the port the role listens on in its container: the one its own
    # healthcheck asks
    check("prometheus scrapes %s at %s:%s, a service of docker-compose.yml "
          "listening there" % (job, svc, port),
          lambda j=job, s=svc, p=port: targets()[j] == ["%s:%s" % (s, p)] and
          "127.0.0.1:%s/health" % p in
          " ".join(pipeline["services"][s]["healthcheck"]["test"]))
check("every job the alert rules name is scraped",
      lambda: rule_jobs() and all(
          (op == "=" and v in targets()) or
          (op == "=~" and any(re.fullmatch(v, j) for j in targets()))
          for op, v in rule_jobs()))

try:
    mon = load("docker/monitoring-compose.yml")
    pipeline = load("docker/docker-compose.yml")
    scrape = load("docker/prometheus.yml")
except (OSError, yaml.YAMLError) as e:
    print("1..1")
    print("not ok 1 - the compose files and prometheus.yml parse: %s" % e)
    sys.exit(1)

print("1..%d" % len(checks))
failed = 0
for n, (desc, fn) in enumerate(checks, 1):
    try:
        ok = bool(fn())
    except (KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        ok = False
        desc += " (%s: %s)" % (type(e).__name__, e)
    if not ok:
        failed = 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n, desc))
sys.exit(failed)
PY
