"""The ``inkwell`` command line: recognize in-process, help, migrate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.images import line_png, truncated_png


def _inkwell(*args: str, env_dir: Path) -> subprocess.CompletedProcess:
    env = {"INKWELL_DATA_DIR": str(env_dir), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "inkwell", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_recognize_lines_as_json(tmp_path: Path, tiny_char_model: Path) -> None:
    files = []
    for name, text in (("a.png", "hello world"), ("b.png", "Jane Doe")):
        (tmp_path / name).write_bytes(line_png(text))
        files.append(str(tmp_path / name))
    result = _inkwell("recognize", "--lines", "--json", "--model", str(tiny_char_model), *files, env_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["file"] for row in rows] == files
    assert [row["text"] for row in rows] == ["hello world", "Jane Doe"]
    for row in rows:
        assert set(row) == {"file", "text", "lines"}
        (line,) = row["lines"]
        assert set(line) == {"page", "text", "confidence", "bbox"} and 0 < line["confidence"] <= 1


def test_recognize_plain_text_and_a_bad_file(tmp_path: Path, tiny_char_model: Path) -> None:
    (tmp_path / "good.png").write_bytes(line_png("Form 42"))
    (tmp_path / "bad.png").write_bytes(truncated_png())
    single = _inkwell(
        "recognize", "--lines", "--model", str(tiny_char_model), str(tmp_path / "good.png"), env_dir=tmp_path
    )
    assert single.returncode == 0 and single.stdout == "Form 42\n"
    mixed = _inkwell(
        "recognize",
        "--lines",
        "--model",
        str(tiny_char_model),
        str(tmp_path / "good.png"),
        str(tmp_path / "bad.png"),
        env_dir=tmp_path,
    )
    assert mixed.returncode == 1
    assert "good.png: Form 42" in mixed.stdout and "bad.png" in mixed.stderr and "damaged" in mixed.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _inkwell("--help", env_dir=tmp_path)
    for command in ("serve", "web", "worker", "recognize", "migrate"):
        assert command in result.stdout


def test_migrate_creates_the_embedded_database(tmp_path: Path) -> None:
    result = _inkwell("migrate", env_dir=tmp_path / "var")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "inkwell.db").exists()


def test_bad_setting_stops_the_command_with_its_name(tmp_path: Path) -> None:
    env = {"INKWELL_DATA_DIR": str(tmp_path), "INKWELL_WEB_PORT": "not-a-port", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "inkwell", "migrate"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode != 0 and "web_port" in result.stderr


def test_recognize_shows_progress_only_on_a_terminal(tmp_path: Path, tiny_char_model: Path) -> None:
    import fcntl
    import os
    import pty
    import struct
    import termios

    files = []
    for index, text in enumerate(("hello world", "Jane Doe", "ink")):
        (tmp_path / f"{index}.png").write_bytes(line_png(text))
        files.append(str(tmp_path / f"{index}.png"))
    args = [sys.executable, "-m", "inkwell", "recognize", "--lines", "--model", str(tiny_char_model), *files]
    env = {"INKWELL_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    quiet = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and "files" not in quiet.stderr and "%|" not in quiet.stderr
    # standard error on a terminal: a bar counting the files; standard output stays the plain results
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new terminal is 0 columns wide
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=follower, env=env, text=True) as child:
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        stdout = child.stdout.read()
    os.close(leader)
    assert child.returncode == 0
    assert b"/3 [" in drawn and b"files/s" in drawn  # a count of 3 files (tqdm throttles which steps it draws)
    assert stdout.splitlines() == [f"{files[0]}: hello world", f"{files[1]}: Jane Doe", f"{files[2]}: ink"]
