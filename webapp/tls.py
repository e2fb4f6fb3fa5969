"""``--self-signed``: https with a certificate the server makes itself.

Browsers let a page use the camera and microphone only in a secure context
(https, or localhost), so a phone on the LAN opening
``http://192.168.1.20:8080`` cannot make calls. With ``--self-signed`` the
server makes a key and a certificate for its names and addresses on first
use and keeps them in ``DATA_DIR/tls/`` (the key readable by its owner only),
so the fingerprint stays the same across restarts and a browser that was
told to trust it once keeps trusting it. Browsers warn about it (no
certificate authority vouches for it); the README explains the warning.
A certificate that expires within a week is replaced.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from media.storage import atomic_write_bytes

logger = logging.getLogger(__name__)

CERT_NAME = "self-signed.crt"
KEY_NAME = "self-signed.key"
#: Browsers accept at most 398 days for a certificate (CA/Browser Forum).
VALID_DAYS = 397
RENEW_BEFORE = datetime.timedelta(days=7)


def local_names(host: str) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses the certificate should name: localhost,
    this machine's name and addresses, and ``host`` (the listen address)."""
    names = ["localhost"]
    addresses = {"127.0.0.1", "::1"}
    hostname = socket.gethostname()
    if hostname and hostname not in names:
        names.append(hostname)
    try:
        for info in socket.getaddrinfo(hostname, None):
            addresses.add(str(info[4][0]))
    except OSError:
        pass
    # The address of the default route, if there is one (a UDP "connect"
    # sends nothing; 192.0.2.1 is TEST-NET-1, RFC 5737).
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            addresses.add(probe.getsockname()[0])
    except OSError:
        pass
    try:
        ip = ipaddress.ip_address(host)
        if not ip.is_unspecified:
            addresses.add(str(ip))
    except ValueError:
        if host and host not in names:
            names.append(host)
    return names, sorted(addresses)


def _make(names: list[str], addresses: list[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "callbot (self-signed)"),
        x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _usable(cert_path: Path, key_path: Path) -> x509.Certificate | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) < RENEW_BEFORE:
        return None
    return cert


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 fingerprint as browsers show it (AB:CD:...)."""
    digest = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def ensure_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """The certificate and key in ``directory``, made now if missing,
    unreadable or about to expire."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    if _usable(cert_path, key_path) is None:
        names, addresses = local_names(host)
        cert_pem, key_pem = _make(names, addresses)
        # The key first, private from its first byte (mkstemp makes 0600 files).
        atomic_write_bytes(key_path, key_pem)
        os.chmod(key_path, 0o600)
        atomic_write_bytes(cert_path, cert_pem)
        logger.info("made a self-signed certificate for %s", ", ".join(names + addresses))
    return cert_path, key_path


def self_signed_context(directory: Path, host: str) -> tuple[ssl.SSLContext, str]:
    """A server TLS context with the self-signed certificate, and its fingerprint."""
    cert_path, key_path = ensure_certificate(directory, host)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, fingerprint(cert_path.read_bytes())
