#!/bin/bash
# docker-compose.sh - docker/docker-compose.yml has the services, settings,
# healthchecks, start order and published ports that SPEC section 7 and the
# README promise, and docker/nats.Dockerfile is a stand-in for the nats image
# that runs diplom's broker settings.  No Docker engine is needed: the file
# is parsed with python3-yaml.  scripts/docker-test.sh runs the stack.
. "$(dirname "$0")/lib.sh"

compose=$top_srcdir/docker/docker-compose.yml

python3 -c 'import yaml' 2>/dev/null ||
	tap_skip_all "python3 with the yaml module (python3-yaml) not found"

# not exec: the harness's trap removes its temporary directory at exit
python3 - "$compose" "$top_srcdir" <<'PY'
import os
import re
import sys
import yaml

path = sys.argv[1]
top = sys.argv[2]
checks = []


def check(desc, fn):
    checks.append((desc, fn))


def svc(name):
    return doc["services"][name]


def env(name):
    e = svc(name).get("environment", {})
    if isinstance(e, list):
        e = dict(item.split("=", 1) for item in e)
    return {k: str(v) for k, v in e.items()}


def healthy(name, dep):
    return svc(name)["depends_on"][dep]["condition"] == "service_healthy"


def health_curl(name, port):
    test = " ".join(svc(name)["healthcheck"]["test"])
    return "curl" in test and "127.0.0.1:%d/health" % port in test


roles = {"gateway": 8080, "ingest": 8081, "processor": 8082}

def read(rel):
    with open(os.path.join(top, rel)) as f:
        return f.read()


def standin():
    text = read("docker/nats.Dockerfile")
    return {
        "from": re.search(r"^FROM debian:bookworm-slim$", text, re.M),
        "server": re.search(r"apt-get install .*nats-server", text),
        "wget": re.search(r"apt-get install .*wget", text),
        "conf": re.search(r"^COPY systemd/diplom-nats.conf "
                          r"/etc/nats/diplom-nats.conf$", text, re.M),
    }


conf_mount = "../systemd/diplom-nats.conf:/etc/nats/diplom-nats.conf:ro"

check("nats runs ${NATS_IMAGE}, nats:2.10-alpine by default",
      lambda: svc("nats")["image"] == "${NATS_IMAGE:-nats:2.10-alpine}")
check("nats runs diplom's settings with JetStream, monitoring on 8222, "
      "store in /data",
      lambda: " ".join(svc("nats")["command"])
      == "-c /etc/nats/diplom-nats.conf -js -m 8222 -sd /data")
check("nats gets systemd/diplom-nats.conf read-only",
      lambda: conf_mount in svc("nats")["volumes"])
check("systemd/diplom-nats.conf raises max_payload",
      lambda: re.search(r"^max_payload:", read("systemd/diplom-nats.conf"),
                        re.M))
check("nats keeps its store on the nats-data volume",
      lambda: "nats-data:/data" in svc("nats")["volumes"])
check("the nats stand-in is Debian's nats-server on debian:bookworm-slim",
      lambda: standin()["from"] and standin()["server"])
check("the nats stand-in has wget for the healthcheck and diplom's settings",
      lambda: standin()["wget"] and standin()["conf"])
check("only the gateway publishes a port",
      lambda: [n for n in doc["services"] if "ports" in svc(n)]
      == ["gateway"])
check("the gateway is published on 127.0.0.1 only, port 8080 by default",
      lambda: svc("gateway")["ports"]
      == ["127.0.0.1:${DIPLOM_GATEWAY_PORT:-8080}:8080"])
check("nats has a healthcheck",
      lambda: bool(svc("nats")["healthcheck"]["test"]))
check("the nats-data volume is declared",
      lambda: "nats-data" in doc["volumes"])
for role, port in roles.items():
    check("%s is built from docker/Dockerfile" % role,
          lambda r=role: svc(r)["build"]["dockerfile"] == "docker/Dockerfile")
    check("%s runs --role=%s" % (role, role),
          lambda r=role: "--role=%s" % r in svc(r)["command"])
    check("%s listens on 0.0.0.0" % role,
          lambda r=role: env(r)["LISTEN_ADDRESS"] == "0.0.0.0")
    check("%s finds ingest and processor by service name" % role,
          lambda r=role: env(r)["INGEST_URL"] == "http://ingest:8081"
          and env(r)["PROCESSOR_URL"] == "http://processor:8082")
    check("%s takes QUEUE_TYPE from the caller, memory by default" % role,
          lambda r=role: env(r)["QUEUE_TYPE"] == "${QUEUE_TYPE:-memory}")
    check("%s finds NATS at nats://nats:4222" % role,
          lambda r=role: env(r)["NATS_URL"] == "nats://nats:4222")
    check("%s healthcheck curls /health on %d" % (role, port),
          lambda r=role, p=port: health_curl(r, p))
check("processor starts once nats is healthy",
      lambda: healthy("processor", "nats"))
check("ingest starts once nats and processor are healthy",
      lambda: healthy("ingest", "nats") and healthy("ingest", "processor"))
check("gateway starts once ingest is healthy",
      lambda: healthy("gateway", "ingest"))

try:
    with open(path) as f:
        doc = yaml.safe_load(f)
except (OSError, yaml.YAMLError) as e:
    print("1..1")
    print("not ok 1 - %s parses: %s" % (path, e))
    sys.exit(1)

print("1..%d" % len(checks))
failed = 0
for n, (desc, fn) in enumerate(checks, 1):
    try:
        ok = fn()
    except (KeyError, TypeError, AttributeError, OSError) as e:
        ok = False
        desc += " (missing %s)" % e
    if not ok:
        failed = 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n, desc))
sys.exit(failed)
PY
