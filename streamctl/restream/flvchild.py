"""An ffmpeg child writing FLV to its stdout, read tag by tag until it ends or stalls (the ingest, the slate)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from ..redact import redact
from .flv import FlvParseError, FlvReader, Tag
from .supervisor import Child, Supervisor

log = logging.getLogger(__name__)

TagHandler = Callable[[Tag], Awaitable[None]]


async def run_flv_child(supervisor: Supervisor, name: str, argv: Sequence[str], on_tag: TagHandler, *,
                        first_tag_s: float | None, stall_s: float, pass_fds: Sequence[int] = ()) -> str:
    """One ffmpeg run: every tag of its FLV output to `on_tag` until it ends or stalls; returns why it ended.

    `first_tag_s` bounds the wait for the first tag (None: wait as long as it takes, as a listener does),
    `stall_s` every later one; `pass_fds` are inherited by the child. The child is always stopped (and waited
    for) through the supervisor.
    """
    child = await supervisor.spawn(name, argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                   pass_fds=pass_fds)
    tail: deque[str] = deque(maxlen=4)
    drain = asyncio.create_task(_drain_stderr(child, tail), name=f"{name}.stderr")
    try:
        stopped = await _pump(child, on_tag, first_tag_s, stall_s)
        if stopped is not None:
            return stopped
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(child.process.wait()), 2.0)
        await asyncio.wait([drain], timeout=1.0)  # ffmpeg's last words say why it ended
        code = child.returncode
        why = f"ffmpeg exited with code {code}" if code is not None else "ffmpeg closed its output"
        return f"{why}: {tail[-1]}" if tail else why
    finally:
        await supervisor.stop(child)
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)


async def _pump(child: Child, on_tag: TagHandler, first_tag_s: float | None, stall_s: float) -> str | None:
    """Tags from the child's stdout to `on_tag`; why it stopped, or None at the end of its output."""
    assert child.process.stdout is not None
    reader = FlvReader()
    timeout = first_tag_s
    while True:  # ends with the child's output, or a stall
        try:
            async with asyncio.timeout(timeout):
                data = await child.process.stdout.read(65536)
        except TimeoutError:
            return f"no data for {timeout:g} s"
        if not data:
            return None
        try:
            tags = reader.feed(data)
        except FlvParseError as e:
            return f"ffmpeg sent something that is not FLV: {e}"
        for tag in tags:
            timeout = stall_s
            await on_tag(tag)


async def _drain_stderr(child: Child, tail: deque[str]) -> None:
    """Keep ffmpeg's stderr flowing (a full pipe would stall it); remember the last lines, masked."""
    stream = child.process.stderr
    if stream is None:
        return
    pending = b""
    while chunk := await stream.read(4096):
        *lines, pending = (pending + chunk).split(b"\n")
        pending = pending[-4096:]
        for raw in lines:
            line = redact(raw.decode("utf-8", "replace").strip())
            if line:
                tail.append(line)
                log.debug("%s: %s", child.name, line)
