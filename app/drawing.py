"""Digits drawn as the playground draws them: pen strokes in a unit square, painted as its canvas
paints them.

`STROKES` holds one way a person might draw each digit; `scribbles` draws each of them many
times with a person's variety (size, slant, position, a wobbly hand, a thicker or finer pen),
from a seed, so two seeds give two sets of drawings that share no drawing. `render` paints
strokes as the page's canvas does (280x280, dark ink on white, a round 32 px pen), and
`to_png` gives the bytes the page sends to `POST /predict/image`. The browser tests and
`bench/playground.py` draw the same strokes through real pointer events.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]
Stroke = list[Point]

CANVAS = 280  # the playground's canvas, in pixels
PEN = 32  # its pen's width
MARGIN = 0.05  # the share of the canvas left free on each side


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n=24) -> Stroke:
    """Points along an ellipse from `start` to `end` degrees (0 = right, 90 = down: screen axes)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in (start + (end - start) * i / n for i in range(n + 1))
    ]


# How a person might draw each digit: a few strokes, in a unit square (y grows downwards).
STROKES: dict[int, list[Stroke]] = {
    0: [arc(0.5, 0.5, 0.26, 0.38, -90, 270)],
    1: [[(0.38, 0.26), (0.52, 0.12), (0.52, 0.88)]],
    2: [arc(0.5, 0.32, 0.22, 0.18, 180, 360) + [(0.66, 0.5), (0.28, 0.88), (0.76, 0.88)]],
    3: [arc(0.48, 0.3, 0.2, 0.17, 200, 450) + arc(0.48, 0.67, 0.24, 0.2, -90, 160)],
    4: [[(0.6, 0.12), (0.24, 0.62), (0.78, 0.62)], [(0.62, 0.36), (0.62, 0.9)]],
    5: [[(0.72, 0.13), (0.33, 0.13), (0.3, 0.46)] + arc(0.48, 0.66, 0.23, 0.21, -120, 150)],
    6: [[(0.66, 0.12), (0.42, 0.32)] + arc(0.5, 0.66, 0.22, 0.22, 200, 560)],
    7: [[(0.24, 0.15), (0.76, 0.15), (0.42, 0.88)]],
    8: [arc(0.5, 0.3, 0.17, 0.17, 90, 450), arc(0.5, 0.68, 0.21, 0.2, -90, 270)],
    9: [arc(0.5, 0.32, 0.2, 0.19, 0, 360), [(0.7, 0.32), (0.64, 0.88)]],
}
# (scale, slant, shift): the same path smaller, leaning right, and off centre.
VARIANTS = [(1.0, 0.0, 0.0), (0.7, 0.0, 0.0), (1.0, 0.2, 0.0), (0.8, -0.15, 0.1), (0.6, 0.1, -0.15)]


def placed(stroke: Stroke, scale: float, slant: float, shift: float) -> Stroke:
    """A stroke scaled about the centre, slanted (x moves with height) and shifted sideways."""
    return [
        (0.5 + (x - 0.5) * scale + slant * (0.5 - y) * scale + shift, 0.5 + (y - 0.5) * scale)
        for x, y in stroke
    ]


@dataclass(frozen=True)
class Drawing:
    """One drawn digit: what it is, its strokes in the unit square, and the pen's width."""

    digit: int
    strokes: list[Stroke]
    pen: int = PEN


def wobbly(stroke: Stroke, rng: np.random.Generator, wobble: float) -> Stroke:
    """The stroke as an unsteady hand draws it: a smooth random drift along the path."""
    drift = np.cumsum(rng.normal(0, wobble, size=(len(stroke), 2)), axis=0)
    drift -= np.linspace(0, 1, len(stroke))[:, None] * drift[-1]  # ends where it aimed
    return [(x + dx, y + dy) for (x, y), (dx, dy) in zip(stroke, drift, strict=True)]


def scribbles(seed: int, per_digit: int) -> list[Drawing]:
    """`per_digit` drawings of each digit, as different people would draw them (from a seed)."""
    rng = np.random.default_rng(seed)
    drawings = []
    for _ in range(per_digit):
        for digit, strokes in STROKES.items():
            scale, slant = rng.uniform(0.6, 1.0), rng.uniform(-0.25, 0.25)
            shift = rng.uniform(-0.15, 0.15) * (1.1 - scale)
            drawn = [wobbly(placed(s, scale, slant, shift), rng, 0.006) for s in strokes]
            drawings.append(Drawing(digit, drawn, pen=int(rng.integers(20, 41))))
    return drawings


def render(strokes: list[Stroke], pen: int = PEN) -> Image.Image:
    """Paint strokes as the playground's canvas does: dark round-capped ink on white."""
    image = Image.new("L", (CANVAS, CANVAS), 255)
    paint = ImageDraw.Draw(image)
    size = CANVAS * (1 - 2 * MARGIN)
    for stroke in strokes:
        points = [(CANVAS * MARGIN + x * size, CANVAS * MARGIN + y * size) for x, y in stroke]
        paint.line(points, fill=0, width=pen, joint="curve")
        for x, y in (points[0], points[-1]):  # round caps, as the page's pen has
            paint.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=0)
    return image


def to_png(drawing: Drawing) -> bytes:
    """The PNG the playground would send for this drawing."""
    buffer = io.BytesIO()
    render(drawing.strokes, drawing.pen).save(buffer, format="PNG")
    return buffer.getvalue()
