"""The report's event: the session's prediction written as an HTML report and an MP4 of the
clip with the heatmap, in a folder per request inside the app's capped reports folder
(``kgclip_ui.storage``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from kgclip_core.errors import KGClipError
from kgclip_core.report import write_report
from kgclip_ui.common import Session, refusal, user_error
from kgclip_ui.storage import FolderCap


class Reports:
    """Reports written into ``folder``, kept under its caps (the oldest go first)."""

    def __init__(self, folder: FolderCap) -> None:
        self.folder = folder

    def make_report(self, session: Session | None, kind: str | None, which: str | None, opacity: float) -> list[str]:
        """The session's prediction as an HTML report and an MP4 of the clip with the heatmap shown."""
        if session is None:
            raise refusal("Recognise a clip first; the report is of its prediction.")
        folder = Path(tempfile.mkdtemp(dir=self.folder.path))
        video = session.pred.video.path
        try:
            files = write_report(session.pred, folder / f"{Path(video).stem}-kgclip-report.html", kind, which,
                                 float(opacity))
        except KGClipError as err:
            raise user_error(err, video) from err
        finally:
            self.folder.prune()  # this report counts; one past the caps makes the oldest go
        return [str(f) for f in files]
