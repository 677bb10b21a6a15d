"""Leases: create-if-absent objects with an expiry, on local disk and on object stores alike.

A lease is a small JSON object ``{"owner", "host", "pid", "expires"}`` at a
path (a workdir's ``.lock`` on ``gs://``, a sweep trial's claim file). It is
taken with a *create-if-absent* write: on Cloud Storage an upload with the
precondition ``ifGenerationMatch=0``; on local disk ``O_CREAT | O_EXCL``. Its
holder renews it (a compare-and-swap on the generation it last wrote) before it
expires; a lease whose ``expires`` has passed belongs to a dead holder and is
taken over with the same compare-and-swap, so of two racing takers exactly one
wins. Clocks of the machines are assumed to agree to well within a lease
(NTP), which cloud VMs do.

The conditional operations live in :data:`BACKENDS` (``gs`` → the Cloud
Storage client's generation preconditions; ``local`` → local files under an
``flock`` of their folder); the lease logic above them is one implementation.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Protocol

from ganjax import storage
from ganjax.errors import ConfigError
from ganjax.registry import Registry

log = logging.getLogger("ganjax")

LEASE_SECONDS = float(os.environ.get("GANJAX_LEASE_SECONDS", "60"))  # how long a silent holder keeps a lease


class Objects(Protocol):
    """Conditional writes on one storage backend; a ``token`` identifies one version of an object."""

    def create(self, location: str, text: str) -> Any | None:
        """Writes ``text`` if ``location`` does not exist; its token, or None if it existed."""

    def read(self, location: str) -> tuple[str, Any] | None:
        """``(text, token)``, or None if ``location`` does not exist."""

    def replace(self, location: str, text: str, token: Any) -> Any | None:
        """Writes ``text`` if ``location`` is still the version ``token``; the new token, or None."""

    def delete(self, location: str, token: Any) -> None:
        """Deletes ``location`` if it is still the version ``token``."""


BACKENDS = Registry("lease backend")


@BACKENDS.register("local")
class LocalObjects:
    """Local files: ``O_EXCL`` creates; replace and delete hold an ``flock`` on the folder; token = text."""

    @staticmethod
    @contextlib.contextmanager
    def _guard(location: str):
        fd = os.open(os.path.dirname(os.path.abspath(location)), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def create(self, location: str, text: str) -> str | None:
        try:
            fd = os.open(location, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return text

    def read(self, location: str) -> tuple[str, str] | None:
        try:
            with open(location) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return text, text

    def replace(self, location: str, text: str, token: str) -> str | None:
        with self._guard(location):
            current = self.read(location)
            if current is None or current[1] != token:
                return None
            storage.write_text_atomic(location, text)
            return text

    def delete(self, location: str, token: str) -> None:
        with self._guard(location):
            current = self.read(location)
            if current is not None and current[1] == token:
                os.remove(location)


@BACKENDS.register("gs")
class GcsObjects:
    """Cloud Storage: generation preconditions (``ifGenerationMatch``); token = the object's generation.

    The client honours ``STORAGE_EMULATOR_HOST`` (tests) and Application Default Credentials.
    """

    def __init__(self):
        from google.api_core import exceptions
        from google.cloud import storage as gcs

        self._client = gcs.Client()
        self._lost = (exceptions.PreconditionFailed, exceptions.NotFound)

    def _blob(self, location: str):
        bucket, _, name = location.split("://", 1)[1].partition("/")
        return self._client.bucket(bucket).blob(name)

    def _upload(self, location: str, text: str, generation: int) -> int | None:
        blob = self._blob(location)
        try:
            blob.upload_from_string(text, if_generation_match=generation)
        except self._lost:
            return None
        return blob.generation

    def create(self, location: str, text: str) -> int | None:
        return self._upload(location, text, 0)

    def read(self, location: str) -> tuple[str, int] | None:
        blob = self._blob(location)
        try:
            text = blob.download_as_text()
        except self._lost:
            return None
        return text, blob.generation

    def replace(self, location: str, text: str, token: int) -> int | None:
        return self._upload(location, text, token)

    def delete(self, location: str, token: int) -> None:
        try:
            self._blob(location).delete(if_generation_match=token)
        except self._lost:
            pass


def backend(location: str) -> Objects:
    """The conditional-write backend of ``location``'s scheme."""
    name = storage.scheme(location) or "local"
    if name not in BACKENDS:
        raise ConfigError(f"{location}: leases (workdir locks, sweep claims) need conditional writes, which "
                          f"ganjax implements for: {', '.join(BACKENDS)}")
    return _objects(name)


@functools.cache
def _objects(name: str) -> Objects:
    """One client per backend and process."""
    return BACKENDS[name]()


def _body(owner: str, expires: float) -> str:
    return json.dumps({"owner": owner, "host": socket.gethostname(), "pid": os.getpid(), "expires": expires})


def holder(location: str) -> dict | None:
    """The lease at ``location`` if it is live (not expired), else None."""
    current = backend(location).read(location)
    if current is None:
        return None
    info = _parse(current[0])
    return info if info.get("expires", 0) > time.time() else None


def _parse(text: str) -> dict:
    try:
        info = json.loads(text)
    except json.JSONDecodeError:  # an empty or foreign file: treat as expired
        return {}
    return info if isinstance(info, dict) else {}


class Lease:
    """A lease at ``location``: :meth:`acquire` takes it (or a dead holder's), :meth:`renew` keeps it.

    ``seconds`` is how long it lasts unrenewed; :meth:`start_heartbeat` renews
    it every ``seconds / 4`` on a daemon thread until :meth:`release`. A holder
    asks :meth:`confirm` before each write that only the holder may make: a
    stall past the lease (a paused process, a partitioned or suspended VM)
    comes back to a lease renewed by the heartbeat, or taken over by another
    holder (then :meth:`confirm` says by whom, and the holder must stop).
    """

    def __init__(self, location: str, seconds: float | None = None):
        self.location = location
        self.seconds = LEASE_SECONDS if seconds is None else seconds
        self.owner = uuid.uuid4().hex
        self.objects = backend(location)
        self.token: Any = None
        self.taken_over: dict | None = None  # the expired lease this one replaced
        self.lost = False  # a renewal found another holder (this process stalled past its lease)
        self.expires = 0.0  # when the lease this holder last wrote runs out (time.time())
        self._renewing = threading.Lock()  # the heartbeat and confirm() renew one at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> dict | None:
        """Takes the lease; returns None on success, else the live holder's ``{"host", "pid", ...}``."""
        for _ in range(3):
            expires = time.time() + self.seconds
            self.token = self.objects.create(self.location, _body(self.owner, expires))
            if self.token is not None:
                self.expires = expires
                return None
            current = self.objects.read(self.location)
            if current is None:  # released meanwhile: create again
                continue
            info = _parse(current[0])
            if info.get("expires", 0) > time.time():
                return info
            expires = time.time() + self.seconds
            self.token = self.objects.replace(self.location, _body(self.owner, expires), current[1])
            if self.token is not None:
                self.expires, self.taken_over = expires, info
                log.warning("took over the expired lease %s of %s (pid %s)", self.location, info.get("host", "?"),
                            info.get("pid", "?"))
                return None
        current = self.objects.read(self.location)
        return _parse(current[0]) if current else {"host": "?", "pid": "?"}

    def renew(self) -> bool:
        """Extends the lease; False (and ``lost``) if another holder replaced it."""
        with self._renewing:
            if self.lost:
                return False
            expires = time.time() + self.seconds
            token = self.objects.replace(self.location, _body(self.owner, expires), self.token)
            if token is None:
                self.lost = True
                log.error("lost the lease %s to another holder (this process stalled past %.0f s)", self.location,
                          self.seconds)
                return False
            self.token, self.expires = token, expires
            return True

    def confirm(self) -> str | None:
        """None while this process holds the lease, else why not (one phrase, naming the new holder).

        Free while more than half of the lease is left (the heartbeat keeps it
        so); otherwise (after a stall) it renews first, a compare-and-swap that
        fails if another holder took the lease over meanwhile. A renewal that
        raises (network) is tolerated until the lease runs out.
        """
        if not self.lost and self.expires - time.time() > self.seconds / 2:
            return None
        try:
            if self.renew():
                return None
        except Exception as e:  # noqa: BLE001 - the storage client's network and HTTP errors
            if time.time() < self.expires:
                log.warning("could not renew the lease %s: %s", self.location, e)
                return None
            first = (str(e).strip().splitlines() or [""])[0][:200]
            return f"could not be renewed before it expired ({type(e).__name__}: {first})"
        current = self.objects.read(self.location)
        if current is None:
            return "was taken over by another holder, which has released it since"
        return f"was taken over by {describe(_parse(current[0]))}"

    def start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(self.seconds / 4):
                try:
                    if not self.renew():
                        return
                except Exception as e:  # noqa: BLE001 - a network blip: retry at the next beat
                    log.warning("could not renew the lease %s: %s", self.location, e)
        self._thread = threading.Thread(target=beat, name="ganjax-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stops the heartbeat and deletes the lease if it is still this one."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.token is not None and not self.lost:
            self.objects.delete(self.location, self.token)
        self.token = None


def describe(info: dict) -> str:
    """``'host h, process 12, lease until 12:00:03 UTC'`` for a lease's info."""
    until = time.strftime("%H:%M:%S UTC", time.gmtime(info["expires"])) if "expires" in info else "?"
    return f"host {info.get('host', '?')}, process {info.get('pid', '?')}, lease until {until}"
