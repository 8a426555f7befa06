"""A rescale factor as a spec writes it: a positive number, or a fraction such as ``1/255``.

Shared by ``data.preprocessing.rescale`` and a table's image column (``rescale``), which multiply pixels by it.
"""

from __future__ import annotations

#: A rescale factor written as a fraction: positive numerator and denominator (``1/255``).
FRACTION_PATTERN = r"^\s*(?=[0-9.]*[1-9])[0-9]*\.?[0-9]+\s*/\s*(?=[0-9.]*[1-9])[0-9]*\.?[0-9]+\s*$"

#: The values a rescale factor may take (the option's description and default are its own).
RESCALE_VALUES = {"oneOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": FRACTION_PATTERN}]}


def rescale_factor(value: float | str) -> float:
    """A rescale factor as a number: ``"1/255"`` is 1/255 (the schema admits only such fractions)."""
    if isinstance(value, str):
        numerator, denominator = value.split("/")
        return float(numerator) / float(denominator)
    return float(value)


__all__ = ["FRACTION_PATTERN", "RESCALE_VALUES", "rescale_factor"]
