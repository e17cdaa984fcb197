#!/bin/bash
# Body memory after identity: uploads that declare a large body but send
# none hold nothing of BODY_MEMORY until their key has been checked, so
# connections without a key cannot starve a client that has one; and one
# key's uploads hold at most BODY_MEMORY_SHARE of it, so a key holder
# cannot starve another either. An authenticated client's 100 KB uploads
# are measured during each attack.
. "$(dirname "$0")/lib.sh"

need_tools curl jq python3
tap_plan 6
one_attack_at_a_time

new_key() { echo "$1-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"; }
KEY_A=$(new_key a)
KEY_M=$(new_key m)
printf '%s\n%s\n' "$KEY_A" "$KEY_M" >"$T_TMP/api-keys"

stack_ports
# room for eight uploads of 1,000,000 bytes (each counts one more, for the
# terminating NUL), and not a byte more; one key may hold a quarter of it
export BODY_MEMORY=8000008 BODY_MEMORY_SHARE=25
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start"
start_role ingest ingest
API_KEYS_FILE=$T_TMP/api-keys start_role gateway gateway
wait_health "$ING" 10 && wait_health "$GW" 10 || bail "the stack did not start"

# N connections that send a head declaring 1,000,000 bytes and no body,
# with KEY (or "-": none), for SECONDS; one that is closed is opened again
cat >"$T_TMP/hold.py" <<'PY'
import select, socket, sys, time
n, port, key, secs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
head = (b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000\r\n")
if key != "-":
    head += b"Authorization: Bearer " + key.encode() + b"\r\n"
head += b"\r\n"
answers = {}
def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    return s
socks = [conn() for _ in range(n)]
print("holding", n, flush=True)
end = time.time() + secs
while time.time() < end:
    r, _, _ = select.select(socks, [], [], 0.1)
    for s in r:
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        code = data[9:12].decode() if data.startswith(b"HTTP/1.1 ") else "closed"
        answers[code] = answers.get(code, 0) + 1
        s.close()
        socks.remove(s)
        time.sleep(0.01)
        socks.append(conn())
print("answers", " ".join("%s:%d" % kv for kv in sorted(answers.items())), flush=True)
PY

# an authenticated client: 4 connections posting 100 KB messages with KEY
# for SECONDS, 40 a second in all; a JSON summary
cat >"$T_TMP/client.py" <<'PY'
import http.client, json, sys, threading, time
port, key, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
body = json.dumps({"source": "normal", "data": "n" * 100000}).encode()
hdrs = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
lat, codes, lock = [], {}, threading.Lock()
def run():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    end = time.time() + secs
    while time.time() < end:
        t0 = time.time()
        try:
            c.request("POST", "/api/v1/ingest", body, hdrs)
            r = c.getresponse()
            r.read()
            code = r.status
            if r.getheader("Connection", "").lower() == "close":
                c.close()
        except Exception:
            code = 0
            c.close()
        dt = time.time() - t0
        with lock:
            lat.append(dt * 1000)
            codes[code] = codes.get(code, 0) + 1
        time.sleep(max(0, 0.1 - dt))
ts = [threading.Thread(target=run) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
lat.sort()
sent = len(lat)
print(json.dumps({"sent": sent, "accepted": codes.get(200, 0) + codes.get(202, 0),
    "codes": {str(k): v for k, v in codes.items()},
    "p99_ms": round(lat[min(sent - 1, int(sent * 0.99))], 1) if sent else None}))
PY

# attack NAME N KEY : hold N heads with KEY while the client runs 5 s
attack() {
	python3 "$T_TMP/hold.py" "$2" "$GW_PORT" "$3" 8 >"$T_TMP/$1.out" &
	local pid=$!
	track "$pid"
	wait_until 10 grep -q holding "$T_TMP/$1.out"
	sleep 1
	python3 "$T_TMP/client.py" "$GW_PORT" "$KEY_A" 5 >"$T_TMP/$1.json"
	wait "$pid"
	untrack "$pid"
	tap_note "$1: attacker $(tail -n 1 "$T_TMP/$1.out")"
	tap_note "$1: authenticated client $(cat "$T_TMP/$1.json")"
}
# served NAME : at least 99% of the client's uploads were accepted
served() {
	jq -e '.sent > 0 and .accepted >= 0.99 * .sent' "$T_TMP/$1.json" >/dev/null
}
metric() {
	curl -s "$GW/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

attack nokey 120 -
tap_ok "120 heads without a key holding declared bodies: an authenticated client's uploads are served" \
	served nokey
tap_ok "the heads without a key were answered 401, not held" \
	grep -q "answers.*401:" "$T_TMP/nokey.out"
tap_ok "no upload was refused for the body memory" \
	test "$(metric diplom_http_bodies_refused_total)" = 0

attack onekey 40 "$KEY_M"
tap_ok "40 heads with another key holding declared bodies: the client's uploads are served" \
	served onekey
refused=$(metric diplom_http_bodies_refused_total)
tap_note "uploads answered 503: $refused"
tap_ok "that key's uploads past its share were answered 503" \
	test "${refused:-0}" -ge 30
tap_ok "the gateway is healthy" wait_http "$GW/health" 2
tap_done
