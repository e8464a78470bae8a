"""One driver per sweep folder."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from additive.errors import AdxError
from sweeps.results import SweepFiles


class SweepLock:
    """One driver per sweep folder (local storage): a lock file with host and pid;
    a lock whose process is gone (a killed driver) is taken over."""

    def __init__(self, files: SweepFiles):
        self.path = files.dir + "/.lock" if files.storage.is_local else None

    def __enter__(self):
        if self.path is None:
            return self
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    with open(self.path) as f:
                        other = json.load(f)
                except (OSError, ValueError):
                    other = {}
                if other.get("host") == me["host"] and _alive(other.get("pid")):
                    raise AdxError(
                        f"sweep {os.path.basename(os.path.dirname(self.path))!r} is already being run "
                        f"by process {other['pid']}"
                    ) from None
                os.unlink(self.path)  # stale: its driver is gone
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            return self
        raise AdxError(f"cannot take the lock {self.path}")

    def __exit__(self, *exc):
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
