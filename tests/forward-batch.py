#!/usr/bin/env python3
"""Send single ingest requests all at once, on connections of their own.

  forward-batch.py URL ROUNDS BODIES_FILE OUT_FILE

BODIES_FILE holds one JSON string a line: the raw body of one request
(a string, so that a body may hold line breaks). Each round, one thread per
body posts it on its own keep-alive connection, all released together by a
barrier, so that the gateway reads many in the same pass of its loop. OUT
gets one JSON line per request: {"round", "body", "status", "answer"}.
"""
import http.client
import json
import sys
import threading
import urllib.parse


def main():
    url, rounds, bodies_file, out_file = sys.argv[1:5]
    u = urllib.parse.urlsplit(url)
    with open(bodies_file) as f:
        bodies = [json.loads(line) for line in f if line.strip()]
    barrier = threading.Barrier(len(bodies))
    results = []
    lock = threading.Lock()

    def client(i, body):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        for r in range(int(rounds)):
            barrier.wait()
            try:
                conn.request("POST", u.path, body.encode(),
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                status, answer = resp.status, resp.read().decode()
            except OSError as e:
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port,
                                                  timeout=30)
                status, answer = 0, str(e)
            with lock:
                results.append({"round": r, "body": i, "status": status,
                                "answer": answer})
        conn.close()

    threads = [threading.Thread(target=client, args=(i, b))
               for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out_file, "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
