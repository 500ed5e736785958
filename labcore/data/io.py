"""Safe files: atomic writes and pickle-free, byte-reproducible ``.npz`` archives.

Every file labcore writes (dataset caches, samples, COCO JSON, checkpoints) goes through
:func:`atomic_write`: the data is written to a temporary file in the destination folder
and moved into place with ``os.replace``, so a reader never sees half a file and a failed
write leaves the previous file intact. :func:`write_npz` stores arrays without pickle and
with fixed zip timestamps, so the same arrays always give the same bytes (``labcore
samples`` relies on that); :func:`read_npz` refuses pickled content.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["atomic_write", "write_npz", "read_npz", "png_bytes", "write_png"]

PathLike = str | os.PathLike


def atomic_write(path: PathLike, write: Callable[[IO], None], *, text: bool = False) -> Path:
    """Call ``write(f)`` on a temporary file next to ``path``, then ``os.replace`` it there.

    If ``write`` (or the replace) fails, the temporary file is removed and an existing
    ``path`` is left untouched. The result keeps an existing file's permissions, else 0o644.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        f = os.fdopen(fd, "w", encoding="utf-8", newline="\n") if text else os.fdopen(fd, "wb")
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_npz(path: PathLike, arrays: dict[str, np.ndarray], *, compress: bool = False) -> Path:
    """Write ``arrays`` as an ``.npz`` readable by ``np.load(..., allow_pickle=False)``.

    Unlike ``np.savez`` the zip members carry a fixed timestamp, so equal arrays give
    byte-identical files. Object arrays are refused (they would need pickle).
    """
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    for key, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"arrays[{key!r}]: object arrays need pickle and are not written")

    def write(f: IO) -> None:
        with zipfile.ZipFile(f, "w", compression=method) as zf:
            for key, arr in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)

    return atomic_write(path, write)


def read_npz(path: PathLike) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, loaded eagerly with ``allow_pickle=False``."""
    with np.load(Path(path).expanduser(), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def png_bytes(image: np.ndarray) -> bytes:
    """Encode ``image`` — ``(H, W, 3)`` RGB or ``(H, W)`` grey, uint8 — as a PNG whose bytes
    depend on nothing but the pixels: the deflate stream uses *stored* (uncompressed)
    blocks, so no zlib version or compression setting can change them."""
    img = np.ascontiguousarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise TypeError(f"image: expected uint8 (H, W) or (H, W, 3), got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    colour_type = 2 if img.ndim == 3 else 0
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))  # filter 0 on every row
    stream = bytearray(b"\x78\x01")
    for start in range(0, len(raw), 65535):
        block = raw[start : start + 65535]
        final = start + 65535 >= len(raw)
        stream += bytes([final]) + struct.pack("<HH", len(block), 0xFFFF ^ len(block)) + block
    stream += struct.pack(">I", zlib.adler32(raw))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bytes(stream)) + chunk(b"IEND", b"")


def write_png(path: PathLike, image: np.ndarray) -> Path:
    """Write :func:`png_bytes` of ``image`` atomically."""
    data = png_bytes(image)
    return atomic_write(path, lambda f: f.write(data))
