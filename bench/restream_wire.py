"""Where a destination's CPU and bytes go: one `ffmpeg -c copy` (our destination command line) publishing the
benchmark clip to receivers that announce different RTMP chunk sizes, over RTMP and RTMPS.

ffmpeg's RTMP client never chooses its own chunk size: it publishes in 128-byte chunks unless the server sends
Set Chunk Size, and writes the packet header, every chunk and every 1-byte continuation header with a separate
write; over RTMPS each of those writes is a TLS record of its own. This measures what that costs:
- what each receiver announces (a minimal RTMP connect, reading the server's control messages);
- CPU seconds of the destination ffmpeg alone (fed through an OS pipe by a feeder ffmpeg, no Python in the path);
- its system calls per second (`strace -c -f`, in a second window, since tracing slows the process);
- for RTMPS, the bytes a TLS terminator in front of the receiver takes off the wire, and its TLS records,
  against the media (FLV bytes ffmpeg muxed, from `-progress`) and the RTMP bytes after decryption;
- and, for scale, one transcoding destination (`--transcode portrait-720p`, 1080p30 in, 720x1280 out).

Run from the checkout: `python bench/restream_wire.py [--seconds 30] [--trace-seconds 10] [--transcode PROFILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from restream_cpu import FFMPEG, HAVE_NGINX, NginxPlatform, cpu_seconds, end, make_clip, spawn  # noqa: E402

from streamctl.restream import amf  # noqa: E402
from streamctl.restream.ffmpeg import destination_argv  # noqa: E402
from streamctl.restream.health import ProgressParser  # noqa: E402
from streamctl.restream.profiles import PROFILES  # noqa: E402
from streamctl.restream.rtmp_server import (  # noqa: E402
    COMMAND_AMF0,
    HANDSHAKE_SIZE,
    SET_CHUNK_SIZE,
    RtmpServer,
    _ChunkReader,
)
from tests.conftest import free_port  # noqa: E402
from tests.receivers import LOOPBACK, RtmpReceiver, self_signed_cert, tcp_listening, wait_for  # noqa: E402

STRACE = shutil.which("strace")
TLS_HEADER = 5
TLS_APPLICATION_DATA = 23


async def announced_chunk_size(port: int, app: str = "live") -> int:
    """The chunk size a receiver tells its publisher to use: its Set Chunk Size before `_result`, else 128."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        async with asyncio.timeout(5):
            writer.write(b"\x03" + bytes(HANDSHAKE_SIZE))
            await reader.readexactly(1 + 2 * HANDSHAKE_SIZE)
            writer.write(bytes(HANDSHAKE_SIZE))
            body = amf.encode_all("connect", 1.0, {"app": app, "type": "nonprivate",
                                                   "tcUrl": f"rtmp://{LOOPBACK}:{port}/{app}"})
            message = bytearray(b"\x03" + bytes(3) + len(body).to_bytes(3, "big") + bytes([COMMAND_AMF0]) + bytes(4))
            for offset in range(0, len(body), 128):
                message += (b"\xc3" if offset else b"") + body[offset:offset + 128]
            writer.write(message)
            chunks = _ChunkReader(reader, 1 << 20, lambda: None)
            announced = 128
            while True:
                type_id, _, _, payload = await chunks.read_message()
                if type_id == SET_CHUNK_SIZE:
                    announced = chunks.chunk_size = int.from_bytes(payload[:4], "big")
                elif type_id == COMMAND_AMF0 and amf.decode_all(payload)[0] in ("_result", "_error"):
                    return announced
    finally:
        writer.close()


class TlsCounter:
    """An RTMPS terminator that counts what crosses the wire: TLS bytes and records in, RTMP bytes out."""

    def __init__(self, target_port: int, cert: tuple[Path, Path]):
        self.target_port = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*cert)
        self.port = 0
        self.wire_bytes = 0
        self.records = 0
        self.plain_bytes = 0
        self.version = "?"
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> TlsCounter:
        self._server = await asyncio.start_server(self._client, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _count(self, data: bytes, state: list[int | bytearray]) -> None:
        """Count TLS records in the client's byte stream (state: bytes left of the current record, header so far)."""
        self.wire_bytes += len(data)
        pos = 0
        while pos < len(data):
            left, header = state
            if left:
                step = min(left, len(data) - pos)
                state[0] = left - step
                pos += step
                continue
            take = min(TLS_HEADER - len(header), len(data) - pos)
            header += data[pos:pos + take]
            pos += take
            if len(header) == TLS_HEADER:
                self.records += header[0] == TLS_APPLICATION_DATA
                state[0] = int.from_bytes(header[3:5], "big")
                state[1] = bytearray()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.context.wrap_bio(incoming, outgoing, server_side=True)
        state: list[int | bytearray] = [0, bytearray()]
        up_writer = None
        down = None

        def flush() -> None:
            data = outgoing.read()
            if data:
                writer.write(data)

        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.target_port)

            async def downstream() -> None:
                while data := await up_reader.read(65536):
                    tls.write(data)
                    flush()

            handshaken = False
            while data := await reader.read(65536):
                self._count(data, state)
                incoming.write(data)
                if not handshaken:
                    try:
                        tls.do_handshake()
                    except ssl.SSLWantReadError:
                        flush()
                        continue
                    handshaken = True
                    self.version = tls.version() or "?"
                    down = asyncio.create_task(downstream())
                while True:
                    try:
                        plain = tls.read(65536)
                    except ssl.SSLWantReadError:
                        break
                    if not plain:
                        break
                    self.plain_bytes += len(plain)
                    up_writer.write(plain)
                flush()
                await up_writer.drain()
        except (OSError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            if down:
                down.cancel()
            if up_writer:
                up_writer.close()
            writer.close()
            self._tasks.discard(task)


def strace_summary(path: Path) -> dict[str, int] | None:
    """Calls by system call name from an `strace -c` summary file; None when strace wrote none."""
    if not path.exists():
        return None
    counts = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) in (5, 6) and parts[3].isdigit() and parts[-1] != "total":
            counts[parts[-1]] = int(parts[3])
    return counts


async def strace_counts(pid: int, seconds: float, work: Path) -> dict[str, int]:
    """System calls of `pid` (and its threads) by name over `seconds`, from `strace -c -f`."""
    out = work / f"strace-{pid}.txt"
    tracer = await asyncio.create_subprocess_exec(STRACE, "-c", "-f", "-p", str(pid), "-o", str(out),
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.sleep(seconds)
    tracer.send_signal(signal.SIGINT)
    await asyncio.wait_for(tracer.wait(), 10)
    counts = strace_summary(out)
    if counts is None:
        raise SystemExit(f"strace could not trace pid {pid} (exit code {tracer.returncode})")
    return counts


class Publisher:
    """The feeder ffmpeg (clip in real time, FLV on a pipe) into one destination ffmpeg: our exact command line."""

    def __init__(self, clip: Path, url: str, work: Path, profile: str = "copy"):
        self.clip, self.url, self.work, self.profile = clip, url, work, profile
        self.total_size = 0
        self.speed = 0.0
        self.feeder: asyncio.subprocess.Process | None = None
        self.dest: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> Publisher:
        read_end, write_end = os.pipe()
        try:
            self.feeder = await spawn([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                                       "-i", str(self.clip), "-c", "copy", "-f", "flv", "pipe:1"], stdout=write_end)
            argv = destination_argv(self.url, PROFILES[self.profile], ffmpeg=FFMPEG)
            self.dest = await asyncio.create_subprocess_exec(*argv, stdin=read_end, stdout=subprocess.PIPE,
                                                             stderr=(self.work / "dest.log").open("ab"))
        finally:
            os.close(read_end)
            os.close(write_end)
        self._task = asyncio.create_task(self._progress())
        await wait_for(lambda: self.total_size > 1_000_000, 20, "the destination ffmpeg to publish")
        return self

    async def _progress(self) -> None:
        parser = ProgressParser()
        assert self.dest is not None and self.dest.stdout is not None
        while line := await self.dest.stdout.readline():
            progress = parser.feed_line(line.decode(errors="replace"))
            if progress is not None:
                self.total_size, self.speed = progress.total_size, progress.speed

    async def stop(self) -> None:
        for process in (self.feeder, self.dest):  # the feeder first: the destination then ends at the EOF
            if process:
                await end(process)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def receiver(kind: str, work: Path):
    """A started receiver of `kind` and its (url, port, stop coroutine function)."""
    if kind == "ffmpeg -listen":
        rx = await RtmpReceiver(free_port()).start()
        return rx.url, rx.port, rx.kill
    if kind == "nginx-rtmp":
        platform = NginxPlatform(work)
        await platform.start()
        return platform.url, platform.rtmp_port, platform.kill
    server = RtmpServer.receiver()
    await server.start()
    return server.url, server.port, server.close


async def measure_case(clip: Path, kind: str, tls: bool, args, work: Path, cert, profile: str = "copy") -> dict:
    url, port, stop = await receiver(kind, work)
    counter = None
    publisher = None
    try:
        chunk = await announced_chunk_size(port)
        # An `ffmpeg -listen` receiver serves one connection: wait for the next listener.
        await wait_for(lambda: tcp_listening(port), 10, "the receiver to listen again")
        if tls:
            counter = await TlsCounter(port, cert).start()
            url = f"rtmps://{LOOPBACK}:{counter.port}/live"
        publisher = await Publisher(clip, f"{url}/bench-key", work, profile).start()
        await asyncio.sleep(2.0)
        assert publisher.dest is not None
        pid = publisher.dest.pid
        cpu0, size0 = cpu_seconds(pid), publisher.total_size
        wire0, rec0, plain0 = (counter.wire_bytes, counter.records, counter.plain_bytes) if counter else (0, 0, 0)
        await asyncio.sleep(args.seconds)
        cpu1, size1 = cpu_seconds(pid), publisher.total_size
        if cpu0 is None or cpu1 is None:
            raise SystemExit(f"the destination ffmpeg to {kind} died; see {work / 'dest.log'}")
        result = {"receiver": kind, "scheme": "rtmps" if tls else "rtmp", "chunk": chunk, "profile": profile,
                  "cpu_per_60s": (cpu1 - cpu0) * 60 / args.seconds, "speed": publisher.speed}
        if counter:
            result |= {"wire_bytes": counter.wire_bytes - wire0, "plain_bytes": counter.plain_bytes - plain0,
                       "media_bytes": size1 - size0, "records_per_s": (counter.records - rec0) / args.seconds,
                       "tls": counter.version}
        if STRACE and args.trace_seconds > 0 and profile == "copy":
            calls = await strace_counts(pid, args.trace_seconds, work)
            result["syscalls_per_s"] = {k: v / args.trace_seconds for k, v in calls.items()}
        return result
    finally:
        if publisher:
            await publisher.stop()
        if counter:
            await counter.stop()
        await stop()


def table(results: list[dict]) -> list[str]:
    lines = ["| destination ffmpeg → receiver | chunk size announced | ffmpeg CPU s / 60 s | syscalls / s "
             "(sendto + poll, all) | wire bytes / media bytes (TLS records / s) |", "|---|---|---|---|---|"]
    for r in results:
        calls = r.get("syscalls_per_s", {})
        io = calls.get("sendto", 0) + calls.get("write", 0) + calls.get("poll", 0)
        sys_text = f"{io:,.0f}, {sum(calls.values()):,.0f}" if calls else "n/a (no strace)"
        wire = "plain TCP"
        if "wire_bytes" in r:
            wire = (f"{r['wire_bytes'] / r['media_bytes']:.2f}× (RTMP {r['plain_bytes'] / r['media_bytes']:.2f}×; "
                    f"{r['records_per_s']:,.0f} records/s, {r['tls']})")
        what = f"{r['scheme']} → {r['receiver']}"
        if r["profile"] != "copy":
            what += f", transcode `{r['profile']}` (speed {r['speed']:.2f}×)"
        lines.append(f"| {what} | {r['chunk']} | {r['cpu_per_60s']:.2f} | {sys_text} | {wire} |")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU and bytes window per case (default 30)")
    parser.add_argument("--trace-seconds", type=float, default=10.0, help="strace window per case (0: none)")
    parser.add_argument("--kbps", type=int, default=6000, help="video bitrate of the 1080p30 clip (default 6000)")
    parser.add_argument("--transcode", default="portrait-720p", choices=[p for p in PROFILES if p != "copy"] + [""],
                        help="one more case with this transcode profile, '' for none (default portrait-720p)")
    args = parser.parse_args()
    clip = await make_clip(60, args.kbps)
    kinds = ["ffmpeg -listen", *(["nginx-rtmp"] if HAVE_NGINX else []), "streamctl RtmpServer.receiver"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cert = self_signed_cert(work)
        cases = [(kind, False) for kind in kinds] + [(kind, True) for kind in kinds[:2]]
        for kind, tls in cases:
            print(f"measuring {'rtmps' if tls else 'rtmp'} → {kind} ...", file=sys.stderr)
            results.append(await measure_case(clip, kind, tls, args, work, cert))
        if args.transcode:
            print(f"measuring {args.transcode} → {kinds[1]} ...", file=sys.stderr)
            results.append(await measure_case(clip, kinds[1], False, args, work, cert, args.transcode))
    print(f"\none destination, 1080p30 H.264 {args.kbps} kbit/s + AAC, stream copy; CPU over {args.seconds:g} s, "
          f"strace over {args.trace_seconds:g} s\n")
    for line in table(results):
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
