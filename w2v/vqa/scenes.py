"""CLEVR-like scenes: a few shaded shapes on a grey floor, drawn with numpy.

A scene is a list of `SceneObject`s (shape, colour, size, centre). `place_objects`
puts each object in its own cell of a 4x4 grid, at a random spot inside the cell,
so objects never overlap and a small CNN whose cells match the grid can see each
object whole; `render` draws the scene as a (size, size, 3) uint8 image.
Everything is driven by a numpy Generator, so a seed fixes every pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synonyms import COLOURS, SHAPES, SIZES

MAX_OBJECTS = 6
GRID = 4  # cells per side; one object per cell at most
# Radii as a fraction of a cell's side; far enough apart that a small CNN can tell sizes.
RADIUS_FRACTION = {"small": 0.25, "large": 0.42}
RGB = {
    "red": (210, 40, 40),
    "blue": (45, 75, 215),
    "green": (40, 165, 65),
    "yellow": (225, 205, 45),
}
FLOOR_RGB = (128, 128, 128)


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    x: float  # centre, pixels from the left
    y: float  # centre, pixels from the top

    def matches(self, shape: str | None = None, colour: str | None = None, size: str | None = None) -> bool:
        """True when every given attribute equals this object's (None = any)."""
        return ((shape is None or shape == self.shape) and (colour is None or colour == self.colour)
                and (size is None or size == self.size))


def radius(size: str, image_size: int) -> float:
    return RADIUS_FRACTION[size] * image_size / GRID


def random_attributes(rng: np.random.Generator) -> tuple[str, str, str]:
    return (SHAPES[rng.integers(len(SHAPES))], COLOURS[rng.integers(len(COLOURS))],
            SIZES[rng.integers(len(SIZES))])


def place_objects(attributes: list[tuple[str, str, str]], image_size: int,
                  rng: np.random.Generator) -> list[SceneObject]:
    """Objects with the given (shape, colour, size), each in its own random grid cell."""
    if len(attributes) > GRID * GRID:
        raise ValueError(f"at most {GRID * GRID} objects fit, got {len(attributes)}")
    cell = image_size / GRID
    placed = []
    for (shape, colour, size), index in zip(attributes, rng.permutation(GRID * GRID)):
        row, col = divmod(int(index), GRID)
        slack = max(cell / 2 - radius(size, image_size) - 0.5, 0.0)  # how far it may move and stay inside
        x, y = (np.array([col, row]) + 0.5) * cell + rng.uniform(-slack, slack, size=2)
        placed.append(SceneObject(shape, colour, size, float(x), float(y)))
    return placed


def column(obj: SceneObject, image_size: int) -> int:
    return int(obj.x // (image_size / GRID))


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Pixels covered by a shape of radius r, given offsets from its centre."""
    if shape == "sphere":
        return dx ** 2 + dy ** 2 <= r ** 2
    if shape == "cube":
        half = 0.85 * r
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if shape == "cone":  # a triangle pointing up, as a cone seen from the side
        from_top = dy + r  # 0 at the apex, 2r at the base
        return (from_top >= 0) & (dy <= 0.8 * r) & (np.abs(dx) <= 0.55 * from_top)
    raise ValueError(f"unknown shape {shape!r}")


def render(objects: list[SceneObject], image_size: int, rng: np.random.Generator) -> np.ndarray:
    """The scene as a (image_size, image_size, 3) uint8 image, drawn back to front."""
    ys, xs = np.mgrid[0:image_size, 0:image_size].astype(np.float32)
    # A floor lit from above: slightly brighter at the top, with mild pixel noise.
    image = np.empty((image_size, image_size, 3), np.float32)
    image[:] = np.asarray(FLOOR_RGB, np.float32)
    image *= (1.05 - 0.1 * ys / image_size)[..., None]
    for obj in sorted(objects, key=lambda o: o.y):  # lower objects are nearer, drawn last
        r = radius(obj.size, image_size)
        dx, dy = xs - obj.x, ys - obj.y
        mask = _shape_mask(obj.shape, dx, dy, r)
        # Light from the upper left: shade each pixel by its offset, like a matte 3D object.
        shade = np.clip(1.0 - 0.25 * (dx + dy) / (2 * r), 0.7, 1.2)
        image[mask] = np.asarray(RGB[obj.colour], np.float32) * shade[mask][:, None]
    image += rng.normal(0.0, 4.0, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)
