"""The subscriber store, on real SQLite files: statuses, tokens, imports, forgetting, locks."""

from __future__ import annotations

import csv
import io
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from famfeeds.delivery.ledger import Ledger
from famfeeds.delivery.store import (
    FORGOTTEN,
    MIGRATIONS,
    VERSION,
    InvalidAddress,
    StoreError,
    SubscriberStore,
    clean_name,
    valid_token,
)
from famfeeds.errors import FamfeedsError
from support import Project

SHOW = "test-show"
HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SubscriberStore]:
    with SubscriberStore.open(tmp_path / "state" / "subscribers.sqlite3", clock=clock) as opened:
        yield opened


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "subscribers.sqlite3"
    with SubscriberStore.open(path) as store:
        store.add(SHOW, "ann@example.org", confirmed=True)
        store.forget(SHOW, "bob@example.org")
        assert mode(path.parent) == 0o700
        for name in ("subscribers.sqlite3", "subscribers.sqlite3-wal", "secret.key"):
            assert mode(path.parent / name) == 0o600, name
        secret = (path.parent / "secret.key").read_bytes()
        assert len(secret) == 32
    assert secret not in path.read_bytes()


def test_one_row_per_address_whatever_its_case(store: SubscriberStore) -> None:
    assert store.add(SHOW, "Ann@Example.ORG", "Ann") == "added"
    assert store.add(SHOW, "ann@example.org") == "unchanged"
    assert store.add(SHOW, " ANN@example.org ", confirmed=True) == "updated"
    (ann,) = store.recipients(SHOW)
    assert (ann.email, ann.key, ann.name) == ("Ann@example.org", "ann@example.org", "Ann")
    assert store.status(SHOW, "ANN@EXAMPLE.ORG") == "confirmed"
    assert store.status(SHOW, "nobody@example.org") is None
    assert store.status(SHOW, "not an address") is None
    with pytest.raises(InvalidAddress):
        store.add(SHOW, "ann@@example.org")


def test_recipients_are_the_confirmed_only(store: SubscriberStore) -> None:
    store.add(SHOW, "pending@example.org")
    store.add(SHOW, "yes@example.org", confirmed=True)
    store.add(SHOW, "gone@example.org", confirmed=True)
    store.unsubscribe(SHOW, "gone@example.org")
    store.add(SHOW, "bounce@example.org", confirmed=True)
    store.suppress(SHOW, "bounce@example.org", "bounced", "smtp-5xx", "550 5.1.1 no such user")
    assert [r.email for r in store.recipients(SHOW)] == ["yes@example.org"]
    assert store.suppressed(SHOW, "gone@example.org") == "unsubscribed"
    assert store.suppressed(SHOW, "bounce@example.org") == "bounced"
    assert store.suppressed(SHOW, "yes@example.org") is None


def test_tokens_are_random_unique_and_belong_to_one_show(store: SubscriberStore) -> None:
    store.add(SHOW, "ann@example.org", confirmed=True)
    store.add("other-show", "ann@example.org", confirmed=True)
    (mine,) = store.recipients(SHOW)
    (theirs,) = store.recipients("other-show")
    assert mine.token != theirs.token
    assert valid_token(mine.token) and "ann" not in mine.token.lower()
    assert store.find(SHOW, theirs.token) is None
    assert store.unsubscribe_token(SHOW, theirs.token, "one-click") is False
    assert store.status("other-show", "ann@example.org") == "confirmed"
    assert store.unsubscribe_token(SHOW, mine.token[:-1] + "A", "one-click") is False
    assert store.unsubscribe_token(SHOW, mine.token, "one-click") is True
    assert store.status(SHOW, "ann@example.org") == "unsubscribed"
    assert store.status("other-show", "ann@example.org") == "confirmed"
    many = {store.ensure(SHOW, f"p{i}@example.org").token for i in range(200)}
    assert len(many) == 200


def test_double_opt_in_records_the_proof_of_consent(store: SubscriberStore, clock: Clock) -> None:
    first = store.signup(SHOW, "Ann@Example.org", "Ann", "198.51.100.7", HOUR)
    assert first is not None and first.email == "Ann@example.org"
    assert store.status(SHOW, "ann@example.org") == "pending"
    assert store.subscriber(SHOW, "ann@example.org").name is None  # until confirmed
    assert store.recipients(SHOW) == []
    store.confirmation_sent(store.next_confirmation(SHOW))
    clock.advance(timedelta(minutes=10))
    assert store.signup(SHOW, "ann@example.org", None, "198.51.100.8", HOUR) is None  # < 1 h
    clock.advance(HOUR)
    again = store.signup(SHOW, "ann@example.org", None, "198.51.100.9", HOUR)
    assert again is not None and again.token != first.token  # a token per request
    holder = store.find_request(SHOW, first.token, WEEK)
    assert holder is not None and holder.request_open and holder.status == "pending"
    assert holder.name == "Ann"
    clock.advance(timedelta(minutes=5))
    assert store.confirm(SHOW, first.token, "203.0.113.5", WEEK) == "confirmed"
    assert store.confirm(SHOW, first.token, "203.0.113.5", WEEK) == "already"
    assert store.confirm(SHOW, again.token, "203.0.113.5", WEEK) == "already"
    sub = store.subscriber(SHOW, "ann@example.org")
    assert sub is not None and sub.status == "confirmed" and sub.status_source == "signup"
    assert sub.name == "Ann"  # the confirmed request's name
    assert (sub.signup_at, sub.signup_ip) == ("2024-01-08T09:00:00Z", "198.51.100.7")
    assert (sub.consent_at, sub.consent_ip) == ("2024-01-08T10:15:00Z", "203.0.113.5")
    events = [(e.event, e.source, e.ip) for e in store.history(SHOW, "ann@example.org")]
    assert events == [
        ("pending", "signup", "198.51.100.7"),
        ("signup", "signup", "198.51.100.8"),
        ("signup", "signup", "198.51.100.9"),
        ("confirmed", "signup", "203.0.113.5"),
    ]
    assert store.signup(SHOW, "ann@example.org", "Someone else", "192.0.2.1", HOUR) is None
    assert store.subscriber(SHOW, "ann@example.org").name == "Ann"


def test_a_failed_confirmation_can_be_retried(store: SubscriberStore) -> None:
    signup = store.signup(SHOW, "ann@example.org", None, None, HOUR)
    assert signup is not None
    assert store.signup(SHOW, "ann@example.org", None, None, HOUR) is None  # one is queued
    taken = store.next_confirmation(SHOW)
    assert taken is not None and taken.id == signup.id and taken.tries == 1
    assert store.next_confirmation(SHOW) is None  # leased
    store.confirmation_failed(taken, None)  # given up
    assert store.signup(SHOW, "ann@example.org", None, None, HOUR) is not None


def test_coming_back_needs_a_confirmation(store: SubscriberStore, clock: Clock) -> None:
    store.add(SHOW, "ann@example.org", confirmed=True)
    store.unsubscribe(SHOW, "ann@example.org", "cli")
    signup = store.signup(SHOW, "ann@example.org", None, "192.0.2.1", HOUR)
    assert signup is not None  # an unsubscribed person who signs up again is mailed
    assert store.status(SHOW, "ann@example.org") == "unsubscribed"  # until they confirm
    assert store.suppressed(SHOW, "ann@example.org") == "unsubscribed"
    assert store.ensure(SHOW, "ann@example.org") is None
    assert store.confirm(SHOW, signup.token, "192.0.2.1", WEEK) == "confirmed"
    assert [r.email for r in store.recipients(SHOW)] == ["ann@example.org"]


def test_a_token_without_an_open_sign_up_confirms_nothing(
    store: SubscriberStore, clock: Clock
) -> None:
    store.add(SHOW, "ann@example.org", confirmed=True)
    (ann,) = store.recipients(SHOW)
    store.unsubscribe_token(SHOW, ann.token, "one-click")
    assert store.confirm(SHOW, ann.token, None, WEEK) is None  # not a confirmation token
    assert store.signup(SHOW, "ann@example.org", "Mallory", "192.0.2.66", HOUR) is not None
    assert store.confirm(SHOW, ann.token, "192.0.2.66", WEEK) is None  # still not
    assert store.status(SHOW, "ann@example.org") == "unsubscribed"


def test_sign_ups_expire(store: SubscriberStore, clock: Clock) -> None:
    new = store.signup(SHOW, "new@example.org", None, "192.0.2.1", HOUR)
    store.add(SHOW, "old@example.org", confirmed=True)
    store.unsubscribe(SHOW, "old@example.org")
    back = store.signup(SHOW, "old@example.org", None, "192.0.2.1", HOUR)
    assert new is not None and back is not None
    clock.advance(WEEK + HOUR)
    assert store.confirm(SHOW, new.token, None, WEEK) == "expired"
    assert store.expire_pending(SHOW, WEEK) == 2
    assert store.status(SHOW, "new@example.org") is None  # no consent, nothing kept
    assert store.history(SHOW, "new@example.org") == []
    assert store.status(SHOW, "old@example.org") == "unsubscribed"
    assert store.confirm(SHOW, back.token, None, WEEK) == "expired"


def test_unsubscribe_never_deletes_and_suppressions_stick(store: SubscriberStore) -> None:
    store.add(SHOW, "ann@example.org", confirmed=True)
    assert store.unsubscribe(SHOW, "ann@example.org") == "confirmed"
    assert store.unsubscribe(SHOW, "ann@example.org") == "unsubscribed"
    store.suppress(SHOW, "ann@example.org", "complained", "complaint", "ARF abuse report")
    assert store.status(SHOW, "ann@example.org") == "unsubscribed"
    assert [e.event for e in store.history(SHOW, "ann@example.org")][-1] == "complained"
    assert store.add(SHOW, "ann@example.org", confirmed=True) == "unsubscribed"
    assert store.clear_bounce(SHOW, "ann@example.org") is False
    assert store.unsubscribe(SHOW, "stranger@example.org") is None  # recorded all the same
    assert store.suppressed(SHOW, "stranger@example.org") == "unsubscribed"
    with pytest.raises(ValueError, match="suppress"):
        store.suppress(SHOW, "ann@example.org", "confirmed", "cli")


def test_one_off_list_addresses_get_a_token_but_do_not_join(store: SubscriberStore) -> None:
    one = store.ensure(SHOW, "Once@Example.org", "Once")
    assert one is not None and valid_token(one.token)
    again = store.ensure(SHOW, "once@example.org")
    assert again is not None and again.token == one.token and again.name == "Once"
    assert store.status(SHOW, "once@example.org") == "pending"
    assert store.recipients(SHOW) == []
    store.suppress(SHOW, "csv-only@example.org", "bounced", "smtp-5xx", "550 5.1.1")
    assert store.ensure(SHOW, "csv-only@example.org") is None
    store.add(SHOW, "ok@example.org", confirmed=True)
    store.suppress(SHOW, "ok@example.org", "bounced", "smtp-5xx", "550 5.1.1")
    assert store.clear_bounce(SHOW, "ok@example.org") is True
    assert store.status(SHOW, "ok@example.org") == "confirmed"


def test_forget_deletes_personal_data_but_keeps_it_suppressed(
    tmp_path: Path, store: SubscriberStore
) -> None:
    store.add(SHOW, "forget-me@example.org", "Forget Me", confirmed=True)
    assert store.forget(SHOW, "Forget-Me@example.org") is True
    assert store.subscriber(SHOW, "forget-me@example.org") is None
    assert store.history(SHOW, "forget-me@example.org") == []
    raw = b"".join(p.read_bytes() for p in store.path.parent.glob("subscribers.sqlite3*"))
    assert b"forget-me" not in raw and b"Forget Me" not in raw
    assert store.suppressed(SHOW, "forget-me@example.org") == FORGOTTEN
    assert store.add(SHOW, "forget-me@example.org", confirmed=True) == FORGOTTEN
    assert store.ensure(SHOW, "forget-me@example.org") is None
    report = store.import_csv(
        SHOW,
        write_csv(tmp_path / "in.csv", "email\nforget-me@example.org\n"),
        confirmed=True,
    )
    assert [(n.line, n.why) for n in report.suppressed] == [(2, FORGOTTEN)]
    assert store.suppressed("other-show", "forget-me@example.org") is None  # per show
    signup = store.signup(SHOW, "forget-me@example.org", None, "192.0.2.1", HOUR)
    assert signup is not None  # the person may come back
    assert store.suppressed(SHOW, "forget-me@example.org") == FORGOTTEN
    assert store.confirm(SHOW, signup.token, "192.0.2.1", WEEK) == "confirmed"
    assert store.suppressed(SHOW, "forget-me@example.org") is None
    assert store.stats(SHOW).forgotten == 0


def test_a_missing_secret_is_an_error_not_a_resubscription(store: SubscriberStore) -> None:
    store.forget(SHOW, "gone@example.org")
    store.secret_path.unlink()
    reopened = SubscriberStore.open(store.path)
    with pytest.raises(StoreError, match=r"secret\.key is missing"):
        reopened.add(SHOW, "gone@example.org", confirmed=True)
    reopened.close()


def test_import_reports_every_row(tmp_path: Path, store: SubscriberStore) -> None:
    store.add(SHOW, "left@example.org", confirmed=True)
    store.unsubscribe(SHOW, "left@example.org")
    store.add(SHOW, "waiting@example.org")
    store.add(SHOW, "here@example.org", "Here", confirmed=True)
    text = (
        "Email,Name,Status,uuid\n"
        "new@example.org,New,,1\n"
        "not-an-address,X,,2\n"
        "LEFT@example.org,Left,,3\n"
        "new@EXAMPLE.org,Dup,,4\n"
        "\n"
        "waiting@example.org,,,5\n"
        "here@example.org,Here Again,confirmed,6\n"
        "here2@example.org,,weird,7\n"
        "blocked@example.org,,complained,8\n"
        "here@example.org,,,9\n"
    )
    report = store.import_csv(SHOW, write_csv(tmp_path / "in.csv", text), confirmed=True)
    assert report.added == 2  # new, blocked (as a suppression)
    assert report.updated == 2  # waiting confirmed, here renamed
    assert report.unchanged == 0
    assert [(n.line, n.address, n.why) for n in report.suppressed] == [
        (4, "LEFT@example.org", "unsubscribed")
    ]
    assert [n.line for n in report.invalid] == [3, 9]
    assert "unknown status 'weird'" in report.invalid[1].why
    assert [n.line for n in report.duplicates] == [5, 11]
    assert report.ignored_columns == ["uuid"]
    assert store.status(SHOW, "left@example.org") == "unsubscribed"
    assert store.status(SHOW, "waiting@example.org") == "confirmed"
    assert store.status(SHOW, "blocked@example.org") == "complained"
    assert store.subscriber(SHOW, "here@example.org").name == "Here Again"
    sub = store.subscriber(SHOW, "new@example.org")
    assert sub is not None and sub.status == "confirmed" and sub.status_source == "import"
    assert sub.consent_at is not None and sub.consent_ip is None
    plain = store.import_csv(SHOW, write_csv(tmp_path / "p.csv", "email\nfresh@example.org\n"))
    assert plain.added == 1 and store.status(SHOW, "fresh@example.org") == "pending"


@pytest.mark.parametrize(
    "header",
    ["name,address", "email,name,email", "email,,name", ""],
    ids=["no email", "repeated", "empty name", "empty file"],
)
def test_a_bad_header_refuses_the_whole_file(
    tmp_path: Path, store: SubscriberStore, header: str
) -> None:
    path = write_csv(tmp_path / "in.csv", header + "\nann@example.org,Ann,x\n" if header else "")
    with pytest.raises(FamfeedsError, match=r"in\.csv:1: the header row"):
        store.import_csv(SHOW, path)
    assert store.stats(SHOW).counts["pending"] == 0


def test_an_undecodable_row_is_invalid(tmp_path: Path, store: SubscriberStore) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"email,name\nann@example.org,Ann\nbob@example.org,B\xe9b\n")
    report = store.import_csv(SHOW, path)
    assert report.added == 1 and [n.line for n in report.invalid] == [3]


STATES = ("pending", "confirmed", "unsubscribed", "bounced", "complained", FORGOTTEN)
EDIT = st.sampled_from(["keep", "drop-status", "confirm", "pending", "blank", "upper"])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    states=st.lists(st.sampled_from(STATES), min_size=1, max_size=8),
    edits=st.lists(EDIT, min_size=8, max_size=8),
    confirmed=st.booleans(),
)
def test_export_edit_import_never_resubscribes(
    tmp_path_factory: pytest.TempPathFactory,
    states: list[str],
    edits: list[str],
    confirmed: bool,
) -> None:
    folder = tmp_path_factory.mktemp("roundtrip")
    with SubscriberStore.open(folder / "s.sqlite3") as store:
        for i, state in enumerate(states):
            address = f"p{i}@example.org"
            store.add(SHOW, address, confirmed=state != "pending")
            if state in ("unsubscribed", "bounced", "complained"):
                store.suppress(SHOW, address, state, "cli")
            elif state == FORGOTTEN:
                store.forget(SHOW, address)
        suppressed = {
            f"p{i}@example.org" for i, s in enumerate(states) if s not in ("pending", "confirmed")
        }
        out = io.StringIO()
        store.export_csv(SHOW, out)
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        rows += [{"email": a, "name": "", "status": "confirmed"} for a in sorted(suppressed)]
        for row, edit in zip(rows, edits * 3, strict=False):
            if edit == "drop-status":
                row.pop("status", None)
            elif edit in ("confirm", "pending"):
                row["status"] = {"confirm": "confirmed", "pending": "pending"}[edit]
            elif edit == "blank":
                row["status"] = ""
            elif edit == "upper":
                row["email"] = row["email"].upper()
        edited = folder / "edited.csv"
        with edited.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, ["email", "name", "status"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        store.import_csv(SHOW, edited, confirmed=confirmed)
        for address in suppressed:
            assert store.suppressed(SHOW, address) is not None, address
        assert {r.email for r in store.recipients(SHOW)}.isdisjoint(suppressed)


def test_export_goes_to_a_private_file_without_tokens(
    tmp_path: Path, store: SubscriberStore
) -> None:
    store.add(SHOW, "ann@example.org", 'Ann, "the" =1+1', confirmed=True)
    (ann,) = store.recipients(SHOW)
    target = tmp_path / "export.csv"
    assert store.export_file(SHOW, target) == 1
    assert mode(target) == 0o600
    text = target.read_text(encoding="utf-8")
    assert ann.token not in text
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["name"] == 'Ann, "the" =1+1' and row["status"] == "confirmed"


def test_stats_count_statuses_and_weeks(store: SubscriberStore, clock: Clock) -> None:
    a = store.signup(SHOW, "a@example.org", None, None, HOUR)
    store.signup(SHOW, "b@example.org", None, None, HOUR)
    assert a is not None
    store.confirm(SHOW, a.token, None, WEEK)
    clock.advance(WEEK)
    (recipient,) = store.recipients(SHOW)
    store.unsubscribe_token(SHOW, recipient.token, "one-click")
    store.forget(SHOW, "c@example.org")
    result = store.stats(SHOW)
    assert result.counts == {
        "pending": 1,
        "confirmed": 0,
        "unsubscribed": 1,
        "bounced": 0,
        "complained": 0,
    }
    assert result.forgotten == 1
    assert [(w.week, w.signups, w.confirmed, w.unsubscribed) for w in result.weeks] == [
        ("2024-W02", 2, 1, 0),
        ("2024-W03", 0, 0, 1),
    ]


def test_names_are_one_line_and_otherwise_verbatim() -> None:
    assert clean_name("  Ann\r\nBcc: x@example.org\t ") == "Ann Bcc: x@example.org"
    assert (
        clean_name("Robert'); DROP TABLE subscribers;--") == "Robert'); DROP TABLE subscribers;--"
    )
    assert clean_name("\x00 \x7f") is None
    assert clean_name("x" * 500) == "x" * 100


def test_an_old_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute(
        "INSERT INTO subscribers (show, key, email, name, status, status_changed_at, "
        "status_source, created_at, consent_at, token, selector) VALUES "
        "(?, 'ann@example.org', 'Ann@example.org', 'Ann', 'confirmed', "
        "'2023-05-01T10:00:00Z', 'import', '2023-05-01T10:00:00Z', NULL, ?, ?)",
        (SHOW, "A" * 32, "A" * 16),
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with SubscriberStore.open(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == VERSION
        (ann,) = store.recipients(SHOW)
        assert (ann.email, ann.name, ann.token) == ("Ann@example.org", "Ann", "A" * 32)
        assert [e.event for e in store.history(SHOW, "ann@example.org")] == ["confirmed"]
        assert store.stats(SHOW).weeks[0].week == "2023-W18"
        assert store.forget(SHOW, "ann@example.org")
        assert store.add(SHOW, "ann@example.org") == FORGOTTEN


def test_another_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"not a subscriber store .*deliveries"):
        SubscriberStore.open(path)
    assert path.read_bytes() == before


def test_an_empty_version_0_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    sqlite3.connect(path).close()
    with SubscriberStore.open(path) as store:
        assert store.add(SHOW, "ann@example.org") == "added"


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    SubscriberStore.open(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer famfeeds"):
        SubscriberStore.open(path)


def test_a_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(StoreError, match=r"not a usable subscriber store.*backup"):
        SubscriberStore.open(path)


def test_a_locked_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    SubscriberStore.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with SubscriberStore.open(path, busy_timeout=0.2) as store:
            with pytest.raises(StoreError, match="locked by another process"):
                store.add(SHOW, "ann@example.org")
            assert store.status(SHOW, "ann@example.org") is None  # readers still read
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with SubscriberStore.open(path) as store:
        assert store.add(SHOW, "ann@example.org") == "added"


# -- the commands ----------------------------------------------------------------------


@pytest.fixture
def cli_project(project: Project) -> Project:
    project.show()
    return project


def test_the_commands(cli_project: Project, run: Callable[..., Result], tmp_path: Path) -> None:
    content = ["--content", str(cli_project.content)]
    people = write_csv(
        tmp_path / "people.csv", "email,name\nann@example.org,Ann\nbad,X\nbob@example.org,\n"
    )
    result = run("subscribers", "import", people, "--confirmed", *content)
    assert result.exit_code == 0
    assert "2 added, 0 updated, 0 unchanged, 0 suppressed, 1 invalid, 0 duplicate" in result.output
    assert "line 3: bad:" in result.output
    state = cli_project.root / ".famfeeds-state"
    assert mode(state) == 0o700 and (state / ".gitignore").read_text().strip().endswith("*")
    assert run("subscribers", "unsubscribe", "BOB@example.org", *content).exit_code == 0
    added = run("subscribers", "add", "bob@example.org", "--confirmed", *content)
    assert added.exit_code == 1 and "bob@example.org is unsubscribed" in added.output
    assert "Traceback" not in added.output
    assert run("subscribers", "add", "cy@example.org", "--name", "Cy", *content).exit_code == 0
    listed = run("subscribers", "list", "--status", "confirmed", *content).output
    assert listed.splitlines()[0].startswith("ann@example.org\tconfirmed\t")
    assert len(listed.splitlines()) == 1
    stats = run("subscribers", "stats", *content).output
    assert "confirmed" in stats and "unsubscribed          1" in stats
    exported = tmp_path / "out.csv"
    run("subscribers", "export", "-o", exported, *content)
    assert mode(exported) == 0o600 and "bob@example.org,,unsubscribed" in exported.read_text()
    assert run("subscribers", "forget", "cy@example.org", *content).exit_code == 0
    history = run("subscribers", "history", "cy@example.org", *content).output
    assert "forgotten" in history
    history = run("subscribers", "history", "ann@example.org", *content).output
    assert "confirmed (import)" in history
    again = run("subscribers", "import", exported, "--confirmed", *content).output
    assert "2 unchanged, 1 suppressed" in again and "cy@example.org: forgotten" in again
    assert run("subscribers", "clear-bounce", "ann@example.org", *content).exit_code == 1


def test_a_bad_address_or_show_is_a_clear_error(
    cli_project: Project, run: Callable[..., Result], tmp_path: Path
) -> None:
    result = run("subscribers", "add", "not-an-address", "--content", cli_project.content)
    assert result.exit_code == 1 and "Error:" in result.output and "@" in result.output
    missing = run("subscribers", "list", "--content", tmp_path / "nowhere")
    assert missing.exit_code == 1 and "show.toml" in missing.output


def test_a_schema_2_store_is_migrated_without_reopening_the_hole(tmp_path: Path) -> None:
    """A store made before sign-up requests: keys recomputed, an open sign-up of a row the
    form made keeps its mailed link (the row gets a new unsubscribe token), and an open
    re-sign-up of a suppressed row, whose link was the unsubscribe token, is dropped."""
    from famfeeds.delivery.store import MIGRATIONS

    path = tmp_path / "subscribers.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:2]:
        assert isinstance(step, str)
        db.executescript(step)
    db.execute("PRAGMA user_version = 2")
    now, pending, left = "2024-01-08T09:00:00Z", "P" * 32, "U" * 32
    rows = [
        ("new@example.org", "New@example.org", "pending", "signup", pending, now),
        ("left@example.org", "left@example.org", "unsubscribed", "one-click", left, now),
        ("strasse@example.org", "Straße@example.org", "confirmed", "import", "S" * 32, None),
    ]
    for key, address, status, source, token, since in rows:
        db.execute(
            "INSERT INTO subscribers (show, key, email, status, status_changed_at, "
            "status_source, created_at, token, selector, pending_since) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (SHOW, key, address, status, now, source, now, token, token[:16], since),
        )
    db.close()
    clock = Clock()
    clock.advance(timedelta(days=1))
    with SubscriberStore.open(path, clock=clock) as store:
        assert {s.key for s in store.subscribers(SHOW)} == {
            "new@example.org",
            "left@example.org",
            "straße@example.org",
        }
        assert store.status(SHOW, "strasse@example.org") is None  # another mailbox now
        assert store.confirm(SHOW, left, "192.0.2.66", WEEK) is None
        assert store.status(SHOW, "left@example.org") == "unsubscribed"
        assert store.unsubscribe_token(SHOW, pending, "one-click") is False  # rotated
        assert store.confirm(SHOW, pending, "192.0.2.1", WEEK) == "confirmed"
        assert store.status(SHOW, "new@example.org") == "confirmed"
