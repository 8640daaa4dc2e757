"""moto's S3 server on loopback, for the tests of what writes logs to an object store and
reads them back (the log sink, the whole loop): a real S3 API, reached by the real s3fs
client. Amazon's S3 cannot be reached here, so only the server is a stand-in."""

from __future__ import annotations

import time

import httpx
from moto.server import ThreadedMotoServer

from llmops.ship.localserver import free_port
from llmops.watch import logs

BUCKET = "llmops-logs"
SECRET = "s3cr3t-value-never-logged"


class Store:
    """moto's S3 server on a loopback port, stopped and started again on the same port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None

    def start(self, bucket: str = BUCKET) -> Store:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        httpx.put(f"{self.url}/{bucket}", timeout=10).raise_for_status()
        return self

    def stop(self) -> None:
        """Down, its data gone (a store back from an outage starts empty here)."""
        httpx.post(f"{self.url}/moto-api/reset", timeout=10)
        self.server.stop()
        # ThreadedMotoServer.stop() leaves the socket listening (connections would hang
        # until a timeout); closed, a client is refused at once, as by a store that is down.
        self.server._server.server_close()
        self.server = None

    def env(self) -> dict[str, str]:
        """The standard AWS environment pointing at this store."""
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.url}  # fmt: skip


def until(check, what: str, timeout: float = 30.0) -> None:
    """Wait for `check()` to hold (a background thread's work), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def read_back(uri: str, kind: str = "requests", reading: logs.Reading | None = None) -> list:
    """The lines `llmops.watch.logs.read` finds in the last hour (a fresh s3fs client: fsspec
    caches one per process, with its listings and the endpoint of an earlier test)."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return list(logs.read(uri, kind, *logs.window(1), reading=reading))


def ids(lines: list[dict]) -> list[str]:
    return [line["request_id"] for line in lines]
