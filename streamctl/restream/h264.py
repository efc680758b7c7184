"""H.264 headers: the sequence parameter set (size, cropping, frame rate) and the avcC record carrying it."""

from __future__ import annotations

from dataclasses import dataclass

# Profiles whose SPS carries chroma format, bit depth and scaling lists (H.264 7.3.2.1.1).
HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
PROFILE_NAMES = {66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10", 122: "High 4:2:2",
                 244: "High 4:4:4 Predictive", 44: "CAVLC 4:4:4 Intra"}


class H264Error(ValueError):
    """The bytes are not a valid SPS or avcC record."""


class BitReader:
    """MSB-first bit reader with the exp-Golomb codes H.264 headers use."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0  # in bits

    def u(self, n: int) -> int:
        """The next `n` bits as an unsigned number."""
        if self.pos + n > len(self.data) * 8:
            raise H264Error("SPS ends too early")
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        """An unsigned exp-Golomb code."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise H264Error("exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """A signed exp-Golomb code."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def unescape(nal: bytes) -> bytes:
    """NAL payload without emulation-prevention bytes (00 00 03 becomes 00 00)."""
    out = bytearray()
    zeros = 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


@dataclass(frozen=True)
class Sps:
    """What an SPS says about the picture."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    width: int
    height: int
    fps: float | None  # from VUI timing info, when the encoder wrote it

    @property
    def profile(self) -> str:
        """The profile's name, e.g. `High`."""
        if self.profile_idc == 66 and self.constraint_flags & 0x40:
            return "Constrained Baseline"
        return PROFILE_NAMES.get(self.profile_idc, f"profile {self.profile_idc}")

    @property
    def level(self) -> str:
        """The level as written in specs, e.g. `4.1`."""
        return f"{self.level_idc // 10}.{self.level_idc % 10}" if self.level_idc % 10 else str(self.level_idc // 10)


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.se() + 256) % 256
        last = nxt or last


def parse_sps(nal: bytes) -> Sps:
    """Parse one SPS NAL unit (with its one-byte NAL header)."""
    if not nal or nal[0] & 0x1F != 7:
        raise H264Error("not an SPS NAL unit")
    r = BitReader(unescape(nal[1:]))
    profile_idc, constraints, level_idc = r.u(8), r.u(8), r.u(8)
    r.ue()  # seq_parameter_set_id
    chroma_format_idc, separate_planes = 1, 0
    if profile_idc in HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc > 3:
            raise H264Error(f"chroma_format_idc {chroma_format_idc}")
        if chroma_format_idc == 3:
            separate_planes = r.u(1)
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.u(1):
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        for _ in range(min(r.ue(), 255)):
            r.se()
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_units * 16
    if r.u(1):  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        chroma_array_type = 0 if separate_planes else chroma_format_idc
        if chroma_array_type == 0:
            unit_x, unit_y = 1, 2 - frame_mbs_only
        else:
            sub_w = 2 if chroma_format_idc in (1, 2) else 1
            sub_h = 2 if chroma_format_idc == 1 else 1
            unit_x, unit_y = sub_w, sub_h * (2 - frame_mbs_only)
        width -= (left + right) * unit_x
        height -= (top + bottom) * unit_y
    if width <= 0 or height <= 0:
        raise H264Error(f"cropping leaves {width}x{height}")
    fps = _vui_fps(r) if r.u(1) else None
    return Sps(profile_idc, constraints, level_idc, width, height, fps)


def _vui_fps(r: BitReader) -> float | None:
    """Frame rate from the VUI timing info, or None; a VUI cut short just means no frame rate."""
    try:
        if r.u(1):  # aspect_ratio_info_present_flag
            if r.u(8) == 255:  # Extended_SAR
                r.u(32)
        if r.u(1):  # overscan_info_present_flag
            r.u(1)
        if r.u(1):  # video_signal_type_present_flag
            r.u(4)
            if r.u(1):
                r.u(24)
        if r.u(1):  # chroma_loc_info_present_flag
            r.ue()
            r.ue()
        if r.u(1):  # timing_info_present_flag
            units, scale = r.u(32), r.u(32)
            if units:
                return round(scale / (2 * units), 3)
    except H264Error:
        pass
    return None


def parse_avcc(record: bytes) -> Sps:
    """The first SPS of an AVCDecoderConfigurationRecord (the body of an FLV AVC sequence header)."""
    if len(record) < 8 or record[0] != 1:
        raise H264Error("not an AVCDecoderConfigurationRecord")
    if record[5] & 0x1F == 0:
        raise H264Error("avcC record without an SPS")
    size = int.from_bytes(record[6:8], "big")
    if 8 + size > len(record):
        raise H264Error("avcC record cut short")
    return parse_sps(record[8:8 + size])
