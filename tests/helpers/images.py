"""Images for media tests, made here: ordinary ones, and the hostile kinds a peer may serve
(dimension bombs, SVG with script, lying types, endless animations)."""

from __future__ import annotations

import functools
import io
import random
import struct
import zlib

from PIL import Image


def png(width: int = 64, height: int = 64, colour: tuple[int, ...] = (214, 90, 49),
        mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def noisy_png(width: int, height: int, seed: int = 1) -> bytes:
    """A PNG that does not compress (a photo's worth of detail)."""
    rnd = random.Random(seed)
    buf = io.BytesIO()
    Image.frombytes("RGB", (width, height), rnd.randbytes(width * height * 3)).save(buf, "PNG")
    return buf.getvalue()


def jpeg(width: int = 64, height: int = 48, colour: tuple[int, int, int] = (40, 140, 90),
         exif: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (width, height), colour)
    if exif is None:
        img.save(buf, "JPEG")
    else:
        img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


@functools.cache
def dimension_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid PNG of width × height grey pixels, all zero: a few hundred kilobytes that
    would decode into width × height bytes."""
    block = b"\x00" * ((width + 1) * 500)  # 500 lines: a filter byte + one byte a pixel
    packer = zlib.compressobj(1)
    parts = [packer.compress(block) for _ in range(height // 500)]
    parts.append(packer.compress(b"\x00" * ((width + 1) * (height % 500))))
    parts.append(packer.flush())
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                               0, 0, 0))
            + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))


SVG_WITH_SCRIPT = (b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
                   b'<script>window.__xss=1</script><circle r="20" cx="20" cy="20"/></svg>')


def endless_gif(frames: int = 3000) -> bytes:
    """An animated GIF of `frames` distinct tiny frames."""
    images = []
    for i in range(frames):
        frame = Image.new("P", (4, 4), 0)
        frame.putpixel((i % 4, (i // 4) % 4), (i % 200) + 1)
        images.append(frame)
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], disposal=1)
    return buf.getvalue()


def size_of(data: bytes) -> tuple[str, tuple[int, int]]:
    """(format, size) of an image as Pillow reads it."""
    with Image.open(io.BytesIO(data)) as img:
        return str(img.format), img.size
