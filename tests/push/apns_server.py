"""A local APNs for the tests: real TLS and HTTP/2 (h2), checking each request as Apple does.

Everything Apple would hand us is made up at test time with `cryptography`: a CA and a server certificate for
127.0.0.1, and an ES256 signing key (.p8) with its key id and team id. The server verifies the provider token
(JWT) with the key's public half, checks path, method, topic, push type and priority, answers with APNs's own
statuses and reasons, and otherwise follows a script per device token (200 unless told).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded
from h2.exceptions import ProtocolError

Answer = tuple[int, str | None]  # (status, reason)


@dataclass(frozen=True)
class Credentials:
    """What the Apple developer account would give us (a .p8 key, its id, the team) and our test CA."""

    key_file: Path
    public_key: ec.EllipticCurvePublicKey
    key_id: str
    team_id: str
    topic: str
    ca_file: Path
    cert_file: Path
    cert_key_file: Path


def make_credentials(directory: Path) -> Credentials:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Groundwork test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    apns_key = ec.generate_private_key(ec.SECP256R1())
    key_id = "ABC123DEFG"
    paths = {
        "key_file": directory / f"AuthKey_{key_id}.p8",
        "ca_file": directory / "ca.pem",
        "cert_file": directory / "server.pem",
        "cert_key_file": directory / "server-key.pem",
    }
    pkcs8 = serialization.PrivateFormat.PKCS8
    paths["key_file"].write_bytes(
        apns_key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
    )
    paths["ca_file"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert_file"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert_key_file"].write_bytes(
        server_key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
    )
    return Credentials(
        public_key=apns_key.public_key(), key_id=key_id, team_id="TEAM123456", topic="com.groundwork.field", **paths
    )


@dataclass
class Received:
    token: str
    headers: dict[str, str]
    payload: dict[str, Any] | None
    status: int
    reason: str | None


@dataclass
class LocalApns:
    credentials: Credentials
    port: int = 0
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    alpn: list[str | None] = field(default_factory=list)  # per connection: what TLS negotiated
    _server: asyncio.Server | None = None
    _connections: set[_Connection] = field(default_factory=set)

    def answer(self, token: str, *answers: Answer) -> None:
        """Script the answers for a token, in order; the last one repeats."""
        self.answers[token] = list(answers)

    @property
    def refused(self) -> list[Received]:
        """Requests refused for what they were, not by the script: a test expects none."""
        return [r for r in self.received if r.reason and r.reason.startswith("!")]

    async def start(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.credentials.cert_file, self.credentials.cert_key_file)
        context.set_alpn_protocols(["h2"])
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self), "127.0.0.1", self.port, ssl=context, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every open connection, as an outage would."""
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.transport.abort()
            await self._server.wait_closed()
            self._server = None

    # -- one request ------------------------------------------------------------------------------------------

    def respond(self, headers: dict[str, str], body: bytes) -> Answer:
        token = headers.get(":path", "").removeprefix("/3/device/")
        problem = self._check(headers, body)
        reason: str | None
        if problem is not None:
            status, reason = problem[0], f"!{problem[1]}"  # "!" marks a refusal of the request itself
        else:
            script = self.answers.get(token, [(200, None)])
            status, reason = script.pop(0) if len(script) > 1 else script[0]
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        self.received.append(Received(token, headers, payload, status, reason))
        return status, reason.lstrip("!") if reason else None

    def _check(self, headers: dict[str, str], body: bytes) -> Answer | None:
        credentials = self.credentials
        if headers.get(":method") != "POST":
            return 405, "MethodNotAllowed"
        path = headers.get(":path", "")
        if not path.startswith("/3/device/"):
            return 404, "BadPath"
        if not path.removeprefix("/3/device/"):
            return 400, "MissingDeviceToken"
        authorization = headers.get("authorization", "")
        if not authorization.lower().startswith("bearer "):
            return 403, "MissingProviderToken"
        token = authorization[len("bearer ") :]
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token, credentials.public_key, algorithms=["ES256"], options={"require": ["iss", "iat"]}
            )
        except jwt.PyJWTError:
            return 403, "InvalidProviderToken"
        if header.get("kid") != credentials.key_id or claims["iss"] != credentials.team_id:
            return 403, "InvalidProviderToken"
        if claims["iat"] < time.time() - 3600:
            return 403, "ExpiredProviderToken"
        if headers.get("apns-topic") != credentials.topic:
            return 400, "TopicDisallowed"
        push_type = headers.get("apns-push-type")
        if push_type not in ("alert", "background"):
            return 400, "InvalidPushType"
        if "apns-id" in headers:
            try:
                uuid.UUID(headers["apns-id"])
            except ValueError:
                return 400, "BadMessageId"
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId"
        if not headers.get("apns-expiration", "0").isdigit():
            return 400, "BadExpirationDate"
        if len(body) > 4096:
            return 413, "PayloadTooLarge"
        try:
            aps = json.loads(body)["aps"]
        except (ValueError, KeyError, TypeError):
            return 400, "PayloadEmpty"
        if push_type == "background":
            # Apple: a background push has priority 5, content-available and nothing the user would see.
            if headers.get("apns-priority") != "5":
                return 400, "BadPriority"
            if aps.get("content-available") != 1 or {"alert", "badge", "sound"} & set(aps):
                return 400, "InvalidPushType"
        return None


class _Connection(asyncio.Protocol):
    def __init__(self, server: LocalApns) -> None:
        self.server = server
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        self.server.alpn.append(ssl_object.selected_alpn_protocol() if ssl_object else None)
        self.server._connections.add(self)
        self.h2.initiate_connection()
        self.transport.write(self.h2.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:
            self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                self.streams[event.stream_id] = (dict(event.headers or []), bytearray())  # type: ignore[arg-type]
            elif isinstance(event, DataReceived):
                assert event.stream_id is not None
                assert event.data is not None
                self.streams[event.stream_id][1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            elif isinstance(event, StreamEnded):
                assert event.stream_id is not None
                self._respond(event.stream_id)
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.h2.data_to_send())

    def _respond(self, stream_id: int) -> None:
        headers, body = self.streams.pop(stream_id)
        status, reason = self.server.respond(headers, bytes(body))
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        response_headers = [(":status", str(status)), ("apns-id", apns_id)]
        if status == 200:
            self.h2.send_headers(stream_id, response_headers, end_stream=True)
            return
        error: dict[str, Any] = {"reason": reason}
        if status == 410:
            error["timestamp"] = int(time.time() * 1000)
        data = json.dumps(error).encode()
        self.h2.send_headers(stream_id, [*response_headers, ("content-type", "application/json")])
        self.h2.send_data(stream_id, data, end_stream=True)
