"""Remote images made safe to show: decoded with Pillow within hard limits, cut to the sizes
the page shows (and twice that) and re-encoded; run as a child process (`python -m`).

The server never decodes an image itself: `decode_command()` starts this module in a child
process with its own memory and CPU limits, which reads one image on stdin and writes the
variants (or the reason for refusing it) on stdout (`parse_answer`).
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: What each kind of image is cut to: the boxes (in CSS pixels) it is shown in, each
#: rendered at 1× and 2×. An avatar is 40 px beside a comment and 20 px in a facepile.
BOXES: dict[str, tuple[int, ...]] = {"avatar": (20, 40, 80), "emoji": (20, 40),
                                     "thumbnail": (160, 320)}
#: The 1× and 2× box of each place an image is shown.
SHOWN = {"avatar": (40, 80), "face": (20, 40), "emoji": (20, 40), "thumbnail": (160, 320)}
#: A wide emoji is cut to at most this many times its height.
EMOJI_MAX_RATIO = 4
#: Names every variant: bump it when the boxes or the encoding change, so browsers that
#: cached the old files (for a year) get the new ones under new names.
PIPELINE = "1"

#: Largest download we decode (Mastodon caps avatars at 2 MB and images at 16 MB; a
#: thumbnail of a bigger original is not worth the memory).
MAX_BYTES = 8 << 20
#: Largest image, in pixels, we decode: 4096 × 4096 holds Mastodon's own limit for images
#: (3840 × 2160) in either orientation and costs 64 MiB as RGBA.
MAX_PIXELS = 4096 * 4096
#: Longest side, whatever the area (a 1 × 16,000,000 strip is no picture).
MAX_SIDE = 16384
#: More frames than this is refused; we show the first frame only (Mastodon's web app
#: shows still avatars and emoji unless the reader turns animation on).
MAX_FRAMES = 1000
#: Declared media types we read, and the Pillow format each must really be.
ACCEPTED: dict[str, str] = {"image/png": "PNG", "image/apng": "PNG", "image/jpeg": "JPEG",
                            "image/jpg": "JPEG", "image/pjpeg": "JPEG", "image/gif": "GIF",
                            "image/webp": "WEBP"}
#: The child's limits: address space (Pillow's own decoders stay far below it: the
#: largest accepted image decodes into 64 MiB) and CPU seconds.
CHILD_MEMORY = 768 << 20
CHILD_CPU_SECONDS = 20


class ImageRefused(Exception):
    """The image is not one we show; the message says why, in a few words."""


@dataclass(frozen=True)
class Variant:
    """One re-encoded size of an image."""

    box: int
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class Rendered:
    """Every variant of one image, and the file extension they share."""

    ext: str
    variants: tuple[Variant, ...]

    def variant(self, box: int) -> Variant:
        return next(v for v in self.variants if v.box == box)


def media_type_of(declared: str) -> str:
    return declared.split(";", 1)[0].strip().lower()


def render(data: bytes, declared: str, kind: str) -> Rendered:
    """Check and re-encode one image; raises ImageRefused. Runs in the child process."""
    from PIL import Image, ImageOps

    if kind not in BOXES:
        raise ValueError(f"unknown kind {kind!r}")
    if len(data) > MAX_BYTES:
        raise ImageRefused(f"larger than {MAX_BYTES} bytes")
    media = media_type_of(declared)
    expected = ACCEPTED.get(media)
    if expected is None:
        raise ImageRefused(f"type {media or 'none'!r} is not an image type we show")
    # Pillow's own guard, at our limit: DecompressionBombError beyond twice it, a warning
    # (made an error below) beyond it.
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        img = Image.open(io.BytesIO(data), formats=[expected])
    except Image.DecompressionBombError as exc:
        raise ImageRefused(f"too large: {exc}") from None
    except Exception:  # any reader failure means: not what it claims to be
        found = _sniff(data)
        raise ImageRefused(f"declared {media} but the data is {found or 'no image we read'}"
                           ) from None
    width, height = img.size
    if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE \
            or width * height > MAX_PIXELS:
        raise ImageRefused(f"{width} × {height} pixels is too large")
    frames = int(getattr(img, "n_frames", 1))
    if frames > MAX_FRAMES:
        raise ImageRefused(f"{frames} frames is too many")
    img.seek(0)
    biggest = max(BOXES[kind])
    if img.format == "JPEG":
        # Decode at a fraction of the size where JPEG allows it: far less memory and time.
        img.draft("RGB", (biggest * 2, biggest * 2))
    try:
        img.load()
    except Exception as exc:
        raise ImageRefused(f"cannot decode: {type(exc).__name__}") from None
    upright = ImageOps.exif_transpose(img) or img
    alpha = upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        upright.mode == "P" and "transparency" in upright.info)
    pixels = upright.convert("RGBA" if alpha else "RGB")
    return Rendered("webp", tuple(_variant(pixels, kind, box) for box in BOXES[kind]))


def _variant(img: Any, kind: str, box: int) -> Variant:
    from PIL import Image, ImageOps

    width, height = img.size
    if kind == "avatar":
        # Square, centred, like Mastodon's avatars; never enlarged.
        side = min(box, width, height)
        out = ImageOps.fit(img, (side, side), Image.Resampling.LANCZOS)
    else:
        limit = (box * EMOJI_MAX_RATIO, box) if kind == "emoji" else (box, box)
        out = img.copy()
        out.thumbnail(limit, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buf = io.BytesIO()
    # No metadata is written: a photo's EXIF (its place, its camera) stays behind.
    out.save(buf, "WEBP", quality=85, method=4)
    return Variant(box, out.width, out.height, buf.getvalue())


def _sniff(data: bytes) -> str | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=list(set(ACCEPTED.values()))) as other:
            return str(other.format)
    except Exception:
        return None


# --- the child process and its wire format --------------------------------------------


def decode_command() -> list[str]:
    """The command that runs the decoder child (from `package_root()`, so that it runs
    this very code)."""
    return [sys.executable, "-m", "fedcomments.media.decoder"]


def package_root() -> str:
    """The directory holding the fedcomments package."""
    return str(Path(__file__).resolve().parents[2])


def request_bytes(data: bytes, declared: str, kind: str) -> bytes:
    """What the server writes to the child's stdin."""
    return json.dumps({"type": declared, "kind": kind}).encode() + b"\n" + data


def answer_bytes(result: Rendered | ImageRefused) -> bytes:
    if isinstance(result, ImageRefused):
        return json.dumps({"ok": False, "reason": str(result)}).encode() + b"\n"
    head = {"ok": True, "ext": result.ext, "variants": [
        {"box": v.box, "width": v.width, "height": v.height, "length": len(v.data)}
        for v in result.variants]}
    return json.dumps(head).encode() + b"\n" + b"".join(v.data for v in result.variants)


def parse_answer(raw: bytes) -> Rendered:
    """The child's answer; raises ImageRefused with its reason, ValueError if garbled."""
    head, _, rest = raw.partition(b"\n")
    doc = json.loads(head)
    if not doc.get("ok"):
        raise ImageRefused(str(doc.get("reason") or "refused"))
    variants = []
    offset = 0
    for v in doc["variants"]:
        end = offset + int(v["length"])
        if end > len(rest):
            raise ValueError("truncated answer")
        variants.append(Variant(int(v["box"]), int(v["width"]), int(v["height"]),
                                rest[offset:end]))
        offset = end
    return Rendered(str(doc["ext"]), tuple(variants))


def main() -> int:
    """Child process: one image on stdin, its answer on stdout, within rlimits."""
    import resource
    import warnings

    from PIL import Image, WebPImagePlugin  # noqa: F401 - loaded before the limits apply

    Image.init()
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (CHILD_CPU_SECONDS, CHILD_CPU_SECONDS))
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    raw = sys.stdin.buffer.read(MAX_BYTES + 4096)
    head, _, data = raw.partition(b"\n")
    request = json.loads(head)
    try:
        result: Rendered | ImageRefused = render(data, str(request["type"]),
                                                 str(request["kind"]))
    except ImageRefused as exc:
        result = exc
    except MemoryError:
        result = ImageRefused("too large to decode within the memory limit")
    except Image.DecompressionBombWarning as exc:
        result = ImageRefused(f"too large: {exc}")
    sys.stdout.buffer.write(answer_bytes(result))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
