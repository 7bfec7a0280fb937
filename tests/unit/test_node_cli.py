"""``pneumodesk accounts …`` and ``--home``/``PNEUMODESK_HOME``, run in-process with passwords on stdin."""

from __future__ import annotations

import io
import sqlite3

import pytest

from pneumodesk.cli import main

OWNER_PW = "sunflower meadow 88"
NEW_PW = "granite river 913"


def run(monkeypatch, capsys, argv: list[str], *stdin_lines: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{line}\n" for line in stdin_lines)))
    status = main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture
def home(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "home"
    status, out, _ = run(monkeypatch, capsys, ["--home", str(folder), "accounts", "create-owner", "olivia.owner",
                                               "--display-name", "Olivia Owner", "--password-stdin"], OWNER_PW)
    assert status == 0 and "Created the Owner account olivia.owner" in out
    return folder


def admin(home, *args: str) -> list[str]:
    return ["--home", str(home), "accounts", *args, "--user", "olivia.owner", "--password-stdin"]


def test_a_scripted_administration_session(home, monkeypatch, capsys):
    steps = [
        (admin(home, "create", "carl.reader", "--role", "Clinician"), (OWNER_PW, NEW_PW), "Created carl.reader"),
        (admin(home, "set-role", "carl.reader", "Researcher"), (OWNER_PW,), "now has the role Researcher"),
        (admin(home, "disable", "carl.reader"), (OWNER_PW,), "Disabled carl.reader"),
        (admin(home, "enable", "carl.reader"), (OWNER_PW,), "Enabled carl.reader"),
        (admin(home, "reset-password", "carl.reader"), (OWNER_PW, "another stone 77"), "must be changed"),
        (admin(home, "unlock", "carl.reader"), (OWNER_PW,), "Unlocked carl.reader"),
    ]
    outputs = []
    for argv, lines, expected in steps:
        status, out, err = run(monkeypatch, capsys, argv, *lines)
        assert status == 0 and expected in out, (argv, out, err)
        outputs.append(out + err)

    status, listing, _ = run(monkeypatch, capsys, admin(home, "list"), OWNER_PW)

    assert status == 0
    assert "carl.reader" in listing and "Researcher" in listing and "active*" in listing
    for secret in (OWNER_PW, NEW_PW, "another stone 77", "$argon2"):
        assert all(secret not in text for text in [*outputs, listing])


def test_refusals_exit_non_zero_with_a_plain_message(home, monkeypatch, capsys):
    run(monkeypatch, capsys, admin(home, "create", "carl.reader", "--role", "Clinician"), OWNER_PW, NEW_PW)
    clinician = ["--home", str(home), "accounts", "list", "--user", "carl.reader", "--password-stdin"]

    wrong = run(monkeypatch, capsys, admin(home, "list"), "not my password 1")
    denied = run(monkeypatch, capsys, clinician, NEW_PW)
    last_owner = run(monkeypatch, capsys, admin(home, "set-role", "olivia.owner", "Clinician"), OWNER_PW)
    second_owner = run(monkeypatch, capsys, ["--home", str(home), "accounts", "create-owner", "eve.owner",
                                             "--password-stdin"], "yet another pw 99")
    weak = run(monkeypatch, capsys, admin(home, "create", "weak.one", "--role", "Clinician"), OWNER_PW, "short")

    assert wrong[0] == 1 and "Wrong user name or password" in wrong[2]
    assert denied[0] == 1 and "does not allow you to manage accounts" in denied[2]
    assert last_owner[0] == 1 and "last Owner" in last_owner[2]
    assert second_owner[0] == 1 and "already has an Owner" in second_owner[2]
    assert weak[0] == 1 and "at least 12" in weak[2]


def test_passwords_are_never_accepted_on_the_command_line(home, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--home", str(home), "accounts", "list", "--user", "olivia.owner", "--password", OWNER_PW])
    assert exit_info.value.code == 2


def test_pneumodesk_home_variable_picks_the_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PNEUMODESK_HOME", str(tmp_path / "from-env"))

    status, _, _ = run(monkeypatch, capsys, ["accounts", "create-owner", "olivia.owner", "--password-stdin"],
                       OWNER_PW)

    assert status == 0
    with sqlite3.connect(tmp_path / "from-env" / "node.sqlite3") as db:
        assert db.execute("select username, role_name from users").fetchall() == [("olivia.owner", "Owner")]


def test_home_before_no_command_still_opens_the_desktop_app(monkeypatch, tmp_path):
    import pneumodesk.cli as cli

    opened: list = []
    monkeypatch.setattr(cli, "_run_gui", lambda args: opened.append(args.home) or 0)
    assert cli.main(["--home", str(tmp_path)]) == 0
    assert cli.main([]) == 0
    assert opened == [tmp_path, None]
