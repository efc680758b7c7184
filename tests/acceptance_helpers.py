"""Drive streamctl only as a user would: its console script, event files, environment variables, HTTP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .receivers import FFMPEG, pid_alive

LOOPBACK = "127.0.0.1"
_SCRIPT = Path(sys.executable).with_name("streamctl")
# The installed console script, as a user types it; `python -m streamctl` only where it is not installed.
STREAMCTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "streamctl"]
CSRF_FIELD = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


async def eventually(check, within: float, what: str, step: float = 0.2):
    """Await `check()` until it returns something truthy; fail with `what` and the last value after `within` s."""
    deadline = time.monotonic() + within
    last = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}; last saw {last!r}")
        await asyncio.sleep(step)


@dataclass
class Result:
    code: int
    out: str
    err: str


async def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
              within: float = 60, cwd: Path | None = None) -> Result:
    """Run one `streamctl …` command to its end without blocking the loop (fakes in this process keep serving)."""
    process = await asyncio.create_subprocess_exec(
        *STREAMCTL, *args, env=env or dict(os.environ), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin is not None else None), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"streamctl {' '.join(args)} did not finish within {within:.0f} s") from None
    return Result(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


# ---- processes ----------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, str, int] | None:
    """(command name, state, parent pid) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return text[text.index("(") + 1:text.rindex(")")], rest[0], int(rest[1])


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, grandchildren…)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))) and info[1] != "Z":
            parents[int(entry.name)] = info[2]
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def ffmpeg_below(pid: int) -> list[int]:
    """Live ffmpeg processes anywhere below `pid`."""
    return [p for p in descendants(pid) if (info := _stat(p)) and info[0] == "ffmpeg"]


def ffmpeg_mentioning(*needles: str) -> list[int]:
    """Live ffmpeg processes (anyone's child, orphans included) whose command line contains one of `needles`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        info = _stat(int(entry.name))
        if info is None or info[0] != "ffmpeg" or info[1] == "Z":
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            if any(n in cmdline for n in needles):
                found.append(int(entry.name))
    return found


class Service:
    """A long-running `streamctl run|demo` in the background, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, stdout_pipe: bool = False):
        self.args = args
        self.env = env
        self.log = log
        self.stdout_pipe = stdout_pipe
        self.process: asyncio.subprocess.Process | None = None
        self.seen_ffmpeg: set[int] = set()
        self.stdout = ""
        self._reader: asyncio.Task | None = None
        self._log_file = None

    async def start(self) -> Service:
        self._log_file = self.log.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *STREAMCTL, *self.args, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.stdout_pipe else self._log_file, stderr=self._log_file)
        if self.stdout_pipe:
            self._reader = asyncio.create_task(self._read_stdout(), name="service-stdout")
        return self

    async def _read_stdout(self) -> None:
        while line := await self.process.stdout.readline():
            self.stdout += line.decode(errors="replace")

    @property
    def pid(self) -> int:
        return self.process.pid

    def note_ffmpeg(self) -> list[int]:
        """The ffmpeg children now (remembered, so the no-orphans check knows every one ever seen)."""
        now = ffmpeg_below(self.pid)
        self.seen_ffmpeg.update(now)
        return now

    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self, sig: int = signal.SIGTERM, within: float = 15) -> tuple[int, float]:
        """Send `sig`; returns (exit code, seconds until it exited). Kills it if it hangs, failing the caller."""
        self.note_ffmpeg()
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"streamctl {self.args[0]} did not exit within {within:.0f} s of signal {sig}") \
                from None
        took = time.monotonic() - started
        await self._close_output()
        return code, took

    async def kill(self) -> None:
        """Last resort at teardown: the process and every ffmpeg it left."""
        if self.running():
            for pid in self.note_ffmpeg():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)
        for pid in self.seen_ffmpeg:
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        await self._close_output()

    async def _close_output(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def output(self) -> str:
        return self.stdout + (self.log.read_text(errors="replace") if self.log.exists() else "")


class Publisher:
    """The hall's switcher: ffmpeg pushing a test pattern (H.264 + AAC) by RTMP in real time."""

    def __init__(self, url: str, size: str = "640x360", fps: int = 30, gop_s: float = 1.0, realtime: bool = True):
        self.argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", *(["-re"] if realtime else []),
                     "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
                     "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                     "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                     "-g", str(round(fps * gop_s)), "-sc_threshold", "0", "-b:v", "500k",
                     "-c:a", "aac", "-b:a", "64k", "-f", "flv", url]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Publisher:
        self.process = await asyncio.create_subprocess_exec(*self.argv, stdin=subprocess.DEVNULL,
                                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    async def exited(self, within: float) -> tuple[int | None, str]:
        """(exit code, stderr) once it exits by itself, or (None, "") if it is still publishing after `within` s."""
        try:
            await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            return None, ""
        return self.process.returncode, (await self.process.stderr.read()).decode(errors="replace")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)


# ---- HTTP ------------------------------------------------------------------------------------------------


class Client:
    """One caller of the console (a bearer token, a signed-in session, or nobody); no answer may carry a secret."""

    def __init__(self, base: str, secrets: list[str], token: str | None = None):
        self.base = base
        self.secrets = secrets
        self.token = token
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies from 127.0.0.1
                                          timeout=aiohttp.ClientTimeout(total=20))

    async def close(self) -> None:
        await self.http.close()

    def _headers(self, extra: dict | None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def _clean(self, path: str, text: str) -> None:
        leaked = [s for s in self.secrets if s in text]
        assert not leaked, f"{path} answered with a secret in its body: {text[:300]}"

    async def call(self, method: str, path: str, body: object = None, headers: dict | None = None,
                   data: bytes | None = None) -> tuple[int, object]:
        """(status, parsed JSON or the text when it is not JSON)."""
        kwargs = {"json": body} if body is not None else {"data": data} if data is not None else {}
        async with self.http.request(method, self.base + path, headers=self._headers(headers),
                                     allow_redirects=False, **kwargs) as response:
            text = await response.text()
        self._clean(path, text)
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    async def get(self, path: str) -> tuple[int, object]:
        return await self.call("GET", path)

    async def ok(self, method: str, path: str, body: object = None) -> dict:
        """The JSON answer of a call that must succeed (2xx)."""
        status, answer = await self.call(method, path, body)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {answer}"
        return answer

    async def sign_in(self, username: str, password: str, origin: bool = True) -> int:
        """Fill in /login as a person does (GET the form, send its token back); returns the POST's status."""
        async with self.http.get(self.base + "/login") as response:
            form = await response.text()
            assert response.status == 200, f"/login -> {response.status}"
        match = CSRF_FIELD.search(form)
        assert match, "the /login form carries no csrf_token field"
        headers = {"Origin": self.base} if origin else {}
        async with self.http.post(self.base + "/login", data={"username": username, "password": password,
                                                              "csrf_token": match.group(1)},
                                  headers=headers, allow_redirects=False) as response:
            self._clean("/login", await response.text())
            return response.status

    def has_session(self) -> bool:
        return any(c.key == "streamctl_session" for c in self.http.cookie_jar)


# ---- nginx-rtmp as a platform ------------------------------------------------------------------------------

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX_CONF = """
load_module {module};
daemon off;
master_process off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 64; }}
rtmp {{
  server {{
    listen 127.0.0.1:{rtmp};
    application live {{ live on; record off; }}
  }}
}}
http {{
  access_log off;
  client_body_temp_path {folder}/body; proxy_temp_path {folder}/proxy; fastcgi_temp_path {folder}/fastcgi;
  uwsgi_temp_path {folder}/uwsgi; scgi_temp_path {folder}/scgi;
  server {{ listen 127.0.0.1:{http}; location /stat {{ rtmp_stat all; }} }}
}}
"""


def nginx_rtmp_available() -> bool:
    return Path(NGINX).exists() and RTMP_MODULE.exists()


class NginxRtmp:
    """nginx with the RTMP module, as many platforms' ingests are; what arrived is read from its /stat page."""

    def __init__(self, folder: Path, rtmp_port: int, http_port: int):
        self.folder = folder
        self.rtmp_port = rtmp_port
        self.http_port = http_port
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"rtmp://{LOOPBACK}:{self.rtmp_port}/live"

    async def start(self) -> NginxRtmp:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(NGINX_CONF.format(module=RTMP_MODULE, folder=self.folder, rtmp=self.rtmp_port,
                                          http=self.http_port), encoding="utf-8")
        self.process = await asyncio.create_subprocess_exec(
            NGINX, "-p", str(self.folder), "-c", str(conf), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await eventually(self._up, 10, "nginx-rtmp to answer", step=0.1)
        return self

    async def _up(self) -> bool:
        if self.process.returncode is not None:
            raise AssertionError(f"nginx exited: {(self.folder / 'error.log').read_text(errors='replace')}")
        with contextlib.suppress(OSError):
            await self.stream("-")
            return True
        return False

    async def stream(self, name: str) -> dict | None:
        """What nginx knows of the stream published under `name`: bytes_in, width, height, client ids."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
                http.get(f"http://{LOOPBACK}:{self.http_port}/stat") as response:
            root = ET.fromstring(await response.read())  # noqa: S314 - our own nginx on loopback
        for stream in root.iter("stream"):
            if stream.findtext("name") == name:
                return {"bytes_in": int(stream.findtext("bytes_in") or 0),
                        "width": stream.findtext("meta/video/width"), "height": stream.findtext("meta/video/height"),
                        "clients": [c.findtext("id") for c in stream.iter("client")]}
        return None

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)
