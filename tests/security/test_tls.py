"""--cert/--key: the server speaks https and wss."""

from __future__ import annotations

import datetime
import ssl

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.process import ServerProcess
import pytest

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


def self_signed(directory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


async def test_https_and_wss_with_cert_and_key(tmp_path):
    cert, key = self_signed(tmp_path)
    server = await ServerProcess.start(tmp_path / "data", "--cert", cert, "--key", key)
    try:
        assert server.url.startswith("https://")
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False  # the certificate names localhost; we dial 127.0.0.1
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/healthz", ssl=context) as r:
                assert r.status == 200
            ws = await http.ws_connect(server.url.replace("https", "wss") + "/ws", ssl=context)
            await ws.send_json({"type": "login", "username": "alice"})
            assert (await ws.receive_json(timeout=10))["success"] is True
            await ws.close()
    finally:
        await server.stop()
