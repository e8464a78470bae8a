"""One driver per sweep, on a local disk, a shared filesystem or S3.

The lock is one small JSON file, ``<sweep>/.lock``: the holder's host, pid, a random
owner id and the time its lease expires. The driver renews the lease in a background
thread (every quarter of it). Another driver may take the lock over only when

- the holder ran on the same host and its process is gone (a killed driver: at once), or
- the holder ran on another host and its lease has expired (a driver that died there).

A driver that finds the lock held on another host waits once for that lease to run out
(``wait``; the CLI's drivers do): a holder that died stops renewing, so a successor started
right after a lost head node takes over within one lease; a holder that renews meanwhile is
alive, and the successor is refused. The host is ``socket.gethostname()``, or
``ADX_LOCK_HOST`` where several machines share one hostname.

Creating the file is atomic on every backend (``O_EXCL`` on a filesystem, a conditional
create ``If-None-Match: *`` on S3), and so is taking it over (a rename that the successor
then checks on a filesystem; ``If-Match`` on the stale lock's ETag on S3), so of two
successors only one wins. Hosts must agree on the time to within a fraction of the
lease (``ADX_LOCK_LEASE_S``, default 60 s). Storage other than local paths and ``s3://``
gets no lock and a warning.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import warnings
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from additive.errors import AdxError
from sweeps.results import SweepFiles

LEASE_ENV = "ADX_LOCK_LEASE_S"
HOST_ENV = "ADX_LOCK_HOST"
DEFAULT_LEASE_S = 60.0


def lock_host() -> str:
    """This driver's host, as the lock records it."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


class LockWarning(UserWarning):
    """The sweep runs without the one-driver lock, or lost it."""


@dataclass(frozen=True)
class Holder:
    """Who holds a sweep's lock, and until when (seconds since the epoch)."""

    host: str
    pid: int
    owner: str
    expires: float

    @classmethod
    def from_json(cls, text: str) -> Holder:
        try:
            raw = json.loads(text)
        except ValueError:
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        pid = raw.get("pid")
        expires = raw.get("expires")
        return cls(
            host=str(raw.get("host", "?")),
            pid=pid if isinstance(pid, int) else -1,
            owner=str(raw.get("owner", "")),
            # a lock file of an older version has no lease: it is never renewed
            expires=float(expires) if isinstance(expires, (int, float)) else 0.0,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def is_stale(self, now: float | None = None) -> bool:
        """True when a successor may take the lock over."""
        if self.host == lock_host():  # on this host the process table decides
            return not _alive(self.pid)
        return (time.time() if now is None else now) > self.expires

    def describe(self) -> str:
        until = time.strftime("%H:%M:%S UTC", time.gmtime(self.expires))
        return f"process {self.pid} on host {self.host} (lease renewed while it runs; it expires at {until})"


def lease_seconds() -> float:
    raw = os.environ.get(LEASE_ENV)
    if raw is None:
        return DEFAULT_LEASE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise AdxError(f"`{LEASE_ENV}`: must be a positive number of seconds, but got {raw!r}")
    return value


class _FileBackend:
    """The lock file on a local or shared filesystem. The tag is the owner id."""

    def __init__(self, path: str):
        self.path = path

    def create(self, holder: Holder) -> str | None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        with os.fdopen(fd, "w") as f:
            f.write(holder.to_json())
        return holder.owner

    def read(self) -> tuple[Holder, str] | None:
        try:
            with open(self.path) as f:
                holder = Holder.from_json(f.read())
        except FileNotFoundError:
            return None
        return holder, holder.owner

    def replace(self, tag: str, holder: Holder) -> str | None:
        """Put ``holder`` in place of the lock tagged ``tag``; None if the lock is no longer that one."""
        if tag == holder.owner:  # renewing our own lease: nobody else writes while it is valid
            tmp = f"{self.path}.{holder.owner}.tmp"
            with open(tmp, "w") as f:
                f.write(holder.to_json())
            current = self.read()
            if current is None or current[1] != tag:
                os.unlink(tmp)
                return None
            os.replace(tmp, self.path)
            return holder.owner
        # taking a stale lock over: move it aside (atomic), check that what moved is the stale
        # lock and not a successor's fresh one, then create ours
        aside = f"{self.path}.{holder.owner}.stale"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return None
        with open(aside) as f:
            moved = Holder.from_json(f.read())
        if moved.owner != tag:  # another successor was faster: put its lock back
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
            os.unlink(aside)
            return None
        os.unlink(aside)
        return self.create(holder)

    def delete(self, tag: str) -> None:
        current = self.read()
        if current is not None and current[1] == tag:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


class _S3Backend:
    """The lock object on S3 (or an S3-compatible server), with conditional writes. The tag is the ETag."""

    def __init__(self, uri: str, path: str):
        try:
            import boto3
            from botocore.exceptions import ClientError
        except ImportError:
            raise AdxError(
                f"storage {uri!r}: the one-driver lock on S3 needs boto3: "
                "pip install 'additive-decoders[cluster]' (or boto3)"
            ) from None
        self._client_error = ClientError
        query = parse_qs(urlsplit(uri).query)
        endpoint = query.get("endpoint_override", [None])[0]
        scheme = query.get("scheme", ["https"])[0]
        kwargs: dict[str, Any] = {}
        if endpoint:
            kwargs["endpoint_url"] = endpoint if "://" in endpoint else f"{scheme}://{endpoint}"
        region = query.get("region", [None])[0]
        if region:
            kwargs["region_name"] = region
        self.client = boto3.client("s3", **kwargs)
        self.bucket, _, self.key = path.partition("/")

    def _code(self, exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def _put(self, holder: Holder, **condition: str) -> str | None:
        try:
            out = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=holder.to_json().encode(), **condition)
        except self._client_error as exc:
            if self._code(exc) in {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409"}:
                return None
            raise
        return str(out["ETag"])

    def create(self, holder: Holder) -> str | None:
        return self._put(holder, IfNoneMatch="*")

    def read(self) -> tuple[Holder, str] | None:
        try:
            out = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self._client_error as exc:
            if self._code(exc) in {"NoSuchKey", "404"}:
                return None
            raise
        return Holder.from_json(out["Body"].read().decode()), str(out["ETag"])

    def replace(self, tag: str, holder: Holder) -> str | None:
        return self._put(holder, IfMatch=tag)

    def delete(self, tag: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=tag)
        except self._client_error:
            pass  # not ours any more, or already gone


def _backend(files: SweepFiles) -> _FileBackend | _S3Backend | None:
    path = files.dir + "/.lock"
    if files.storage.is_local:
        return _FileBackend(path)
    if files.storage.uri.startswith("s3://"):
        return _S3Backend(files.storage.uri, path)
    return None


def current_holder(files: SweepFiles) -> Holder | None:
    """The live holder of a sweep's lock (None when free or stale)."""
    backend = _backend(files)
    found = backend.read() if backend is not None else None
    if found is None or found[0].is_stale():
        return None
    return found[0]


class SweepLock:
    """Hold a sweep's lock while its driver runs (a context manager); see the module docstring."""

    def __init__(self, files: SweepFiles, lease_s: float | None = None, wait: bool = False, notify=None):
        self.files = files
        self.lease_s = lease_seconds() if lease_s is None else lease_s
        self.wait = wait  # wait once for a lease held on another host to run out
        self.notify = notify  # called with a line when the driver waits
        self.backend = _backend(files)
        self.owner = uuid.uuid4().hex
        self.tag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def _me(self) -> Holder:
        return Holder(lock_host(), os.getpid(), self.owner, time.time() + self.lease_s)

    def __enter__(self) -> SweepLock:
        if self.backend is None:
            warnings.warn(
                f"storage {self.files.storage.uri!r} has no one-driver lock (local paths and s3:// have one): "
                f"run one driver per sweep yourself",
                LockWarning,
                stacklevel=2,
            )
            return self
        waited = False
        for _ in range(4):
            self.tag = self.backend.create(self._me())
            if self.tag is None:
                found = self.backend.read()
                if found is None:
                    continue  # released in between: try again
                other, other_tag = found
                if not other.is_stale():
                    remaining = other.expires - time.time()
                    if self.wait and not waited and other.host != lock_host() and remaining <= self.lease_s:
                        if self.notify is not None:
                            self.notify(
                                f"[{self.files.name}] the lock is held by {other.describe()}; waiting {remaining:.0f} s "
                                f"for its lease to run out (a dead driver stops renewing it; {LEASE_ENV})"
                            )
                        time.sleep(max(remaining, 0.0) + 0.5)
                        waited = True
                        continue
                    raise AdxError(self._refusal(other, remaining, waited))
                self.tag = self.backend.replace(other_tag, self._me())
            if self.tag is not None:
                self._thread = threading.Thread(target=self._renew, name="adx-sweep-lock", daemon=True)
                self._thread.start()
                return self
        raise AdxError(f"cannot take the lock of sweep {self.files.name!r}: other drivers keep taking it")

    def _refusal(self, other: Holder, remaining: float, waited: bool) -> str:
        name = self.files.name
        text = f"sweep {name!r} is already being run by {other.describe()}"
        if waited:
            return text + (
                "; it renewed its lease while this driver waited, so it is alive. Stop it first, or, if it is stuck, "
                f"`adx sweep resume {name}` takes over once it stops renewing (within {LEASE_ENV}, "
                f"{self.lease_s:g} s here)"
            )
        if other.host == lock_host():
            return text + f"; it runs on this host: stop it first, then `adx sweep resume {name}`"
        return text + (
            f"; if that driver died, `adx sweep resume {name}` can take over once its lease runs out, in "
            f"{max(remaining, 0):.0f} s ({LEASE_ENV}, {self.lease_s:g} s here)"
        )

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            assert self.backend is not None and self.tag is not None
            try:
                tag = self.backend.replace(self.tag, self._me())
            except Exception as exc:  # storage hiccup: try again at the next beat
                warnings.warn(f"sweep {self.files.name!r}: could not renew the lock ({exc})", LockWarning, stacklevel=1)
                continue
            if tag is None:
                self.lost = True
                warnings.warn(
                    f"sweep {self.files.name!r}: another driver took the lock over (this one stalled past its lease)",
                    LockWarning,
                    stacklevel=1,
                )
                return
            self.tag = tag

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.backend is not None and self.tag is not None and not self.lost:
            self.backend.delete(self.tag)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
