"""The one exception type users see.

Every error a user can cause (a bad video file, an unknown label set, missing weights, a
malformed config) is raised as a :class:`KGClipError` subclass whose message says what to
do. The app and the CLI catch this type and show the message; anything else is a bug.
"""


class KGClipError(Exception):
    """Base class of every user-facing error raised by ``kgclip_core``."""


class VideoError(KGClipError):
    """A video file is missing, unreadable, empty or otherwise unusable."""


class LabelError(KGClipError):
    """A label set or a label is unknown, empty, duplicated or malformed."""


class WeightsError(KGClipError):
    """Model weights could not be loaded (no network, missing file, wrong format)."""


class ConfigError(KGClipError):
    """A configuration or checkpoint does not fit what was asked."""


class BudgetError(KGClipError):
    """A request would cost more time or work than one request is allowed (docs/LIMITS.md)."""


class Cancelled(KGClipError):
    """Whoever asked for the work no longer wants it (a browser's new upload cancels its run)."""
