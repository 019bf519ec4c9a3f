"""Files of a synchronous :class:`~warren.Sandbox`."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Literal, Optional, Union, overload

import httpx

from . import _errors as E
from . import _routes as R
from ._http import transport_error
from .models import FILE_LIST, FileInfo

if TYPE_CHECKING:  # pragma: no cover
    from ._sync import Sandbox

__all__ = ["Files", "ByteStream"]

#: Bytes per chunk when streaming files.
CHUNK = 256 * 1024

WriteData = Union[str, bytes, bytearray, memoryview, IO[bytes], Iterable[bytes]]
PathLike = Union[str, "os.PathLike[str]"]


class ByteStream:
    """The content of a file being downloaded, as an iterator of byte chunks. Close it
    (or use it as a context manager) if you stop before the end."""

    def __init__(self, resp: httpx.Response, what: str) -> None:
        self._resp = resp
        self._what = what

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._resp.iter_bytes(CHUNK):
                yield chunk
        except httpx.HTTPError as err:
            raise transport_error(err, self._what) from err
        finally:
            self._resp.close()

    def read(self) -> bytes:
        """Read everything that is left."""
        return b"".join(self)

    def close(self) -> None:
        """Stop the download."""
        self._resp.close()

    def __enter__(self) -> "ByteStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _body(data: WriteData) -> tuple[Union[bytes, Callable[[], Any]], bool]:
    """A request body for data, and whether it can be sent again for a retry."""
    if isinstance(data, str):
        return data.encode("utf-8"), True
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), True
    read = getattr(data, "read", None)
    if read is not None:
        f: IO[bytes] = data  # type: ignore[assignment]
        start: Optional[int] = None
        try:
            if f.seekable():
                start = f.tell()
        except (AttributeError, OSError):
            start = None

        def chunks() -> Iterator[bytes]:
            if start is not None:
                f.seek(start)
            while True:
                b = f.read(CHUNK)
                if not b:
                    return
                if isinstance(b, str):
                    raise TypeError("open the file in binary mode ('rb') to upload it")
                yield b

        return (lambda: chunks()), start is not None
    it = iter(data)
    return (lambda: it), False


class Files:
    """Reads and writes files in a sandbox: ``sbx.files``. Paths are absolute, or
    relative to the user's home."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self._sbx = sandbox

    def _q(self, path: str, user: Optional[str], route: R.Route, **more: Any) -> Dict[str, Any]:
        return route.params(path=path, user=user, **more)

    def write(self, path: str, data: WriteData, *, user: Optional[str] = None) -> FileInfo:
        """Create or replace a file (parent directories are made).

        Args:
            path: Where in the sandbox.
            data: Text (written as UTF-8), bytes, a binary file object, or an iterable of
                byte chunks (streamed; large files are never held in memory).
            user: Who owns what is created, and whose home relative paths start in
                ("user" by default, or "root"). Not a permission check.
        """
        body, replayable = _body(data)
        resp = self._sbx._http.send(R.WRITE_FILE, {"id": self._sbx.id}, params=self._q(path, user, R.WRITE_FILE),
                                    body=body, replayable=replayable,
                                    headers={"Content-Type": "application/octet-stream"})
        return FileInfo.from_json(resp.json())

    @overload
    def read(self, path: str, *, format: Literal["text"] = ..., user: Optional[str] = ...) -> str: ...

    @overload
    def read(self, path: str, *, format: Literal["bytes"], user: Optional[str] = ...) -> bytes: ...

    @overload
    def read(self, path: str, *, format: Literal["stream"], user: Optional[str] = ...) -> ByteStream: ...

    def read(self, path: str, *, format: str = "text", user: Optional[str] = None) -> Union[str, bytes, ByteStream]:
        """Read a file.

        Args:
            path: The file.
            format: "text" (UTF-8, invalid bytes replaced), "bytes", or "stream" (a
                :class:`ByteStream` of chunks, for large files).
            user: Who owns what is created, and whose home relative paths start in.

        Raises:
            NotFoundError: The file does not exist.
            InvalidArgumentError: The path is a directory.
        """
        if format not in ("text", "bytes", "stream"):
            raise ValueError('format must be "text", "bytes" or "stream"')
        resp = self._sbx._http.send(R.READ_FILE, {"id": self._sbx.id}, params=self._q(path, user, R.READ_FILE),
                                    stream=True)
        s = ByteStream(resp, f"reading {path} in sandbox {self._sbx.id}")
        if format == "stream":
            return s
        raw = s.read()
        return raw if format == "bytes" else raw.decode("utf-8", "replace")

    def list(self, path: str, *, depth: int = 1, user: Optional[str] = None) -> List[FileInfo]:
        """The entries of a directory, descending depth levels (1 = just its children).

        Raises:
            NotFoundError: The directory does not exist.
        """
        data = self._sbx._http.json(R.LIST_FILES, {"id": self._sbx.id},
                                    params=self._q(path, user, R.LIST_FILES, depth=depth))
        entries: List[FileInfo] = FILE_LIST.read(data)["entries"]
        return entries

    def exists(self, path: str, *, user: Optional[str] = None) -> bool:
        """Whether a file, directory or symlink exists at path."""
        try:
            self.get_info(path, user=user)
        except E.NotFoundError:
            return False
        return True

    def get_info(self, path: str, *, user: Optional[str] = None) -> FileInfo:
        """Describe path (a final symlink is not followed).

        Raises:
            NotFoundError: Nothing exists at path.
        """
        data = self._sbx._http.json(R.STAT_FILE, {"id": self._sbx.id}, params=self._q(path, user, R.STAT_FILE))
        return FileInfo.from_json(data)

    def remove(self, path: str, *, user: Optional[str] = None) -> None:
        """Remove a file, or a directory with everything in it.

        Raises:
            NotFoundError: Nothing exists at path.
            InvalidArgumentError: It could not be removed (permissions).
        """
        self._sbx._http.send(R.DELETE_FILE, {"id": self._sbx.id}, params=self._q(path, user, R.DELETE_FILE))

    def make_dir(self, path: str, *, user: Optional[str] = None) -> bool:
        """Create a directory and its parents. Returns False if it already existed.

        Raises:
            ConflictError: A file (not a directory) is in the way.
            InvalidArgumentError: It could not be created (permissions).
        """
        resp = self._sbx._http.send(R.MAKE_DIR, {"id": self._sbx.id}, params=self._q(path, user, R.MAKE_DIR))
        return resp.status_code == R.MAKE_DIR.status

    def rename(self, old_path: str, new_path: str, *, user: Optional[str] = None) -> FileInfo:
        """Move or rename a file or directory (new_path's missing parents are made) and
        describe it at its new path.

        Raises:
            NotFoundError: Nothing exists at old_path.
        """
        data = self._sbx._http.json(R.MOVE_FILE, {"id": self._sbx.id}, params=R.MOVE_FILE.params(user=user),
                                    json=R.MOVE_FILE.body(**{"from": old_path, "to": new_path}))
        return FileInfo.from_json(data)

    def upload(self, src: Union[PathLike, IO[bytes]], path: str, *, user: Optional[str] = None) -> FileInfo:
        """Stream a local file (a path or a binary file object) to path in the sandbox."""
        if hasattr(src, "read"):
            return self.write(path, src, user=user)  # type: ignore[arg-type]
        with open(os.fspath(src), "rb") as f:
            return self.write(path, f, user=user)

    def download(self, path: str, dest: Union[PathLike, IO[bytes]], *, user: Optional[str] = None) -> int:
        """Stream a sandbox file to a local path or binary file object. Returns the number
        of bytes written."""
        n = 0
        with self.read(path, format="stream", user=user) as s:
            if hasattr(dest, "write"):
                for chunk in s:
                    dest.write(chunk)
                    n += len(chunk)
            else:
                with open(os.fspath(dest), "wb") as f:
                    for chunk in s:
                        f.write(chunk)
                        n += len(chunk)
        return n
