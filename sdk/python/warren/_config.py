"""Client configuration: from arguments, else from WARREN_* environment variables."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional
from urllib.parse import urlsplit

from ._errors import ConfigError

__all__ = ["Config", "resolve_config", "DEFAULT_API_URL"]

#: Where `warren serve` listens by default.
DEFAULT_API_URL = "http://127.0.0.1:3000"
#: The proxy port of a default `warren serve`; its default sandbox domain is localhost:3001.
DEFAULT_PROXY_PORT = 3001


@dataclass(frozen=True)
class Config:
    """Everything a client needs to talk to one Warren server.

    Attributes:
        api_url: Base URL of the API, e.g. "http://127.0.0.1:3000" (no trailing slash).
        api_key: The API key ("sk_...").
        domain: The sandbox domain: port P of sandbox S is reachable at "P-S.<domain>".
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

    def sandbox_domain(self) -> str:
        """The sandbox domain, or a ConfigError saying how to set it."""
        if self.domain:
            return self.domain
        raise ConfigError(
            "the sandbox domain is unknown: pass domain=... or set WARREN_DOMAIN (or "
            "WARREN_PROXY_URL) to what `warren serve` prints as its sandbox traffic address"
        )


def _env(name: str) -> Optional[str]:
    v = os.environ.get(name, "").strip()
    return v or None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def derive_domain(proxy_url: Optional[str], api_url: str) -> Optional[str]:
    """The sandbox domain a server probably uses when WARREN_DOMAIN is not set: the proxy
    URL's host and port ("localhost" for a loopback address, as the server does), or, for
    an API on a loopback address, the server's default "localhost:3001"."""
    if proxy_url:
        u = urlsplit(proxy_url if "://" in proxy_url else "http://" + proxy_url)
        host = u.hostname or ""
        if _is_loopback(host):
            host = "localhost"
        return f"{host}:{u.port}" if u.port else host
    host = urlsplit(api_url).hostname or ""
    if _is_loopback(host):
        return f"localhost:{DEFAULT_PROXY_PORT}"
    return None


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
    WARREN_DOMAIN (else derived from WARREN_PROXY_URL or a loopback API URL)."""
    url = (api_url or _env("WARREN_API_URL") or DEFAULT_API_URL).rstrip("/")
    if "://" not in url:
        url = "http://" + url
    key = api_key or _env("WARREN_API_KEY")
    if not key:
        raise ConfigError(
            "no API key: pass api_key=... or set WARREN_API_KEY (`warren serve` prints the "
            "admin key and saves it as admin.key in its data directory)"
        )
    dom = domain or _env("WARREN_DOMAIN") or derive_domain(_env("WARREN_PROXY_URL"), url)
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
