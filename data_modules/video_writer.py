"""Writing real video files with PyAV (synthetic benchmark, test fixtures, benchmarks)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# AAC encodes 1024 samples per frame.
_AUDIO_CHUNK = 1024


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float | Fraction = 30.0,
    codec: str = "libx264",
    gop_size: int = 12,
    crf: int = 18,
    tune: str | None = "zerolatency",
    audio: np.ndarray | None = None,
    audio_rate: int = 44100,
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
        tune: x264 tuning; ``"zerolatency"`` (no B-frames, no look-ahead) encodes fast, None
            keeps x264's usual settings (B-frames, scene-cut keyframes), as downloaded footage
            has. Ignored by other codecs.
        audio: float32 samples ``(channels, S)`` (1 or 2 channels) written as an AAC track,
            interleaved with the video as in real files; None writes no audio.
        audio_rate: sample rate of ``audio``.

    Returns:
        The written path.
    """
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if audio is not None and (audio.ndim != 2 or audio.shape[0] not in (1, 2)):
        raise ValueError(f"audio must be (channels, samples) with 1 or 2 channels: {audio.shape}")
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
            options = {"crf": str(crf), "preset": "veryfast"}
            stream.options = options if tune is None else {**options, "tune": tune}
        if audio is not None:
            layout = "stereo" if audio.shape[0] == 2 else "mono"
            audio_stream = container.add_stream("aac", rate=audio_rate, layout=layout)
            num_samples, written = audio.shape[1], 0
        for i, frame in enumerate(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            if audio is None:
                continue
            # Audio up to the end of this video frame, so the packets interleave as in real files.
            while written < min(num_samples, (i + 1) * audio_rate // rate):
                samples = np.ascontiguousarray(audio[:, written : written + _AUDIO_CHUNK])
                piece = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
                piece.sample_rate, piece.pts = audio_rate, written
                container.mux(audio_stream.encode(piece))
                written += samples.shape[1]
        container.mux(stream.encode())
        if audio is not None:
            container.mux(audio_stream.encode())
    tmp.replace(path)
    return path
