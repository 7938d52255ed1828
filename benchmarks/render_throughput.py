"""The throughput half of the report: tables of rows (a)-(d) and their targets."""

from __future__ import annotations

from typing import Any

from embedserve.bench.report import Report, markdown_table


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


Target = tuple[str, str, str]


FAILURES = ("timeout", "error", "reset", "refused", "bad_response")


def failures(statuses: dict[str, int]) -> int:
    """5xx answers, timeouts and connection failures: what no row may show."""
    return sum(n for status, n in statuses.items() if status in FAILURES or status[0] == "5")


def counts(statuses: dict[str, int]) -> str:
    """`200: 12, 429: 3`, or `none`."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "none"


def success_rate(report: Report) -> str:
    """200s / sent, in percent."""
    return f"{100 * report.ok / report.requests:.1f}%" if report.requests else "n/a"


def no_retry_table(reports: list[Report]) -> str:
    """One row per no-retry run: success rate and the non-200 statuses first."""
    lines = [
        "| run | sent | success | non-200 | req/s | tokens/s | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        ms = r.latency_ms
        lines.append(
            f"| {r.label} | {r.requests} | {success_rate(r)} | {counts(r.errors)} "
            f"| {r.requests_per_s:.1f} | {r.tokens_per_s:.0f} | {ms['p50']:.0f} | {ms['p99']:.0f} "
            f"| {ms['max']:.0f} |"
        )
    return "\n".join(lines)


def render_throughput(result: dict[str, Any]) -> list[str]:
    """(a)-(d): in-process and over-HTTP throughput, and the soak."""
    st, raw, ours, inf = result["st"], result["raw"], result["embedserve"], result.get("infinity")
    lines = [
        "",
        "In-process (median of {} runs over the mixed set):".format(result["repeats"]),
        "",
        "| run | tokens/s | inputs/s | one short text, ms |",
        "|---|---|---|---|",
        f"| (a) sentence-transformers encode(batch_size=32) | {st['tokens_per_s']:.0f} "
        f"| {st['inputs_per_s']:.1f} | {st['single_short_ms']:.2f} |",
        f"| (b) embedserve ONNX backend + batching, no HTTP | {raw['tokens_per_s']:.0f} "
        f"| {raw['inputs_per_s']:.1f} | {raw['single_short_ms']:.2f} |",
        "",
        "Over HTTP, same load generator on the same 2 cores (tokens counted by the model's "
        "tokenizer on the client side):",
        "",
        markdown_table(list(ours["rows"].values()) + (list(inf["rows"].values()) if inf else [])),
    ]
    if "soak" in result:
        rss = result["soak"].rss_mb
        lines += [
            "",
            markdown_table([result["soak"]]),
            f"RSS MiB after warm-up {rss[0]}, at the end {rss[-1]}, max {max(rss)} "
            f"({(rss[-1] / rss[0] - 1) * 100:+.1f}%).",
        ]
    return lines


def throughput_targets(result: dict[str, Any]) -> list[Target]:
    """Summary rows of (a)-(d)."""
    st, raw, ours, inf = result["st"], result["raw"], result["embedserve"], result.get("infinity")
    best = max(r.tokens_per_s for k, r in ours["rows"].items() if k.startswith("mixed"))
    targets = [
        ("HTTP saturation / raw backend (b)", ratio(best, raw["tokens_per_s"]), ">= 0.90x"),
        ("HTTP saturation / sentence-transformers (a)", ratio(best, st["tokens_per_s"]), ">= 1.2x"),
        (
            "short c=8 / short c=1 requests/s",
            ratio(
                ours["rows"]["short c=8"].requests_per_s, ours["rows"]["short c=1"].requests_per_s
            ),
            ">= 2x",
        ),
        (
            "single short p50 over HTTP - (b) single call",
            f"{ours['rows']['short c=1'].latency_ms['p50'] - raw['single_short_ms']:+.2f} ms",
            "<= +2 ms",
        ),
        ("embedserve min cosine to sentence-transformers", f"{ours['min_cosine_to_st']:.6f}", ""),
    ]
    if inf:
        for key, row in ours["rows"].items():
            other = inf["rows"][key]
            targets.append(
                (
                    f"embedserve / Infinity, {key} req/s",
                    ratio(row.requests_per_s, other.requests_per_s),
                    "> 1x",
                )
            )
        targets.append(
            ("Infinity min cosine to sentence-transformers", f"{inf['min_cosine_to_st']:.6f}", "")
        )
    elif "infinity_error" in result:
        targets.append(("Infinity", "not run: " + result["infinity_error"], ""))
    return targets
