"""The sensor: one PEP 578 audit hook plus a few wrappers where audit events lack context.

Hot-path rules: standard library only, nothing imported that the interpreter has not
already loaded (``re``, ``json``, ``socket``, ``threading``, ``dataclasses`` are all
avoided), and every handler bails out early. Failures inside the sensor are contained:
they are counted and reported once, never raised into the function (fail-open), except
the deliberate ``RampartsBlocked`` of enforce mode.

Audit hooks cannot be removed: ``uninstall`` empties the handler table so the hook does
nothing, and restores every wrapper.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

from ramparts import _net, _paths, _procs
from ramparts._errors import RampartsBlocked
from ramparts._jsonl import dumps
from ramparts._policy import DEFAULT_RULES, MODES, Policy, PolicyError

# typing is not imported at run time: it pulls in re, functools, contextlib (~6 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

SCHEMA_VERSION = 1

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_SOCK_RAW = 3
_AF_PACKET = 17
_AF_UNIX = 1
_SOCK_TYPE_MASK = 0xF
_MAX_STR = 1024
_MAX_ARGV = 32
_DANGEROUS_SYMBOLS = frozenset(
    {
        "system",
        "execve",
        "execv",
        "execvp",
        "execvpe",
        "execl",
        "execlp",
        "execle",
        "fexecve",
        "fork",
        "vfork",
        "clone",
        "clone3",
        "posix_spawn",
        "posix_spawnp",
        "popen",
        "connect",
        "socket",
        "sendto",
        "sendmsg",
        "dlopen",
        "mprotect",
        "ptrace",
        "syscall",
        "setuid",
        "setresuid",
        "unshare",
        "setns",
        "process_vm_writev",
        "memfd_create",
    }
)
_PRELOAD_VARS = frozenset({"LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH"})
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")
_RUNTIME_OWN = "runtime-own-traffic"
_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".on.aws")

try:
    import _contextvars

    _AWS_CTX: Any = _contextvars.ContextVar("ramparts_aws_endpoint", default=None)
except ImportError:  # pragma: no cover
    _AWS_CTX = None


class _TLS(_thread._local):
    busy = False
    dir_fd: int | None = None
    popen: tuple[str, ...] | None = None


def _trunc(s: str, n: int = _MAX_STR) -> str:
    return s if len(s) <= n else s[:n] + "...[truncated]"


def _family(sock: Any) -> int:
    try:
        return int(sock.family)
    except Exception:
        return -1


def _stype(sock: Any) -> int:
    try:
        return int(sock.type) & _SOCK_TYPE_MASK
    except Exception:
        return -1


class Sensor:
    """Process-wide sensor state. Create through ``ramparts.install()``."""

    def __init__(
        self,
        policy: Policy | None = None,
        mode: str | None = None,
        attach: str = "install",
        policy_source: str | None = None,
        environ: Any = None,
    ) -> None:
        env = os.environ if environ is None else environ
        t0 = time.perf_counter()
        self.attach = attach
        self.pid = os.getpid()
        self.sandbox = os.urandom(8).hex()
        self.seq = 0
        self.config_errors: list[str] = []
        self.policy_source = policy_source
        self.policy: Policy | None = policy
        if policy is None and policy_source is None and "RAMPARTS_POLICY" in env:
            self._load_policy(env)
        env_mode = mode if mode is not None else (env.get("RAMPARTS_MODE") or "").strip().lower()
        if env_mode and env_mode not in MODES:
            self.config_errors.append(
                f"RAMPARTS_MODE={env_mode!r} is not one of {', '.join(MODES)}; using monitor"
            )
            env_mode = "monitor"
        if self.config_errors and env_mode == "enforce":
            env_mode = "monitor"  # a broken configuration never blocks
        self.env_mode = env_mode or None
        base = self.env_mode or (self.policy.mode if self.policy else None) or "monitor"
        self.mode = base
        self.modes = {
            s: self._section_mode(s) for s in ("egress", "dns", "files", "process", "native", "aws")
        }
        self._learning_aws = self.modes["aws"] == "learn"  # learn prints each call: no cache
        self.max_alerts = _int_env(env, "RAMPARTS_MAX_ALERTS", 100)
        # the lines also (or only) as OpenTelemetry log records, when the function has an
        # OTel logger provider: off (default), beside, instead
        otel_logs = (env.get("RAMPARTS_OTEL_LOGS") or "off").strip().lower()
        self._option_errors: list[tuple[str, str]] = []  # reported as sensor.error at install
        if otel_logs not in ("off", "beside", "instead"):
            self._option_errors.append(
                (
                    "RAMPARTS_OTEL_LOGS",
                    f"{otel_logs[:60]!r} is not off, beside or instead; the lines are written "
                    "as usual (off)",
                )
            )
            otel_logs = "off"
        self._otel_logs = otel_logs
        # installed distributions, reported after the first invocation (see _packages.py)
        self._pkg_enabled = (env.get("RAMPARTS_PACKAGES") or "on").strip().lower() not in (
            "0",
            "off",
            "false",
            "no",
        )
        self._pkg: list[list[Any]] | None = None
        self._pkg_imported: list[bool] = []
        self._pkg_modules = 0
        self._tls = _TLS()
        self._lock = _thread.allocate_lock()
        self._fd = -1
        self._fd_id: tuple[int, int] | None = None
        self._dnsmap: dict[str, str] = {}
        self._ids = _paths.Identities()
        self._resolver = _paths.Resolver()
        self._ro_prefixes: tuple[str, ...] = ()
        self._fast_prefixes: tuple[str, ...] = ()
        self._own_dir = os.path.dirname(os.path.abspath(__file__)) + "/"
        self._stdlib = os.path.dirname(os.__file__) + "/"
        self._task_root = (env.get("LAMBDA_TASK_ROOT") or "").rstrip("/")
        self._lib_dirs: tuple[str, ...] | None = None
        self._runtime_api = _net.runtime_api_endpoint()
        self._container_creds = _net.container_credentials_endpoint()
        self._handlers: dict[str, Callable[[tuple[Any, ...]], None]] = {}
        self._patches: list[tuple[Any, str, Any]] = []
        self._wrappers: list[tuple[Any, str, Any]] = []
        self._finder: _PostImportFinder | None = None
        self._pending: dict[str, Callable[[Any], None]] = {}
        self._own_ids: set[int] = set()
        self._handler_count = 0
        self._aws_allowed: dict[tuple[int, str], tuple[Any, str]] = {}
        self._forked = False  # set in a forked child: its lines carry their pid
        self._initial_env = {k: env[k] for k in _PRELOAD_VARS if k in env}
        self.internal_errors = 0
        self._errors_seen: set[str] = set()
        # invocation state
        self.request_id: str | None = None
        self.phase = "init"
        self.invocations = 0
        self._depth = 0
        self._inv_start = time.time()
        self._reset_counts()
        self.installed = False
        self.install_ms = 0.0
        self._t0 = t0

    # -- configuration ----------------------------------------------------------------
    def _load_policy(self, env: Any) -> None:
        from ramparts._policy import load_from_env

        try:
            self.policy, self.policy_source = load_from_env(env)
        except PolicyError as exc:
            self.policy = None
            self.policy_source = exc.source
            self.config_errors.extend(exc.errors)
        except Exception as exc:  # never let a policy take the function down
            self.policy = None
            self.config_errors.append(f"could not load the policy: {type(exc).__name__}: {exc}")

    def _section_mode(self, section: str) -> str:
        sm = self.policy.section_modes.get(section) if self.policy else None
        if self.env_mode in ("off", "monitor", "learn"):
            return "off" if (sm == "off" or self.env_mode == "off") else self.env_mode
        if self.env_mode == "enforce":
            return sm or "enforce"
        base = (self.policy.mode if self.policy else None) or "monitor"
        if base in ("off", "learn"):
            return "off" if sm == "off" else base
        return sm or base

    # -- install / uninstall ------------------------------------------------------------
    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        if self.mode == "off" and not self.config_errors:
            return
        try:
            self._fd = os.dup(1)
            st = os.fstat(self._fd)
            self._fd_id = (st.st_dev, st.st_ino)
        except OSError:
            self._fd = -1
        self._ids.scan()
        self._ro_prefixes = _read_only_prefixes(self._task_root)
        self._fast_prefixes = self._compute_fast_prefixes()
        self._build_handlers()
        self._install_patches()
        global _ACTIVE
        _ACTIVE = self
        # Each installed sensor gets its own hook, holding the sensor in a closure: the hook
        # is reachable from Python only through the (audited) garbage collector API, so
        # re-pointing a module global cannot silently switch it off.
        hook = _make_hook(self)
        self._own_ids.add(id(hook))
        sys.addaudithook(hook)
        sys._ramparts_hooked = True  # type: ignore[attr-defined]
        self._handler_count = len(self._handlers)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)
        self.install_ms = (time.perf_counter() - self._t0) * 1000
        if self.config_errors:
            self._emit(
                {
                    "kind": "sensor.policy_error",
                    "errors": [_trunc(e, 400) for e in self.config_errors[:50]],
                    "source": self.policy_source,
                    "fallback": "monitor with built-in defaults",
                }
            )
            try:
                os.write(
                    2,
                    (
                        "ramparts: policy rejected ({}); running in monitor mode with the "
                        "built-in defaults: {}\n"
                    )
                    .format(
                        self.policy_source or "configuration", "; ".join(self.config_errors[:10])
                    )
                    .encode(),
                )
            except OSError:
                pass
        from ramparts import __version__

        self._emit(
            {
                "kind": "sensor.start",
                "version": __version__,
                "mode": self.mode,
                "modes": self.modes,
                "attach": self.attach,
                "policy": self.policy_source if self.policy else None,
                "policy_rules": self.policy.rule_count if self.policy else 0,
                "python": "{}.{}.{}".format(*sys.version_info[:3]),
                "install_ms": round(self.install_ms, 3),
            }
        )
        for where, error in self._option_errors:
            self._emit({"kind": "sensor.error", "where": where, "error": error})

    def _compute_fast_prefixes(self) -> tuple[str, ...]:
        """Directory prefixes where any write is allowed outright (no sensitive file can be
        under them): /tmp by default, the policy's ``dir/**`` entries otherwise. None in
        learn mode, which prints every distinct write."""
        if self.modes["files"] == "learn":
            return ()
        p = self.policy
        if p is None or p.write is None:
            candidates: tuple[str, ...] = ("/tmp/",)
        else:
            candidates = p.write.prefixes()
        sensitive_roots = {"", "proc", "etc", "root", "home", "var", "run", "sys", "dev", "usr"}
        return tuple(c for c in candidates if c.split("/")[1] not in sensitive_roots)

    def uninstall(self) -> None:
        """Switch the hook off (it cannot be removed) and restore every wrapper."""
        if self.installed and self._handlers:
            self.tamper("tamper.uninstall", "the sensor was uninstalled; nothing is watched now")
        self._handlers.clear()
        for owner, name, original in reversed(self._patches):
            try:
                setattr(owner, name, original)
            except (AttributeError, TypeError):
                pass
        self._patches.clear()
        self._wrappers.clear()
        self._pending.clear()
        if self._finder is not None:
            try:
                sys.meta_path.remove(self._finder)
            except ValueError:
                pass
            self._finder = None
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
        self.installed = False
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None

    def _after_fork(self) -> None:
        self._lock = _thread.allocate_lock()
        self._forked = True

    def _build_handlers(self) -> None:
        h = self._handlers
        m = self.modes
        if m["egress"] != "off":
            h["socket.connect"] = self._on_connect
            h["socket.sendto"] = self._on_sendto
            h["socket.sendmsg"] = self._on_sendto
            h["socket.__new__"] = self._on_socket_new
        if m["dns"] != "off":
            h["socket.getaddrinfo"] = self._on_getaddrinfo
            h["socket.gethostbyname"] = self._on_gethostbyname
            h["socket.gethostbyaddr"] = self._on_reverse
            h["socket.getnameinfo"] = self._on_reverse
        if m["files"] != "off":
            h["open"] = self._on_open
            h["os.rename"] = self._on_rename
            h["os.remove"] = self._on_remove
            h["os.rmdir"] = self._on_remove
            h["shutil.rmtree"] = self._on_remove
            h["os.chmod"] = self._on_chmod
            h["os.chown"] = self._on_chown
            h["os.mkdir"] = self._on_mkdir
            h["os.symlink"] = self._on_symlink
            h["os.link"] = self._on_link
            h["os.truncate"] = self._on_truncate
            h["os.utime"] = self._on_utime
            h["os.setxattr"] = self._on_xattr
            h["os.removexattr"] = self._on_xattr
            h["sqlite3.connect"] = self._on_sqlite
        if m["process"] != "off":
            h["subprocess.Popen"] = self._on_popen
            h["os.system"] = self._on_system
            h["os.exec"] = self._on_exec
            h["os.posix_spawn"] = self._on_exec
            h["os.spawn"] = self._on_spawn
            h["os.fork"] = self._on_fork
            h["os.forkpty"] = self._on_fork
            h["os.putenv"] = self._on_putenv
        if m["native"] != "off":
            h["import"] = self._on_import
            h["ctypes.dlopen"] = self._on_dlopen
            h["ctypes.dlsym"] = self._on_dlsym
            h["ctypes.dlsym/handle"] = self._on_dlsym
        h["sys.addaudithook"] = self._on_addaudithook
        h["object.__setattr__"] = self._on_setattr
        h["object.__delattr__"] = self._on_setattr
        h["object.__getattr__"] = self._on_getattr
        h["gc.get_referrers"] = self._on_gc
        h["gc.get_objects"] = self._on_gc

    def _install_patches(self) -> None:
        if self.modes["files"] != "off":
            self._wrap(os, "open", _wrap_os_open(self))
            posix = sys.modules.get("posix")
            if posix is not None and posix.open is self._patches[-1][2]:
                self._wrap(posix, "open", os.open)
        if self.modes["process"] != "off":
            try:
                import _posixsubprocess

                self._wrap(
                    _posixsubprocess, "fork_exec", _wrap_fork_exec(self, _posixsubprocess.fork_exec)
                )
            except ImportError:
                pass
        targets: dict[str, Callable[[Any], None]] = {}
        if self.modes["dns"] != "off" or self.modes["egress"] != "off":
            targets["socket"] = self._patch_socket
        if self.modes["aws"] != "off":
            targets["botocore.client"] = self._patch_botocore
            targets["aiobotocore.client"] = self._patch_aiobotocore
        for name, fn in targets.items():
            mod = sys.modules.get(name)
            if mod is not None:
                self._safe_patch(fn, mod)
            else:
                self._pending[name] = fn
        if self._pending:
            self._finder = _PostImportFinder(self)
            sys.meta_path.insert(0, self._finder)

    def _wrap(self, owner: Any, name: str, replacement: Any) -> None:
        original = getattr(owner, name)
        if getattr(original, "__ramparts_wrapped__", None) is not None:
            return  # already wrapped (idempotent)
        replacement.__ramparts_wrapped__ = original
        self._own_ids.add(id(replacement))
        setattr(owner, name, replacement)
        self._patches.append((owner, name, original))
        self._wrappers.append((owner, name, replacement))

    def _safe_patch(self, fn: Callable[[Any], None], module: Any) -> None:
        try:
            fn(module)
        except Exception as exc:
            self._internal_error("patch " + getattr(module, "__name__", "?"), exc)

    def check_pending(self) -> None:
        """Patch target modules that were imported by a route the finder did not see."""
        for name in list(self._pending):
            mod = sys.modules.get(name)
            if mod is not None and getattr(mod, "__spec__", None) is not None:
                fn = self._pending.pop(name)
                self._safe_patch(fn, mod)

    # -- patches --------------------------------------------------------------------------
    def _patch_socket(self, module: Any) -> None:
        self._wrap(module, "getaddrinfo", _wrap_getaddrinfo(self, module.getaddrinfo))
        self._wrap(module, "gethostbyname", _wrap_gethostbyname(self, module.gethostbyname))
        self._wrap(
            module, "gethostbyname_ex", _wrap_gethostbyname_ex(self, module.gethostbyname_ex)
        )

    def _patch_botocore(self, module: Any) -> None:
        cls = module.BaseClient
        orig = cls._make_api_call
        sensor = self

        def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            token = sensor.on_aws_call(client, operation_name)
            try:
                return orig(client, operation_name, api_params)
            finally:
                if token is not None:
                    _AWS_CTX.reset(token)

        self._wrap(cls, "_make_api_call", _make_api_call)

    def _patch_aiobotocore(self, module: Any) -> None:
        cls = module.AioBaseClient
        orig = cls._make_api_call
        sensor = self

        async def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            token = sensor.on_aws_call(client, operation_name)
            try:
                return await orig(client, operation_name, api_params)
            finally:
                if token is not None:
                    _AWS_CTX.reset(token)

        self._wrap(cls, "_make_api_call", _make_api_call)

    # -- output ---------------------------------------------------------------------------
    def _emit(self, record: dict[str, Any]) -> None:
        self.seq += 1
        line: dict[str, Any] = {"ramparts": SCHEMA_VERSION}
        line.update(record)
        line["sandbox"] = self.sandbox
        line["seq"] = self.seq
        line["time"] = int(time.time() * 1000)
        if "request_id" not in line:
            line["request_id"] = self.request_id
        if self._forked:
            line["pid"] = os.getpid()
        trace = sys.modules.get("opentelemetry.trace")
        if trace is not None:  # the function uses OpenTelemetry: link the line to its trace
            try:
                from ramparts import _otel

                found = _otel.ids(trace)
                if found is not None:
                    line["trace_id"], line["span_id"] = found
            except Exception as exc:
                self.internal_errors += 1
                line["otel_error"] = type(exc).__name__
        if self._otel_logs != "off" and self._log_record(line) and self._otel_logs == "instead":
            return
        data = (dumps(line) + "\n").encode("utf-8", "backslashreplace")
        fd = self._fd if self._fd >= 0 else 1
        with self._lock:
            try:
                if os.write(fd, data) == len(data):
                    return
            except InterruptedError:
                pass
            except OSError:
                return
            view = memoryview(data)
            while view:
                try:
                    n = os.write(fd, view)
                except InterruptedError:
                    continue
                except OSError:
                    return
                view = view[n:]

    def _reset_counts(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self._seen: set[tuple[Any, ...]] = set()
        self._verdicts: dict[tuple[Any, ...], tuple[str | None, str]] = {}
        self.alert_lines = 0
        self.repeats = 0
        self.suppressed = 0

    def _count(self, kind: str, verdict: str) -> None:
        c = self.counts.get(kind)
        if c is None:
            c = self.counts[kind] = {"allow": 0, "alert": 0, "block": 0}
        c[verdict] += 1

    def _verdict(self, section: str, rule: str | None) -> str:
        if rule is None:
            return "allow"
        mode = self.modes.get(section, self.mode)
        return "block" if mode == "enforce" else "alert"

    def report(
        self,
        kind: str,
        section: str,
        rule: str | None,
        target: str,
        fields: dict[str, Any],
        key: tuple[Any, ...] | None = None,
        extra_rules: list[str] | None = None,
    ) -> str:
        """Count or print one event; raise RampartsBlocked when enforce mode blocks it."""
        if (
            rule is not None
            and rule in DEFAULT_RULES
            and self.policy is not None
            and rule in self.policy.disabled
        ):
            rule = None
        verdict = self._verdict(section, rule)
        self._count(kind, verdict)
        learn = self.modes.get(section) == "learn"
        if verdict == "allow" and not learn:
            return verdict
        if verdict != "allow" and "opentelemetry.trace" in sys.modules:
            self._span_event(kind, verdict, rule, target, fields)
        k = (rule, kind, key if key is not None else target)
        if k in self._seen:
            if verdict != "allow":
                self.repeats += 1
        elif verdict != "allow" and self.alert_lines >= self.max_alerts:
            self.suppressed += 1
        else:
            self._seen.add(k)
            if verdict != "allow":
                self.alert_lines += 1
            rec: dict[str, Any] = {
                "kind": kind,
                "verdict": verdict,
                "rule": rule,
                "mode": self.modes.get(section, self.mode),
            }
            if extra_rules:
                rec["matched"] = extra_rules
            rec.update(fields)
            loc, stack = self._where()
            rec["location"] = loc
            rec["stack"] = stack
            if self.request_id is None:
                rec["phase"] = self.phase
            self._emit(rec)
        if verdict == "block":
            assert rule is not None
            raise RampartsBlocked(kind, rule, target)
        return verdict

    def _log_record(self, line: dict[str, Any]) -> bool:
        """Send the line as an OpenTelemetry log record; False (write the line) when the
        function has no OTel logger provider or sending failed: nothing is lost."""
        logs = sys.modules.get("opentelemetry._logs")
        if logs is None:
            return False
        tls = self._tls
        busy, tls.busy = tls.busy, True
        try:
            from ramparts import _otel

            return _otel.emit_log(logs, line)
        except Exception as exc:
            self.internal_errors += 1
            line["otel_error"] = type(exc).__name__
            return False
        finally:
            tls.busy = busy

    def _span_event(
        self, kind: str, verdict: str, rule: str | None, target: str, fields: dict[str, Any]
    ) -> None:
        """The alert as a span event on the function's active OpenTelemetry span."""
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return
        tls = self._tls
        busy, tls.busy = tls.busy, True
        try:
            from ramparts import _otel

            _otel.add_event(trace, kind, verdict, rule, target, fields)
        except Exception as exc:
            self._internal_error("otel", exc)
        finally:
            tls.busy = busy

    def tamper(self, rule: str, detail: str, fields: dict[str, Any] | None = None) -> None:
        self._count("sensor.tamper", "alert")
        if "opentelemetry.trace" in sys.modules:
            self._span_event(
                "sensor.tamper", "alert", rule, detail, {"detail": detail, **(fields or {})}
            )
        k = (rule, "sensor.tamper", detail)
        if k in self._seen:
            self.repeats += 1
            return
        self._seen.add(k)
        rec: dict[str, Any] = {
            "kind": "sensor.tamper",
            "verdict": "alert",
            "rule": rule,
            "mode": self.mode,
            "detail": detail,
        }
        if fields:
            rec.update(fields)
        rec["location"], rec["stack"] = self._where()
        self._emit(rec)

    def _internal_error(self, where: str, exc: BaseException) -> None:
        self.internal_errors += 1
        key = where + ":" + type(exc).__name__
        if key in self._errors_seen or len(self._errors_seen) > 20:
            return
        self._errors_seen.add(key)
        try:
            self._emit(
                {
                    "kind": "sensor.error",
                    "where": where,
                    "error": _trunc(f"{type(exc).__name__}: {exc}", 300),
                }
            )
        except Exception:
            pass

    # -- where in user code ---------------------------------------------------------------
    def _library_dirs(self) -> tuple[str, ...]:
        """Directories of third-party packages bundled in the function's code (lazy)."""
        if self._lib_dirs is None:
            dirs: list[str] = []
            root = self._task_root
            if root:
                try:
                    names = os.listdir(root)
                except OSError:
                    names = []
                for n in names:
                    if n.endswith((".dist-info", ".egg-info")):
                        top = root + "/" + n + "/top_level.txt"
                        try:
                            with open(top, encoding="utf-8") as fh:
                                mods = fh.read(4096).split()
                        except OSError:
                            mods = [n.split("-", 1)[0]]
                        dirs.extend(root + "/" + m + "/" for m in mods if m)
            self._lib_dirs = tuple(dirs)
        return self._lib_dirs

    def _is_user(self, filename: str) -> bool:
        if filename.startswith(("<", self._stdlib, self._own_dir, "/var/runtime/", "/var/lang/")):
            return False
        if "/site-packages/" in filename or "/dist-packages/" in filename:
            return False
        return not filename.startswith(self._library_dirs())

    def _where(self) -> tuple[dict[str, Any] | None, list[str]]:
        try:
            f: Any = sys._getframe(1)
        except ValueError:
            return None, []
        loc: dict[str, Any] | None = None
        fallback: dict[str, Any] | None = None
        stack: list[str] = []
        own = self._own_dir
        while f is not None:
            code = f.f_code
            fn = code.co_filename
            if not fn.startswith(own):
                if len(stack) < 8:
                    stack.append(f"{fn}:{f.f_lineno}:{code.co_name}")
                if loc is None and self._is_user(fn):
                    loc = {"file": fn, "line": f.f_lineno, "function": code.co_name}
                    if len(stack) >= 8:
                        break
                elif fallback is None and not fn.startswith(("<frozen", self._stdlib)):
                    fallback = {"file": fn, "line": f.f_lineno, "function": code.co_name}
            f = f.f_back
        return loc or fallback, stack

    def _caller_in(self, *fragments: str) -> bool:
        try:
            f: Any = sys._getframe(2)
        except ValueError:
            return False
        depth = 0
        while f is not None and depth < 40:
            fn = f.f_code.co_filename
            if any(frag in fn for frag in fragments):
                return True
            f = f.f_back
            depth += 1
        return False

    # -- invocations ----------------------------------------------------------------------
    def begin(self, context: Any) -> bool:
        """Start an invocation. Returns False for a nested (already protected) call."""
        self._depth += 1
        if self._depth > 1:
            return False
        if self._pending:
            self.check_pending()
        if self.counts or self.repeats or self.suppressed:
            # what happened outside any invocation (init, or a background thread since the
            # last one) is summarised on its own, never dropped
            self._summary(None, error=None)
        self._reset_counts()
        self.invocations += 1
        self.phase = "invoke"
        self.request_id = getattr(context, "aws_request_id", None) if context is not None else None
        self._inv_start = time.time()
        return True

    def end(self, error: BaseException | None) -> None:
        self._depth = max(0, self._depth - 1)
        if self._depth:
            return
        try:
            self._integrity()
            self._summary(self.request_id, error)
        except Exception as exc:
            self._internal_error("summary", exc)
        if self._pkg_enabled and (self._pkg is None or len(sys.modules) != self._pkg_modules):
            try:
                self._report_packages()
            except Exception as exc:
                self._internal_error("packages", exc)
        self.request_id = None
        self.phase = "idle"
        self._reset_counts()

    def flush(self) -> None:
        """Emit a summary of what was counted so far (for ``install()``-only use)."""
        if self.counts or self.repeats or self.suppressed:
            self._summary(self.request_id, None)
            self._reset_counts()

    def _report_packages(self) -> None:
        """The installed distributions once, then those imported since the last report."""
        tls = self._tls
        busy, tls.busy = tls.busy, True  # our own reads are not the function's activity
        try:
            t0 = time.perf_counter()
            from ramparts import _packages

            first = self._pkg is None
            if self._pkg is None:
                self._pkg = _packages.scan()
                self._pkg_imported = [False] * len(self._pkg)
            dists = self._pkg
            self._pkg_modules = len(sys.modules)
            now = _packages.imported(dists, sys.modules)
            fresh = [i for i, hit in enumerate(now) if hit and not self._pkg_imported[i]]
            self._pkg_imported = now
            if not first and not fresh:
                return
            chosen = range(len(dists)) if first else fresh
            rec: dict[str, Any] = {
                "kind": "sensor.packages",
                "update": not first,
                "packages": [
                    {
                        "name": dists[i][0],
                        "version": dists[i][1],
                        "path": dists[i][2],
                        "imported": now[i],
                    }
                    for i in chosen
                ],
                "truncated": len(dists) >= _packages.MAX_PACKAGES,
                "scan_ms": round((time.perf_counter() - t0) * 1000, 3),
            }
        finally:
            tls.busy = busy
        self._emit(rec)

    def _summary(self, request_id: str | None, error: BaseException | None) -> None:
        rec: dict[str, Any] = {
            "kind": "invocation.summary",
            "request_id": request_id,
            "phase": self.phase,
            "invocation": self.invocations,
            "duration_ms": round((time.time() - self._inv_start) * 1000, 3),
            "counts": self.counts,
            "alerts": sum(c["alert"] for c in self.counts.values()),
            "blocks": sum(c["block"] for c in self.counts.values()),
            "repeats": self.repeats,
            "suppressed": self.suppressed,
            "sensor_errors": self.internal_errors,
        }
        if error is not None:
            rec["error"] = type(error).__name__
        self._emit(rec)

    def _integrity(self) -> None:
        """Make tampering visible: wrappers replaced, our output descriptor swapped."""
        if tuple(Sensor.__dict__.values()) != _CLASS_VALUES or not _METHOD_NAMES.isdisjoint(
            self.__dict__
        ):
            changed = [n for n, v in _CLASS_SNAPSHOT.items() if Sensor.__dict__.get(n) is not v]
            changed += sorted(_METHOD_NAMES.intersection(self.__dict__))
            self.tamper("tamper.patch", f"the sensor's methods were replaced: {changed[:5]}")
        if len(self._handlers) != self._handler_count:
            self.tamper("tamper.handlers", "the sensor's handler table was changed")
            self._handler_count = len(self._handlers)
        for owner, name, _wrapper in self._wrappers:
            # another instrumentation (OpenTelemetry, APM agents) may wrap ours: fine as long
            # as ours is still in the chain, which wrapt-style proxies make visible
            if getattr(getattr(owner, name, None), "__ramparts_wrapped__", None) is None:
                self.tamper(
                    "tamper.unwrapped", f"{getattr(owner, '__name__', owner)}.{name} was replaced"
                )
        if self._fd >= 0 and self._fd_id is not None and self.invocations % 16 in (0, 1):
            try:
                st = os.fstat(self._fd)
                ok = (st.st_dev, st.st_ino) == self._fd_id
            except OSError:
                ok = False
            if not ok:
                self._fd = -1
                self.tamper("tamper.output", "the sensor's log descriptor was closed or replaced")

    # -- network --------------------------------------------------------------------------
    def _on_socket_new(self, args: tuple[Any, ...]) -> None:
        _sock, family, stype, _proto = args
        if (int(stype) & _SOCK_TYPE_MASK) == _SOCK_RAW or family == _AF_PACKET:
            self.report(
                "network.connect",
                "egress",
                "default.raw-socket",
                f"raw socket (family {family})",
                {"op": "socket", "family": int(family), "socket_type": int(stype)},
            )

    def _on_connect(self, args: tuple[Any, ...]) -> None:
        self._judge_inet(args[0], args[1], "connect")

    def _on_sendto(self, args: tuple[Any, ...]) -> None:
        if args[1] is not None:
            self._judge_inet(args[0], args[1], "sendto")

    def _judge_inet(self, sock: Any, address: Any, op: str) -> None:
        fam = _family(sock)
        if fam == _AF_UNIX:
            path = _procs.as_text(address)
            self.report("network.connect", "egress", None, path, {"op": op, "path": path})
            return
        if fam not in (_net.AF_INET, _net.AF_INET6) or not isinstance(address, tuple):
            return
        host, port = address[0], address[1]
        try:
            port = int(port)
        except (TypeError, ValueError):
            return
        proto = "udp" if _stype(sock) == 2 else "tcp"
        cache_key = (host, port, proto, op)
        cached = self._verdicts.get(cache_key)
        if cached is not None and cached[0] is None:
            self._count("network.connect", "allow")
            return
        addr = _net.parse_ip(host)
        if addr is not None:
            targets = [(addr, self._dnsmap.get(addr.text))]
        else:
            hostname = _procs.as_text(host)
            targets = [(a, hostname) for a in self._resolve(hostname, port, fam)]
            if not targets:
                return  # the connect itself will fail to resolve
        for a, name in targets:
            rule = self._egress_rule(a, name, port)
            if rule is _RUNTIME_OWN:
                return  # the runtime's own traffic is not the function's
            fields: dict[str, Any] = {
                "host": name,
                "ip": a.text,
                "port": port,
                "proto": proto,
                "family": "ipv4" if a.family == _net.AF_INET else "ipv6",
                "op": op,
            }
            if rule in ("default.credential-endpoint",):
                fields["endpoint"] = _net.credential_endpoint(a) or "container credentials"
            if name and name.endswith(_AWS_SUFFIXES):
                fields["aws_service"] = name.split(".", 1)[0]
            target = f"{name or a.text}:{port}" if not name else f"{name} ({a.text}):{port}"
            self._verdicts[cache_key] = (rule, target)
            self.report("network.connect", "egress", rule, target, fields, key=(a.text, port))

    def _resolve(self, host: str, port: int, family: int) -> list[_net.Address]:
        import _socket

        try:
            infos = _socket.getaddrinfo(host, port, family, _socket.SOCK_STREAM)
        except OSError:
            return []
        out: list[_net.Address] = []
        for info in infos:
            a = _net.parse_ip(info[4][0])
            if a is not None:
                out.append(a)
                self._dnsmap[a.text] = host.lower()
        return out

    def _egress_rule(self, a: _net.Address, name: str | None, port: int) -> str | None:
        if (self._runtime_api is not None and (a.text, port) == self._runtime_api) or (
            a.v4 is not None and self._runtime_api is not None and (a.v4, port) == self._runtime_api
        ):
            if self._caller_in("/awslambdaric/", "/var/runtime/", "ramparts_cli/_bootstrap"):
                return _RUNTIME_OWN
            return "default.runtime-api"
        if _net.credential_endpoint(a) is not None:
            return None if self._explicitly_allowed(a, port) else "default.credential-endpoint"
        if self._container_creds is not None and (a.text, port) == self._container_creds:
            if self._caller_in("/botocore/"):
                return None
            return None if self._explicitly_allowed(a, port) else "default.credential-endpoint"
        if _net.is_loopback(a):
            return None
        aws_host = _AWS_CTX.get() if _AWS_CTX is not None else None
        if aws_host is not None and name is not None and _aws_host_ok(name, aws_host):
            return None
        p = self.policy
        if p is not None and p.egress is not None and not p.egress_allows(name, a, port):
            return "policy.egress"
        return None

    def _explicitly_allowed(self, a: _net.Address, port: int) -> bool:
        """Built-in rules give way to an explicit policy CIDR entry for the same address."""
        p = self.policy
        if p is not None and p.egress is not None:
            for e in p.egress:
                if (
                    e.cidr is not None
                    and e.cidr.contains(a)
                    and (e.ports is None or port in e.ports)
                ):
                    return True
        return False

    def _dns_rule(self, host: str) -> str | None:
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            return None
        if name in _net.CREDENTIAL_NAMES:
            return "default.credential-endpoint"
        aws_host = _AWS_CTX.get() if _AWS_CTX is not None else None
        if aws_host is not None and _aws_host_ok(name, aws_host):
            return None
        p = self.policy
        if p is not None and p.dns_restricted() and not p.dns_allows(name):
            return "policy.dns"
        return None

    def _on_dns(self, host: Any, op: str) -> None:
        if host is None:
            return
        name = _procs.as_text(host)
        if not name or _net.parse_ip(name) is not None:
            return  # a literal address is no look-up
        rule = self._dns_rule(name)
        section = "dns" if rule in (None, "policy.dns") else "egress"
        self.report("network.dns", section, rule, name, {"host": name.lower(), "op": op})

    def _on_getaddrinfo(self, args: tuple[Any, ...]) -> None:
        self._on_dns(args[0], "getaddrinfo")

    def _on_gethostbyname(self, args: tuple[Any, ...]) -> None:
        self._on_dns(args[0], "gethostbyname")

    def _on_reverse(self, args: tuple[Any, ...]) -> None:
        self._count("network.dns", "allow")

    def record_resolution(self, host: Any, addresses: list[str]) -> None:
        if not isinstance(host, str):
            return
        if len(self._dnsmap) > 4096:
            self._dnsmap.clear()
        h = host.lower().rstrip(".")
        for a in addresses:
            self._dnsmap[a] = h

    # -- files ----------------------------------------------------------------------------
    def _on_open(self, args: tuple[Any, ...]) -> None:
        path, _mode, flags = args
        if flags is None:
            flags = 0
        write = flags & _WRITE_FLAGS
        if type(path) is not str:
            if isinstance(path, int):
                if not write:
                    return
                p = _paths.fd_path(path)
                if p is None or not p.startswith("/"):
                    return
                path = p
            else:
                path = _procs.as_text(path)
        dir_fd = self._tls.dir_fd
        if not write:
            self._judge_read(path, dir_fd)
            return
        if dir_fd is None and self._fast_write(path):
            return
        existing = "append" if flags & os.O_APPEND else "write"
        self._judge_write(
            path, "create" if flags & os.O_CREAT else existing, dir_fd, existing_op=existing
        )

    def _fast_write(self, path: str) -> bool:
        """The common case in one function: a plain absolute path, in a directory already
        confirmed, to a file that is not a symlink, under a prefix where every write is
        allowed. True when it was counted as allowed; False sends it the full way."""
        prefixes = self._fast_prefixes
        if not prefixes:
            return False
        resolver = self._resolver
        if path in resolver.safe:  # this very path, confirmed since the last change
            c = self.counts.get("file.write")
            if c is None:
                c = self.counts["file.write"] = {"allow": 0, "alert": 0, "block": 0}
            c["allow"] += 1
            return True
        if path[:1] != "/" or "/." in path or "//" in path:
            return False
        parent, _, name = path.rpartition("/")
        real_parent = resolver.settled(parent)
        if real_parent is None or not name:
            return False
        real = real_parent + "/" + name
        if not real.startswith(prefixes):
            return False
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        except (OSError, ValueError):
            return False
        if st is not None and (
            (st.st_mode & 0o170000) == 0o120000 or (st.st_dev, st.st_ino) in self._ids.inodes
        ):
            return False  # a symlink, or a hard link to a sensitive file: the full judgement
        if resolver.trusting and len(resolver.safe) < 4096:
            resolver.safe.add(path)
        c = self.counts.get("file.write")
        if c is None:
            c = self.counts["file.write"] = {"allow": 0, "alert": 0, "block": 0}
        c["allow"] += 1
        return True

    def _judge_read(self, path: str, dir_fd: int | None) -> None:
        ap = _paths.absolute(path, dir_fd if dir_fd is not None and dir_fd >= 0 else None)
        if ap.startswith(self._ro_prefixes) and "/." not in ap and "//" not in ap:
            return
        ident = _paths.stat_id(ap)
        ids = self._ids
        if ident is not None and ident[0] != ids.proc_dev and ident not in ids.inodes:
            # an ordinary file: only its spelled path can still look sensitive
            real = os.path.normpath(ap)
            if not _paths.sensitive_read(real, None, ids):
                return
        real = _paths.resolve(ap)
        if not _paths.sensitive_read(real, ident, ids):
            return
        p = self.policy
        rule = None if p is not None and p.read.match(real) else "default.sensitive-read"
        fields: dict[str, Any] = {"path": real, "op": "read"}
        if path != real:
            fields["requested"] = _trunc(path)
        self.report("file.read", "files", rule, real, fields)

    def _write_rule(self, real: str, ident: tuple[int, int] | None = None) -> str | None:
        p = self.policy
        explicit = p is not None and p.write is not None and p.write.match(real)
        if _paths.sensitive_write(real) or (ident is not None and ident in self._ids.inodes):
            return None if explicit else "default.sensitive-write"
        if p is not None and p.write is not None:
            return None if explicit else "policy.files.write"
        if real == "/tmp" or real.startswith("/tmp/"):
            return None
        return "default.write-outside-tmp"

    def _harmless(self, ap: str, real: str) -> bool:
        return (
            ap in _paths.HARMLESS_WRITES
            or real in _paths.HARMLESS_WRITES
            or _paths.is_pseudo(real)
            or real.startswith("/dev/pts/")
        )

    def _judge_write(
        self,
        path: str,
        op: str,
        dir_fd: int | None,
        extra: dict[str, Any] | None = None,
        existing_op: str = "write",
    ) -> None:
        ap = _paths.absolute(path, dir_fd if dir_fd is not None and dir_fd >= 0 else None)
        if ap in _paths.HARMLESS_WRITES:
            self._count("file.write", "allow")
            return
        real, st = self._resolver.resolve(ap)
        if self._harmless(ap, real):
            self._count("file.write", "allow")
            return
        if ("/__pycache__/" in real or real.endswith("/__pycache__")) and self._caller_in(
            "importlib._bootstrap_external"
        ):
            return  # the interpreter caching bytecode, not the function writing
        if op == "create" and st is not None:
            op = existing_op
        rule = self._write_rule(real, (st.st_dev, st.st_ino) if st is not None else None)
        fields: dict[str, Any] = {"path": real, "op": op}
        if path != real:
            fields["requested"] = _trunc(path)
        if extra:
            fields.update(extra)
        self.report("file.write", "files", rule, f"{op} {real}", fields, key=(real, op))

    def _path_arg(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, int):
            return _paths.fd_path(value)
        return _procs.as_text(value)

    @staticmethod
    def _dir_fd(value: Any) -> int | None:
        return value if isinstance(value, int) and value >= 0 else None

    def _on_rename(self, args: tuple[Any, ...]) -> None:
        self._resolver.changed()
        src, dst = self._path_arg(args[0]), self._path_arg(args[1])
        if src is None or dst is None:
            return
        src_real = _paths.resolve(
            _paths.absolute(src, self._dir_fd(args[2]) if len(args) > 2 else None)
        )
        src_rule = self._write_rule(src_real)
        if src_rule is not None and not self._harmless(src, src_real):
            self._judge_write(
                src,
                "rename-from",
                self._dir_fd(args[2]) if len(args) > 2 else None,
                {"destination": _trunc(dst)},
            )
        self._judge_write(
            dst,
            "rename",
            self._dir_fd(args[3]) if len(args) > 3 else None,
            {"source": _trunc(src_real)},
        )

    def _on_remove(self, args: tuple[Any, ...]) -> None:
        self._resolver.changed()
        p = self._path_arg(args[0])
        if p is not None:
            self._judge_write(p, "delete", self._dir_fd(args[1]) if len(args) > 1 else None)

    def _on_chmod(self, args: tuple[Any, ...]) -> None:
        p = self._path_arg(args[0])
        if p is not None:
            mode = args[1] if isinstance(args[1], int) else None
            self._judge_write(
                p,
                "chmod",
                self._dir_fd(args[2]) if len(args) > 2 else None,
                {"file_mode": oct(mode) if mode is not None else None},
            )

    def _on_chown(self, args: tuple[Any, ...]) -> None:
        p = self._path_arg(args[0])
        if p is not None:
            self._judge_write(
                p,
                "chown",
                self._dir_fd(args[3]) if len(args) > 3 else None,
                {"uid": args[1], "gid": args[2]},
            )

    def _on_mkdir(self, args: tuple[Any, ...]) -> None:
        p = self._path_arg(args[0])
        if p is not None:
            self._judge_write(p, "mkdir", self._dir_fd(args[2]) if len(args) > 2 else None)

    def _on_symlink(self, args: tuple[Any, ...]) -> None:
        self._resolver.changed()
        target, link = self._path_arg(args[0]), self._path_arg(args[1])
        if link is not None:
            self._judge_write(
                link,
                "symlink",
                self._dir_fd(args[2]) if len(args) > 2 else None,
                {"link_target": _trunc(target or "")},
            )

    def _on_link(self, args: tuple[Any, ...]) -> None:
        self._resolver.changed()
        src, dst = self._path_arg(args[0]), self._path_arg(args[1])
        if src is None or dst is None:
            return
        src_abs = _paths.absolute(src, self._dir_fd(args[2]) if len(args) > 2 else None)
        src_real = _paths.resolve(src_abs)
        ident = _paths.stat_id(src_abs)
        if _paths.sensitive_read(src_real, ident, self._ids) or _paths.sensitive_write(src_real):
            # a hard link to a sensitive file hides it under another name
            self.report(
                "file.write",
                "files",
                "default.sensitive-write",
                f"link {src_real}",
                {"path": src_real, "op": "link", "destination": _trunc(dst)},
            )
            return
        self._judge_write(
            dst,
            "link",
            self._dir_fd(args[3]) if len(args) > 3 else None,
            {"source": _trunc(src_real)},
        )

    def _on_truncate(self, args: tuple[Any, ...]) -> None:
        p = self._path_arg(args[0])
        if p is not None:
            self._judge_write(p, "truncate", None)

    def _on_utime(self, args: tuple[Any, ...]) -> None:
        p = self._path_arg(args[0])
        if p is not None:
            self._judge_write(p, "utime", self._dir_fd(args[3]) if len(args) > 3 else None)

    def _on_xattr(self, args: tuple[Any, ...]) -> None:
        p = self._path_arg(args[0])
        if p is not None:
            self._judge_write(p, "xattr", None)

    def _on_sqlite(self, args: tuple[Any, ...]) -> None:
        db = args[0]
        if isinstance(db, (str, bytes, os.PathLike)):
            p = _procs.as_text(db)
            if p and p != ":memory:" and not p.startswith("file:"):
                self._judge_write(p, "write", None)

    # -- processes ------------------------------------------------------------------------
    def _judge_spawn(self, executable: Any, argv_raw: Any, env: Any, op: str) -> None:
        self._resolver.distrust()  # a child can change the file system behind our back
        argv = _procs.as_text_list(argv_raw, _MAX_ARGV)
        exe = _procs.as_text(executable) if executable is not None else None
        env_path = None
        env_keys: set[str] = set()
        if isinstance(env, dict):
            for k, v in env.items():
                ks = _procs.as_text(k)
                if ks in _PRELOAD_VARS and _procs.as_text(v) == self._initial_env.get(ks):
                    continue  # inherited unchanged (Lambda itself sets LD_LIBRARY_PATH)
                env_keys.add(ks)
                if ks == "PATH":
                    env_path = _procs.as_text(v)
        progs = _procs.programs(exe, argv, env_path)
        if not progs:
            return
        rules: list[str] = []
        pol = self.policy
        for pr in progs:
            if pr.real == "/dev/tcp":  # bash's network redirection inside a command string
                rules.append("default.network-tool")
                continue
            explicit = (
                pol is not None
                and pol.process is not None
                and (pol.process.match(pr.real) or pol.process.match(pr.path))
            )
            if pr.writable() and not explicit:
                rules.append("default.writable-exec")
            # a shell started by a shell command string is the mark of an injection,
            # even where the policy allows the function its own shell
            if pr.is_shell() and (pr.nested or not explicit):
                rules.append("default.shell")
            if pr.is_network_tool() and not explicit:
                rules.append("default.network-tool")
            if not explicit and pr.inline_code() is not None:
                rules.append("default.inline-code")
            if pol is not None and pol.process is not None and not explicit:
                rules.append("policy.process")
            # `cat /proc/self/environ` reads the secret in a child the sensor cannot see
            for arg in pr.argv[1:]:
                if "/" in arg and self._names_sensitive_file(arg):
                    rules.append("default.sensitive-read")
                    break
        if env_keys & _PRELOAD_VARS:
            rules.insert(0, "default.preload")
        disabled = pol.disabled if pol is not None else frozenset()
        rules = [r for r in dict.fromkeys(rules) if r not in disabled]
        rule = rules[0] if rules else None
        first = progs[0]
        fields: dict[str, Any] = {
            "executable": first.real,
            "argv": [_trunc(a, 512) for a in argv[:_MAX_ARGV]],
            "op": op,
        }
        if exe is not None and exe != first.real:
            fields["requested"] = _trunc(exe)
        if len(progs) > 1:
            fields["programs"] = [p.real for p in progs]
        if env_keys & _PRELOAD_VARS:
            fields["env"] = sorted(env_keys & _PRELOAD_VARS)
        target = " ".join(argv)[:200] or first.real
        try:
            self.report(
                "process.spawn",
                "process",
                rule,
                target,
                fields,
                key=(first.real, tuple(argv[:4])),
                extra_rules=rules[1:] if len(rules) > 1 else None,
            )
        except RampartsBlocked:
            if os.getpid() != self.pid and op in ("exec", "posix_spawn"):
                # a forked copy of the sandbox must not go on running the function's code
                os._exit(126)
            raise

    def _names_sensitive_file(self, arg: str) -> bool:
        path = arg.partition("=")[2] if arg.startswith("-") and "=" in arg else arg
        if not path.startswith("/"):
            return False
        real = _paths.resolve(path)
        if _paths.sensitive_read(real, _paths.stat_id(real), self._ids):
            return not (self.policy is not None and self.policy.read.match(real))
        return False

    def _on_popen(self, args: tuple[Any, ...]) -> None:
        executable, argv, _cwd, env = args
        self._judge_spawn(executable, argv, env, "popen")
        exe = (
            executable
            if executable is not None
            else (argv[0] if isinstance(argv, (list, tuple)) and argv else argv)
        )
        self._tls.popen = (_procs.as_text(exe),) if exe is not None else None

    def _on_system(self, args: tuple[Any, ...]) -> None:
        self._judge_spawn("/bin/sh", ["sh", "-c", _procs.as_text(args[0])], None, "system")

    def _on_exec(self, args: tuple[Any, ...]) -> None:
        path, argv, env = args[0], args[1], args[2] if len(args) > 2 else None
        self._judge_spawn(path, argv, env, "exec")

    def _on_spawn(self, args: tuple[Any, ...]) -> None:
        _mode, path, argv, env = args
        self._judge_spawn(path, argv, env, "spawn")

    def _on_fork(self, args: tuple[Any, ...]) -> None:
        self._resolver.distrust()
        self._count("process.spawn", "allow")

    def _on_putenv(self, args: tuple[Any, ...]) -> None:
        key = _procs.as_text(args[0])
        if key in _PRELOAD_VARS and _procs.as_text(args[1]) != self._initial_env.get(key):
            self.report(
                "process.env",
                "process",
                "default.preload",
                f"{key}=",
                {"variable": key, "value": _trunc(_procs.as_text(args[1]), 256)},
            )

    def on_fork_exec(self, args: tuple[Any, ...]) -> None:
        """``_posixsubprocess.fork_exec`` called without going through subprocess.Popen."""
        argv = args[0] if args else None
        exes = args[1] if len(args) > 1 else None
        exe = exes[0] if isinstance(exes, (list, tuple)) and exes else None
        pending = self._tls.popen
        self._tls.popen = None
        if pending is not None:
            return
        env = None
        if len(args) > 5 and isinstance(args[5], (list, tuple)):
            env = {}
            for item in args[5]:
                k, _, v = _procs.as_text(item).partition("=")
                env[k] = v
        self._judge_spawn(exe, argv, env, "fork_exec")

    # -- native code ----------------------------------------------------------------------
    def _on_import(self, args: tuple[Any, ...]) -> None:
        filename = args[1]
        if filename is None or type(filename) is not str:
            return
        if not filename.endswith(_NATIVE_SUFFIXES) and ".so." not in filename:
            return
        real = _paths.resolve(filename)
        rule = "default.native-writable" if _paths.in_writable_dir(real) else None
        self.report(
            "native.load",
            "native",
            rule,
            real,
            {"library": real, "op": "import", "module": _procs.as_text(args[0])},
            key=(real, "import"),
        )

    def _on_dlopen(self, args: tuple[Any, ...]) -> None:
        name = args[0]
        if name is None:
            if self._ctypes_module_init():
                return
            self.report(
                "native.load",
                "native",
                "default.native-libc",
                "dlopen(NULL)",
                {
                    "library": None,
                    "op": "dlopen",
                    "detail": "the main program's symbols, libc included",
                },
            )
            return
        lib = _procs.as_text(name)
        real = _paths.resolve(lib) if "/" in lib else lib
        base = real.rsplit("/", 1)[-1]
        rule: str | None = None
        if "/" in lib and _paths.in_writable_dir(real):
            rule = "default.native-writable"
        elif base.startswith(("libc.so", "libc-", "libc.musl", "ld-linux", "ld-musl")):
            rule = "default.native-libc"
        p = self.policy
        if p is not None and (p.native_paths is not None or p.native_names):
            if p.native_allows(real):
                rule = None  # an explicit allow entry beats the built-in rules
            elif rule is None:
                rule = "policy.native"
        self.report(
            "native.load",
            "native",
            rule,
            real,
            {"library": real, "op": "dlopen"},
            key=(real, "dlopen"),
        )

    def _ctypes_module_init(self) -> bool:
        """``import ctypes`` itself does dlopen(NULL) for ``pythonapi``."""
        try:
            f: Any = sys._getframe(3)
        except ValueError:
            return False
        for _ in range(4):
            if f is None:
                return False
            if f.f_code.co_name == "<module>" and f.f_code.co_filename.endswith(
                ("ctypes/__init__.py",)
            ):
                return True
            f = f.f_back
        return False

    def _on_dlsym(self, args: tuple[Any, ...]) -> None:
        symbol = args[1]
        if not isinstance(symbol, str) or symbol not in _DANGEROUS_SYMBOLS:
            return
        lib = args[0]
        lib_name = getattr(lib, "_name", None)
        library = _procs.as_text(lib_name) if lib_name is not None else None
        self.report(
            "native.load",
            "native",
            "default.native-libc",
            f"{symbol}()",
            {"library": library, "op": "dlsym", "symbol": symbol},
            key=(library, symbol),
        )

    # -- AWS --------------------------------------------------------------------------------
    def on_aws_call(self, client: Any, operation: str) -> Any:
        tls = self._tls
        if tls.busy:
            return None
        # A warm function makes the same calls with the same clients: an allowed call seen
        # before is counted from a cache keyed by the client's metadata object.
        try:
            hit = self._aws_allowed.get((id(client.meta), operation))
        except Exception:
            hit = None
        if hit is not None and hit[0] is client.meta and not self._learning_aws:
            self._count("aws.call", "allow")
            return _AWS_CTX.set(hit[1]) if _AWS_CTX is not None else None
        tls.busy = True
        try:
            meta = client.meta
            sm = meta.service_model
            service = str(sm.service_name)
            prefix = str(
                getattr(sm, "signing_name", None) or getattr(sm, "endpoint_prefix", "") or service
            )
            region = meta.region_name
            endpoint = _host_of(getattr(meta, "endpoint_url", "") or "")
        except Exception as exc:
            self._internal_error("aws", exc)
            return None
        finally:
            tls.busy = False
        p = self.policy
        rule = None
        if (
            p is not None
            and p.aws is not None
            and not p.aws_allows((service.lower(), prefix.lower()), operation)
        ):
            rule = "policy.aws"
        if rule is None:
            if len(self._aws_allowed) > 512:
                self._aws_allowed.clear()
            self._aws_allowed[(id(meta), operation)] = (meta, endpoint or ".amazonaws.com")
        tls.busy = True
        try:
            self.report(
                "aws.call",
                "aws",
                rule,
                f"{prefix}:{operation}",
                {
                    "service": service,
                    "operation": operation,
                    "region": region,
                    "action": f"{prefix}:{operation}",
                    "endpoint": endpoint,
                },
            )
        except RampartsBlocked:
            raise
        except Exception as exc:
            self._internal_error("aws", exc)
        finally:
            tls.busy = False
        return _AWS_CTX.set(endpoint or ".amazonaws.com") if _AWS_CTX is not None else None

    # -- tampering --------------------------------------------------------------------------
    def _on_addaudithook(self, args: tuple[Any, ...]) -> None:
        self.tamper("tamper.audit-hook", "another audit hook was added")

    def _on_getattr(self, args: tuple[Any, ...]) -> None:
        if id(args[0]) in self._own_ids and args[1] in ("__code__", "__globals__", "__closure__"):
            self.tamper("tamper.inspect", f"the sensor's {args[1]} was read")

    def _on_setattr(self, args: tuple[Any, ...]) -> None:
        # CPython audits only some type attributes (__bases__, __module__, __doc__, ...);
        # plain method replacement is found by the integrity check after each invocation.
        obj = args[0]
        if obj in _OWN_CLASSES:
            self.tamper("tamper.patch", f"{obj.__name__}.{args[1]} was changed")
            if self.mode == "enforce":
                raise RampartsBlocked("sensor.tamper", "tamper.patch", f"{obj.__name__}.{args[1]}")

    def _on_gc(self, args: tuple[Any, ...]) -> None:
        self.tamper(
            "tamper.gc",
            "gc.get_referrers/get_objects walks the heap (a route to the sensor's state)",
        )


def _aws_host_ok(name: str, endpoint: str) -> bool:
    name = name.lower()
    return (
        name == endpoint
        or name.endswith("." + endpoint.lstrip("."))
        or name.endswith(_AWS_SUFFIXES)
    )


def _host_of(url: str) -> str:
    rest = url.partition("://")[2] or url
    hostport = rest.split("/", 1)[0]
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0]
    return hostport.partition(":")[0].lower()


def _int_env(env: Any, name: str, default: int) -> int:
    try:
        return max(1, int(env.get(name, default)))
    except (TypeError, ValueError):
        return default


def _read_only_prefixes(task_root: str) -> tuple[str, ...]:
    """Code directories on read-only file systems (as on Lambda): their reads skip checks."""
    out: list[str] = []
    cands = [task_root, "/opt", "/var/runtime", "/var/lang", sys.prefix, sys.base_prefix]
    for c in cands:
        if not c or not c.startswith("/") or c == "/":
            continue
        try:
            st = os.statvfs(c)
        except OSError:
            continue
        if st.f_flag & os.ST_RDONLY:
            out.append(c.rstrip("/") + "/")
    return tuple(dict.fromkeys(out))


_OWN_CLASSES: frozenset[type] = frozenset()

# -- the audit hook ---------------------------------------------------------------------------
_ACTIVE: Sensor | None = None


def _make_hook(sensor: Sensor) -> Callable[[str, tuple[Any, ...]], None]:
    handlers = sensor._handlers
    tls = sensor._tls

    def ramparts_audit_hook(event: str, args: tuple[Any, ...]) -> None:
        handler = handlers.get(event)
        if handler is None or tls.busy:
            return
        tls.busy = True
        try:
            handler(args)
        except RampartsBlocked:
            raise
        except Exception as exc:
            try:
                sensor._internal_error(event, exc)
            except Exception:
                pass
        finally:
            tls.busy = False

    return ramparts_audit_hook


# -- wrappers -------------------------------------------------------------------------------
def _wrap_os_open(sensor: Sensor) -> Callable[..., int]:
    original = os.open

    def open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if dir_fd is None:
            return original(path, flags, mode)
        tls = sensor._tls
        tls.dir_fd = dir_fd
        try:
            return original(path, flags, mode, dir_fd=dir_fd)
        finally:
            tls.dir_fd = None

    open.__doc__ = original.__doc__
    return open


def _wrap_fork_exec(sensor: Sensor, original: Callable[..., Any]) -> Callable[..., Any]:
    def fork_exec(*args: Any, **kwargs: Any) -> Any:
        if sensor.installed:
            tls = sensor._tls
            if not tls.busy:
                tls.busy = True
                try:
                    sensor.on_fork_exec(args)
                except RampartsBlocked:
                    raise
                except Exception as exc:
                    sensor._internal_error("fork_exec", exc)
                finally:
                    tls.busy = False
        return original(*args, **kwargs)

    return fork_exec


def _wrap_getaddrinfo(sensor: Sensor, original: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(
        host: Any,
        port: Any,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> Any:
        result = original(host, port, family, type, proto, flags)
        try:
            sensor.record_resolution(host, [r[4][0] for r in result])
        except Exception:
            pass
        return result

    getaddrinfo.__doc__ = original.__doc__
    return getaddrinfo


def _wrap_gethostbyname(sensor: Sensor, original: Callable[..., Any]) -> Callable[..., Any]:
    def gethostbyname(hostname: Any) -> Any:
        result = original(hostname)
        sensor.record_resolution(hostname, [result])
        return result

    return gethostbyname


def _wrap_gethostbyname_ex(sensor: Sensor, original: Callable[..., Any]) -> Callable[..., Any]:
    def gethostbyname_ex(hostname: Any) -> Any:
        result = original(hostname)
        try:
            sensor.record_resolution(hostname, list(result[2]))
        except Exception:
            pass
        return result

    return gethostbyname_ex


class _PostImportFinder:
    """Patches a module right after it is imported; returns None for every other name."""

    def __init__(self, sensor: Sensor) -> None:
        self._sensor = sensor
        self._busy: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        fn = self._sensor._pending.get(fullname)
        if fn is None or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        finally:
            self._busy.discard(fullname)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or isinstance(loader, type):
            return spec  # builtin/frozen loaders are classes: patched at the next invocation
        original = loader.exec_module
        sensor = self._sensor

        def exec_module(module: Any) -> None:
            original(module)
            if sensor._pending.pop(fullname, None) is not None:
                sensor._safe_patch(fn, module)

        loader.exec_module = exec_module
        return spec


_OWN_CLASSES = frozenset({Sensor, _TLS, _PostImportFinder})
_CLASS_VALUES = tuple(Sensor.__dict__.values())
_CLASS_SNAPSHOT = {
    k: v for k, v in Sensor.__dict__.items() if callable(v) and not k.startswith("__")
}
_METHOD_NAMES = frozenset(_CLASS_SNAPSHOT)
