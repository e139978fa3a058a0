"""Rebuild tests/golden/ from the shipped content: python tests/regenerate_golden.py"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from famfeeds.cli import cli

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from test_golden import CASES, golden_folder, set_language  # noqa: E402


def main() -> None:
    for language, as_of in CASES:
        target = golden_folder(language, as_of)
        shutil.rmtree(target, ignore_errors=True)
        # Build from a copy, as the tests do, so the repository's famfeeds.lock is untouched.
        work = Path(tempfile.mkdtemp())
        shutil.copytree(TESTS.parent / "content", work / "content")
        shutil.copy(TESTS.parent / "famfeeds.lock", work / "famfeeds.lock")
        set_language(work / "content", language)
        args = [
            "build",
            "--content",
            str(work / "content"),
            "--output",
            str(target),
            "--templates",
            str(TESTS.parent / "templates"),
            "--as-of",
            as_of,
        ]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        if result.exit_code:
            sys.exit(result.output)
        (target / ".famfeeds-manifest").unlink()
        shutil.rmtree(work)
        print(f"wrote {target.relative_to(TESTS.parent)}")


if __name__ == "__main__":
    main()
