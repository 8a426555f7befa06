"""``python -m specforge.sweep.worker``: one trial process of a local sweep.

It reads its orders as JSON on stdin (the sweep, the sweep directory, its worker number, the deadline,
the example limits) and runs trials until none are left.  The driver started it on its share of the
cores, with BLAS and the batch-split threads limited to that share.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from specforge.base.errors import SpecforgeError
from specforge.sweep.space import sweep_from_payload
from specforge.sweep.study import work


def main() -> int:
    orders = json.load(sys.stdin)
    try:
        work(
            sweep_from_payload(orders["sweep"]),
            Path(orders["sweep_dir"]),
            worker=orders["worker"],
            deadline=orders["deadline"],
            limits=orders["limits"],
        )
    except SpecforgeError as error:
        print(error.format(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
