"""Reading clips from video files with PyAV, decoding only the frames a clip needs.

A clip read seeks to the keyframe before its first frame, decodes forward to its last frame and
stops, with PyAV's frame threading (``benchmarks/data_throughput.py`` compares it with a raw
seek-and-decode loop and with pytorchvideo's ``EncodedVideo``). Files are opened per call, so
the functions are safe in DataLoader workers (no container crosses a fork). A video held in
memory (:class:`EncodedVideo`, e.g. an item of a litdata shard) reads exactly like its file.

Frame indices are positions on the stream's time line: a frame with timestamp ``pts`` has index
``round((pts - start_time) * time_base * fps)``, with ``fps`` the stream's average rate. For a
constant-rate stream that is exactly its decode-order count (frame 0 is the first frame, whatever
the stream's ``start_time``), so clips agree with a plain decode of every frame. For variable
timestamps it gives the frame on screen at time ``index / fps``: the first frame whose index
rounds to the wanted one, else (a gap in the timestamps) the frame before it.

Frames come out full size, or shaped by a per-clip :class:`ResizeCrop` (what a transform's
``plan`` gives): FFmpeg's scaler (swscale) converts each decoded frame to RGB directly at the
planned size, then a uint8 window is cut and mirrored. This is cheaper than converting the full
frame and resizing floats, and keeps batches uint8 (normalisation happens on the device, see
:func:`data_modules.transforms.to_model_input`). The scaler's filter is :data:`INTERPOLATION`.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import av.error
import numpy as np
import torch
from av.video.reformatter import Interpolation, VideoReformatter

logger = logging.getLogger(__name__)

# Where a seek may land late (MPEG-TS, dts-indexed B-frame streams), retry this many seconds
# earlier before falling back to a decode from the start of the file.
_SEEK_BACKOFF_S = (0.0, 2.0, 10.0)
# In read_clips, wanted frames closer than this are reached by decoding through the gap rather
# than by a new seek: a seek re-decodes from a keyframe, and real footage has one every 1-10 s.
_DECODE_THROUGH_S = 1.0

INTERPOLATION = Interpolation.BILINEAR
"""swscale's filter for planned sizes. Its bilinear filter widens with the shrink factor, so it
averages every source pixel like ``F.interpolate(..., antialias=True)``, the host-side resize it
replaced: on RGB frames the two differ by 0.25-0.9 grey levels on average, swscale's area
filter by 0.25-1.9 (textured and generated frames, 16-128 px; see
``tests/data_modules/test_video_reader.py``)."""


class VideoDecodeError(RuntimeError):
    """A video file that cannot be read: missing, empty, not a video, truncated or corrupt.

    Attributes:
        path: the file.
        reason: what went wrong, in words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path}: {reason}")


class EncodedVideo(NamedTuple):
    """A video file's bytes held in memory (e.g. an item of a litdata shard), readable like a path.

    Attributes:
        data: the whole encoded file (container and streams), as written to disk.
        name: what errors and warnings call it (e.g. the source path and the shard it came from).
    """

    data: bytes
    name: str


VideoSource = str | Path | EncodedVideo
"""Where a video is read from: a file path, or an :class:`EncodedVideo` in memory."""


class ResizeCrop(NamedTuple):
    """How to shape one clip's frames: scale, then cut a square window, then maybe mirror.

    Every frame of the clip is scaled as a whole to ``height x width`` (aspect ratio as
    planned), then the ``size x size`` window at ``(top, left)`` is kept, mirrored left-right
    when ``flip``. Transforms compute one per clip (``VideoTransform.plan``) before decoding.

    Attributes:
        height: scaled frame height.
        width: scaled frame width.
        top: first row of the window in the scaled frame.
        left: first column of the window in the scaled frame.
        size: window height and width.
        flip: mirror the window left-right.
    """

    height: int
    width: int
    top: int
    left: int
    size: int
    flip: bool = False

    def check(self) -> None:
        """Raises ValueError if the window does not lie inside the scaled frame."""
        if (
            min(self.height, self.width, self.size) < 1
            or self.top < 0
            or self.left < 0
            or self.top + self.size > self.height
            or self.left + self.size > self.width
        ):
            raise ValueError(f"{self}: the window is not inside the scaled frame")

    def cut(self, frames: np.ndarray) -> np.ndarray:
        """The window (mirrored when ``flip``) of scaled frames ``(..., height, width, 3)``."""
        window = frames[..., self.top : self.top + self.size, self.left : self.left + self.size, :]
        return window[..., ::-1, :] if self.flip else window  # (..., size, size, 3)


def shape_frames(frames: torch.Tensor, plan: ResizeCrop | None) -> torch.Tensor:
    """Applies a :class:`ResizeCrop` to frames held in memory, with the reader's scaler.

    Args:
        frames: uint8 RGB ``(T, H, W, 3)``.
        plan: the scale and window; None returns ``frames`` as they are.

    Returns:
        uint8 ``(T, size, size, 3)`` (contiguous), or ``frames`` when ``plan`` is None.

    Raises:
        ValueError: ``frames`` is not uint8 ``(T, H, W, 3)`` or the plan's window is outside.
    """
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if plan is None:
        return frames
    plan.check()
    scaler = _Scaler()
    scaled = [
        scaler.rgb(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24"), *plan[:2])
        for f in frames.numpy()
    ]
    return torch.from_numpy(np.ascontiguousarray(plan.cut(np.stack(scaled))))  # (T, s, s, 3)


class _Scaler:
    """Converts frames to RGB at given sizes, swscale converting and scaling in one pass.

    One reformatter per output size keeps its swscale context (filters, tables) from frame to
    frame: ``VideoFrame.to_ndarray(width=..., height=...)`` builds a new one at every call,
    which costs more than the scaling itself. One thread: DataLoader workers are the
    parallelism. At a frame's own size the filter does not matter (same conversion).
    """

    def __init__(self) -> None:
        self.reformatters: dict[tuple[int, int], VideoReformatter] = {}

    def rgb(self, frame: av.VideoFrame, height: int, width: int) -> np.ndarray:
        """``frame`` as uint8 RGB ``(height, width, 3)``."""
        reformatter = self.reformatters.setdefault((height, width), VideoReformatter())
        return reformatter.reformat(
            frame, width, height, "rgb24", interpolation=INTERPOLATION, threads=1
        ).to_ndarray()


class VideoInfo(NamedTuple):
    """What a clip sampler needs to know about a video.

    Attributes:
        num_frames: frame count (see :func:`probe_video` for where it comes from).
        fps: the video stream's average frame rate.
        height: frame height in pixels.
        width: frame width in pixels.
        duration: seconds, from the stream or container header, else ``num_frames / fps``.
    """

    num_frames: int
    fps: float
    height: int
    width: int
    duration: float


def probe_video(path: VideoSource) -> VideoInfo:
    """Reads a video's frame count, rate and size without decoding any frame.

    The frame count is the container's own count when it stores one (MP4 sample tables, the AVI
    header). Containers without one (Matroska/WebM, MPEG-TS) get a count of the stream's packets,
    read without decoding (about 2 ms for 10 s of video): ``duration * fps`` would be cheaper but
    overstates the count whenever the container duration includes a longer audio track, and a
    sampler would then ask for frames that do not exist.

    Args:
        path: the video file, or its bytes (:class:`EncodedVideo`).

    Returns:
        The :class:`VideoInfo`.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video or has no frames.
    """
    with OpenVideo(path, thread_type=None) as video:
        return video.probe()


def read_clip(
    path: VideoSource,
    frame_indices: Sequence[int],
    thread_type: str | None = "AUTO",
    tail_tolerance: int = 2,
    plan: ResizeCrop | None = None,
) -> torch.Tensor:
    """Decodes the frames at ``frame_indices`` of one video.

    Args:
        path: the video file, or its bytes (:class:`EncodedVideo`).
        frame_indices: frame indices (>= 0) in any order, repeats allowed.
        thread_type: FFmpeg decoder threading (``"AUTO"``, ``"FRAME"``, ``"SLICE"``), or None
            for one thread (e.g. when many DataLoader workers already use every core).
        tail_tolerance: how many frames past the last decodable frame may be asked for; they
            repeat the last frame (pad by repetition), because container frame counts can
            overstate the real count by a frame or two. Asking further raises, since the file
            is then truncated (or the index is wrong).
        plan: scale and window of the frames (:class:`ResizeCrop`); None: full size.

    Returns:
        uint8 RGB frames ``(T, H, W, 3)`` (``(T, size, size, 3)`` with a plan),
        ``T = len(frame_indices)``, in the order asked.

    Raises:
        ValueError: an index is negative, ``frame_indices`` is empty or the plan's window is
            not inside its scaled frame.
        VideoDecodeError: the file is missing, empty, not a video, truncated or corrupt.
    """
    return read_clips(path, [frame_indices], thread_type, tail_tolerance, [plan])[0]


def read_clips(
    path: VideoSource,
    clips: Sequence[Sequence[int]],
    thread_type: str | None = "AUTO",
    tail_tolerance: int = 2,
    plans: Sequence[ResizeCrop | None] | None = None,
) -> list[torch.Tensor]:
    """Decodes several clips of one video, opening it once and decoding each frame once.

    The union of the clips' frames is split into runs whose gaps are under a second; each run is
    one seek and one forward decode, so overlapping or nearby clips (25 test clips of a 10 s
    video) cost a single pass.

    Args:
        path: the video file, or its bytes (:class:`EncodedVideo`).
        clips: one index sequence per clip (see :func:`read_clip`).
        thread_type: decoder threading, as in :func:`read_clip`.
        tail_tolerance: frames past the end that repeat the last frame, as in :func:`read_clip`.
        plans: one :class:`ResizeCrop` (or None: full size) per clip; None: all full size. A
            frame shared by clips is decoded once and scaled once per distinct scaled size.

    Returns:
        One uint8 tensor ``(T_k, H, W, 3)`` (``(T_k, size, size, 3)`` with a plan) per clip.

    Raises:
        ValueError: an index is negative, a clip is empty, ``plans`` has another length than
            ``clips`` or a plan's window is not inside its scaled frame.
        VideoDecodeError: the file is missing, empty, not a video, truncated or corrupt.
    """
    with OpenVideo(path, thread_type) as video:
        return video.decode_clips(clips, tail_tolerance, plans)


def read_sampled_clips(
    path: VideoSource,
    choose_clips: Callable[[VideoInfo], Sequence[Sequence[int]]],
    thread_type: str | None = "AUTO",
    tail_tolerance: int = 2,
    plan_clip: Callable[[VideoInfo], ResizeCrop | None] | None = None,
) -> list[torch.Tensor]:
    """Probes a video and decodes the clips that ``choose_clips`` picks, opening the file once.

    The same as ``read_clips(path, choose_clips(probe_video(path)))`` without the second open:
    the way to read clips whose frame indices depend on the video's length or rate. With
    ``plan_clip``, each clip is shaped by ``plan_clip(info)``, called once per clip in order
    after ``choose_clips`` (so a shared random generator draws the clips first, then each
    clip's crop and flip).

    Args:
        path: the video file, or its bytes (:class:`EncodedVideo`).
        choose_clips: maps the video's :class:`VideoInfo` to one index sequence per clip (see
            :func:`read_clip`), e.g. a clip sampler's frame indices for ``info.num_frames``.
        thread_type: decoder threading, as in :func:`read_clip`.
        tail_tolerance: frames past the end that repeat the last frame, as in :func:`read_clip`.
        plan_clip: maps the video's :class:`VideoInfo` to a clip's :class:`ResizeCrop` (e.g. a
            transform's ``plan``); None: full-size frames.

    Returns:
        One uint8 tensor ``(T_k, H, W, 3)`` (``(T_k, size, size, 3)`` with a plan) per clip.

    Raises:
        ValueError: a chosen index is negative, a chosen clip is empty or a plan's window is
            not inside its scaled frame.
        VideoDecodeError: the file is missing, empty, not a video, has no frames, or is
            truncated or corrupt.
    """
    with OpenVideo(path, thread_type) as video:
        info = video.probe()
        clips = choose_clips(info)
        plans = None if plan_clip is None else [plan_clip(info) for _ in clips]
        return video.decode_clips(clips, tail_tolerance, plans)


def _split_runs(indices: list[int], max_gap: int) -> list[list[int]]:
    """Splits sorted indices where consecutive ones are more than ``max_gap`` apart."""
    runs = [[indices[0]]]
    for index in indices[1:]:
        if index - runs[-1][-1] > max_gap:
            runs.append([index])
        else:
            runs[-1].append(index)
    return runs


class OpenVideo:
    """An open container and its first video stream, with errors turned into VideoDecodeError.

    The reader's functions use it; so does anything else that decodes a video file or
    :class:`EncodedVideo` (``data_modules.prepare``), to refuse the same bad inputs with the same
    reasons. A context manager that closes the container.

    Args:
        source: the video file, or its bytes.
        thread_type: decoder threading, as in :func:`read_clip` (None: PyAV's default).

    Attributes:
        path: the file, or the :class:`EncodedVideo`'s name (what errors name).
        container: the open PyAV container.
        stream: its first video stream.
        fps: the stream's average frame rate.

    Raises:
        VideoDecodeError: the source is missing, empty, not a regular file, cannot be opened,
            has no video stream, or no frame rate or time base.
    """

    def __init__(self, source: VideoSource, thread_type: str | None) -> None:
        self.thread_type = thread_type
        self.scaler = _Scaler()
        self.data: bytes | None = None
        if isinstance(source, EncodedVideo):
            self.path = source.name
            self.data = source.data
            if not self.data:
                raise VideoDecodeError(self.path, "empty file (0 bytes)")
        else:
            self.path = str(source)
            path = Path(source)
            if not path.exists():
                raise VideoDecodeError(path, "file not found")
            if not path.is_file():
                raise VideoDecodeError(path, "not a regular file")
            if path.stat().st_size == 0:
                raise VideoDecodeError(path, "empty file (0 bytes)")
        self._open()

    def _open(self) -> None:
        try:
            self.container = av.open(self.path if self.data is None else io.BytesIO(self.data))
        except (av.error.FFmpegError, OSError) as error:
            raise VideoDecodeError(self.path, f"cannot open: {error}") from error
        if not self.container.streams.video:
            kinds = sorted({s.type for s in self.container.streams}) or ["none"]
            self.container.close()
            raise VideoDecodeError(self.path, f"no video stream (streams: {', '.join(kinds)})")
        self.stream = self.container.streams.video[0]
        if self.thread_type is not None:
            self.stream.thread_type = self.thread_type
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        if not rate or self.stream.time_base is None:
            self.container.close()
            raise VideoDecodeError(self.path, "video stream has no frame rate or time base")
        self.fps = Fraction(rate)
        self.time_base = Fraction(self.stream.time_base)
        self.start_pts = self.stream.start_time or 0
        # A fresh container decodes from the first frame without a seek.
        self._fresh = True

    def __enter__(self) -> OpenVideo:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.container.close()

    def probe(self) -> VideoInfo:
        num_frames = self.stream.frames
        if num_frames <= 0:
            # Counting packets reads the container to its end: a decode from frame 0 must reopen.
            self._fresh = False
            try:
                num_frames = sum(1 for p in self.container.demux(self.stream) if p.size)
            except av.error.FFmpegError as error:
                raise VideoDecodeError(self.path, f"cannot demux: {error}") from error
        if num_frames <= 0:
            raise VideoDecodeError(self.path, "video stream has no frames")
        if self.stream.duration is not None:
            duration = float(self.stream.duration * self.time_base)
        elif self.container.duration is not None:
            duration = self.container.duration / av.time_base
        else:
            duration = float(num_frames / self.fps)
        fps = float(self.fps)
        return VideoInfo(num_frames, fps, self.stream.height, self.stream.width, duration)

    def decode_clips(
        self,
        clips: Sequence[Sequence[int]],
        tail_tolerance: int,
        plans: Sequence[ResizeCrop | None] | None = None,
    ) -> list[torch.Tensor]:
        """Decodes each frame of the clips once, one seek per run of nearby frames."""
        if plans is None:
            plans = [None] * len(clips)
        if len(plans) != len(clips):
            raise ValueError(f"{len(plans)} plans for {len(clips)} clips of {self.path}")
        for clip, plan in zip(clips, plans, strict=True):
            if len(clip) == 0:
                raise ValueError(f"empty frame index list for {self.path}")
            if min(clip) < 0:
                raise ValueError(f"negative frame index {min(clip)} for {self.path}")
            if plan is not None:
                plan.check()
        # The RGB sizes each frame is needed at (None: full size).
        sizes: dict[int, set[tuple[int, int] | None]] = {}
        for clip, plan in zip(clips, plans, strict=True):
            size = None if plan is None else (plan.height, plan.width)
            for i in clip:
                sizes.setdefault(int(i), set()).add(size)
        wanted = sorted(sizes)
        max_gap = max(1, round(self.fps * _DECODE_THROUGH_S))
        frames: dict[tuple[int, tuple[int, int] | None], np.ndarray] = {}
        for run in _split_runs(wanted, max_gap):
            frames.update(self.decode_run(run, sizes, tail_tolerance))
        out = []
        for clip, plan in zip(clips, plans, strict=True):
            if plan is None:
                out.append(np.stack([frames[int(i), None] for i in clip]))  # (T, H, W, 3)
            else:
                scaled = (plan.height, plan.width)
                window = [plan.cut(frames[int(i), scaled]) for i in clip]
                out.append(np.stack(window))  # (T, size, size, 3)
        return [torch.from_numpy(clip) for clip in out]  # (T_k, H, W, 3) uint8 each

    def decode_run(
        self,
        wanted: list[int],
        sizes: dict[int, set[tuple[int, int] | None]],
        tail_tolerance: int,
    ) -> dict[tuple[int, tuple[int, int] | None], np.ndarray]:
        """Decodes the sorted, unique frame indices ``wanted`` in one forward pass, each in RGB
        at its ``sizes`` (None: full size); keys are ``(index, size)``."""
        out: dict[tuple[int, tuple[int, int] | None], np.ndarray] = {}

        def keep(index: int, frame: _RGB) -> None:
            for size in sizes[index]:
                out[index, size] = frame.at(size)

        j = 0
        prev: _RGB | None = None
        last_index = -1
        try:
            for index, decoded in self._frames_from(wanted[0]):
                frame = _RGB(decoded, self.stream.height, self.stream.width, self.scaler)
                # Wanted frames that this one jumps over (timestamp gaps) show the previous one;
                # with no previous one (the file's first frame starts late) they show this one.
                while j < len(wanted) and wanted[j] < index:
                    keep(wanted[j], frame if prev is None else prev)
                    j += 1
                if j < len(wanted) and wanted[j] == index:
                    keep(wanted[j], frame)
                    j += 1
                if j == len(wanted):
                    return out
                prev, last_index = frame, index
        except av.error.FFmpegError as error:
            raise VideoDecodeError(self.path, f"decoding failed: {error}") from error
        if prev is None:
            raise VideoDecodeError(self.path, f"no frame decoded at or after frame {wanted[0]}")
        if wanted[-1] - last_index > tail_tolerance:
            raise VideoDecodeError(
                self.path,
                f"stream ends at frame {last_index} but frame {wanted[j]} was asked for "
                f"(truncated file or index out of range; header frame count "
                f"{self.stream.frames or 'absent'})",
            )
        logger.debug("%s: frames %s repeat the last frame %d", self.path, wanted[j:], last_index)
        for index in wanted[j:]:
            keep(index, prev)
        return out

    def _frames_from(self, first: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Yields ``(index, frame)`` in order, starting at or before frame ``first``."""
        for backoff_s in _SEEK_BACKOFF_S:
            # Frames whose index rounds to `first` start at `first - 0.5`.
            target = first - 0.5 - backoff_s * self.fps
            if target <= 0:
                break
            offset = self.start_pts + math.floor(target / self.fps / self.time_base)
            self.container.seek(offset, backward=True, any_frame=False, stream=self.stream)
            self._fresh = False
            frames = self._indexed(self.container.decode(self.stream), after_seek=True)
            head = next(frames, None)
            if head is not None and head[0] <= first:
                yield head
                yield from frames
                return
            logger.debug("%s: seek for frame %d landed late, seeking earlier", self.path, first)
        if not self._fresh:
            # Reopening is the one way to the first frame that no demuxer's seek quirks affect.
            self.container.close()
            self._open()
        self._fresh = False
        yield from self._indexed(self.container.decode(self.stream), after_seek=False)

    def _indexed(
        self, frames: Iterator[av.VideoFrame], after_seek: bool
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Attaches frame indices; a frame without a timestamp follows its predecessor."""
        previous = -1
        for frame in frames:
            if frame.pts is not None:
                index = round((frame.pts - self.start_pts) * self.time_base * self.fps)
            elif after_seek and previous < 0:
                return  # Position unknown after a seek: the caller falls back to the start.
            else:
                index = previous + 1
            yield index, frame
            previous = index


class _RGB:
    """A decoded frame, converted to RGB once per size asked for."""

    def __init__(self, frame: av.VideoFrame, height: int, width: int, scaler: _Scaler) -> None:
        self.frame = frame
        self.full = (height, width)
        self.scaler = scaler
        self.arrays: dict[tuple[int, int] | None, np.ndarray] = {}

    def at(self, size: tuple[int, int] | None) -> np.ndarray:
        """RGB ``(H, W, 3)`` uint8 at ``size`` (height, width); None: the stream's size."""
        if size not in self.arrays:
            # A fixed full size keeps np.stack working if a stream changes resolution midway.
            self.arrays[size] = self.scaler.rgb(self.frame, *(self.full if size is None else size))
        return self.arrays[size]
