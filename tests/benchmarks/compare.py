"""A/B of the hot-path micro-benchmarks: this tree against a git ref, in one run, on one machine.

    python -m tests.benchmarks.compare REF [--rounds N] [--cases NAME ...] [--tolerance 0.03]
    python -m tests.benchmarks.compare --baseline      # record this tree's figures in benchmarks/baselines/

REF is checked out in a `git worktree` (under .run/bench-compare/, removed afterwards) that shares this tree's .venv:
each side runs in a worker process of its own whose PYTHONPATH puts that side's libs/*/src and services/*/src first,
so the same measuring code (this module) times each side's library code. The parent alternates the sides every round
(A B, B A, A B, ...), so drift of a shared machine falls on both. A round of a case is `ops` calls timed in batches;
its figure is the median batch's time per call. The ratio per case is median(this tree) / median(REF) over the
rounds, with a 95% bootstrap confidence interval (rounds resampled with replacement, 2,000 times). A case regresses
when the interval's lower bound is above 1 + tolerance: slower beyond the noise this run measured. The table goes to
benchmarks/results/compare.{md,json} and to stdout; the exit status is 1 on a regression.

Cases (CASES): risk_check (RiskEngine.check in process), marketdata_normalise (validate + protobuf + serialise),
env_step (SingleAssetEnv.step), inference (the bundled policy through OnnxPolicy.predict), grpc_unary (a unary call
through the platform's server and channel; the mTLS trees start a dev stack for their certificates) and, with
--kafka, kafka_roundtrip (publish acked, then consumed, on a dev stack of the worker's own).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
BASELINES = REPO / "benchmarks" / "baselines"
WORKTREES = REPO / ".run" / "bench-compare"
FAST_CASES = ["risk_check", "marketdata_normalise", "env_step", "inference"]
BATCHES = 15
BOOTSTRAP = 2_000


# -- the cases (run inside a worker: they import the side's library code) -------------------------------------------
def risk_check() -> Callable[[], None]:
    from decimal import Decimal

    from risk_service.config import RiskConfig
    from risk_service.engine import RiskEngine
    from trading.common.v1 import common_pb2
    from trading.risk.v1 import risk_pb2
    from trading_platform.clock import LiveClock
    from trading_platform.decimals import to_proto

    engine = RiskEngine(RiskConfig(max_orders_per_second=10**9, max_orders_per_day=10**9), LiveClock())
    engine.on_price("AAPL", Decimal("100"))
    counter = iter(range(10**12))

    def call() -> None:
        engine.check(
            risk_pb2.CheckOrderRequest(
                client_order_id=f"co-{next(counter)}",
                symbol="AAPL",
                side=common_pb2.ORDER_SIDE_BUY,
                quantity=to_proto("10"),
                reference_price=to_proto("100"),
            )
        )

    return call


def marketdata_normalise() -> Callable[[], None]:
    from marketdata_service.engine import BarValidator
    from trading.marketdata.v1 import marketdata_pb2
    from trading_platform.envelope import new_envelope

    validator = BarValidator()
    counter = iter(range(1, 10**12))

    def call() -> None:
        i = next(counter)
        close = 100 + (i % 7) * 0.01
        bar = marketdata_pb2.Bar(
            envelope=new_envelope("market-data", ts_event=i * 60_000_000_000),
            symbol=f"S{i % 50:03d}",
            interval_seconds=60,
            open=close,
            high=close + 0.02,
            low=close - 0.02,
            close=close,
            volume=1000.0,
        )
        if validator.validate(bar) is None:
            bar.SerializeToString()

    return call


def env_step() -> Callable[[], None]:
    from trading_agent.envs import SingleAssetEnv
    from trading_datasets import close_panel

    _, closes = close_panel(["AAPL", "JNJ", "KO", "XOM", "JPM"], start="2000-01-01", end="2015-12-31")
    env = SingleAssetEnv(closes, episode_length=252)
    env.reset(seed=0)
    action = np.full(env.action_space.shape, 0.5, dtype=np.float32)

    def call() -> None:
        if env.step(action)[3]:
            env.reset()

    return call


def inference() -> Callable[[], None]:
    from signal_service import BUNDLED_REGISTRY
    from trading_features import FEATURE_NAMES
    from trading_policy.onnx_policy import OnnxPolicy
    from trading_policy.registry import ModelRegistry

    policy = OnnxPolicy(ModelRegistry(BUNDLED_REGISTRY).get("trend-ppo"), max_weight=0.2)
    features = np.random.default_rng(0).normal(0, 0.01, size=len(FEATURE_NAMES))

    def call() -> None:
        policy.predict(features, 0.1)

    return call


class _Loop:
    """One event loop for a worker's async cases, kept across rounds (servers stay up between rounds)."""

    loop = asyncio.new_event_loop()
    stack: contextlib.ExitStack = contextlib.ExitStack()


def grpc_unary() -> Callable[[], None]:
    import structlog
    from trading.risk.v1 import risk_pb2, risk_pb2_grpc
    from trading_platform import rpc

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    class State(risk_pb2_grpc.RiskServiceServicer):
        async def GetTradingState(self, request: Any, context: Any) -> Any:
            return risk_pb2.TradingStateResponse(state=risk_pb2.TRADING_STATE_ACTIVE)

    servicer = rpc.Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, State(), "trading.risk.v1.RiskService")
    if hasattr(rpc, "insecure_channel"):  # trees before mTLS
        open_channel: Callable[[str], Any] = rpc.insecure_channel
    else:  # mTLS: certificates from a dev stack's PKI, as the services get theirs
        from trading_platform.testing.identities import dev_identities

        _Loop.stack.enter_context(dev_identities())
        open_channel = rpc.channel

    async def start() -> Any:
        server = rpc.RpcServer([servicer], log_calls=False)
        await server.start()
        await server.set_serving(True)
        channel = open_channel(server.address)
        _Loop.stack.callback(lambda: _Loop.loop.run_until_complete(server.stop(0)))
        return risk_pb2_grpc.RiskServiceStub(channel)

    stub = _Loop.loop.run_until_complete(start())
    request = risk_pb2.GetTradingStateRequest()

    def call() -> None:
        _Loop.loop.run_until_complete(stub.GetTradingState(request))

    return call


def kafka_roundtrip() -> Callable[[], None]:
    from trading.marketdata.v1 import marketdata_pb2
    from trading_platform.devstack import DevStack, StackPorts, free_port
    from trading_platform.envelope import new_envelope
    from trading_platform.messaging import ConsumedMessage, Consumer, Publisher, ensure_topics

    folder = _Loop.stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-compare-kafka-"))
    stack = DevStack(Path(folder), StackPorts(free_port(), free_port(), free_port()))
    _Loop.stack.callback(stack.down)
    connection = stack.up().kafka_admin()
    namespace = f"bench-compare-{os.getpid()}."
    received = asyncio.Event()

    async def handler(message: ConsumedMessage) -> None:
        received.set()

    async def start() -> Publisher:
        await ensure_topics(connection, ["marketdata.bars.v1"], namespace=namespace)
        consumer = Consumer(connection, "bench", ["marketdata.bars.v1"], handler, namespace=namespace)
        await consumer.start()
        _Loop.loop.create_task(consumer.run())
        publisher = Publisher(connection, "bench", namespace=namespace)
        await publisher.__aenter__()
        return publisher

    publisher = _Loop.loop.run_until_complete(start())

    async def roundtrip() -> None:
        received.clear()
        await publisher.publish("marketdata.bars.v1", marketdata_pb2.Bar(envelope=new_envelope("bench")), key="K")
        await received.wait()

    for _ in range(50):  # until the group is joined
        _Loop.loop.run_until_complete(asyncio.wait_for(roundtrip(), 30))

    def call() -> None:
        _Loop.loop.run_until_complete(roundtrip())

    return call


# name -> (factory, calls per round)
CASES: dict[str, tuple[Callable[[], Callable[[], None]], int]] = {
    "risk_check": (risk_check, 3_000),
    "marketdata_normalise": (marketdata_normalise, 6_000),
    "env_step": (env_step, 20_000),
    "inference": (inference, 3_000),
    "grpc_unary": (grpc_unary, 600),
    "kafka_roundtrip": (kafka_roundtrip, 150),
}


def measure(call: Callable[[], None], ops: int) -> float:
    """ns per call: the median over BATCHES batches of ops/BATCHES calls (after a warm-up batch)."""
    size = max(1, ops // BATCHES)
    for _ in range(size):
        call()
    clock = time.perf_counter_ns
    batches = []
    for _ in range(BATCHES):
        started = clock()
        for _ in range(size):
            call()
        batches.append((clock() - started) / size)
    return float(np.median(batches))


def worker() -> None:
    """Reads case names on stdin, answers one JSON line each: {"case", "ns"} or {"case", "error"}."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    calls: dict[str, Callable[[], None]] = {}
    try:
        for line in sys.stdin:
            name, scale = line.split()
            factory, ops = CASES[name]
            try:
                if name not in calls:
                    calls[name] = factory()
                answer: dict[str, Any] = {"case": name, "ns": measure(calls[name], int(ops * float(scale)))}
            except Exception as error:  # a case this side's code cannot run is reported, not fatal
                answer = {"case": name, "error": f"{type(error).__name__}: {error}"}
            print(json.dumps(answer), flush=True)
    finally:
        _Loop.stack.close()


# -- the parent: worktree, alternating rounds, statistics, report ---------------------------------------------------
def source_path(root: Path) -> str:
    folders = sorted(str(p) for p in [*root.glob("libs/*/src"), *root.glob("services/*/src")] if p.is_dir())
    return os.pathsep.join(folders)


@dataclass
class Side:
    name: str
    root: Path
    commit: str
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": source_path(self.root), "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.compare", "--worker"],
            cwd=REPO,  # the measuring code is this tree's; the library code comes from PYTHONPATH
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, case: str, scale: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{case} {scale}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            return {"case": case, "error": f"the {self.name} worker exited ({self.process.wait()})"}
        return dict(json.loads(line))

    def stop(self) -> None:
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@contextlib.contextmanager
def worktree(ref: str) -> Iterator[Path]:
    WORKTREES.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="ref-", dir=WORKTREES))
    git("worktree", "add", "--detach", "--force", str(path), ref)
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path))


def ratio_interval(a: list[float], b: list[float], seed: int = 0) -> tuple[float, float, float]:
    """median(b) / median(a) and its 95% bootstrap interval (each side's rounds resampled with replacement)."""
    rng = np.random.default_rng(seed)
    xa, xb = np.asarray(a), np.asarray(b)
    ia = rng.integers(0, len(xa), size=(BOOTSTRAP, len(xa)))
    ib = rng.integers(0, len(xb), size=(BOOTSTRAP, len(xb)))
    ratios = np.median(xb[ib], axis=1) / np.median(xa[ia], axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(np.median(xb) / np.median(xa)), float(low), float(high)


def verdict(low: float, high: float, tolerance: float) -> str:
    if low > 1 + tolerance:
        return "REGRESSION"
    if high < 1 - tolerance:
        return "faster"
    return "same (within noise)"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def run_rounds(sides: list[Side], cases: list[str], rounds: int, scale: float) -> dict[str, dict[str, Any]]:
    samples: dict[str, dict[str, list[float]]] = {c: {s.name: [] for s in sides} for c in cases}
    errors: dict[str, dict[str, str]] = {c: {} for c in cases}
    for side in sides:
        side.start()
    try:
        for index in range(rounds):
            order = sides if index % 2 == 0 else list(reversed(sides))
            for case in cases:
                for side in order:
                    if side.name in errors[case]:
                        continue
                    answer = side.run(case, scale)
                    if "error" in answer:
                        errors[case][side.name] = answer["error"]
                    else:
                        samples[case][side.name].append(answer["ns"])
            print(f"round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        for side in sides:
            side.stop()
    return {c: {"samples": samples[c], "errors": errors[c]} for c in cases}


def summarise(measured: dict[str, dict[str, Any]], ref: str, tolerance: float) -> list[dict[str, Any]]:
    rows = []
    for case, data in measured.items():
        a, b = data["samples"].get("ref", []), data["samples"].get("this", [])
        row: dict[str, Any] = {"case": case, "rounds": min(len(a), len(b))}
        if data["errors"] or not a or not b:
            row |= {"verdict": "not compared", "errors": data["errors"]}
        else:
            ratio, low, high = ratio_interval(a, b)
            row |= {
                "ref_ns": round(float(np.median(a)), 1),
                "this_ns": round(float(np.median(b)), 1),
                "ratio": round(ratio, 4),
                "ci95": [round(low, 4), round(high, 4)],
                "noise": round(float(np.std(a) / np.mean(a)), 4),  # spread of REF's rounds (coefficient of variation)
                "verdict": verdict(low, high, tolerance),
            }
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]], header: dict[str, Any]) -> str:
    lines = [
        f"# bench-compare: this tree ({header['this']}) vs {header['ref']} ({header['ref_commit']})",
        "",
        f"{header['rounds']} alternating rounds per side; ratio = this / ref of the median ns per call; 95% bootstrap "
        f"interval; regression when its lower bound > {1 + header['tolerance']:.2f}. Machine: "
        f"{header['machine']['cpu_model']}, {header['machine']['cores']} cores, Python {header['machine']['python']}, "
        f"load {header['machine']['load_average_1m']}.",
        "",
        "| case | ref ns/call | this ns/call | ratio | 95% CI | ref noise (CV) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "ratio" in r:
            lines.append(
                f"| {r['case']} | {r['ref_ns']:,.0f} | {r['this_ns']:,.0f} | {r['ratio']:.3f} | "
                f"{r['ci95'][0]:.3f}-{r['ci95'][1]:.3f} | {r['noise']:.1%} | {r['verdict']} |"
            )
        else:
            lines.append(f"| {r['case']} | | | | | | not compared: {r['errors']} |")
    return "\n".join(lines) + "\n"


def compare(ref: str, cases: list[str], rounds: int, scale: float, tolerance: float, out: Path) -> int:
    this_commit = git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "-uno") else "")
    ref_commit = git("rev-parse", "--short", ref)
    with worktree(ref) as ref_root:
        sides = [Side("ref", ref_root, ref_commit), Side("this", REPO, this_commit)]
        measured = run_rounds(sides, cases, rounds, scale)
    rows = summarise(measured, ref, tolerance)
    header = {
        "ref": ref,
        "ref_commit": ref_commit,
        "this": this_commit,
        "rounds": rounds,
        "scale": scale,
        "tolerance": tolerance,
        "machine": machine(),
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    text = table(rows, header)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(text)
    (out / "compare.json").write_text(
        json.dumps({**header, "rows": rows, "samples": {c: d["samples"] for c, d in measured.items()}}, indent=2) + "\n"
    )
    print(text)
    print(f"wrote {out / 'compare.md'} and {out / 'compare.json'}")
    regressions = [r["case"] for r in rows if r["verdict"] == "REGRESSION"]
    broken = [r["case"] for r in rows if r["verdict"] == "not compared" and "this" in r.get("errors", {})]
    if regressions:
        print(f"REGRESSION beyond the noise: {', '.join(regressions)}", file=sys.stderr)
    if broken:
        print(f"this tree cannot run: {', '.join(broken)}", file=sys.stderr)
    return 1 if regressions or broken else 0


def baseline(cases: list[str], rounds: int, scale: float) -> Path:
    """This tree's figures, with the machine and commit they came from, in benchmarks/baselines/micro.json."""
    side = Side("this", REPO, git("rev-parse", "--short", "HEAD"))
    measured = run_rounds([side], cases, rounds, scale)
    figures = {}
    for case, data in measured.items():
        values = data["samples"]["this"]
        figures[case] = (
            {"median_ns": round(float(np.median(values)), 1), "rounds_ns": [round(v, 1) for v in values]}
            if values
            else {"error": data["errors"].get("this")}
        )
    BASELINES.mkdir(parents=True, exist_ok=True)
    path = BASELINES / "micro.json"
    document = {
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": side.commit,
        "dirty": bool(git("status", "--porcelain", "-uno")),
        "machine": machine(),
        "rounds": rounds,
        "scale": scale,
        "figures": figures,
        "note": "ns per call, median over rounds of the median batch (tests/benchmarks/compare.py); compare only on "
        "the machine named here: bench-compare measures both sides in one run instead",
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("ref", nargs="?", help="the git ref to compare against (a branch, tag, commit, merge base)")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "12")))
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")), help="x calls")
    parser.add_argument("--tolerance", type=float, default=float(os.environ.get("BENCH_TOLERANCE", "0.03")))
    parser.add_argument("--cases", nargs="+", choices=list(CASES), help="default: all but kafka_roundtrip")
    parser.add_argument("--kafka", action="store_true", help="add kafka_roundtrip (starts a dev stack per side)")
    parser.add_argument("--fast", action="store_true", help=f"only the cases without servers: {FAST_CASES}")
    parser.add_argument("--baseline", action="store_true", help="write benchmarks/baselines/micro.json instead")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    cases = args.cases or (FAST_CASES if args.fast else [c for c in CASES if c != "kafka_roundtrip"])
    if args.kafka and "kafka_roundtrip" not in cases:
        cases = [*cases, "kafka_roundtrip"]
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the interval needs rounds to resample)")
    if args.baseline:
        baseline(cases, args.rounds, args.scale)
        return 0
    if not args.ref:
        parser.error("name the git ref to compare against (make bench-compare REF=<ref>), or --baseline")
    try:
        git("rev-parse", "--verify", "--quiet", args.ref + "^{commit}")
    except subprocess.CalledProcessError:
        parser.error(f"REF {args.ref!r} is not a commit in this repository")
    return compare(args.ref, cases, args.rounds, args.scale, args.tolerance, args.out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
