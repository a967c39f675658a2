"""The speed benchmark runs end to end (a short run of the real script on the bundled model): it
is not a timed test and asserts no speed, only that it still measures and prints every mode."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_benchmark_prints_every_mode_against_the_model_card_loop() -> None:
    command = [
        sys.executable,
        "-m",
        "benchmarks.recognizer_speed",
        "--lines",
        "3",
        "--rounds",
        "1",
        "--batch-size",
        "2",
    ]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=300).stdout
    rows = {
        m.group(1): m.groups()[1:]
        for m in re.finditer(
            r"^(model-card|batched|capture)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+) / ([\d.]+)$", output, re.M
        )
    }
    assert set(rows) == {"model-card", "batched", "capture"}, output
    assert float(rows["model-card"][1]) == 1.0  # the loop is the baseline of its own rounds
    for speed, _ratio, peak_mb, low, high in rows.values():
        assert float(speed) > 0 and int(peak_mb) > 0 and float(low) <= float(high)
    assert "over 1 rounds" in output
    assert re.search(r"same text: capture vs batched 3/3", output), output  # capture never changes the text


def test_the_capture_cost_benchmark_prints_its_figure() -> None:
    command = [sys.executable, "-m", "benchmarks.capture_cost", "--lines", "2", "--pairs", "2", "--batch-size", "2"]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=300).stdout
    assert re.search(r"^capture costs [+-]\d+\.\d% time \(median of 2 alternating pairs", output, re.M), output


def test_the_form_set_benchmark_prints_its_figures(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.form_lines", "--forms", "2", "--write", str(tmp_path)]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=300).stdout
    assert re.search(
        r"^lines: recall [01]\.\d{4} \(\d+/\d+\), precision [01]\.\d{4} \(\d+/\d+\), duplicated text \d+$", output, re.M
    ), output
    assert re.search(r"^text type right: [01]\.\d{4}", output, re.M) and re.search(
        r"^fields paired right: [01]\.\d{4}", output, re.M
    )
    assert re.search(r"^line finding CPU per page: median [\d.]+ s, max [\d.]+ s$", output, re.M)
    assert (tmp_path / "truth.json").exists() and len(list(tmp_path.glob("form-*.png"))) == 2
