"""Wrapping handlers: the decorator and the handler redirect (``ramparts.handler``)."""

from __future__ import annotations

import os
import sys

from ramparts._sensor import Sensor

# typing is not imported at run time: it pulls in re, functools, contextlib (~6 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def wrap(fn: Callable[..., Any], sensor: Sensor) -> Callable[..., Any]:
    """Return ``fn`` wrapped so that each call is one invocation for the sensor."""
    if getattr(fn, "__ramparts_protected__", False):
        return fn
    if sensor.mode == "off" or not sensor.installed:
        return fn

    def handler(event: Any, context: Any = None, *args: Any, **kwargs: Any) -> Any:
        outer = sensor.begin(context)
        error: BaseException | None = None
        try:
            return fn(event, context, *args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if outer:
                sensor.end(error)
            else:
                sensor._depth = max(0, sensor._depth - 1)

    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(handler, attr, getattr(fn, attr))
        except (AttributeError, TypeError):
            pass
    handler.__wrapped__ = fn  # type: ignore[attr-defined]
    handler.__ramparts_protected__ = True  # type: ignore[attr-defined]
    return handler


class HandlerConfigError(RuntimeError):
    """RAMPARTS_HANDLER is missing or points back at ramparts."""


def _import_handler(spec: str) -> Callable[..., Any]:
    boot = sys.modules.get("awslambdaric.bootstrap")
    get = getattr(boot, "_get_handler", None)
    if get is not None:
        # The runtime's own loader: import errors look exactly as without Ramparts.
        return get(spec)  # type: ignore[no-any-return]
    import importlib

    modname, _, fname = spec.rpartition(".")
    if not modname:
        raise HandlerConfigError(f"Bad handler {spec!r}: expected module.function")
    module = importlib.import_module(modname.replace("/", "."))
    return getattr(module, fname)  # type: ignore[no-any-return]


def load_redirect() -> Callable[..., Any]:
    """Install the sensor, then import the real handler named by RAMPARTS_HANDLER."""
    from ramparts import install

    attach = os.environ.get("RAMPARTS_ATTACH") or "handler-redirect"
    real = (os.environ.get("RAMPARTS_HANDLER") or "").strip()
    if not real or real == "ramparts.handler":
        raise HandlerConfigError(
            "Ramparts: the handler is ramparts.handler but RAMPARTS_HANDLER does not name the "
            "function's real handler; set RAMPARTS_HANDLER=module.function (for example "
            "app.handler), or use AWS_LAMBDA_EXEC_WRAPPER=/opt/ramparts-wrapper instead"
        )
    sensor = install(attach=attach)
    return wrap(_import_handler(real), sensor)
