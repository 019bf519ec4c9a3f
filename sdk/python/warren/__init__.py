"""Python SDK for Warren's native REST API (/v1): sandboxes, commands, files and code
execution, with a synchronous client (:class:`Sandbox`) and an asyncio client
(:class:`AsyncSandbox`) of the same shape::

    from warren import Sandbox

    with Sandbox.create(template="code-interpreter") as sbx:
        sbx.commands.run("echo hello", on_stdout=print)
        execution = sbx.run_code("1 + 1")
        print(execution.text)  # 2

Configuration comes from arguments or from WARREN_API_URL, WARREN_API_KEY and
WARREN_DOMAIN. Requests answered 429 (rate limited) or 503 are retried with backoff,
honouring Retry-After. Errors are typed: see :mod:`warren._errors`.
"""

from ._async import AsyncSandbox
from ._async_templates import AsyncTemplates
from ._async_commands import AsyncCommandHandle, AsyncCommands
from ._async_files import AsyncByteStream, AsyncFiles
from ._config import Config, resolve_config
from ._errors import (
    APIError,
    BuildError,
    AuthenticationError,
    CommandExitError,
    ConfigError,
    ConflictError,
    ConnectionError,
    ForbiddenError,
    ForkError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    SandboxKilledError,
    ServerError,
    TimeoutError,
    UnavailableError,
    WarrenError,
)
from ._sync import Sandbox
from ._sync_commands import CommandHandle, Commands
from ._sync_files import ByteStream, Files
from ._sync_templates import Templates
from ._templates import Build, BuildLogLine, BuildLogs, BuildStarted, BuildStep, BuildStepResult, ReadyCheck
from .models import (
    CodeContext,
    CommandResult,
    Execution,
    ExecutionError,
    FileInfo,
    Limits,
    Logs,
    NetworkPolicy,
    OutputMessage,
    PortInfo,
    ProcessInfo,
    Result,
    SandboxInfo,
    SnapshotInfo,
    Template,
)

__version__ = "0.2.0"

__all__ = [
    "Sandbox", "AsyncSandbox", "Commands", "AsyncCommands", "CommandHandle", "AsyncCommandHandle",
    "Files", "AsyncFiles", "ByteStream", "AsyncByteStream", "Config", "resolve_config",
    "CodeContext", "CommandResult", "Execution", "ExecutionError", "FileInfo", "Limits", "Logs", "NetworkPolicy",
    "OutputMessage", "PortInfo", "ProcessInfo", "Result", "SandboxInfo", "SnapshotInfo", "Template",
    "WarrenError", "ConfigError", "APIError", "InvalidArgumentError", "AuthenticationError",
    "ForbiddenError", "PermissionDeniedError", "NotFoundError", "ConflictError", "RateLimitedError",
    "QuotaExceededError", "UnavailableError", "NotSupportedError", "ServerError", "TimeoutError",
    "ConnectionError", "CommandExitError", "SandboxKilledError", "ForkError",
    "Templates", "AsyncTemplates", "Build", "BuildLogLine", "BuildLogs", "BuildStarted", "BuildStep", "BuildStepResult",
    "ReadyCheck", "BuildError",
]
