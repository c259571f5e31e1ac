"""Settings of a synthetic cohort (:class:`SynthConfig`) and the named presets.

Every default of the generator lives here. A preset is a dict of overrides of the
dataclass defaults; :func:`make_config` applies a preset and then the caller's overrides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

#: Treatments that count as controls (label 0 at every recording).
CONTROL_TREATMENTS = ("saline", "control", "vehicle", "sham")

#: Relative effect of a treatment name on the latent intensity (unknown names: 1.0).
DOSE = {"saline": 0.0, "control": 0.0, "vehicle": 0.0, "sham": 0.0, "low": 0.5,
        "medium": 0.75, "high": 1.0, "lps": 1.0}

#: Hours after injection of each recording number (rec0/1 are before it).
RECORDING_HOURS = {0: -1.5, 1: -0.5, 2: 1.0, 3: 2.0, 4: 4.0}


@dataclass(frozen=True)
class SynthConfig:
    """Everything that shapes a synthetic cohort.

    Attributes:
        mice: number of animals (split evenly over ``treatments`` and ``cohorts``).
        treatments: treatment names; controls are those in ``CONTROL_TREATMENTS``.
        recordings: recording numbers per animal (labels from ``cfg.video.recording_labels``).
        seconds: length of each raw camera video in seconds (trims cut 1-3 s off).
        fps: frame rate of the raw videos.
        size: ``(width, height)`` of the frames in pixels (even numbers).
        head_len: head length (ear base to nose tip is ~1.2x this) in pixels, cohort 0.
        effect_size: latent intensity added for a treated animal after injection.
        base_intensity: latent intensity of an untreated animal.
        animal_sd: SD of the per-animal intensity offset.
        noise_sd, noise_tau: stationary SD and time constant (s) of the OU intensity noise.
        label_noise: fraction of animals whose ``label`` is flipped (``label_true`` is kept).
        cohorts: recording cohorts; each has its own lighting, contrast, zoom and dates.
        lighting: multiplies every cohort's camera gain (1 = the preset's lighting, 0.6 = a
            darker, lower-contrast room); ``head_len`` is the zoom.
        seed: the same seed gives identical keypoints, truth and frames.
        p_rear, p_look_away, p_blur, p_occluder: rates of the nuisance events (per second,
            except ``p_occluder``: probability that a video has a feeder bar in view).
        crf: x264 quality of the raw videos.
    """

    mice: int = 4
    treatments: tuple[str, ...] = ("saline", "high")
    recordings: tuple[int, ...] = (1, 4)
    seconds: float = 6.0
    fps: float = 15.0
    size: tuple[int, int] = (256, 192)
    head_len: float = 44.0
    effect_size: float = 0.5
    base_intensity: float = 0.15
    animal_sd: float = 0.06
    noise_sd: float = 0.07
    noise_tau: float = 2.0
    label_noise: float = 0.0
    cohorts: int = 1
    lighting: float = 1.0
    seed: int = 0
    p_rear: float = 0.05
    p_look_away: float = 0.06
    p_blur: float = 0.25
    p_occluder: float = 0.5
    crf: int = 18
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        w, h = self.size
        if w % 2 or h % 2:
            raise ValueError(f"size {w}x{h}: width and height must be even (H.264 yuv420p)")
        if w < 4 * self.head_len or h < 3 * self.head_len:
            raise ValueError(f"size {w}x{h} is too small for head_len {self.head_len} "
                             f"(need at least {4 * self.head_len:.0f}x{3 * self.head_len:.0f})")
        if w < 160 or h < 120:
            raise ValueError(f"size {w}x{h}: frames must be at least 160x120 (the frame stamp is 148 px wide)")
        if self.seconds * self.fps >= 2**16:
            raise ValueError(f"{self.seconds} s at {self.fps} fps: at most 65535 frames per video (frame stamp)")
        if self.mice < 1 or self.cohorts < 1:
            raise ValueError("mice and cohorts must be >= 1")
        if not self.treatments or not self.recordings:
            raise ValueError("need at least one treatment and one recording")
        if self.seconds < 3:
            raise ValueError(f"seconds={self.seconds}: raw videos need at least 3 s (trims cut 1-2 s)")
        if self.lighting <= 0:
            raise ValueError(f"lighting={self.lighting} must be > 0")
        if not 0 <= self.label_noise <= 1:
            raise ValueError(f"label_noise={self.label_noise} must be in [0, 1]")

    @property
    def crop_size(self) -> int:
        """Face crop side (source pixels) that fits the largest head of any cohort."""
        return int(round(2.4 * self.head_len * 1.08 / 8.0) * 8)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["treatments"], d["recordings"], d["size"] = list(self.treatments), list(self.recordings), list(self.size)
        return d


PRESETS: dict[str, dict] = {
    # Tests: 4 mice (2 saline + 2 high), recordings 1 and 4, 6 s at 15 fps, 256x192.
    "tiny": dict(mice=4, seconds=6.0, fps=15.0, size=(256, 192), head_len=44.0, cohorts=1),
    # Demo: 12 mice in 2 cohorts (3-fold CV by animal), 20 s videos at 15 fps, 320x240.
    "demo": dict(mice=12, seconds=20.0, fps=15.0, size=(320, 240), head_len=48.0, cohorts=2),
    # Benchmarks: 24 mice in 2 cohorts (5-fold CV by animal), 30 s videos, a subtler effect
    # (frame-level AU oracle well below 100%, so models and the oracle can be compared).
    "bench": dict(mice=24, seconds=30.0, fps=15.0, size=(320, 240), head_len=48.0, cohorts=2,
                  effect_size=0.3),
}


def make_config(preset: str = "tiny", **overrides) -> SynthConfig:
    """A :class:`SynthConfig` from a preset name plus overrides (``None`` values are ignored).

    Raises:
        ValueError: on an unknown preset or an unknown override name.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown synth preset {preset!r} (choose from {', '.join(PRESETS)})")
    names = {f.name for f in fields(SynthConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown synth option(s) {sorted(unknown)} (known: {sorted(names - {'extra'})})")
    values = dict(PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("treatments", "recordings", "size"):
        if key in values and isinstance(values[key], str):
            raise ValueError(f"{key} must be a list, got the string {values[key]!r}")
        if key in values:
            values[key] = tuple(values[key])
    values["recordings"] = tuple(int(r) for r in values.get("recordings", SynthConfig.recordings))
    if "size" in overrides and overrides["size"] is not None and "head_len" not in overrides:
        w, h = values["size"]  # the mouse scales with the frame
        pw, ph = PRESETS[preset].get("size", SynthConfig.size)
        values["head_len"] = PRESETS[preset].get("head_len", SynthConfig.head_len) * min(w / pw, h / ph)
    return replace(SynthConfig(), **values)
