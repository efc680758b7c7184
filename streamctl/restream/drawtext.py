"""Text drawn into video by ffmpeg (testsrc's clock and name, the slate's card): font and literal escaping."""

from __future__ import annotations

import re
from pathlib import Path

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def filter_value(text: str) -> str:
    """`text` as one option value inside an ffmpeg filtergraph, taken literally.

    Two parsers read it: the option parser (quote it; a quote inside becomes '\\'') and then the graph
    parser (backslash before each of \\ ' [ ] , ;).
    """
    quoted = "'" + text.replace("'", "'\\''") + "'"
    return re.sub(r"([\\'\[\],;])", r"\\\1", quoted)


def drawtext(text: str, *, fontsize: str | int, y: str, font: Path = FONT, box: bool = False,
             color: str = "white", expand: bool = False) -> str:
    """One drawtext filter: `text` centred across the frame at `y`, literal unless `expand` (for %{...})."""
    style = f"fontfile={filter_value(str(font))}:fontcolor={color}"
    if box:
        style += ":box=1:boxcolor=black@0.6:boxborderw=14"
    literal = "" if expand else ":expansion=none"
    return f"drawtext={style}:x=(w-tw)/2:fontsize={fontsize}:y={y}{literal}:text={filter_value(text)}"
