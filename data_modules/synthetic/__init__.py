"""SyntheticActions: the embedded zero-shot benchmark of colour x shape x motion compositions.

Every class is a composition such as ``"red square moving left"``; the default vocabulary gives
5 colours x 4 shapes x 6 motions = 120 classes. A seeded split holds out compositions as unseen
classes while every colour, shape and motion still occurs among the seen ones, so an unseen class
("blue circle growing") is reachable only through the words of its name.

- :mod:`~data_modules.synthetic.spec`: the vocabulary, the class names, the unseen split and
  :class:`SyntheticSpec`, every parameter of a benchmark (its defaults are the benchmark);
- :mod:`~data_modules.synthetic.render`: the rendering rules (pure: spec and class in, frames
  out);
- :mod:`~data_modules.synthetic.cache`: the generated folder (H.264 files and a manifest, keyed
  by the spec and :data:`BENCHMARK_VERSION`), resumed when interrupted.
"""

from __future__ import annotations

from data_modules.synthetic.cache import (
    BENCHMARK_VERSION,
    GENERATOR_VERSION,
    MANIFEST_NAME,
    SyntheticManifest,
    SyntheticVideo,
    default_cache_dir,
    generate_synthetic_actions,
)
from data_modules.synthetic.render import render_synthetic_video, render_video, video_seed
from data_modules.synthetic.spec import (
    COLOURS,
    MIRRORED_MOTIONS,
    MOTIONS,
    SHAPES,
    SyntheticSpec,
    parse_class_name,
    split_unseen,
    synthetic_class_names,
)

__all__ = [
    "BENCHMARK_VERSION",
    "COLOURS",
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "MIRRORED_MOTIONS",
    "MOTIONS",
    "SHAPES",
    "SyntheticManifest",
    "SyntheticSpec",
    "SyntheticVideo",
    "default_cache_dir",
    "generate_synthetic_actions",
    "parse_class_name",
    "render_synthetic_video",
    "render_video",
    "split_unseen",
    "synthetic_class_names",
    "video_seed",
]
