"""Fixtures shared across test packages, and test-session settings for the whole suite.

- Node.js finds the JavaScript runtimes that ``npm ci`` installs from the repository's package.json
  (``node_modules/`` at the root), wherever a test runs its script.
- The numpy backend's compiled kernels (specforge.ops.kernels) are loaded once before the first test, so that
  no training test sees the one-time "compiling kernels…" line among its progress messages.
- The cost model that decides whether a batch is split across the cores (specforge.ops.costs) decides from
  fixed machine constants (helpers.TEST_MACHINE), never from ones measured (or cached) on the machine that
  runs the tests.
- One local Ray (2 CPUs, no dashboard) serves every test that asks for ``local_ray``: started by the first,
  shut down after the last, so that the Ray tests pay for one start and the rest of the suite runs without it
  (the modules holding such tests run one after another, where the last of them stands).
  specforge joins a Ray already started (as a notebook's own ``ray.init()``); starting a local Ray for a command
  is tested where the command runs as its own process.
- Under CI (environment CI=true) a test that would be skipped, for a tool or package that is not
  installed, fails instead: CI installs everything the suite needs, so a skip there hides a test that
  never ran (``needs.require`` fails such a test directly; this hook catches every other skip).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers import TEST_MACHINE
from needs import need

from specforge import api
from specforge.ops import kernels, machine

pytest_plugins = ["pytester"]

SEED_SPEC = Path(__file__).resolve().parents[1] / "specs" / "mnist.yaml"
NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"
if NODE_MODULES.is_dir():
    os.environ["NODE_PATH"] = os.pathsep.join(filter(None, [str(NODE_MODULES), os.environ.get("NODE_PATH")]))


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and under_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every test must run: {reason}"


def pytest_collection_modifyitems(items) -> None:
    """Move the modules whose tests ask for ``local_ray`` together, in their order, to where the last one starts."""
    shared = list(dict.fromkeys(item.path for item in items if "local_ray" in item.fixturenames))
    if len(shared) < 2:
        return
    last_start = next(index for index, item in enumerate(items) if item.path == shared[-1])
    rest = [item for item in items if item.path not in shared]
    place = sum(1 for item in items[:last_start] if item.path not in shared)
    items[:] = rest[:place] + [item for item in items if item.path in shared] + rest[place:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if "local_ray" in item.fixturenames and not _later_tests_use_ray(item):
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()


def _later_tests_use_ray(item) -> bool:
    items = item.session.items
    return any("local_ray" in later.fixturenames for later in items[items.index(item) + 1 :])


@pytest.fixture
def local_ray():
    """The local Ray the Ray tests share (see the module's docstring), started here when none runs."""
    ray = need("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    return ray


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    kernels.load()


@pytest.fixture(autouse=True)
def fixed_machine_constants(monkeypatch) -> None:
    monkeypatch.setattr(machine, "_constants", TEST_MACHINE)


@pytest.fixture(scope="session")
def seed_run(tmp_path_factory) -> Path:
    """The seed CNN (specs/mnist.yaml) trained for one epoch on 4000 images and exported: good enough to
    read the first test digits and a drawn stroke, quick enough for the suite."""
    run = api.fit(
        SEED_SPEC,
        overrides=["fit.epochs=1"],
        out=tmp_path_factory.mktemp("runs") / "seed",
        quiet=True,
        limit_train=4000,
        limit_test=500,
    )
    api.export(run)
    return run.path
