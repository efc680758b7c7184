"""Hardware H.264 encoders: which one works on this machine, found by encoding one second of video with each."""

from __future__ import annotations

import asyncio
import glob
import logging
import re
from dataclasses import dataclass

from .ffmpeg import HARDWARE_ENCODERS, VAAPI_DEVICE, find_ffmpeg, hardware_test_argv
from .supervisor import Supervisor

log = logging.getLogger(__name__)

TEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class HardwareProbe:
    """What was tried: the first encoder that worked (or None), and each one's outcome in words."""

    encoder: str | None
    tried: tuple[tuple[str, str], ...]

    def lines(self) -> list[str]:
        """What `doctor` prints."""
        found = f"hardware encoder: {self.encoder}" if self.encoder else \
            "hardware encoder: none (transcodes use libx264)"
        return [found, *(f"  {name}: {outcome}" for name, outcome in self.tried)]


_found: HardwareProbe | None = None


async def find_hardware_encoder(supervisor: Supervisor, *, ffmpeg: str | None = None,
                                cached: bool = True) -> HardwareProbe:
    """Test-encode a second with VAAPI, QSV and NVENC in turn; the first that works is the one (cached)."""
    global _found
    if cached and _found is not None:
        return _found
    ffmpeg = ffmpeg or find_ffmpeg()
    tried: list[tuple[str, str]] = []
    encoder = None
    for name in HARDWARE_ENCODERS:
        if name == "h264_vaapi" and not glob.glob(VAAPI_DEVICE):
            tried.append((name, f"no {VAAPI_DEVICE} (no VAAPI device)"))
            continue
        outcome = await _test_encode(supervisor, hardware_test_argv(name, ffmpeg=ffmpeg))
        tried.append((name, outcome or "works"))
        if outcome is None:
            encoder = name
            break
    _found = HardwareProbe(encoder, tuple(tried))
    log.info("%s", "; ".join(_found.lines()))
    return _found


async def _test_encode(supervisor: Supervisor, argv: list[str]) -> str | None:
    """None when the encode worked, else the reason in ffmpeg's first words."""
    try:
        child = await supervisor.spawn("hardware-test", argv, stderr=asyncio.subprocess.PIPE)
    except OSError as e:
        return f"cannot run ffmpeg: {e.strerror or e}"
    try:
        _, err = await asyncio.wait_for(child.process.communicate(), TEST_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {TEST_TIMEOUT_S:g} s"
    finally:
        await supervisor.stop(child, grace_s=1.0)
    if child.returncode == 0:
        return None
    lines = [re.sub(r"^\[\w+ @ 0x[0-9a-f]+\] ", "", line.strip())
             for line in err.decode(errors="replace").splitlines() if line.strip()]
    return lines[0] if lines else f"ffmpeg exited with code {child.returncode}"
