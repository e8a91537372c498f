"""StreetVision: camera detection of city-management violations.

The one place the version is written (pyproject.toml reads it from here).
"""

__version__ = "0.1.0"
