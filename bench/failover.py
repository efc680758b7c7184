"""Failover benchmark: the main encoder crashes again and again; what does the platform see?

Two ffmpeg publishers (640x360 30 fps, keyframe every 2 s, AAC) stand in for the hall's main and backup
encoders, each on its own RTMP listener of ours; one copy destination publishes the program to a real receiver
(`ffmpeg -listen`). Each round SIGKILLs the main encoder, waits for the backup on air, starts the main encoder
again and waits for the auto failback. Reported per round: kill → backup on air, main back → primary on air,
and at the receiver the largest gap between frames' arrivals and between their timestamps around the switches.

Run from the checkout: `python bench/failover.py [--rounds 5] [--failback-after 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamctl.config import load_event  # noqa: E402
from streamctl.events import Bus  # noqa: E402
from streamctl.restream.restreamer import Restreamer  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.ingest_media import Publisher, encode_args  # noqa: E402
from tests.receivers import RtmpReceiver, wait_for  # noqa: E402

KEYS = {"INGEST_KEY": "bench-primary-key", "BACKUP_KEY": "bench-backup-key"}


def gaps(receiver: RtmpReceiver, since: float, until: float) -> tuple[float, int]:
    """(largest arrival gap in s, largest dts step in ms) of the video frames that arrived in [since, until]."""
    video = [f for f in receiver.video if since <= f.at <= until]
    pairs = list(zip(video, video[1:], strict=False))
    return (max((b.at - a.at for a, b in pairs), default=0.0), max((b.dts - a.dts for a, b in pairs), default=0))


async def bench(rounds: int, failback_after_s: float) -> None:
    os.environ.update(KEYS)
    receiver = await RtmpReceiver(free_port(), respawn=False).start()
    ports = free_port(), free_port()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "event.toml"
        path.write_text(f"""
[event]
name = "failover"
[ingest]
url = "rtmp://127.0.0.1:{ports[0]}/live"
key_env = "INGEST_KEY"
backup_url = "rtmp://127.0.0.1:{ports[1]}/live"
backup_key_env = "BACKUP_KEY"
failback_after_s = {failback_after_s}
[[destination]]
name = "main"
url = "{receiver.url}"
""", encoding="utf-8")
        restreamer = Restreamer(load_event(path), Bus())
    task = asyncio.create_task(restreamer.run())
    urls = [f"rtmp://127.0.0.1:{p}/live/{k}" for p, k in zip(ports, KEYS.values(), strict=True)]

    def encoder(url: str) -> Publisher:
        return Publisher(encode_args(3600, gop=60) + ["-f", "flv", url])

    def on_air() -> str | None:
        return restreamer.ingest_status()["on_air"]

    loop = asyncio.get_running_loop()
    publishers = []
    try:
        await wait_for(lambda: restreamer.ingest.server and restreamer.ingest.server.port == ports[0], 5, "listener")
        publishers.append(await encoder(urls[0]).start())
        await wait_for(lambda: on_air() == "primary", 15, "the primary on air")
        publishers.append(await encoder(urls[1]).start())
        dest = restreamer.get("main")
        await wait_for(lambda: dest.state == "live", 15, "the destination live")
        await asyncio.sleep(3)
        reconnects = dest.describe()["health"]["reconnects"]
        print("round  kill→backup s  back→primary s  arrival gap s  dts step ms")
        for n in range(1, rounds + 1):
            await asyncio.sleep(2.5)  # land the kill anywhere in a GOP
            began = loop.time()
            os.kill(publishers[0].process.pid, signal.SIGKILL)
            await wait_for(lambda: on_air() == "backup", 5, "the backup on air")
            to_backup = loop.time() - began
            await asyncio.sleep(1.0)
            await publishers[0].stop()
            publishers[0] = await encoder(urls[0]).start()
            await wait_for(lambda: restreamer.ingest_status()["inputs"][0]["state"] == "live", 10, "primary back")
            back = loop.time()
            await wait_for(lambda: on_air() == "primary", failback_after_s + 10, "the failback")
            to_primary = loop.time() - back
            await asyncio.sleep(1.0)
            arrival, dts = gaps(receiver, began - 1, loop.time())
            print(f"{n:5}  {to_backup:13.3f}  {to_primary:14.2f}  {arrival:13.3f}  {dts:11}")
        print(f"destination reconnects during the rounds: {dest.describe()['health']['reconnects'] - reconnects}; "
              f"receiver sessions: {receiver.sessions}; state: {dest.state}")
    finally:
        for publisher in publishers:
            await publisher.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await receiver.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--failback-after", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(bench(args.rounds, args.failback_after))


if __name__ == "__main__":
    main()
