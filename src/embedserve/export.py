"""`embedserve export`: build a cached, optimised artefact of a model and measure it against
the fp32 reference on the built-in sample, so a precision is offered only with its accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embedserve.backends import OFFERED_PRECISIONS as FORMATS
from embedserve.models import bundled_model_path, load_model_spec
from embedserve.settings import ModelSettings
from embedserve.verify import VerifyReport, compare, engine_vectors, reference_vectors, sample_texts
from embedserve.verify_scores import ScoreReport, render_scores, verify_scores


@dataclass(frozen=True)
class ExportReport:
    """Where the artefact is, how big, and how close to fp32."""

    path: Path
    size_mb: float
    accuracy: VerifyReport | ScoreReport


def export(
    model_path: Path | None,
    *,
    fmt: str,
    precision: str,
    cache_dir: Path,
    trust_remote_code: bool = False,
) -> ExportReport:
    """Export (or find in the cache) and measure."""
    if precision not in FORMATS.get(fmt, ()):
        offered = ", ".join(f"{f}: {'/'.join(p)}" for f, p in FORMATS.items())
        raise ValueError(f"{fmt} {precision} is not offered; measured and offered: {offered}")
    spec = load_model_spec(model_path or bundled_model_path(), trust_remote_code=trust_remote_code)
    if fmt == "onnx":
        from embedserve.backends.onnx_export import ensure_onnx, ensure_onnx_fp16

        path = (
            ensure_onnx_fp16(spec, cache_dir)
            if precision == "fp16"
            else ensure_onnx(spec, cache_dir)
        )
    else:
        from embedserve.backends.openvino_runtime import ensure_openvino

        path = ensure_openvino(spec, cache_dir, precision)
    size = sum(f.stat().st_size for f in path.parent.iterdir() if f.is_file()) / 2**20
    texts = sample_texts()
    settings = ModelSettings.model_validate(
        {
            "path": model_path,
            "backend": fmt,
            "precision": precision,
            "trust_remote_code": trust_remote_code,
        }
    )
    if spec.score_head is not None:  # a reranker: its scores against CrossEncoder.predict
        scores = verify_scores(spec, settings, cache_dir=cache_dir)
        return ExportReport(path, round(size, 1), scores)
    candidate = engine_vectors(settings, texts, cache_dir)
    reference, source = reference_vectors(spec, texts)
    return ExportReport(path, round(size, 1), compare(candidate, reference, texts, source))


def render(report: ExportReport, fmt: str, precision: str) -> str:
    """A short summary for the terminal."""
    accuracy = report.accuracy
    if isinstance(accuracy, ScoreReport):
        head = f"artefact: {report.path} ({report.size_mb} MiB, {fmt} {precision}, a reranker)"
        return head + "\n" + render_scores(accuracy)
    return "\n".join(
        [
            f"artefact: {report.path} ({report.size_mb} MiB, {fmt} {precision})",
            f"against fp32 {accuracy.reference} on {len(accuracy.texts)} sample texts:",
            f"  min cosine {accuracy.min_cosine:.6f}, "
            f"mean cosine {float(accuracy.cosine.mean()):.6f}",
            f"  max abs difference {float(accuracy.max_abs_diff.max()):.2e}",
            f"  retrieval top-1 agreement {accuracy.top1_agreement:.0%}",
        ]
    )
