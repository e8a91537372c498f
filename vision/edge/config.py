"""Site configuration: one YAML file per site, validated by pydantic.

Every model refuses unknown keys, so a typo is an error that names its field
instead of a setting silently ignored. Validators only look at the document;
checks that need files (does the model have the classes a rule consumes?)
live in `vision.edge.config_check`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vision.core.cases import CLASS_NAME_MAX, ID_MAX, Location, Text
from vision.core.cases import ViolationType as ViolationType  # re-exported: scenario scripts name it from here

# zones are the core's: the center's editor checks them with the same model (re-exported here)
from vision.core.zone_shapes import NAME_PATTERN, ZoneKind, ZoneName
from vision.core.zone_shapes import RelPoint as RelPoint
from vision.core.zone_shapes import ZoneConfig as ZoneConfig

# What ends up in a case report keeps to the limits the dispatch center enforces
# (vision.core.cases), so `config check` refuses a config whose every case the center
# would refuse; a camera's `location` is the report's own `Location` model.
CameraId = Annotated[str, Field(pattern=NAME_PATTERN)]
RuleName = Annotated[Text, Field(min_length=1, max_length=ID_MAX)]
ClassName = Annotated[Text, Field(min_length=1, max_length=CLASS_NAME_MAX)]
Anchor = Literal["bottom_center", "center", "top_center"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingConfig(StrictModel):
    detect_fps: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="Frames per second handed to the detector. Stationary violations need ~1.",
    )
    decode: Literal["all", "keyframes"] = Field(
        default="all",
        description="'keyframes' decodes only I-frames: decode cost drops by the GOP length. "
        "Only sensible when detect_fps <= 1.",
    )
    idle_every_s: float | None = Field(
        default=None,
        gt=0,
        le=60,
        description="Motion gate (needs decode 'keyframes'): while the stream shows no motion the camera decodes "
        "a keyframe only every idle_every_s seconds (what stationary rules need, e.g. 5); while it shows motion, "
        "or a new or moving truck is in view of a muddy-truck rule, every keyframe due at detect_fps. Motion is read "
        "before decoding, from the bytes of the P-frames since the last keyframe against the camera's usual level, "
        "so a quiet camera costs little more than its idle looks. None: every due keyframe is decoded.",
    )
    motion_factor: float = Field(
        default=2.0,
        gt=1,
        le=20,
        description="Motion gate threshold: the P-frames since the last keyframe must be this many times the "
        "camera's usual size (a low quantile of the last two minutes) to count as motion. Lower opens more often.",
    )

    @model_validator(mode="after")
    def _keyframes_need_low_rate(self) -> SamplingConfig:
        if self.decode == "keyframes" and self.detect_fps > 1.0:
            raise ValueError("decode 'keyframes' needs detect_fps <= 1 (keyframes arrive about once a GOP)")
        return self

    @model_validator(mode="after")
    def _gate_needs_keyframes(self) -> SamplingConfig:
        if self.idle_every_s is None:
            return self
        if self.decode != "keyframes":
            raise ValueError("idle_every_s (the motion gate) needs decode 'keyframes': it skips whole keyframes")
        if self.idle_every_s < 1.0 / self.detect_fps:
            raise ValueError(
                f"idle_every_s ({self.idle_every_s:g}) must be at least 1/detect_fps ({1.0 / self.detect_fps:g} s): "
                "a quiet camera looks less often than a busy one, not more"
            )
        return self


class RuleConfigBase(StrictModel):
    """Settings every rule has. A rule type is a subclass with a `type` Literal and the
    zone kind it watches; its engine registers itself in `vision.edge.rules`."""

    zone_kind: ClassVar[ZoneKind]  # rule.zones may only name zones of this kind
    if TYPE_CHECKING:
        # Each rule type declares `type` as a one-value Literal (the discriminator of `RuleConfig`).
        # Only declared here for the type checker: a field here would come first in every rule's schema.
        type: str

    name: RuleName | None = Field(default=None, description="Defaults to the rule type.")
    classes: list[ClassName] = Field(min_length=1, description="Model class names this rule consumes.")
    zones: list[ZoneName] | None = Field(
        default=None, description="Zone names the rule watches; default: all zones of its kind."
    )
    min_confidence: float = Field(default=0.35, ge=0, le=1)
    min_box_height: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Boxes shorter than this fraction of the frame height are ignored (an object filter like "
        "Frigate's min_area: drops far-away objects and small false detections such as a cone seen as a person).",
    )
    anchor: Anchor = Field(default="bottom_center", description="Box point tested against zones.")
    inertia_frames: int = Field(default=3, ge=1, description="Consecutive in-zone frames before entering counts.")
    dwell_s: float = Field(ge=0, description="Seconds of stream time present in the zone before a violation.")
    clear_after_s: float = Field(default=60, gt=0, description="Absent this long: the violation is cleared.")
    cooldown_s: float = Field(
        default=600, ge=0, description="A cleared violation re-seen within this is not a new case."
    )
    verify: bool = Field(
        default=True, description="Pass candidates through the site's crop verifier (when the site has one)."
    )
    verify_min_score: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Probability the verifier must give the violation's labels on the best crop to open a case.",
    )

    @property
    def rule_name(self) -> str:
        return self.name or self.type


class StationaryRuleConfigBase(RuleConfigBase):
    """Rules about objects that stay put (stalls, bikes, garbage).

    Their violations live in a memory keyed by class and location, not by track
    id, so a stall occluded by a bus or re-detected under a new id after a
    lighting change stays the same violation."""

    max_move: float = Field(
        default=0.5,
        gt=0,
        description="An object counts as stationary while its anchor stays within this many box heights "
        "of where it was first seen; walkers leave this radius within a second.",
    )
    motion_window_s: float = Field(
        default=3.0, gt=0, description="A tracked object that moved more than max_move within this window is moving."
    )
    max_gap_s: float = Field(
        default=20.0,
        gt=0,
        description="Before the violation fires, unseen longer than this (stream seconds) restarts the dwell.",
    )
    min_presence: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Fraction of processed frames in which the object must be seen before it fires, both since "
        "onset and within the last presence_window_s (so a stay that ended cannot be topped up by passers-by).",
    )
    presence_window_s: float = Field(
        default=10.0, gt=0, description="The recent window in which min_presence must also hold."
    )
    cluster_distance: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Violating objects closer than this (relative image units) are one case.",
    )
    passing_classes: list[ClassName] = Field(
        default_factory=list,
        description="Those of `classes` that also pass by (people, ridden bikes): a detection of them is a staying "
        "object only under a track id already seen there or on the same box (IoU >= 0.5), so passers-by at looks "
        "seconds apart never add up to a stay.",
    )
    cluster_touch: float = Field(
        default=0.25,
        ge=0,
        le=5,
        description="Violating objects whose boxes are closer than this many heights of the smaller box are one "
        "case however far apart their anchors are (a stall's parasol above its table, bags in a heap, a row of "
        "bikes); 0 links only overlapping boxes.",
    )


class StreetVendingRuleConfig(StationaryRuleConfigBase):
    type: Literal["street_vending"] = "street_vending"
    zone_kind: ClassVar[ZoneKind] = "no_vending"
    classes: list[ClassName] = Field(default_factory=lambda: ["vendor_stall"], min_length=1)
    dwell_s: float = Field(default=240, ge=0, description="3-5 minutes is common practice.")
    person_classes: list[ClassName] = Field(
        default_factory=lambda: ["person"],
        description="Those of `classes` that are people: they count only while staying still, never walking.",
    )
    passing_classes: list[ClassName] = Field(
        default_factory=lambda: ["person"],
        description="Those of `classes` that also pass by: a detection of them is a staying object only under a "
        "track id already seen there or on the same box (IoU >= 0.5), so walkers at looks seconds apart never add "
        "up to a stay.",
    )
    goods_classes: list[ClassName] = Field(
        default_factory=list,
        description="When set, a staying person counts only with one of these classes within cluster_distance.",
    )


class NonMotorParkingRuleConfig(StationaryRuleConfigBase):
    type: Literal["non_motor_parking"] = "non_motor_parking"
    zone_kind: ClassVar[ZoneKind] = "no_parking"
    classes: list[ClassName] = Field(default_factory=lambda: ["bicycle", "motorcycle"], min_length=1)
    dwell_s: float = Field(default=300, ge=0)
    passing_classes: list[ClassName] = Field(
        default_factory=lambda: ["bicycle", "motorcycle"],
        description="Those of `classes` that also pass by (ridden): a detection of them is a parked vehicle only "
        "under a track id already seen there or on the same box (IoU >= 0.5).",
    )
    cluster_distance: float = Field(
        default=0.08, gt=0, le=1, description="Vehicles closer than this (relative image units) form one case."
    )


class ExposedGarbageRuleConfig(StationaryRuleConfigBase):
    type: Literal["exposed_garbage"] = "exposed_garbage"
    zone_kind: ClassVar[ZoneKind] = "garbage_watch"
    classes: list[ClassName] = Field(default_factory=lambda: ["garbage"], min_length=1)
    dwell_s: float = Field(default=120, ge=0)


class MuddyTruckRuleConfig(RuleConfigBase):
    type: Literal["muddy_truck"] = "muddy_truck"
    zone_kind: ClassVar[ZoneKind] = "site_exit"
    classes: list[ClassName] = Field(default_factory=lambda: ["truck"], min_length=1)
    dwell_s: float = Field(default=0, ge=0)
    inertia_frames: int = Field(default=1, ge=1)
    mud_classes: list[ClassName] = Field(
        default_factory=lambda: ["muddy_truck"], description="Classes that mean 'this truck is muddy'."
    )
    k: int = Field(default=3, ge=1, description="Muddy in at least k ...")
    n: int = Field(default=5, ge=1, description="... of the last n frames of the truck.")
    mud_overlap: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A mud detection belongs to a truck when this fraction of the mud box lies inside the truck box.",
    )
    read_plates: bool = Field(
        default=True,
        description="Read the plate of a truck that opens a case (the site's `plates` models, on the case writer's "
        "thread, never on the detection loop).",
    )
    plate_views: int = Field(
        default=5,
        ge=1,
        le=10,
        description="Best views of each truck (largest, sharpest) kept: the verifier judges its mud on all of them, "
        "and the plate is read from them.",
    )

    @model_validator(mode="after")
    def _k_le_n(self) -> MuddyTruckRuleConfig:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) must be <= n ({self.n})")
        return self


RuleConfig = Annotated[
    StreetVendingRuleConfig | NonMotorParkingRuleConfig | ExposedGarbageRuleConfig | MuddyTruckRuleConfig,
    Field(discriminator="type"),
]
RULE_CONFIG_TYPES: tuple[type[RuleConfigBase], ...] = (
    StreetVendingRuleConfig,
    NonMotorParkingRuleConfig,
    ExposedGarbageRuleConfig,
    MuddyTruckRuleConfig,
)
# The zone kind each rule type watches, by rule type.
RULE_ZONE_KIND: dict[str, ZoneKind] = {c.model_fields["type"].default: c.zone_kind for c in RULE_CONFIG_TYPES}


class CameraConfig(StrictModel):
    id: CameraId
    name: str | None = None
    source: str = Field(
        min_length=1,
        description="rtsp://..., http(s)://... (MJPEG), a video or image file path, or device:N for a local camera.",
    )
    location: Location
    grid_code: str = Field(
        pattern=r"^\d{15}$",
        description="Unit grid (单元网格) id: district 6 + street 3 + community 3 + grid 3 digits.",
    )
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    zones: list[ZoneConfig] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list, description="Names of site rules that run on this camera.")
    enabled: bool = True

    @field_validator("zones")
    @classmethod
    def _unique_zone_names(cls, zones: list[ZoneConfig]) -> list[ZoneConfig]:
        seen: set[str] = set()
        for z in zones:
            if z.name in seen:
                raise ValueError(f"zone name '{z.name}' is used twice")
            seen.add(z.name)
        return zones


class ModelRouteConfig(StrictModel):
    """One of several detectors of a site and the classes it serves."""

    model: str = Field(description="Model name under models/ or a path to a model file.")
    classes: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Classes of this model the rules get (others are dropped); default: all of them. "
        "A class served by several models is their ensemble: overlapping boxes of it are merged (NMS), so one "
        "model's blind spot (drawn or unusual objects, real photos) is covered by the other.",
    )
    every_s: float = Field(
        default=0.0,
        ge=0,
        le=600,
        description="Look with this model at most every so many stream seconds per camera, holding its last "
        "detections in between (stationary classes need a look every few seconds, not every frame); 0 = every "
        "frame due for detection.",
    )
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="Default: detector.min_confidence (lowered to what any rule asks for)."
    )
    zoom_every_s: float | None = Field(
        default=None,
        ge=0,
        le=600,
        description="Also detect on up to four tiles over the camera's zones at the model's input size, this often "
        "(stream seconds; 0 = every look), so objects far down a zone are seen two to four times larger; boxes of "
        "objects that stay put are held between zoomed looks. None: full frames only. A camera whose zones "
        "fill the frame gets no tiles (no gain, no cost).",
    )


DEFAULT_MODEL = "coco-nanodet"


class DetectorConfig(StrictModel):
    model: str | None = Field(
        default=None, description=f"Model name under models/ or a path to a model file (default {DEFAULT_MODEL})."
    )
    models: list[ModelRouteConfig] | None = Field(
        default=None,
        min_length=1,
        description="Several detectors, each serving its classes (e.g. COCO classes from the pretrained COCO model, "
        "stalls and garbage from the city model); replaces `model`.",
    )
    min_confidence: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Detections below this are dropped by the detector, unless a rule asks for less: the detector "
        "then keeps what the most permissive rule consuming the class needs.",
    )
    threads: int = Field(
        default=0,
        ge=0,
        description="ONNX Runtime intra-op threads per worker; 0 = automatic (cores / workers).",
    )
    workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Frames detected at the same time (each with its own threads); 0 = automatic: "
        "one per core when the site has several cameras, else one.",
    )
    runtime: Literal["onnxruntime", "openvino"] = Field(
        default="onnxruntime",
        description="What runs the detectors' ONNX models on this box's CPU: 'onnxruntime' (built in) or "
        "'openvino' (Intel's runtime; needs the openvino extra). Same detections; pick the faster one per "
        "box with benchmarks/inference_runtimes.py (docs/EDGE_HARDWARE.md).",
    )

    @model_validator(mode="after")
    def _model_or_models(self) -> DetectorConfig:
        if self.models is not None and self.model is not None:
            raise ValueError("give either model or models, not both")
        return self

    @property
    def routes(self) -> list[ModelRouteConfig]:
        """The site's detectors; a single `model` is one route serving all its classes."""
        if self.models is not None:
            return list(self.models)
        return [ModelRouteConfig(model=self.model or DEFAULT_MODEL)]


class VerifierConfig(StrictModel):
    """The second look at every candidate's crop before a case opens (vision/edge/verify)."""

    model: str = Field(default="crop-verifier", description="Crop classifier under models/ (card.yaml + head.npz).")
    models_by_violation: dict[ViolationType, str] = Field(
        default_factory=lambda: dict[ViolationType, str]({"muddy_truck": "crop-verifier-trucks"}),
        description="A crop classifier of its own for some violation types' candidates, on the same backbone as "
        "`model` (the image features are the same, only the trained head differs); the others use `model`. "
        "Muddy trucks ship with a head trained without the trainer's old truck-label bug, which judges mud "
        "better but names far bicycles worse than `crop-verifier` (models/crop-verifier/STUDY.md, step 11). "
        "{} = `model` for every type.",
    )
    recheck_s: float = Field(
        default=10.0,
        gt=0,
        description="A dropped stationary candidate still held by its rule is looked at again after this many "
        "stream seconds (the object may have been occluded at the first look).",
    )
    threads: int = Field(default=1, ge=0, description="ONNX Runtime threads of the backbone (0 = automatic).")
    name_objects: bool = Field(
        default=True,
        description="Name with the classifier the detector's boxes of classes no rule consumes (an umbrella, a "
        "bench, a suitcase) in the stationary rules' zones, and the vehicles near a site exit (muddy or not): a "
        "violation name becomes a detection for the rules (vision/edge/detection/proposal_naming.py).",
    )
    name_min_score: float = Field(
        default=0.5, ge=0, le=1, description="Classifier probability a named box needs to become a detection."
    )
    name_moving: bool = Field(
        default=True,
        description="Name with the classifier the regions moving near a site exit that no detector boxed (a truck "
        "too small or of a style the detector never saw): a truck or muddy-truck name becomes a detection for the "
        "truck rule (vision/edge/detection/moving_objects.py). It finds far trucks no detector boxes; on one look the "
        "classifier also calls some clean trucks muddy, so it goes with judge_views: together the held-out streets "
        "gain muddy trucks at no more false cases (docs/PERFORMANCE.md, 2026-12-07, session 34).",
    )
    judge_views: bool = Field(
        default=True,
        description="Judge a truck on the best views its rule kept on the way to the exit (`plate_views`) and the "
        "look at the exit, the classifier's probabilities averaged, instead of on that one look: one look at a "
        "40-100 px truck, often cut by the frame's edge, calls clean trucks muddy that their best views call clean "
        "(docs/PERFORMANCE.md, 2026-12-07).",
    )

    def heads_for(self, violation_types: set[str]) -> dict[ViolationType, str]:
        """The heads of their own the verifier loads for a site whose rules have these violation types."""
        return {t: m for t, m in self.models_by_violation.items() if t in violation_types and m != self.model}


class PlatesConfig(StrictModel):
    """Plate reading on the trucks that open muddy-truck cases (vision/edge/plates)."""

    detector: str = Field(default="clpr-plate-detector", description="Plate detector under models/ (corners).")
    reader: str = Field(default="clpr-plate-reader", description="Plate text reader under models/ (CTC).")
    min_confidence: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="A reading whose least sure symbol scores below this is no plate: the case goes without one "
        "(and the dispatch center never merges it with another truck).",
    )
    min_detect_score: float = Field(default=0.5, ge=0, le=1, description="Plate detector score to read a plate.")
    threads: int = Field(default=1, ge=0, description="ONNX Runtime threads of each plate model (0 = automatic).")


class StaticObjectFinderConfig(StrictModel):
    """Tuning of `StaticObjectFinder`; defaults suit 0.5-5 s between frames."""

    work_width: int = Field(
        default=320, ge=32, le=4096, description="Frames are downscaled to this width for the background model."
    )
    min_static_s: float = Field(
        default=8.0, gt=0, description="Stream seconds a region must be static before it is reported."
    )
    min_area: float = Field(
        default=0.0008, ge=0, le=1, description="Smallest reported region, as a fraction of the frame area."
    )
    max_area: float = Field(
        default=0.25, gt=0, le=1, description="Largest reported region, as a fraction of the frame area."
    )
    long_tau_s: float = Field(
        default=300.0, gt=0, description="Time constant (s) of the long-term background, the empty scene."
    )
    short_tau_s: float = Field(
        default=1.5, gt=0, description="Time constant (s) of the short-term background, the last seconds."
    )
    warmup_s: float = Field(
        default=6.0,
        ge=0,
        description="Seconds of frames whose per-pixel median starts both backgrounds (people walking through are not in it); nothing is reported meanwhile.",
    )
    diff_min: float = Field(
        default=14.0,
        gt=0,
        description="Smallest colour distance (grey levels, half the L1 over B, G, R, in the background's photometry) that counts as different.",
    )
    noise_k: float = Field(
        default=4.0,
        gt=0,
        description="The difference threshold is at least this many robust noise sigmas of the frame-vs-background residual (dusk, rain).",
    )
    ncc_window: int = Field(default=7, ge=3, le=31, description="Side (work pixels) of the window of the texture test.")
    ncc_min: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Normalised cross-correlation above which a textured difference is a lighting change, not an object (1 disables the test).",
    )
    texture_min: float = Field(
        default=5.0, ge=0, description="Local grey-level std both images need for the texture test to be trusted."
    )
    clear_s: float = Field(
        default=1.5,
        ge=0,
        description="A pixel that matches the long-term background this long loses its static time (object removed).",
    )
    track_hold_s: float = Field(
        default=10.0, ge=0, description="A region unseen this long loses its id (it is not reported while unseen)."
    )
    match_iou: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Overlap (IoU, or half the intersection over the smaller box) that makes a region the same as an earlier one.",
    )
    absorb_after_s: float = Field(
        default=7200.0,
        gt=0,
        description="A region reported this long after it first appeared is learned into the long-term background.",
    )
    ghost_ratio: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="A new region whose boundary edges found only in the frame are below this fraction of those found only in the long-term background is a ghost (something left) and is absorbed; 0 disables.",
    )
    scene_change_frac: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Fraction of the frame differing from the long-term background that, sustained, means the view changed.",
    )
    scene_change_s: float = Field(
        default=5.0,
        ge=0,
        description="Seconds `scene_change_frac` must persist before the model restarts from the current frames.",
    )
    max_dt_s: float = Field(
        default=10.0, gt=0, description="A longer gap between frames (an outage) counts as this many seconds."
    )
    ignore_pad: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Ignore boxes are grown by this fraction of their size on each side (loose boxes, shadows).",
    )
    watch_min_frac: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Fraction of a region's pixels that must lie in watch_mask for it to be reported.",
    )
    max_regions: int = Field(
        default=64, ge=1, description="At most this many candidate regions (largest first) are examined per frame."
    )


class StaticObjectsConfig(StrictModel):
    """The class-agnostic path of the stationary rules: new objects that appear in their zones and stay,
    named by the verifier's crop classifier (vision/edge/detection/static_candidates.py)."""

    enabled: bool = True
    min_score: float = Field(
        default=0.5, ge=0, le=1, description="Classifier probability a region needs to become a detection."
    )
    reclassify_s: float = Field(default=30.0, gt=0, description="A region is named again after this many seconds.")
    finder: StaticObjectFinderConfig = Field(default_factory=StaticObjectFinderConfig)


class TrackerConfig(StrictModel):
    lost_track_s: float = Field(default=3.0, gt=0, description="Keep a lost track this long (stream seconds).")
    activation_confidence: float = Field(default=0.4, ge=0, le=1)
    min_iou: float = Field(default=0.1, ge=0, le=1)


class DispatchConfig(StrictModel):
    """Where cases go. The token is read from the environment when `token_env` is set,
    so a site file can be committed without the secret."""

    url: str = Field(pattern=r"^https?://\S+$", description="Dispatch center base URL, e.g. http://dispatch:8000.")
    token: str | None = Field(default=None, min_length=1, description="Device bearer token (prefer token_env).")
    token_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Environment variable holding the token."
    )
    device_id: str | None = Field(default=None, description="Defaults to site_id.")
    timeout_s: float = Field(default=10.0, gt=0, description="Per request (connect, read, write).")
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)
    heartbeat_s: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between heartbeats to the center (cameras, disk, queue, models; fleet health); 0: none.",
    )
    frame_every_s: float = Field(
        default=300.0,
        ge=0,
        description="Seconds between the cameras' latest pictures sent with a heartbeat (the fleet page, the"
        " zone editor); 0: never.",
    )

    @model_validator(mode="after")
    def _one_token_source(self) -> DispatchConfig:
        if self.token and self.token_env:
            raise ValueError("give either token or token_env, not both")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self


class ModelUpdatesConfig(StrictModel):
    """New model versions from the dispatch center (`streetvision dispatch models rollout`): the
    box asks which versions it should run, downloads what it lacks, checks each file's sha256
    and the card's Ed25519 signature against `trusted_keys`, and hands it to the daemon's hot
    reload. A version that fails a check is refused and the running one stays."""

    check_every_s: float = Field(default=60.0, gt=0, description="Seconds between two questions to the center.")
    trusted_keys: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Public Ed25519 keys (base64, from `streetvision models keygen`) whose signature a model"
        " card must carry.",
    )
    require_signature: bool = Field(
        default=True, description="Refuse a version whose card no trusted key signed (false: sha256 checks only)."
    )

    @field_validator("trusted_keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        from vision.core.signing import SignatureError, check_public_key

        for i, key in enumerate(keys):
            try:
                check_public_key(key)
            except SignatureError as exc:
                raise ValueError(f"trusted_keys[{i}]: {exc}") from None
        return keys

    @model_validator(mode="after")
    def _signed_or_said_so(self) -> ModelUpdatesConfig:
        if self.require_signature and not self.trusted_keys:
            raise ValueError("give trusted_keys, or set require_signature: false to accept unsigned models")
        return self


class ZoneUpdatesConfig(StrictModel):
    """Zones drawn and published in the dispatch center's zone editor: every `check_every_s` the
    box asks for the latest zone version of each of its cameras, puts those zones in place of the
    site file's, and checks the site that makes as `streetvision config check` does. Accepted, it
    is written to `path` (read over the site file at every start) and the daemon swaps the
    cameras' rules at its next batch, streams running; refused, the running zones stay and the
    heartbeat tells the center why."""

    check_every_s: float = Field(default=60.0, gt=0, description="Seconds between two questions to the center.")
    path: str | None = Field(
        default=None,
        description="File of the accepted zone versions (JSON, written atomically); default: zone-versions.json in"
        " the outbox's directory.",
    )


class OutboxConfig(StrictModel):
    path: str = Field(default="var/outbox", description="Directory of the case queue (SQLite) and evidence files.")
    max_evidence_mb: float = Field(
        default=2048, gt=0, description="Evidence disk bound; the oldest evidence files are pruned beyond it."
    )
    min_free_mb: float = Field(
        default=64,
        ge=0,
        description="Free space to keep on the outbox's filesystem; below it the oldest evidence files are pruned"
        " (those of sent cases first). Case records are never pruned.",
    )


class EvidenceConfig(StrictModel):
    clip_before_s: float = Field(default=5.0, ge=0, description="Clip seconds before onset.")
    clip_after_s: float = Field(default=5.0, ge=0, description="Clip seconds after onset.")
    clip_fps: float | None = Field(
        default=None, gt=0, le=30, description="Frame rate kept for clips; default: the camera's detect_fps."
    )
    jpeg_quality: int = Field(default=85, ge=30, le=100)
    buffer_max_mb: float = Field(default=64, gt=0, description="In-memory frame ring bound per camera (JPEG bytes).")


class MetricsConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535, description="/healthz and /metrics; 0 picks a free port.")
    enabled: bool = True


class SiteConfig(StrictModel):
    """The whole configuration of one edge box."""

    site_id: CameraId = Field(description="Identifies this edge box to the dispatch center.")
    name: str | None = None
    area_code: str | None = Field(default=None, pattern=r"^\d{6}$", description="GB/T 2260 administrative area code.")
    taxonomy_edition: Literal["CJ/T 214-2007", "GB/T 30428.2-2013", "GB/T 47678.5-2026"] = "GB/T 30428.2-2013"
    taxonomy: str | None = Field(default=None, description="Path to a city taxonomy override YAML.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    verifier: VerifierConfig | None = Field(
        default=None, description="Crop verifier for every candidate violation; without it, rules open cases directly."
    )
    plates: PlatesConfig | None = Field(
        default_factory=PlatesConfig,
        description="Plate reading for muddy-truck cases; null turns it off (cases then name no truck).",
    )
    static_objects: StaticObjectsConfig | None = Field(
        default=None,
        description="Find objects that appear and stay in the stationary rules' zones without a detector class "
        "for them; needs `verifier` (its classifier names the regions). Left out: on with the defaults wherever "
        "the site has a verifier; `{enabled: false}` turns it off.",
    )
    cameras: list[CameraConfig] = Field(min_length=1)
    rules: list[RuleConfig] = Field(default_factory=list)
    dispatch: DispatchConfig | None = Field(default=None, description="Without it, cases are queued but not sent.")
    model_updates: ModelUpdatesConfig | None = Field(
        default=None, description="Model versions rolled out from the dispatch center; needs `dispatch`."
    )
    zone_updates: ZoneUpdatesConfig | None = Field(
        default=None, description="Zones published from the dispatch center's zone editor; needs `dispatch`."
    )
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> SiteConfig:
        _check_unique_camera_ids(self)
        _check_unique_rule_names(self)
        _check_camera_rules_exist(self)
        _check_rule_zones_exist(self)
        _check_rule_zone_kinds(self)
        if self.static_objects is not None and self.static_objects.enabled and self.verifier is None:
            raise ValueError("static_objects: needs a verifier section (its crop classifier names the regions)")
        if self.model_updates is not None and self.dispatch is None:
            raise ValueError("model_updates: needs a dispatch section (the center the versions come from)")
        if self.zone_updates is not None and self.dispatch is None:
            raise ValueError("zone_updates: needs a dispatch section (the center the zones come from)")
        return self

    def model_names(self) -> list[str]:
        """The models under models/ this site runs (its detectors and its verifier's classifier)."""
        if self.detector.models:
            names = [m.model for m in self.detector.models]
        else:
            names = [self.detector.model or DEFAULT_MODEL]
        if self.verifier is not None:
            names.append(self.verifier.model)
        return list(dict.fromkeys(names))

    def rule(self, name: str) -> RuleConfig:
        return next(r for r in self.rules if r.rule_name == name)


def _check_unique_camera_ids(site: SiteConfig) -> None:
    seen: set[str] = set()
    for cam in site.cameras:
        if cam.id in seen:
            raise ValueError(f"cameras: camera id '{cam.id}' is used twice")
        seen.add(cam.id)


def _check_unique_rule_names(site: SiteConfig) -> None:
    seen: set[str] = set()
    for rule in site.rules:
        if rule.rule_name in seen:
            raise ValueError(f"rules: rule name '{rule.rule_name}' is used twice (give each a distinct 'name')")
        seen.add(rule.rule_name)


def _check_camera_rules_exist(site: SiteConfig) -> None:
    names = {r.rule_name for r in site.rules}
    for i, cam in enumerate(site.cameras):
        for j, rule_name in enumerate(cam.rules):
            if rule_name not in names:
                known = ", ".join(sorted(names)) or "none defined"
                raise ValueError(f"cameras.{i}.rules.{j}: unknown rule '{rule_name}' (site rules: {known})")


def _check_rule_zones_exist(site: SiteConfig) -> None:
    for i, rule in enumerate(site.rules):
        if not rule.zones:
            continue
        for cam in site.cameras:
            if rule.rule_name not in cam.rules:
                continue
            zone_names = {z.name for z in cam.zones}
            for zone in rule.zones:
                if zone not in zone_names:
                    raise ValueError(f"rules.{i}.zones: zone '{zone}' does not exist on camera '{cam.id}'")


def _check_rule_zone_kinds(site: SiteConfig) -> None:
    for i, rule in enumerate(site.rules):
        wanted = RULE_ZONE_KIND[rule.type]
        for cam in site.cameras:
            if rule.rule_name not in cam.rules:
                continue
            kinds = {z.name: z.kind for z in cam.zones}
            for zone in rule.zones or []:
                if zone in kinds and kinds[zone] != wanted:
                    raise ValueError(
                        f"rules.{i}.zones: zone '{zone}' on camera '{cam.id}' is a {kinds[zone]} zone; "
                        f"a {rule.type} rule watches {wanted} zones"
                    )


def rule_classes(rule: RuleConfigBase) -> list[str]:
    """Every class name a rule consumes (its classes, mud and goods classes)."""
    names = list(rule.classes)
    for extra in ("mud_classes", "goods_classes"):
        names += [c for c in getattr(rule, extra, None) or [] if c not in names]
    return names


def route_min_confidence(site: SiteConfig, route: ModelRouteConfig, route_classes: set[str] | None = None) -> float:
    """The threshold a detector runs at: its own, lowered to the lowest `min_confidence` of any rule that
    consumes one of its classes (a rule asking for 0.2 under a detector at 0.25 would otherwise never
    see what it asks for)."""
    base = route.min_confidence if route.min_confidence is not None else site.detector.min_confidence
    served = set(route.classes) if route.classes is not None else route_classes
    wanted = [r.min_confidence for r in site.rules if served is None or any(c in served for c in rule_classes(r))]
    return min([base, *wanted])


class ConfigError(Exception):
    """A site file that cannot be used; `errors` holds (field path, message) pairs."""

    def __init__(self, path: Path | str, errors: list[tuple[str, str]]):
        self.path = str(path)
        self.errors = errors
        super().__init__("\n".join(f"{self.path}: {loc}: {msg}" for loc, msg in errors))


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    # pydantic puts union tags in the location (e.g. rules.0.street_vending.dwell_s); keep them,
    # they tell which rule type was parsed.
    return ".".join(str(p) for p in loc) or "(root)"


_NAMED_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): (.*)$", re.S)


def parse_site(data: object, source: Path | str = "<memory>") -> SiteConfig:
    from pydantic import ValidationError

    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            loc = list(err["loc"])
            # cross-field checks say which field they mean as "field.path: message"
            named = _NAMED_FIELD.match(msg)
            if named:
                loc += named.group(1).split(".")
                msg = named.group(2)
            errors.append((_loc_to_path(tuple(loc)), msg))
        raise ConfigError(source, errors) from None


def load_site(path: Path | str) -> SiteConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [("(file)", f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(path, [(f"line {line}", "not UTF-8 text (save the file as UTF-8)")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        raise ConfigError(path, [(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, [("(root)", "expected a mapping of site settings")])
    return parse_site(data, path)


def site_json_schema() -> dict[str, Any]:
    return SiteConfig.model_json_schema()
