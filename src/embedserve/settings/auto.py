"""Every "auto" setting resolved in one place: 0 or "auto" in a setting means a value chosen
from the device, the model or the other settings, here."""

from __future__ import annotations

from embedserve.settings.model import (
    CHARS_PER_TOKEN_LIMIT,
    CPU_MAX_PADDING,
    CUDA_MAX_PADDING,
    BatchingLimits,
    ModelSettings,
)
from embedserve.settings.server import ServerSettings

# The auto body limit: 8 bytes per token of --max-request-tokens (2.4 MB at the default 300k;
# TEI's default is 2 MB). A token is ~5 bytes of English, 6 as a token id or an escaped CJK
# character. The bound also caps the event-loop time of parsing one body (~50 ms, see docs).
MIN_PAYLOAD_BYTES = 1 << 20
PAYLOAD_BYTES_PER_TOKEN = 8


def backend(settings: ModelSettings) -> str:
    """`auto` means ONNX Runtime on CPU and PyTorch on CUDA."""
    if settings.backend != "auto":
        return settings.backend
    return "torch" if settings.device == "cuda" else "onnx"


def deterministic(settings: ModelSettings) -> bool:
    """On by default on CPU, where it costs nothing measurable (docs/benchmarks.md); off on
    CUDA, where it is not measured yet."""
    if settings.deterministic is not None:
        return settings.deterministic
    return settings.device == "cpu"


def max_padding(limits: BatchingLimits, device: str) -> float:
    """The padding share of a batch: the setting, else the device's measured best."""
    return limits.max_padding or (CUDA_MAX_PADDING if device == "cuda" else CPU_MAX_PADDING)


def max_input_chars(limits: BatchingLimits, max_length: int) -> int:
    """Characters per input above which it is refused (or cut) before tokenizing."""
    return limits.max_input_chars or CHARS_PER_TOKEN_LIMIT * max_length


def payload_limit(settings: ServerSettings) -> int:
    """The body size limit in bytes: the setting, or enough for the largest request allowed."""
    if settings.max_payload_bytes:
        return settings.max_payload_bytes
    tokens = max(model.limits.max_request_tokens for model in settings.models)
    return max(MIN_PAYLOAD_BYTES, tokens * PAYLOAD_BYTES_PER_TOKEN)
