"""What the recorder needs to know about an encoded video frame, without decoding it.

Pure functions over bytes: is this frame a keyframe, and at which size? That is
enough to start a file on a keyframe, to fill in the container's track header,
to notice a resolution change and to drop undecodable frames after a loss.

VP8 frames are as aiortc's depayloader leaves them (RFC 7741 payload
descriptor stripped, partitions joined), so they start with the VP8 frame tag
of RFC 6386 section 9.1. H.264 frames are Annex-B access units (aiortc's
depayloader writes a start code before every NAL unit, RFC 6184 section 5).
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 6386 section 9.1: a key frame's tag is followed by this start code.
_VP8_START_CODE = b"\x9d\x01\x2a"

# ITU-T H.264 table 7-1.
H264_NAL_SLICE = 1
H264_NAL_IDR = 5
H264_NAL_SPS = 7
H264_NAL_PPS = 8

# Profiles whose SPS carries chroma_format_idc and friends (H.264 section 7.3.2.1.1).
_H264_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What one encoded video frame says about itself."""

    keyframe: bool
    width: int | None = None
    height: int | None = None
    # H.264 only: the SPS and PPS found in this access unit, as an Annex-B
    # byte string ready to be a container's extradata; None if absent.
    parameter_sets: bytes | None = None


def vp8_frame_info(data: bytes) -> FrameInfo:
    """Keyframe flag and, for keyframes, the coded size (RFC 6386 section 9.1)."""
    if len(data) < 3:
        return FrameInfo(keyframe=False)
    # The lowest bit of the frame tag is 0 for a key frame.
    if data[0] & 0x01:
        return FrameInfo(keyframe=False)
    if len(data) < 10 or data[3:6] != _VP8_START_CODE:
        # A key frame without its start code is corrupt; treat it as
        # undecodable rather than starting a file on it.
        return FrameInfo(keyframe=False)
    # 14 bits of size and 2 bits of upscaling hint, little-endian.
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return FrameInfo(keyframe=True, width=width, height=height)


def h264_nal_units(data: bytes) -> list[bytes]:
    """Split an Annex-B byte stream into NAL units (start codes removed)."""
    # bytes.find runs in C: this is called on the event loop for every H.264
    # frame, and a byte-by-byte Python loop over a 100 kB keyframe costs ms.
    units: list[bytes] = []
    start = -1
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        if start >= 0:
            end = pos
            # A NAL unit never ends in a zero byte (section 7.4.1), so zeros
            # before a start code belong to it (4-byte start codes, Annex B.1).
            while end > start and data[end - 1] == 0:
                end -= 1
            if end > start:
                units.append(data[start:end])
        start = pos + 3
        pos = data.find(b"\x00\x00\x01", start)
    if 0 <= start < len(data):
        units.append(data[start:])
    return units


def h264_frame_info(data: bytes) -> FrameInfo:
    """Keyframe flag (an IDR slice is present), SPS size and parameter sets."""
    keyframe = False
    sps: bytes | None = None
    pps: bytes | None = None
    for nal in h264_nal_units(data):
        nal_type = nal[0] & 0x1F
        if nal_type == H264_NAL_IDR:
            keyframe = True
        elif nal_type == H264_NAL_SPS and sps is None:
            sps = nal
        elif nal_type == H264_NAL_PPS and pps is None:
            pps = nal
    width = height = None
    if sps is not None:
        try:
            width, height = h264_sps_size(sps)
        except ValueError:
            pass
    parameter_sets = None
    if sps is not None and pps is not None:
        parameter_sets = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
    return FrameInfo(keyframe=keyframe, width=width, height=height, parameter_sets=parameter_sets)


def frame_info(codec: str, data: bytes) -> FrameInfo:
    """Dispatch on the codec name aiortc negotiated (``VP8``, ``H264``)."""
    if codec == "VP8":
        return vp8_frame_info(data)
    if codec == "H264":
        return h264_frame_info(data)
    raise ValueError(f"no bitstream parser for codec {codec!r}")


class _BitReader:
    """Reads the RBSP of an H.264 NAL unit, bit by bit (section 7.2)."""

    def __init__(self, rbsp: bytes) -> None:
        self._data = rbsp
        self._pos = 0

    def u(self, bits: int) -> int:
        value = 0
        for _ in range(bits):
            byte = self._pos >> 3
            if byte >= len(self._data):
                raise ValueError("SPS is truncated")
            value = (value << 1) | ((self._data[byte] >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def ue(self) -> int:
        # Exp-Golomb code, section 9.1.
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("Exp-Golomb code is too long")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _unescape(nal: bytes) -> bytes:
    # Remove emulation_prevention_three_byte (section 7.4.1): 00 00 03 -> 00 00.
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def h264_sps_size(sps: bytes) -> tuple[int, int]:
    """Display size from a sequence parameter set NAL unit (section 7.3.2.1.1)."""
    r = _BitReader(_unescape(sps[1:]))
    profile_idc = r.u(8)
    r.u(8)  # constraint flags
    r.u(8)  # level_idc
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = 0
    if profile_idc in _H264_HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = r.u(1)
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.u(1):
                    size = 16 if i < 6 else 64
                    last = nxt = 8
                    for _ in range(size):
                        if nxt != 0:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt if nxt != 0 else last
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if r.u(1):  # frame_cropping_flag; crop units from table 6-1 and eq. 7-19..7-22
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        if chroma_format_idc == 0 or separate_colour_plane:
            crop_x, crop_y = 1, 2 - frame_mbs_only
        else:
            sub_w = 1 if chroma_format_idc == 3 else 2
            sub_h = 2 if chroma_format_idc == 1 else 1
            crop_x, crop_y = sub_w, sub_h * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise ValueError("SPS gives an empty picture")
    return width, height
