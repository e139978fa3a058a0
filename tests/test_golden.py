"""Golden files: the shipped season built at fixed dates must match tests/golden/ byte for byte,
in English (the shipped ``language = "en"``) and, changing nothing but show.toml's
``language``, in American English, German and French.

After an intended change, regenerate them with:

    python tests/regenerate_golden.py

and review the diff before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from support import Project, build_args

GOLDEN = Path(__file__).parent / "golden"
AS_OF = ["2023-11-24", "2024-01-31"]  # mid-season, and after the finale
LANGUAGES = ["en-US", "de", "fr"]
CASES = [("en", as_of) for as_of in AS_OF] + [(language, AS_OF[-1]) for language in LANGUAGES]


def golden_folder(language: str, as_of: str) -> Path:
    """tests/golden/as-of-DATE for the shipped English, LANGUAGE-as-of-DATE for the others."""
    return GOLDEN / (f"as-of-{as_of}" if language == "en" else f"{language}-as-of-{as_of}")


def set_language(content: Path, language: str) -> None:
    """Change show.toml's language, and nothing else."""
    show = content / "show.toml"
    text = show.read_text(encoding="utf-8")
    assert 'language = "en"' in text
    show.write_text(text.replace('language = "en"', f'language = "{language}"'), encoding="utf-8")


@pytest.mark.parametrize(("language", "as_of"), CASES)
def test_shipped_season_matches_golden_files(
    shipped: Project, run: Callable[..., Result], language: str, as_of: str
) -> None:
    set_language(shipped.content, language)
    assert run(*build_args(shipped, "--as-of", as_of)).exit_code == 0
    expected_dir = golden_folder(language, as_of)
    expected = {
        p.relative_to(expected_dir).as_posix(): p.read_bytes()
        for p in sorted(expected_dir.rglob("*"))
        if p.is_file()
    }
    got = {k: v for k, v in shipped.snapshot().items() if not k.startswith(".")}
    assert sorted(got) == sorted(expected)
    for name, data in expected.items():
        assert got[name] == data, f"{name} differs from {expected_dir / name}"


def test_two_builds_are_byte_identical(shipped: Project, run: Callable[..., Result]) -> None:
    assert run(*build_args(shipped, "--as-of", "2023-12-01")).exit_code == 0
    first = shipped.snapshot()
    assert run(*build_args(shipped, "--as-of", "2023-12-01")).exit_code == 0
    assert shipped.snapshot() == first
