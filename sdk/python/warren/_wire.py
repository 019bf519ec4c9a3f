"""Declarative decoding of the API's JSON objects.

Each decoded object names its OpenAPI schema and the keys it reads in a :class:`Wire`;
decoding reads only those keys, and tests/test_openapi_drift.py checks every Wire against
the OpenAPI document. So the SDK cannot silently depend on a field the server does not
document.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

Spec = Union[str, Tuple[str, Callable[[Any], Any]]]

#: Every Wire created, for the drift test.
REGISTRY: List["Wire"] = []


class Wire:
    """The keys of one OpenAPI schema that a model reads, with their converters.

    Args:
        schema: The schema's name under components/schemas.
        fields: attribute name -> wire key, or (wire key, converter). A converter gets the
            raw value, which is None when the key is absent.
    """

    def __init__(self, schema: str, fields: Mapping[str, Spec]) -> None:
        self.schema = schema
        self.fields: Dict[str, Tuple[str, Optional[Callable[[Any], Any]]]] = {}
        for attr, spec in fields.items():
            if isinstance(spec, tuple):
                self.fields[attr] = (spec[0], spec[1])
            else:
                self.fields[attr] = (spec, None)
        REGISTRY.append(self)

    @property
    def keys(self) -> List[str]:
        """The wire keys read."""
        return [k for k, _ in self.fields.values()]

    def read(self, data: Mapping[str, Any]) -> Dict[str, Any]:
        """Decode data into attribute values."""
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object for {self.schema}, got {type(data).__name__}")
        out: Dict[str, Any] = {}
        for attr, (key, conv) in self.fields.items():
            v = data.get(key)
            out[attr] = conv(v) if conv is not None else v
        return out


def to_time(v: Any) -> Optional[datetime]:
    """Parse an RFC 3339 timestamp (Go's nanosecond precision is cut to microseconds)."""
    if not v:
        return None
    s = str(v)
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    # datetime.fromisoformat takes at most 6 fractional digits.
    if "." in s:
        head, _, rest = s.partition(".")
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        s = head + "." + (digits[:6].ljust(6, "0")) + rest[i:]
    return datetime.fromisoformat(s)


def to_str(v: Any) -> str:
    """None -> "", else str."""
    return "" if v is None else str(v)


def to_opt_str(v: Any) -> Optional[str]:
    """None or "" -> None, else str."""
    return str(v) if v not in (None, "") else None


def to_int(v: Any) -> int:
    """None -> 0, else int."""
    return 0 if v is None else int(v)


def to_float(v: Any) -> float:
    """None -> 0.0, else float."""
    return 0.0 if v is None else float(v)


def to_opt_float(v: Any) -> Optional[float]:
    """None stays None, else float."""
    return None if v is None else float(v)


def to_bool(v: Any) -> bool:
    """None -> False, else bool."""
    return bool(v)


def to_dict(v: Any) -> Dict[str, Any]:
    """None -> {}, else a copy."""
    return dict(v or {})


def to_list(v: Any) -> List[Any]:
    """None -> [], else a copy."""
    return list(v or [])


def to_b64(v: Any) -> Optional[bytes]:
    """Decode base64, None stays None."""
    if v is None:
        return None
    return base64.b64decode(v)


def list_of(conv: Callable[[Any], Any]) -> Callable[[Any], List[Any]]:
    """A converter for a JSON array whose items are converted with conv."""
    return lambda v: [conv(x) for x in (v or [])]
