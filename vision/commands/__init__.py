"""Sub-commands of the `streetvision` CLI (see vision.cli)."""
