"""A candidate sealer process (``python -m chaos.sealer CONFIG``): seals rounds for as long
as it lives, and while it holds the sealer's role it says so in ``leader`` (its pid), so the
fault scheduler can kill the process that holds the role."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError

from dr_assistant_data import DataLayer
from dr_assistant_data.errors import DataLayerError

from .worker import settings_from


def main(config_file: str) -> None:
    config = json.loads(Path(config_file).read_text())
    marker = Path(config["leader_file"])
    dl = DataLayer(settings_from(config["settings"]))
    sealer = dl.audit_sealer()
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        # the database restarted or a rival sealed first: the next round retries
        with contextlib.suppress(SQLAlchemyError, DataLayerError, OSError):
            sealer.run_once()
        if sealer.leader:
            temporary = marker.with_suffix(f".{os.getpid()}")
            temporary.write_text(str(os.getpid()))
            temporary.replace(marker)
        time.sleep(sealer.interval)
    sealer.resign()
    dl.close()


if __name__ == "__main__":
    main(sys.argv[1])
