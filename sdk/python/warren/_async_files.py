"""Files of an :class:`~warren.AsyncSandbox`."""

from __future__ import annotations

import asyncio
import os
from typing import (IO, TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Callable, Iterable, List, Literal, Optional,
                    Tuple, Union, overload)

import httpx

from . import _errors as E
from . import _routes as R
from ._http import transport_error
from ._sync_files import CHUNK, PathLike
from .models import FILE_LIST, FileInfo

if TYPE_CHECKING:  # pragma: no cover
    from ._async import AsyncSandbox

__all__ = ["AsyncFiles", "AsyncByteStream"]

AsyncWriteData = Union[str, bytes, bytearray, memoryview, IO[bytes], Iterable[bytes], AsyncIterable[bytes]]


class AsyncByteStream:
    """The content of a file being downloaded, as an async iterator of byte chunks.
    Close it (or use ``async with``) if you stop before the end."""

    def __init__(self, resp: httpx.Response, what: str) -> None:
        self._resp = resp
        self._what = what

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_bytes(CHUNK):
                yield chunk
        except httpx.HTTPError as err:
            raise transport_error(err, self._what) from err
        finally:
            await self._resp.aclose()

    async def read(self) -> bytes:
        """Read everything that is left."""
        return b"".join([c async for c in self])

    async def aclose(self) -> None:
        """Stop the download."""
        await self._resp.aclose()

    async def __aenter__(self) -> "AsyncByteStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _body(data: AsyncWriteData) -> Tuple[Union[bytes, Callable[[], Any]], bool]:
    """A request body for data (file reads run in a worker thread), and whether it can be
    sent again for a retry."""
    if isinstance(data, str):
        return data.encode("utf-8"), True
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), True
    if hasattr(data, "read"):
        f: IO[bytes] = data  # type: ignore[assignment]
        start: Optional[int] = None
        try:
            if f.seekable():
                start = f.tell()
        except (AttributeError, OSError):
            start = None

        async def chunks() -> AsyncIterator[bytes]:
            if start is not None:
                f.seek(start)
            while True:
                b = await asyncio.to_thread(f.read, CHUNK)
                if not b:
                    return
                if isinstance(b, str):
                    raise TypeError("open the file in binary mode ('rb') to upload it")
                yield b

        return (lambda: chunks()), start is not None
    if hasattr(data, "__aiter__"):
        return (lambda: data), False
    items = iter(data)

    async def from_sync() -> AsyncIterator[bytes]:
        for b in items:
            yield b

    return (lambda: from_sync()), False


class AsyncFiles:
    """Reads and writes files in a sandbox: ``sbx.files``; see :class:`warren._sync_files.Files`."""

    def __init__(self, sandbox: "AsyncSandbox") -> None:
        self._sbx = sandbox

    async def write(self, path: str, data: AsyncWriteData, *, user: Optional[str] = None) -> FileInfo:
        """Create or replace a file (parent directories are made). data is text (UTF-8),
        bytes, a binary file object, or a sync or async iterable of byte chunks."""
        body, replayable = _body(data)
        resp = await self._sbx._http.send(R.WRITE_FILE, {"id": self._sbx.id},
                                          params=R.WRITE_FILE.params(path=path, user=user), body=body,
                                          replayable=replayable, headers={"Content-Type": "application/octet-stream"})
        return FileInfo.from_json(resp.json())

    @overload
    async def read(self, path: str, *, format: Literal["text"] = ..., user: Optional[str] = ...) -> str: ...

    @overload
    async def read(self, path: str, *, format: Literal["bytes"], user: Optional[str] = ...) -> bytes: ...

    @overload
    async def read(self, path: str, *, format: Literal["stream"], user: Optional[str] = ...) -> AsyncByteStream: ...

    async def read(self, path: str, *, format: str = "text",
                   user: Optional[str] = None) -> Union[str, bytes, AsyncByteStream]:
        """Read a file as "text", "bytes" or a "stream" (:class:`AsyncByteStream`).

        Raises:
            NotFoundError: The file does not exist.
        """
        if format not in ("text", "bytes", "stream"):
            raise ValueError('format must be "text", "bytes" or "stream"')
        resp = await self._sbx._http.send(R.READ_FILE, {"id": self._sbx.id},
                                          params=R.READ_FILE.params(path=path, user=user), stream=True)
        s = AsyncByteStream(resp, f"reading {path} in sandbox {self._sbx.id}")
        if format == "stream":
            return s
        raw = await s.read()
        return raw if format == "bytes" else raw.decode("utf-8", "replace")

    async def list(self, path: str, *, depth: int = 1, user: Optional[str] = None) -> List[FileInfo]:
        """The entries of a directory, descending depth levels."""
        data = await self._sbx._http.json(R.LIST_FILES, {"id": self._sbx.id},
                                          params=R.LIST_FILES.params(path=path, user=user, depth=depth))
        entries: List[FileInfo] = FILE_LIST.read(data)["entries"]
        return entries

    async def exists(self, path: str, *, user: Optional[str] = None) -> bool:
        """Whether a file, directory or symlink exists at path."""
        try:
            await self.get_info(path, user=user)
        except E.NotFoundError:
            return False
        return True

    async def get_info(self, path: str, *, user: Optional[str] = None) -> FileInfo:
        """Describe path (a final symlink is not followed); NotFoundError if it is missing."""
        data = await self._sbx._http.json(R.STAT_FILE, {"id": self._sbx.id},
                                          params=R.STAT_FILE.params(path=path, user=user))
        return FileInfo.from_json(data)

    async def remove(self, path: str, *, user: Optional[str] = None) -> None:
        """Remove a file, or a directory with everything in it (NotFoundError if missing)."""
        await self._sbx._http.send(R.DELETE_FILE, {"id": self._sbx.id},
                                   params=R.DELETE_FILE.params(path=path, user=user))

    async def make_dir(self, path: str, *, user: Optional[str] = None) -> bool:
        """Create a directory and its parents. Returns False if it already existed;
        ConflictError if a file is in the way."""
        resp = await self._sbx._http.send(R.MAKE_DIR, {"id": self._sbx.id},
                                          params=R.MAKE_DIR.params(path=path, user=user))
        return resp.status_code == R.MAKE_DIR.status

    async def rename(self, old_path: str, new_path: str, *, user: Optional[str] = None) -> FileInfo:
        """Move or rename a file or directory and describe it at its new path."""
        data = await self._sbx._http.json(R.MOVE_FILE, {"id": self._sbx.id}, params=R.MOVE_FILE.params(user=user),
                                          json=R.MOVE_FILE.body(**{"from": old_path, "to": new_path}))
        return FileInfo.from_json(data)

    async def upload(self, src: Union[PathLike, IO[bytes]], path: str, *, user: Optional[str] = None) -> FileInfo:
        """Stream a local file (a path or a binary file object) to path in the sandbox."""
        if hasattr(src, "read"):
            return await self.write(path, src, user=user)  # type: ignore[arg-type]
        with open(os.fspath(src), "rb") as f:
            return await self.write(path, f, user=user)

    async def download(self, path: str, dest: Union[PathLike, IO[bytes]], *, user: Optional[str] = None) -> int:
        """Stream a sandbox file to a local path or binary file object. Returns the number
        of bytes written."""
        n = 0
        s = await self.read(path, format="stream", user=user)
        async with s:
            if hasattr(dest, "write"):
                async for chunk in s:
                    dest.write(chunk)
                    n += len(chunk)
            else:
                with open(os.fspath(dest), "wb") as f:
                    async for chunk in s:
                        await asyncio.to_thread(f.write, chunk)
                        n += len(chunk)
        return n
