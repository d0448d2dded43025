"""A self-signed certificate for the fake gateway (and the MQTT tests' TLS broker), made at start.

A real IQ Gateway on firmware 7+ answers only https, with a certificate it signed itself, and
pyenphase connects without verifying it (its ``NO_VERIFY_SSL_CONTEXT``). The fake does the
same, so the tests run the library's real https path; the key lives in memory and a temporary
directory for a moment, never in the repository.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["self_signed_context", "self_signed_pem", "write_self_signed"]

VALID_FOR = timedelta(days=2)


def self_signed_pem(host: str = "127.0.0.1") -> tuple[bytes, bytes]:
    """A fresh self-signed certificate for ``host`` (envoy.local too) and its key, as PEM.

    ``cryptography`` comes with the project's ``test`` extra; without it the fake cannot serve
    https, and says which package to install.
    """
    try:
        from cryptography import x509  # noqa: PLC0415 - only the fake needs it
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.x509.oid import NameOID  # noqa: PLC0415
    except ImportError as err:  # pragma: no cover - the test extra installs it
        raise RuntimeError(
            "the fake gateway needs the 'cryptography' package for its https certificate; "
            "install the project with its test extra (make install)"
        ) from err
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "envoy.local")])
    now = datetime.now(UTC)
    names: list[x509.GeneralName] = [x509.DNSName("envoy.local"), x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert_pem, key_pem


def self_signed_context(host: str = "127.0.0.1") -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for ``host`` (envoy.local too)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="evopt-fake-gateway-") as tmp:
        cert_path, key_path = write_self_signed(Path(tmp), host)
        context.load_cert_chain(cert_path, key_path)
    return context


def write_self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """The certificate and key of :func:`self_signed_pem` as ``cert.pem`` and ``key.pem`` in
    ``directory`` (the certificate is its own CA: a client trusts it as ``cafile``)."""
    cert_pem, key_pem = self_signed_pem(host)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    return cert_path, key_path
