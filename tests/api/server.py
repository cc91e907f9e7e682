"""Serve an ASGI app over real HTTP for tests: uvicorn in a background thread on a free loopback port.

    from tests.api.server import serve

    @pytest.fixture(scope="module")
    def base_url() -> Iterator[str]:
        with serve() as url:          # create_app() unless an app is given
            yield url

The socket is bound before uvicorn starts, so there is no race for the port. The server shares the test
process, hence the database, Redis and settings that tests/conftest.py set up.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve(app: Any = None, *, startup_timeout: float = 15.0) -> Iterator[str]:
    """Run `app` (default: a fresh `create_app()`) until the block ends; yields its base URL."""
    if app is None:
        from app.main import create_app

        app = create_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the test server on port {port} did not start (see the log above)")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
