"""famfeeds newsletter reads any issue, even one still to come, without touching output/."""

from __future__ import annotations

import email
from collections.abc import Callable
from email import policy

import html5lib
from click.testing import Result

from support import Project, build_args


def test_a_future_issue_can_be_read_before_its_day_without_touching_output(
    shipped: Project, run: Callable[..., Result]
) -> None:
    assert run(*build_args(shipped, "--as-of", "2023-12-02")).exit_code == 0
    before = shipped.snapshot()
    common = ["--content", shipped.content, "--output", shipped.output]

    refused = run("newsletter", *common, "--as-of", "2023-12-02", "--date", "2023-12-08")
    assert refused.exit_code == 1
    assert "not out yet as of 2023-12-02: add --as-of 2023-12-08 to read it" in refused.output

    summary = run("newsletter", *common, "--date", "2023-12-08", "--as-of", "2023-12-08")
    assert summary.exit_code == 0, summary.output
    assert summary.output.startswith("Issue 2023-12-08: For All Mankind S4 E5: Goldilocks\n")
    assert "(not there: a build as of 2023-12-08 or later writes it)" in summary.output
    assert (
        "Read it now: famfeeds newsletter --date 2023-12-08 --as-of 2023-12-08 "
        "--save 2023-12-08.html"
    ) in summary.output

    page = run("newsletter", *common, "--date", "2023-12-08", "--as-of", "2023-12-08", "--html")
    assert page.exit_code == 0
    tree = html5lib.parse(page.stdout_bytes, namespaceHTMLElements=False)
    assert "Goldilocks" in "".join(tree.itertext())

    text = run("newsletter", *common, "--date", "2023-12-08", "--as-of", "2023-12-08", "--text")
    assert "S4 E5 · Goldilocks" in text.output

    saved = shipped.root / "preview.eml"
    wrote = run(
        "newsletter", *common, "--date", "2023-12-08", "--as-of", "2023-12-08", "--save", saved
    )
    assert wrote.exit_code == 0, wrote.output
    assert "preview.eml: issue 2023-12-08, For All Mankind S4 E5: Goldilocks" in wrote.output
    message = email.message_from_bytes(saved.read_bytes(), policy=policy.default)
    assert message["Subject"] == "For All Mankind S4 E5: Goldilocks"
    assert shipped.snapshot() == before  # output/ untouched throughout

    # The preview is exactly what the build writes once the issue is out.
    later = shipped.root / "later"
    assert (
        run(
            "build", "--content", shipped.content, "--output", later, "--as-of", "2023-12-08"
        ).exit_code
        == 0
    )
    assert saved.read_bytes() == (later / "newsletter/2023-12-08.eml").read_bytes()
    up_to_date = run(
        "newsletter",
        "--content",
        shipped.content,
        "--output",
        later,
        "--as-of",
        "2023-12-08",
        "--latest",
    )
    assert "not there" not in up_to_date.output and "Read it now" not in up_to_date.output


def test_save_needs_a_known_kind_of_file(shipped: Project, run: Callable[..., Result]) -> None:
    common = ["--content", shipped.content, "--as-of", "2023-12-02"]
    bad = run("newsletter", *common, "--save", shipped.root / "issue.pdf")
    assert bad.exit_code == 2
    assert "name it .html, .txt or .eml, or add --html, --text or --eml" in bad.output
    forced = run("newsletter", *common, "--save", shipped.root / "issue.pdf", "--text")
    assert forced.exit_code == 0
    assert "S4 E4 · House Divided" in (shipped.root / "issue.pdf").read_text(encoding="utf-8")
    nowhere = run("newsletter", *common, "--save", shipped.root / "no/such/folder/x.html")
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.output
    assert "Traceback" not in nowhere.output
