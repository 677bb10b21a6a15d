"""One path layer: local folders and object-store URLs (``gs://``, ``s3://``, ``az://``, ``hf://``) alike.

Every file ganjax reads or writes goes through these functions (or through
:func:`path`, an ``etils.epath.Path``). Local paths keep POSIX behaviour
(temp file + rename for atomic writes); on an object store a single object
upload is atomic by itself (readers see the old or the new object, never a
half-written one), so it is written directly.

``gs://`` goes through fsspec/gcsfs rather than ``tf.io.gfile``: gcsfs and
the Cloud Storage client honour ``STORAGE_EMULATOR_HOST`` (tests run against
a GCS API emulator), TensorFlow's GCS file system does not. This is set
(``EPATH_USE_TF=false``) before ``etils.epath`` picks its backend; an
explicit ``EPATH_USE_TF`` in the environment wins.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from typing import BinaryIO, Iterator

os.environ.setdefault("EPATH_USE_TF", "false")

import fsspec.config  # noqa: E402
from etils import epath  # noqa: E402 - after EPATH_USE_TF

# Several processes and machines write one bucket (a trainer and its reader, sweep workers): a cached
# listing would show them a stale folder, so gcsfs lists afresh each time.
for _protocol in ("gs", "gcs"):
    fsspec.config.conf.setdefault(_protocol, {}).setdefault("use_listings_cache", False)

from ganjax.errors import ConfigError  # noqa: E402

# URL scheme → the environment variables that give it credentials (named by the unreachable-bucket error).
SCHEMES: dict[str, tuple[str, ...]] = {
    "gs": ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"),
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"),
    "az": ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME"),
    "hf": ("HF_TOKEN",),
}


def scheme(location: str | os.PathLike) -> str | None:
    """``'gs'`` for ``gs://b/x``, None for a local path; ``ConfigError`` for a scheme epath cannot open."""
    text = os.fspath(location)
    if "://" not in text:
        return None
    name = text.split("://", 1)[0]
    if name not in SCHEMES:
        raise ConfigError(f"{text}: unknown URL scheme {name!r}; supported: a local path or "
                          f"{', '.join(s + '://' for s in SCHEMES)}")
    return name


def is_remote(location: str | os.PathLike) -> bool:
    """True for an object-store URL (no POSIX append, rename or ``O_EXCL``)."""
    return scheme(location) is not None


def path(location: str | os.PathLike) -> epath.Path:
    """``location`` as an ``epath.Path`` (scheme checked)."""
    scheme(location)
    return epath.Path(location)


def join(location: str | os.PathLike, *parts: str) -> str:
    """``os.path.join`` that keeps a URL a URL."""
    if is_remote(location):
        return posixpath.join(os.fspath(location), *parts)
    return os.path.join(location, *parts)


def dirname(location: str) -> str:
    """The parent folder of ``location`` (a URL stays a URL)."""
    return posixpath.dirname(location.rstrip("/")) if is_remote(location) else os.path.dirname(location)


def absolute(location: str) -> str:
    """An absolute local path, or the URL unchanged."""
    return location if is_remote(location) else os.path.abspath(location)


def exists(location: str) -> bool:
    return path(location).exists()


def isfile(location: str) -> bool:
    return path(location).is_file()


def isdir(location: str) -> bool:
    return path(location).is_dir()


def listdir(location: str) -> list[str]:
    """Names in folder ``location`` ([] if it does not exist)."""
    p = path(location)
    return sorted(c.name for c in p.iterdir()) if p.is_dir() else []


def makedirs(location: str) -> None:
    """Creates folder ``location`` and its parents (a no-op on object stores, which have no folders)."""
    if not is_remote(location):
        os.makedirs(location, exist_ok=True)


def read_text(location: str) -> str:
    return path(location).read_text()


def read_bytes(location: str) -> bytes:
    return path(location).read_bytes()


def open_binary(location: str) -> BinaryIO:
    """``location`` opened for reading bytes (seekable; an object is streamed in ranges, not downloaded whole)."""
    return path(location).open("rb") if is_remote(location) else open(location, "rb")


def write_bytes_atomic(location: str, data: bytes) -> None:
    """Writes ``data`` to ``location``: a kill leaves the old or the new content, never a mix."""
    if is_remote(location):
        path(location).write_bytes(data)  # one object upload: atomic
        return
    _replace_local(location, data, location + ".tmp")


def publish_bytes(location: str, data: bytes) -> None:
    """Writes ``data`` to ``location`` (its folder created) for a file that several processes may write at
    once, each the same content (a cache): atomic as :func:`write_bytes_atomic`, with a temporary file of
    this process's own on local disk. ``OSError`` if it cannot be written."""
    if is_remote(location):
        write_bytes_atomic(location, data)
        return
    os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
    _replace_local(location, data, f"{location}.tmp{os.getpid()}")


def _replace_local(location: str, data: bytes, tmp: str) -> None:
    """Writes ``data`` to the local file ``tmp``, then renames it to ``location`` (removing ``tmp`` if that fails)."""
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, location)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(location: str, text: str) -> None:
    """:func:`write_bytes_atomic` of ``text`` (UTF-8)."""
    write_bytes_atomic(location, text.encode())


def remove(location: str) -> None:
    """Deletes file ``location`` if it exists."""
    try:
        path(location).unlink()
    except FileNotFoundError:
        pass


def rmtree(location: str) -> None:
    """Deletes folder ``location`` and everything under it, if it exists (on object stores: every object
    under the prefix)."""
    if is_remote(location):
        for name in list(walk_files(location)):
            remove(name)
        return
    shutil.rmtree(location, ignore_errors=True)


def copy(source: str, target: str) -> None:
    """Copies file ``source`` to ``target`` (either may be a URL), atomically at the target."""
    write_bytes_atomic(target, read_bytes(source))


def move(source: str, target: str) -> None:
    """Moves a file or folder (on object stores: copy, then delete)."""
    path(source).rename(target)


def walk_files(location: str) -> Iterator[str]:
    """Every file at any depth under folder ``location``."""
    prefix = f"{scheme(location)}://" if is_remote(location) else ""
    for root, _, files in path(location).walk():
        root = os.fspath(root)
        root = root if root.startswith(prefix) else prefix + root  # fsspec drops the scheme
        for name in files:
            yield join(root, name)


def _bucket_exists_gcs(bucket: str) -> bool:
    """One request, no retries (gcsfs retries a refused connection for minutes)."""
    from google.api_core import exceptions
    from google.cloud import storage as gcs

    try:
        gcs.Client().get_bucket(bucket, timeout=20, retry=None)
    except exceptions.NotFound:
        return False
    return True


def _bucket_exists_epath(url: str) -> bool:
    return path(url).is_dir()


def check_reachable(location: str) -> None:
    """Refuses (``ConfigError``, one line) an object-store URL whose bucket cannot be read.

    Names the URL and the credential variables of its scheme. Local paths pass.
    """
    name = scheme(location)
    if name is None:
        return
    bucket = location.split("://", 1)[1].split("/", 1)[0]
    variables = ", ".join(SCHEMES[name])
    try:
        found = _bucket_exists_gcs(bucket) if name == "gs" else _bucket_exists_epath(f"{name}://{bucket}")
    except Exception as e:  # noqa: BLE001 - auth, DNS and HTTP errors of the many clients
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(f"cannot reach {location}: {type(e).__name__}: {first}; check the URL and the "
                          f"credentials ({variables})") from None
    if not found:
        raise ConfigError(f"cannot reach {location}: bucket {name}://{bucket} does not exist; create it or fix "
                          f"the URL (credentials: {variables})")
