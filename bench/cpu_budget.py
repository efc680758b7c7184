"""The CPU budget of a hall on 2 cores: what each transcode profile costs alone, then 5 copy destinations + TikTok
portrait + a lower 720p under `streamctl run`, with the console polled throughout.

Phase 1 (`--profile-seconds`, 0 to skip): each transcode profile alone, one destination ffmpeg (our exact command
line) fed the 1080p30 clip in real time through an OS pipe, publishing to nginx-rtmp; its CPU (share of one
core) and the real-time speed ffmpeg reports.

Phase 2 (`--seconds`, default 300): `streamctl run` with an RTMP ingest (a feeder ffmpeg publishes the clip in
real time), 5 `copy` destinations, one `portrait-720p` and one `landscape-720p`, each to its own receiver (our
RtmpServer in this process, recording every video tag's timestamp). Measured over the window:
- frames lost per destination: holes in the received video timestamps (a step over 1.5 frame periods counts
  its missing frames) and publisher sessions beyond the first (reconnects);
- console latency: `GET /api/destinations` and `GET /api/ingest` every 0.2 s, p50/p99/max;
- CPU per process from /proc (utime + stime): streamctl itself (ingest listener, program, console), each
  destination's ffmpeg (matched by the receiver port in its command line), the confidence monitor, the feeder;
  the niceness each ran at, and each output's speed from /api/destinations.

Run from the checkout: `python bench/cpu_budget.py [--seconds 300] [--profile-seconds 30] [--kbps 6000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from restream_cpu import (  # noqa: E402
    FFMPEG,
    INGEST_KEY,
    NginxPlatform,
    children,
    cpu_seconds,
    end,
    feeder_argv,
    make_clip,
    spawn,
)
from restream_wire import Publisher  # noqa: E402

from streamctl.restream.flv import VIDEO  # noqa: E402
from streamctl.restream.profiles import PROFILES  # noqa: E402
from streamctl.restream.rtmp_server import RtmpServer  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.receivers import wait_for  # noqa: E402

FPS = 30
OUTPUTS = [*(("copy", f"copy{i}") for i in range(5)), ("portrait-720p", "tiktok"), ("landscape-720p", "lower720")]


class Receiver:
    """One platform stand-in: our RTMP receiver, keeping each video frame's timestamp and arrival."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, int]] = []  # (arrival monotonic, dts ms)
        self.server = RtmpServer.receiver(on_tag=self._tag)

    def _tag(self, session, tag) -> None:
        if tag.kind == VIDEO and not tag.is_sequence_header:
            self.frames.append((time.monotonic(), tag.timestamp))

    def lost(self, since: float, until: float) -> tuple[int, int]:
        """(frames missing from the timestamps, frames received) between two moments."""
        dts = [d for at, d in self.frames if since <= at <= until]
        missing = sum(max(0, round((b - a) * FPS / 1000) - 1) for a, b in zip(dts, dts[1:], strict=False)
                      if b - a > 1.5 * 1000 / FPS)
        return missing, len(dts)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def nice_of(pid: int) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


async def profiles_alone(clip: Path, seconds: float, work: Path) -> list[str]:
    """Each transcode profile as one destination ffmpeg: CPU share of a core and speed."""
    # On a busy machine a transcode gets less than it needs and falls behind; CPU ÷ speed is what it would need
    # to keep real time (core-seconds per second of media), which holds whatever else runs.
    lines = ["| profile (1080p30 in) | CPU (share of one core) | speed | cores needed for real time |",
             "|---|---|---|---|"]
    for name, profile in PROFILES.items():
        if profile.copy:
            continue
        platform = NginxPlatform(work, f"profile-{name}")
        await platform.start()
        publisher = None
        try:
            try:
                publisher = await Publisher(clip, f"{platform.url}/bench", work, name).start()
            except AssertionError:
                lines.append(f"| `{name}` | did not publish 1 MB within 20 s (starved) | – | – |")
                print(lines[-1], flush=True)
                continue
            await asyncio.sleep(3.0)
            pid = publisher.dest.pid
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            share = (cpu1 - cpu0) / (t1 - t0) if cpu0 is not None and cpu1 is not None else float("nan")
            need = share / publisher.speed if publisher.speed else float("nan")
            lines.append(f"| `{name}` | {share * 100:.0f} % | {publisher.speed:.2f}× | {need:.2f} |")
        finally:
            if publisher:
                await publisher.stop()
            await platform.kill()
        print(lines[-1], flush=True)
    return lines


async def hall(clip: Path, seconds: float, work: Path) -> list[str]:
    receivers = {name: Receiver() for _, name in OUTPUTS}
    for rx in receivers.values():
        await rx.server.start()
    ingest_port, console_port = free_port(), free_port()
    dests = "".join(textwrap.dedent(f"""
        [[destination]]
        name = "{name}"
        url = "{receivers[name].server.url}"
        profile = "{profile}"
        """) for profile, name in OUTPUTS)
    event = work / "hall.toml"
    event.write_text(textwrap.dedent(f"""
        [event]
        name = "cpu budget"
        database = "hall.db"
        [ingest]
        url = "rtmp://127.0.0.1:{ingest_port}/live"
        key_env = "BENCH_INGEST_KEY"
        [console]
        listen = "127.0.0.1:{console_port}"
        """) + dests)
    env = {**os.environ, "BENCH_INGEST_KEY": INGEST_KEY}
    cli = [sys.executable, "-m", "streamctl"]
    maker = await spawn([*cli, "token", "create", "--role", "operator", "--event", str(event)], env=env,
                        stdout=subprocess.PIPE)
    token = (await maker.communicate())[0].decode().strip()
    run = await spawn([*cli, "run", str(event)], env=env, stderr=(work / "hall.log").open("wb"), cwd=ROOT)
    feeder = None
    base = f"http://127.0.0.1:{console_port}"
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            await wait_for(lambda: _listening(ingest_port), 30, "streamctl's RTMP listener")
            feeder = await spawn(feeder_argv(clip, f"rtmp://127.0.0.1:{ingest_port}/live/{INGEST_KEY}"))
            await wait_for(lambda: all(len(r.frames) > 2 * FPS for r in receivers.values()), 60,
                           "frames at every receiver")
            await asyncio.sleep(5.0)  # past the transcodes' start
            sampler = CpuByName(run.pid, feeder.pid, receivers)
            await sampler.sample()
            since = time.monotonic()
            deadline = since + seconds
            ticker = asyncio.create_task(sampler.every(1.0))
            while time.monotonic() < deadline:
                for path in ("/api/destinations", "/api/ingest"):
                    started = time.perf_counter()
                    async with http.get(base + path) as response:
                        await response.read()
                    latencies.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.2)
            until = time.monotonic()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await sampler.sample()
            async with http.get(base + "/api/destinations") as response:
                rows = {d["name"]: d for d in (await response.json())["destinations"]}
    finally:
        if feeder:
            await end(feeder)
        await end(run, within=15)
        for rx in receivers.values():
            await rx.server.close()
    window = until - since
    load = os.getloadavg()
    lines = [f"window {window:.0f} s, load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}", "",
             "| output | profile | nice | CPU (share of one core) | speed (ffmpeg) | frames received | frames lost "
             "| reconnects |", "|---|---|---|---|---|---|---|---|"]
    for profile, name in OUTPUTS:
        lost, got = receivers[name].lost(since, until)
        share = sampler.share(name, window)
        speed = rows.get(name, {}).get("health", {}).get("speed", float("nan"))
        sessions = receivers[name].server.counters["publishes_total"]
        lines.append(f"| {name} | `{profile}` | {sampler.nice.get(name)} | {share} | {speed:.2f}× | {got} "
                     f"(expected {window * FPS:.0f}) | {lost} | {max(0, sessions - 1)} |")
    for name in ("streamctl (ingest, program, console)", "confidence monitor", "feeder ffmpeg"):
        lines.append(f"| {name} | | {sampler.nice.get(name)} | {sampler.share(name, window)} | | | | |")
    lines += ["", f"console: {len(latencies)} requests, p50 {percentile(latencies, 50):.0f} ms, "
                  f"p99 {percentile(latencies, 99):.0f} ms, max {max(latencies):.0f} ms"]
    return lines


class CpuByName:
    """CPU seconds per output over the window, following each output across restarts (new ffmpeg, new pid)."""

    def __init__(self, run_pid: int, feeder_pid: int, receivers: dict[str, Receiver]):
        self.run_pid, self.feeder_pid, self.receivers = run_pid, feeder_pid, receivers
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.nice: dict[str, int | None] = {}

    def _name(self, pid: int) -> str | None:
        if pid == self.run_pid:
            return "streamctl (ingest, program, console)"
        if pid == self.feeder_pid:
            return "feeder ffmpeg"
        line = cmdline(pid)
        if "mpjpeg" in line:
            return "confidence monitor"
        for name, rx in self.receivers.items():
            if line.split() and f":{rx.server.port}" in line.split()[-1]:
                return name
        return None

    async def sample(self) -> None:
        for pid in [self.run_pid, self.feeder_pid, *children(self.run_pid)]:
            if pid not in self.names:
                name = self._name(pid)
                if name is None:
                    continue
                self.names[pid] = name
                self.nice.setdefault(name, nice_of(pid))
            used = cpu_seconds(pid)
            if used is not None:
                self.first.setdefault(pid, used)
                self.last[pid] = used

    async def every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self.sample()

    def share(self, name: str, window: float) -> str:
        used = sum(self.last[p] - self.first[p] for p, n in self.names.items() if n == name and p in self.last)
        return f"{used / window * 100:.1f} %"


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="the hall's window (default 300)")
    parser.add_argument("--profile-seconds", type=float, default=30.0, help="per profile alone, 0 to skip")
    parser.add_argument("--kbps", type=int, default=6000, help="video bitrate of the 1080p30 program")
    args = parser.parse_args()
    clip = await make_clip(60, args.kbps)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; ffmpeg {FFMPEG}\n")
    with tempfile.TemporaryDirectory(prefix="cpu-budget-") as tmp:
        work = Path(tmp)
        if args.profile_seconds > 0:
            print("\n".join(await profiles_alone(clip, args.profile_seconds, work)), flush=True)
            print()
        print("\n".join(await hall(clip, args.seconds, work)))


if __name__ == "__main__":
    asyncio.run(main())
