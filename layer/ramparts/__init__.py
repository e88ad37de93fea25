"""Ramparts sensor: watches a Lambda function from inside and enforces its policy.

Three ways to attach it, with the same behaviour:

* exec wrapper: ``AWS_LAMBDA_EXEC_WRAPPER=/opt/ramparts-wrapper``;
* handler redirect: handler ``ramparts.handler``, the real one in ``RAMPARTS_HANDLER``;
* in code: ``@protect`` (or ``protect(handler)``), and ``install()`` for the sensor alone.

Configuration comes from ``RAMPARTS_MODE`` (off | monitor | enforce | learn; default
monitor) and ``RAMPARTS_POLICY`` (a policy file, YAML or JSON, or inline JSON).
This module imports nothing heavy: ``import ramparts`` stays cheap on cold start.
"""

from __future__ import annotations

import time as _time

_IMPORT_T0 = _time.perf_counter()  # sensor.start's install_ms counts from here

from ramparts._errors import RampartsBlocked  # noqa: E402

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~6 ms of cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ramparts._sensor import Sensor

__version__ = "0.1.0"
SCHEMA_VERSION = 1
__all__ = [
    "SCHEMA_VERSION",
    "RampartsBlocked",
    "__version__",
    "active",
    "flush",
    "install",
    "protect",
    "uninstall",
]


def install(
    *, mode: str | None = None, policy: str | None = None, attach: str = "install"
) -> Sensor:
    """Install the sensor process-wide (idempotent: a second call returns the same sensor).

    ``mode`` and ``policy`` (a path or inline JSON) override ``RAMPARTS_MODE`` and
    ``RAMPARTS_POLICY`` for this process.
    """
    from ramparts import _sensor

    current = _sensor._ACTIVE
    if current is not None and current.installed:
        return current
    env: Any = None
    if policy is not None:
        import os

        env = dict(os.environ)
        env["RAMPARTS_POLICY"] = policy
    sensor = _sensor.Sensor(mode=mode, attach=attach, environ=env)
    if current is None:
        sensor._t0 = _IMPORT_T0  # the first install: count the import of the sensor too
    sensor.install()
    if sensor.mode == "off":
        _sensor._ACTIVE = sensor  # remembered, so protect() stays a no-op
    return sensor


def uninstall() -> None:
    """Restore every wrapper and switch the audit hook off (hooks cannot be removed)."""
    from ramparts import _sensor

    if _sensor._ACTIVE is not None:
        _sensor._ACTIVE.uninstall()
    _sensor._ACTIVE = None


def active() -> Sensor | None:
    """The installed sensor, if any."""
    from ramparts import _sensor

    return _sensor._ACTIVE


def flush() -> None:
    """Emit a summary of the events counted so far (useful with ``install()`` alone)."""
    sensor = active()
    if sensor is not None and sensor.installed:
        sensor.flush()


def protect(handler: Callable[..., Any] | None = None, *, attach: str = "decorator") -> Any:
    """Wrap a Lambda handler: installs the sensor and reports per invocation.

    Use as ``@protect``, ``@protect()`` or ``handler = protect(handler)``. Protecting an
    already protected handler returns it unchanged.
    """
    from ramparts._handler import wrap

    if handler is None:
        return lambda fn: wrap(fn, install(attach=attach))
    return wrap(handler, install(attach=attach))


def __getattr__(name: str) -> Any:
    # ``_HANDLER=ramparts.handler``: the runtime looks this attribute up at init time.
    if name == "handler":
        from ramparts._handler import load_redirect

        fn = load_redirect()
        globals()["handler"] = fn
        return fn
    raise AttributeError(f"module 'ramparts' has no attribute {name!r}")
