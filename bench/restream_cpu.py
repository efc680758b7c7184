"""Restreaming benchmark: CPU and memory of one 1080p30 program copied to N local receivers, three ways.

- streamctl: `streamctl run` (our RTMP listener → Program → one ffmpeg per destination), fed by an ffmpeg
  publishing the clip in real time; counted: the streamctl process, its ffmpeg children and the feeder.
- nginx-rtmp `push` to the same receivers (the C floor); counted: nginx master + worker and the feeder.
- one ffmpeg with the tee muxer reading the clip itself; counted: that process.
CPU seconds come from /proc/PID/stat (utime + stime) over the same window for each. For streamctl it also
times start (POST …/start to frames at every receiver) and reconnect (a receiver killed, back after 3 s,
until frames flow again), and checks the other receivers saw no gap meanwhile.

The receivers decide how ffmpeg publishes to them: ffmpeg's RTMP client writes in the chunk size the server
announces, 128 bytes if none. `--receivers ffmpeg` (default) are `ffmpeg -listen` (announce 128, count every
frame); `--receivers nginx` are applications of one nginx-rtmp (announce 4096; bytes counted from its /stat,
start time to ±50 ms, no reconnect run).

Run from the checkout: `python bench/restream_cpu.py [--seconds 60] [--destinations 5] [--kbps 6000]
[--receivers ffmpeg|nginx]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402
from tests.receivers import RtmpReceiver, tcp_listening, wait_for  # noqa: E402

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
NGINX = "/usr/sbin/nginx"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
CACHE = Path(tempfile.gettempdir()) / "streamctl-bench"
TICK = os.sysconf("SC_CLK_TCK")
HAVE_NGINX = os.path.exists(NGINX) and os.path.exists(RTMP_MODULE)
INGEST_KEY = "bench-ingest-key-1"


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process so far, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory in MB; `RssAnon` is the process's own (shared libraries left out)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory(pids: dict[str, int]) -> dict[str, str]:
    return {name: f"{rss_mb(pid):.0f} ({rss_mb(pid, 'RssAnon'):.0f} own)" for name, pid in pids.items()}


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


async def measure(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """CPU seconds each named process used over the next `seconds` (all of them in the same window)."""
    start = {name: cpu_seconds(pid) for name, pid in pids.items()}
    await asyncio.sleep(seconds)
    used = {}
    for name, pid in pids.items():
        end = cpu_seconds(pid)
        used[name] = round(end - start[name], 2) if end is not None and start[name] is not None else float("nan")
    return used


async def make_clip(seconds: int, kbps: int, preset: str = "ultrafast") -> Path:
    """A 1080p30 H.264 + AAC clip at `kbps`, encoded once and cached; another x264 `preset` (with 2 B-frames, as a
    hall's encoder sends) for benchmarks that decode the program."""
    CACHE.mkdir(exist_ok=True)
    suffix = "" if preset == "ultrafast" else f"-{preset}"
    path = CACHE / f"clip-{seconds}s-{kbps}k{suffix}.flv"
    if path.exists():
        return path
    print(f"encoding {path} once ...", file=sys.stderr)
    b_frames = [] if preset == "ultrafast" else ["-bf", "2"]
    process = await asyncio.create_subprocess_exec(
        FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
        "-c:v", "libx264", "-preset", preset, *b_frames, "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60",
        "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k", "-c:a", "aac", "-b:a", "128k",
        "-y", str(path) + ".part.flv")
    if await process.wait() != 0:
        raise SystemExit("could not encode the benchmark clip")
    os.replace(str(path) + ".part.flv", path)
    return path


def feeder_argv(clip: Path, url: str) -> list[str]:
    return [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
            "-c", "copy", "-f", "flv", url]


async def spawn(argv: list[str], **kw) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL, **kw)


async def end(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM, within: float = 10) -> None:
    if process.returncode is None:
        process.send_signal(sig)
        try:
            await asyncio.wait_for(process.wait(), within)
        except TimeoutError:
            process.kill()
            await process.wait()


class FfmpegReceivers:
    """`ffmpeg -listen` receivers: they announce no bigger chunk size, so ffmpeg publishers stay at 128 bytes."""

    label = "ffmpeg -listen receivers (chunk size 128)"

    def __init__(self, n: int, probe_us: int):
        self.rx = [RtmpReceiver(free_port(), probe_us=probe_us) for _ in range(n)]

    async def start(self) -> None:
        for r in self.rx:
            await r.start()

    async def kill(self) -> None:
        for r in self.rx:
            await r.kill()

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.rx]

    async def counts(self) -> list[int]:
        """Video frames each receiver got so far."""
        return [len(r.video) for r in self.rx]

    async def all_receiving(self, before: list[int], within: float) -> float:
        """Wait until every receiver got frames beyond `before`; the loop time the last of them arrived."""
        await wait_for(lambda: all(len(r.video) > n for r, n in zip(self.rx, before, strict=True)), within,
                       "frames at every receiver")
        return max(r.video[n].at for r, n in zip(self.rx, before, strict=True))


class NginxReceivers:
    """Receivers as applications r0…rN-1 of one nginx-rtmp, which announces 4096-byte chunks to publishers."""

    label = "nginx-rtmp receivers (chunk size 4096)"
    ENOUGH = 100_000  # bytes beyond the count before: media, not a handshake

    def __init__(self, n: int, work: Path):
        self.n = n
        self.platform = NginxPlatform(work, "rx", [f"r{i}" for i in range(n)])

    async def start(self) -> None:
        await self.platform.start()
        self.http = aiohttp.ClientSession()

    async def kill(self) -> None:
        await self.http.close()
        await self.platform.kill()

    @property
    def urls(self) -> list[str]:
        return [f"rtmp://127.0.0.1:{self.platform.rtmp_port}/r{i}" for i in range(self.n)]

    async def counts(self) -> list[int]:
        """Bytes each application took in so far (from nginx's /stat)."""
        apps = await self.platform.bytes_in(self.http)
        return [apps.get(f"r{i}", 0) for i in range(self.n)]

    async def all_receiving(self, before: list[int], within: float) -> float:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            if all(c > b + self.ENOUGH for c, b in zip(await self.counts(), before, strict=True)):
                return loop.time()
            await asyncio.sleep(0.05)
        raise SystemExit("media never reached every nginx receiver")


async def post(http: aiohttp.ClientSession, url: str, json: dict | None = None, status: int = 200) -> None:
    async with http.post(url, json=json) as response:
        if response.status != status:
            raise SystemExit(f"POST {url}: {response.status} {await response.text()}")


class NginxPlatform:
    """nginx-rtmp as a platform's ingest: takes any number of connections; its /stat says what arrived."""

    def __init__(self, work: Path, name: str = "platform", apps: list[str] | None = None):
        self.rtmp_port, self.http_port = free_port(), free_port()
        self.conf = work / f"{name}.conf"
        applications = " ".join(f"application {app} {{ live on; }}" for app in apps or ["live"])
        self.conf.write_text(textwrap.dedent(f"""
            load_module {RTMP_MODULE};
            daemon off;
            master_process off;
            user root;
            pid {work}/{name}.pid;
            error_log {work}/{name}-error.log warn;
            events {{ worker_connections 64; }}
            rtmp {{ server {{ listen 127.0.0.1:{self.rtmp_port}; {applications} }} }}
            http {{ access_log off; server {{ listen 127.0.0.1:{self.http_port};
                    location /stat {{ rtmp_stat all; }} }} }}
        """))
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    async def start(self) -> None:
        self.process = await spawn([NGINX, "-c", str(self.conf), "-p", str(self.conf.parent)])
        await wait_for(lambda: tcp_listening(self.rtmp_port), 10, "the platform to listen")

    async def kill(self) -> None:
        if self.process:
            await end(self.process, signal.SIGKILL)

    async def bytes_in(self, http: aiohttp.ClientSession) -> dict[str, int]:
        """Bytes taken in per application so far, summed over its streams (from /stat)."""
        try:
            async with http.get(f"http://127.0.0.1:{self.http_port}/stat") as response:
                text = await response.text()
        except aiohttp.ClientError:
            return {}
        found: dict[str, int] = {}
        for app in re.findall(r"<application>.*?</application>", text, re.S):
            name = re.search(r"<name>([^<]*)</name>", app)
            streams = re.findall(r"<stream>\s*<name>[^<]*</name>\s*<time>\d+</time><bw_in>\d+</bw_in>\s*"
                                 r"<bytes_in>(\d+)</bytes_in>", app)
            if name:
                found[name.group(1)] = sum(int(b) for b in streams)
        return found

    async def flowing(self, http: aiohttp.ClientSession, within: float, enough: int = 200_000) -> None:
        """Wait until the publisher's bytes at the platform pass `enough` (media, not just a handshake)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            if (await self.bytes_in(http)).get("live", 0) >= enough:
                return
            await asyncio.sleep(0.05)
        raise SystemExit("media never reached the nginx platform")


def row(name: str, used: dict[str, float], rss: dict[str, str], seconds: float) -> str:
    total = sum(v for v in used.values() if v == v)
    parts = ", ".join(f"{k} {v:.2f}" for k, v in used.items())
    mem = ", ".join(f"{k} {v}" for k, v in rss.items())
    return f"| {name} | {total:.2f} | {100 * total / seconds:.1f} % | {parts} | {mem} |"


Receivers = FfmpegReceivers | NginxReceivers


async def bench_streamctl(clip: Path, receivers: Receivers, seconds: float, work: Path) -> tuple[str, list]:
    ingest_port, console_port = free_port(), free_port()
    dests = "\n".join(textwrap.dedent(f"""
        [[destination]]
        name = "d{i}"
        url = "{url}"
        key_env = "BENCH_KEY_{i}"
        autostart = false
    """) for i, url in enumerate(receivers.urls))
    event = work / "bench.toml"
    event.write_text(textwrap.dedent(f"""
        [event]
        name = "bench"
        database = "bench.db"
        [ingest]
        url = "rtmp://127.0.0.1:{ingest_port}/live"
        key_env = "BENCH_INGEST_KEY"
        [console]
        listen = "127.0.0.1:{console_port}"
    """) + dests)
    n = len(receivers.urls)
    keys = {f"BENCH_KEY_{i}": f"key-{i}" for i in range(n)} | {"BENCH_KEY_NGINX": "key-nginx"}
    env = {**os.environ, "BENCH_INGEST_KEY": INGEST_KEY, **keys}
    cli = [sys.executable, "-m", "streamctl"]
    maker = await spawn([*cli, "token", "create", "--role", "operator", "--event", str(event)], env=env,
                        stdout=subprocess.PIPE)
    token = (await maker.communicate())[0].decode().strip()
    run = await spawn([*cli, "run", str(event)], env=env, stderr=(work / "run.log").open("wb"), cwd=ROOT)
    feeder = None
    notes = []
    base = f"http://127.0.0.1:{console_port}"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async def get(path: str) -> dict:
                try:
                    async with http.get(base + path) as response:
                        return await response.json()
                except aiohttp.ClientError:
                    return {}

            for _ in range(200):
                if (await get("/api/ingest")).get("state") == "waiting":
                    break
                await asyncio.sleep(0.1)
            feeder = await spawn(feeder_argv(clip, f"rtmp://127.0.0.1:{ingest_port}/live/{INGEST_KEY}"))
            for _ in range(200):
                if (await get("/api/ingest")).get("state") == "live":
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            loop = asyncio.get_running_loop()
            before = await receivers.counts()
            t0 = loop.time()
            await asyncio.gather(*(post(http, f"{base}/api/destinations/d{i}/start") for i in range(n)))
            start_s = await receivers.all_receiving(before, 20) - t0
            await asyncio.sleep(2.0)
            ffmpegs = {f"dest{i}": pid for i, pid in enumerate(p for p in children(run.pid) if comm(p) == "ffmpeg")}
            pids = {"python": run.pid, **ffmpegs, "feeder": feeder.pid}
            used = await measure(pids, seconds)
            rss = memory({"python": run.pid, "dest0": ffmpegs["dest0"], "feeder": feeder.pid})
            notes.append(f"start: POST start of {n} destinations → media at every receiver: {start_s:.2f} s")
            if not isinstance(receivers, FfmpegReceivers):
                return row(f"streamctl (asyncio fan-out, {n}× ffmpeg -c copy)", used, rss, seconds), notes

            # A platform (nginx-rtmp, which like a real ingest takes many connections) is added mid-event,
            # then crashes and comes back after 3 s, three times: time until media flows again. The five
            # other receivers must not blink meanwhile.
            since = loop.time()
            platform = NginxPlatform(work)
            await platform.start()
            await post(http, f"{base}/api/destinations", json={"name": "nginx", "url": platform.url,
                                                                 "key_env": "BENCH_KEY_NGINX"}, status=201)
            try:
                await platform.flowing(http, 20)
                times = []
                for _ in range(3):
                    await platform.kill()
                    await asyncio.sleep(3.0)
                    await platform.start()
                    back = loop.time()
                    await platform.flowing(http, 60)
                    times.append(loop.time() - back)
            finally:
                await platform.kill()
            gaps = [r.largest_gap(since) for r in receivers.rx]
            state = {d["name"]: d for d in (await get("/api/destinations"))["destinations"]}
            reconnects = state["nginx"]["health"]["reconnects"]
            notes.append(f"reconnect: platform back after 3 s down → media flowing again: "
                         f"{', '.join(f'{t:.2f}' for t in times)} s (reconnects={reconnects})"
                         f"; the other receivers' largest gap meanwhile (add + 3 outages): "
                         f"{max(g[1] for g in gaps):.3f} s, timestamps {max(g[0] for g in gaps)} ms")
        return row(f"streamctl (asyncio fan-out, {n}× ffmpeg -c copy)", used, rss, seconds), notes
    finally:
        if feeder:
            await end(feeder)
        stop_at = time.perf_counter()
        await end(run)
        notes.append(f"stop: SIGTERM → streamctl exited in {time.perf_counter() - stop_at:.2f} s, "
                     f"exit code {run.returncode}")


async def bench_nginx(clip: Path, receivers: Receivers, seconds: float, work: Path) -> str:
    port = free_port()
    pushes = "\n".join(f"            push {url}/x;" for url in receivers.urls)
    conf = work / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""
        load_module {RTMP_MODULE};
        daemon off;
        master_process on;
        worker_processes 1;
        user root;
        pid {work}/nginx.pid;
        error_log {work}/nginx-error.log warn;
        events {{ worker_connections 256; }}
        rtmp {{
          server {{
            listen 127.0.0.1:{port};
            application live {{
              live on;
              record off;
        %s
            }}
          }}
        }}
    """) % pushes)
    nginx = await spawn([NGINX, "-c", str(conf), "-p", str(work)])
    feeder = None
    try:
        await wait_for(lambda: any(comm(p) == "nginx" for p in children(nginx.pid)), 10, "the nginx worker")
        before = await receivers.counts()
        feeder = await spawn(feeder_argv(clip, f"rtmp://127.0.0.1:{port}/live/stream"))
        await receivers.all_receiving(before, 20)
        await asyncio.sleep(2.0)
        worker = next(p for p in children(nginx.pid) if comm(p) == "nginx")
        pids = {"nginx master": nginx.pid, "nginx worker": worker, "feeder": feeder.pid}
        used = await measure(pids, seconds)
        rss = memory({"nginx worker": worker, "feeder": feeder.pid})
        return row(f"nginx-rtmp push ×{len(receivers.urls)} (C floor)", used, rss, seconds)
    finally:
        if feeder:
            await end(feeder)
        await end(nginx, signal.SIGQUIT)


async def bench_tee(clip: Path, receivers: Receivers, seconds: float) -> str:
    slaves = "|".join(f"[f=flv:onfail=ignore]{url}/x" for url in receivers.urls)
    before = await receivers.counts()
    tee = await spawn([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
                       "-map", "0", "-c", "copy", "-f", "tee", slaves])
    try:
        await receivers.all_receiving(before, 20)
        await asyncio.sleep(2.0)
        used = await measure({"ffmpeg tee": tee.pid}, seconds)
        return row(f"one ffmpeg tee ×{len(receivers.urls)}", used, memory({"ffmpeg tee": tee.pid}), seconds)
    finally:
        await end(tee)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window per way (default 60)")
    parser.add_argument("--destinations", type=int, default=5)
    parser.add_argument("--kbps", type=int, default=6000, help="video bitrate of the 1080p30 clip (default 6000)")
    parser.add_argument("--receivers", choices=("ffmpeg", "nginx"), default="ffmpeg",
                        help="`ffmpeg -listen` (announce 128-byte chunks) or nginx-rtmp (4096); default ffmpeg")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    if args.receivers == "nginx" and not HAVE_NGINX:
        raise SystemExit("--receivers nginx needs nginx with the rtmp module")
    clip = await make_clip(60, args.kbps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for way in ("streamctl", "nginx", "tee"):
            if way == "nginx" and not HAVE_NGINX:
                continue
            # nginx-rtmp relays audio well before the first video keyframe: its receivers probe longer.
            probe_us = 100_000 if way == "streamctl" else 3_000_000
            receivers = FfmpegReceivers(args.destinations, probe_us) if args.receivers == "ffmpeg" \
                else NginxReceivers(args.destinations, work)
            await receivers.start()
            try:
                if way == "streamctl":
                    ours, notes = await bench_streamctl(clip, receivers, args.seconds, work)
                    rows.append(ours)
                elif way == "nginx":
                    rows.append(await bench_nginx(clip, receivers, args.seconds, work))
                else:
                    rows.append(await bench_tee(clip, receivers, args.seconds))
            finally:
                await receivers.kill()
    print(f"\n{args.destinations} destinations, 1080p30 H.264 {args.kbps} kbit/s + AAC 128 kbit/s, stream copy, "
          f"{args.seconds:g} s window, {os.cpu_count()} cores, {receivers.label}\n")
    print("| way | CPU s | of one core | CPU s by process | RSS MB (own) |")
    print("|---|---|---|---|---|")
    for line in rows:
        print(line)
    print()
    for note in notes:
        print(f"- {note}")
    if args.json:
        print(json.dumps({"rows": rows, "notes": notes}, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
