"""The archive: the program recorded locally in time-named segments while the event is live."""

from __future__ import annotations

from pathlib import Path

from ..config import ArchiveConfig
from ..events import Alert, Bus
from ..states import DESTINATION_DOWN, DestinationState
from .destinations import Output, Timing
from .ffmpeg import archive_argv
from .program import Program
from .supervisor import Supervisor

# MPEG-TS segments stay playable up to the last packet even if the machine loses power mid-segment.
SUFFIX = ".ts"


class Archive(Output):
    """One more program reader, recorded with `-c copy` into `path/YYYYmmdd-HHMMSS-rN.ts` segments."""

    kind = "archive"

    def __init__(self, config: ArchiveConfig, program: Program, bus: Bus, supervisor: Supervisor,
                 timing: Timing | None = None):
        super().__init__("archive", "archive", program, bus, supervisor, timing)
        self.config = config
        self._runs = 0

    def argv(self) -> list[str]:
        self.config.path.mkdir(parents=True, exist_ok=True)
        self._runs += 1
        # The run number keeps a restart within the same second from colliding with the last segment.
        pattern = self.config.path / f"%Y%m%d-%H%M%S-r{self._runs}{SUFFIX}"
        return archive_argv(str(pattern), self.config.segment_s)

    def problem(self) -> str | None:
        try:
            self.config.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return f"cannot create {self.config.path}: {e.strerror or e}, expected a writable folder"
        return None

    async def announce(self, old: str, new: str, error: str | None) -> None:
        params = {"path": str(self.config.path), "error": error or ""}
        if new in DESTINATION_DOWN:
            level = "error" if new == DestinationState.FAILED else "warning"
            await self.bus.publish(Alert(level, "archive", f"archive recording {new}: {error or 'stopped'}",
                                         code="archive.failed", params=params))
        elif new == DestinationState.LIVE:
            await self.bus.publish(Alert("info", "archive", "archive recording again", code="archive.failed",
                                         params=params, resolved=True))

    def files(self) -> list[Path]:
        """The segments recorded so far, oldest first."""
        if not self.config.path.is_dir():
            return []
        return sorted(self.config.path.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime)

    def describe(self) -> dict:
        files = self.files()
        return {
            "state": self.state,
            "error": self.error,
            "path": str(self.config.path),
            "segment_s": self.config.segment_s,
            "segments": len(files),
            "bytes": sum(f.stat().st_size for f in files),
            "health": self.health(),
        }
