"""moto's server on 127.0.0.1 with DynamoDB's per-request atomicity.

moto's server handles requests on several threads without locking its
backend, so two concurrent conditional writes (or ``ADD``/``if_not_exists``
counters) to one item can both "succeed" — something DynamoDB never does.
:class:`LocalServer` serializes request handling in the engine, which keeps
every request atomic (stronger than DynamoDB's per-item guarantee, never
weaker). Client threads and HTTP stay concurrent.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


class _Serialized:
    """WSGI middleware running one request at a time, body included."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class LocalServer(ThreadedMotoServer):
    """A moto server on ``127.0.0.1:port`` whose requests are atomic."""

    def __init__(self, port: int, ip_address: str = "127.0.0.1") -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)

    @property
    def endpoint(self) -> str:
        """The endpoint URL to give boto3 / ``CQRS_ENDPOINT_URL``."""
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def _server_entry(self) -> None:
        app = _Serialized(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
