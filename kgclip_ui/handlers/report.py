"""The reports' events: the session's prediction written as an HTML report and an MP4 of the
clip with the heatmap, and the session's timeline as an HTML report, each in a folder per
request inside the app's capped reports folder (``kgclip_ui.storage``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from kgclip_core.errors import KGClipError
from kgclip_core.report import write_report, write_timeline_report
from kgclip_ui.common import Session, refusal, user_error
from kgclip_ui.handlers.timeline import TimelineSession
from kgclip_ui.storage import FolderCap


class Reports:
    """Reports written into ``folder``, kept under its caps (the oldest go first)."""

    def __init__(self, folder: FolderCap) -> None:
        self.folder = folder

    def make_report(self, session: Session | None, kind: str | None, which: str | None, opacity: float) -> list[str]:
        """The session's prediction as an HTML report and an MP4 of the clip with the heatmap shown."""
        if session is None:
            raise refusal("Recognise a clip first; the report is of its prediction.")
        folder = self._new_folder()
        video = session.pred.video.path
        try:
            files = write_report(session.pred, folder / f"{Path(video).stem}-kgclip-report.html", kind, which,
                                 float(opacity))
        except KGClipError as err:
            raise user_error(err, video) from err
        return [str(f) for f in files]

    def make_timeline_report(self, session: TimelineSession | None) -> str:
        """The session's timeline as an HTML report (its segments, a still and the concepts of each)."""
        if session is None:
            raise refusal("Make the clip's timeline first; the report is of its segments.")
        folder = self._new_folder()
        try:
            return str(write_timeline_report(session.line, folder / f"{Path(session.video).stem}-kgclip-timeline.html"))
        except KGClipError as err:
            raise user_error(err, session.video) from err

    def _new_folder(self) -> Path:
        """A new folder for one report, after the oldest reports went to leave it room under the
        caps (the report events run one at a time: ``kgclip_ui.wiring``)."""
        self.folder.prune()
        return Path(tempfile.mkdtemp(dir=self.folder.path))
