"""TLS for the HTTPS port: per-domain certificates by SNI, else a kept self-signed one.

`$APPYARD_HOME/config/certificates/<domain>.crt|.key` is used for that domain
when present; everything else gets a self-signed certificate for localhost
and *.localhost, generated on first start and reused after.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger("appyard.tls")

DEFAULT_NAME = "default"


def ensure_self_signed(certs_dir: Path) -> tuple[Path, Path]:
    crt, key = certs_dir / f"{DEFAULT_NAME}.crt", certs_dir / f"{DEFAULT_NAME}.key"
    if crt.exists() and key.exists():
        return crt, key
    certs_dir.mkdir(parents=True, exist_ok=True)
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "appyard self-signed"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("*.localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info("generated self-signed certificate %s", crt)
    return crt, key


def _context(crt: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(crt, key)
    return ctx


def server_context(certs_dir: Path) -> ssl.SSLContext:
    default = _context(*ensure_self_signed(certs_dir))
    per_domain: dict[str, ssl.SSLContext | None] = {}

    def pick(sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if not server_name:
            return
        if server_name not in per_domain:
            crt, key = certs_dir / f"{server_name}.crt", certs_dir / f"{server_name}.key"
            per_domain[server_name] = _context(crt, key) if crt.exists() and key.exists() else None
        chosen = per_domain[server_name]
        if chosen is not None:
            sock.context = chosen

    default.sni_callback = pick
    return default
