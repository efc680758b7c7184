"""The wheel (pyproject.toml, streamctl/assets.py): built, installed into a fresh venv outside the checkout, and
serving every page, static file, overlay and the report from there, run from another folder."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import aiohttp
import pytest

from .console_harness import Client, Console

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"operator": ("/operate", "/moderate", "/report", "/report?format=json", "/report?lang=en"),
         "moderator": ("/moderate", "/report"), "official": ("/official",)}

pytestmark = pytest.mark.timeout(180)


def build_wheel(tmp: Path) -> Path:
    """The wheel built from a copy of the checkout (a build writes build/ and *.egg-info beside the sources)."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("streamctl", "web", "overlays"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps",
                    "-w", str(tmp / "dist"), str(source)], check=True, capture_output=True, timeout=120)
    return next((tmp / "dist").glob("streamctl-*.whl"))


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A new venv holding only the wheel; its dependencies come from this interpreter's site-packages (no
    download), which holds no streamctl of its own (an editable install is a finder the .pth does not load)."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=120)
    return venv


def clean_env() -> dict[str, str]:
    """The environment without our checkout on the path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


async def run(*argv, **kwargs) -> subprocess.CompletedProcess:
    """A command run to its end, off the event loop."""
    return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60, **kwargs)


async def read_banner(process: asyncio.subprocess.Process, within: float = 60) -> str:
    """The demo's banner, up to the line naming its folder."""
    lines = []
    async with asyncio.timeout(within):
        while not lines or not lines[-1].startswith("  Event file and database:"):
            line = await process.stdout.readline()
            assert line, "the demo stopped before printing its banner:\n" + "".join(lines)
            lines.append(line.decode())
    return "".join(lines)


async def fetch(client: Client, path: str) -> tuple[int, bytes, str]:
    async with client.session.get(f"{client.console.url}{path}", allow_redirects=False) as r:
        return r.status, await r.read(), r.content_type


async def test_the_wheel_installed_outside_the_checkout_serves_every_page_static_file_overlay_and_report(tmp_path):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "streamctl/web/templates/report/report.html" in names
    assert "streamctl/overlays/assets/overlay.js" in names
    venv = fresh_venv(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_env()
    located = (await run(venv / "bin" / "python", "-c", "import streamctl; print(streamctl.__file__)",
                         cwd=elsewhere, env=env)).stdout
    assert located.startswith(str(venv)), located
    installed = Path(located).parent

    with (tmp_path / "demo.log").open("wb") as log:
        demo = await asyncio.create_subprocess_exec(
            venv / "bin" / "streamctl", "demo", "--port", "0", "--dir", str(tmp_path / "demo"), cwd=elsewhere,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=log)
    try:
        banner = await read_banner(demo)
        url = re.search(r"Console:\s+(http://\S+)/login", banner).group(1)
        logins = dict(re.findall(r"^\s+\w+\s+(\w+)\s+password: (\S+)$", banner, re.M))
        overlay_token = re.search(r"/overlay/question\?token=(\S+)", banner).group(1)
        console = Console(controller=None, url=url, tmp=tmp_path)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as anonymous:
            visitor = Client(console, anonymous)
            status, body, _ = await fetch(visitor, "/login")
            assert status == 200 and b'name="csrf_token"' in body
            for folder, prefix in (("web/static", "/static"), ("overlays/assets", "/overlay/assets")):
                files = sorted(p for p in (installed / folder).iterdir() if p.is_file())
                assert files, folder
                for file in files:
                    status, body, _ = await fetch(visitor, f"{prefix}/{file.name}")
                    assert status == 200 and body == (ROOT / folder / file.name).read_bytes(), file.name
            for overlay in ("question", "viewers"):
                status, body, kind = await fetch(visitor, f"/overlay/{overlay}?token={overlay_token}")
                assert status == 200 and kind == "text/html" and b"/overlay/assets/" in body, overlay
            assert (await fetch(visitor, "/favicon.ico"))[0] == 200
        for role, paths in PAGES.items():
            username = re.search(rf"^\s+{role}\s+(\w+)\s", banner, re.M).group(1)
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                client = Client(console, session)
                assert (await client.sign_in(username, logins[username])).status == 302
                for path in paths:
                    status, body, kind = await fetch(client, path)
                    assert status == 200, (role, path, body[:300])
                    assert kind == ("application/json" if "json" in path else "text/html"), (role, path)
    finally:
        demo.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            assert await demo.wait() == 0, (tmp_path / "demo.log").read_text()

    report = tmp_path / "report.html"
    command = (venv / "bin" / "streamctl", "report", tmp_path / "demo" / "demo.db", "--format", "html", "-o", report)
    done = await run(*command, cwd=elsewhere, env=env)
    assert done.returncode == 0, done.stderr
    assert "<svg" in report.read_text(encoding="utf-8")

    # A broken install says what it lacks instead of a traceback, and does not blame writing.
    shutil.rmtree(installed / "web" / "templates" / "report")
    done = await run(*command, cwd=elsewhere, env=env)
    assert done.returncode == 1
    assert "web/templates/report (the report's template) not found in" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "could not write" not in done.stderr
    shutil.rmtree(installed / "web" / "static")
    done = await run(venv / "bin" / "streamctl", "demo", "--port", "0", "--dir", tmp_path / "demo", cwd=elsewhere,
                     env=env)
    assert done.returncode == 1
    assert "web/static (the console's scripts and styles)" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "ExceptionGroup" not in done.stderr
