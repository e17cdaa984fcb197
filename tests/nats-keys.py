#!/usr/bin/env python3
"""Throwaway NATS NKeys and JWTs for tests/nats-auth.sh.

  nats-keys.py nkey DIR      DIR/user.seed, DIR/user.pub (a user NKey) and
                             DIR/wrong.seed (another one)
  nats-keys.py operator DIR  DIR/operator.conf (operator, memory resolver
                             with a system account and one account that may
                             use JetStream: a nats-server config fragment), DIR/user.creds (a
                             user of that account) and DIR/wrong.creds (a
                             user of an account the server does not know)

An NKey is base32 (no padding) of a prefix byte, a 32-byte ed25519 key and
a CRC-16/XMODEM of the two, little endian; a seed has two prefix bytes.
A JWT is header.claims.signature, base64url without padding, the header
{"typ":"JWT","alg":"ed25519-nkey"}, signed by the issuer's NKey (the
claims of nats-io/jwt v2, "nats.version" 2).
"""
import base64
import hashlib
import json
import os
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import \
    Ed25519PrivateKey

PREFIX = {"operator": 14 << 3, "account": 0, "user": 20 << 3}
PREFIX_SEED = 18 << 3


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xffff
    return crc


def b32(data):
    return base64.b32encode(data).decode().rstrip("=")


def with_crc(raw):
    return raw + crc16(raw).to_bytes(2, "little")


class NKey:
    """An ed25519 key pair of one kind (operator, account, user)."""

    def __init__(self, kind):
        self.kind = kind
        self.raw_seed = os.urandom(32)
        key = Ed25519PrivateKey.from_private_bytes(self.raw_seed)
        self.key = key
        pub = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = b32(with_crc(bytes([PREFIX[kind]]) + pub))

    @property
    def seed(self):
        p = PREFIX[self.kind]
        head = bytes([PREFIX_SEED | (p >> 5), (p & 31) << 3])
        return b32(with_crc(head + self.raw_seed))

    def sign(self, data):
        return self.key.sign(data)


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(issuer, subject, name, nats):
    """A JWT about subject, signed by issuer (both NKeys)."""
    claims = {"iat": int(time.time()), "iss": issuer.public,
              "name": name, "sub": subject.public}
    # jti: a hash of the claims without it, as nats-io/jwt makes it
    digest = hashlib.new("sha512_256",
                         json.dumps(claims, separators=(",", ":")).encode())
    claims["jti"] = b32(digest.digest())
    claims["nats"] = dict(nats, version=2)
    head = b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"},
                             separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signed = f"{head}.{body}".encode()
    return f"{head}.{body}.{b64url(issuer.sign(signed))}"


UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1,
             "exports": -1, "wildcards": True, "conn": -1, "leaf": -1,
             "mem_storage": -1, "disk_storage": -1, "streams": -1,
             "consumer": -1}


def account_jwt(operator, account):
    return jwt(operator, account, "diplom",
               {"type": "account", "limits": UNLIMITED})


def user_creds(account, user):
    token = jwt(account, user, "diplom",
                {"type": "user", "pub": {}, "sub": {}, "subs": -1,
                 "data": -1, "payload": -1})
    return (f"-----BEGIN NATS USER JWT-----\n{token}\n"
            "------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{user.seed}\n"
            "------END USER NKEY SEED------\n")


def write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def make_nkey(d):
    user, wrong = NKey("user"), NKey("user")
    write(os.path.join(d, "user.seed"), user.seed + "\n")
    write(os.path.join(d, "user.pub"), user.public + "\n")
    write(os.path.join(d, "wrong.seed"), wrong.seed + "\n")


def make_operator(d):
    op, acct, stranger = NKey("operator"), NKey("account"), NKey("account")
    # JetStream wants a system account in operator mode
    system = NKey("account")
    op_jwt = jwt(op, op, "diplom-test",
                 {"type": "operator", "system_account": system.public})
    write(os.path.join(d, "operator.conf"),
          f"operator: {op_jwt}\n"
          f"system_account: {system.public}\n"
          "resolver: MEMORY\n"
          "resolver_preload: {\n"
          f"  {acct.public}: {account_jwt(op, acct)}\n"
          f"  {system.public}: {jwt(op, system, 'SYS', {'type': 'account'})}"
          "\n}\n")
    write(os.path.join(d, "user.creds"), user_creds(acct, NKey("user")))
    write(os.path.join(d, "wrong.creds"),
          user_creds(stranger, NKey("user")))


def main(argv):
    if len(argv) != 3 or argv[1] not in ("nkey", "operator"):
        sys.stderr.write(__doc__)
        return 2
    (make_nkey if argv[1] == "nkey" else make_operator)(argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
