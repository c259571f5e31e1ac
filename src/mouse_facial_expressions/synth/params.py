"""Settings of a synthetic cohort (:class:`SynthConfig`) and the named presets.

Every default of the generator lives here. A preset is a dict of overrides of the
dataclass defaults; :func:`make_config` applies a preset and then the caller's overrides.
"""

from __future__ import annotations

import math
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
            darker, lower-contrast room); ``head_len`` (times ``zoom``) sets the size of the mouse.
        seed: the same seed gives identical keypoints, truth and frames.
        p_rear, p_look_away, p_blur, p_occluder: rates of the nuisance events (per second,
            except ``p_occluder``: probability that a video has a feeder bar in view).
        crf: x264 quality of the raw videos.

    Shifts (every video of the cohort, on top of the cohort looks; the defaults change nothing):
        brightness: grey levels added to every pixel after the lighting (+40 brighter, -40
            darker; the result is clipped to 0..255).
        contrast: scales the grey levels around mid grey 128 (0.6 flatter, 1.4 harsher).
        zoom: multiplies the mouse's size in the frame (``head_len``; 0.85 = camera further
            away, 1.2 = closer). ``crop_size`` grows with it, so a zoomed face still fits.
        blur: sigma in pixels of a Gaussian blur of every frame (an out-of-focus camera).

    Confounds (nuisances that go with the label without being sickness; the truth table
    records each per frame, see :mod:`~mouse_facial_expressions.synth.cohort`):
        control_brightness: grey levels added only to the videos of control animals
            (``CONTROL_TREATMENTS``): a cohort whose controls alone are brighter.
        rec_cue: ``((recording, grey), ...)`` pairs: every animal's recording ``recording``
            gets ``grey`` levels added, treated or not (``((4, 30.0),)`` = afternoon lighting at
            rec4). A dict ``{4: 30}`` or the text ``"4:30"`` is accepted and normalised.
        occluder_treated: probability that a treated animal's video has the feeder bar in view
            (controls keep ``p_occluder``); None = ``p_occluder`` for every animal.
        control_handling: controls are handled differently: their rates of rearing, looking
            away and motion blur (``p_rear``, ``p_look_away``, ``p_blur``) are multiplied by
            ``1 + control_handling`` (2.0 = three times as many such episodes; -0.5 = half).

    Weak supervision (the labels belong to videos, the signal to some of their seconds):
        bout_fraction: None (default) = a treated animal's face is affected all through its
            post-injection videos. A fraction F in (0, 1]: only during bouts that cover about F
            of the time (alternating on/off durations, on ~ 2 s + Exp(mean 6 s), off ~ Exp with
            the mean that gives F; at least one bout per affected video); outside bouts the face
            is like a control's. The truth table's ``bout`` column marks the frames in a bout.

    Other modalities (simulated, not rendered: ``keypoints/body/``, ``metadata/physiology.csv``):
        behaviour_effect: how strongly the latent intensity lowers the open-field body
            keypoints' speed, rearing, body length and head movement (:mod:`.body`); 0 = the
            behaviour carries no information about the condition, 1 = default strength.
        physiology_effect: how strongly a recording's mean intensity lowers body temperature
            and weight (:mod:`.physiology`); 0 = no information, 1 = default strength.
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
    brightness: float = 0.0
    contrast: float = 1.0
    zoom: float = 1.0
    blur: float = 0.0
    control_brightness: float = 0.0
    rec_cue: tuple[tuple[int, float], ...] = ()
    occluder_treated: float | None = None
    control_handling: float = 0.0
    bout_fraction: float | None = None
    behaviour_effect: float = 1.0
    physiology_effect: float = 1.0
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "rec_cue", parse_rec_cue(self.rec_cue))
        self._check_shifts()
        w, h = self.size
        if w % 2 or h % 2:
            raise ValueError(f"size {w}x{h}: width and height must be even (H.264 yuv420p)")
        head = self.head_len * self.zoom
        if w < 4 * head or h < 3 * head:
            zoomed = f" x zoom {self.zoom}" if self.zoom != 1.0 else ""
            raise ValueError(f"size {w}x{h} is too small for head_len {self.head_len}{zoomed} "
                             f"(need at least {4 * head:.0f}x{3 * head:.0f})")
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
        missing = [r for r, _ in self.rec_cue if r not in self.recordings]
        if missing:
            raise ValueError(f"rec_cue names recording(s) {missing} that the cohort does not record "
                             f"(recordings {list(self.recordings)})")

    def _check_shifts(self) -> None:
        """The shift and confound settings are numbers in range (ValueError otherwise)."""
        for name in ("brightness", "control_brightness"):
            value = getattr(self, name)
            if not (math.isfinite(value) and -255 <= value <= 255):
                raise ValueError(f"{name}={value}: grey levels must be in [-255, 255]")
        for name in ("contrast", "zoom"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value} must be > 0 (1 = no change)")
        if not (math.isfinite(self.blur) and self.blur >= 0):
            raise ValueError(f"blur={self.blur}: a Gaussian sigma in pixels must be >= 0 (0 = none)")
        if self.occluder_treated is not None and not 0 <= self.occluder_treated <= 1:
            raise ValueError(f"occluder_treated={self.occluder_treated} must be a probability in [0, 1] (or None)")
        if not (math.isfinite(self.control_handling) and self.control_handling >= -1):
            raise ValueError(f"control_handling={self.control_handling} must be >= -1 "
                             "(the controls' event rates are multiplied by 1 + control_handling)")
        if self.bout_fraction is not None and not (math.isfinite(self.bout_fraction) and 0 < self.bout_fraction <= 1):
            raise ValueError(f"bout_fraction={self.bout_fraction} must be in (0, 1] (or None: affected all the time)")
        for name in ("behaviour_effect", "physiology_effect"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}={value} must be >= 0 (0 = the modality carries no information, 1 = default)")

    @property
    def crop_size(self) -> int:
        """Face crop side (source pixels) that fits the largest head of any cohort (x ``zoom``)."""
        return int(round(2.4 * self.head_len * 1.08 * self.zoom / 8.0) * 8)

    def cue(self, recording: int) -> float:
        """Grey levels that ``rec_cue`` adds to every video of this recording (0 if none)."""
        return float(sum(g for r, g in self.rec_cue if r == recording))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["treatments"], d["recordings"], d["size"] = list(self.treatments), list(self.recordings), list(self.size)
        d["rec_cue"] = [[int(r), float(g)] for r, g in self.rec_cue]
        if d["bout_fraction"] is None:  # left out: truth/synth.json stays as before the option existed
            del d["bout_fraction"]
        return d


def parse_rec_cue(value) -> tuple[tuple[int, float], ...]:
    """``"4:30"``, ``"4:30,2:-10"``, ``{4: 30}`` or ``[(4, 30)]`` -> ``((4, 30.0), ...)``.

    Raises:
        ValueError: not recording:grey pairs, a recording named twice, or grey levels
            outside [-255, 255].
    """
    if value is None:
        return ()
    try:
        if isinstance(value, str):
            pairs = [tuple(t.split(":")) for t in value.replace(" ", "").split(",") if t]
        elif isinstance(value, dict):
            pairs = list(value.items())
        else:
            pairs = [tuple(p) for p in value]
        out = tuple((int(r), float(g)) for r, g in pairs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"rec_cue {value!r}: expected recording:grey pairs such as 4:30") from err
    recs = [r for r, _ in out]
    if len(set(recs)) != len(recs):
        raise ValueError(f"rec_cue {value!r}: a recording is named twice")
    bad = [g for _, g in out if not (math.isfinite(g) and -255 <= g <= 255)]
    if bad:
        raise ValueError(f"rec_cue {value!r}: grey levels must be in [-255, 255]")
    return out


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
