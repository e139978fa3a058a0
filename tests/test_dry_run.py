"""`famfeeds send --dry-run` says exactly what the send then does (whom it sends to, skips
and fails), without personalising every message; the size is measured on a sample."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from click.testing import Result

from famfeeds.build.project import Project as Paths
from famfeeds.delivery.campaign import SIZE_SAMPLE, Campaign
from famfeeds.delivery.engine import SendOptions
from famfeeds.delivery.store import SubscriberStore
from faults.smtp_faults import NOW, Faults, send_args, serve, write_csv
from support import Project

SHOW = "for-all-mankind"
LONG_URL = "https://famfeeds.example.org/unsubscribe/" + "x" * 700 + "?token={token}"


def test_the_dry_run_says_what_the_send_then_does(
    shipped: Project, run: Callable[..., Result]
) -> None:
    show_toml = shipped.content / "show.toml"
    show_toml.write_text(
        show_toml.read_text().replace(
            'unsubscribe_url = "https://famfeeds.example.org/unsubscribe?token={token}"',
            f'unsubscribe_url = "{LONG_URL}"',
        )
    )
    rows = [f"fan{i}@example.com,Fan {i},tok{i}" for i in range(40)]
    rows.append("long.token@example.com,Long," + "t" * 250)  # a List-Unsubscribe of 1,000+
    rows.append("left@example.com,Left,tokleft")
    rows.append("gone@example.com,Gone,tokgone")
    paths = Paths.of(shipped.content)
    paths.private_state()
    with SubscriberStore.open(paths.store, secret=paths.secret) as store:
        store.unsubscribe(SHOW, "left@example.com")
        store.forget(SHOW, "gone@example.com")
    faults = Faults()
    with serve(faults) as url:
        first = write_csv(shipped.root, rows[:3])
        assert run(*send_args(shipped.content, first, url, "--yes")).exit_code == 0
        csv = write_csv(shipped.root, rows)
        dry = json.loads(run(*send_args(shipped.content, csv, url, "--dry-run", "--json")).stdout)
        text = run(*send_args(shipped.content, csv, url, "--dry-run"))
        real = json.loads(run(*send_args(shipped.content, csv, url, "--yes", "--json")).stdout)
    assert dry["dry_run"] and not real["dry_run"]
    counts = ("already_sent", "suppressed", "failed", "uncertain", "failed_before")
    assert {k: dry["counts"][k] for k in counts} == {k: real["counts"][k] for k in counts}
    assert dry["counts"]["already_sent"] == 3 and dry["counts"]["suppressed"] == 2
    assert (
        dry["suppressed"]
        == real["suppressed"]
        == {
            "forgotten": ["gone@example.com"],
            "unsubscribed": ["left@example.com"],
        }
    )
    assert [f["address"] for f in dry["failed"]] == ["long.token@example.com"]
    assert dry["failed"] == real["failed"]
    assert "List-Unsubscribe header line would be" in dry["failed"][0]["reason"]
    assert dry["counts"]["would_send"] == real["counts"]["sent"] == 37
    assert faults.stored == Counter({f"fan{i}@example.com": 1 for i in range(40)})
    assert dry["exit_code"] == real["exit_code"] == 1  # someone fails for good
    assert "would send 37 message(s)" in text.output and "1 would fail" in text.output
    assert "would fail: long.token@example.com: not sent: the List-Unsubscribe" in text.output


def test_a_large_dry_run_estimates_the_size_from_a_sample(shipped: Project) -> None:
    count = 2 * SIZE_SAMPLE + 500
    people = shipped.root / "people.csv"
    people.write_text(
        "email,name\n" + "".join(f"reader{i}@example.com,{'N' * (i % 40)}\n" for i in range(count))
    )
    paths = Paths.of(shipped.content)
    paths.private_state()
    with SubscriberStore.open(paths.store, secret=paths.secret) as store:
        store.import_csv(SHOW, people, confirmed=True)
        store.unsubscribe(SHOW, "reader7@example.com")
    campaign = Campaign(
        shipped.content, None, "2023-11-24", None, None, now=datetime.fromisoformat(NOW)
    )
    report = campaign.dry_run(SendOptions())
    assert len(report.plan.todo) == count - 1 and report.plan.suppressed == {}
    assert report.size_estimated
    exact = sum(
        len(campaign.template.render(s.email, s.name, s.token, date=campaign.clock()))
        for s in report.plan.todo
    )
    assert abs(report.size - exact) / exact < 0.01
