#!/usr/bin/env python3
"""tests/openapi-check.py - real answers against doc/openapi.yaml.

Usage: openapi-check.py DOC RECORDS COMMAND ARGS...

RECORDS is a file of JSON lines, one per answer checked; every command
appends to it, and `coverage` reads it back.

  req ROLE=URL METHOD TEMPLATE PATH [-H NAME:VALUE]... [-d BODY]
      [--expect STATUS]
      Send one request to the role at URL and check the answer against
      what the document says of TEMPLATE (a key of `paths`) and METHOD for
      its status: that the role serves the path, the status is listed,
      the content type, the required headers and the body's schema.
  sweep ROLE=URL...
      For every operation each role serves: another method (405 with the
      path's methods in Allow), a Content-Length over any limit (413), two
      different Content-Length headers (400), HEAD as GET without the
      body; and every path of the document the role does not serve (404).
  drain ROLE=URL PID
      Hold a request open on the role, SIGTERM PID (the role), then check
      that every operation of the role answers 503 while it drains, and
      let it go.
  coverage
      Every status the document lists for each operation on each role
      that serves it (and that its x-roles names, if it has one) was
      seen, and no check failed.

Exit status 0 when every answer matched, 1 otherwise; why on stderr.
"""

import json
import os
import re
import signal
import socket
import sys
import time
import urllib.parse

import jsonschema
import yaml

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SAMPLE_ID = "00000000-0000-4000-8000-000000000000"


class Doc:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.raw = yaml.safe_load(f)
        self.roles = {}
        for s in self.raw["servers"]:
            self.roles[self.server_role(s)] = s

    @staticmethod
    def server_role(server):
        return server["description"].split()[0]

    def resolve(self, node):
        """node with every $ref replaced by what it points at."""
        if isinstance(node, dict):
            if "$ref" in node:
                target = self.raw
                for part in node["$ref"].lstrip("#/").split("/"):
                    target = target[part.replace("~1", "/").replace("~0", "~")]
                return self.resolve(target)
            return {k: self.resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        return node

    def path_roles(self, template):
        item = self.raw["paths"][template]
        return [self.server_role(s) for s in item.get("servers", self.raw["servers"])]

    def operations(self, role):
        """(template, method, operation) of every operation role serves."""
        for template, item in self.raw["paths"].items():
            if role not in self.path_roles(template):
                continue
            for method in METHODS:
                if method in item:
                    yield template, method.upper(), self.resolve(item[method])

    @staticmethod
    def answers(response, role):
        """Whether role gives response (x-roles names the few that do)."""
        return role in response.get("x-roles", [role])

    def path_methods(self, template):
        item = self.raw["paths"][template]
        methods = [m.upper() for m in METHODS if m in item]
        if "GET" in methods and "HEAD" not in methods:
            methods.append("HEAD")
        return methods

    def sample_path(self, template, op):
        path = template
        for p in op.get("parameters", []):
            if p["in"] == "path":
                value = p.get("example", SAMPLE_ID)
                path = path.replace("{%s}" % p["name"], urllib.parse.quote(value, safe=""))
        return path

    @staticmethod
    def sample_body(op):
        body = op.get("requestBody")
        if body is None:
            return None
        media = body["content"].get("application/json", {})
        example = media.get("example", media.get("schema", {}).get("example"))
        return json.dumps(example) if example is not None else "{}"


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case names
        self.body = body                # bytes

    def header(self, name):
        return self.headers.get(name.lower())


def exchange(url, raw, timeout=10):
    """Send raw bytes to url's host and port; read the answer to its end."""
    u = urllib.parse.urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        raise ValueError("no HTTP answer: %r" % data[:80])
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return Answer(status, headers, body)


def request(url, method, path, headers=(), body=None, extra_head=""):
    """One request, Connection: close, raw so that any header can be sent."""
    u = urllib.parse.urlsplit(url)
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (u.hostname, u.port),
             "Connection: close"]
    lines += ["%s: %s" % h for h in headers]
    data = body.encode() if body is not None else b""
    if body is not None:
        lines.append("Content-Length: %d" % len(data))
    head = "\r\n".join(lines) + "\r\n" + extra_head + "\r\n"
    return exchange(url, head.encode("iso-8859-1") + data)


class Checker:
    def __init__(self, doc_path, records_path):
        self.doc = Doc(doc_path)
        self.records_path = records_path
        self.failed = False

    def fail(self, what):
        self.failed = True
        print("# FAIL %s" % what, file=sys.stderr)

    def record(self, role, method, template, answer, ok):
        with open(self.records_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"role": role, "method": method, "template": template,
                                "status": answer.status, "ok": ok}) + "\n")

    def validate(self, where, instance, schema):
        v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        errors = sorted(v.iter_errors(instance), key=lambda e: list(e.path))
        for e in errors:
            self.fail("%s: %s (at %s)" % (where, e.message, "/".join(map(str, e.path)) or "top"))
        return not errors

    def check(self, role, method, template, answer, expect=None):
        """Whether answer is what the document says; records it."""
        where = "%s %s %s -> %d" % (role, method, template, answer.status)
        before = self.failed
        self.failed = False
        self._check(where, role, method, template, answer, expect)
        ok = not self.failed
        self.failed = before or self.failed
        self.record(role, method, template, answer, ok)
        return ok

    def _check(self, where, role, method, template, answer, expect):
        if expect is not None and answer.status != expect:
            self.fail("%s: expected %d; body %r" % (where, expect, answer.body[:200]))
        if template is None:
            # a path the role does not serve: an error
            response = {"content": {"application/json": {
                "schema": self.doc.resolve(self.doc.raw["components"]["schemas"]["Error"])}}}
        else:
            if template not in self.doc.raw["paths"]:
                self.fail("%s: the document has no such path" % where)
                return
            if role not in self.doc.path_roles(template):
                self.fail("%s: the document does not list %s for this path" % (where, role))
            op = self.doc.raw["paths"][template].get(method.lower())
            if op is None:
                self.fail("%s: the document has no %s for this path" % (where, method))
                return
            response = self.doc.resolve(op)["responses"].get(str(answer.status))
            if response is None:
                self.fail("%s: status not in the document; body %r" % (where, answer.body[:200]))
                return
            if not self.doc.answers(response, role):
                self.fail("%s: the document gives it only for %s; body %r"
                          % (where, ", ".join(response["x-roles"]), answer.body[:200]))
        for name, h in response.get("headers", {}).items():
            value = answer.header(name)
            if value is None:
                if h.get("required"):
                    self.fail("%s: no %s header" % (where, name))
                continue
            schema = h.get("schema", {})
            if schema.get("type") == "integer":
                try:
                    value = int(value)
                except ValueError:
                    pass
            self.validate("%s: header %s" % (where, name), value, schema)
        content = response.get("content")
        if not content:
            if answer.body:
                self.fail("%s: a body the document does not describe" % where)
            return
        ctype = answer.header("Content-Type") or ""
        norm = lambda t: re.sub(r"\s*;\s*", ";", t.strip().lower())
        media = {norm(k): v for k, v in content.items()}.get(norm(ctype))
        if media is None:
            self.fail("%s: Content-Type %r, the document says %s"
                      % (where, ctype, ", ".join(content)))
            return
        text = answer.body.decode("utf-8", errors="replace")
        if method == "HEAD":
            return
        if norm(ctype).startswith("application/json"):
            try:
                instance = json.loads(text)
            except ValueError:
                self.fail("%s: body is not JSON: %r" % (where, text[:200]))
                return
        else:
            instance = text
        self.validate("%s: body" % where, instance, media.get("schema", {}))

    # --- commands ---------------------------------------------------------

    def cmd_req(self, args):
        role, url = args[0].split("=", 1)
        method, template, path = args[1:4]
        headers, body, expect = [], None, None
        rest = args[4:]
        while rest:
            opt, val = rest[0], rest[1]
            rest = rest[2:]
            if opt == "-H":
                name, _, value = val.partition(":")
                headers.append((name.strip(), value.strip()))
            elif opt == "-d":
                body = val
            elif opt == "--expect":
                expect = int(val)
            else:
                raise SystemExit("unknown option %s" % opt)
        if body is not None and not any(n.lower() == "content-type" for n, _ in headers):
            headers.append(("Content-Type", "application/json"))
        answer = request(url, method, path, headers, body)
        self.check(role, method, template, answer, expect)
        print(answer.body.decode("utf-8", errors="replace"))

    def cmd_sweep(self, args):
        for arg in args:
            role, url = arg.split("=", 1)
            self.sweep(role, url)

    def sweep(self, role, url):
        doc = self.doc
        served = set()
        for template, method, op in doc.operations(role):
            served.add(template)
            path = doc.sample_path(template, op)
            allowed = doc.path_methods(template)
            other = next(m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in allowed)
            a = request(url, other, path)
            if self.check(role, method, template, a, 405):
                got = sorted(m.strip() for m in (a.header("Allow") or "").split(","))
                if got != sorted(allowed):
                    self.fail("%s %s %s: Allow %r, the document says %s"
                              % (role, other, template, a.header("Allow"), ", ".join(allowed)))
            # over any limit; answered before the body is read, so none is sent
            a = exchange(url, ("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               "Content-Length: 1000000000\r\n\r\n" % (method, path)).encode())
            self.check(role, method, template, a, 413)
            a = exchange(url, ("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
                               % (method, path)).encode())
            self.check(role, method, template, a, 400)
            if method == "GET":
                g = request(url, "GET", path)
                h = request(url, "HEAD", path)
                if (h.status, h.header("Content-Type"), h.body) != \
                        (g.status, g.header("Content-Type"), b""):
                    self.fail("%s HEAD %s: %d %s %r, GET gave %d %s"
                              % (role, template, h.status, h.header("Content-Type"),
                                 h.body[:80], g.status, g.header("Content-Type")))
                self.check(role, "GET", template, g)
        for template, item in doc.raw["paths"].items():
            if template in served:
                continue
            path = doc.sample_path(template, next(
                doc.resolve(item[m]) for m in METHODS if m in item))
            for method in doc.path_methods(template):
                if method == "HEAD":
                    continue
                a = request(url, method, path, body="{}" if method != "GET" else None)
                self.check(role, method, None, a, 404)

    def cmd_drain(self, args):
        role, url = args[0].split("=", 1)
        pid = int(args[1])
        u = urllib.parse.urlsplit(url)
        # a request whose body is still coming holds the drain open
        held = socket.create_connection((u.hostname, u.port), timeout=10)
        held.sendall(b"POST /held HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.3)
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 10
        while request(url, "GET", "/health").status != 503:
            if time.time() > deadline:
                self.fail("%s did not start to drain" % role)
                held.close()
                return
            time.sleep(0.05)
        for template, method, op in self.doc.operations(role):
            a = request(url, method, self.doc.sample_path(template, op),
                        body=self.doc.sample_body(op))
            self.check(role, method, template, a, 503)
        held.close()

    def cmd_coverage(self, args):
        seen, bad = set(), 0
        with open(self.records_path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                seen.add((r["role"], r["method"], r["template"], r["status"]))
                bad += not r["ok"]
        if bad:
            self.fail("%d answers did not match the document" % bad)
        for role in self.doc.roles:
            for template, method, op in self.doc.operations(role):
                for status, response in op["responses"].items():
                    if not self.doc.answers(response, role):
                        continue
                    if (role, method, template, int(status)) not in seen:
                        self.fail("%s %s %s: the document lists %s; no answer had it"
                                  % (role, method, template, status))


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    checker = Checker(argv[1], argv[2])
    getattr(checker, "cmd_" + argv[3])(argv[4:])
    return 1 if checker.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
