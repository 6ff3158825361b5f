#!/usr/bin/env python3
"""Generate ID-token verification fixtures for CloudLogin's JWT tests.

Regenerate (from the repository root):

    python3 Tests/CloudLoginTests/Fixtures/make_id_tokens.py

This rewrites Tests/CloudLoginTests/Fixtures/id_tokens.json next to this script
(pass another output path as the only argument to write elsewhere). Commit the
JSON: the keys are random on every run (RSA key generation cannot be seeded), and
PS256/ESxxx signatures are randomised, so output differs between runs; case
names, claims and expectations do not.

Needs only Python 3 and `cryptography` (no PyJWT).

Output layout:

    now           the injected clock (unix seconds) for every case
    skew_seconds  the clock skew the expectations assume (60)
    issuer        expected `iss`
    client_id     expected audience / azp
    jwks          public JWK set: rsa1 (RS256, alg present), rsa2 (no alg),
                  ec256 (P-256), ec384 (P-384)
    rsa_public_pem  rsa1's public key as SubjectPublicKeyInfo PEM; the HS256
                  key-confusion case uses exactly these bytes as its HMAC key
    cases[]       {name, token, expect, note, [claims_sub]}
                  expect is "valid" or one error kind:
                  malformed, alg_not_allowed, unknown_kid, bad_signature,
                  missing_claim, wrong_issuer, wrong_audience, azp_mismatch,
                  expired, issued_in_future.
                  claims_sub is present (value "alice") on valid cases only.

Every case is checked before writing by an independent reference verifier
(below) that rebuilds public keys from the JWK members only (n/e, crv/x/y) and
applies the ID token rules of docs/facts.md ("OpenID Connect and the password
grant"). Its check order, which the expectations rely on wherever a token breaks
more than one rule:

    1. compact form: exactly 3 dot-separated parts, base64url alphabet only
       (no padding), header and payload decode to JSON objects -> malformed
    2. header alg in the allow-list RS256/384/512, PS256/384/512, ES256/384
       (never none, never HS*)                                  -> alg_not_allowed
    3. kid found in the JWKS                                    -> unknown_kid
    4. signature shape: ES256 = 64 raw bytes, ES384 = 96        -> malformed
    5. signature verifies                                       -> bad_signature
    6. iss, sub, aud, exp, iat present                          -> missing_claim
    7. iss == issuer                                            -> wrong_issuer
    8. aud (string or array) contains client_id                 -> wrong_audience
    9. azp, if present, == client_id                            -> azp_mismatch
   10. exp + skew > now                                         -> expired
   11. iat <= now + skew                                        -> issued_in_future
"""

import base64
import hashlib
import hmac
import json
import os
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

NOW = 1900000000
SKEW = 60
ISSUER = "https://idp.test/realms/corp"
CLIENT_ID = "linux-login"

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
ALLOWED_ALGS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"}
EC_SIZES = {"ES256": 32, "ES384": 48}
EC_CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}


# ---------------------------------------------------------------- encoding

def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(obj) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def uint_b64u(n: int, length: int = 0) -> str:
    length = max(length, (n.bit_length() + 7) // 8)
    return b64u(n.to_bytes(length, "big"))


_B64U_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def b64u_decode_strict(s: str) -> bytes:
    if not _B64U_RE.match(s) or len(s) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ---------------------------------------------------------------- keys

def make_keys():
    return {
        "rsa1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec256": ec.generate_private_key(ec.SECP256R1()),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
    }


def public_jwk(kid, key):
    pub = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        nums = pub.public_numbers()
        jwk = {"kty": "RSA", "kid": kid, "use": "sig", "n": uint_b64u(nums.n), "e": uint_b64u(nums.e)}
        if kid == "rsa1":
            jwk["alg"] = "RS256"
        # rsa2 deliberately has no "alg" (like LemonLDAP::NG's JWKS).
        return jwk
    nums = pub.public_numbers()
    crv, size, alg = ("P-256", 32, "ES256") if key.curve.name == "secp256r1" else ("P-384", 48, "ES384")
    return {"kty": "EC", "kid": kid, "use": "sig", "alg": alg, "crv": crv,
            "x": uint_b64u(nums.x, size), "y": uint_b64u(nums.y, size)}


# ---------------------------------------------------------------- signing

def sign(alg: str, key, signing_input: bytes, der_ecdsa: bool = False) -> bytes:
    h = HASHES[alg[2:]]()
    if alg.startswith("RS"):
        return key.sign(signing_input, padding.PKCS1v15(), h)
    if alg.startswith("PS"):
        # JWS (RFC 7518 3.5): MGF1 with the same hash, salt length = digest length.
        return key.sign(signing_input, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    if alg.startswith("ES"):
        der = key.sign(signing_input, ec.ECDSA(h))
        if der_ecdsa:
            return der
        r, s = decode_dss_signature(der)
        size = EC_SIZES[alg]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise ValueError(alg)


def jws(header: dict, payload, key, der_ecdsa=False) -> str:
    h = b64u_json(header)
    p = b64u_json(payload) if not isinstance(payload, (bytes, str)) else (
        b64u(payload if isinstance(payload, bytes) else payload.encode()))
    si = f"{h}.{p}".encode("ascii")
    sig = sign(header["alg"], key, si, der_ecdsa=der_ecdsa)
    return f"{h}.{p}.{b64u(sig)}"


def default_claims(**changes):
    c = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "alice",
        "preferred_username": "alice",
        "name": "Alice Example",
        "email": "alice@example.test",
        "groups": ["admins", "staff"],
        "iat": NOW - 10,
        "exp": NOW + 300,
    }
    for k, v in changes.items():
        if v is DELETE:
            c.pop(k, None)
        else:
            c[k] = v
    return c


DELETE = object()


# ---------------------------------------------------------------- reference verifier

class Reject(Exception):
    def __init__(self, kind, why=""):
        super().__init__(f"{kind}: {why}")
        self.kind = kind


def key_from_jwk(jwk):
    if jwk["kty"] == "RSA":
        n = int.from_bytes(b64u_decode_strict(jwk["n"]), "big")
        e = int.from_bytes(b64u_decode_strict(jwk["e"]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if jwk["kty"] == "EC":
        x = int.from_bytes(b64u_decode_strict(jwk["x"]), "big")
        y = int.from_bytes(b64u_decode_strict(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, EC_CURVES[jwk["crv"]]()).public_key()
    raise ValueError(jwk["kty"])


def reference_verify(token: str, jwks: dict, now=NOW, skew=SKEW, issuer=ISSUER, client_id=CLIENT_ID):
    """Return the claims dict or raise Reject(kind)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Reject("malformed", f"{len(parts)} parts")
    try:
        header = json.loads(b64u_decode_strict(parts[0]))
        payload_bytes = b64u_decode_strict(parts[1])
        sig = b64u_decode_strict(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise Reject("malformed", f"header/encoding: {exc}")
    if not isinstance(header, dict):
        raise Reject("malformed", "header not an object")
    try:
        claims = json.loads(payload_bytes)
    except (ValueError, UnicodeDecodeError):
        raise Reject("malformed", "payload not JSON")
    if not isinstance(claims, dict):
        raise Reject("malformed", "payload not an object")

    alg = header.get("alg")
    if alg not in ALLOWED_ALGS:
        raise Reject("alg_not_allowed", repr(alg))
    jwk = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    if jwk is None:
        raise Reject("unknown_kid", repr(header.get("kid")))
    if "alg" in jwk and jwk["alg"] != alg:
        raise Reject("alg_not_allowed", "JWK alg differs")
    want_kty = "EC" if alg.startswith("ES") else "RSA"
    if jwk["kty"] != want_kty:
        raise Reject("alg_not_allowed", "key type differs")

    key = key_from_jwk(jwk)
    si = f"{parts[0]}.{parts[1]}".encode("ascii")
    h = HASHES[alg[2:]]()
    try:
        if alg.startswith("ES"):
            size = EC_SIZES[alg]
            if len(sig) != 2 * size:
                raise Reject("malformed", f"ECDSA signature is {len(sig)} bytes")
            if key.curve.key_size != size * 8:
                raise Reject("alg_not_allowed", "curve differs")
            r = int.from_bytes(sig[:size], "big")
            s = int.from_bytes(sig[size:], "big")
            key.verify(encode_dss_signature(r, s), si, ec.ECDSA(h))
        elif alg.startswith("PS"):
            key.verify(sig, si, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        else:
            key.verify(sig, si, padding.PKCS1v15(), h)
    except InvalidSignature:
        raise Reject("bad_signature")

    for name in ("iss", "sub", "aud", "exp", "iat"):
        if name not in claims:
            raise Reject("missing_claim", name)
    if claims["iss"] != issuer:
        raise Reject("wrong_issuer")
    aud = claims["aud"]
    auds = aud if isinstance(aud, list) else [aud]
    if client_id not in auds:
        raise Reject("wrong_audience")
    if "azp" in claims and claims["azp"] != client_id:
        raise Reject("azp_mismatch")
    if not claims["exp"] + skew > now:
        raise Reject("expired")
    if claims["iat"] > now + skew:
        raise Reject("issued_in_future")
    return claims


# ---------------------------------------------------------------- cases

def build_cases(keys, rsa_public_pem: str):
    cases = []

    def add(name, token, expect, note=""):
        case = {"name": name, "token": token, "expect": expect}
        if note:
            case["note"] = note
        if expect == "valid":
            case["claims_sub"] = "alice"
        cases.append(case)

    def hdr(alg, kid):
        return {"alg": alg, "kid": kid, "typ": "JWT"}

    def flip_last_sig_byte(token):
        h, p, s = token.split(".")
        sig = bytearray(b64u_decode_strict(s))
        sig[-1] ^= 0x01
        return f"{h}.{p}.{b64u(bytes(sig))}"

    rs256 = jws(hdr("RS256", "rsa1"), default_claims(), keys["rsa1"])

    # --- valid
    add("valid_rs256", rs256, "valid", "RS256, kid rsa1 (JWK alg RS256)")
    add("valid_rs384", jws(hdr("RS384", "rsa2"), default_claims(), keys["rsa2"]), "valid",
        "kid rsa2: rsa1's JWK pins alg RS256")
    add("valid_rs512", jws(hdr("RS512", "rsa2"), default_claims(), keys["rsa2"]), "valid")
    add("valid_ps256", jws(hdr("PS256", "rsa2"), default_claims(), keys["rsa2"]), "valid",
        "RSASSA-PSS, MGF1-SHA256, salt length 32")
    add("valid_es256", jws(hdr("ES256", "ec256"), default_claims(), keys["ec256"]), "valid",
        "raw R||S signature, 64 bytes")
    add("valid_es384", jws(hdr("ES384", "ec384"), default_claims(), keys["ec384"]), "valid",
        "raw R||S signature, 96 bytes")
    add("valid_kid_without_alg", jws(hdr("RS256", "rsa2"), default_claims(), keys["rsa2"]), "valid",
        "JWK rsa2 has no alg member")
    add("valid_aud_array", jws(hdr("RS256", "rsa1"), default_claims(aud=[CLIENT_ID]), keys["rsa1"]),
        "valid")
    add("valid_aud_array_with_azp",
        jws(hdr("RS256", "rsa1"), default_claims(aud=[CLIENT_ID, "other"], azp=CLIENT_ID), keys["rsa1"]),
        "valid", "aud has a second audience; azp equals client_id")
    add("valid_exp_within_skew",
        jws(hdr("RS256", "rsa1"), default_claims(exp=NOW - 30), keys["rsa1"]), "valid",
        "exp = now-30, inside the 60 s skew")

    # --- time
    add("expired", jws(hdr("RS256", "rsa1"), default_claims(exp=NOW - 120), keys["rsa1"]), "expired",
        "exp = now-120, beyond the 60 s skew")
    add("issued_in_future",
        jws(hdr("RS256", "rsa1"), default_claims(iat=NOW + 600, exp=NOW + 900), keys["rsa1"]),
        "issued_in_future", "iat = now+600 (exp = now+900)")

    # --- iss / aud / azp
    add("wrong_issuer",
        jws(hdr("RS256", "rsa1"), default_claims(iss="https://evil.test/realms/corp"), keys["rsa1"]),
        "wrong_issuer")
    add("wrong_audience_string", jws(hdr("RS256", "rsa1"), default_claims(aud="other"), keys["rsa1"]),
        "wrong_audience")
    add("wrong_audience_array", jws(hdr("RS256", "rsa1"), default_claims(aud=["other"]), keys["rsa1"]),
        "wrong_audience")
    add("azp_mismatch",
        jws(hdr("RS256", "rsa1"), default_claims(aud=[CLIENT_ID, "other"], azp="other"), keys["rsa1"]),
        "azp_mismatch")

    # --- algorithm attacks
    add("alg_none", f"{b64u_json({'alg': 'none'})}.{b64u_json(default_claims())}.", "alg_not_allowed",
        "header {\"alg\":\"none\"}, empty signature part")
    hs_header = b64u_json(hdr("HS256", "rsa1"))
    hs_payload = b64u_json(default_claims())
    hs_sig = hmac.new(rsa_public_pem.encode("ascii"), f"{hs_header}.{hs_payload}".encode("ascii"),
                      hashlib.sha256).digest()
    add("alg_hs256_key_confusion", f"{hs_header}.{hs_payload}.{b64u(hs_sig)}", "alg_not_allowed",
        "HS256 with kid rsa1, HMAC key = rsa_public_pem bytes")

    # --- keys and signatures
    add("unknown_kid", jws(hdr("RS256", "nope"), default_claims(), keys["rsa1"]), "unknown_kid",
        "signed by rsa1 but kid \"nope\"")
    add("bad_signature_flipped_byte", flip_last_sig_byte(rs256), "bad_signature",
        "valid_rs256 with the last signature byte XOR 0x01")
    h, _, s = rs256.split(".")
    add("bad_signature_payload_altered",
        f"{h}.{b64u_json(default_claims(sub='mallory', preferred_username='mallory'))}.{s}",
        "bad_signature", "valid_rs256's header and signature, payload with sub mallory")
    add("es256_signature_der", jws(hdr("ES256", "ec256"), default_claims(), keys["ec256"], der_ecdsa=True),
        "malformed", "ES256 signature DER-encoded (70-72 bytes) instead of raw 64")

    # --- malformed compact serialisation
    h, p, s = rs256.split(".")
    add("malformed_two_parts", f"{h}.{p}", "malformed")
    add("malformed_four_parts", f"{h}.{p}.{s}.{s}", "malformed")
    add("malformed_header_not_base64url", f"*{h[1:]}.{p}.{s}", "malformed",
        "first header character replaced with '*'")
    not_json_header = b64u(b"not json")
    add("malformed_header_not_json",
        f"{not_json_header}.{p}.{b64u(sign('RS256', keys['rsa1'], f'{not_json_header}.{p}'.encode()))}",
        "malformed", "header decodes to 'not json' (correctly signed)")
    hp = b64u_json(hdr("RS256", "rsa1"))
    not_json_payload = b64u(b"{not json")
    add("malformed_payload_not_json",
        f"{hp}.{not_json_payload}.{b64u(sign('RS256', keys['rsa1'], f'{hp}.{not_json_payload}'.encode()))}",
        "malformed", "payload decodes to '{not json' (correctly signed)")
    add("malformed_empty", "", "malformed")

    # --- missing claims
    add("missing_exp", jws(hdr("RS256", "rsa1"), default_claims(exp=DELETE), keys["rsa1"]),
        "missing_claim")
    add("missing_sub", jws(hdr("RS256", "rsa1"), default_claims(sub=DELETE), keys["rsa1"]),
        "missing_claim")
    return cases


# ---------------------------------------------------------------- main

def main(argv):
    out = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "id_tokens.json")
    keys = make_keys()
    jwks = {"keys": [public_jwk(kid, key) for kid, key in keys.items()]}
    rsa_public_pem = keys["rsa1"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    cases = build_cases(keys, rsa_public_pem)

    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"

    # Independent check: keys rebuilt from the published JWKs only.
    for case in cases:
        try:
            claims = reference_verify(case["token"], jwks)
            got = "valid"
            assert claims["sub"] == case["claims_sub"], case["name"]
        except Reject as r:
            got = r.kind
        if got != case["expect"]:
            sys.exit(f"case {case['name']}: expected {case['expect']}, reference verifier says {got}")

    # Sanity on the shapes the brief pins down.
    def sig_len(name):
        tok = next(c["token"] for c in cases if c["name"] == name)
        return len(b64u_decode_strict(tok.split(".")[2]))
    assert sig_len("valid_es256") == 64 and sig_len("valid_es384") == 96
    assert sig_len("es256_signature_der") != 64
    assert "alg" not in jwks["keys"][1] and jwks["keys"][1]["kid"] == "rsa2"

    doc = {
        "now": NOW,
        "skew_seconds": SKEW,
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "jwks": jwks,
        "rsa_public_pem": rsa_public_pem,
        "cases": cases,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out}: {len(cases)} cases, all confirmed by the reference verifier")


if __name__ == "__main__":
    main(sys.argv)
