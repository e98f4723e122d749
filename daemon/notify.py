"""systemd's notify protocol, from the standard library: one datagram per message.

``Type=notify`` makes systemd wait for ``READY=1`` before it calls the service started, shows the
last ``STATUS=`` line in ``systemctl status``, and, with ``WatchdogSec=``, restarts the service
when ``WATCHDOG=1`` stops arriving. The protocol is a datagram of ``NAME=value`` lines sent to the
Unix socket named by ``$NOTIFY_SOCKET`` (a path, or an abstract address written ``@name``), so
no package is needed for it. Outside systemd the variable is unset and every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from loguru import logger


class Notifier:
    """Sends notify messages to the socket systemd named, or nowhere when it named none."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.address = _socket_address(environ.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(environ)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """Send ``NAME=value`` lines (``ready="1"`` becomes ``READY=1``); True when sent.

        A failure is logged and swallowed: systemd going away must not stop a sync.
        """
        if self.address is None:
            return False
        message = "\n".join(f"{name.upper()}={_one_line(value)}" for name, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode())
        except OSError as exc:
            logger.debug("could not notify systemd ({}): {}", type(exc).__name__, exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self.send(ready="1", status=status)

    def status(self, status: str) -> None:
        self.send(status=status)

    def watchdog(self) -> None:
        self.send(watchdog="1")

    def stopping(self) -> None:
        self.send(stopping="1", status="stopping")


def _socket_address(value: str) -> str | None:
    """``$NOTIFY_SOCKET`` as ``connect`` takes it: a leading ``@`` is the abstract namespace."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    return value if value.startswith("/") else None


def _watchdog_seconds(environ: Mapping[str, str]) -> float | None:
    """How often to send ``WATCHDOG=1``, or None when systemd asked for no watchdog.

    systemd sets ``$WATCHDOG_USEC`` to the timeout and ``$WATCHDOG_PID`` to the process it
    expects the pings from; a child that inherited them must not ping for its parent. A third
    of the timeout leaves two more chances before systemd gives up on us.
    """
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 3 / 1_000_000 if usec > 0 else None


def _one_line(value: str) -> str:
    """A value may not break the message into more fields."""
    return " ".join(str(value).split())
