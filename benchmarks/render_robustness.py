"""The robustness half of the report: tables of rows (e) and their targets."""

from __future__ import annotations

from typing import Any

from render_throughput import Target, counts, failures, no_retry_table, success_rate
from rows import LATENCY_BOUND_S, OVERLOAD_CLIENT_TIMEOUT_S

from embedserve.bench.report import Report, markdown_table


def render_no_retry(rob: dict[str, Any]) -> list[str]:
    """The OVMS-shape and 128 x 64 rows, with their note."""
    return [
        "",
        "Clients that never retry (e) (default flags):",
        "",
        no_retry_table([rob["ovms"], rob["indexer"]]),
        "",
        "Each client sends its next request as soon as the last is answered and never retries "
        "or backs off, as OpenVINO Model Server's embeddings benchmark client does, so any 429 "
        "is a failure. Success = 200s / sent; latency and throughput over the 200s. The OVMS "
        "shape posts to /v3/embeddings, as that client does.",
    ]


def bound_held(entry: dict[str, Any]) -> bool:
    """With a latency bound: p99 of the admitted within it, and only 200s and 429s."""
    report: Report = entry["report"]
    within = report.latency_ms["p99"] <= LATENCY_BOUND_S * 1000
    return within and set(report.errors) <= {"429"}


def render_overload(rob: dict[str, Any]) -> list[str]:
    """The two open-loop overload rows, the server-side samples, and their note."""
    entries, seconds = rob["overload"], rob["sizes"]["overload_seconds"]
    rate = 4 * rob["sustainable_req_s"]
    lines = [
        "",
        f"Overload (e): open loop (Poisson arrivals) at 4x the sustainable rate, {rate:.0f}/s "
        f"({rob['rate_from']}: {rob['sustainable_req_s']:.1f}), for {seconds} s; client "
        f"timeout {OVERLOAD_CLIENT_TIMEOUT_S} s. Each row on a fresh server:",
        "",
        markdown_table([e["report"] for e in entries]),
        "",
        "| run | sent | answered | RSS MiB before | RSS MiB peak | queued tokens peak |",
        "|---|---|---|---|---|---|",
    ]
    for e in entries:
        report = e["report"]
        answered = counts({"200": report.ok, **report.errors})
        lines.append(
            f"| {e['label']} | {report.requests} | {answered} | {e['rss_before_mb']} "
            f"| {e['rss_peak_mb']} | {e['queued_tokens_peak']:.0f} |"
        )
    bounded = entries[-1]
    held = "held" if bound_held(bounded) else "NOT held"
    lines += [
        "",
        "Latency over the admitted (200) requests. At defaults there is no latency bound: "
        "requests wait in the queue up to its 4,194,304 tokens and the 512 concurrent requests "
        "(beyond those: 429), so latency grows with the backlog; RSS (from /proc) and "
        "`embedserve_queued_tokens` (from /metrics) are sampled every 100 ms during the run. "
        f"With --max-queue-seconds {LATENCY_BOUND_S} a request whose estimated wait passes "
        f"{LATENCY_BOUND_S} s is refused with 429; the bound {held} (p99 of the admitted "
        f"{bounded['report'].latency_ms['p99']:.0f} ms, answers: "
        f"{counts({'200': bounded['report'].ok, **bounded['report'].errors})}).",
    ]
    return lines


def render_flood(flood: dict[str, Any]) -> list[str]:
    """The worst-case bodies' statuses and /health's latency beside them, with their note."""
    health = flood["health"]
    lines = [
        "",
        f"/health during a flood (e): {flood['clients']} clients sending the bodies below in "
        f"turn for {flood['seconds']:.1f} s (default flags):",
        "",
        "| body | bytes | answers |",
        "|---|---|---|",
    ]
    for name, statuses in flood["statuses"].items():
        lines.append(f"| {name} | {flood['body_bytes'][name]:,} | {counts(statuses)} |")
    lines += [
        "",
        "| /health probes | p50 ms | p99 ms | max ms | over 100 ms | answers |",
        "|---|---|---|---|---|---|",
        f"| {health['probes']} | {health['p50']:.1f} | {health['p99']:.1f} | {health['max']:.1f} "
        f"| {health['over_100ms']} | {counts(health['statuses'])} |",
        "",
        "A separate client GETs /health every 20 ms on its own connection while the flood runs. "
        "The bodies cost the client nothing to send and each is at or under the payload limit: "
        "they must be answered 4xx (or 200), never 5xx, and must not stall the event loop that "
        "answers the probes (target: /health p99 <= 100 ms).",
    ]
    return lines


def seconds_or_never(value: float | None) -> str:
    """`+1.234 s`, or `never`."""
    return "never" if value is None else f"+{value:.3f} s"


def render_drain(drain: dict[str, Any]) -> list[str]:
    """The SIGTERM timeline and what the clients saw, with its note."""
    rows = [
        ("SIGTERM -> first /health 503", seconds_or_never(drain["first_health_503_s"]), "<= 0.2 s"),
        (
            "last request answered 200 was sent at",
            seconds_or_never(drain["last_200_sent_after_s"]),
            "~ drain delay (2 s)",
        ),
        (
            "listener refused connections from",
            seconds_or_never(drain["listener_closed_s"]),
            "~ drain delay (2 s)",
        ),
        ("process exited at", seconds_or_never(drain["exit_after_s"]), "< 2 + 10 s"),
        ("exit code", str(drain["exit_code"]), "0"),
        ("requests answered before SIGTERM", str(drain["requests_before"]), ""),
        ("requests in flight at SIGTERM", counts(drain["in_flight_at_sigterm"]), "all 200"),
        ("requests sent after SIGTERM", counts(drain["sent_after_sigterm"]), "200, then refused"),
        ("dropped (reset, timeout, error)", str(drain["dropped"]), "0"),
    ]
    return [
        "",
        f"Drain on SIGTERM (e): `embedserve serve {drain['flags']}`, 16 closed-loop clients of "
        "one mixed text each and a /health poller every 50 ms; times from the SIGTERM:",
        "",
        "| measure | value | expected |",
        "|---|---|---|",
        *(f"| {name} | {value} | {target} |" for name, value, target in rows),
        "",
        "Readiness must turn 503 at once while requests are still served for the drain delay "
        "(so a load balancer moves traffic away before anything is refused); then the listener "
        "closes (new connections are refused), in-flight work finishes, and the process exits "
        "0. A request dropped mid-way (connection reset, no answer) would be lost work.",
    ]


def render_robustness(rob: dict[str, Any]) -> list[str]:
    """Every (e) table with its note."""
    return [
        *render_no_retry(rob),
        *render_overload(rob),
        *render_flood(rob["flood"]),
        *render_drain(rob["drain"]),
    ]


def robustness_targets(rob: dict[str, Any]) -> list[Target]:
    """Summary rows of (e)."""
    ovms, indexer, flood, drain = rob["ovms"], rob["indexer"], rob["flood"], rob["drain"]
    defaults, bounded = rob["overload"][0]["report"], rob["overload"][-1]["report"]
    flood_failures = sum(failures(s) for s in flood["statuses"].values())
    bound = f"--max-queue-seconds {LATENCY_BOUND_S}"
    return [
        ("OVMS shape (100 x 16 mixed, no retries): success rate", success_rate(ovms), "100%"),
        (
            "indexer 128 x 64 short (no retries): success rate",
            f"{success_rate(indexer)} (p99 {indexer.latency_ms['p99']:.0f} ms)",
            "100%",
        ),
        (
            "overload at defaults: 5xx + timeouts + connection errors",
            str(failures(defaults.errors)),
            "0",
        ),
        ("overload at defaults: p99 of admitted", f"{defaults.latency_ms['p99']:.0f} ms", ""),
        (
            f"overload with {bound}: p99 of admitted",
            f"{bounded.latency_ms['p99']:.0f} ms",
            f"<= {LATENCY_BOUND_S * 1000} ms",
        ),
        (
            f"overload with {bound}: 5xx + timeouts + connection errors",
            str(failures(bounded.errors)),
            "0",
        ),
        ("/health p99 during the flood", f"{flood['health']['p99']:.1f} ms", "<= 100 ms"),
        ("flood: 5xx + timeouts + connection errors", str(flood_failures), "0"),
        ("drain: exit code", str(drain["exit_code"]), "0"),
        (
            "drain: SIGTERM -> first /health 503",
            seconds_or_never(drain["first_health_503_s"]),
            "<= 0.2 s",
        ),
        ("drain: dropped connections", str(drain["dropped"]), "0"),
    ]
