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
    shipped = sorted(p.relative_to(REPO).as_posix() for p in REPO.glob("templates/**/*.*"))
    assert shipped
    for name in shipped:
        assert f"famfeeds/{name}" in names
    for language in ("en", "de", "fr"):  # the message catalogues, compiled when a build starts
        for suffix in ("po", "mo"):
            assert f"famfeeds/locale/{language}/LC_MESSAGES/famfeeds.{suffix}" in names
    assert "famfeeds/py.typed" in names
    assert "famfeeds/cli/__init__.py" in names
