"""CI runs every test: it installs the pinned JavaScript runtimes, and under CI a skipped test fails (a skip
for a missing tool must not pass unnoticed there)."""

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
SKIPPING = """
import pytest

@pytest.mark.skipif(True, reason="node is not available")
def test_marked():
    pass

def test_skipping_itself():
    pytest.skip("chromium is not installed")

def test_running():
    pass
"""


@pytest.fixture
def suite(pytester):
    text = CONFTEST.read_text(encoding="utf-8")
    hook = text[text.index("def under_ci") : text.index("@pytest.fixture")]
    pytester.makeconftest(f"import os\n\nimport pytest\n\n\n{hook}")
    pytester.makepyfile(test_skipping=SKIPPING)
    return pytester


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_skip_fails_under_ci(suite, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    result = suite.runpytest()
    result.assert_outcomes(passed=1, errors=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*skipped under CI, where every test must run: node is not available*",
            "*skipped under CI, where every test must run: chromium is not installed*",
        ]
    )


def test_a_skip_is_a_skip_outside_ci(suite, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    suite.runpytest().assert_outcomes(passed=1, skipped=2)


REPO = Path(__file__).resolve().parents[1]


def test_ci_installs_the_pinned_javascript_runtimes():
    import json

    package = json.loads((REPO / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((REPO / "package-lock.json").read_text(encoding="utf-8"))
    for name in ("onnxruntime-node", "onnxruntime-web"):
        assert package["dependencies"][name] == "1.30.0"
        assert lock["packages"][f"node_modules/{name}"]["version"] == "1.30.0"
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "npm ci --ignore-scripts" in script and "export CI=true" in script
    assert "node_modules/" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
