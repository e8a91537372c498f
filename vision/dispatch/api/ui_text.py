"""Words the operator UI shows for the workflow's values (states, actions, roles, evidence
kinds), as catalogue msgids: translated when a page is rendered, in the operator's locale."""

from __future__ import annotations

from vision.dispatch.i18n import N_, gettext

STATUS = {
    "suspected": N_("Suspected"),
    "accepted": N_("Accepted"),
    "dispatched": N_("Dispatched"),
    "handled": N_("Handled"),
    "verified": N_("Verified"),
    "closed": N_("Closed"),
    "rejected": N_("False alarm"),
    "parked": N_("Parked"),
}

ACTION = {
    "report": N_("Reported"),
    "accept": N_("Accept"),
    "reject": N_("Reject"),
    "dispatch": N_("Dispatch"),
    "send_back": N_("Send back"),
    "extend": N_("Extend"),
    "handle": N_("Handled"),
    "verify": N_("Verify"),
    "close": N_("Close"),
    "merge": N_("Merged"),
    "reopen": N_("Reopen"),
    "park": N_("Park"),
    "unpark": N_("Unpark"),
    "urge": N_("Urge"),
    "expire": N_("Evidence expired"),
}

ROLE = {
    "reviewer": N_("Reviewer"),
    "dispatcher": N_("Dispatcher"),
    "admin": N_("Administrator"),
    "department": N_("Handling department"),
    "inspector": N_("Field inspector"),
}

ACTOR_KIND = {
    "operator": N_("operator"),
    "device": N_("camera"),
    "open311": N_("Open311 client"),
    "system": N_("system"),
    "camera": N_("camera (automatic)"),
}

# 自动核查: what the camera saw, and what that did to the case
CAMERA_EVENT = {
    "cleared": N_("Violation cleared"),
    "resumed": N_("Violation seen again"),
    "grew": N_("More objects joined"),
}
CAMERA_OUTCOME = {
    "verified": N_("verified by the camera"),
    "suggested": N_("verification suggested"),
    "cleared_itself": N_("gone by itself"),
    "reopened": N_("case reopened"),
    "pending": N_("waiting for handling"),
    "recorded": N_("recorded"),
    "stale": N_("older than the state known"),
}

EVIDENCE_KIND = {
    "snapshot": N_("Snapshot"),
    "annotated": N_("Annotated snapshot"),
    "clip": N_("Video clip"),
    "vehicle_crop": N_("Vehicle close-up"),
    "plate_crop": N_("Plate close-up"),
}

# The photos people take of the site: after handling, at verification in the field.
PHOTO_STAGE = {"after": N_("After handling"), "verify": N_("At verification")}

SOURCE = {"edge": N_("Camera"), "open311": N_("Citizen report"), "fleet": N_("Maintenance alert")}

# What an edge box says of one of its cameras (vision.core.fleet.CameraLink), and of itself.
CAMERA_LINK = {"online": N_("Online"), "offline": N_("Offline"), "starting": N_("Starting")}
# What a zone of a camera watches (vision.edge.config.ZoneKind).
ZONE_KIND = {
    "no_vending": N_("No vending"),
    "no_parking": N_("No parking"),
    "bike_bay": N_("Bike parking bay"),
    "garbage_watch": N_("Garbage watch"),
    "site_exit": N_("Site exit"),
}
# What is wrong with a zone drawn in the editor (vision.core.zone_shapes, the draft's checks):
# a known problem in the operator's language, anything else as the check said it.
ZONE_PROBLEM = {
    "needs at least 3 points": N_("a zone needs at least 3 points (a site exit may be a line of 2)"),
    "self-intersecting": N_("its edges cross: click the points in order around the area"),
    "zero area": N_("it has no area: the points are in a line or repeated"),
    "two distinct points": N_("the two points of the line are the same"),
    "two zones have this name": N_("two zones have this name"),
    "should match pattern": N_("names use letters, digits, _ . - and start with a letter or digit"),
    "Input should be": N_("unknown kind of zone"),
    # what the box says when it refuses a published version (its site config's cross-checks)
    "does not exist on camera": N_("a rule of the box watches a zone of a name these zones no longer have"),
    "rule watches": N_("a rule of the box watches a zone of this name, but of another kind"),
}
DISK_LEVEL = {"ok": N_("ok"), "low": N_("low"), "full": N_("full"), "unknown": N_("unknown")}

# A plate's background colour, as people name plates (蓝牌, 黄牌: lorries, 绿牌: new energy).
PLATE_COLOUR = {
    "blue": N_("Blue plate"),
    "yellow": N_("Yellow plate"),
    "green": N_("Green plate"),
    "white": N_("White plate"),
    "black": N_("Black plate"),
}

# Offered for every type, after the type's own reasons from the taxonomy.
COMMON_REJECT_REASONS = (
    N_("Duplicate of another case"),
    N_("Image unclear"),
    N_("Outside the managed area"),
)


def word(table: dict[str, str], value: str | None) -> str:
    """The translated word of a value; a value the table does not know is shown as it is."""
    if value is None:
        return "—"
    return gettext(table[value]) if value in table else value


def zone_problem(message: str) -> str:
    """A zone draft's problem in the operator's language where it is a known one."""
    for key, msgid in ZONE_PROBLEM.items():
        if key in message:
            return gettext(msgid)
    return message
