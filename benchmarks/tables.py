"""Tables of figures for the benchmark scripts: aligned text for a terminal, or Markdown for the README."""

from __future__ import annotations

from collections.abc import Sequence


class Table:
    """Rows under a header; the first column is aligned left (names), the others right (figures)."""

    def __init__(self, header: Sequence[str]):
        self.header = [str(cell) for cell in header]
        self.rows: list[list[str]] = []

    def add(self, row: Sequence[object]) -> None:
        if len(row) != len(self.header):
            raise ValueError(f"a row of {len(row)} cells under a header of {len(self.header)}")
        self.rows.append([str(cell) for cell in row])

    def render(self, markdown: bool = False) -> str:
        if markdown:
            lines = [self.header, [":---", *["---:"] * (len(self.header) - 1)], *self.rows]
            return "\n".join("| " + " | ".join(line) + " |" for line in lines)
        widths = [max(len(row[column]) for row in [self.header, *self.rows]) for column in range(len(self.header))]
        return "\n".join(
            "  ".join(
                cell.ljust(width) if column == 0 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths))
            ).rstrip()
            for row in [self.header, *self.rows]
        )

    def print(self, markdown: bool = False) -> None:
        print(self.render(markdown))
