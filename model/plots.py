"""Figures as PNG bytes, drawn with matplotlib's Agg backend (no display), for report.html and curves.png.

matplotlib is imported only when a figure is made: scoring and training without pictures never pay for it
(about a second of import). No pyplot: a `Figure` on its own Agg canvas has no global state to leak between
figures and never looks for a display. Torch-free.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

DPI = 100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# CAPRI quality classes by DockQ (incorrect below 0.23), drawn as guides on the DockQ axes.
DOCKQ_CLASSES = ((0.23, "acceptable"), (0.49, "medium"), (0.80, "high"))


def new_figure(width_px: int, height_px: int) -> Any:
    """A matplotlib Figure of exactly `width_px` x `height_px` pixels when saved by `png_bytes`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Any, description: str) -> bytes:
    """The figure as PNG; `description` goes into the PNG's Description text chunk (what the picture shows, in
    words: a reader without the image, or a test, can check it). No date is written, so the same figure gives
    the same bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Description": description})
    return buffer.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header; ValueError when `data` is not a PNG."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", data[16:24])


def png_text(data: bytes) -> dict[str, str]:
    """The PNG's text chunks (keyword -> text): tEXt (Latin-1), and iTXt (UTF-8, which matplotlib writes for
    text outside Latin-1)."""
    png_size(data)
    chunks, offset = {}, 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"tEXt":
            keyword, _, text = body.partition(b"\0")
            chunks[keyword.decode("latin-1")] = text.decode("latin-1")
        elif kind == b"iTXt":
            keyword, _, rest = body.partition(b"\0")
            compressed, text = rest[0], rest[2:].split(b"\0", 2)[2]  # after flag, method, language, keyword
            chunks[keyword.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
        offset += 12 + length
    return chunks
