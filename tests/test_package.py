"""The built wheel carries the templates, so an installed famfeeds builds without the repo."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contains_templates_and_typing_marker(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("famfeeds-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.name for p in (REPO / "templates").iterdir())
    assert shipped
    for name in shipped:
        assert f"famfeeds/templates/{name}" in names
    assert "famfeeds/py.typed" in names
    assert "famfeeds/cli/__init__.py" in names
