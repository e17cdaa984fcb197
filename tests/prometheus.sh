#!/bin/bash
# prometheus.sh - the monitoring that ships is tested: the alert rules pass
# promtool's checks and unit tests, and Debian's real prometheus, scraping a
# running stack with the jobs of docker/prometheus.yml, finds data for every
# series and expression that the rules (monitoring/diplom-rules.yml) and the
# dashboard (monitoring/grafana-dashboard.json) use. The expressions are
# read from those files, so they cannot drift from what is tested. Stopping
# the processor raises DiplomProcessorDown.
#
# Skipped without prometheus (or python3-yaml); a failure instead with
# DIPLOM_REQUIRE_NATS=1, as in CI, where scripts/install-deps.sh installs it.
. "$(dirname "$0")/lib.sh"

need_required_tools prometheus promtool python3
python3 -c 'import yaml' 2>/dev/null || {
	[ "${DIPLOM_REQUIRE_NATS:-0}" = 1 ] &&
		bail "python3-yaml not found and DIPLOM_REQUIRE_NATS=1"
	tap_skip_all "python3 with the yaml module (python3-yaml) not found"
}
need_loadgen

rules=$top_srcdir/monitoring/diplom-rules.yml
rules_test=$top_srcdir/monitoring/diplom-rules.test.yml
dashboard=$top_srcdir/monitoring/grafana-dashboard.json
scrape=$top_srcdir/docker/prometheus.yml

tap_plan

promtool_quiet() { "$@" >"$T_TMP/promtool.out" 2>&1 || {
	sed 's/^/# /' "$T_TMP/promtool.out"
	return 1
}; }
tap_ok "promtool check rules accepts $(basename "$rules")" \
	promtool_quiet promtool check rules "$rules"
tap_ok "promtool test rules: each alert fires on what it is for, only then" \
	promtool_quiet promtool test rules "$rules_test"

start_stack || bail "the stack did not start"
PROM_PORT=$(free_port)
PROM=http://127.0.0.1:$PROM_PORT

# docker/prometheus.yml with the stack's ports, the rules from the tree,
# and a scrape and an evaluation every second
python3 - "$scrape" "$rules" "$GW_PORT" "$ING_PORT" "$PROC_PORT" \
	>"$T_TMP/prometheus.yml" <<'PY' || bail "cannot make the scrape configuration"
import sys
import yaml

path, rules, gw, ing, proc = sys.argv[1:]
with open(path) as f:
    conf = yaml.safe_load(f)
ports = {"diplom-gateway": gw, "diplom-ingest": ing, "diplom-processor": proc}
conf["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
conf["rule_files"] = [rules]
jobs = [j for j in conf["scrape_configs"] if j["job_name"] in ports]
if len(jobs) != 3:
    sys.exit("%s: expected the jobs %s" % (path, ", ".join(sorted(ports))))
for j in jobs:
    j["static_configs"] = [{"targets": ["127.0.0.1:" + ports[j["job_name"]]]}]
conf["scrape_configs"] = jobs
yaml.safe_dump(conf, sys.stdout)
PY

prometheus --config.file="$T_TMP/prometheus.yml" \
	--storage.tsdb.path="$T_TMP/prometheus-data" \
	--web.listen-address="127.0.0.1:$PROM_PORT" \
	>"$T_TMP/prometheus.log" 2>&1 &
PROM_PID=$!
track "$PROM_PID"
wait_http "$PROM/-/ready" 30 || bail "prometheus did not start"

# traffic while Prometheus scrapes, so that rates and quantiles have data
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" --rate 100 --duration 8 -c 4 \
	--json >"$T_TMP/load.json" 2>"$T_TMP/load.err" &
LOAD_PID=$!
track "$LOAD_PID"

# api PATH : a GET of Prometheus' HTTP API
api() { curl -s --max-time 5 "$PROM$1"; }

targets_up() {
	[ "$(api /api/v1/targets | jq '[.data.activeTargets[] |
		select(.health == "up" and .lastError == "")] | length')" = 3 ]
}
tap_ok "Prometheus scrapes the three roles without an error" \
	wait_until 30 targets_up

# every rule has been evaluated a few times, over samples of the traffic
rules_evaluated() {
	api /api/v1/rules | jq -e '[.data.groups[].rules[]] | length > 0 and
		all(.health == "ok" and .lastEvaluation > "2000")' >/dev/null
}
wait_until 30 rules_evaluated
sleep 5
tap_ok "every rule evaluates without an error" rules_evaluated
wait "$LOAD_PID"
untrack "$LOAD_PID"
tap_note "traffic: $(jq -c '{sent, accepted}' "$T_TMP/load.json" 2>/dev/null)"

# The expressions, from the files themselves; then each asked of the API.
python3 - "$rules" "$dashboard" "$PROM" >"$T_TMP/checks" <<'PY'
import json
import re
import sys
import urllib.parse
import urllib.request

import yaml

rules_path, dash_path, prom = sys.argv[1:]
# Grafana's variables, as Grafana would fill them in
GRAFANA = {"$__rate_interval": "1m", "${__rate_interval}": "1m"}
METRIC = re.compile(r'(?<![\w:$])((?:diplom_|process_)[a-z0-9_]+|up)\b'
                    r'(\{[^}]*\})?')
OPS = ("==", "!=", ">=", "<=", ">", "<")
WORDS = ("and", "or", "unless")


def query(expr):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.load(r)
    except Exception as e:      # an HTTP 400 for a bad expression, too
        return None, str(e)
    if doc.get("status") != "success":
        return None, doc.get("error", "status " + str(doc.get("status")))
    return doc["data"]["result"], None


def operands(expr):
    """The parts of expr between comparison and set operators outside
    brackets, quotes and label matchers."""
    parts, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            op = next((o for o in OPS if expr.startswith(o, i)), None)
            word = next((w for w in WORDS if re.match(
                r"(?<![\w])%s(?![\w])" % w, expr[i:]) and
                (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_"))),
                None)
            if op or word:
                parts.append(expr[start:i])
                i += len(op or word)
                start = i
                continue
        i += 1
    parts.append(expr[start:])
    out = []
    for p in parts:
        p = p.strip()
        try:
            float(p)
        except ValueError:
            if p:
                out.append(p)
    return out


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


with open(rules_path) as f:
    rules = yaml.safe_load(f)
with open(dash_path) as f:
    dash = json.load(f)

alerts = [(r["alert"], " ".join(str(r["expr"]).split()))
          for g in rules["groups"] for r in g["rules"] if "alert" in r]
records = [(r["record"], " ".join(str(r["expr"]).split()))
           for g in rules["groups"] for r in g["rules"] if "record" in r]
queries = []
for p in panels(dash.get("panels", [])):
    for t in p.get("targets", []):
        e = t.get("expr", "")
        for k, v in GRAFANA.items():
            e = e.replace(k, v)
        queries.append((p.get("title", "?"), " ".join(e.split())))


def result(ok, desc, why=""):
    print("%s\t%s%s" % ("PASS" if ok else "FAIL", desc,
                        "" if ok or not why else "\t" + why))


result(len(alerts) > 0 and len(queries) > 0,
       "the rules and the dashboard hold expressions (%d alerts, %d "
       "dashboard queries)" % (len(alerts), len(queries)))

# every series (with its label matchers) the rules and the dashboard use
series = set()
for _, e in alerts + records + queries:
    for m in METRIC.finditer(e):
        series.add(m.group(1) + (m.group(2) or ""))
for s in sorted(series):
    res, err = query(s)
    result(bool(res), "series %s has data" % s, err or "no data")

for title, e in queries:
    if "$" in e:
        result(False, "dashboard %r: %s" % (title, e), "unknown variable")
        continue
    res, err = query(e)
    result(bool(res), "dashboard %r: %s has data" % (title, e),
           err or "no data")

for name, e in records:
    res, err = query(e)
    result(bool(res), "record %s has data" % name, err or "no data")

# an alert is quiet on a healthy stack: its expression must be valid, and
# what it compares must have data
for name, e in alerts:
    res, err = query(e)
    result(res is not None, "alert %s is a valid query" % name, err or "")
    for part in operands(e):
        res, err = query(part)
        result(bool(res), "alert %s: %s has data" % (name, part),
               err or "no data")
PY
[ -s "$T_TMP/checks" ] || tap_fail "the expressions could be read and asked"
while IFS=$'\t' read -r verdict desc why; do
	if [ "$verdict" = PASS ]; then
		tap_pass "$desc"
	else
		tap_fail "$desc"
		[ -n "$why" ] && tap_note "$why"
	fi
done <"$T_TMP/checks"

# an alert that fires for real: stop the processor
stop_pid "$processor_PID"
alert_raised() {
	api /api/v1/alerts | jq -e '.data.alerts[] |
		select(.labels.alertname == "DiplomProcessorDown")' >/dev/null
}
tap_ok "with the processor stopped, DiplomProcessorDown is raised" \
	wait_until 20 alert_raised

tap_done
