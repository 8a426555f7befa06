"""specforge against PyTorch on every spec in specs/: training speed, GEMM rate, ONNX inference, step memory.

    pip install -e '.[bench]'                          # the CPU build of torch
    python benchmarks/compare.py                       # every spec in specs/ (about 10 minutes on 2 cores)
    python benchmarks/compare.py --specs mnist lenet   # some of them
    python benchmarks/compare.py --scaling             # adds images/s against batch size and cores
    python benchmarks/compare.py --full                # adds the seed model's full 3-epoch run against PyTorch's
    python benchmarks/compare.py --markdown            # the tables in Markdown, as the README shows them

Each spec's model is built from the spec with fresh weights, and its PyTorch lowering (the PyTorch backend's,
specforge.training.torch, tested to compute the same forward, gradients and training step in
tests/test_torch_lowering.py) starts
from the same weights, with the same loss, optimizer (Keras' update rules), batch size (the spec's
fit.batch_size) and thread count (the cores this process may use), in float32 on random batches of the
model's input shape. Training is measured in alternating rounds (specforge, then PyTorch, ...), each
figure the best of its rounds, so that both see the same machine; ratios are taken within one run.
Inference runs specforge's ONNX export and the PyTorch model's torch.onnx export under onnxruntime. The memory of
a training step is the peak resident memory a few steps add to a process that runs one framework only
(benchmarks/side_by_side.py: step_memory_mib).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.matmul import gemm_gflops
from benchmarks.rounds import QUIET_LIMIT, RETRIES, Measured
from benchmarks.side_by_side import PYTORCH, SPECFORGE, SideBySide, inference_rates, training_rates
from benchmarks.tables import Table
from specforge.api import load_spec
from specforge.ops.machine import constants, processor
from specforge.predict.session import default_threads

SPECS = ROOT / "specs"
SEED = "mnist"
INFERENCE_BATCHES = (1, 32, 256)
SCALING_BATCHES = (8, 32, 128)
SCALING_CORES = (1, 2)
#: specforge / PyTorch training images per second: at least this on the seed spec, at least OTHERS_TARGET elsewhere
SEED_TARGET, OTHERS_TARGET = 1.0, 0.8
ONNX_TARGET = 0.95
FULL_RUN_TARGET, FULL_RUN_MEMORY_MB = 1.2, 1024
DISTURBED = (
    f"*: other processes took more than {QUIET_LIMIT} cores' worth of this process's cores during the round "
    f"that gave the figure, even after {RETRIES} retries (benchmarks/rounds.py): not to be trusted"
)


def spec_paths(names: list[str] | None) -> list[Path]:
    """The specs to compare: every spec in specs/ by default; a name means specs/NAME.yaml."""
    if not names:
        return sorted(SPECS.glob("*.yaml"))
    return [Path(name) if name.endswith((".yaml", ".yml", ".json")) else SPECS / f"{name}.yaml" for name in names]


def training_target(name: str) -> float:
    return SEED_TARGET if name == SEED else OTHERS_TARGET


def met(ok: bool) -> str:
    return "yes" if ok else "NO"


def ratio_of(ours: Measured, theirs: Measured) -> Measured:
    """``ours / theirs``, disturbed when either was."""
    return Measured(ours.value / theirs.value, max(ours.neighbours, theirs.neighbours))


def probe(*arguments: str) -> dict:
    """The JSON that benchmarks/step_probe.py prints, run in a process of its own."""
    output = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "step_probe.py"), *arguments],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def step_memory(path: Path, batch_size: int) -> dict[str, float]:
    """MiB one training step adds at its peak, per framework (each in a fresh process)."""
    return {
        framework: probe("memory", str(path), "--framework", framework, "--batch-size", str(batch_size))["mib"]
        for framework in (SPECFORGE, PYTORCH)
    }


# -- the table of every spec ------------------------------------------------------------------------------
def compare_specs(paths: list[Path], args: argparse.Namespace, gemm: float) -> list[str]:
    """Print one row per spec; return the targets that are not met."""
    table = Table(
        [
            "spec",
            "batch",
            "specforge img/s",
            "PyTorch img/s",
            "ratio",
            "target",
            "met",
            "GEMM specforge",
            "GEMM PyTorch",
            *[f"ONNX b{batch}" for batch in INFERENCE_BATCHES],
            "met",
            "MiB specforge",
            "MiB PyTorch",
        ]
    )
    missed, largest_difference, several = [], 0.0, []
    for path in paths:
        model = load_spec(path).config["model"]
        if len(model.get("inputs", ())) > 1 or len(model.get("outputs", ())) > 1:
            several.append(Path(path).stem)
            continue
        pair = SideBySide(path)
        batch_size = pair.batch_size
        # inference first, while both exports hold the same weights (training moves each side's own)
        inference, difference = inference_rates(pair, INFERENCE_BATCHES, args.seconds / 2, args.rounds)
        rates = training_rates(pair, batch_size, args.warmup, args.seconds, args.rounds)
        largest_difference = max(largest_difference, difference)
        memory = step_memory(path, batch_size)
        ratio = ratio_of(rates[SPECFORGE], rates[PYTORCH])
        target = training_target(pair.name)
        onnx = [ratio_of(inference[batch]["onnx"], inference[batch]["torch_onnx"]) for batch in INFERENCE_BATCHES]
        if ratio.value < target:
            missed.append(f"{pair.name} training {ratio.shown('.3f')}x < {target:.2f}x")
        missed.extend(
            f"{pair.name} ONNX at batch {batch} {value.shown('.3f')}x < {ONNX_TARGET:.2f}x"
            for batch, value in zip(INFERENCE_BATCHES, onnx)
            if value.value < ONNX_TARGET
        )
        fraction = {name: rate.value * pair.training_flops / 1e9 / gemm for name, rate in rates.items()}
        table.add(
            [
                pair.name,
                batch_size,
                rates[SPECFORGE].shown(),
                rates[PYTORCH].shown(),
                ratio.shown(".2f") + "x",
                f"{target:.2f}x",
                met(ratio.value >= target),
                f"{fraction[SPECFORGE]:.0%}",
                f"{fraction[PYTORCH]:.0%}",
                *[value.shown(".2f") + "x" for value in onnx],
                met(min(value.value for value in onnx) >= ONNX_TARGET),
                f"{memory[SPECFORGE]:,.0f}",
                f"{memory[PYTORCH]:,.0f}",
            ]
        )
        print(f"measured {pair.name}", file=sys.stderr)
    print(
        f"\ntraining: images per second at the spec's batch size, best of {args.rounds} alternating rounds of at "
        f"least {args.seconds:g} s; ratio: specforge / PyTorch eager (target: at least {SEED_TARGET:.1f}x on "
        f"{SEED}, {OTHERS_TARGET:.1f}x on the others); GEMM: training FLOPs (3 x forward) per second as a share "
        f"of the GEMM rate above"
    )
    print(
        f"ONNX bN: images per second of specforge's ONNX export / the torch.onnx export under onnxruntime at "
        f"batch N (target: at least {ONNX_TARGET:.2f}x at each); largest output difference from specforge's "
        f"forward: {largest_difference:.1e}"
    )
    print(
        "MiB: peak resident memory a training step adds (VmHWM during 3 steps minus VmRSS before them), each "
        "framework in a process of its own"
    )
    print(DISTURBED)
    if several:
        print(
            "left out, as models of several inputs or outputs, which the side-by-side batches do not feed: "
            + ", ".join(several)
        )
    print()
    table.print(args.markdown)
    return missed


# -- scaling ----------------------------------------------------------------------------------------------
def compare_scaling(paths: list[Path], args: argparse.Namespace) -> None:
    """Training images per second against batch size and cores, memory against batch size."""
    available = len(os.sched_getaffinity(0))
    cores = [count for count in SCALING_CORES if count <= available]
    table = Table(
        [
            "spec",
            "batch",
            *[
                f"{label} {count} core{'s' * (count > 1)}"
                for count in cores
                for label in ("specforge", "PyTorch", "ratio")
            ],
            "MiB specforge",
            "MiB PyTorch",
        ]
    )
    batches = [str(batch) for batch in SCALING_BATCHES]
    for path in paths:
        measured = {
            count: probe(
                "rates",
                str(path),
                "--cores",
                str(count),
                "--batch-sizes",
                *batches,
                "--seconds",
                str(args.seconds),
                "--rounds",
                str(args.rounds),
                "--warmup",
                str(args.warmup),
            )["rates"]
            for count in cores
        }
        for batch in batches:
            memory = step_memory(path, int(batch))
            cells = []
            for count in cores:
                ours, theirs = (Measured(*measured[count][batch][framework]) for framework in (SPECFORGE, PYTORCH))
                cells += [ours.shown(), theirs.shown(), ratio_of(ours, theirs).shown(".2f") + "x"]
            table.add([path.stem, batch, *cells, f"{memory[SPECFORGE]:,.0f}", f"{memory[PYTORCH]:,.0f}"])
        print(f"measured the scaling of {path.stem}", file=sys.stderr)
    print(
        f"\nscaling: training images per second against batch size and cores (each cores setting in a process "
        f"pinned to that many cores, PyTorch's threads set to match), best of {args.rounds} alternating rounds; "
        f"MiB: peak resident memory a training step adds, at that batch size"
    )
    print(DISTURBED + "\n")
    table.print(args.markdown)


# -- the seed model's full run ----------------------------------------------------------------------------
def timed_run(command: list[str]) -> tuple[float, float, str]:
    """``(wall seconds, peak resident MB, last epoch's line)`` of ``command`` run in a subprocess from the
    repository root.

    The peak is the child's own VmHWM, read from /proc while it runs: ``ru_maxrss`` of children would
    count this process's memory, which a child shares until it execs.
    """
    with tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, stdout=output)
        peak_kb = 0
        while child.poll() is None:
            try:
                status = Path(f"/proc/{child.pid}/status").read_text()
                peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
            except (OSError, IndexError):
                pass
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, command)
        output.seek(0)
        epochs = [line for line in output.read().splitlines() if line.startswith(("Epoch", "epoch"))]
        return seconds, peak_kb / 1024, epochs[-1] if epochs else ""


def compare_full_runs(epochs: int = 3) -> None:
    """``specforge train specs/mnist.yaml`` against benchmarks/torch_fit.py, process start to exit."""
    spec = f"specs/{SEED}.yaml"
    with tempfile.TemporaryDirectory() as scratch:
        ours, ours_peak, ours_last = timed_run(
            [
                sys.executable,
                "-m",
                "specforge",
                "train",
                spec,
                "--set",
                f"fit.epochs={epochs}",
                "--out",
                str(Path(scratch) / "run"),
                "--quiet",
            ]
        )
    theirs, theirs_peak, theirs_last = timed_run(
        [sys.executable, str(ROOT / "benchmarks" / "torch_fit.py"), spec, "--epochs", str(epochs)]
    )
    print(
        f"\nfull {epochs}-epoch run of {spec}, validation included, process start to exit: specforge {ours:.0f} s "
        f"({ours_peak:,.0f} MB peak, target < {FULL_RUN_MEMORY_MB:,} MB), PyTorch {theirs:.0f} s "
        f"({theirs_peak:,.0f} MB), ratio {ours / theirs:.2f} (target <= {FULL_RUN_TARGET:.1f})"
    )
    print(f"  specforge: {ours_last}\n  PyTorch:   {theirs_last}")


# -- report -----------------------------------------------------------------------------------------------
def load() -> str:
    """The system's load average: other processes on the cores slow PyTorch's spinning OpenMP threads most."""
    return "load average {:.1f} {:.1f} {:.1f} (1, 5, 15 minutes)".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--specs",
        nargs="+",
        metavar="SPEC",
        help="spec names in specs/ (mnist) or paths; default: every spec in specs/",
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds of each round (inference: half)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps before each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also images/s against batch size (8, 32, 128) and cores (1, 2), memory against batch size",
    )
    parser.add_argument(
        "--no-table",
        dest="table",
        action="store_false",
        help="leave out the table of every spec (with --scaling or --full)",
    )
    parser.add_argument("--full", action="store_true", help="also time full 3-epoch runs of the seed spec in both")
    parser.add_argument("--markdown", action="store_true", help="print the tables in Markdown")
    args = parser.parse_args()

    import numpy as np
    import onnxruntime

    # specforge's machine constants, measured (when not kept yet) before PyTorch's threads exist: once a step has
    # run, they spin on the cores between its calls, and the cores' share a split gets would be measured as none
    constants()
    import torch

    threads = default_threads()
    torch.set_num_threads(threads)
    paths = spec_paths(args.specs)
    print(
        f"machine: {processor()}, {threads} cores; numpy {np.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}; {load()}"
    )
    gemm = gemm_gflops()
    print(f"float32 GEMM 2048 x 2048: {gemm:.1f} GFLOP/s (benchmarks/matmul.py)")
    if args.table:
        missed = compare_specs(paths, args, gemm)
        print(
            "\ntargets: "
            + (
                "all met"
                if not missed
                else "not met: "
                + "; ".join(missed)
                + ". Where a step's time goes, per layer and phase: python benchmarks/profile_step.py "
                "specs/SPEC.yaml --batch-size BATCH"
            )
        )
    if args.scaling:
        compare_scaling(paths, args)
    if args.full:
        compare_full_runs()
    print(f"\nat the end: {load()}")


if __name__ == "__main__":
    main()
