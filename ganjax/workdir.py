"""One process per workdir: a lock file that survives crashes correctly.

On local disk the lock holds the owner's pid (a dead owner's lock is taken
over at once); on an object store (``gs://``), which has neither ``O_EXCL``
nor pids across machines, it is a :class:`ganjax.lease.Lease`: a
create-if-absent object renewed by a heartbeat, taken over once it expires.
"""

from __future__ import annotations

import errno
import logging
import os

from ganjax import lease as lease_lib
from ganjax import storage
from ganjax.errors import ConfigError, GanjaxError

log = logging.getLogger("ganjax")


class WorkdirBusy(GanjaxError):
    """Another live process is training in this workdir."""


class WorkdirLost(GanjaxError):
    """This process's workdir lease was taken over by another trainer: it must write nothing more."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


def _lock_pid(path: str) -> int:
    """The pid written in the lock file ``path`` (0 if missing or unreadable)."""
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _live_holder(path: str) -> int | None:
    """The pid in lock file ``path`` if it is another live process, else None (no lock, or a stale one)."""
    pid = _lock_pid(path)
    return pid if pid and pid != os.getpid() and _alive(pid) else None


def lock_holder(workdir: str) -> int | str | None:
    """The pid of another live process holding ``workdir``'s lock, else None (no lock, or a stale one).

    On an object store: the live lease's holder described (``'host h, process 12, ...'``).
    """
    if storage.is_remote(workdir):
        info = lease_lib.holder(storage.join(workdir, ".lock"))
        return lease_lib.describe(info) if info else None
    return _live_holder(os.path.join(workdir, ".lock"))


class WorkdirLock:
    """``with WorkdirLock(workdir):`` holds ``workdir/.lock`` (the owner's pid).

    A lock left by a dead process (kill -9, crash, power loss) is taken over;
    a lock held by a live process refuses with a clear error. On an object
    store the holder calls :meth:`check` before writing: a lease taken over
    while this process stalled raises :class:`WorkdirLost`.
    """

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = storage.join(workdir, ".lock")
        self.lease = lease_lib.Lease(self.path) if storage.is_remote(workdir) else None

    def _enter_lease(self) -> "WorkdirLock":
        holder = self.lease.acquire()
        if holder is not None:
            raise WorkdirBusy(f"{self.workdir} is in use by {lease_lib.describe(holder)}; wait for it to finish, "
                              f"stop it, or use another --workdir (a dead holder's lease expires "
                              f"{self.lease.seconds:.0f} s after its last heartbeat)")
        self.lease.start_heartbeat()
        return self

    def check(self) -> None:
        """Raises :class:`WorkdirLost` if another trainer took this workdir's lease over (see
        :meth:`ganjax.lease.Lease.confirm`). A local lock (the owner's pid) never expires: a no-op."""
        if self.lease is None:
            return
        reason = self.lease.confirm()
        if reason is not None:
            raise WorkdirLost(f"{self.workdir}: this trainer's lease {reason}, after this process stalled past "
                              f"its {self.lease.seconds:.0f} s lease (paused, partitioned or suspended); stopped "
                              f"without writing anything more into the workdir")

    def __enter__(self) -> "WorkdirLock":
        if self.lease is not None:
            return self._enter_lease()
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid = _live_holder(self.path)
                if pid is not None:
                    raise WorkdirBusy(f"{os.path.dirname(self.path)} is in use by process {pid}; "
                                      f"wait for it to finish, stop it, or use another --workdir") from None
                log.warning("taking over a stale lock of process %s in %s", pid or "?", self.path)
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise WorkdirBusy(f"could not take the lock {self.path}; another process is racing for it")

    def __exit__(self, *exc) -> None:
        if self.lease is not None:
            self.lease.release()
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def check_workdir_path(workdir: str) -> None:
    """Refuses (``ConfigError``) a ``workdir`` that is a file, or lies under one, or an object-store URL
    that cannot be reached, before anything is written."""
    if storage.is_remote(workdir):
        storage.check_reachable(workdir)
        return
    path = os.path.abspath(workdir)
    while True:
        if os.path.exists(path) and not os.path.isdir(path):
            where = "is a file" if path == os.path.abspath(workdir) else f"lies under {path}, which is a file"
            raise ConfigError(f"--workdir={workdir} {where}, not a folder; give a new folder or an existing "
                              f"ganjax workdir")
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def remove_if_empty(workdir: str) -> None:
    """Removes ``workdir`` if it holds no file at any depth (a run that failed before writing anything).

    Object stores have no empty folders: nothing to remove there.
    """
    if storage.is_remote(workdir):
        return
    for _, _, files in os.walk(workdir):
        if files:
            return
    for dirpath, _, _ in sorted(os.walk(workdir), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(dirpath)
        except OSError:  # another process wrote into it meanwhile: keep it
            return
