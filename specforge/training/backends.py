"""What trains a run, and ``fit``, the entry of ``specforge train``: ``numpy`` (the reference, specforge's
own math), ``torch`` (the graph lowered to PyTorch, specforge.training.torch, on a CPU or a CUDA device)
or ``ray`` (the torch backend data-parallel on Ray Train, specforge.training.torch.ray_train, each
worker a training loop of its own). Each is a step function (specforge.training.steps) that the one
training loop (specforge.training.loop) calls, so a run directory is the same whichever trains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from specforge.base.errors import RunError
from specforge.runs import directory as runs
from specforge.training import loop
from specforge.training.progress import ConsoleProgress, Progress
from specforge.training.steps import NumpySteps, StepsFactory
from specforge.training.torch import require_torch

if TYPE_CHECKING:
    from specforge.options.callbacks import Callback
    from specforge.spec import Spec

#: The names ``fit.backend`` and ``train --backend`` take.
BACKENDS = ("numpy", "torch", "ray")
#: The names ``train --device`` takes.
DEVICES = ("cpu", "cuda", "auto")


def steps_factory(backend: str, device: str = "cpu") -> StepsFactory:
    """The factory of ``backend``'s steps in this process (``ray``'s workers run ``torch`` steps)."""
    if backend == "numpy":
        return NumpySteps
    require_torch()
    from specforge.training.torch.backend import torch_steps_factory

    return torch_steps_factory(device)


#: Ray workers when ``--workers`` is not given: the local Ray's CPUs (specforge.base.raycluster.LOCAL_CPUS).
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class BackendChoice:
    """The backend a run trains with, the device asked for (cpu, cuda, auto) and, on Ray, its workers."""

    name: str
    device: str
    workers: int


def choose_backend(
    spec: Spec | None, resume: str | Path | None, backend: str | None, device: str | None, workers: int | None
) -> BackendChoice:
    """The backend of a new run (``backend``, else the spec's ``fit.backend``) or of a resumed one (the one it
    started with, and its device and workers unless given); RunError for a combination that cannot be."""
    if resume is not None:
        manifest = runs.read_json(runs.resolve_run_path(resume) / runs.MANIFEST)
        recorded = manifest.get("backend", "numpy")
        if backend is not None and backend != recorded:
            raise RunError(
                f"the run was trained with the {recorded} backend and resumes on it; leave out --backend",
                file=f"--backend {backend}",
            )
        name = recorded
        device = device or manifest.get("device_request")
        workers = workers or manifest.get("workers")
    else:
        name = backend or (spec.config["fit"].get("backend", "numpy") if spec is not None else "numpy")
    if name not in BACKENDS:
        raise RunError(f"no backend {name!r}; the backends: {', '.join(BACKENDS)}", file=f"--backend {name}")
    if device is not None and device not in DEVICES:
        raise RunError(f"no device {device!r}; give one of {', '.join(DEVICES)}", file=f"--device {device}")
    if device is not None and name == "numpy":
        raise RunError(
            "the numpy backend trains on this machine's CPU; --device is for --backend torch or ray",
            file=f"--device {device}",
        )
    if workers is not None and name != "ray":
        raise RunError(
            "--workers is for --backend ray (data-parallel workers on a Ray cluster)", file=f"--workers {workers}"
        )
    return BackendChoice(name, device or "auto", workers or DEFAULT_WORKERS)


def fit(
    spec: Spec | None = None,
    *,
    out: str | Path | None = None,
    root: str | Path = "runs",
    resume: str | Path | None = None,
    overrides: Sequence[str] = (),
    quiet: bool = False,
    progress: Progress | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    observers: Sequence[Callback] = (),
    backend: str | None = None,
    device: str | None = None,
    workers: int | None = None,
    address: str | None = None,
) -> runs.Run:
    """Train ``spec`` (or resume the run ``resume``) as specforge.training.loop.fit does, with ``backend``
    (default: the spec's ``fit.backend``; a resumed run keeps its own): ``numpy``, ``torch`` on ``device``
    (cpu, cuda or auto: cuda when PyTorch sees a GPU) or ``ray`` (``workers`` data-parallel PyTorch workers
    on the Ray cluster at ``address``, or on a local Ray). A backend that cannot run here is said before
    anything is written."""
    choice = choose_backend(spec, resume, backend, device, workers)
    progress = progress or ConsoleProgress(quiet=quiet)
    if choice.name == "ray":
        require_torch("--backend ray")
        from specforge.training.torch.ray_train import fit_on_ray

        return fit_on_ray(
            spec,
            choice.workers,
            choice.device,
            out=out,
            root=root,
            resume=resume,
            overrides=overrides,
            progress=progress,
            limits={"train": limit_train, "test": limit_test},
            address=address,
            observers=observers,
        )
    return loop.fit(
        spec,
        out=out,
        root=root,
        resume=resume,
        overrides=overrides,
        progress=progress,
        limit_train=limit_train,
        limit_test=limit_test,
        observers=observers,
        steps=steps_factory(choice.name, choice.device),
    )
