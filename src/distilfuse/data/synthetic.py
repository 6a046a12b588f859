"""Procedural infrared/visible pairs: the demo scene and test fixtures, made in code."""

from __future__ import annotations

import numpy as np


def _disc(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _person(yy: np.ndarray, xx: np.ndarray, cx: float, foot: float, height: float) -> np.ndarray:
    head = _disc(yy, xx, foot - 0.9 * height, cx, 0.1 * height, 0.08 * height)
    body = (np.abs(xx - cx) <= 0.13 * height) & (yy >= foot - 0.8 * height) & (yy <= foot - 0.35 * height)
    legs = (np.abs(np.abs(xx - cx) - 0.06 * height) <= 0.045 * height) & (yy > foot - 0.35 * height) & (yy <= foot)
    return head | body | legs


def demo_scene(height: int = 240, width: int = 320, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A night street: warm figures and a vehicle in a cool infrared scene, and textured
    buildings in low light in the visible (RGB) image. Returns uint8 (H,W) IR and (H,W,3) visible.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    horizon = 0.55 * height

    # Visible: dim sky gradient, buildings with lit windows and brick texture, a grey road.
    sky = 25 + 20 * (yy / height)
    vis = np.stack([sky * 0.8, sky * 0.9, sky * 1.3], axis=-1)
    buildings = np.zeros((height, width), dtype=bool)
    x = 0
    while x < width:
        bw = int(rng.integers(width // 10, width // 5))
        top = int(rng.integers(int(0.15 * height), int(0.4 * height)))
        block = (xx >= x) & (xx < x + bw) & (yy >= top) & (yy < horizon)
        buildings |= block
        shade = rng.uniform(40, 70)
        bricks = 8 * ((np.floor(yy / 4) + np.floor(xx / 9 + 0.5 * (np.floor(yy / 4) % 2))) % 2)
        for c, tint in enumerate((1.0, 0.85, 0.7)):
            vis[..., c] = np.where(block, (shade + bricks) * tint, vis[..., c])
        windows = block & ((yy - top) % 14 < 7) & ((xx - x) % 12 < 6)
        lit = windows & (((np.floor((yy - top) / 14) + np.floor((xx - x) / 12)) * 7 % 5) < 2)
        vis[lit] = (150, 130, 70)
        x += bw
    road = yy >= horizon
    vis[road] = np.stack([55 + 10 * (yy[road] - horizon) / height] * 3, axis=-1)
    lane = road & (np.abs(xx - 0.5 * width) < 0.01 * width) & ((xx + 2 * yy) % 24 < 12)
    vis[lane] = 160
    vis += rng.normal(0.0, 4.0, vis.shape)

    # Infrared: cool background with warm road, hot pedestrians and a car with hot engine and wheels.
    ir = 40 + 15 * (yy / height) + np.where(buildings, 20, 0) + np.where(road, 25, 0)
    foot = 0.9 * height
    for cx, h in ((0.18 * width, 0.35 * height), (0.3 * width, 0.3 * height)):
        person = _person(yy, xx, cx, foot, h)
        ir = np.where(person, 200 + 20 * rng.random((height, width)), ir)
        vis[person] = vis[person] * 0.6  # people are barely visible in the dark
    car = (xx >= 0.55 * width) & (xx <= 0.85 * width) & (yy >= 0.68 * height) & (yy <= 0.82 * height)
    cab = (xx >= 0.62 * width) & (xx <= 0.78 * width) & (yy >= 0.6 * height) & (yy < 0.68 * height)
    ir = np.where(car | cab, 150, ir)
    ir = np.where(car & (xx >= 0.78 * width), 230, ir)  # engine
    for wx in (0.62, 0.78):
        ir = np.where(_disc(yy, xx, 0.83 * height, wx * width, 0.04 * height, 0.04 * height), 190, ir)
    vis[car | cab] = (35, 35, 45)
    ir += rng.normal(0.0, 3.0, ir.shape)
    return (
        np.clip(np.rint(ir), 0, 255).astype(np.uint8),
        np.clip(np.rint(vis), 0, 255).astype(np.uint8),
    )
