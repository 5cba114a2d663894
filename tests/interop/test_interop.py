"""Interop suite: OAuth/JWT implementations we did not write drive and check our system.

Run against the embedded default (`oauth-time` from scripts/build-static.sh, all three services on
127.0.0.1:8080-8082) by tests/interop/run.sh. Clients used:

- Authlib's requests OAuth2Session (authorization code + PKCE S256, client_secret_basic and
  client_secret_post) and its RFC 8414 metadata model;
- requests-oauthlib's OAuth2Session (PKCE S256), a second, independent client;
- PyJWT's PyJWKClient + jwt.decode, as an independent RFC 9068 token verifier;
- hand-made tampered tokens, which our resource server must refuse with 401 invalid_token.

Access tokens live 5 s: each test fetches its own and uses it at once.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets
import ssl
import time
import urllib.parse

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from requests_oauthlib import OAuth2Session as RequestsOAuthlibSession

# The embedded default's public and listening addresses (docs/configuration.md); `https` when
# run.sh starts it with a certificate (INTEROP_SCHEME), requests then trusting its CA through
# REQUESTS_CA_BUNDLE.
SCHEME = os.environ.get("INTEROP_SCHEME", "http")
ISSUER = f"{SCHEME}://localhost:8081"
AS_URL = f"{SCHEME}://127.0.0.1:8081"
RS_PUBLIC_URL = f"{SCHEME}://localhost:8082"
RS_URL = f"{SCHEME}://127.0.0.1:8082"
CLIENT_ID = "1234"
CLIENT_SECRET = "qwerty"
REDIRECT_URI = "http://localhost:8080/callback"
SCOPES = ("current_time", "epoch_time")
ALGORITHM = os.environ.get("INTEROP_SIGNING_ALGORITHM", "EdDSA")
RFC9068_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]
TIMEOUT = 5


# --------------------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(value) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def split_jwt(token: str):
    header_b64, payload_b64, signature_b64 = token.split(".")
    return (
        json.loads(b64url_decode(header_b64)),
        json.loads(b64url_decode(payload_b64)),
        header_b64,
        payload_b64,
        signature_b64,
    )


def resource_get(scope: str, user: str, token: str) -> requests.Response:
    return requests.get(
        f"{RS_URL}/{scope}",
        params={"user": user},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


def assert_time_body(scope: str, user: str, body: dict):
    assert set(body) == {scope, "user"}, body
    assert body["user"] == user
    now = time.time()
    if scope == "epoch_time":
        assert isinstance(body["epoch_time"], int) and not isinstance(body["epoch_time"], bool)
        assert abs(body["epoch_time"] - now) < 60, body
    else:
        text = body["current_time"]
        assert isinstance(text, str)
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert parsed.utcoffset() == datetime.timedelta(0), text
        assert abs(parsed.timestamp() - now) < 60, body


def assert_invalid_token(response: requests.Response):
    assert response.status_code == 401, (response.status_code, response.text)
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer"), challenge
    assert 'error="invalid_token"' in challenge, challenge


def authorize_redirect(authorization_url: str) -> str:
    """Act as the user agent: follow nothing, return the 302's Location."""
    response = requests.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code == 302, (response.status_code, response.text)
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert "error" not in query, location
    # RFC 9207: the metadata says authorization_response_iss_parameter_supported.
    assert query.get("iss") == [ISSUER], location
    return location


class TokenRequestRecorder:
    """A requests response hook that keeps the token requests a session sends."""

    def __init__(self):
        self.requests = []

    def __call__(self, response, *args, **kwargs):
        if urllib.parse.urlsplit(response.request.url).path == "/token":
            self.requests.append(response.request)


def authlib_flow(metadata, scope, user, auth_method, with_resource=True):
    """Authlib's OAuth2Session runs the authorization code flow; returns (session, token, recorder)."""
    session = AuthlibSession(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope=scope,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
        # Authlib treats a token as expired `leeway` seconds early (60 by default): ours live 5 s.
        leeway=0,
    )
    recorder = TokenRequestRecorder()
    session.hooks["response"].append(recorder)
    code_verifier = generate_token(48)
    extra = {"login_hint": user}
    if with_resource:
        extra["resource"] = f"{RS_PUBLIC_URL}/{scope}"
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, **extra
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    expected_challenge = b64url(hashlib.sha256(code_verifier.encode()).digest())
    assert query["code_challenge"] == [expected_challenge]
    location = authorize_redirect(url)
    token = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=location,
        state=state,
        code_verifier=code_verifier,
    )
    return session, token, recorder


def assert_token_response(token, scope):
    assert token["token_type"].lower() == "bearer", token
    assert token["expires_in"] == 5, token
    assert token["scope"] == scope, token
    assert token["access_token"].count(".") == 2, token


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def metadata_url():
    return f"{ISSUER}/.well-known/oauth-authorization-server"


@pytest.fixture(scope="session")
def metadata(metadata_url):
    response = requests.get(metadata_url, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


@pytest.fixture(scope="session")
def jwks_client(metadata):
    # PyJWKClient fetches with urllib, not requests: it gets the CA of an HTTPS run explicitly.
    ca_file = os.environ.get("REQUESTS_CA_BUNDLE") if SCHEME == "https" else None
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    return jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=True, ssl_context=context)


@pytest.fixture(scope="session")
def jwks(metadata):
    response = requests.get(metadata["jwks_uri"], timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def fresh_token(metadata):
    """A token for epoch_time of alice, fetched by Authlib (client_secret_basic), just now."""

    def make(scope="epoch_time", user="alice"):
        _, token, _ = authlib_flow(metadata, scope, user, "client_secret_basic")
        return token["access_token"]

    return make


@pytest.fixture(autouse=True, scope="session")
def no_insecure_transport_override():
    # Authlib's and oauthlib's https checks must run for real in the metadata test:
    # http is accepted only because the URLs are loopback (`localhost`, RFC 8252 §7.3).
    assert not os.environ.get("AUTHLIB_INSECURE_TRANSPORT")


# --------------------------------------------------------------------------- RFC 8414 metadata


def test_metadata_validates_with_authlib(metadata, metadata_url):
    model = AuthorizationServerMetadata(metadata)
    model.validate()
    # RFC 8414 §3.3: the issuer equals the URL the metadata was fetched from, minus the
    # well-known suffix.
    assert metadata_url == model["issuer"] + "/.well-known/oauth-authorization-server"
    assert model["issuer"] == ISSUER
    assert model["code_challenge_methods_supported"] == ["S256"]
    assert set(model["token_endpoint_auth_methods_supported"]) >= {
        "client_secret_basic",
        "client_secret_post",
    }
    assert set(model["scopes_supported"]) == set(SCOPES)
    assert model["response_types_supported"] == ["code"]
    assert "authorization_code" in model["grant_types_supported"]
    assert model.get("authorization_response_iss_parameter_supported") is True


def test_jwks_publishes_our_algorithm(jwks):
    assert jwks["keys"], jwks
    for key in jwks["keys"]:
        assert key["alg"] == ALGORITHM, key
        assert key["use"] == "sig", key
        assert key["kid"], key
        # Public keys only.
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), key


# --------------------------------------------------------------------------- Authlib client


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
@pytest.mark.parametrize("scope", SCOPES)
def test_authlib_code_flow(metadata, auth_method, scope):
    session, token, recorder = authlib_flow(metadata, scope, "alice", auth_method)
    assert_token_response(token, scope)

    # The token request really used the method under test.
    assert len(recorder.requests) == 1
    sent = recorder.requests[0]
    form = urllib.parse.parse_qs(sent.body if isinstance(sent.body, str) else sent.body.decode())
    assert form["grant_type"] == ["authorization_code"]
    assert "code_verifier" in form
    if auth_method == "client_secret_basic":
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        assert sent.headers.get("Authorization") == expected
        assert "client_secret" not in form
    else:
        assert "Authorization" not in sent.headers
        assert form["client_id"] == [CLIENT_ID]
        assert form["client_secret"] == [CLIENT_SECRET]

    # Authlib presents the token to our resource server.
    response = session.get(f"{RS_URL}/{scope}", params={"user": "alice"}, timeout=TIMEOUT)
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.request.headers["Authorization"] == f"Bearer {token['access_token']}"
    assert_time_body(scope, "alice", response.json())


def test_authlib_code_flow_without_resource_parameter(metadata):
    # RFC 8707 `resource` is optional: the audience is derived from the scope.
    session, token, _ = authlib_flow(
        metadata, "current_time", "bob", "client_secret_basic", with_resource=False
    )
    assert_token_response(token, "current_time")
    response = session.get(f"{RS_URL}/current_time", params={"user": "bob"}, timeout=TIMEOUT)
    assert response.status_code == 200, (response.status_code, response.text)
    assert_time_body("current_time", "bob", response.json())


# --------------------------------------------------------------------------- requests-oauthlib client


@pytest.mark.parametrize("scope", SCOPES)
def test_requests_oauthlib_code_flow(metadata, scope, monkeypatch):
    # oauthlib refuses http URLs unless told otherwise; ours are loopback-only.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    session = RequestsOAuthlibSession(
        client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, scope=[scope], pkce="S256"
    )
    url, state = session.authorization_url(
        metadata["authorization_endpoint"],
        login_hint="carol",
        resource=f"{RS_PUBLIC_URL}/{scope}",
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [state]
    location = authorize_redirect(url)
    token = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=location,
        client_secret=CLIENT_SECRET,
    )
    assert token["token_type"].lower() == "bearer", token
    assert token["expires_in"] == 5, token
    assert token["scope"] in ([scope], scope), token

    response = session.get(f"{RS_URL}/{scope}", params={"user": "carol"}, timeout=TIMEOUT)
    assert response.status_code == 200, (response.status_code, response.text)
    assert_time_body(scope, "carol", response.json())


# --------------------------------------------------------------------------- PyJWT verification


@pytest.mark.parametrize("scope", SCOPES)
def test_pyjwt_accepts_our_tokens(fresh_token, jwks_client, metadata, scope):
    token = fresh_token(scope=scope, user="dave")

    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt", header
    assert header["alg"] == ALGORITHM, header
    assert header.get("kid"), header

    signing_key = jwks_client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=[ALGORITHM],
        audience=f"{RS_PUBLIC_URL}/{scope}",
        issuer=metadata["issuer"],
        options={"require": RFC9068_CLAIMS},
    )
    # PyJWT's `require` checks presence; check the non-registered ones ourselves too.
    for claim in RFC9068_CLAIMS:
        assert claim in claims, (claim, claims)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "dave"
    assert claims["aud"] == f"{RS_PUBLIC_URL}/{scope}"
    assert claims["client_id"] == CLIENT_ID
    assert claims["scope"] == scope
    assert claims["exp"] - claims["iat"] == 5
    assert isinstance(claims["jti"], str) and claims["jti"]

    # And our resource server agrees, with the same token.
    response = resource_get(scope, "dave", token)
    assert response.status_code == 200, (response.status_code, response.text)


def test_pyjwt_refuses_the_wrong_audience(fresh_token, jwks_client, metadata):
    # Per-endpoint audience: a token for epoch_time is not a token for current_time.
    token = fresh_token(scope="epoch_time")
    signing_key = jwks_client.get_signing_key_from_jwt(token)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            token,
            signing_key.key,
            algorithms=[ALGORITHM],
            audience=f"{RS_PUBLIC_URL}/current_time",
            issuer=metadata["issuer"],
        )


# --------------------------------------------------------------------------- tampered tokens


def public_key_from_jwks(jwks, kid):
    jwk = next(key for key in jwks["keys"] if key["kid"] == kid)
    return jwk, jwt.PyJWK(jwk).key


def hs256_by_hand(header, payload_b64, secret: bytes) -> str:
    """HS256 signed by hand: PyJWT refuses to HMAC-sign with a PEM public key."""
    header_b64 = b64url_json(header)
    signing_input = f"{header_b64}.{payload_b64}".encode()
    return f"{header_b64}.{payload_b64}.{b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())}"


def hmac_secrets(jwk, public_key):
    """Every form of our public key an attacker might feed to HMAC as its secret."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forms = {
        "pem": pem,
        "pem-no-newline": pem.rstrip(b"\n"),
        "der": der,
        "jwk-json": json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
    }
    for member in ("x", "y", "n"):
        if member in jwk:
            forms[f"jwk-{member}-raw"] = b64url_decode(jwk[member])
            forms[f"jwk-{member}-b64url"] = jwk[member].encode()
    return forms


def foreign_private_key():
    if ALGORITHM == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if ALGORITHM == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


TAMPERINGS = [
    "alg-none-empty-signature",
    "alg-none-original-signature",
    "alg-None-capitalised",
    "hs256-with-public-key",
    "payload-sub-changed",
    "payload-exp-extended",
    "payload-scope-changed",
    "payload-aud-changed",
    "other-kid",
    "no-kid",
    "signature-stripped",
    "signature-flipped-bit",
    "foreign-key-our-kid",
    "foreign-key-own-kid",
]


def tampered_variants(kind, token, jwks):
    """Yield (label, scope, user, tampered token) for one kind of tampering of `token`."""
    header, payload, header_b64, payload_b64, signature_b64 = split_jwt(token)
    scope, user = payload["scope"], payload["sub"]

    def with_payload(**changes):
        return b64url_json({**payload, **changes})

    if kind == "alg-none-empty-signature":
        yield kind, scope, user, f"{b64url_json({**header, 'alg': 'none'})}.{payload_b64}."
    elif kind == "alg-none-original-signature":
        yield kind, scope, user, f"{b64url_json({**header, 'alg': 'none'})}.{payload_b64}.{signature_b64}"
    elif kind == "alg-None-capitalised":
        for alg in ("None", "NONE", "nOnE"):
            yield f"{kind}:{alg}", scope, user, f"{b64url_json({**header, 'alg': alg})}.{payload_b64}."
    elif kind == "hs256-with-public-key":
        jwk, public_key = public_key_from_jwks(jwks, header["kid"])
        for form, secret in hmac_secrets(jwk, public_key).items():
            forged = hs256_by_hand({**header, "alg": "HS256"}, payload_b64, secret)
            yield f"{kind}:{form}", scope, user, forged
    elif kind == "payload-sub-changed":
        # Ask for the new user, so the changed signature input is the only defect.
        yield kind, scope, "mallory", f"{header_b64}.{with_payload(sub='mallory')}.{signature_b64}"
    elif kind == "payload-exp-extended":
        yield kind, scope, user, f"{header_b64}.{with_payload(exp=payload['exp'] + 3600)}.{signature_b64}"
    elif kind == "payload-scope-changed":
        other = "current_time" if scope == "epoch_time" else "epoch_time"
        changed = with_payload(scope=other, aud=f"{RS_PUBLIC_URL}/{other}")
        yield kind, other, user, f"{header_b64}.{changed}.{signature_b64}"
    elif kind == "payload-aud-changed":
        # The same claims, re-encoded with a different audience form (array).
        yield kind, scope, user, f"{header_b64}.{with_payload(aud=[payload['aud']])}.{signature_b64}"
    elif kind == "other-kid":
        other = b64url(secrets.token_bytes(32))
        yield kind, scope, user, f"{b64url_json({**header, 'kid': other})}.{payload_b64}.{signature_b64}"
    elif kind == "no-kid":
        stripped = {k: v for k, v in header.items() if k != "kid"}
        yield kind, scope, user, f"{b64url_json(stripped)}.{payload_b64}.{signature_b64}"
    elif kind == "signature-stripped":
        yield kind, scope, user, f"{header_b64}.{payload_b64}."
        yield f"{kind}:two-parts", scope, user, f"{header_b64}.{payload_b64}"
    elif kind == "signature-flipped-bit":
        signature = bytearray(b64url_decode(signature_b64))
        signature[len(signature) // 2] ^= 0x01
        yield kind, scope, user, f"{header_b64}.{payload_b64}.{b64url(bytes(signature))}"
    elif kind == "foreign-key-our-kid":
        forged = jwt.encode(payload, foreign_private_key(), algorithm=ALGORITHM, headers=header)
        yield kind, scope, user, forged
    elif kind == "foreign-key-own-kid":
        own = {**header, "kid": b64url(secrets.token_bytes(32))}
        forged = jwt.encode(payload, foreign_private_key(), algorithm=ALGORITHM, headers=own)
        yield kind, scope, user, forged
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", TAMPERINGS)
def test_resource_server_refuses_tampered_token(fresh_token, jwks, kind):
    token = fresh_token(scope="epoch_time", user="alice")
    variants = list(tampered_variants(kind, token, jwks))
    assert variants
    for label, scope, user, forged in variants:
        assert forged != token, label
        response = resource_get(scope, user, forged)
        try:
            assert_invalid_token(response)
        except AssertionError as error:
            raise AssertionError(f"{label}: {error}") from None
    # Control: the untouched token was still valid when the forgeries were refused, so each
    # 401 is about the tampering, not about the token's 5 s running out.
    response = resource_get("epoch_time", "alice", token)
    assert response.status_code == 200, (response.status_code, response.text)


def test_resource_server_refuses_missing_and_malformed_tokens():
    # No token: a bare challenge (RFC 6750 §3.1), not invalid_token.
    response = requests.get(f"{RS_URL}/epoch_time", params={"user": "alice"}, timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["WWW-Authenticate"]
    # Garbage in place of a JWT.
    assert_invalid_token(resource_get("epoch_time", "alice", "not.a.jwt"))


def test_token_lives_exactly_until_exp(fresh_token):
    # Zero leeway: accepted in the last second before `exp`, refused from `exp` on (same clock).
    # The margin before `exp` is a whole second so that a busy machine cannot make the first
    # request arrive late; sub-second precision is proven by the Rust tests on a manual clock.
    token = fresh_token(scope="epoch_time", user="alice")
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, exp - 1.0 - time.time()))
    response = resource_get("epoch_time", "alice", token)
    assert response.status_code == 200, (response.status_code, response.text)
    time.sleep(max(0.0, exp + 0.05 - time.time()))
    assert_invalid_token(resource_get("epoch_time", "alice", token))
