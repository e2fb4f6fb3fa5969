"""What an aiortc DTLS context would say first: its ClientHello, parsed
(RFC 6347 section 4.2.2, RFC 5246 section 7.4.1.2)."""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate
from OpenSSL import SSL

DTLS_1_0 = 0xFEFF
DTLS_1_2 = 0xFEFD
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xC02B


@dataclass(frozen=True)
class ClientHello:
    version: int
    cipher_suites: tuple[int, ...]


def aiortc_client_hello() -> ClientHello:
    """The ClientHello of a DTLS context aiortc makes now (in this context)."""
    ctx = RTCCertificate.generateCertificate()._create_ssl_context(SRTP_PROFILES)
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    try:
        conn.do_handshake()
    except SSL.WantReadError:
        pass
    record = conn.bio_read(65536)
    p = 13 + 12  # record header, handshake header
    version = int.from_bytes(record[p:p + 2], "big")
    p += 2 + 32  # client_version, random
    p += 1 + record[p]  # session_id
    p += 1 + record[p]  # cookie
    length = int.from_bytes(record[p:p + 2], "big")
    suites = record[p + 2:p + 2 + length]
    return ClientHello(version, tuple(int.from_bytes(suites[i:i + 2], "big") for i in range(0, length, 2)))
