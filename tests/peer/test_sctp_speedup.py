"""peer.compat's SCTP speed-up pops exactly what aiortc's own reassembly pops."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    DataChunk,
    InboundStream,
)
from peer import compat
import pytest

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


def fragments(messages: list[tuple[int, bool]], first_tsn: int) -> list[DataChunk]:
    """DATA chunks for messages of (fragment count, unordered), TSNs consecutive."""
    chunks, tsn = [], first_tsn
    for seq, (count, unordered) in enumerate(messages):
        for i in range(count):
            flags = (SCTP_DATA_FIRST_FRAG if i == 0 else 0) | (SCTP_DATA_LAST_FRAG if i == count - 1 else 0)
            if unordered:
                flags |= SCTP_DATA_UNORDERED
            chunk = DataChunk(flags=flags)
            chunk.tsn, chunk.stream_id, chunk.stream_seq, chunk.protocol = tsn & 0xFFFFFFFF, 1, seq & 0xFFFF, 53
            chunk.user_data = f"{seq}:{i};".encode()
            chunks.append(chunk)
            tsn += 1
    return chunks


def run(chunks: list[DataChunk], order: list[int], patched: bool, prune_at: int | None) -> list:
    stream = InboundStream()
    out = []
    for step, index in enumerate(order):
        chunk = chunks[index]
        if patched:
            compat._add_chunk(stream, chunk)
            out.append(list(compat._pop_messages(stream)))
        else:
            compat._original_add_chunk(stream, chunk)
            out.append(list(compat._original_pop_messages(stream)))
        if prune_at is not None and step == prune_at:
            tsn = chunks[index].tsn
            prune = compat._prune_chunks if patched else compat._original_prune_chunks
            out.append(prune(stream, tsn))
    out.append([(c.tsn, c.flags) for c in stream.reassembly])
    return out


@settings(max_examples=300, deadline=None)
@given(
    messages=st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=1, max_size=8),
    first_tsn=st.sampled_from([0, 1000, 0xFFFFFFFF - 3]),
    data=st.data(),
)
def test_same_messages_as_aiortc_in_any_arrival_order(messages, first_tsn, data):
    chunks = fragments(messages, first_tsn)
    order = data.draw(st.permutations(range(len(chunks))))
    prune_at = data.draw(st.none() | st.integers(0, len(chunks) - 1))
    assert run(chunks, order, True, prune_at) == run(chunks, order, False, prune_at)


def test_install_is_idempotent_and_reversible():
    compat.install_sctp_speedup()
    compat.install_sctp_speedup()
    assert InboundStream.pop_messages is compat._pop_messages
    compat.uninstall_sctp_speedup()
    assert InboundStream.pop_messages is compat._original_pop_messages
    compat.install_sctp_speedup()
