"""The domain error tree: what can go wrong, in engine terms (no HTTP status codes here)."""

from __future__ import annotations


class EmbedServeError(Exception):
    """Base of every error the engine reports to a caller on purpose."""

    code: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(EmbedServeError):
    """The request is malformed: wrong types, missing fields, bad values."""

    code = "invalid_request"


class EmptyInput(InvalidRequest):
    """No input at all, or an empty string / empty token list among the inputs."""

    code = "empty_input"


class ContextLengthExceeded(InvalidRequest):
    """An input is longer than the model accepts and truncation was not asked for."""

    code = "context_length_exceeded"


class TooManyInputs(InvalidRequest):
    """More inputs in one request than `max_client_batch_size`."""

    code = "too_many_inputs"


class TooManyTokens(InvalidRequest):
    """More tokens in one request than `max_request_tokens`."""

    code = "max_tokens_per_request"


class InvalidDimensions(InvalidRequest):
    """A `dimensions` value the model cannot produce."""

    code = "invalid_dimensions"


class InvalidTokenId(InvalidRequest):
    """A token id outside the model's vocabulary."""

    code = "invalid_token_id"


class ModelNotFound(EmbedServeError):
    """The requested model id is not served."""

    code = "model_not_found"


class Overloaded(EmbedServeError):
    """Admission control refused the work: the queue is full."""

    code = "server_overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotReady(EmbedServeError):
    """The engine is still loading, or is draining."""

    code = "not_ready"


class RequestTimeout(EmbedServeError):
    """The request was not answered before its deadline (`--request-timeout`)."""

    code = "timeout"


class BackendFailure(EmbedServeError):
    """The forward pass of a batch failed; only that batch's requests see it."""

    code = "internal_error"


class ModelLoadError(EmbedServeError):
    """A model directory is missing, incomplete or unsupported."""

    code = "model_load_error"


def quoted(value: object, limit: int = 80) -> str:
    """`repr(value)` for an error message, clipped: a client's value is echoed, never a
    megabyte of it."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
