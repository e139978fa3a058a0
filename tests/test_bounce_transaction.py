"""A bounce run applies its suppressions in one store transaction: all of them or none, even
when `famfeeds bounces` is killed with SIGKILL at any moment."""

from __future__ import annotations

import mailbox
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from click.testing import Result

from famfeeds.build.project import Project as Paths
from famfeeds.delivery.bounces import read_mbox
from famfeeds.delivery.secret import project_secret
from famfeeds.delivery.store import StoreError, SubscriberStore, Suppression
from famfeeds.delivery.suppression import process_bounces
from famfeeds.records.loader import load_catalogue
from famfeeds.render.message import recipient_digest
from reports import dsn_report
from support import Project

SHOW = "for-all-mankind"
COUNT = 300


def dsn_bytes(recipient: str, original_id: str) -> bytes:
    """A permanent-failure delivery report (RFC 3464) about ``recipient``, returning the
    headers of the message famfeeds sent it (``original_id``: its keyed Message-ID)."""
    return dsn_report(
        [recipient],
        to="bounces@famfeeds.example.org",
        original=f"Message-ID: {original_id}\n",
        serial=recipient,
    )


def fans(count: int = COUNT) -> list[str]:
    return [f"fan{i:04d}@example.com" for i in range(count)]


def mailbox_of_bounces(path: Path, addresses: list[str]) -> Path:
    """Bounces of the issue of 2023-11-24 sent to ``addresses`` (keyed with the secret of
    the project beside ``path``: only a report matching a message sent changes anything)."""
    key = project_secret(path.parent / ".famfeeds-state" / "secret.key")
    assert key is not None
    box = mailbox.mbox(path)
    for address in addresses:
        mid = f"<2023-11-24.{SHOW}.{recipient_digest(address, key, SHOW)}@famfeeds.example.org>"
        box.add(BytesParser(policy=policy.default).parsebytes(dsn_bytes(address, mid)))
    box.flush()
    box.close()
    return path


def subscribed(project: Project, addresses: list[str]) -> Path:
    """The project's store with ``addresses`` confirmed; its path."""
    store_path = Paths.of(project.content).store
    people = project.root / "people.csv"
    people.write_text("email\n" + "".join(f"{a}\n" for a in addresses))
    with SubscriberStore.open(store_path) as store:
        store.import_csv(SHOW, people, confirmed=True)
    return store_path


def bounced(store_path: Path) -> int:
    db = sqlite3.connect(store_path, timeout=10)
    try:
        (count,) = db.execute(
            "SELECT count(*) FROM subscribers WHERE show = ? AND status = 'bounced'", (SHOW,)
        ).fetchone()
    finally:
        db.close()
    return int(count)


def test_a_run_of_many_bounces_is_one_store_transaction(shipped: Project) -> None:
    addresses = fans()
    store_path = subscribed(shipped, addresses)
    box = mailbox_of_bounces(shipped.root / "bounces.mbox", addresses)
    newsletter = load_catalogue(shipped.content).show.newsletter
    assert newsletter is not None
    statements: list[str] = []
    with SubscriberStore.open(store_path) as store:
        store.db.set_trace_callback(statements.append)
        report = process_bounces(
            read_mbox(box),
            show=SHOW,
            newsletter=newsletter,
            ledger_path=Paths.of(shipped.content).ledger,
            store=store,
            soft_limit=3,
        )
        store.db.set_trace_callback(None)
    assert len(report.bounced) == COUNT
    writes = [s for s in statements if s.startswith("BEGIN")]
    assert writes == ["BEGIN IMMEDIATE"]  # one write transaction for all 300
    assert bounced(store_path) == COUNT


def test_suppress_many_is_all_or_none(tmp_path: Path) -> None:
    path = tmp_path / "state" / "subscribers.sqlite3"
    with SubscriberStore.open(path, busy_timeout=0.1) as store:
        store.add(SHOW, "kept@example.org", confirmed=True)
        store.unsubscribe(SHOW, "left@example.org")
        store.forget(SHOW, "forgotten@example.org")
        items = [
            Suppression("kept@example.org", "bounced", "bounce", "5.1.1 no such user"),
            Suppression("left@example.org", "complained", "complaint", "abuse"),
            Suppression("new@example.org", "bounced", "bounce", "5.1.1"),
            Suppression("forgotten@example.org", "bounced", "bounce", "5.1.1"),
            Suppression("no-at-sign.example.org", "bounced", "bounce", "5.1.1"),  # not an address
        ]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="locked"):
                store.suppress_many(SHOW, items)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store.status(SHOW, "kept@example.org") == "confirmed"
        assert store.status(SHOW, "new@example.org") is None
        left_out = store.suppress_many(SHOW, items)
        assert [i.address for i in left_out] == ["no-at-sign.example.org"]
        assert store.status(SHOW, "kept@example.org") == "bounced"
        assert store.status(SHOW, "left@example.org") == "unsubscribed"  # stays as it was
        assert store.history(SHOW, "left@example.org")[-1].event == "complained"
        assert store.status(SHOW, "new@example.org") == "bounced"
        assert store.status(SHOW, "forgotten@example.org") is None  # stays forgotten
        with pytest.raises(ValueError, match="suppression"):
            store.suppress_many(SHOW, [Suppression("a@example.org", "confirmed", "cli")])
        assert store.suppress_many(SHOW, []) == []


def bounces_process(project: Project, box: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "famfeeds", "bounces", "--mbox", str(box),
         "--content", str(project.content)],
        cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def kills_during_bounce_runs(shipped: Project, run: Callable[..., Result], trials: int) -> None:
    """``trials`` bounce runs killed with SIGKILL (every other one the moment its commit
    shows, the others at a random moment), each from the same store and mailbox: each
    leaves all or none of the suppressions; a run to the end then applies them once."""
    addresses = fans()
    store_path = subscribed(shipped, addresses)
    box = mailbox_of_bounces(shipped.root / "bounces.mbox", addresses)
    pristine = store_path.read_bytes()
    rng = random.Random(16)
    seen: list[int] = []
    for trial in range(trials):
        for suffix in ("-wal", "-shm"):
            store_path.with_name(store_path.name + suffix).unlink(missing_ok=True)
        store_path.write_bytes(pristine)
        Paths.of(shipped.content).ledger.unlink(missing_ok=True)
        process = bounces_process(shipped, box)
        if trial % 2 == 0:
            # the moment the first suppression becomes visible to another reader
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                if bounced(store_path):
                    break
                time.sleep(0.002)  # a reader polling flat out would slow the run it waits for
        else:
            time.sleep(rng.uniform(0.2, 1.5))  # anywhere in the run
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        assert process.stderr is not None
        problem = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        assert process.returncode in (0, -signal.SIGKILL), problem
        count = bounced(store_path)
        assert count in (0, COUNT), f"trial {trial}: {count} of {COUNT} bounced"
        seen.append(count)
    assert COUNT in seen, "no kill landed after the commit"
    # Run again to the end: everything applied once, and a third run counts nothing twice.
    result = run("bounces", "--mbox", box, "--content", shipped.content)
    assert result.exit_code == 0, result.output
    assert bounced(store_path) == COUNT
    again = run("bounces", "--mbox", box, "--content", shipped.content)
    assert f"Read {COUNT} message(s) ({COUNT} read before" in again.output


def test_sigkill_during_a_bounce_run_leaves_all_or_none(
    shipped: Project, run: Callable[..., Result]
) -> None:
    kills_during_bounce_runs(shipped, run, 4)


@pytest.mark.slow
def test_sixteen_sigkills_during_bounce_runs_leave_all_or_none(
    shipped: Project, run: Callable[..., Result]
) -> None:
    kills_during_bounce_runs(shipped, run, 16)
