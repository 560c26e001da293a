# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Week 23: API Security
#
# **Guide:** Phase 3, 3.1 API Design & Management, Week 23 "Security & Standards" (JWT, OAuth, CORS, API
# Security: input validation and SQL injection prevention) and its practical exercise "implement JWT
# authentication with refresh tokens". The section's other practical exercises (a REST API with an OpenAPI
# specification, a gRPC service, an API gateway) are built in weeks 19-22.
#
# **Time:** about 4 hours (1.5 h reading and running, 2.5 h exercises).
#
# **Points:** 26 (six autograded exercises, 23 points; one written answer, 3 points).
#
# **Prerequisites:** weeks 19-22 (HTTP APIs, status codes, gateways) and weeks 1-4 (SQL, PostgreSQL); Python
# bytes, dictionaries, classes and exceptions. No cryptography background is needed: hashes, HMACs and
# signatures are explained where they are used.
#
# **Reading:** RFC 7519 (JSON Web Token) and RFC 7515 (JSON Web Signature), sections 3-5 and Appendix A;
# RFC 8725 "JSON Web Token Best Current Practices"; RFC 6749 (OAuth 2.0) section 4.1 and RFC 7636 (PKCE);
# RFC 9700 "Best Current Practice for OAuth 2.0 Security", sections 2 and 4.14; the WHATWG Fetch standard,
# section "CORS protocol"; OWASP API Security Top 10 (2023) and the OWASP "SQL Injection Prevention Cheat
# Sheet"; Newman, *Building Microservices* (2nd ed.), ch. 11 "Security"; Nygard, *Release It!* (2nd ed.),
# ch. 11 "Security".
#
# **How to use this notebook:** run the cells from top to bottom (Run → Run All Cells works). PostgreSQL and
# two small HTTP services (an authorization server and an orders API) run inside this kernel on 127.0.0.1;
# nothing reaches the internet. Write your answers where a cell says `YOUR CODE HERE`, then run the test cell
# below it (more tests run when your work is graded). Cells that build on an exercise say so until it is
# solved. Reruns give the same tables; timings and the random codes and tokens of the live OAuth flow differ,
# so the text speaks of ratios computed in the cells. Back to the [course map](00-start-here.ipynb).

# %% [markdown]
# ## Learning objectives
#
# By the end of this notebook you can:
#
# 1. build and verify JSON Web Tokens with HS256 and RS256 from the bytes up, checked against the RFC 7515
#    examples, and refuse the classic attacks (`alg: none`, RS256/HS256 key confusion, tampering, expired and
#    not-yet-valid tokens) with an explicit allow-list of algorithms and keys (JWT);
# 2. pair short access tokens with rotating refresh tokens, detect a stolen refresh token when it is used
#    twice, and compute the window of exposure that each choice leaves (JWT);
# 3. run the OAuth 2.0 authorization code flow with PKCE over real HTTP, say what each party holds and why the
#    code alone is worthless to a thief (OAuth);
# 4. decide a CORS preflight the way the Fetch standard says, and recognise the misconfigurations that open
#    an API to every web site (CORS);
# 5. exploit SQL injection on a real PostgreSQL (login bypass, UNION read, stacked update, blind extraction
#    through ORDER BY), then close it with bind parameters, an allow-list for identifiers, least privilege
#    and input validation (API Security).

# %% [markdown]
# ### Set-up
#
# `solved(...)` tells whether an exercise is done yet (so that demonstrations can wait for it), PostgreSQL
# gets a fresh `week23` database, and `http` is a `requests` session that never uses a proxy (a proxy would
# turn a request to 127.0.0.1 into one that leaves the machine).

# %%
import base64
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import time
import urllib.parse

import flask_cors
import ipywidgets as W
import pandas as pd
import plotly.graph_objects as go
import psycopg
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, jsonify, redirect, request
from flask_cors import CORS

import archlab
from archlab import datasets
from archlab.exercises import needs


def solved(check) -> bool:
    """False while `check()` stops at an exercise that still raises NotImplementedError."""
    try:
        check()
    except NotImplementedError:
        return False
    except Exception:          # attempted: let the demonstration show what happens
        return True
    return True


pg = archlab.postgres()                        # a real PostgreSQL server on 127.0.0.1
db = pg.create_database("week23")              # recreated: every run starts from the same state
conn = pg.connect(db)
http = requests.Session()
http.trust_env = False
pg

# %% [markdown]
# ## JWT: stateless authentication and authorization
#
# A classic web session is *stateful*: the server hands the browser a random session id and keeps what it
# means (which user, which rights) in its own memory or database, so every request costs a lookup, and
# every service that wants to know who is calling needs that store. A **JSON Web Token** (JWT, RFC 7519)
# carries the facts themselves, the *claims*, signed by the issuer. Any service holding the verification key
# checks a token on its own, with no lookup and no shared session store: that is what *stateless* means,
# and why JWTs are the usual bearer tokens between an authorization server, a gateway and many services.
#
# The price is the same property seen from the other side: a token stays valid until its expiry whatever
# happens at the issuer (a logout, a password change, a stolen laptop), unless every verifier also consults
# a revocation list, which brings the lookup back. Hence short-lived *access* tokens plus revocable *refresh*
# tokens, later in this section.
#
# **The format.** A signed JWT is a JSON Web Signature (JWS, RFC 7515) in compact form: three base64url
# strings joined by dots, `BASE64URL(header).BASE64URL(payload).BASE64URL(signature)`.
#
# - The **header** says how the token is signed: `{"alg":"HS256","typ":"JWT"}`.
# - The **payload** holds the claims: the registered ones are `iss` (issuer), `sub` (subject, the user id),
#   `aud` (audience, the API it is meant for), `exp` (expires at) and `nbf` (not before) in seconds since
#   1970, `iat` (issued at) and `jti` (a unique id); any others (`scope`, `role`) are up to the issuer.
# - The **signature** covers the ASCII bytes of the first two parts *exactly as sent*, dot included.
#
# Base64url is base64 with `-` and `_` instead of `+` and `/` and without `=` padding, so a token travels
# in a URL or an HTTP header unescaped. Nothing is encrypted: anyone holding a token can read its claims.
# The signature only makes every change detectable.
#
# **HS256 and RS256.** HS256 is HMAC-SHA-256 with one shared secret: whoever can verify a token can also
# mint one, so every verifier must be as trusted as the issuer. RS256 is an RSA signature (PKCS #1 v1.5 with
# SHA-256): the issuer signs with its private key and publishes the public key (a JSON Web Key Set at a
# well-known URL); any number of services, other companies' included, verify without being able to mint.
# RFC 7518 requires an HMAC key at least as long as the hash (32 bytes for HS256) and RSA keys of at least
# 2048 bits.
#
# **Authentication is not authorization.** The signature proves *who* is calling (`sub`) and what the
# issuer allowed in general (`scope`, `role`). Whether *this* user may read *this* order is a check the API
# makes on every request against its own data; forgetting it is the first entry of the OWASP API Security
# Top 10 (2023), "Broken Object Level Authorization". The orders API in the OAuth section makes that check.
#
# The examples of RFC 7515 Appendix A fix every byte, so they make exact tests. Appendix A.1 signs with HS256
# and JSON containing line breaks (`\r\n`); Appendix A.2 signs the same payload with RS256 and a published
# 2048-bit RSA key, rebuilt below from its modulus `n` and private exponent `d`. That published key is this
# notebook's authorization-server key: fine for a lesson, never for anything real.

# %%
def b64u(text: str) -> bytes:
    """Decode the base64url strings printed in the RFCs (plumbing for this cell; you write your own below)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# RFC 7515 Appendix A.1 (HS256), byte for byte
A1_HEADER = b'{"typ":"JWT",\r\n "alg":"HS256"}'
A1_PAYLOAD = b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'
A1_KEY = b64u("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
A1_TOKEN = ("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
            ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
            ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")

# RFC 7515 Appendix A.2 (RS256): the RSA key from its JWK members n, e, d
A2_N = ("ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2l"
        "ZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2"
        "CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb"
        "54h4FRWyuXpoQ")
A2_D = ("Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_"
        "GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlB"
        "judU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU9"
        "1p1DhOVRuOopznQ")


def rsa_private_key(n_b64: str, d_b64: str, e: int = 65537) -> rsa.RSAPrivateKey:
    n, d = int.from_bytes(b64u(n_b64), "big"), int.from_bytes(b64u(d_b64), "big")
    p, q = rsa.rsa_recover_prime_factors(n, e, d)
    return rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
                                 rsa.RSAPublicNumbers(e, n)).private_key()


AS_KEY = rsa_private_key(A2_N, A2_D)            # the authorization server's private key (a published test key!)
AS_PUBLIC = AS_KEY.public_key()                 # what every API gets
AS_PUBLIC_PEM = AS_PUBLIC.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
print(f"RSA key: {AS_KEY.key_size} bits; HMAC key of A.1: {len(A1_KEY)} bytes")
print(AS_PUBLIC_PEM.decode()[:100] + "...")

# %% [markdown]
# ### Exercise 1: base64url and signing (3 points)
#
# Complete `b64url_encode`, `b64url_decode` and `sign_jws`.
#
# - The decoder is **strict**: it refuses `=` padding, any character outside `A-Z a-z 0-9 - _`, and lengths
#   of the form 4k + 1 (no byte string encodes to those). A lenient decoder lets one token be spelt several
#   ways, which defeats every cache or deny-list keyed by the token string.
# - `sign_jws` reads `alg` from the header it is given and signs `BASE64URL(header) + "." +
#   BASE64URL(payload)`: HS256 with `hmac` and `hashlib.sha256` and a `bytes` key; RS256 with the
#   `cryptography` private key's `sign(data, padding.PKCS1v15(), hashes.SHA256())`. It takes the JSON as
#   bytes because the RFC examples contain line breaks that `json.dumps` would never produce.
#
# The tests compare with RFC 7515 Appendix A.1 here, and with Appendix A.2 when graded.

# %% nbgrader={"grade_id": "week23-api-security-ex01-jws-sign", "solution": true}
def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2), as a str."""
    ### BEGIN SOLUTION
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
    ### END SOLUTION


def b64url_decode(text: str) -> bytes:
    """Inverse of b64url_encode. ValueError for anything b64url_encode cannot produce: '=' padding,
    characters outside A-Z a-z 0-9 - _ (whitespace, '+', '/' included), a length of 4k + 1, a non-str."""
    ### BEGIN SOLUTION
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise ValueError(f"not base64url: {text!r}")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    ### END SOLUTION


def sign_jws(header: bytes, payload: bytes, key) -> str:
    """The compact JWS of `payload` (bytes) under `header` (the JSON bytes of an object with "alg").
    alg "HS256": key is bytes (HMAC-SHA-256); alg "RS256": key is an rsa.RSAPrivateKey (PKCS #1 v1.5,
    SHA-256). ValueError for any other alg ("none" included) or a key of the wrong type for the alg."""
    ### BEGIN SOLUTION
    alg = json.loads(header).get("alg")
    signing_input = f"{b64url_encode(header)}.{b64url_encode(payload)}".encode("ascii")
    if alg == "HS256" and isinstance(key, bytes):
        signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    elif alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"cannot sign alg {alg!r} with a {type(key).__name__}")
    return signing_input.decode("ascii") + "." + b64url_encode(signature)
    ### END SOLUTION


# %% nbgrader={"grade_id": "week23-api-security-ex01-jws-sign-tests", "grade": true, "points": 1}
_t = sign_jws(A1_HEADER, A1_PAYLOAD, A1_KEY)
assert type(_t) is str and _t == A1_TOKEN, _t
assert b64url_encode(b"\xfb\xff") == "-_8" and b64url_encode(b"") == ""
assert type(b64url_decode("-_8")) is bytes and b64url_decode("-_8") == b"\xfb\xff"
for _bad in ("-_8=", "+/8", "abcde", "ab cd"):
    try:
        b64url_decode(_bad)
    except ValueError:
        continue
    raise AssertionError(f"b64url_decode accepted {_bad!r}")
print("visible signing tests pass: your HS256 signature is the RFC's")

# %% nbgrader={"grade_id": "week23-api-security-ex01-jws-sign-hidden", "grade": true, "points": 2}
assert b64url_decode(b64url_encode(b"\x00\x01")) == b"\x00\x01"
### BEGIN HIDDEN TESTS
import base64 as _b64
import hashlib as _hashlib
import hmac as _hmac

from cryptography.exceptions import InvalidSignature as _InvalidSignature
from cryptography.hazmat.primitives import hashes as _hashes
from cryptography.hazmat.primitives.asymmetric import padding as _padding
from cryptography.hazmat.primitives.asymmetric import rsa as _rsa
from hypothesis import given, settings
from hypothesis import strategies as st


def _u(s):
    return _b64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _e(b):
    return _b64.urlsafe_b64encode(b).rstrip(b"=").decode()


_n = ("ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2l"
      "ZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2"
      "CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb"
      "54h4FRWyuXpoQ")
_d = ("Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_"
      "GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlB"
      "judU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU9"
      "1p1DhOVRuOopznQ")
_N, _D = int.from_bytes(_u(_n), "big"), int.from_bytes(_u(_d), "big")
_p, _q = _rsa.rsa_recover_prime_factors(_N, 65537, _D)
_a2_key = _rsa.RSAPrivateNumbers(_p, _q, _D, _rsa.rsa_crt_dmp1(_D, _p), _rsa.rsa_crt_dmq1(_D, _q),
                                 _rsa.rsa_crt_iqmp(_p, _q), _rsa.RSAPublicNumbers(65537, _N)).private_key()
_a2_payload = b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'
_a2_want = ("eyJhbGciOiJSUzI1NiJ9"
            ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
            ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CU"
            "Ar7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--"
            "xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_Io"
            "ypGlUPQGe77Rw")
_got = sign_jws(b'{"alg":"RS256"}', _a2_payload, _a2_key)
assert type(_got) is str and _got == _a2_want, "RS256 signature differs from RFC 7515 Appendix A.2"

# exact edge encodings and strict decoding
for _raw, _txt in ((b"", ""), (b"\xfb", "-w"), (b"\xfb\xff", "-_8"), (b"\xfb\xff\xbf", "-_-_"), (b"abcd", "YWJjZA")):
    assert type(b64url_encode(_raw)) is str and b64url_encode(_raw) == _txt, (_raw, b64url_encode(_raw))
    assert type(b64url_decode(_txt)) is bytes and b64url_decode(_txt) == _raw
for _bad in ("-w==", "YWJjZA==", "+w", "/w", "YW Jj", "YWJj\n", "a", "YWJjZ", "é", "YQ.", None, b"YQ"):
    try:
        b64url_decode(_bad)
    except ValueError:
        continue
    raise AssertionError(f"b64url_decode accepted {_bad!r}")


@settings(derandomize=True, deadline=None, max_examples=150, database=None)
@given(st.binary(max_size=80))
def _roundtrip(data):
    enc = b64url_encode(data)
    assert type(enc) is str and enc == _e(data), (data, enc)
    assert b64url_decode(enc) == data


_roundtrip()

# HS256 against a local HMAC, RS256 checked with the public key, refusals
_rng = random.Random(2315)
for _i in range(30):
    _key = bytes(_rng.randrange(256) for _ in range(_rng.randrange(1, 70)))
    _hdr = json.dumps({"alg": "HS256", "kid": f"k{_i}"}).encode()
    _pl = json.dumps({"sub": f"user{_i}", "n": _rng.random()}).encode()
    _si = f"{_e(_hdr)}.{_e(_pl)}"
    assert sign_jws(_hdr, _pl, _key) == _si + "." + _e(_hmac.new(_key, _si.encode(), _hashlib.sha256).digest())
_other = _rsa.generate_private_key(public_exponent=65537, key_size=2048)
_tok = sign_jws(b'{"alg":"RS256","typ":"JWT"}', b'{"sub":"zoe"}', _other)
_h, _pl, _sig = _tok.split(".")
try:
    _other.public_key().verify(_u(_sig), f"{_h}.{_pl}".encode(), _padding.PKCS1v15(), _hashes.SHA256())
except _InvalidSignature as _err:
    raise AssertionError("RS256 signature does not verify with the public key (PKCS #1 v1.5, SHA-256)") from _err
for _hdr, _key in ((b'{"alg":"none"}', b"k" * 32), (b'{"alg":"HS256"}', _other), (b'{"alg":"RS256"}', b"k" * 32),
                   (b'{"alg":"HS512"}', b"k" * 32), (b'{"alg":"RS256"}', _other.public_key())):
    try:
        sign_jws(_hdr, b"{}", _key)
    except ValueError:
        continue
    raise AssertionError(f"sign_jws signed {_hdr!r} with a {type(_key).__name__}")
### END HIDDEN TESTS

# %% [markdown]
# With the signer, `make_jwt` builds tokens from claims (compact JSON, as libraries do). The payload is only
# base64url: anyone who holds a token reads it.

# %%
def make_jwt(claims: dict, key, alg: str, kid: str | None = None) -> str:
    header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
    dump = lambda obj: json.dumps(obj, separators=(",", ":")).encode()
    return sign_jws(dump(header), dump(claims), key)


NOW = 1_750_000_000                                   # a fixed clock for the examples (June 2025)
HS_SECRET = hashlib.sha256(b"week23 demo secret").digest()   # real secrets: secrets.token_bytes(32) from a vault
needs(solved(lambda: make_jwt({}, HS_SECRET, "HS256")), "Exercise 1")
claims = {"iss": "https://auth.shop.example", "sub": "alice", "aud": "orders-api", "scope": "orders:read",
          "iat": NOW, "exp": NOW + 900}
hs_token, rs_token = make_jwt(claims, HS_SECRET, "HS256"), make_jwt(claims, AS_KEY, "RS256", kid="as-2025")
header64, payload64, signature64 = hs_token.split(".")
print(hs_token, "\n")
print("anyone can read it:", json.loads(b64u(header64)), json.loads(b64u(payload64)))
pd.DataFrame({"alg": ["HS256", "RS256"], "token bytes": [len(hs_token), len(rs_token)],
              "signature bytes": [len(b64u(t.split(".")[2])) for t in (hs_token, rs_token)]})

# %% [markdown]
# Every request carries the token, so its size matters a little: the RS256 signature is as long as the RSA
# modulus (256 bytes for 2048 bits) against HMAC-SHA-256's 32. The time to sign and to verify differs far
# more:

# %%
def per_op_us(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


si = A1_TOKEN.rsplit(".", 1)[0].encode()             # a signing input: header.payload
rs_sig = AS_KEY.sign(si, padding.PKCS1v15(), hashes.SHA256())
cost = pd.Series({
    "HS256 sign or verify (one HMAC)": per_op_us(lambda: hmac.new(HS_SECRET, si, hashlib.sha256).digest(), 3000),
    "RS256 sign (private key)": per_op_us(lambda: AS_KEY.sign(si, padding.PKCS1v15(), hashes.SHA256()), 60),
    "RS256 verify (public key)": per_op_us(lambda: AS_PUBLIC.verify(rs_sig, si, padding.PKCS1v15(), hashes.SHA256()),
                                           300),
}, name="microseconds per operation")
print(f"RS256 signing costs {cost.iloc[1] / cost.iloc[0]:,.0f}x an HMAC, verifying {cost.iloc[2] / cost.iloc[0]:,.0f}x;"
      f" RSA verifies {cost.iloc[1] / cost.iloc[2]:.0f}x faster than it signs")
cost.round(1).to_frame()

# %% [markdown]
# RSA verification uses the small public exponent 65537 and is many times cheaper than signing, which
# suits tokens: one issuer signs once, many APIs verify on every request. HMAC is cheaper still, but its key
# must then live in every API.
#
# **A weak HMAC secret is an offline password.** A token is a plaintext and its HMAC: an attacker who holds
# one can try candidate secrets on their own machine, as fast as they can compute HMACs, without ever
# talking to the server. Secrets copied from tutorials are the first guesses (the HS256 example on jwt.io
# uses `your-256-bit-secret`):

# %%
needs(solved(lambda: make_jwt({}, HS_SECRET, "HS256")), "Exercise 1")
weak_token = make_jwt({"sub": "alice", "role": "customer", "exp": NOW + 900}, b"your-256-bit-secret", "HS256")
h64, p64, s64 = weak_token.split(".")
wordlist = [b"secret", b"changeme", b"jwt-secret", b"password", b"your-256-bit-secret", b"supersecret"]
found = next(w for w in wordlist if hmac.compare_digest(hmac.new(w, f"{h64}.{p64}".encode(), hashlib.sha256).digest(),
                                                        b64u(s64)))
rate = 1e6 / per_op_us(lambda: hmac.new(b"guess", f"{h64}.{p64}".encode(), hashlib.sha256).digest(), 20000)
print(f"secret found in the word list: {found!r}; the attacker can now mint any token, e.g. role=admin")
print(f"one Python thread tries {rate:,.0f} secrets/s: every 8-character lowercase+digit secret "
      f"({36**8:.1e}) in {36**8 / rate / 86400:,.0f} days; a random 32-byte secret (2^256) in "
      f"{2**256 / rate / 3.15e7:.0e} years")

# %% [markdown]
# One thread needs the days printed above for all 8-character secrets; password-cracking hardware computes
# HMACs orders of magnitude faster, so short secrets fall in hours. A secret of 32 random bytes
# (`secrets.token_bytes(32)`) is out of reach for any hardware, which is why the verifier you write next
# refuses HMAC keys shorter than 32 bytes.
#
# ### The classic attacks, and the verifier that refuses them
#
# In 2015 Tim McLean showed that several popular JWT libraries could be fooled in two ways, both because they
# let the *token* say how it should be checked:
#
# - **`alg: none`.** RFC 7519 section 6 defines "unsecured JWTs" with `{"alg":"none"}` and an empty
#   signature. A verifier that takes the algorithm from the header accepts a forged token that simply says
#   it needs no signature (attack tools also try `None`, `NONE` and `nOnE`, which some libraries missed).
# - **Key confusion (RS256 → HS256).** An API verifies RS256 with the issuer's public key, configured as PEM
#   text. The attacker takes that public key (it is public), writes a token with `{"alg":"HS256"}` and signs
#   it with HMAC *using the PEM bytes as the secret*. A verifier that picks HMAC because the header says so,
#   and feeds it "the key", computes the same HMAC: the forged token is valid.
#
# RFC 8725 (JWT best current practices, section 3.1) answers both: the *application* states which algorithms
# it accepts, and each key is used with exactly one algorithm. So the verifier has an **allow-list** of
# algorithms (`"none"` is never on it) and checks that the **key fits the algorithm**: an HMAC secret is
# bytes of at least 32 and never a PEM public key; an RS256 key is an RSA public key of at least 2048 bits.
#
# The other checks:
#
# - **Tampering.** Any change to the header or the payload changes the signing input, so the signature no
#   longer matches. Compare HMACs with `hmac.compare_digest`, which takes the same time wherever the first
#   difference is; `==` stops at the first differing byte, and an attacker measuring response times can
#   learn a valid signature byte by byte. (No test can see this; it is on you.)
# - **Expiry.** `exp` is mandatory here (a token without it is valid forever), and it must be a finite
#   number: Python's `json` module happily parses `Infinity`. The token is expired when
#   `now >= exp + leeway`, and not yet valid when `now < nbf - leeway`; the *leeway* (RFC 7519 suggests "a
#   few minutes" at most) absorbs clock differences between issuer and API. The clock is a parameter (`now`),
#   so tests and the demonstration below run at any moment they like.
# - **Order.** Check the signature *before* looking at claims, so nothing unauthenticated influences the
#   decision, and report one reason, the first check that fails.

# %%
class InvalidToken(Exception):
    """A token was refused; `reason` says why."""

    REASONS = ("malformed", "algorithm", "key", "signature", "claims", "expired", "not_yet_valid",  # verify_jwt
               "unknown", "revoked", "reuse")                                                        # refresh tokens

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# %% [markdown]
# ### Exercise 2: a JWT verifier (5 points)
#
# Complete `verify_jwt`. It returns the claims of a valid token and raises `InvalidToken(reason)` otherwise,
# checking in the order of the docstring. `key` is what the API was configured with: `bytes` (an HMAC secret,
# or the PEM text of an RSA public key) or an `rsa.RSAPublicKey`. To read a PEM key use
# `serialization.load_pem_public_key(key)` (it raises `ValueError` for anything else); to check an RSA
# signature, `public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())` raises
# `InvalidSignature` when it does not match.

# %% nbgrader={"grade_id": "week23-api-security-ex02-jwt-verify", "solution": true}
SUPPORTED_ALGORITHMS = ("HS256", "RS256")


def verify_jwt(token: str, key, algorithms: list, now: float, leeway: float = 0.0) -> dict:
    """The claims (a dict) of `token` if it is valid at time `now`; else raise InvalidToken(reason), the
    first of these checks that fails:
    1. "malformed": not a str of three dot-separated base64url segments (use your b64url_decode) whose
       header and payload are JSON objects, with a str "alg" in the header;
    2. "algorithm": alg is not in `algorithms` (the caller's allow-list) or not in SUPPORTED_ALGORITHMS;
    3. "key": the key does not fit alg. HS256: bytes of at least 32 bytes, not containing b"-----BEGIN"
       (a PEM key is never an HMAC secret). RS256: an rsa.RSAPublicKey, or bytes holding the PEM of one,
       of at least 2048 bits;
    4. "signature": the signature over the ASCII of "<header segment>.<payload segment>" does not match
       (HMAC compared with hmac.compare_digest);
    5. "claims": "exp" missing or not a finite int/float (bool is not a number), or "nbf" present and not one;
    6. "expired": now >= exp + leeway;
    7. "not_yet_valid": "nbf" present and now < nbf - leeway."""
    ### BEGIN SOLUTION
    try:
        if not isinstance(token, str) or token.count(".") != 2:
            raise ValueError("not three segments")
        h64, p64, s64 = token.split(".")
        header, claims, signature = json.loads(b64url_decode(h64)), json.loads(b64url_decode(p64)), b64url_decode(s64)
    except ValueError as e:                     # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidToken("malformed") from e
    if type(header) is not dict or type(claims) is not dict or type(header.get("alg")) is not str:
        raise InvalidToken("malformed")
    alg = header["alg"]
    if alg not in algorithms or alg not in SUPPORTED_ALGORITHMS:
        raise InvalidToken("algorithm")
    signing_input = f"{h64}.{p64}".encode("ascii")
    if alg == "HS256":
        if not isinstance(key, bytes) or len(key) < 32 or b"-----BEGIN" in key:
            raise InvalidToken("key")
        expected = hmac.new(key, signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise InvalidToken("signature")
    else:
        public = key
        if isinstance(key, bytes):
            try:
                public = serialization.load_pem_public_key(key)
            except ValueError:
                raise InvalidToken("key") from None
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size < 2048:
            raise InvalidToken("key")
        try:
            public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise InvalidToken("signature") from None

    def number(x):
        return type(x) in (int, float) and math.isfinite(x)

    if not number(claims.get("exp")) or ("nbf" in claims and not number(claims["nbf"])):
        raise InvalidToken("claims")
    if now >= claims["exp"] + leeway:
        raise InvalidToken("expired")
    if "nbf" in claims and now < claims["nbf"] - leeway:
        raise InvalidToken("not_yet_valid")
    return claims
    ### END SOLUTION


# %% nbgrader={"grade_id": "week23-api-security-ex02-jwt-verify-tests", "grade": true, "points": 2}
def _refusal(token, key, algorithms, now, leeway=0.0):
    try:
        verify_jwt(token, key, algorithms, now=now, leeway=leeway)
    except InvalidToken as e:
        return e.reason
    return "accepted"


_c = verify_jwt(A1_TOKEN, A1_KEY, ["HS256"], now=1300819379)
assert type(_c) is dict and _c == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}, _c
assert _refusal(A1_TOKEN, A1_KEY, ["HS256"], now=1300819380) == "expired"
assert _refusal(A1_TOKEN, A1_KEY, ["HS256"], now=1300819385, leeway=10) == "accepted"
assert _refusal(A1_TOKEN, A1_KEY, ["RS256"], now=0) == "algorithm"
_h, _p, _s = A1_TOKEN.split(".")
_eve = base64.urlsafe_b64encode(A1_PAYLOAD.replace(b"joe", b"eve")).rstrip(b"=").decode()
assert _refusal(f"{_h}.{_eve}.{_s}", A1_KEY, ["HS256"], now=0) == "signature"                # iss changed to eve
assert _refusal(f"eyJhbGciOiJub25lIn0.{_p}.", A1_KEY, ["HS256"], now=0) == "algorithm"       # {"alg":"none"}
assert _refusal("not.a.token!", A1_KEY, ["HS256"], now=0) == "malformed"
print("visible verifier tests pass")

# %% nbgrader={"grade_id": "week23-api-security-ex02-jwt-verify-hidden", "grade": true, "points": 3}
try:
    verify_jwt("x", b"k" * 32, ["HS256"], now=0)
except InvalidToken as _e:
    assert _e.reason == "malformed"
### BEGIN HIDDEN TESTS
import base64 as _b64
import hashlib as _hashlib
import hmac as _hmac
import json as _json
import random as _random

from cryptography.hazmat.primitives import hashes as _hashes
from cryptography.hazmat.primitives import serialization as _ser
from cryptography.hazmat.primitives.asymmetric import padding as _padding
from cryptography.hazmat.primitives.asymmetric import rsa as _rsa


def _e(b):
    return _b64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _tok(header, claims, sign, raw=False):
    h = header if raw else _json.dumps(header).encode()
    p = claims if raw else _json.dumps(claims).encode()
    si = f"{_e(h)}.{_e(p)}"
    return si + "." + _e(sign(si.encode()))


def _why(token, key, algs, now, leeway=0.0):
    try:
        got = verify_jwt(token, key, algs, now=now, leeway=leeway)
    except InvalidToken as err:
        assert type(err.reason) is str, err.reason
        return err.reason
    assert type(got) is dict, type(got)
    return got


_now = 1_800_000_000
_secret = _hashlib.sha256(b"hidden test secret").digest()
_hs = lambda si: _hmac.new(_secret, si, _hashlib.sha256).digest()
_key = _rsa.generate_private_key(public_exponent=65537, key_size=2048)
_pub = _key.public_key()
_pem = _pub.public_bytes(_ser.Encoding.PEM, _ser.PublicFormat.SubjectPublicKeyInfo)
_rs = lambda si: _key.sign(si, _padding.PKCS1v15(), _hashes.SHA256())
_claims = {"sub": "bob", "role": "customer", "exp": _now + 60}

# valid tokens, including the RFC's own bytes (verify what was sent, do not re-encode)
assert _why(_tok({"alg": "HS256", "typ": "JWT"}, _claims, _hs), _secret, ["HS256"], _now) == _claims
assert _why(_tok({"alg": "RS256"}, _claims, _rs), _pub, ["RS256"], _now) == _claims
assert _why(_tok({"alg": "RS256"}, _claims, _rs), _pem, ["HS256", "RS256"], _now) == _claims
_raw_h, _raw_p = b'{"alg":"HS256" ,\r\n "kid":"1"}', b'{ "sub":"eve",\r\n  "exp":1800000060 }'
assert _why(_tok(_raw_h, _raw_p, _hs, raw=True), _secret, ["HS256"], _now) == {"sub": "eve", "exp": 1800000060}
_a2 = ("eyJhbGciOiJSUzI1NiJ9"
       ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
       ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CU"
       "Ar7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--"
       "xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_Io"
       "ypGlUPQGe77Rw")
_n = ("ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2l"
      "ZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2"
      "CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb"
      "54h4FRWyuXpoQ")
_a2_pub = _rsa.RSAPublicNumbers(65537, int.from_bytes(_b64.urlsafe_b64decode(_n + "=" * (-len(_n) % 4)), "big")).public_key()
assert _why(_a2, _a2_pub, ["RS256"], 1300819379) == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}

# alg=none in every spelling, with and without a signature
for _alg in ("none", "None", "NONE", "nOnE"):
    for _algs in (["HS256"], ["RS256"], ["HS256", "RS256"]):
        for _sig in (lambda si: b"", _hs):
            assert _why(_tok({"alg": _alg}, _claims, _sig), _secret, _algs, _now) == "algorithm", (_alg, _algs)
assert _why(_tok({"alg": "none"}, _claims, lambda si: b""), _secret, ["none", "HS256"], _now) == "algorithm"
assert _why(_tok({"alg": "HS512"}, _claims, _hs), _secret, ["HS512", "HS256"], _now) == "algorithm"

# key confusion: HS256 signed with the public key's PEM bytes
_forged = _tok({"alg": "HS256"}, {**_claims, "role": "admin"}, lambda si: _hmac.new(_pem, si, _hashlib.sha256).digest())
assert _why(_forged, _pem, ["RS256"], _now) == "algorithm"
assert _why(_forged, _pem, ["RS256", "HS256"], _now) == "key"
assert _why(_forged, _pub, ["HS256", "RS256"], _now) == "key"
_rs_token = _tok({"alg": "RS256"}, _claims, _rs)
assert _why(_rs_token, _secret, ["HS256"], _now) == "algorithm"
assert _why(_rs_token, _secret, ["HS256", "RS256"], _now) == "key"
_short = b"sixteen byte key"
assert _why(_tok({"alg": "HS256"}, _claims, lambda si: _hmac.new(_short, si, _hashlib.sha256).digest()), _short,
            ["HS256"], _now) == "key"
_small = _rsa.generate_private_key(public_exponent=65537, key_size=1024)
assert _why(_tok({"alg": "RS256"}, _claims, lambda si: _small.sign(si, _padding.PKCS1v15(), _hashes.SHA256())),
            _small.public_key(), ["RS256"], _now) == "key"
assert _why(_rs_token, b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n", ["RS256"], _now) == "key"

# tampering
_good = _tok({"alg": "HS256"}, _claims, _hs)
_h, _p, _s = _good.split(".")
_admin = _e(_json.dumps({**_claims, "role": "admin"}).encode())
assert _why(f"{_h}.{_admin}.{_s}", _secret, ["HS256"], _now) == "signature"
assert _why(f"{_e(_json.dumps({'alg': 'HS256', 'kid': 'x'}).encode())}.{_p}.{_s}", _secret, ["HS256"], _now) == "signature"
assert _why(f"{_h}.{_p}.{_s[:-4]}", _secret, ["HS256"], _now) == "signature"
assert _why(f"{_h}.{_p}.", _secret, ["HS256"], _now) == "signature"
_rh, _rp, _rsig = _rs_token.split(".")
assert _why(f"{_rh}.{_admin}.{_rsig}", _pub, ["RS256"], _now) == "signature"
_expired_bad = _tok({"alg": "HS256"}, {**_claims, "exp": _now - 10}, lambda si: b"\x00" * 32)
assert _why(_expired_bad, _secret, ["HS256"], _now) == "signature"          # signature before claims

# malformed
for _bad in ("a.b", "a.b.c.d", "", f"{_h}.{_p}", f"{_h}=.{_p}.{_s}", f"{_h}.{_p}.{_s}=", "!!!.e30.", "e30.e30.e30",
             f"{_e(b'[1]')}.{_p}.{_s}", f"{_e(b'{}')}.{_p}.{_s}", f"{_e(_json.dumps({'alg': 1}).encode())}.{_p}.{_s}",
             f"{_h}.{_e(b'not json')}.{_s}", f"{_h}.{_e(b'[]')}.{_s}", f"{_e(bytes([255, 254]))}.{_p}.{_s}",
             _good.encode(), None):
    assert _why(_bad, _secret, ["HS256"], _now) == "malformed", _bad

# claims
for _cl in ({"sub": "bob"}, {"exp": str(_now + 60)}, {"exp": True}, {"exp": None}, {"exp": [1]},
            {"exp": _now + 60, "nbf": "0"}, {"exp": _now + 60, "nbf": False}):
    assert _why(_tok({"alg": "HS256"}, _cl, _hs), _secret, ["HS256"], _now) == "claims", _cl
for _raw in (b'{"exp": Infinity}', b'{"exp": NaN}', b'{"exp": 1e400}', b'{"exp": 1800000060, "nbf": -Infinity}'):
    assert _why(_tok(b'{"alg":"HS256"}', _raw, _hs, raw=True), _secret, ["HS256"], _now) == "claims", _raw

# exp, nbf and leeway against a local oracle, boundaries included
_r = _random.Random(2302)
for _i in range(400):
    _exp = _now + _r.choice([-100, -1, 0, 1, 30, 100, _r.randint(-500, 500)])
    _nbf = _r.choice([None, _now + _r.choice([-100, -1, 0, 1, 30, 100]), _now + _r.randint(-500, 500)])
    _lw = _r.choice([0, 0, 5, 30, 60.5])
    _at = _now + _r.choice([0, 0, -30, 30, _r.randint(-200, 200)])
    _cl = {"sub": "x", "exp": _exp, **({} if _nbf is None else {"nbf": _nbf}), "i": _i}
    if _at >= _exp + _lw:
        _want = "expired"
    elif _nbf is not None and _at < _nbf - _lw:
        _want = "not_yet_valid"
    else:
        _want = _cl
    _t = _tok({"alg": "RS256" if _i % 8 == 0 else "HS256"}, _cl, _rs if _i % 8 == 0 else _hs)
    assert _why(_t, _pub if _i % 8 == 0 else _secret, ["HS256", "RS256"], _at, _lw) == _want, (_cl, _at, _lw)
### END HIDDEN TESTS

# %% [markdown]
# **Each attack against a naive verifier and against yours.** The naive one below is what the 2015
# libraries did: it trusts the header's `alg`, uses whatever key it was given, and never looks at `exp`. The
# API is configured like most RS256 APIs, with the issuer's public key as PEM text.

# %%
def forge(header: dict, claims: dict, sign) -> str:
    """What an attacker (or an issuer) does: encode both parts and sign them with sign(signing_input)."""
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    signing_input = enc(json.dumps(header).encode()) + "." + enc(json.dumps(claims).encode())
    return signing_input + "." + enc(sign(signing_input.encode()))


def naive_verify(token: str, key: bytes) -> dict:
    h64, p64, s64 = token.split(".")
    header, claims, signature = json.loads(b64u(h64)), json.loads(b64u(p64)), b64u(s64)
    if header["alg"].lower() == "none":                      # "an unsecured JWT", RFC 7519 section 6
        return claims
    if header["alg"] == "HS256":                             # HMAC with whatever key was configured
        if not hmac.compare_digest(hmac.new(key, f"{h64}.{p64}".encode(), hashlib.sha256).digest(), signature):
            raise ValueError("bad signature")
        return claims
    serialization.load_pem_public_key(key).verify(signature, f"{h64}.{p64}".encode(), padding.PKCS1v15(),
                                                  hashes.SHA256())
    return claims                                            # exp and nbf never checked


rs256 = lambda si: AS_KEY.sign(si, padding.PKCS1v15(), hashes.SHA256())
alice = {"sub": "alice", "role": "customer", "exp": NOW + 900}
legit = forge({"alg": "RS256"}, alice, rs256)
h64, p64, s64 = legit.split(".")
attacks = {
    "legitimate RS256 token": legit,
    "payload changed to role=admin": f"{h64}.{forge({'alg': 'RS256'}, {**alice, 'role': 'admin'}, rs256).split('.')[1]}.{s64}",
    'alg "none", no signature': forge({"alg": "none"}, {**alice, "role": "admin"}, lambda si: b""),
    "HS256 signed with the public PEM": forge({"alg": "HS256"}, {**alice, "role": "admin"},
                                              lambda si: hmac.new(AS_PUBLIC_PEM, si, hashlib.sha256).digest()),
    "expired an hour ago": forge({"alg": "RS256"}, {**alice, "exp": NOW - 3600}, rs256),
    "valid only from tomorrow": forge({"alg": "RS256"}, {**alice, "nbf": NOW + 86400, "exp": NOW + 90000}, rs256),
}


def outcome(check):
    try:
        claims = check()
    except InvalidToken as e:
        return f"refused: {e.reason}"
    except Exception as e:
        return f"refused ({type(e).__name__})"
    return f"ACCEPTED as role={claims.get('role')}"


needs(solved(lambda: verify_jwt(legit, AS_PUBLIC_PEM, ["RS256"], now=NOW)), "Exercise 2")
pd.DataFrame({"naive verifier": {k: outcome(lambda t=t: naive_verify(t, AS_PUBLIC_PEM)) for k, t in attacks.items()},
              "your verifier": {k: outcome(lambda t=t: verify_jwt(t, AS_PUBLIC_PEM, ["RS256"], now=NOW, leeway=30))
                                for k, t in attacks.items()}})

# %% [markdown]
# The naive verifier refuses only the token whose payload was edited: the `none` and key-confusion forgeries
# pass as admin, and the expired and not-yet-valid tokens pass too. Yours refuses each for the reason in the
# table, without any special case per attack: the allow-list and the key check make the token's header
# powerless to choose how it is verified.

# %% [markdown]
# ### Access tokens, refresh tokens and rotation
#
# A stolen access token works until it expires, and nobody can revoke it: the API never calls the issuer.
# So access tokens are short-lived, minutes. So that users need not log in every few minutes, the client
# also gets a **refresh token**: long-lived, *opaque* (a random string carrying no claims), remembered by the
# authorization server, and accepted only at its token endpoint, where it buys a new access token. Because
# the server looks it up, it can be revoked. The design is stateful where state is cheap (one lookup per
# refresh, every few minutes) and stateless where it is not (every API request).
#
# A refresh token lives long and sits in a browser or on a phone, so it is the prize. **Rotation** (RFC 9700
# section 4.14.2) makes each one single-use: every refresh returns a new refresh token and retires the old
# one. All tokens descended from one login form a *family*. When a retired token is presented again, two
# parties hold the family, the client and a thief, and the server cannot tell which is which; it revokes the
# whole family and both must log in again. The thief's window closes at the victim's next refresh.
#
# Two lifetimes bound a family: an **idle** timeout (each token must be used within `idle_ttl` of being
# issued, so an abandoned session dies) and an **absolute** lifetime counted from the login, which rotation
# never extends (a thief who keeps refreshing still loses access then). The server stores only a SHA-256 of
# each token, so a leaked token table logs nobody in. A plain hash suffices because the tokens are 256-bit
# random values; passwords, which people choose, need a slow hash such as scrypt.
#
# ### Exercise 3: refresh-token rotation with reuse detection (4 points)
#
# Complete `RefreshTokenStore`. The order of the checks matters: reuse is detected *before* expiry, so that
# a victim who comes back after the idle timeout with a token the thief already rotated still triggers the
# revocation, instead of being told "expired" while the thief carries on.

# %% nbgrader={"grade_id": "week23-api-security-ex03-refresh-rotation", "solution": true}
class RefreshTokenStore:
    """Refresh tokens with rotation and reuse detection (RFC 9700 section 4.14.2).

    login(user, now) starts a family and returns its first token. rotate(token, now) retires `token` and
    returns (user, the family's next token), or raises InvalidToken with the first reason that applies:
      "unknown"  the token was never issued by this store (or is not a str);
      "revoked"  its family has been revoked;
      "reuse"    the token was already rotated: revoke its whole family, then raise;
      "expired"  now >= (time this token was issued) + idle_ttl, or now >= (family's login time) + max_lifetime.
    Tokens are secrets.token_urlsafe(32). Keep only hashlib.sha256(token.encode()).hexdigest() of each
    token, never the token itself."""

    def __init__(self, idle_ttl: float, max_lifetime: float):
        self.idle_ttl, self.max_lifetime = idle_ttl, max_lifetime
        self.tokens = {}        # SHA-256 hex of a token -> what you need to know about it
        self.families = {}      # family id -> its user, login time, revoked or not

    def login(self, user: str, now: float) -> str:
        ### BEGIN SOLUTION
        family = len(self.families)
        self.families[family] = {"user": user, "start": now, "revoked": False}
        return self._issue(family, now)
        ### END SOLUTION

    def rotate(self, token: str, now: float) -> tuple:
        ### BEGIN SOLUTION
        entry = self.tokens.get(self._digest(token)) if isinstance(token, str) else None
        if entry is None:
            raise InvalidToken("unknown")
        family = self.families[entry["family"]]
        if family["revoked"]:
            raise InvalidToken("revoked")
        if entry["used"]:
            family["revoked"] = True
            raise InvalidToken("reuse")
        if now >= entry["issued"] + self.idle_ttl or now >= family["start"] + self.max_lifetime:
            raise InvalidToken("expired")
        entry["used"] = True
        return family["user"], self._issue(entry["family"], now)

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def _issue(self, family: int, now: float) -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[self._digest(token)] = {"family": family, "issued": now, "used": False}
        return token
        ### END SOLUTION


# %% nbgrader={"grade_id": "week23-api-security-ex03-refresh-rotation-tests", "grade": true, "points": 1}
def _reason(store, token, now):
    try:
        return store.rotate(token, now)
    except InvalidToken as e:
        return e.reason


_s = RefreshTokenStore(idle_ttl=60, max_lifetime=3600)
_r0 = _s.login("alice", now=0)
assert type(_r0) is str and len(_r0) >= 43, _r0
_user, _r1 = _s.rotate(_r0, now=10)
assert _user == "alice" and type(_r1) is str and _r1 != _r0
assert _reason(_s, "made-up", 20) == "unknown"
assert _reason(_s, _r1, 10 + 60) == "expired"                # idle timeout: 60 s after it was issued
_r2 = _s.login("alice", now=100)
_, _r3 = _s.rotate(_r2, now=110)                             # a thief rotates the stolen _r2 ...
assert _reason(_s, _r2, 120) == "reuse"                      # ... the victim presents _r2 again: reuse
assert _reason(_s, _r3, 121) == "revoked"                    # and the thief's token died with the family
print("visible rotation tests pass")

# %% nbgrader={"grade_id": "week23-api-security-ex03-refresh-rotation-hidden", "grade": true, "points": 3}
assert type(RefreshTokenStore(idle_ttl=5, max_lifetime=50).login("x", now=0)) is str
### BEGIN HIDDEN TESTS
import random as _random


def _why(store, token, now):
    try:
        got = store.rotate(token, now)
    except InvalidToken as err:
        return err.reason
    assert type(got) is tuple and len(got) == 2 and type(got[1]) is str, got
    return got


# reuse revokes the family, only that family, whatever the order and however late the victim comes back
_s = RefreshTokenStore(idle_ttl=10, max_lifetime=1000)
_victim = _s.login("ann", 0)
_phone = _s.login("ann", 0)                                   # same user, another device: another family
_u, _thief = _s.rotate(_victim, 1)
assert _u == "ann"
_u, _thief = _s.rotate(_thief, 5)
assert _why(_s, _victim, 50) == "reuse", "a rotated token presented after the idle timeout must still be reuse"
assert _why(_s, _thief, 51) == "revoked"
assert _why(_s, _victim, 52) == "revoked"
assert _why(_s, _phone, 9)[0] == "ann", "revoking one family must not touch the user's other families"

# the absolute lifetime is not extended by rotation; the idle timeout is per token
_s = RefreshTokenStore(idle_ttl=30, max_lifetime=100)
_t = _s.login("bo", 0)
for _at in (25, 50, 75, 99):
    _got = _why(_s, _t, _at)
    assert type(_got) is tuple, (_at, _got)
    _t = _got[1]
assert _why(_s, _t, 100) == "expired", "rotation must not extend the family's lifetime"
_s = RefreshTokenStore(idle_ttl=30, max_lifetime=100)
_t = _s.login("bo", 0)
assert _why(_s, _t, 29.999)[0] == "bo"
_t2 = _s.login("cy", 0)
assert _why(_s, _t2, 30) == "expired"
assert _why(_s, None, 1) == "unknown" and _why(_s, "", 1) == "unknown" and _why(_s, _t2 + "x", 1) == "unknown"

# tokens: random, url-safe, never stored in plaintext
_s = RefreshTokenStore(idle_ttl=10, max_lifetime=100)
_issued = [_s.login(f"u{_i % 7}", 0) for _i in range(300)]
_issued += [_s.rotate(_t, 1)[1] for _t in _issued[:100]]
assert len(set(_issued)) == len(_issued) and all(type(_t) is str and len(_t) >= 43 for _t in _issued)
assert all(re.fullmatch(r"[A-Za-z0-9_-]+", _t) for _t in _issued)


def _strings(obj, seen):
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, str | bytes):
        yield obj
        return
    if isinstance(obj, dict):
        items = [*obj.keys(), *obj.values()]
    elif isinstance(obj, list | tuple | set | frozenset):
        items = list(obj)
    elif hasattr(obj, "__dict__"):
        items = list(vars(obj).values())
    elif hasattr(obj, "__slots__"):
        items = [getattr(obj, _n, None) for _n in obj.__slots__]
    else:
        return
    for _x in items:
        yield from _strings(_x, seen)


_kept = list(_strings(_s, set()))
_joined = "\n".join(_x if isinstance(_x, str) else _x.decode("latin-1") for _x in _kept)
assert not any(_t in _joined for _t in _issued[:50] + _issued[-50:]), "the store keeps tokens in plaintext"

# random sessions against a model of the rules
for _seed in range(40):
    _r = _random.Random(_seed)
    _idle, _life = _r.choice([(5, 50), (10, 30), (3, 100), (20, 20)])
    _s = RefreshTokenStore(idle_ttl=_idle, max_lifetime=_life)
    _tok, _fam, _order, _now = {}, {}, [], 0
    for _step in range(150):
        _now += _r.choice([0, 0, 1, 1, 2, 4, 7])
        if _r.random() < 0.2 or not _order:
            _user = _r.choice(["ann", "ben", "cy"])
            _t = _s.login(_user, _now)
            assert type(_t) is str and _t not in _tok
            _fam[len(_fam)] = [_user, _now, False]
            _tok[_t] = [len(_fam) - 1, _now, False]
            _order.append(_t)
            continue
        _t = _r.choice(_order[-6:]) if _r.random() < 0.8 else _r.choice(_order)
        if _r.random() < 0.04:
            _t = f"forged-{_step}"
        if _t not in _tok:
            _want = "unknown"
        else:
            _f, _issued_at, _used = _tok[_t]
            _user, _start, _revoked = _fam[_f]
            if _revoked:
                _want = "revoked"
            elif _used:
                _want = "reuse"
            elif _now >= _issued_at + _idle or _now >= _start + _life:
                _want = "expired"
            else:
                _want = "ok"
        _got = _why(_s, _t, _now)
        if _want == "ok":
            assert type(_got) is tuple and _got[0] == _user and _got[1] not in _tok, (_seed, _step, _got)
            _tok[_t][2] = True
            _tok[_got[1]] = [_tok[_t][0], _now, False]
            _order.append(_got[1])
        else:
            assert _got == _want, (_seed, _step, _got, _want)
            if _want == "reuse":
                _fam[_tok[_t][0]][2] = True
### END HIDDEN TESTS

# %% [markdown]
# **How long does a thief keep access?** Suppose an attacker copies a session's tokens `theft_h` hours after
# the login. In the worst case the stolen access token was just minted, and the attacker refreshes as often
# as possible:
#
# - only the **access token** stolen: exposure = access-token lifetime;
# - the **refresh token without rotation**: the attacker refreshes until the family's absolute lifetime
#   ends, plus the last access token's lifetime;
# - the **refresh token with rotation and reuse detection**: the same, but the victim's next refresh (when
#   the app is next used, within one access lifetime if it is open) presents the token the attacker already
#   rotated, and the family dies: exposure = min(victim's next refresh, lifetime left) + access lifetime.

# %%
def exposure_hours(access_min: float, lifetime_h: float, theft_h: float, victim_gap_h: float) -> dict:
    """Worst-case hours of attacker access after a theft at theft_h hours after login."""
    access = access_min / 60
    left = max(0.0, lifetime_h - theft_h)                 # refresh-token life left when stolen
    return {"stolen access token": access,
            "stolen refresh token, no rotation": left + access,
            "stolen refresh token, rotation + reuse detection": min(victim_gap_h, left) + access}


def human(hours: float) -> str:
    if hours * 60 < 90:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def exposure_figure(access_min: int = 15, lifetime_h: float = 168, theft_h: float = 10,
                    victim_gap_h: float = 0.25) -> go.Figure:
    """Pure: the three windows of exposure as bars on a log axis (hours)."""
    windows = exposure_hours(access_min, lifetime_h, theft_h, victim_gap_h)
    names = [n.replace(", ", ",<br>") for n in windows]
    values = list(windows.values())
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", text=[human(v) for v in values],
                           textposition="outside", marker_color=["#4c78a8", "#e45756", "#54a24b"]))
    ratio = values[1] / values[2]
    fig.update_layout(
        title=f"Rotation + reuse detection shortens the stolen refresh token's window {ratio:,.1f}x",
        xaxis={"title": "window of exposure after the theft (hours, log scale)", "type": "log",
               "range": [math.log10(1 / 120), math.log10(max(values)) + 0.9]},
        yaxis={"title": "what the attacker stole", "autorange": "reversed"},
        height=340, margin={"l": 10, "r": 30, "t": 60, "b": 50}, showlegend=False)
    return fig


GAPS = [("1 min", 1 / 60), ("15 min", 0.25), ("1 h", 1.0), ("8 h", 8.0), ("1 day", 24.0), ("3 days", 72.0),
        ("1 week", 168.0), ("never", math.inf)]
LIFETIMES = [("1 h", 1.0), ("8 h", 8.0), ("1 day", 24.0), ("3 days", 72.0), ("1 week", 168.0), ("30 days", 720.0)]
exposure_figure()                                  # the first figure loads plotly's validators: not timed
corners = [(a, life, theft, gap) for a in (1, 60) for life in (1.0, 720.0) for theft in (0.0, 720.0)
           for gap in (1 / 60, math.inf)]
worst = 0.0
for corner in corners:                             # every slider at its ends, timed: the widget must stay fast
    t0 = time.perf_counter()
    exposure_figure(*corner)
    worst = max(worst, time.perf_counter() - t0)
print(f"slowest figure over the {len(corners)} corners of the controls: {worst * 1000:.0f} ms")
archlab.widgets.interactive_figure(exposure_figure, {
    "access_min": W.IntSlider(value=15, min=1, max=60, description="access TTL (min)", continuous_update=False),
    "lifetime_h": W.SelectionSlider(options=LIFETIMES, value=168.0, description="refresh lifetime",
                                    continuous_update=False),
    "theft_h": W.FloatSlider(value=10, min=0, max=720, step=0.5, description="theft at (h)", continuous_update=False),
    "victim_gap_h": W.SelectionSlider(options=GAPS, value=0.25, description="victim back in", continuous_update=False),
})

# %% [markdown]
# Move the sliders. Shortening the access token shrinks every bar but matters most for the first one; the
# refresh lifetime drives the middle bar; with rotation the window follows the *victim's* habits: an app in
# daily use closes it within one access lifetime, while a laptop left shut for a week leaves the thief the
# whole lifetime, as if there were no rotation. That is why refresh lifetimes are bounded even with rotation,
# and why a logout must revoke the family on the server.
#
# **The formula against your store.** The cell below replays the theft minute by minute with your
# `RefreshTokenStore`: the victim refreshes whenever its 15-minute access token runs out, the thief copies
# its tokens at minute 600 and refreshes every minute (acting first in each minute, the worst case), and the
# victim's app comes back after the given gap. It measures how long the thief held a valid access token.

# %%
def simulate_theft(access: int, lifetime: int, theft: int, gap: int | None, idle: int = 60):
    """(minutes of attacker access, how the thief was stopped, what the victim's next refresh got)."""
    store = RefreshTokenStore(idle_ttl=idle, max_lifetime=lifetime)
    victim, t = store.login("alice", 0), 0
    while t + access <= theft:                     # the victim's normal life before the theft
        t += access
        _, victim = store.rotate(victim, t)
    thief, thief_until, stopped, victim_got = victim, t + access, "-", "did not come back"
    back = None if gap is None else theft + gap
    for minute in range(theft, max(lifetime, back or 0) + 1):
        if thief is not None:
            try:
                _, thief = store.rotate(thief, minute)
                thief_until = minute + access
            except InvalidToken as e:
                thief, stopped = None, e.reason
        if minute == back:
            try:
                store.rotate(victim, minute)
                victim_got = "a new token"
            except InvalidToken as e:
                victim_got = e.reason
        if thief is None and (back is None or minute >= back):
            break
    return thief_until - theft, stopped, victim_got


needs(solved(lambda: RefreshTokenStore(60, 600).login("x", 0)), "Exercise 3")
ACCESS, LIFETIME, THEFT = 15, 7 * 24 * 60, 600
rows = []
for label, gap in [("app open: next refresh", 15), ("laptop shut overnight", 8 * 60), ("away for 3 days", 3 * 24 * 60),
                   ("never comes back", None)]:
    formula = exposure_hours(ACCESS, LIFETIME / 60, THEFT / 60, math.inf if gap is None else gap / 60)
    minutes, stopped, victim_got = simulate_theft(ACCESS, LIFETIME, THEFT, gap)
    rows.append({"victim": label, "formula (min)": round(formula["stolen refresh token, rotation + reuse detection"] * 60),
                 "simulated with your store (min)": minutes, "thief stopped by": stopped,
                 "victim's refresh got": victim_got,
                 "without rotation (min)": round(formula["stolen refresh token, no rotation"] * 60)})
theft_table = pd.DataFrame(rows).set_index("victim")
theft_table

# %% [markdown]
# The simulation matches the formula minute for minute while the victim returns within the lifetime; when
# the victim never returns, the thief's last refresh happens one minute before the lifetime ends (a refresh
# *at* the end is already refused), one tick below the continuous formula. Note the "victim's refresh got"
# column: it is the victim's request that reveals the theft, and your store answers it with `reuse`, not
# `expired`, even after days away.

# %% [markdown]
# ## OAuth: delegation and third-party access
#
# Before OAuth, an application that wanted your photos from another site asked for your password there. It
# could then do everything you can, for ever, and the only way to stop it was to change the password.
# **OAuth 2.0** (RFC 6749) replaces the password with a *delegated* credential: limited in scope and time,
# and revocable. Four parties take part:
#
# - the **resource owner**, the user, who owns the data and consents;
# - the **client**, the application that wants access (a web, mobile or single-page app);
# - the **authorization server** (AS), which authenticates the user, asks for consent and issues tokens;
# - the **resource server**, the API holding the data, which accepts access tokens and checks their scope.
#
# The **authorization code flow**:
#
# 1. The client sends the user's browser to the AS's `/authorize` with its `client_id`, a `redirect_uri`,
#    the `scope` it wants and a random `state`.
# 2. The user logs in *at the AS* (the client never sees the password) and consents.
# 3. The AS redirects the browser to the `redirect_uri` with a short-lived, single-use **authorization code**
#    and the same `state`; the client checks the `state` (a different one means a flow it did not start, a
#    cross-site request forgery of the login).
# 4. The client exchanges the code at the AS's `/token` endpoint, in a direct request, for an access token
#    (and a refresh token).
# 5. The client calls the API with `Authorization: Bearer <access token>`.
#
# Why the detour through a code? Steps 1 and 3 travel through the browser (the *front channel*): URLs end up
# in histories, server logs and `Referer` headers, and on a phone any app can register the same custom URL
# scheme and receive the redirect. Only the code travels there; tokens travel on the direct *back channel*.
#
# **PKCE** (Proof Key for Code Exchange, RFC 7636) makes an intercepted code worthless. Before step 1 the
# client draws a random **code verifier** (43 to 128 characters) and sends only its hash, the **code
# challenge** `BASE64URL(SHA-256(verifier))`, with `code_challenge_method=S256`. The AS stores the challenge
# with the code; at step 4 the client sends the verifier, and the AS hashes it and compares. A thief holding
# the code lacks the verifier and cannot derive it from the challenge (SHA-256 is one-way). The `plain`
# method (challenge = verifier) protects nothing once the authorization request is seen. PKCE was designed
# for mobile apps, which cannot keep a client secret; RFC 9700 (OAuth security best current practice)
# recommends it for every client, and the OAuth 2.1 draft makes it the default for all of them.
#
# The rest of RFC 9700's advice shapes the exercise too: redirect URIs are compared by **exact string
# match** (prefix and pattern matching have let attackers route codes to their own pages); the *implicit*
# grant (a token in the redirect URL) should not be used and the *password* grant must not;
# service-to-service calls with no user in them use the *client credentials* grant. **OpenID Connect** adds
# an ID token (a JWT about the user's login) on top of this flow: OAuth alone says what a client may do, not
# who the user is.

# %%
class OAuthError(Exception):
    """An OAuth error response; `error` is the RFC 6749 code ("invalid_request", "invalid_grant", ...)."""

    def __init__(self, error: str, description: str = ""):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error


# %% [markdown]
# ### Exercise 4: PKCE and the authorization server (4 points)
#
# Complete `code_challenge` (method S256) and `AuthorizationServer`: `authorize` is what the AS does at
# step 3 once the user has consented, and `token` is the token endpoint of step 4. The AS mints access tokens
# with a function it is given, so this exercise does not depend on Exercise 1. RFC 7636 Appendix B gives the
# test vector: the verifier `dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk` (which happens to be the signature
# of RFC 7515 Appendix A.1) has the challenge `E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM`.

# %% nbgrader={"grade_id": "week23-api-security-ex04-pkce-flow", "solution": true}
def code_challenge(verifier: str) -> str:
    """S256: BASE64URL(SHA-256(ASCII(verifier))) without padding. ValueError unless `verifier` is a str of
    43 to 128 characters from A-Z a-z 0-9 - . _ ~ (RFC 7636 section 4.1)."""
    ### BEGIN SOLUTION
    if not isinstance(verifier, str) or not re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier):
        raise ValueError("a code verifier is 43-128 unreserved characters")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    ### END SOLUTION


class AuthorizationServer:
    """The authorization code grant with PKCE (S256 only).

    clients: {client_id: [registered redirect URIs]}; mint(claims) -> an access-token string.
    authorize(...) returns a fresh code (secrets.token_urlsafe(32)) and remembers what it was issued for;
    it raises OAuthError("invalid_request") if client_id is unknown, redirect_uri is not exactly one of that
    client's registered URIs, code_challenge_method is not "S256", or code_challenge is not 43 base64url
    characters (the length of an unpadded SHA-256).
    token(...) redeems a code issued at time t. A code is used up by the first token request that presents
    it, successful or not. OAuthError("invalid_grant") if the code is unknown or used up, now >= t + code_ttl,
    client_id or redirect_uri differ from those given to authorize, or code_verifier is not a verifier whose
    code_challenge equals the stored one (compare with hmac.compare_digest). Otherwise it returns
        {"access_token": mint(claims), "token_type": "Bearer", "expires_in": access_ttl, "scope": scope}
    with claims = {"sub": user, "client_id": client_id, "scope": scope, "iat": now, "exp": now + access_ttl}."""

    def __init__(self, clients: dict, mint, code_ttl: float = 60, access_ttl: float = 300):
        self.clients, self.mint, self.code_ttl, self.access_ttl = clients, mint, code_ttl, access_ttl
        self.codes = {}         # code -> what it was issued for

    def authorize(self, client_id: str, redirect_uri: str, code_challenge: str, code_challenge_method: str,
                  user: str, scope: str, now: float) -> str:
        ### BEGIN SOLUTION
        if client_id not in self.clients or redirect_uri not in self.clients[client_id]:
            raise OAuthError("invalid_request", "unknown client or unregistered redirect_uri")
        if code_challenge_method != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if not isinstance(code_challenge, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}", code_challenge):
            raise OAuthError("invalid_request", "malformed code_challenge")
        code = secrets.token_urlsafe(32)
        self.codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri, "challenge": code_challenge,
                            "user": user, "scope": scope, "issued": now}
        return code
        ### END SOLUTION

    def token(self, code: str, client_id: str, redirect_uri: str, code_verifier: str, now: float) -> dict:
        ### BEGIN SOLUTION
        grant = self.codes.pop(code, None) if isinstance(code, str) else None     # one use, whatever happens
        if grant is None or now >= grant["issued"] + self.code_ttl:
            raise OAuthError("invalid_grant", "unknown, used or expired code")
        if client_id != grant["client_id"] or redirect_uri != grant["redirect_uri"]:
            raise OAuthError("invalid_grant", "code issued to another client or redirect_uri")
        try:
            ok = hmac.compare_digest(code_challenge(code_verifier), grant["challenge"])
        except ValueError:
            ok = False
        if not ok:
            raise OAuthError("invalid_grant", "PKCE verification failed")
        claims = {"sub": grant["user"], "client_id": client_id, "scope": grant["scope"], "iat": now,
                  "exp": now + self.access_ttl}
        return {"access_token": self.mint(claims), "token_type": "Bearer", "expires_in": self.access_ttl,
                "scope": grant["scope"]}
        ### END SOLUTION


# %% nbgrader={"grade_id": "week23-api-security-ex04-pkce-flow-tests", "grade": true, "points": 1}
_ch = code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
assert type(_ch) is str and _ch == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", _ch
_as = AuthorizationServer({"shop-app": ["https://app.example/cb"]}, mint=lambda c: json.dumps(c, sort_keys=True))
_v = "x" * 50
_code = _as.authorize("shop-app", "https://app.example/cb", code_challenge(_v), "S256", "alice", "orders:read", now=0)
assert type(_code) is str
_resp = _as.token(_code, "shop-app", "https://app.example/cb", _v, now=5)
assert type(_resp) is dict and _resp["token_type"] == "Bearer" and _resp["scope"] == "orders:read", _resp
assert json.loads(_resp["access_token"]) == {"sub": "alice", "client_id": "shop-app", "scope": "orders:read",
                                             "iat": 5, "exp": 305}
try:
    _as.token(_code, "shop-app", "https://app.example/cb", _v, now=6)
    raise AssertionError("a code must work only once")
except OAuthError as _e:
    assert _e.error == "invalid_grant"
print("visible PKCE tests pass")

# %% nbgrader={"grade_id": "week23-api-security-ex04-pkce-flow-hidden", "grade": true, "points": 3}
assert type(code_challenge("a" * 43)) is str
### BEGIN HIDDEN TESTS
import base64 as _b64
import hashlib as _hashlib
import json as _json
import random as _random

_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_r = _random.Random(7636)
for _i in range(300):
    _v = "".join(_r.choice(_alphabet) for _ in range(_r.choice([43, 44, 64, 100, 127, 128, _r.randint(43, 128)])))
    _want = _b64.urlsafe_b64encode(_hashlib.sha256(_v.encode()).digest()).rstrip(b"=").decode()
    _got = code_challenge(_v)
    assert type(_got) is str and _got == _want, (_v, _got)
for _bad in ("a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + "/", "a" * 42 + "=", "a" * 42 + " ", "a" * 42 + "é",
             "", None, b"a" * 43):
    try:
        code_challenge(_bad)
    except ValueError:
        continue
    raise AssertionError(f"code_challenge accepted {_bad!r}")


def _S(v):
    return _b64.urlsafe_b64encode(_hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()


def _err(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except OAuthError as e:
        assert type(e.error) is str
        return e.error


_minted = []
_clients = {"web": ["https://shop.example/callback", "http://127.0.0.1:8765/cb"], "cli": ["http://127.0.0.1:9000/cb"]}
_srv = AuthorizationServer(_clients, mint=lambda c: (_minted.append(dict(c)), f"token-{len(_minted)}")[1],
                           code_ttl=30, access_ttl=120)
_v1, _v2 = "v" * 43 + "1", "w" * 60


def _code(client="web", uri="https://shop.example/callback", v=_v1, user="zoe", scope="orders:read", now=100):
    return _srv.authorize(client, uri, _S(v), "S256", user, scope, now)


# authorize refuses
for _args in (("nobody", "https://shop.example/callback", _S(_v1), "S256"),
              ("web", "https://shop.example/callback/", _S(_v1), "S256"),
              ("web", "https://shop.example/callback?next=https://evil.example", _S(_v1), "S256"),
              ("web", "https://shop.example/callbackx", _S(_v1), "S256"),
              ("web", "https://shop.example/Callback", _S(_v1), "S256"),
              ("web", "http://127.0.0.1:9000/cb", _S(_v1), "S256"),              # another client's redirect URI
              ("web", "https://shop.example/callback", _v1, "plain"),
              ("web", "https://shop.example/callback", _S(_v1), "s256"),
              ("web", "https://shop.example/callback", _S(_v1), None),
              ("web", "https://shop.example/callback", _S(_v1) + "=", "S256"),
              ("web", "https://shop.example/callback", _S(_v1)[:-1], "S256"),
              ("web", "https://shop.example/callback", _S(_v1)[:-1] + "+", "S256"),
              ("web", "https://shop.example/callback", _v1, "S256"),
              ("web", "https://shop.example/callback", _hashlib.sha256(_v1.encode()).hexdigest(), "S256")):
    assert _err(_srv.authorize, *_args, "zoe", "orders:read", 100) == "invalid_request", _args

# a successful exchange, exactly
_c = _code(client="cli", uri="http://127.0.0.1:9000/cb", v=_v2, user="yan", scope="orders:read orders:write", now=40)
assert type(_c) is str and len(_c) >= 43
_resp = _srv.token(_c, "cli", "http://127.0.0.1:9000/cb", _v2, 69.5)
assert type(_resp) is dict and _resp == {"access_token": f"token-{len(_minted)}", "token_type": "Bearer",
                                         "expires_in": 120, "scope": "orders:read orders:write"}, _resp
assert _minted[-1] == {"sub": "yan", "client_id": "cli", "scope": "orders:read orders:write", "iat": 69.5,
                       "exp": 189.5}, _minted[-1]
assert _err(_srv.token, _c, "cli", "http://127.0.0.1:9000/cb", _v2, 70) == "invalid_grant"   # replay

# every way a token request can be wrong, each on a fresh code; each code then used up
_n = len(_minted)
for _label, _kw in (("no verifier", {"v": None}), ("empty verifier", {"v": ""}), ("other flow's verifier", {"v": _v2}),
                    ("challenge sent as verifier", {"v": _S(_v1)}), ("wrong client", {"client": "cli"}),
                    ("wrong redirect", {"uri": "http://127.0.0.1:8765/cb"}), ("expired", {"now": 130})):
    _c = _code()
    _args = {"code": _c, "client": "web", "uri": "https://shop.example/callback", "v": _v1, "now": 129.9, **_kw}
    assert _err(_srv.token, _args["code"], _args["client"], _args["uri"], _args["v"], _args["now"]) == "invalid_grant", _label
    assert _err(_srv.token, _c, "web", "https://shop.example/callback", _v1, 101) == "invalid_grant", \
        f"after a failed request ({_label}) the code must be used up"
assert _err(_srv.token, "c" * 43, "web", "https://shop.example/callback", _v1, 101) == "invalid_grant"
assert _err(_srv.token, None, "web", "https://shop.example/callback", _v1, 101) == "invalid_grant"
assert len(_minted) == _n, "no token may be minted for a failed request"
_c = _code(v=_v1)
assert _err(_srv.token, _c, "web", "https://shop.example/callback", _v1, 129.99)["scope"] == "orders:read"
_codes = {_code() for _ in range(200)}
assert len(_codes) == 200 and all(type(_x) is str for _x in _codes)
### END HIDDEN TESTS

# %% [markdown]
# **The whole flow over HTTP.** Two real services start on 127.0.0.1: the **authorization server**, which
# wraps your `AuthorizationServer` and `RefreshTokenStore`, signs access tokens with RS256 through your
# `sign_jws`, and publishes its public key as a JSON Web Key Set; and the **orders API**, the resource
# server, which fetches that key set once, verifies every request's token with your `verify_jwt`, and then
# authorizes: the token must be meant for it (`aud`), carry the scope `orders:read`, and belong to the
# customer whose orders are asked for (the object-level check). The AS's login and consent page is left out:
# `login_as=alice` in the authorize request stands for "Alice logged in and clicked Allow". The API's CORS
# answers come from Exercise 5 (next section).

# %%
ACCESS_TTL = 300
ORDERS = {"alice": [{"order_id": 1001, "total_cents": 4200}], "bob": [{"order_id": 1002, "total_cents": 999}]}
CORS_POLICY = {"origins": ["https://shop.example", "https://admin.shop.example"], "methods": ["GET", "PUT", "DELETE"],
               "headers": ["Authorization", "Content-Type", "X-Request-Id"], "credentials": True, "max_age": 600}


def b64url_uint(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def mint_access_token(claims: dict) -> str:
    return make_jwt({**claims, "iss": as_service.url, "aud": "orders-api"}, AS_KEY, "RS256", kid="as-2025")


def authorization_server_app(auth, refresh_tokens):
    app = Flask("authorization-server")

    @app.get("/.well-known/jwks.json")
    def jwks():
        numbers = AS_PUBLIC.public_numbers()
        return jsonify(keys=[{"kty": "RSA", "kid": "as-2025", "alg": "RS256", "use": "sig",
                              "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}])

    @app.get("/authorize")
    def authorize():
        q = request.args
        try:
            code = auth.authorize(q.get("client_id"), q.get("redirect_uri"), q.get("code_challenge"),
                                  q.get("code_challenge_method"), q.get("login_as"), q.get("scope", ""), time.time())
        except OAuthError as e:             # never redirect to a URI that was not verified
            return jsonify(error=e.error), 400
        return redirect(q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": q.get("state", "")}))

    @app.post("/token")
    def token():
        f = request.form
        try:
            if f.get("grant_type") == "authorization_code":
                body = auth.token(f.get("code"), f.get("client_id"), f.get("redirect_uri"), f.get("code_verifier"),
                                  time.time())
                user = json.loads(b64url_decode(body["access_token"].split(".")[1]))["sub"]
                body["refresh_token"] = refresh_tokens.login(user, time.time())
            elif f.get("grant_type") == "refresh_token":
                user, new_refresh = refresh_tokens.rotate(f.get("refresh_token", ""), time.time())
                now = time.time()
                body = {"access_token": mint_access_token({"sub": user, "scope": "orders:read", "iat": now, "exp": now + ACCESS_TTL}),
                        "token_type": "Bearer", "expires_in": ACCESS_TTL, "refresh_token": new_refresh}
            else:
                return jsonify(error="unsupported_grant_type"), 400
        except OAuthError as e:
            return jsonify(error=e.error), 400
        except InvalidToken as e:
            return jsonify(error="invalid_grant", error_description=e.reason), 400
        return jsonify(body)

    return app


def orders_api_app(jwks_url):
    app = Flask("orders-api")
    jwk = http.get(jwks_url).json()["keys"][0]                  # fetched once; real APIs cache and refresh it
    public_key = rsa.RSAPublicNumbers(int.from_bytes(b64u(jwk["e"]), "big"),
                                      int.from_bytes(b64u(jwk["n"]), "big")).public_key()

    @app.route("/customers/<name>/orders", methods=["GET", "OPTIONS"])
    def orders(name):
        if request.method == "OPTIONS":                             # a CORS preflight (Exercise 5)
            answer = preflight(dict(request.headers), CORS_POLICY)
            return ("", 204, answer) if answer else ("", 403)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer":
            return jsonify(error="invalid_request"), 401
        try:
            claims = verify_jwt(token, public_key, ["RS256"], now=time.time(), leeway=30)
        except InvalidToken as e:
            return jsonify(error="invalid_token", reason=e.reason), 401
        if claims.get("aud") != "orders-api" or "orders:read" not in str(claims.get("scope", "")).split():
            return jsonify(error="insufficient_scope"), 403
        if claims.get("sub") != name:                               # object-level authorization
            return jsonify(error="forbidden"), 403
        return jsonify(ORDERS.get(name, []))

    @app.after_request
    def cors_on_actual_responses(response):
        origin = request.headers.get("Origin")
        if request.method != "OPTIONS" and origin in CORS_POLICY["origins"]:
            response.headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
                                     "Vary": "Origin"})
        return response

    return app


REDIRECT = "https://shop.example/callback"
auth_server = AuthorizationServer({"shop-web": [REDIRECT]}, mint=mint_access_token, code_ttl=60, access_ttl=ACCESS_TTL)
refresh_tokens = RefreshTokenStore(idle_ttl=3600, max_lifetime=7 * 86400)
as_service = archlab.serve(authorization_server_app(auth_server, refresh_tokens), "authorization-server")
api_service = archlab.serve(orders_api_app(as_service.url + "/.well-known/jwks.json"), "orders-api")
print(as_service, api_service, sep="\n")

# %% [markdown]
# The client's side of the flow, step by step (`allow_redirects=False` lets us read the redirect instead of
# following it to `shop.example`, which does not exist here).

# %%
def start_login(user="alice", redirect_uri=REDIRECT, method="S256", challenge=None):
    """Steps 1-3: returns (code verifier, state, the AS's HTTP response)."""
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)   # 64 characters, 384 random bits
    params = {"response_type": "code", "client_id": "shop-web", "redirect_uri": redirect_uri, "scope": "orders:read",
              "state": state, "code_challenge": challenge or code_challenge(verifier), "code_challenge_method": method,
              "login_as": user}
    return verifier, state, http.get(as_service.url + "/authorize", params=params, allow_redirects=False)


def code_from(response, state):
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(response.headers["Location"]).query)
    assert query["state"] == [state], "state mismatch: not the flow we started"
    return query["code"][0]


def exchange(code, verifier, redirect_uri=REDIRECT):
    return http.post(as_service.url + "/token", data={"grant_type": "authorization_code", "code": code,
                                                      "client_id": "shop-web", "redirect_uri": redirect_uri,
                                                      "code_verifier": verifier})


def get_orders(customer, access_token):
    return http.get(f"{api_service.url}/customers/{customer}/orders", headers={"Authorization": f"Bearer {access_token}"})


needs(all(solved(f) for f in (lambda: b64url_encode(b""), lambda: verify_jwt("x.y.z", b"", [], now=0),
                              lambda: RefreshTokenStore(1, 1).login("x", 0), lambda: code_challenge("a" * 43))),
      "Exercises 1-4")
verifier, state, step3 = start_login("alice")
code = code_from(step3, state)
step4 = exchange(code, verifier)
tokens = step4.json()
access = tokens["access_token"]
steps = [("3. authorize → redirect with code", step3.status_code, step3.headers["Location"][:60] + "..."),
         ("4. code + verifier → tokens", step4.status_code, f"{sorted(tokens)}"),
         ("5. GET alice's orders", (r := get_orders("alice", access)).status_code, r.text.strip()),
         ("   GET bob's orders with alice's token", (r := get_orders("bob", access)).status_code, r.text.strip())]
print("access-token claims:", json.loads(b64url_decode(access.split(".")[1])))
pd.DataFrame(steps, columns=["step", "HTTP status", "response"]).set_index("step")

# %% [markdown]
# Alice reads her orders; her perfectly valid token does not open Bob's (403), because the API checks who
# owns the object. Now the attacks, each against the running services:

# %%
def oauth_error(response):
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    return f"{response.status_code} {body.get('error', '')} {body.get('error_description', body.get('reason', ''))}".strip()


needs(all(solved(f) for f in (lambda: verify_jwt("x.y.z", b"", [], now=0), lambda: code_challenge("a" * 43))),
      "Exercises 1-4")
attempts = {}
v, s, resp = start_login("alice")
stolen_code = code_from(resp, s)                                          # a malicious app got the redirect
attempts["intercepted code, no verifier"] = oauth_error(exchange(stolen_code, None))
attempts["same code, then the real client"] = oauth_error(exchange(stolen_code, v))
v, s, resp = start_login("alice")
attempts["intercepted code, attacker's own verifier"] = oauth_error(exchange(code_from(resp, s), secrets.token_urlsafe(48)))
attempts["code replayed after a successful exchange"] = oauth_error(exchange(code, verifier))
attempts["redirect_uri of the attacker's site"] = oauth_error(start_login("alice", "https://evil.example/cb")[2])
attempts["PKCE downgraded to plain"] = oauth_error(start_login("alice", method="plain", challenge="p" * 43)[2])
h64, p64, s64 = access.split(".")
bob_claims = {**json.loads(b64url_decode(p64)), "sub": "bob"}
attempts["access token edited to sub=bob"] = oauth_error(get_orders("bob", f"{h64}.{b64url_encode(json.dumps(bob_claims).encode())}.{s64}"))
jwks = http.get(as_service.url + "/.well-known/jwks.json").json()
jwk = jwks["keys"][0]
jwks_pem = rsa.RSAPublicNumbers(int.from_bytes(b64u(jwk["e"]), "big"), int.from_bytes(b64u(jwk["n"]), "big")) \
    .public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
attempts["HS256 token signed with the published key"] = oauth_error(get_orders("bob", forge(
    {"alg": "HS256"}, bob_claims, lambda si: hmac.new(jwks_pem, si, hashlib.sha256).digest())))
pd.Series(attempts, name="answer").to_frame()

# %% [markdown]
# PKCE turns the intercepted code into a dead end: without the verifier the exchange fails, and because the
# failed attempt used the code up, the real client's exchange fails too. PKCE prevents the theft of tokens,
# not the denial of one login; the user simply starts again. The AS never redirects to an unregistered URI
# and refuses `plain`. At the API, editing the token breaks its signature, and the key-confusion forgery made
# with the published key is refused because RS256 is the only algorithm on the allow-list.
#
# **Refresh-token theft over HTTP.** The client refreshes; then a thief who copied the refresh token uses it
# first. The victim's next refresh reveals the theft:

# %%
def refresh(token):
    return http.post(as_service.url + "/token", data={"grant_type": "refresh_token", "refresh_token": token})


needs(solved(lambda: RefreshTokenStore(1, 1).login("x", 0)), "Exercise 3")
first = refresh(tokens["refresh_token"])                                   # normal rotation
stolen = first.json()["refresh_token"]                                            # copied by malware
by_thief = refresh(stolen)
by_victim = refresh(stolen)                                                # the victim's app, minutes later
by_thief_again = refresh(by_thief.json()["refresh_token"])
pd.DataFrame([("victim rotates its refresh token", first.status_code, "new access + refresh token"),
              ("thief uses the copied token first", by_thief.status_code, "gets tokens: the theft works, for now"),
              ("victim presents the same token", by_victim.status_code, oauth_error(by_victim)),
              ("thief refreshes again", by_thief_again.status_code, oauth_error(by_thief_again)),
              ("thief's last access token at the API", (r := get_orders("alice", by_thief.json()["access_token"])).status_code,
               f"still works until exp ({ACCESS_TTL} s): access tokens cannot be revoked")],
             columns=["event", "HTTP status", "what happened"]).set_index("event")

# %% [markdown]
# The last row is the stateless trade-off seen live: the family is revoked at the authorization server, but
# the API never asks it, so the thief's last access token works until it expires. The access-token lifetime
# is the part of the exposure window that no server-side action can shorten (short of a deny-list of `jti`
# values that every API consults).

# %% [markdown]
# ## CORS: cross-origin resource sharing policies
#
# Browsers follow the **same-origin policy**: a page may send requests anywhere, but its scripts may read a
# response only from their own *origin*, the triple (scheme, host, port). `https://shop.example` and
# `https://api.shop.example` are different origins, and so are `http://shop.example` and
# `https://shop.example:8443`. Without the rule, any site you visit could call your bank's API, which the
# browser would send your bank cookies to, and read your balance.
#
# **CORS** (the CORS protocol of the WHATWG Fetch standard) lets a server relax the rule for origins it
# chooses. The browser adds `Origin: https://shop.example` to a cross-origin request; the response says who
# may read it with `Access-Control-Allow-Origin` (one origin, or `*` for anyone), plus
# `Access-Control-Allow-Credentials: true` if the request may carry cookies or HTTP authentication. The
# browser enforces the answer; the server only states its policy. So CORS is **not access control**: curl, a
# server-side script or an attacker's own program ignores it. What it protects is the *user's browser*, and
# the credentials that browser attaches on its own, from other web sites.
#
# **Simple and preflighted requests.** Pages could always send some cross-origin requests (a form posts, an
# image loads), so those still go straight out as **simple requests**: GET, HEAD or POST whose script-set
# headers are all CORS-safelisted (`Accept`, `Accept-Language`, `Content-Language`, and `Content-Type` with
# one of the three types an HTML form can send: `application/x-www-form-urlencoded`, `multipart/form-data`,
# `text/plain`). Anything else, a PUT or a DELETE, an `Authorization` header, a JSON body
# (`Content-Type: application/json`), is first announced by a **preflight**: an `OPTIONS` request with
# `Origin`, `Access-Control-Request-Method` and `Access-Control-Request-Headers` (lower-case names separated
# by commas). The real request leaves only if the answer allows its method and every header. A simple request
# reaches the server and runs even when the browser then hides the response from the script, so a state
# change must never hang on a GET, or on a cookie-authenticated form POST without protection against
# cross-site request forgery (SameSite cookies, a CSRF token).
#
# **The preflight answer:**
#
# - `Access-Control-Allow-Origin`: the request's origin exactly, or `*`. A credentialed request is refused by
#   the browser when the answer is `*`;
# - `Access-Control-Allow-Credentials: true` when credentials are allowed;
# - `Access-Control-Allow-Methods` and `Access-Control-Allow-Headers`: lists; header names compare without
#   regard to case, as everywhere in HTTP;
# - `Access-Control-Max-Age`: seconds the browser may cache this answer (browsers cap it: Chromium at 7,200,
#   Firefox at 86,400);
# - `Vary: Origin` whenever the answer depends on the origin, so that a shared cache (a CDN) never hands the
#   answer meant for one origin to another.
#
# **Misconfigurations that open an API** (catalogued by James Kettle's 2016 research on real sites):
# reflecting whatever `Origin` arrives together with `Allow-Credentials: true`, so any site reads the user's
# data with the user's cookies; checking the origin by prefix, suffix or an unanchored regular expression
# (`https://shop.example.evil.test` passes a prefix check, `https://evilshop.example` a suffix check); and
# allowing `null`, the origin of sandboxed iframes and local files, which any attacker can produce.
#
# ### Exercise 5: the preflight decision (4 points)
#
# Complete `needs_preflight` (the browser's side: is a preflight needed?) and `preflight` (the server's side:
# the answer to one). The tests run a table of requests and policies through your functions and through a
# model of the browser's checks.

# %% nbgrader={"grade_id": "week23-api-security-ex05-cors-preflight", "solution": true}
SAFELISTED_METHODS = ("GET", "HEAD", "POST")
SAFELISTED_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")


def needs_preflight(method: str, headers: dict) -> bool:
    """True if a browser must preflight this cross-origin request. `headers`: the headers the script sets.
    No preflight only if method.upper() is GET, HEAD or POST and every header name (in any case) is Accept,
    Accept-Language, Content-Language or Content-Type, where a Content-Type's essence (the part before any
    ";", stripped and lower-cased) is one of SAFELISTED_CONTENT_TYPES."""
    ### BEGIN SOLUTION
    if method.upper() not in SAFELISTED_METHODS:
        return True
    for name, value in headers.items():
        name = name.lower()
        if name == "content-type":
            if value.split(";")[0].strip().lower() not in SAFELISTED_CONTENT_TYPES:
                return True
        elif name not in ("accept", "accept-language", "content-language"):
            return True
    return False
    ### END SOLUTION


def preflight(request_headers: dict, policy: dict):
    """The response headers (a dict) allowing this preflight, or None to refuse it.

    request_headers: name (any case) -> value. policy: {"origins": a list of origins, or "*"; "methods":
    [...]; "headers": [...]; "credentials": bool; optional "max_age": int}.
    - ValueError if origins is "*" and credentials is true (browsers refuse "*" with credentials, and
      echoing the Origin instead would let every site in);
    - None if Origin or Access-Control-Request-Method is missing (it is not a preflight);
    - None unless origins is "*" or the Origin equals one of them exactly;
    - None unless the requested method is in policy["methods"] or is GET, HEAD or POST (case-sensitive);
    - None unless every name in Access-Control-Request-Headers (comma-separated, spaces allowed) is in
      policy["headers"], compared case-insensitively.
    Otherwise {"Access-Control-Allow-Origin": the Origin, or "*" when origins is "*",
               "Access-Control-Allow-Methods": ", ".join(policy["methods"]),
               "Access-Control-Allow-Headers": ", ".join(policy["headers"])   (only if it lists any),
               "Access-Control-Allow-Credentials": "true"                     (only if credentials),
               "Access-Control-Max-Age": str(policy["max_age"])               (only if given),
               "Vary": "Origin"                                               (unless Allow-Origin is "*")}."""
    ### BEGIN SOLUTION
    credentials = bool(policy.get("credentials"))
    if policy["origins"] == "*" and credentials:
        raise ValueError('origins "*" cannot be combined with credentials: list the origins')
    h = {name.lower(): value for name, value in request_headers.items()}
    origin, method = h.get("origin"), h.get("access-control-request-method")
    if origin is None or method is None:
        return None
    if policy["origins"] != "*" and origin not in policy["origins"]:
        return None
    if method not in policy["methods"] and method not in SAFELISTED_METHODS:
        return None
    allowed = {name.lower() for name in policy.get("headers", [])}
    requested = [name.strip().lower() for name in h.get("access-control-request-headers", "").split(",")]
    if any(name and name not in allowed for name in requested):
        return None
    answer = {"Access-Control-Allow-Origin": "*" if policy["origins"] == "*" else origin,
              "Access-Control-Allow-Methods": ", ".join(policy["methods"])}
    if policy.get("headers"):
        answer["Access-Control-Allow-Headers"] = ", ".join(policy["headers"])
    if credentials:
        answer["Access-Control-Allow-Credentials"] = "true"
    if "max_age" in policy:
        answer["Access-Control-Max-Age"] = str(policy["max_age"])
    if answer["Access-Control-Allow-Origin"] != "*":
        answer["Vary"] = "Origin"
    return answer
    ### END SOLUTION


# %% nbgrader={"grade_id": "week23-api-security-ex05-cors-preflight-tests", "grade": true, "points": 1}
assert needs_preflight("GET", {}) is False and needs_preflight("PUT", {}) is True
assert needs_preflight("POST", {"Content-Type": "application/json"}) is True
assert needs_preflight("POST", {"Content-Type": "text/plain;charset=UTF-8"}) is False
_policy = {"origins": ["https://shop.example"], "methods": ["GET", "PUT"], "headers": ["Authorization"],
           "credentials": True, "max_age": 300}
_ok = preflight({"Origin": "https://shop.example", "Access-Control-Request-Method": "PUT",
                 "Access-Control-Request-Headers": "authorization"}, _policy)
assert type(_ok) is dict and _ok["Access-Control-Allow-Origin"] == "https://shop.example", _ok
assert _ok["Access-Control-Allow-Credentials"] == "true" and _ok["Vary"] == "Origin" and _ok["Access-Control-Max-Age"] == "300"
assert preflight({"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}, _policy) is None
assert preflight({"Origin": "https://shop.example", "Access-Control-Request-Method": "PATCH"}, _policy) is None
try:
    preflight({"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}, {**_policy, "origins": "*"})
    raise AssertionError('origins "*" with credentials must raise ValueError')
except ValueError:
    pass
print("visible CORS tests pass")

# %% nbgrader={"grade_id": "week23-api-security-ex05-cors-preflight-hidden", "grade": true, "points": 3}
assert needs_preflight("DELETE", {}) is True
### BEGIN HIDDEN TESTS
for _m, _h, _want in (("GET", {}, False), ("get", {}, False), ("HEAD", {"Accept": "*/*", "Accept-Language": "de"}, False),
                      ("GET", {"content-language": "en"}, False),
                      ("POST", {"Content-Type": "application/x-www-form-urlencoded"}, False),
                      ("POST", {"content-type": "Multipart/Form-Data; boundary=xyz"}, False),
                      ("POST", {"CONTENT-TYPE": " text/plain "}, False),
                      ("POST", {"Content-Type": "application/json"}, True),
                      ("POST", {"Content-Type": "application/json; charset=utf-8"}, True),
                      ("POST", {"Content-Type": "text/plain+json"}, True),
                      ("PUT", {}, True), ("DELETE", {}, True), ("PATCH", {}, True), ("OPTIONS", {}, True),
                      ("GET", {"Authorization": "Bearer x"}, True), ("GET", {"X-Request-Id": "7"}, True),
                      ("POST", {"Accept": "*/*", "X-CSRF": "1"}, True)):
    _got = needs_preflight(_m, _h)
    assert type(_got) is bool and _got == _want, (_m, _h, _got)


def _browser(origin, method, names, credentials, answer):
    """The Fetch standard's checks of a preflight answer (CORS check, methods, headers)."""
    if answer is None:
        return False
    h = {k.lower(): v for k, v in answer.items()}
    acao = h.get("access-control-allow-origin")
    if acao is None or (acao == "*" and credentials) or (acao != "*" and acao != origin):
        return False
    if credentials and h.get("access-control-allow-credentials") != "true":
        return False
    methods = [m.strip() for m in h.get("access-control-allow-methods", "").split(",") if m.strip()]
    headers = [x.strip().lower() for x in h.get("access-control-allow-headers", "").split(",") if x.strip()]
    if method not in methods and method not in ("GET", "HEAD", "POST") and (credentials or "*" not in methods):
        return False
    for n in (x.lower() for x in names):
        if n not in headers and (n == "authorization" or credentials or "*" not in headers):
            return False
    return True


_P1 = {"origins": ["https://shop.example", "https://admin.shop.example"], "methods": ["GET", "PUT", "DELETE"],
       "headers": ["Authorization", "Content-Type", "X-Request-Id"], "credentials": True, "max_age": 600}
_P2 = {"origins": "*", "methods": ["GET", "POST", "PUT"], "headers": ["Content-Type"], "credentials": False,
       "max_age": 86400}
_P4 = {"origins": ["https://partner.example"], "methods": ["GET"], "headers": [], "credentials": False}
_S, _A = "https://shop.example", "https://admin.shop.example"
_cases = [  # policy, origin, method, requested header names as sent, credentialed request, browser allows
    (_P1, _S, "PUT", "authorization,content-type", True, True),
    (_P1, _A, "DELETE", None, True, True),
    (_P1, _S, "POST", "content-type", True, True),
    (_P1, _S, "PUT", "X-Request-Id, AUTHORIZATION", True, True),
    (_P1, _S, "GET", " content-type , x-request-id ", False, True),
    (_P1, "https://evil.example", "PUT", "authorization", True, False),
    (_P1, "https://shop.example.evil.test", "PUT", None, True, False),
    (_P1, "https://evilshop.example", "GET", "authorization", True, False),
    (_P1, "https://admin.shop.example.evil.test", "GET", "authorization", True, False),
    (_P1, "http://shop.example", "PUT", None, True, False),
    (_P1, "https://shop.example:8443", "PUT", None, True, False),
    (_P1, "https://shop.exampl", "PUT", None, True, False),
    (_P1, "null", "PUT", None, True, False),
    (_P1, _S, "PATCH", None, True, False),
    (_P1, _S, "put", None, True, False),
    (_P1, _S, "PUT", "x-debug", True, False),
    (_P1, _S, "PUT", "content-type,x-debug", True, False),
    (_P2, "https://anyone.example", "PUT", "content-type", False, True),
    (_P2, "null", "POST", "content-type", False, True),
    (_P2, "https://anyone.example", "PUT", "content-type", True, False),     # "*" never covers credentials
    (_P2, "https://anyone.example", "DELETE", None, False, False),
    (_P2, "https://anyone.example", "PUT", "authorization", False, False),
    (_P4, "https://partner.example", "GET", None, False, True),
    (_P4, "https://partner.example", "GET", "authorization", False, False),
    (_P4, "https://partner.example/", "GET", None, False, False),
    (_P4, "https://PARTNER.example", "GET", None, False, False),
]
for _i, (_pol, _origin, _method, _names, _cred, _want) in enumerate(_cases):
    _req = {"Origin": _origin, "Access-Control-Request-Method": _method}
    if _names is not None:
        _req["Access-Control-Request-Headers"] = _names
    if _i % 3 == 1:
        _req = {k.lower(): v for k, v in _req.items()}                  # header names arrive in any case
    _ans = preflight(dict(_req), dict(_pol))
    assert _ans is None or type(_ans) is dict, _ans
    _names_list = [x.strip() for x in (_names or "").split(",") if x.strip()]
    assert _browser(_origin, _method, _names_list, _cred, _ans) == _want, (_i, _origin, _method, _names, _ans)
    if _ans is None:
        continue
    assert all(type(k) is str and type(v) is str for k, v in _ans.items()), _ans
    _h = {k.lower(): v for k, v in _ans.items()}
    _acao = _h["access-control-allow-origin"]
    assert _acao == ("*" if _pol["origins"] == "*" else _origin), (_i, _acao)
    if _acao != "*":
        assert "origin" in [t.strip().lower() for t in _h.get("vary", "").split(",")], f"case {_i}: no Vary: Origin"
    assert (_h.get("access-control-allow-credentials") == "true") == bool(_pol["credentials"]), (_i, _ans)
    assert _h.get("access-control-max-age") == (str(_pol["max_age"]) if "max_age" in _pol else None), (_i, _ans)

for _req in ({"Origin": _S}, {"Access-Control-Request-Method": "PUT"}, {}):
    assert preflight(_req, dict(_P1)) is None, _req
for _pol in ({**_P1, "origins": "*"}, {**_P2, "credentials": True}):
    for _origin in ("https://evil.example", _S, "null"):
        try:
            _ans = preflight({"Origin": _origin, "Access-Control-Request-Method": "GET"}, _pol)
        except ValueError:
            continue
        raise AssertionError(f'origins "*" with credentials answered {_ans} instead of raising ValueError')
### END HIDDEN TESTS

# %% [markdown]
# **Real preflights against the orders API.** The API started in the OAuth section answers `OPTIONS` with
# your `preflight` and its policy (`CORS_POLICY`: the shop and its admin site, with cookies). `browser_allows`
# applies the Fetch standard's checks to each answer, as a browser would. For comparison, the same requests
# go to a second API configured with `flask-cors` the way many tutorials show it, "allow every origin, with
# credentials".

# %%
def browser_allows(origin, method, header_names, credentials, answer: dict) -> bool:
    """The browser's checks of a preflight answer (Fetch standard, "CORS check" and "CORS-preflight fetch")."""
    h = {k.lower(): v for k, v in answer.items()}
    acao = h.get("access-control-allow-origin")
    if acao is None or (acao == "*" and credentials) or (acao != "*" and acao != origin):
        return False
    if credentials and h.get("access-control-allow-credentials") != "true":
        return False
    methods = [m.strip() for m in h.get("access-control-allow-methods", "").split(",")]
    allowed = [x.strip().lower() for x in h.get("access-control-allow-headers", "").split(",")]
    if method not in methods + list(SAFELISTED_METHODS) and (credentials or "*" not in methods):
        return False
    return all(n.lower() in allowed or (n.lower() != "authorization" and not credentials and "*" in allowed)
               for n in header_names)


tutorial_app = Flask("tutorial-cors")
CORS(tutorial_app, origins="*", supports_credentials=True)
tutorial_app.add_url_rule("/customers/<name>/orders", "orders", lambda name: jsonify(ORDERS.get(name, [])),
                          methods=["GET", "PUT", "DELETE"])
tutorial_api = archlab.serve(tutorial_app, "flask-cors-api")

scenarios = {
    "shop.example: PUT + Authorization, cookies": ("https://shop.example", "PUT", ["Authorization", "Content-Type"]),
    "admin.shop.example: DELETE, cookies": ("https://admin.shop.example", "DELETE", []),
    "evil.example: PUT + Authorization, cookies": ("https://evil.example", "PUT", ["Authorization"]),
    "shop.example.evil.test (prefix trick)": ("https://shop.example.evil.test", "GET", ["Authorization"]),
    "null (a sandboxed iframe)": ("null", "GET", ["Authorization"]),
    "shop.example: PATCH": ("https://shop.example", "PATCH", []),
    "shop.example: PUT + X-Debug": ("https://shop.example", "PUT", ["X-Debug"]),
}
needs(solved(lambda: preflight({}, CORS_POLICY)), "Exercise 5")
rows = {}
for label, (origin, method, names) in scenarios.items():
    ask = {"Origin": origin, "Access-Control-Request-Method": method}
    if names:
        ask["Access-Control-Request-Headers"] = ",".join(n.lower() for n in names)
    ours = http.options(f"{api_service.url}/customers/alice/orders", headers=ask)
    theirs = http.options(f"{tutorial_api.url}/customers/alice/orders", headers=ask)
    ours_ok, theirs_ok = (browser_allows(origin, method, names, True, r.headers) for r in (ours, theirs))
    rows[label] = {"orders API: status": ours.status_code, "browser": "allowed" if ours_ok else "blocked",
                   "flask-cors '*' + credentials: status": theirs.status_code,
                   "browser ": "allowed" if theirs_ok else "blocked",
                   "its Allow-Origin": theirs.headers.get("Access-Control-Allow-Origin", "-")}
cors_table = pd.DataFrame(rows).T
assert cors_table.loc["evil.example: PUT + Authorization, cookies", "browser "] == "allowed", \
    "flask-cors changed its behaviour: update the text below"
print(f"flask-cors {flask_cors.__version__}")
cors_table

# %% [markdown]
# Your policy lets exactly the shop's two origins in, with the listed methods and headers, and refuses the
# look-alike origins and `null`. The tutorial configuration is the first misconfiguration of the list above:
# asked for `*` with credentials, flask-cors does not send `*` (browsers would refuse it) but **echoes
# whatever origin asks, with `Allow-Credentials: true`**, so `evil.example` may send the user's cookies and
# read the answer. It also answers every requested header. That is why your `preflight` raises `ValueError`
# for this policy instead of guessing what was meant.
#
# A simple request needs no preflight, which the table of `needs_preflight` below shows: a cross-site form
# POST with `text/plain` reaches the server with no question asked, while the JSON body that APIs use does
# not.

# %%
needs(solved(lambda: needs_preflight("GET", {})), "Exercise 5")
pd.DataFrame([{"request": f"{m} {json.dumps(h) if h else ''}", "needs a preflight": needs_preflight(m, h)} for m, h in [
    ("GET", {}), ("POST", {"Content-Type": "text/plain"}), ("POST", {"Content-Type": "application/json"}),
    ("GET", {"Authorization": "Bearer ..."}), ("DELETE", {}), ("HEAD", {"Accept-Language": "de"})]]).set_index("request")

# %% [markdown]
# ## API Security: input validation and SQL injection prevention
#
# An API is a parser exposed to the internet: every field of every request is chosen by whoever sends it.
# **Injection** happens when such data is pasted into text that another interpreter parses (SQL, a shell
# command, an HTML page): the data can close the string it was meant to be and carry on as code. SQL
# injection is the classic case, still part of "Injection" in the OWASP Top 10 (A03:2021).
#
# The shop's database gets a `users` table next to the products. (The passwords are stored as a salted
# SHA-256 to keep the SQL short; real systems use a deliberately slow hash such as scrypt or Argon2, so that
# a stolen table cannot be guessed through quickly.) Then the two functions every tutorial warns about,
# built by string formatting.

# %%
datasets.load_into(conn, "small", tables=("products",))
rng = random.Random(23)
conn.execute("DROP TABLE IF EXISTS users")
conn.execute("""CREATE TABLE users (user_id int PRIMARY KEY, username text UNIQUE NOT NULL, role text NOT NULL,
                                    salt text NOT NULL, password_hash text NOT NULL)""")
PASSWORDS = {}
for user_id, (name, role) in enumerate([("admin", "admin"), ("alice", "customer"), ("bob", "customer"),
                                        ("mallory", "customer")], start=1):
    salt, PASSWORDS[name] = f"{rng.getrandbits(64):016x}", f"{rng.getrandbits(96):024x}"
    conn.execute("INSERT INTO users VALUES (%s, %s, %s, %s, encode(sha256(convert_to(%s || %s, 'UTF8')), 'hex'))",
                 (user_id, name, role, salt, salt, PASSWORDS[name]))


def login_sql(username: str, password: str) -> str:
    """DON'T: user input pasted into SQL."""
    return (f"SELECT username, role FROM users WHERE username = '{username}' "
            f"AND password_hash = encode(sha256(convert_to(salt || '{password}', 'UTF8')), 'hex')")


def login_vulnerable(db, username: str, password: str):
    return db.execute(login_sql(username, password)).fetchone()


def search_vulnerable(db, text: str, sort: str = "name"):
    """DON'T: user input pasted into SQL, including the sort column."""
    return db.execute(f"SELECT sku, name, price_cents FROM products WHERE name ILIKE '%{text}%' ORDER BY {sort} "
                      f"LIMIT 5").fetchall()


def attempt(fn, *args):
    try:
        return fn(*args)
    except psycopg.Error as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"


logins = {"alice, her password": ("alice", PASSWORDS["alice"]), "alice, a wrong password": ("alice", "guess"),
          "admin' --": ("admin' --", "anything"), "' OR '1'='1' --": ("' OR '1'='1' --", "anything"),
          "O'Brien (a real name)": ("O'Brien", "whatever")}
print("the SQL that `admin' --` produced:\n ", login_sql("admin' --", "anything"))
pd.Series({label: attempt(login_vulnerable, conn, *args) for label, args in logins.items()}, name="logged in as").to_frame()

# %% [markdown]
# `admin' --` closes the string after `admin` and comments out the password check: the attacker is the
# administrator without knowing any password. `' OR '1'='1' --` makes the condition true for every row and
# logs in as the first user, who is usually the administrator. And Mr O'Brien cannot log in at all: his
# apostrophe ends the string, and PostgreSQL reports a syntax error. The same hole in a search box reads
# other tables (`UNION` appends rows from any query with the same number of columns) and, because psycopg
# sends a query without parameters as a simple query in which several statements are allowed, it also
# writes:

# %%
union = "zzz' UNION SELECT username, salt || ':' || password_hash, 0 FROM users --"
print("UNION: the users table through the product search")
for row in search_vulnerable(conn, union):
    print("  ", row)
stacked = "'; UPDATE users SET role = 'admin' WHERE username = 'mallory'; --"
search_vulnerable(conn, stacked)
print("stacked statement: mallory is now", conn.execute("SELECT role FROM users WHERE username = 'mallory'").fetchone()[0])

# %% [markdown]
# **Blind injection through ORDER BY.** A sort parameter seems harmless: it only reorders rows the user may
# see anyway. But an expression in `ORDER BY` can depend on a secret, and the order of the results then
# leaks one bit per request: sort by price ascending if a condition holds, descending otherwise, and look at
# which product comes first. A binary search over the 16 hexadecimal digits reads the administrator's
# password hash four requests per character:

# %%
cheapest_first = search_vulnerable(conn, "", "price_cents")[0]        # what "true" looks like, seen from outside


def leaks(condition: str) -> bool:
    return search_vulnerable(conn, "", f"CASE WHEN ({condition}) THEN price_cents ELSE -price_cents END")[0] == cheapest_first


def extract(expression: str, length: int):
    digits, found, requests_made = "0123456789abcdef", "", 0
    for i in range(1, length + 1):
        lo, hi = 0, 15
        while lo < hi:
            mid = (lo + hi) // 2
            requests_made += 1
            if leaks(f"substr(({expression}), {i}, 1) > '{digits[mid]}'"):
                lo = mid + 1
            else:
                hi = mid
        found += digits[lo]
    return found, requests_made


secret = "SELECT password_hash FROM users WHERE username = 'admin'"
found, n_requests = extract(secret, 12)
truth = conn.execute(secret).fetchone()[0]
print(f"read through the sort order: {found}...  in {n_requests} requests; the real hash starts {truth[:12]}")
assert found == truth[:12]

# %% [markdown]
# Twelve characters took the number of requests printed above; the whole 64-character hash takes about five
# times as many, a few seconds of scripted requests that look like a user re-sorting a list.
#
# **The fix: bind parameters.** With psycopg, `db.execute("... WHERE username = %s", (username,))` does not
# paste anything: it sends the SQL text with a placeholder and the values separately (PostgreSQL's extended
# query protocol: *Parse* the text with `$1`, *Bind* the values, *Execute*). The server has parsed the
# statement before it sees the values, so no value can change its structure: `admin' --` is just a strange
# user name. (psycopg's `%s` is a placeholder, not Python's `%` operator: never build the string yourself, with
# `%`, `+`, `.format` or an f-string.) PostgreSQL's own view of a prepared statement shows what it received:

# %%
def login_safe(db, username: str, password: str):
    return db.execute("SELECT username, role FROM users WHERE username = %s "
                      "AND password_hash = encode(sha256(convert_to(salt || %s, 'UTF8')), 'hex')",
                      (username, password), prepare=True).fetchone()


safe = pd.Series({label: attempt(login_safe, conn, *args) for label, args in logins.items()}, name="logged in as")
print(conn.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%%users%%'").fetchone()[0])
safe.to_frame()

# %% [markdown]
# Only Alice with her password gets in, and Mr O'Brien gets an ordinary "no such user" instead of an error.
#
# **What parameters cannot do.** A placeholder stands for a *value*. Identifiers (table and column names) and
# keywords (`ASC`, `DESC`) cannot be parameters, so a sortable column must come from an **allow-list** that
# maps the names the API accepts to column names written in the code. (`psycopg.sql.Identifier` would quote a
# name safely, but it still lets a caller sort by `password_hash`, and the sort order leaks, as shown above.)
# And inside a bound value, `%` and `_` are still wildcards for `LIKE`: a search for `50%` matches every name
# containing "50", and a search for `%` matches everything and forces a full scan. Escape them (`\%`, `\_`,
# and the escape character `\` itself) when the user means them literally.
#
# **Least privilege limits the damage of the bug you did not find.** The API's database role needs to read
# products; it needs no access to `users` and no right to write. The same vulnerable search, run as such a
# role:

# %%
conn.execute("DROP ROLE IF EXISTS week23_api")
conn.execute("CREATE ROLE week23_api LOGIN")
conn.execute("GRANT SELECT ON products TO week23_api")
api_conn = pg.connect(db, user="week23_api")
pd.Series({"UNION read of users": attempt(search_vulnerable, api_conn, union),
           "stacked UPDATE of users": attempt(search_vulnerable, api_conn, stacked),
           "ordinary search": attempt(search_vulnerable, api_conn, "item 1")}, name="as role week23_api").to_frame()

# %% [markdown]
# The injection is still there (the ordinary search shows the role works), but the attacker inherits only
# the role's rights: `permission denied` for everything beyond them.
#
# ### Exercise 6: a safe product search (3 points)
#
# Complete `search_products`: the same search with the holes closed. Run SQL with `db.execute(query, params)`
# (or a cursor from `db.cursor()`); the tests watch what reaches the database.

# %% nbgrader={"grade_id": "week23-api-security-ex06-safe-search", "solution": true}
SORTABLE = {"name": "name", "price": "price_cents", "sku": "sku"}      # what the API accepts -> column


def search_products(db, text: str, sort: str = "name", descending: bool = False, limit: int = 20) -> list:
    """(sku, name, price_cents) tuples of the products whose name contains `text` literally, ignoring case
    (ILIKE), ordered by SORTABLE[sort] (descending if asked) and then by sku ascending, at most `limit` rows.
    - ValueError if text is not a str of at most 100 characters, sort is not a key of SORTABLE, or limit is
      not an int (bool excluded) from 1 to 100;
    - `text` (as a LIKE pattern) and `limit` are bind parameters (%s), never part of the SQL string;
    - `%`, `_` and `\\` in text match themselves: escape each with a backslash (`\\` is ILIKE's default
      escape character);
    - the column and ASC/DESC come from your code (SORTABLE and two fixed words), never from the caller."""
    ### BEGIN SOLUTION
    if not isinstance(text, str) or len(text) > 100:
        raise ValueError("text must be a string of at most 100 characters")
    if sort not in SORTABLE:
        raise ValueError(f"cannot sort by {sort!r}; choose one of {sorted(SORTABLE)}")
    if type(limit) is not int or not 1 <= limit <= 100:
        raise ValueError("limit must be an integer from 1 to 100")
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = (f"SELECT sku, name, price_cents FROM products WHERE name ILIKE %s "
             f"ORDER BY {SORTABLE[sort]} {'DESC' if descending else 'ASC'}, sku LIMIT %s")
    return [tuple(row) for row in db.execute(query, (pattern, limit)).fetchall()]
    ### END SOLUTION


# %% nbgrader={"grade_id": "week23-api-security-ex06-safe-search-tests", "grade": true, "points": 1}
_pg = archlab.postgres()
_db = _pg.connect(_pg.create_database("week23_ex06_visible"))
_db.execute("CREATE TABLE products (product_id int PRIMARY KEY, sku text, name text, category text, price_cents int, "
            "stock int)")
_db.execute("CREATE TABLE users (username text, password_hash text)")
_db.execute("INSERT INTO users VALUES ('root', 'f00d')")
for _i, (_name, _price) in enumerate([("Blue mug", 900), ("Red mug", 1200), ("Mug rack", 2500), ("Teapot", 3100)]):
    _db.execute("INSERT INTO products VALUES (%s, %s, %s, 'kitchen', %s, 5)", (_i, f"SKU-{_i}", _name, _price))
_got = search_products(_db, "mug")
assert type(_got) is list and all(type(r) is tuple for r in _got), _got
assert _got == [("SKU-0", "Blue mug", 900), ("SKU-2", "Mug rack", 2500), ("SKU-1", "Red mug", 1200)], _got
assert search_products(_db, "MUG", sort="price", descending=True, limit=2) == [("SKU-2", "Mug rack", 2500),
                                                                               ("SKU-1", "Red mug", 1200)]
assert search_products(_db, "' OR '1'='1") == []
assert search_products(_db, "zzz' UNION SELECT username, password_hash, 0 FROM users --") == []
try:
    search_products(_db, "mug", sort="password_hash")
    raise AssertionError("sort must come from the allow-list")
except ValueError:
    pass
print("visible search tests pass")

# %% nbgrader={"grade_id": "week23-api-security-ex06-safe-search-hidden", "grade": true, "points": 2}
_pg = archlab.postgres()
_db = _pg.connect(_pg.create_database("week23_ex06_hidden"))
_db.execute("CREATE TABLE products (product_id int PRIMARY KEY, sku text, name text, category text, price_cents int, "
            "stock int)")
assert type(search_products(_db, "x")) is list
### BEGIN HIDDEN TESTS
import random as _random

_db.execute("CREATE TABLE users (username text, role text, password_hash text)")
_db.execute("INSERT INTO users VALUES ('admin', 'admin', 'c0ffee'), ('eve', 'customer', 'beef')")
_names = ["50% off voucher", "5000 piece puzzle", "Tea_cup", "Teacup", "Back\\slash cable", "O'Brien's stew pot",
          "USB-C cable", "usb-c CABLE (long)", "100%% cotton towel", "Cable tie", "Lamp", "lamp shade", "A_B test kit"]
_rows = []
_rng = _random.Random(66)
for _i, _name in enumerate(_names * 3):
    _row = (_i, f"SKU-{_rng.randrange(10**6):06d}-{_i}", _name, "misc", _rng.choice([500, 900, 900, 1500, 2500]), 1)
    _rows.append(_row)
    _db.execute("INSERT INTO products VALUES (%s, %s, %s, %s, %s, %s)", _row)


class _Spy:
    """Passes everything to the real connection and records the SQL text and the parameters it saw."""

    def __init__(self, real):
        self.real, self.seen = real, []

    def _text(self, query):
        return query if isinstance(query, str) else query.as_string(self.real)

    def execute(self, query, params=None, **kwargs):
        self.seen.append((self._text(query), params))
        return self.real.execute(query, params, **kwargs)

    def cursor(self, *args, **kwargs):
        spy, cur = self, self.real.cursor(*args, **kwargs)

        class _Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                cur.close()

            def execute(self, query, params=None, **kw):
                spy.seen.append((spy._text(query), params))
                cur.execute(query, params, **kw)
                return self

            def __getattr__(self, name):
                return getattr(cur, name)

            def __iter__(self):
                return iter(cur)

        return _Cursor()


_cols = {"name": 2, "price": 4, "sku": 1}


def _oracle(text, sort, descending, limit):
    hits = [r for r in _rows if text.lower() in r[2].lower()]
    hits.sort(key=lambda r: r[1])                                     # sku, ascending
    hits.sort(key=lambda r: r[_cols[sort]], reverse=descending)       # stable: ties stay by sku
    return [(r[1], r[2], r[4]) for r in hits[:limit]]


for _text in ("50%", "%", "_", "Tea_", "a_b", "\\", "back\\s", "'", "o'brien", "%%", "CABLE", "lamp", "", "zz",
              "100%% c", "-c c"):
    for _sort, _desc, _limit in (("name", False, 100), ("price", True, 7), ("sku", False, 3), ("price", False, 1)):
        _spy = _Spy(_db)
        _got = search_products(_spy, _text, sort=_sort, descending=_desc, limit=_limit)
        assert type(_got) is list and all(type(r) is tuple and len(r) == 3 for r in _got), _got
        _want = _oracle(_text, _sort, _desc, _limit)
        assert _got == _want, (_text, _sort, _desc, _limit, _got, _want)

# injection payloads: nothing but literal matches, nothing changed, no user input in the SQL text
_marker = "zq'x"
for _payload in (f"{_marker}' OR '1'='1", f"{_marker}%' UNION SELECT username, password_hash, 0 FROM users --",
                 f"{_marker}'; UPDATE users SET role = 'admin' WHERE username = 'eve'; --", f"{_marker}\\'"):
    _spy = _Spy(_db)
    assert search_products(_spy, _payload, limit=37) == [], _payload
    assert _spy.seen, "search_products must run its SQL with db.execute or db.cursor()"
    for _sql, _params in _spy.seen:
        assert _marker not in _sql and "37" not in _sql, f"user input reached the SQL text: {_sql}"
assert _db.execute("SELECT role FROM users WHERE username = 'eve'").fetchone()[0] == "customer"

# the allow-list and the validation
for _kw in ({"sort": "password_hash"}, {"sort": "price_cents"}, {"sort": "price; DROP TABLE products"},
            {"sort": "(SELECT 1)"}, {"sort": "NAME"}, {"limit": 0}, {"limit": 101}, {"limit": True}, {"limit": "5"},
            {"limit": 5.0}, {"limit": -1}):
    try:
        search_products(_db, "cable", **_kw)
    except ValueError:
        continue
    raise AssertionError(f"search_products accepted {_kw}")
for _text in ("x" * 101, None, 42, b"cable"):
    try:
        search_products(_db, _text)
    except ValueError:
        continue
    raise AssertionError(f"search_products accepted text {_text!r}")
assert len(search_products(_db, "x" * 100)) == 0
### END HIDDEN TESTS

# %% [markdown]
# ### Input validation
#
# Validation decides, at the edge of the API, whether a request is well-formed *before* any code acts on it:
# the right type, length, range, format and set of fields, by an **allow-list** of what is expected rather
# than a deny-list of what looks dangerous (deny-lists miss encodings and new tricks, and reject honest
# input, like the apostrophe in O'Brien). It is not the fix for injection, which is parameters; it is the
# layer that keeps nonsense, oversized input and unexpected fields out of everything behind it. Three cases
# from the OWASP API Security Top 10 (2023):
#
# - **unknown fields** (API3, "Broken Object Property Level Authorization"): a profile update that blindly
#   copies the JSON body into the row lets a user send `"role": "admin"` (*mass assignment*); accept only the
#   fields this endpoint may change;
# - **sizes and counts** (API4, "Unrestricted Resource Consumption"): cap string lengths, page sizes (the
#   `limit` of Exercise 6) and request bodies, or one request can cost the server minutes;
# - **types**: `"quantity": "1e9"`, `true` where a number belongs, a list where an object belongs; parse into
#   the expected type and refuse the rest, with an error that says which field is wrong (HTTP 400 or 422).
#
# Normalize text (Unicode NFC, trimmed) before checking it. Encode on output, for the context it goes to
# (HTML, SQL via parameters, a shell argument list): validation at the input does not make a string safe for
# every place it may later be pasted. And the database enforces the last invariants itself (`NOT NULL`,
# `CHECK`, foreign keys), whatever the API forgot.

# %%
import unicodedata

PROFILE_FIELDS = {"display_name": (str, 1, 60), "email": (str, 3, 254), "marketing_opt_in": (bool, None, None)}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def validate_profile_update(body) -> dict:
    """Allow-list validation for PATCH /me: the clean fields, or ValueError naming the first problem."""
    if type(body) is not dict:
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(body) - set(PROFILE_FIELDS))
    if unknown:
        raise ValueError(f"fields that cannot be changed here: {unknown}")
    clean = {}
    for field, value in body.items():
        kind, shortest, longest = PROFILE_FIELDS[field]
        if type(value) is not kind:
            raise ValueError(f"{field} must be a {kind.__name__}")
        if kind is str:
            value = unicodedata.normalize("NFC", value).strip()
            if not shortest <= len(value) <= longest:
                raise ValueError(f"{field} must have {shortest} to {longest} characters")
        if field == "email" and not EMAIL.fullmatch(value):
            raise ValueError("email is not an e-mail address")
        clean[field] = value
    return clean


bodies = [{"display_name": "  Siobhán O'Brien "}, {"display_name": "Mallory", "role": "admin"}, {"display_name": ""},
          {"display_name": "x" * 10_000}, {"marketing_opt_in": "yes"}, {"email": "alice@shop.example"},
          {"email": "alice@localhost'--"}, ["display_name", "Eve"]]


def answer_to(body) -> str:
    try:
        return f"accepted: {validate_profile_update(body)}"
    except ValueError as e:
        return f"400: {e}"


pd.DataFrame({"request body": [json.dumps(b, ensure_ascii=False)[:60] for b in bodies],
              "answer": [answer_to(b) for b in bodies]}).set_index("request body")

# %% [markdown]
# The apostrophe and the accent are accepted (they are a name), the role escalation and the wrong types are
# refused with a message that names the field. Below the API, the database holds its own line:

# %%
try:
    conn.execute("UPDATE products SET price_cents = -100 WHERE product_id = 1")
except psycopg.errors.CheckViolation as e:
    print("PostgreSQL refuses:", str(e).splitlines()[0])

# %% [markdown]
# ### Exercise 7 (written): where the browser keeps the tokens (3 points)
#
# The shop's single-page app at `https://shop.example` calls the orders API at `https://api.shop.example`
# with the access and refresh tokens of this notebook. Where should the browser keep each token:
# `localStorage`, a JavaScript variable (memory), or a cookie marked `HttpOnly; Secure; SameSite=...` (set by
# which server, for which path)? In 6-10 sentences: say what an attacker who finds one cross-site scripting
# (XSS) bug in the app can do under your choice, what a cross-site request forgery (CSRF) can do, what the
# API's CORS policy must then say, and use at least one number from this notebook (an exposure window from
# the widget or the theft table, for instance).

# %% [markdown] nbgrader={"grade_id": "week23-api-security-ex07-token-storage", "solution": true, "grade": true, "points": 3}
# **Model answer.** Keep the access token in memory only (a JavaScript variable, lost on reload) with a
# short lifetime, and the refresh token in a cookie set by the authorization server with `HttpOnly; Secure;
# SameSite=Strict; Path=/token`, so that it is sent only to the token endpoint and no script can read it.
# `localStorage` is readable by every script on the origin: one XSS bug (or one compromised third-party
# script) copies a long-lived refresh token to the attacker, who then keeps access for the whole refresh
# lifetime without rotation (days in the theft table) or until the victim's next refresh with rotation (30
# minutes when the app is in use, with a 15-minute access token). With the `HttpOnly` cookie an XSS bug can
# still act *as* the user while the page is open (it runs in the page and can call the API, and read the
# in-memory access token), but it cannot carry a credential away, so the attack ends when the tab closes,
# and the access token it might read expires within minutes. Cookies bring CSRF: the browser attaches them to
# requests that other sites trigger, so the refresh cookie needs `SameSite=Strict` (or `Lax`), the token
# endpoint must accept only POST with a JSON body or a custom header (which forces a preflight), and
# state-changing API calls use the bearer token, which other sites cannot attach. The API's CORS policy
# lists `https://shop.example` exactly, never `*` or a reflected origin; `Allow-Credentials: true` is needed
# only on the endpoint that receives the cookie. The strongest variant is a backend-for-frontend: a small
# server on the shop's own origin holds all tokens and gives the browser only an `HttpOnly` session cookie,
# so no token ever reaches JavaScript (the approach the IETF's "OAuth 2.0 for Browser-Based Applications"
# recommends).
#
# **Rubric (3 points).** 1 point: a clear placement for each token, with the reason that `HttpOnly` hides a
# cookie from scripts while `localStorage` and memory do not (memory at least does not survive the page).
# 1 point: the XSS and CSRF consequences of the choice, with a CSRF defence for cookies (`SameSite`, POST
# with JSON or a custom header that forces a preflight, or a CSRF token) and a CORS policy with an exact
# origin list and credentials only where cookies are used. 1 point: a number from the notebook used
# correctly (an exposure window with or without rotation, the access-token lifetime) and one of: rotation
# with reuse detection, short access tokens, or the backend-for-frontend pattern. Any placement earns full
# marks if its XSS and CSRF consequences are stated correctly; "localStorage is fine because we use HTTPS"
# earns no point for the first criterion (HTTPS does not stop scripts on the page).

# %% [markdown]
# ## Wrap-up
#
# ### You can now
#
# - [ ] read, build and verify a JWT from its bytes: base64url, the signing input, HMAC-SHA-256 and RSA
#       PKCS #1 v1.5 signatures, checked against RFC 7515 Appendix A
# - [ ] refuse `alg: none`, RS256/HS256 key confusion, tampered, expired and not-yet-valid tokens with an
#       allow-list of algorithms, a key checked against its algorithm, and an injected clock with leeway
# - [ ] explain why a weak HMAC secret falls to an offline search and size a secret that does not
# - [ ] rotate refresh tokens, detect reuse, revoke the family, and compute the window of exposure that a
#       stolen access or refresh token leaves
# - [ ] run the OAuth 2.0 authorization code flow with PKCE, name the four parties, and explain what PKCE,
#       `state` and exact redirect-URI matching each stop
# - [ ] check tokens at an API for signature, audience, scope and object ownership
# - [ ] answer a CORS preflight, and spot a reflected origin, a prefix match or `null` in a CORS policy
# - [ ] exploit and then close SQL injection: bind parameters, an allow-list for identifiers, escaped `LIKE`
#       wildcards, a least-privilege database role, and input validation at the boundary
#
# ### Self-assessment
#
# From the guide's monthly questions, this week answers part of:
#
# 1. *How would I design a system to handle 1M requests per second?* Authenticate without a shared session
#    store: a signed token is verified locally by each API instance, at the per-request cost measured here for
#    RS256, and only refreshes (every few minutes per client) reach the authorization server.
# 2. *What monitoring strategy would I implement for microservices?* Security signals are metrics too: count
#    refresh-token reuse detections (each one is a theft or a bug), 401s by reason (`expired` spikes mean clock
#    skew or a broken client; `signature` or `algorithm` mean probing), 403s by endpoint, and CORS refusals.
#
# Check yourself: why does a JWT verifier need the list of algorithms from its caller rather than from the
# token? Why does rotation not help a victim whose laptop stays closed for a week? Why is an intercepted
# authorization code useless with PKCE, and what can the thief still do with it? Why is CORS not access
# control? Why can a column name not be a bind parameter, and what do you do instead?
