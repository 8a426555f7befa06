"""Numbers that pass their type but break training or other tools: an optimizer's epsilon of 0, and the
length of what an error may quote."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.base.errors import MAX_MESSAGE, DataError, Problem, capped
from specforge.data.table.read import Table
from specforge.export.table import rows_feed
from specforge.options.optimizers import OPTIMIZERS
from tests.spec.test_invalid_specs import SEED, error_lines

WITH_EPSILON = [name for name, kind in OPTIMIZERS.items() if "epsilon" in kind.hyperparameters]


def test_the_optimizers_with_an_epsilon_are_the_adaptive_ones():
    assert {"adam", "adamw", "nadam", "rmsprop", "adagrad"} <= set(WITH_EPSILON)


@pytest.mark.parametrize("name", WITH_EPSILON)
def test_an_epsilon_of_zero_is_refused_at_validate(name: str):
    option = f"compile.optimizer={{name: {name}, epsilon: 0}}"
    assert error_lines(SEED, [option]) == [f"--set {option}: error: compile.optimizer.epsilon: must be > 0, got 0"]


@pytest.mark.parametrize("name", WITH_EPSILON)
def test_a_small_positive_epsilon_is_taken(name: str):
    from specforge import api

    spec, _ = api.validate(SEED, [f"compile.optimizer={{name: {name}, epsilon: 1.0e-12}}"], data=False)
    assert spec.config["compile"]["optimizer"]["epsilon"] == 1e-12


def test_an_error_quoting_a_header_of_a_million_columns_is_capped():
    names = [f"feature_{index}" for index in range(1_000_000)]
    table = Table("wide.csv", {name: np.empty(0, dtype=object) for name in names}, np.empty(0, dtype=np.int64))
    with pytest.raises(DataError) as raised:
        rows_feed(table, [("age", False)])
    [problem] = raised.value.problems
    line = problem.format()
    assert len(problem.message) <= MAX_MESSAGE + 60 and "\n" not in line
    assert line.startswith(
        "wide.csv: error: the model needs the columns 'age', which the file does not have; "
        "its header has: feature_0, feature_1, "
    )
    left_out = (
        len(", ".join(names))
        + len("the model needs the columns 'age', which the file does not have; its header has: ")
        - MAX_MESSAGE * 2 // 3
        - MAX_MESSAGE // 3
    )
    assert f" ... [{left_out:,} characters left out] ... " in line and line.endswith("feature_999999")


def test_the_cap_keeps_short_messages_and_the_end_of_long_ones():
    assert capped("x" * MAX_MESSAGE) == "x" * MAX_MESSAGE
    long = "a" * 5000 + "; use units: 10"
    shortened = capped(long)
    assert shortened.endswith("; use units: 10") and len(shortened) < MAX_MESSAGE + 60
    assert Problem(long).message == shortened and str(DataError(long)).count("characters left out") == 1
