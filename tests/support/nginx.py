"""Debian's nginx in front of test nodes, run from the configuration the
docs show (docs/nginx-callbot.conf), and a TLS certificate made for it."""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE_CONFIG = ROOT / "docs" / "nginx-callbot.conf"
START_TIMEOUT = 10.0


def make_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (and its key), as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def site_config(listen_port: int, node_ports: list[int], cert: Path, key: Path, log_dir: Path) -> str:
    """docs/nginx-callbot.conf with only the deployment's own values replaced;
    every replaced line must be there exactly once, so a change to the docs
    that the test does not run fails here."""
    text = SITE_CONFIG.read_text()
    replacements = {
        "listen 443 ssl http2;": f"listen 127.0.0.1:{listen_port} ssl http2;",
        "/etc/letsencrypt/live/call.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/call.example.org/privkey.pem": str(key),
        "/var/log/nginx/callbot-access.log": str(log_dir / "access.log"),
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} is not in {SITE_CONFIG.name} exactly once"
        text = text.replace(old, new)
    doc_nodes = [line for line in text.splitlines() if line.strip().startswith("server 127.0.0.1:808")]
    assert len(doc_nodes) == len(node_ports), f"the docs show {len(doc_nodes)} nodes"
    for line, port in zip(doc_nodes, node_ports):
        text = text.replace(line, line.replace(line.split()[1], f"127.0.0.1:{port}"), 1)
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NginxProcess:
    """nginx in the foreground with a main configuration of our own (temp
    paths, logs and pid in ``directory``) that includes the site config."""

    def __init__(self, directory: Path, site: str, port: int) -> None:
        self.directory = directory
        self.port = port
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "site.conf").write_text(site)
        d = directory
        (directory / "nginx.conf").write_text(f"""
user root root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
""")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = str(self.directory / "nginx.conf")
        check = subprocess.run([NGINX, "-t", "-p", str(self.directory), "-c", conf],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([NGINX, "-p", str(self.directory), "-c", conf, "-g", "daemon off;"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # poll a condition with a deadline: nothing announces the listener
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {(self.directory / 'error.log').read_text()[-2000:]}")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: fast shutdown of master and workers
            self.process.wait(timeout=10)
