"""Run the famfeeds CLI and SIGKILL it at one named point of a build, to test each window.

    python killpoint.py POINT famfeeds-arguments...

POINT: before-lock-save, after-lock-save (the lock is saved, the output not yet swapped),
after-swap (the output is swapped, the old tree not yet removed), mid-staging (the second
file written). The kill is a real SIGKILL: no finally block, no cleanup runs.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from famfeeds.build import writer
from famfeeds.build.lockfile import CalendarLock
from famfeeds.cli import main


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def patch(point: str) -> None:
    if point in ("before-lock-save", "after-lock-save"):
        save = CalendarLock.save

        def killing_save(self: CalendarLock) -> bool:
            if point == "before-lock-save":
                die()
            result = save(self)
            die()
            return result

        CalendarLock.save = killing_save  # type: ignore[method-assign]
    elif point == "after-swap":
        swap = writer._swap

        def killing_swap(staging: Path, target: Path) -> None:
            swap(staging, target)
            die()

        writer._swap = killing_swap
    elif point == "mid-staging":
        write_bytes = Path.write_bytes
        calls = [0]

        def killing_write(self: Path, data: Any) -> int:
            calls[0] += 1
            if calls[0] == 2:
                die()
            return write_bytes(self, data)

        Path.write_bytes = killing_write  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown point {point!r}")


if __name__ == "__main__":
    patch(sys.argv[1])
    sys.argv = ["famfeeds", *sys.argv[2:]]
    main()
