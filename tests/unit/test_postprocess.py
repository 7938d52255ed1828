"""Post-processing order (truncate -> normalise) and the base64 wire encoding."""

from __future__ import annotations

import base64
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from embedserve.encodings import to_base64
from embedserve.postprocess import finalize, l2_normalize
from embedserve.testing import from_base64

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def matrices(min_dim: int = 1) -> st.SearchStrategy[np.ndarray]:
    return st.tuples(st.integers(1, 5), st.integers(min_dim, 16)).flatmap(
        lambda shape: arrays(np.float32, shape, elements=finite)
    )


def test_l2_normalize_known_values() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], rtol=1e-6)
    assert out.dtype == np.float32


def test_truncation_happens_before_normalisation() -> None:
    vectors = np.array([[3.0, 4.0, 12.0]], dtype=np.float32)
    out = finalize(vectors, dimensions=2, normalize=True)
    # Normalising first and then truncating would give [3/13, 4/13], not a unit vector.
    np.testing.assert_allclose(out, [[0.6, 0.8]], rtol=1e-6)


def test_truncation_normalises_even_when_the_model_does_not() -> None:
    vectors = np.array([[3.0, 4.0, 12.0], [0.0, 5.0, 1.0]], dtype=np.float32)
    out = finalize(vectors, dimensions=2, normalize=False)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)


def test_no_truncation_without_normalise_leaves_values_unchanged() -> None:
    vectors = np.array([[3.0, -4.0, 12.5], [1e-3, 7.0, -0.25]], dtype=np.float32)
    for dimensions in (None, 3, 10):
        out = finalize(vectors, dimensions=dimensions, normalize=False)
        np.testing.assert_array_equal(out, vectors)
        assert out.dtype == np.float32


def test_native_dimensions_only_normalises() -> None:
    vectors = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, -2.0]], dtype=np.float32)
    out = finalize(vectors, dimensions=3, normalize=True)
    np.testing.assert_allclose(out, [[0.6, 0.8, 0.0], [0.0, 0.0, -1.0]], rtol=1e-6)
    assert out.shape == (2, 3)


def test_finalize_does_not_modify_its_input() -> None:
    vectors = np.array([[3.0, 4.0, 12.0]], dtype=np.float32)
    before = vectors.copy()
    finalize(vectors, dimensions=2, normalize=True)
    finalize(vectors, dimensions=None, normalize=True)
    np.testing.assert_array_equal(vectors, before)


@settings(max_examples=150, deadline=None)
@given(vectors=matrices(min_dim=2), data=st.data())
def test_truncated_vectors_are_unit_length(vectors: np.ndarray, data: st.DataObject) -> None:
    dim = vectors.shape[1]
    dimensions = data.draw(st.integers(1, dim - 1))
    normalize = data.draw(st.booleans())
    out = finalize(vectors, dimensions=dimensions, normalize=normalize)
    assert out.shape == (vectors.shape[0], dimensions)
    assert out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]
    head = vectors[:, :dimensions].astype(np.float64)
    norms = np.linalg.norm(head, axis=1)
    for row in range(vectors.shape[0]):
        if norms[row] > 1e-3:
            assert abs(float(np.linalg.norm(out[row])) - 1.0) < 1e-5
            # Same direction as the truncated input.
            np.testing.assert_allclose(out[row], head[row] / norms[row], rtol=1e-4, atol=1e-6)
        elif norms[row] == 0:
            np.testing.assert_array_equal(out[row], 0)


@settings(max_examples=100, deadline=None)
@given(vectors=matrices())
def test_finalize_without_truncation_or_normalise_is_identity(vectors: np.ndarray) -> None:
    out = finalize(vectors, dimensions=None, normalize=False)
    np.testing.assert_array_equal(out, vectors)
    out = finalize(vectors, dimensions=vectors.shape[1], normalize=False)
    np.testing.assert_array_equal(out, vectors)


def test_base64_is_little_endian_float32() -> None:
    values = [1.0, -2.5, 0.1, 3.4028234663852886e38, 1e-45, 0.0, -0.0]
    vector = np.array(values, dtype=np.float32)
    encoded = to_base64(vector)
    assert encoded == base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")
    raw = base64.b64decode(encoded)
    assert len(raw) == 4 * len(values)
    assert raw[:4] == struct.pack("<f", 1.0) == b"\x00\x00\x80\x3f"
    decoded = from_base64(encoded)
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, vector)
    assert list(struct.unpack(f"<{len(values)}f", raw)) == vector.tolist()


def test_base64_of_big_endian_or_float64_input_is_still_little_endian_float32() -> None:
    expected = base64.b64encode(struct.pack("<3f", 1.5, -3.0, 0.25)).decode("ascii")
    assert to_base64(np.array([1.5, -3.0, 0.25], dtype=">f4")) == expected
    assert to_base64(np.array([1.5, -3.0, 0.25], dtype=np.float64)) == expected


@settings(max_examples=150, deadline=None)
@given(vector=arrays(np.float32, st.integers(0, 64), elements=st.floats(width=32)))
def test_base64_round_trip_is_bit_exact(vector: np.ndarray) -> None:
    decoded = from_base64(to_base64(vector))
    assert decoded.tobytes() == vector.astype("<f4").tobytes()
    assert decoded.shape == vector.shape
