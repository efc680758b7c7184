"""Test stand-ins for the platforms: real RTMP receivers (ffmpeg -listen), an RTMPS terminator, a black hole,
a proxy that stops reading, and a test-pattern feed into a Program. Loopback only, every wait bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from streamctl.restream.flv import FlvReader
from streamctl.restream.program import Program

LOOPBACK = "127.0.0.1"
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


async def wait_for(predicate, within: float, what: str, step: float = 0.05):
    """Poll `predicate` until it is truthy; fail the test with `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(step)


async def _kill(process: asyncio.subprocess.Process | None) -> None:
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await asyncio.wait_for(process.wait(), 5)


def ffmpeg_children(pid: int | None = None) -> list[int]:
    """Pids of live (not zombie) ffmpeg processes whose parent is `pid` (default: this process)."""
    parent = os.getpid() if pid is None else pid
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if comm == "ffmpeg" and int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


# ---- the program feed -------------------------------------------------------------------------------


class Feed:
    """A test pattern (H.264 + AAC, FLV) from ffmpeg published tag by tag into a Program, as the ingest would."""

    def __init__(self, program: Program, size: str = "640x360", fps: int = 30, gop_s: float = 1.0,
                 audio: bool = True, kbps: int = 600):
        self.program = program
        self.argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-re",
                     "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}"]
        if audio:
            self.argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
        self.argv += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                      "-g", str(round(fps * gop_s)), "-b:v", f"{kbps}k"]
        if audio:
            self.argv += ["-c:a", "aac", "-b:a", "64k"]
        self.argv += ["-flush_packets", "1", "-f", "flv", "pipe:1"]
        self.process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self.tags = 0

    async def start(self) -> Feed:
        self.process = await asyncio.create_subprocess_exec(*self.argv, stdout=subprocess.PIPE,
                                                            stdin=subprocess.DEVNULL)
        self._task = asyncio.create_task(self._pump(), name="test-feed")
        await wait_for(lambda: self.tags > 30, 10, "the test feed to produce tags")
        return self

    async def _pump(self) -> None:
        parser = FlvReader()
        self.program.new_feed()
        while data := await self.process.stdout.read(65536):
            for tag in parser.feed(data):
                self.program.publish(tag)
                self.tags += 1

    async def stop(self) -> None:
        await _kill(self.process)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# ---- RTMP receivers ---------------------------------------------------------------------------------


@dataclass
class Frame:
    """One packet the receiver got: stream kind, dts (ms), keyframe or not, arrival (loop time)."""

    kind: str
    dts: int
    key: bool
    at: float


@dataclass
class StreamInfo:
    kind: str = ""
    codec: str = ""
    dimensions: str = ""


class RtmpReceiver:
    """`ffmpeg -listen 1` on a loopback port writing framecrc; counts what actually arrives.

    ffmpeg serves one publisher and exits, so the receiver starts a fresh listener after each session
    (a platform accepts the reconnect); `sessions` counts the publishers seen.
    """

    def __init__(self, port: int, respawn: bool = True, scheme: str = "rtmp", probe_us: int = 100_000,
                 record: Path | None = None):
        self.port = port
        self.record = record  # also keep what arrives there (FLV, the last session's), to decode it afterwards
        self.respawn = respawn
        self.scheme = scheme
        # A short probe counts frames from the moment they arrive, as a platform would see them; a relay
        # that sends audio well before the first video keyframe (nginx-rtmp) needs a longer one.
        self.probe_us = probe_us
        self.frames: list[Frame] = []
        self.streams: dict[int, StreamInfo] = {}
        self.sessions = 0
        self.process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        """Where a destination publishes (its key goes after it, for RTMP)."""
        if self.scheme == "srt":
            return f"srt://{LOOPBACK}:{self.port}"
        return f"rtmp://{LOOPBACK}:{self.port}/live"

    @property
    def listen_url(self) -> str:
        if self.scheme == "srt":
            return f"srt://{LOOPBACK}:{self.port}?mode=listener"
        return f"rtmp://{LOOPBACK}:{self.port}/live/stream"

    @property
    def video(self) -> list[Frame]:
        return [f for f in self.frames if f.kind == "video"]

    def dimensions(self) -> set[str]:
        return {s.dimensions for s in self.streams.values() if s.kind == "video"}

    async def start(self) -> RtmpReceiver:
        self._task = asyncio.create_task(self._serve(), name=f"receiver-{self.port}")
        try:
            if self.scheme == "srt":  # UDP: nothing to connect to; give the listener a moment to bind
                await wait_for(lambda: self.process is not None and _udp_bound(self.port), 5, "the SRT listener")
            else:
                await wait_for(lambda: tcp_listening(self.port), 5, f"receiver on port {self.port} to listen")
        except BaseException:
            await self.kill()  # a receiver that never listened must not outlive the test that gave up on it
            raise
        return self

    async def _serve(self) -> None:
        for _ in range(1000):  # bounded: one listener per publisher session
            self.process = await asyncio.create_subprocess_exec(
                FFMPEG, "-hide_banner", "-loglevel", "error", *(["-listen", "1"] if self.scheme == "rtmp" else []),
                "-analyzeduration", str(self.probe_us),
                "-i", self.listen_url, "-c", "copy", "-flush_packets", "1",
                "-f", "framecrc", "pipe:1",
                *(["-c", "copy", "-y", "-f", "flv", str(self.record)] if self.record else []),
                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            await self._read_session(self.process)
            await self.process.wait()
            if not self.respawn:
                return

    async def _read_session(self, process: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        counted = False
        kinds: dict[int, str] = {}
        while line := await process.stdout.readline():
            text = line.decode(errors="replace").strip()
            if text.startswith("#"):
                key, _, value = text[1:].partition(":")
                name, _, index = key.partition(" ")
                if index.isdigit():
                    info = self.streams.setdefault(int(index), StreamInfo())
                    value = value.strip()
                    if name == "media_type":
                        info.kind = kinds[int(index)] = value
                    elif name == "codec_id":
                        info.codec = value
                    elif name == "dimensions":
                        info.dimensions = value
                continue
            parts = [p.strip() for p in text.split(",")]
            if len(parts) < 5 or not parts[0].isdigit():
                continue
            if not counted:
                self.sessions += 1
                counted = True
            key = not any(p.startswith("F=") for p in parts[6:])
            self.frames.append(Frame(kinds.get(int(parts[0]), "?"), int(parts[1]), key, loop.time()))

    async def kill(self) -> None:
        """Stop receiving at once, as a crashed platform ingest would."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await _kill(self.process)

    def largest_gap(self, since: float = 0.0) -> tuple[int, float]:
        """(largest dts step in ms, largest arrival gap in s) between video frames that arrived after `since`."""
        video = [f for f in self.video if f.at >= since]
        dts_gap = max((b.dts - a.dts for a, b in zip(video, video[1:], strict=False)), default=0)
        at_gap = max((b.at - a.at for a, b in zip(video, video[1:], strict=False)), default=0.0)
        return dts_gap, at_gap


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def tcp_listening(port: int) -> bool:
    """A TCP socket listens on `port` (read from /proc: connecting would use up an `ffmpeg -listen`)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event | None = None):
    try:
        while True:
            if gate is not None:
                await gate.wait()
            data = await reader.read(4096)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class Relay:
    """A TCP relay to a receiver: with TLS, an RTMPS terminator; `stall()` makes it stop reading its clients."""

    def __init__(self, target_port: int, tls: tuple[Path, Path] | None = None):
        self.target_port = target_port
        self.tls = tls
        self.port = 0
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> Relay:
        ssl_ctx = None
        if self.tls:
            import ssl

            ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_ctx.load_cert_chain(*self.tls)
        sock = socket.socket()
        # Tiny receive buffers so that a stalled relay pushes back on the publisher within moments.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind((LOOPBACK, 0))
        self._server = await asyncio.start_server(self._client, sock=sock, ssl=ssl_ctx, limit=4096)
        self.port = sock.getsockname()[1]
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.append(up_writer)
        for coro in (_pipe(reader, up_writer, self._flowing), _pipe(up_reader, writer)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def stall(self) -> None:
        self._flowing.clear()

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for w in self._writers:
            w.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class BlackHole:
    """Accepts TCP connections and never reads or answers: the platform that hangs at handshake time."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> BlackHole:
        self._server = await asyncio.start_server(self._client, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)

    async def stop(self) -> None:
        for w in self._writers:
            w.close()
        if self._server:
            self._server.close()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1 (openssl CLI)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=20)
    return cert, key


@dataclass
class Rig:
    """Everything a test started, stopped in reverse order at the end."""

    parts: list = field(default_factory=list)

    async def add(self, part):
        self.parts.append(part)
        return await part.start()

    async def close(self) -> None:
        for part in reversed(self.parts):
            with contextlib.suppress(Exception):
                await (part.kill() if isinstance(part, RtmpReceiver) else part.stop())


def interrupt(pid: int) -> None:
    """SIGTERM a process (a `streamctl run` under test)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def make_media(path: Path, seconds: float = 6.0, audio: bool = True, size: str = "640x360",
               gop_s: float = 1.0) -> Path:
    """A short H.264 (+AAC) FLV test pattern for a file ingest (played looped, in real time, by the ingest)."""
    argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
            f"testsrc2=size={size}:rate=30:duration={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
                 "-c:a", "aac", "-b:a", "64k"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(round(30 * gop_s)),
             "-b:v", "600k", "-f", "flv", str(path)]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return path


def packet_count(path: Path, stream: str = "v:0") -> int:
    """Packets of one stream in a media file, read by ffprobe."""
    out = subprocess.run([shutil.which("ffprobe") or "ffprobe", "-v", "error", "-select_streams", stream,
                          "-count_packets", "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=30)
    numbers = [line.strip(" ,") for line in out.stdout.splitlines() if line.strip(" ,").isdigit()]
    return int(numbers[0]) if numbers else 0
