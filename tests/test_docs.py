"""The README documents every setting, with the default the code really has."""

from __future__ import annotations

from pathlib import Path

from inkwell.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    for name in Settings.model_fields:
        assert f"`INKWELL_{name.upper()}`" in README, f"INKWELL_{name.upper()} is not documented"


def test_readme_defaults_match_the_code() -> None:
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[2].strip()
        for line in README.splitlines()
        if line.startswith("| `INKWELL_")
    }
    for name, field in Settings.model_fields.items():
        default = field.default
        if (
            isinstance(default, (int, float))
            and not isinstance(default, bool)
            or name in ("device", "preprocessing", "web_host", "log_level")
        ):
            assert rows[f"INKWELL_{name.upper()}"] == f"`{default}`", name
