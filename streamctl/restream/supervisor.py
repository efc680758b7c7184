"""The supervisor: the only place that starts child processes, and the one that ends every one of them."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..redact import redact

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


# Niceness of a child that may be starved without harm to the show: a transcode (x264 can take a whole core)
# yields the CPU to the copy outputs, the ingest and the console, which run at our own priority (0).
LOW_PRIORITY = 10


def _die_with_parent(nice: int = 0) -> None:  # pragma: no cover - runs in the child between fork and exec
    """Children get SIGKILL if the controller itself dies, so no ffmpeg outlives it, even after kill -9."""
    os.setsid()
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(eq=False)
class Child:
    """A running child process and what it is for."""

    name: str
    argv: tuple[str, ...]
    process: asyncio.subprocess.Process
    started_at: float = field(default_factory=lambda: asyncio.get_running_loop().time())

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def display_argv(self) -> str:
        """The command line with every secret masked."""
        return redact(" ".join(self.argv))


class Supervisor:
    """Starts processes, tracks them, and stops them politely (SIGTERM, wait, then SIGKILL)."""

    def __init__(self, grace_s: float = 3.0):
        self.grace_s = grace_s
        self._children: set[Child] = set()

    @property
    def children(self) -> list[Child]:
        return list(self._children)

    async def spawn(self, name: str, argv: Sequence[str], *, stdin: int | None = asyncio.subprocess.DEVNULL,
                    stdout: int | None = asyncio.subprocess.DEVNULL,
                    stderr: int | None = asyncio.subprocess.PIPE, env: dict[str, str] | None = None,
                    nice: int = 0, pass_fds: Sequence[int] = ()) -> Child:
        """Start `argv` in its own process group, tied to our life; `nice` > 0 runs it at a lower priority;
        `pass_fds` are inherited (a pipe holding options that must not be on the command line)."""
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, pass_fds=tuple(pass_fds),
            preexec_fn=functools.partial(_die_with_parent, nice),  # noqa: PLW1509 - no threads start children here
        )
        child = Child(name=name, argv=tuple(argv), process=process)
        self._children.add(child)
        log.debug("started %s (pid %d): %s", name, process.pid, child.display_argv())
        return child

    async def wait(self, child: Child) -> int:
        """Wait for a child to exit and forget it."""
        try:
            return await child.process.wait()
        finally:
            if child.process.returncode is not None:
                self._children.discard(child)

    async def stop(self, child: Child, grace_s: float | None = None) -> int | None:
        """SIGTERM the child's process group, wait up to the grace period, then SIGKILL. Always waits."""
        grace = self.grace_s if grace_s is None else grace_s
        proc = child.process
        if proc.returncode is None:
            if proc.stdin is not None:
                with contextlib.suppress(Exception):
                    proc.stdin.close()
            self._signal(proc.pid, signal.SIGTERM)
            try:
                await asyncio.shield(asyncio.wait_for(proc.wait(), grace))
            except TimeoutError:
                log.warning("%s did not stop within %.1f s, killing it", child.name, grace)
                self._signal(proc.pid, signal.SIGKILL)
            except asyncio.CancelledError:
                # Cancelled while stopping: still never leave the child behind.
                self._signal(proc.pid, signal.SIGKILL)
                await asyncio.shield(proc.wait())
                self._forget(child)
                raise
            await asyncio.shield(proc.wait())
        self._forget(child)
        return proc.returncode

    def _forget(self, child: Child) -> None:
        """Drop an exited child and close its pipes.

        A pipe nobody reads any more (its reader was cancelled mid-stream) stays paused and never sees
        EOF, so asyncio would keep its transport open until garbage collection warns about it.
        """
        self._children.discard(child)
        transport = getattr(child.process, "_transport", None)
        if transport is not None and child.process.returncode is not None:
            transport.close()

    async def stop_all(self, grace_s: float | None = None) -> None:
        """Stop every child at once; returns when all have exited."""
        children = list(self._children)
        if children:
            await asyncio.gather(*(self.stop(c, grace_s) for c in children), return_exceptions=True)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
