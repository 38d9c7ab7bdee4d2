"""Bodies as stored: large ones zstd-compressed, every reader gets the original bytes back."""

from __future__ import annotations

import threading

import zstandard

from tcwebhook.errors import StoreUnavailable

# Bodies at least this large are stored zstd-compressed. Writing them is the store's main cost
# for large events (every page goes to the WAL, and again to the database at checkpoint); an
# order with many lines shrinks many times over, and zstd at level 1 takes ~15 us for 50 KB.
COMPRESS_FROM = 16 * 1024
ZSTD = "zstd"
_codecs = threading.local()  # zstandard's (de)compressor objects are not thread-safe


def encode_body(body: bytes) -> tuple[bytes, str | None]:
    """The bytes to store for ``body`` and their encoding (None: stored as they are)."""
    if len(body) < COMPRESS_FROM:
        return body, None
    compressor = getattr(_codecs, "compressor", None)
    if compressor is None:
        compressor = _codecs.compressor = zstandard.ZstdCompressor(level=1)
    packed = compressor.compress(body)
    if len(packed) >= len(body):
        return body, None
    return packed, ZSTD


def decode_body(stored: bytes, encoding: str | None) -> bytes:
    """The original bytes of a body stored by ``encode_body``."""
    if encoding is None:
        return bytes(stored)
    if encoding == ZSTD:
        decompressor = getattr(_codecs, "decompressor", None)
        if decompressor is None:
            decompressor = _codecs.decompressor = zstandard.ZstdDecompressor()
        return decompressor.decompress(stored)
    raise StoreUnavailable(
        f"the event store holds a body encoded as {encoding!r}, unknown to this version; "
        "upgrade tcwebhook"
    )
