"""Dispatch center configuration (configs/dispatch.yaml): departments, assignment,
working calendar, how reports merge, label classes, notifications and what Open311
publishes. Strict: unknown keys are errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vision.core.paths import REPO_ROOT
from vision.dispatch.workflow import Status

DEFAULT_DISPATCH_CONFIG = REPO_ROOT / "configs" / "dispatch.yaml"

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OFFICE_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")  # the default working week
_PERIOD = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


# 自动核查, per violation type: what the camera's "cleared" does to a case. automatic: a handled
# case is verified by the camera, its snapshot the proof; suggest: the case shows the suggestion
# and a person verifies; off: the event is recorded, nothing more.
CameraPolicy = Literal["automatic", "suggest", "off"]
CAMERA_POLICY_UNLISTED: CameraPolicy = "suggest"  # a type the file does not name: a person confirms
DEFAULT_CAMERA_VERIFICATION: dict[str, CameraPolicy] = {
    "street_vending": "automatic",
    "non_motor_parking": "automatic",
    "exposed_garbage": "automatic",
    "muddy_truck": "off",  # the truck leaving does not clean the road
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Department(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    name: str = Field(min_length=1, max_length=64)
    name_en: str | None = None


class AssignmentRule(_Strict):
    violation: str | None = Field(default=None, description="Violation type; omitted matches any.")
    grid_prefix: str | None = Field(default=None, pattern=r"^\d{1,15}$")
    department: str


class WorkingTime(_Strict):
    timezone: str = "Asia/Shanghai"
    weekdays: list[Weekday] = Field(default_factory=lambda: list(OFFICE_WEEKDAYS), min_length=1)
    periods: list[str] = Field(default_factory=lambda: ["08:30-12:00", "13:30-17:30"], min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value

    @field_validator("periods")
    @classmethod
    def _ordered_periods(cls, periods: list[str]) -> list[str]:
        last_end = -1
        for p in periods:
            m = _PERIOD.match(p)
            if not m:
                raise ValueError(f"period '{p}' is not HH:MM-HH:MM")
            start = int(m[1]) * 60 + int(m[2])
            end = int(m[3]) * 60 + int(m[4])
            if end > 24 * 60 or start >= end or start < last_end:
                raise ValueError(f"period '{p}' must end after it starts and after the previous period")
            last_end = end
        return periods

    def minute_ranges(self) -> list[tuple[int, int]]:
        out = []
        for p in self.periods:
            m = _PERIOD.match(p)
            assert m
            out.append((int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])))
        return out

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class MqttConfig(_Strict):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = Field(default="streetvision/dispatch", min_length=1)
    qos: Literal[0, 1, 2] = 1
    username: str | None = None
    password: str | None = None


class WebhookConfig(_Strict):
    url: str = Field(pattern=r"^https?://")
    secret: str | None = Field(default=None, description="Signs the body: X-StreetVision-Signature = HMAC-SHA256 hex.")


class Notifications(_Strict):
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)


class Open311Publish(_Strict):
    """What Open311 GET (public, no credential) shows: the city decides. By default only
    cases a reviewer accepted, and their later states, with coordinates rounded; AI
    reports waiting for review and rejected ones (with their reasons) stay internal."""

    statuses: list[Status] = Field(
        default_factory=lambda: [Status.ACCEPTED, Status.DISPATCHED, Status.HANDLED, Status.VERIFIED, Status.CLOSED],
        description="Case states listed; others answer as if the request did not exist.",
    )
    location_decimals: int | None = Field(
        default=3, ge=0, le=7, description="Decimal places of lat/long (3: about 100 m); null: exact."
    )
    plates: bool = Field(
        default=False,
        description="Show a vehicle case's plate text and colour (extended_attributes). A plate is personal "
        "data: off unless the city's rules allow publishing it.",
    )


class Open311Config(_Strict):
    publish: Open311Publish = Field(default_factory=Open311Publish)


# The operator map (/ui/map): a tile URL of the city's own tile server and which datum its
# tiles are drawn in; by default no base tiles at all (the map works offline: points over
# the grid outlines). See docs/DISPATCH.md, "The map".
TILE_URL_PATTERN = r"^(https?://[^\s'\"<>]+|/[^\s'\"<>]*)$"
DEFAULT_MAP_MAX_POINTS = 2000  # a month of a district (~25,000 cases a year) shows whole


class MapConfig(_Strict):
    tiles: str | None = Field(
        default=None,
        pattern=TILE_URL_PATTERN,
        description="Tile URL template ({z}/{x}/{y}, {s} for subdomains), http(s) or a path on this "
        "server; null: no base map.",
    )
    subdomains: str = Field(default="", pattern=r"^[A-Za-z0-9]*$", description="Letters {s} takes, e.g. 1234.")
    attribution: str = Field(default="", max_length=300, description="Shown on the map (plain text).")
    datum: Literal["WGS84", "GCJ-02"] = Field(
        default="WGS84", description="The datum the tiles are drawn in (AutoNavi, Tencent: GCJ-02)."
    )
    max_zoom: int = Field(default=19, ge=1, le=22)
    grids: Path | None = Field(
        default=None, description="GeoJSON (WGS84) of the unit grid outlines; relative to this file."
    )
    center: tuple[float, float] | None = Field(
        default=None, description="[lat, lon] (WGS84) shown when there is nothing to fit; default: fit the points."
    )
    zoom: int = Field(default=15, ge=1, le=22)
    max_points: int = Field(default=DEFAULT_MAP_MAX_POINTS, ge=1, le=50_000)

    @model_validator(mode="after")
    def _tile_template(self) -> MapConfig:
        if self.tiles is not None and not all(k in self.tiles for k in ("{z}", "{x}", "{y}")):
            raise ValueError("map.tiles: a URL template with {z}, {x} and {y}")
        if self.tiles is not None and "{s}" in self.tiles and not self.subdomains:
            raise ValueError("map.subdomains: the letters {s} stands for (the tile URL has {s})")
        return self


class FleetConfig(_Strict):
    """Fleet health: when silence becomes a maintenance alert (a case of its own type, dispatched
    to `maintenance_department`), closed by itself when the box or camera is back."""

    box_silent_after_s: float = Field(
        default=120, gt=0, description="A box with no heartbeat this long is silent: one alert for the box."
    )
    camera_offline_after_s: float = Field(
        default=300, gt=0, description="A camera its box reports offline this long: an alert for the camera."
    )
    maintenance_department: str | None = Field(
        default=None, description="Who gets the alerts; default: default_department."
    )
    alert_deadline_working_hours: float = Field(default=8, gt=0, le=1000)
    check_every_s: float = Field(
        default=15, gt=0, description="How often the center looks for silent boxes and cameras."
    )


class RetentionConfig(_Strict):
    """How long the evidence files of finished cases (结案, 误报) are kept, in days from when the case
    finished; null keeps them for ever. The case, its history and its decisions are never deleted."""

    clip_days: float | None = Field(default=180, gt=0, description="Video clips.")
    image_days: float | None = Field(
        default=1095, gt=0, description="Snapshots, crops and the photos of the site (labelled frames for training)."
    )


class DispatchConfig(_Strict):
    departments: list[Department] = Field(min_length=1)
    assignment: list[AssignmentRule] = Field(default_factory=list)
    default_department: str
    working_time: WorkingTime = Field(default_factory=WorkingTime)
    occurrence_window_s: float = Field(default=1800, ge=0)
    # Violation types whose cases are about one vehicle: a report joins an open case of its camera
    # by the plate it read, not by box overlap (the same truck passes again, elsewhere in the frame);
    # a report without a plate is a case of its own.
    merge_by_plate: list[str] = Field(default_factory=lambda: ["muddy_truck"])
    # violation type -> the class its accepted cases are labelled with, or several: the first is the
    # default, another is used when it is the one the edge detected (a motorcycle case is a motorcycle)
    label_classes: dict[str, str | list[str]] = Field(default_factory=dict)

    def label_class_options(self, violation: str) -> list[str]:
        """The label classes of a violation type, the default first ([] if it has none)."""
        value = self.label_classes.get(violation, [])
        return [value] if isinstance(value, str) else list(value)

    camera_verification: dict[str, CameraPolicy] = Field(
        default_factory=lambda: dict(DEFAULT_CAMERA_VERIFICATION),
        description="Violation type -> automatic | suggest | off (自动核查); a type not listed: suggest.",
    )

    def camera_policy(self, violation: str) -> CameraPolicy:
        """What the camera's lifecycle events may do to a case of this type."""
        return self.camera_verification.get(violation, CAMERA_POLICY_UNLISTED)

    notifications: Notifications = Field(default_factory=Notifications)
    open311: Open311Config = Field(default_factory=Open311Config)
    map: MapConfig = Field(default_factory=MapConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @property
    def maintenance_department(self) -> str:
        return self.fleet.maintenance_department or self.default_department

    @model_validator(mode="after")
    def _departments_known(self) -> DispatchConfig:
        known = {d.id for d in self.departments}
        if len(known) != len(self.departments):
            raise ValueError("departments: ids must be unique")
        if self.default_department not in known:
            raise ValueError(f"default_department: unknown department '{self.default_department}'")
        for i, rule in enumerate(self.assignment):
            if rule.department not in known:
                raise ValueError(f"assignment[{i}].department: unknown department '{rule.department}'")
        if self.fleet.maintenance_department is not None and self.fleet.maintenance_department not in known:
            raise ValueError(f"fleet.maintenance_department: unknown department '{self.fleet.maintenance_department}'")
        return self

    def department_for(self, violation: str | None, grid_code: str | None) -> str:
        """The department a case goes to by default: first matching rule, else the default."""
        for rule in self.assignment:
            if rule.violation is not None and rule.violation != violation:
                continue
            if rule.grid_prefix is not None and not (grid_code or "").startswith(rule.grid_prefix):
                continue
            return rule.department
        return self.default_department

    def department_ids(self) -> list[str]:
        return [d.id for d in self.departments]

    def department_name(self, dept_id: str | None) -> str | None:
        """A department's display name; an unknown id is shown as it is."""
        for d in self.departments:
            if d.id == dept_id:
                return d.name
        return dept_id


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names file and field."""


def check_grids(path: Path) -> Path:
    """The grid outline file, read once here so a wrong one stops the start, not the map page."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"map.grids: cannot read {path} ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"map.grids: {path} is not JSON: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(data.get("features"), list)
    ):
        raise ConfigError(f"map.grids: {path} is not a GeoJSON FeatureCollection")
    return path


def load_dispatch_config(path: Path | str | None = None) -> DispatchConfig:
    path = Path(path) if path else DEFAULT_DISPATCH_CONFIG
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config = DispatchConfig.model_validate(data)
        if config.map.grids is not None:  # relative to the file that names it
            config.map.grids = check_grids(path.parent / config.map.grids)
        return config
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {msgs}") from None
