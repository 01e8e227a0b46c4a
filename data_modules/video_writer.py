"""Writing real video files with PyAV (synthetic benchmark, test fixtures, benchmarks)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float | Fraction = 30.0,
    codec: str = "libx264",
    gop_size: int = 12,
    crf: int = 18,
) -> Path:
    """Encodes ``frames`` into a video file, atomically (temp file, then rename).

    Args:
        path: output file; its suffix picks the container (``.mp4``, ``.avi``, ``.mkv``).
        frames: uint8 RGB frames of shape ``(T, H, W, 3)``; H and W must be even for H.264.
        fps: frame rate written in the stream.
        codec: PyAV encoder name (``libx264``, ``mpeg4``, ...).
        gop_size: frames between keyframes; real footage has ~1-10 s, so a seek decodes from
            the keyframe before the wanted frame.
        crf: H.264 constant rate factor (lower is higher quality); ignored by other codecs.

    Returns:
        The written path.
    """
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    _, height, width, _ = frames.shape
    with av.open(str(tmp), mode="w") as container:
        # PyAV wants an int or a Fraction; str() keeps 29.97 as 2997/100, not a float's binary.
        rate = fps if isinstance(fps, Fraction) else Fraction(str(fps))
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop_size
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    tmp.replace(path)
    return path
