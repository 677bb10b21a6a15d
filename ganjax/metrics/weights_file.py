"""Network weights as deterministic ``.npz`` files, and the cache folder they live in.

Used by the domain classifier and the FID Inception network. A file holds the
flattened Flax variables (keys joined by ``/``) plus one ``__info__`` entry,
a JSON object stored as a 0-d string array. Entries are sorted and carry a
fixed zip timestamp, so equal variables and info give byte-identical files
and the same sha256, which is recorded with every score. The cache folder
may be a ``gs://`` URL (:mod:`ganjax.storage`): files are read through the
path layer and each is written as one whole object.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from typing import Any, Mapping

import numpy as np
from flax import traverse_util

from ganjax import storage
from ganjax.errors import WriteError, describe_os_error

INFO_KEY = "__info__"


def default_cache_dir() -> str:
    """``$GANJAX_CACHE`` (a folder or a ``gs://`` URL) or ``~/.cache/ganjax``."""
    return os.environ.get("GANJAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ganjax")


def local_cache_dir() -> str:
    """:func:`default_cache_dir` when it is a local folder, else ``~/.cache/ganjax``: for the files that
    must be local (a log a subprocess writes, memory-mapped arrays)."""
    cache = default_cache_dir()
    return os.path.join(os.path.expanduser("~"), ".cache", "ganjax") if storage.is_remote(cache) else cache


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's bytes (a local path or URL)."""
    h = hashlib.sha256()
    with storage.open_binary(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def npz_bytes(flat: Mapping[str, np.ndarray]) -> bytes:
    """The deterministic ``.npz`` of ``{name: array}``: entries sorted, fixed timestamps, uncompressed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key in sorted(flat):
            zinfo = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zinfo.external_attr = 0o644 << 16
            with zf.open(zinfo, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.ascontiguousarray(flat[key]), allow_pickle=False)
    return buffer.getvalue()


def save(path: str, variables: Mapping[str, Any], info: Mapping[str, Any], what: str) -> None:
    """Writes ``variables`` and ``info`` to ``path`` atomically (:func:`ganjax.storage.publish_bytes`).

    Args:
      path: the ``.npz`` to (re)write (a local path or URL); its folder is created.
      variables: a nested dict of arrays (Flax variables).
      info: JSON-serialisable metadata, read back by :func:`load`.
      what: how error messages name the file (e.g. ``"the domain classifier cache"``).

    Raises:
      WriteError: the folder or file cannot be written (disk full, read-only, ...).
    """
    flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(dict(variables)).items()}
    flat[INFO_KEY] = np.array(json.dumps(dict(info), sort_keys=True))
    try:
        storage.publish_bytes(path, npz_bytes(flat))
    except OSError as e:
        raise WriteError(f"cannot write {what} {path}: {describe_os_error(e)}") from None


def arrays_sha256(flat: Mapping[tuple[str, ...], np.ndarray]) -> str:
    """Hex sha256 of the arrays alone: each name, dtype, shape and bytes, in sorted name order.

    Unlike :func:`sha256_file` it ignores the ``info`` record (which holds,
    e.g., the training time), so two trainings that give the same weights
    give the same digest.
    """
    h = hashlib.sha256()
    for key in sorted(flat):
        array = np.ascontiguousarray(flat[key])
        h.update(json.dumps(["/".join(key), array.dtype.str, list(array.shape)]).encode())
        h.update(array.tobytes())
    return h.hexdigest()


def load(path: str) -> tuple[dict[tuple[str, ...], np.ndarray], dict]:
    """Reads a file written by :func:`save` → ``(flat float32 variables, info)``.

    Raises whatever numpy / zipfile / json raise on a damaged file; callers
    turn that into one line naming the file and how to recreate it.
    """
    with storage.open_binary(path) as raw, np.load(raw, allow_pickle=False) as f:
        info = json.loads(f[INFO_KEY].item()) if INFO_KEY in f.files else {}
        flat = {tuple(k.split("/")): np.asarray(f[k], np.float32) for k in f.files if k != INFO_KEY}
    if not isinstance(info, dict):
        raise ValueError(f"its {INFO_KEY} entry is not a JSON object")
    return flat, info
