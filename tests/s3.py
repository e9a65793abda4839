"""An S3-compatible server for tests: moto's server mode, started by the test run on a free port.

Each test that needs a bucket creates its own (`new_bucket`), so tests and runs never share objects.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT = 60.0


@dataclass
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]

    def new_bucket(self) -> str:
        name = f"horde-test-{uuid.uuid4().hex[:12]}"
        response = httpx.put(f"{self.endpoint}/{name}", timeout=10)
        assert response.status_code == 200, response.text
        return name

    def settings(self, bucket: str) -> dict[str, str]:
        """The HORDE_S3_* values (as Settings field names) for a bucket of this server."""
        return {
            "s3_bucket": bucket,
            "s3_endpoint": self.endpoint,
            "s3_access_key_id": "testing",
            "s3_secret_access_key": "testing",
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_s3(log_path: Path) -> S3Server:
    """moto_server on 127.0.0.1 and a free port; returns once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    server = S3Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            httpx.get(f"{server.endpoint}/moto-api/", timeout=2)
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"moto_server did not start; its log:\n{log_path.read_text(errors='replace')}")
