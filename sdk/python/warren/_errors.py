"""Typed exceptions raised by the Warren SDK.

Every exception derives from :class:`WarrenError`. Errors the API reports derive from
:class:`APIError` and carry the HTTP status, the machine-readable ``code``, the
``message`` meant for people and the ``request_id`` to quote in bug reports.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Mapping, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .models import CommandResult

__all__ = [
    "WarrenError",
    "ConfigError",
    "APIError",
    "InvalidArgumentError",
    "AuthenticationError",
    "ForbiddenError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RateLimitedError",
    "QuotaExceededError",
    "UnavailableError",
    "NotSupportedError",
    "ServerError",
    "TimeoutError",
    "ConnectionError",
    "CommandExitError",
    "SandboxKilledError",
    "ForkError",
    "BuildError",
]


class WarrenError(Exception):
    """Base class of every error the SDK raises."""


class ConfigError(WarrenError, ValueError):
    """The client is missing configuration (API URL, API key or sandbox domain)."""


class APIError(WarrenError):
    """An error response from the Warren API.

    Attributes:
        status: HTTP status code, or 200 for an error event inside a stream.
        code: Machine-readable error kind ("not_found", "invalid", "rate_limited", ...).
        message: What went wrong and what to do, for people.
        request_id: Identifies the request in the server's logs; quote it in bug reports.
        field: The request field at fault, for code "invalid".
        body: The whole decoded error body.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        request_id: str = "",
        field: Optional[str] = None,
        body: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.field = field
        self.body: Mapping[str, Any] = dict(body or {})

    def __str__(self) -> str:
        parts = []
        if self.status:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        if self.request_id:
            parts.append(f"request {self.request_id}")
        return f"{self.message} ({', '.join(parts)})" if parts else self.message


class InvalidArgumentError(APIError):
    """The request was malformed or a field was invalid (HTTP 400 or 413)."""


class AuthenticationError(APIError):
    """The API key is missing, malformed, unknown, revoked or expired (HTTP 401)."""


class ForbiddenError(APIError):
    """The API key lacks a scope needed for the request (HTTP 403)."""


PermissionDeniedError = ForbiddenError
"""Alias of :class:`ForbiddenError`."""


class NotFoundError(APIError):
    """The sandbox, process, file, context or route does not exist (HTTP 404)."""


class ConflictError(APIError):
    """The request conflicts with the object's state (HTTP 409): the sandbox is not
    running (or stopped while a command ran), a process's stdin is not open, a file is in
    the way of a directory."""


class RateLimitedError(APIError):
    """The team's request rate limit was hit (HTTP 429, code "rate_limited").

    Attributes:
        retry_after: Seconds to wait before retrying (from Retry-After), or None.
        limit: The limit in requests per minute, when the server says.
    """

    def __init__(self, message: str, *, retry_after: Optional[float] = None, limit: Optional[float] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.limit = limit


class QuotaExceededError(APIError):
    """A quota of the team is exhausted (HTTP 429, or 403 for a spending limit; code
    "quota_exceeded"). Waiting seconds does not help: stop sandboxes or raise the quota.

    Attributes:
        quota: Which quota: "max_sandboxes", "max_cpu_cores", "max_memory_mb",
            "max_disk_mb", "spending_limit", ...
        limit: The quota's limit.
        used: How much of it is in use.
    """

    def __init__(
        self,
        message: str,
        *,
        quota: Optional[str] = None,
        limit: Optional[float] = None,
        used: Optional[float] = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.quota = quota
        self.limit = limit
        self.used = used


class UnavailableError(APIError):
    """The server or the sandbox cannot serve the request right now (HTTP 503).

    Attributes:
        retry_after: Seconds the server asked to wait, or None.
    """

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class NotSupportedError(APIError):
    """The server does not offer this feature (HTTP 501), or the SDK cannot do it with
    the server's API."""


class ServerError(APIError):
    """The server failed (HTTP 500 or another 5xx); quote request_id when reporting it."""


class TimeoutError(WarrenError, builtins.TimeoutError):
    """An operation took longer than allowed: an HTTP request exceeded the client's
    request timeout, a command was killed at its ``timeout``, or ``wait(timeout=...)``
    expired. It is also a built-in :class:`TimeoutError`.

    Attributes:
        result: For a command killed at its timeout, its
            :class:`~warren.models.CommandResult` (exit_code -1, timed_out True, the
            output until then); otherwise None.
    """

    def __init__(self, message: str, *, result: Optional["CommandResult"] = None) -> None:
        super().__init__(message)
        self.result = result


class ConnectionError(WarrenError, builtins.ConnectionError):
    """The server could not be reached (connection refused, DNS failure, broken
    connection). It is also a built-in :class:`ConnectionError`."""


class ForkError(WarrenError):
    """Some copies of a fork started and others did not (each copy is admitted like a
    create: one may find the team's quota full while the others run).

    Attributes:
        sandboxes: The copies that started (Sandbox or AsyncSandbox objects). They run:
            kill them when done.
        failures: Why the others did not: dicts with index (the copy's position, from
            0), status, code and message, as a create would have answered.
    """

    def __init__(self, sandboxes: Any, failures: Any) -> None:
        self.sandboxes = list(sandboxes)
        self.failures = [dict(f) for f in failures]
        why = "; ".join(f"copy {f.get('index')}: {f.get('message')}" for f in self.failures)
        total = len(self.sandboxes) + len(self.failures)
        super().__init__(f"{len(self.failures)} of {total} copies did not start ({why}); "
                         f"the {len(self.sandboxes)} that did are in .sandboxes")


class SandboxKilledError(WarrenError):
    """The sandbox was killed through this client while a command or stream was still
    running in it."""


class CommandExitError(WarrenError):
    """A command exited with a non-zero status (or was killed by a signal: exit_code -1).

    Attributes:
        result: The whole :class:`~warren.models.CommandResult`.
        exit_code, stdout, stderr, error: Shortcuts into result.
    """

    def __init__(self, result: "CommandResult") -> None:
        detail = result.error or f"exit status {result.exit_code}"
        tail = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
        msg = f"command exited with code {result.exit_code} ({detail})"
        if tail:
            msg += f": {tail[0][:200]}"
        super().__init__(msg)
        self.result = result

    @property
    def exit_code(self) -> int:
        """The command's exit code; -1 when a signal killed it."""
        return self.result.exit_code

    @property
    def stdout(self) -> str:
        """Everything the command wrote to standard output."""
        return self.result.stdout

    @property
    def stderr(self) -> str:
        """Everything the command wrote to standard error."""
        return self.result.stderr

    @property
    def error(self) -> Optional[str]:
        """The server's description of how the command ended, if any."""
        return self.result.error


class BuildError(WarrenError):
    """A template build ended in state "error": a step failed, the build took longer
    than its time limit, or the server stopped it. The template keeps its previous ready
    build (if any), which sandboxes still start from.

    Attributes:
        build: The ended :class:`~warren.Build`.
        template_id, build_id: Which build.
        reason: The server's reason: the step, its exit code and its last output.
        step: The failed step's number (from 1, as in the log), or None when no step
            failed (a timeout, say).
        exit_code: The failed RUN step's exit code, or None.
        last_lines: The last lines of the build's log the client saw (at most 20).
    """

    def __init__(self, build: Any, reason: str, *, step: Optional[int] = None, exit_code: Optional[int] = None,
                 last_lines: Optional[Any] = None) -> None:
        self.build = build
        self.template_id: str = build.template_id
        self.build_id: str = build.build_id
        self.reason = reason
        self.step = step
        self.exit_code = exit_code
        self.last_lines = list(last_lines or [])
        msg = f"the build {self.build_id} of template {self.template_id} failed: {reason}"
        # The reason of a failed RUN already ends with the step's last output.
        if self.last_lines and self.last_lines[-1] not in reason:
            msg += "\nlast log lines:\n  " + "\n  ".join(self.last_lines)
        super().__init__(msg)
