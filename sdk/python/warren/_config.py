"""Client configuration: from arguments, else from WARREN_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional

from ._errors import ConfigError

__all__ = ["Config", "resolve_config", "DEFAULT_API_URL"]

#: Where `warren serve` listens by default.
DEFAULT_API_URL = "http://127.0.0.1:3000"


@dataclass(frozen=True)
class Config:
    """Everything a client needs to talk to one Warren server.

    Attributes:
        api_url: Base URL of the API, e.g. "http://127.0.0.1:3000" (no trailing slash).
        api_key: The API key ("sk_...").
        domain: Overrides the sandbox domain the server reports with each sandbox (port P
            of sandbox S is reachable at "P-S.<domain>"); None uses the server's.
        request_timeout: Seconds an HTTP request may wait for the server (each read of a
            stream counts separately; streams get keep-alives every 15 s).
        max_retries: How often a request answered 429 (rate limited) or 503 is retried.
        backoff: First backoff delay in seconds; it doubles per retry (with jitter).
        max_backoff: Longest backoff delay.
        max_retry_wait: A Retry-After longer than this is not waited for: the error is
            raised at once.
        headers: Extra headers for every request.
    """

    api_url: str
    api_key: str
    domain: Optional[str] = None
    request_timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_wait: float = 120.0
    headers: Mapping[str, str] = field(default_factory=dict)


def _env(name: str) -> Optional[str]:
    v = os.environ.get(name, "").strip()
    return v or None


def resolve_config(
    api_url: Optional[str] = None,
    api_key: Optional[str] = None,
    *,
    domain: Optional[str] = None,
    request_timeout: Optional[float] = None,
    max_retries: Optional[int] = None,
    backoff: Optional[float] = None,
    max_backoff: Optional[float] = None,
    max_retry_wait: Optional[float] = None,
    headers: Optional[Mapping[str, str]] = None,
) -> Config:
    """Build a Config from the arguments, falling back to the environment:
    WARREN_API_URL (default http://127.0.0.1:3000), WARREN_API_KEY (required),
    WARREN_DOMAIN (optional: overrides the sandbox domain the server reports)."""
    url = (api_url or _env("WARREN_API_URL") or DEFAULT_API_URL).rstrip("/")
    if "://" not in url:
        url = "http://" + url
    key = api_key or _env("WARREN_API_KEY")
    if not key:
        raise ConfigError(
            "no API key: pass api_key=... or set WARREN_API_KEY (`warren serve` prints the "
            "admin key and saves it as admin.key in its data directory)"
        )
    dom = domain or _env("WARREN_DOMAIN")
    kw: Dict[str, object] = {}
    if request_timeout is not None:
        if request_timeout <= 0:
            raise ConfigError("request_timeout must be positive seconds")
        kw["request_timeout"] = float(request_timeout)
    if max_retries is not None:
        if max_retries < 0:
            raise ConfigError("max_retries must not be negative")
        kw["max_retries"] = int(max_retries)
    for name, v in (("backoff", backoff), ("max_backoff", max_backoff), ("max_retry_wait", max_retry_wait)):
        if v is not None:
            if v < 0:
                raise ConfigError(f"{name} must not be negative")
            kw[name] = float(v)
    return Config(api_url=url, api_key=key, domain=dom, headers=dict(headers or {}), **kw)  # type: ignore[arg-type]
