"""Draws the Teams app icons, color.png and outline.png, with the standard library only.

The glyph is two overlapping speech bubbles (an earlier conversation behind the current one),
the front one holding three dots. Run `python appManifest/make_icons.py` after changing it and
commit the PNGs. Only arithmetic and comparisons are used, so the pixels are the same on every
machine; tests/app_manifest checks that the committed icons match what this script draws.
"""

from __future__ import annotations

import argparse
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

# Must equal accentColor in manifest.json: Teams shows the colour icon on this background.
ACCENT = (0x4F, 0x5B, 0xD5)
WHITE = (0xFF, 0xFF, 0xFF)
BACK_BUBBLE_OPACITY = 0.55  # the earlier conversation, a tint of white over the accent
SAMPLES = 4  # per axis and pixel, for anti-aliased edges

Rgba = tuple[float, float, float, float]  # premultiplied, 0..1
Painter = Callable[[float, float], Rgba]


def _in_rounded_rect(
    u: float, v: float, left: float, top: float, right: float, bottom: float, radius: float
) -> bool:
    cx = min(max(u, left + radius), right - radius)
    cy = min(max(v, top + radius), bottom - radius)
    return (u - cx) * (u - cx) + (v - cy) * (v - cy) <= radius * radius


def _in_triangle(
    u: float, v: float, a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]
) -> bool:
    def side(p: tuple[float, float], q: tuple[float, float]) -> float:
        return (q[0] - p[0]) * (v - p[1]) - (q[1] - p[1]) * (u - p[0])

    s1, s2, s3 = side(a, b), side(b, c), side(c, a)
    return (s1 >= 0 and s2 >= 0 and s3 >= 0) or (s1 <= 0 and s2 <= 0 and s3 <= 0)


def _in_circle(u: float, v: float, cx: float, cy: float, radius: float) -> bool:
    return (u - cx) * (u - cx) + (v - cy) * (v - cy) <= radius * radius


# The glyph, in a unit square: (0, 0) top left, (1, 1) bottom right.
_FRONT = (0.0, 0.28, 0.76, 0.86, 0.15)  # left, top, right, bottom, corner radius
_FRONT_TAIL = ((0.10, 0.80), (0.32, 0.80), (0.04, 1.0))
_BACK = (0.30, 0.0, 1.0, 0.58, 0.15)
_BACK_TAIL = ((0.72, 0.52), (0.92, 0.52), (0.97, 0.72))
_GAP = 0.06  # clear space between the bubbles
_DOTS = ((0.19, 0.57), (0.38, 0.57), (0.57, 0.57))
_DOT_RADIUS = 0.065


def _glyph_part(u: float, v: float) -> str:
    """Which part of the glyph a point falls in: 'dot', 'front', 'back' or ''."""
    left, top, right, bottom, radius = _FRONT
    in_front = _in_rounded_rect(u, v, left, top, right, bottom, radius) or _in_triangle(
        u, v, *_FRONT_TAIL
    )
    if in_front:
        if any(_in_circle(u, v, x, y, _DOT_RADIUS) for x, y in _DOTS):
            return "dot"
        return "front"
    near_front = _in_rounded_rect(
        u, v, left - _GAP, top - _GAP, right + _GAP, bottom + _GAP, radius + _GAP
    )
    if near_front:
        return ""
    if _in_rounded_rect(u, v, *_BACK) or _in_triangle(u, v, *_BACK_TAIL):
        return "back"
    return ""


def _opaque(rgb: tuple[int, int, int], opacity: float = 1.0) -> Rgba:
    return (rgb[0] / 255 * opacity, rgb[1] / 255 * opacity, rgb[2] / 255 * opacity, opacity)


def _over(top: Rgba, bottom: Rgba) -> Rgba:
    keep = 1.0 - top[3]
    return (
        top[0] + bottom[0] * keep,
        top[1] + bottom[1] * keep,
        top[2] + bottom[2] * keep,
        top[3] + bottom[3] * keep,
    )


def color_painter(size: int) -> Painter:
    """Full-colour icon: white glyph on the accent colour, inside Teams' central safe area."""
    background = _opaque(ACCENT)
    colours = {
        "dot": background,
        "front": _opaque(WHITE),
        "back": _over(_opaque(WHITE, BACK_BUBBLE_OPACITY), background),
        "": background,
    }
    margin, extent = size * 0.22, size * 0.56

    def paint(x: float, y: float) -> Rgba:
        return colours[_glyph_part((x - margin) / extent, (y - margin) / extent)]

    return paint


def outline_painter(size: int) -> Painter:
    """Outline icon: the same glyph in white on transparent, dots cut out."""
    white, clear = _opaque(WHITE), (0.0, 0.0, 0.0, 0.0)
    colours = {"dot": clear, "front": white, "back": white, "": clear}
    margin = size / 16
    extent = size - 2 * margin

    def paint(x: float, y: float) -> Rgba:
        return colours[_glyph_part((x - margin) / extent, (y - margin) / extent)]

    return paint


def render(size: int, paint: Painter) -> list[list[tuple[int, int, int, int]]]:
    """Rows of straight (not premultiplied) 8-bit RGBA pixels."""
    rows: list[list[tuple[int, int, int, int]]] = []
    step = 1.0 / SAMPLES
    count = SAMPLES * SAMPLES
    for py in range(size):
        row: list[tuple[int, int, int, int]] = []
        for px in range(size):
            r = g = b = a = 0.0
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    sr, sg, sb, sa = paint(px + (sx + 0.5) * step, py + (sy + 0.5) * step)
                    r, g, b, a = r + sr, g + sg, b + sb, a + sa
            a /= count
            if a == 0.0:
                row.append((255, 255, 255, 0))  # white, so edges never darken when scaled
                continue
            row.append((_byte(r / count / a), _byte(g / count / a), _byte(b / count / a), _byte(a)))
        rows.append(row)
    return rows


def _byte(value: float) -> int:
    return min(255, max(0, int(value * 255 + 0.5)))


def encode_png(rows: list[list[tuple[int, int, int, int]]], *, alpha: bool) -> bytes:
    """An 8-bit RGBA (alpha=True) or RGB PNG, unfiltered rows, one IDAT chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width = len(rows), len(rows[0])
    raw = bytearray()
    for row in rows:
        raw.append(0)  # filter: none
        for pixel in row:
            raw.extend(pixel if alpha else pixel[:3])
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def draw_color_icon() -> list[list[tuple[int, int, int, int]]]:
    return render(192, color_painter(192))


def draw_outline_icon() -> list[list[tuple[int, int, int, int]]]:
    return render(32, outline_painter(32))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="where to write color.png and outline.png (default: next to this script)",
    )
    args = parser.parse_args(argv)
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "color.png").write_bytes(encode_png(draw_color_icon(), alpha=False))
    (out / "outline.png").write_bytes(encode_png(draw_outline_icon(), alpha=True))
    print(f"Wrote {out / 'color.png'} (192x192) and {out / 'outline.png'} (32x32)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
