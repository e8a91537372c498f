"""Help text for the model-lifecycle commands (train, eval, export, quantize)."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option shows its default; required ones say "(required)"; options
    whose default is worked out at run time (None here) say it in their help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.required:
            return text + " (required)"
        if action.default is None or action.default is argparse.SUPPRESS or "default" in text:
            return text
        return super()._get_help_string(action)
