"""One LISTEN thread per process: PostgreSQL's NOTIFYs, handed to whoever subscribed.

The thread holds a connection of its own (a pooled one would be lent out). When it loses it
(PostgreSQL restarted, the network cut), it reconnects with a growing pause, and on each
(re)connection it calls `on_connect`: notifications sent while nobody listened are lost, so
whoever caches must forget everything then.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from gitstore.errors import ControlPlaneUnavailable

if TYPE_CHECKING:
    from gitstore.cluster.control import ControlPlane

__all__ = ["Listener"]

log = logging.getLogger("gitstore.cluster")

Handler = Callable[[str], None]


class Listener:
    """LISTEN on `channels`; each NOTIFY's payload goes to `handlers[channel]`."""

    def __init__(
        self,
        plane: ControlPlane,
        handlers: dict[str, Handler],
        *,
        on_connect: Callable[[], None] = lambda: None,
        on_disconnect: Callable[[], None] = lambda: None,
    ) -> None:
        self._plane = plane
        self._handlers = dict(handlers)
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gitstore-cluster-listen", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pause = 0.1
        while not self._stop.is_set():
            try:
                self._listen()
                pause = 0.1
            except ControlPlaneUnavailable as exc:
                log.warning("LISTEN lost the control plane (retrying in %.1f s): %s", pause, exc.detail)
            except Exception as exc:  # psycopg's, whatever the connection died of
                log.warning("LISTEN lost the control plane (retrying in %.1f s): %s", pause, type(exc).__name__)
            if self.connected.is_set():
                self.connected.clear()
                self._on_disconnect()
            self._stop.wait(pause)
            pause = min(pause * 2, 2.0)

    def _listen(self) -> None:
        import psycopg

        try:
            conn = self._plane.connect()
        except psycopg.Error as exc:
            raise self._plane.unavailable(exc) from None
        with conn:
            for channel in self._handlers:
                conn.execute(f"listen {channel}")
            self.connected.set()
            self._on_connect()
            while not self._stop.is_set():
                # A bounded wait, so a stop is seen within a second; a dead connection raises.
                for note in conn.notifies(timeout=1.0):
                    handler = self._handlers.get(note.channel)
                    if handler is not None:
                        try:
                            handler(note.payload)
                        except Exception:
                            log.exception("a NOTIFY handler failed on %s %r", note.channel, note.payload)
                # notifies() with no traffic never touches the socket's health: ask.
                conn.execute("select 1")
