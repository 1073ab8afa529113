"""docs/configuration.md is the code's own account of the settings: it is written by
``atalaia.config_docs`` from the pydantic models, the detectors' declared parameters and
``Settings``, and this test fails when the file and the code disagree."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from atalaia import config_docs
from atalaia.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def test_every_monitor_setting_has_a_description() -> None:
    assert config_docs.missing_descriptions() == [], (
        "give these fields a Field(description=...) in atalaia/config.py, then run "
        f"`{config_docs.COMMAND}`"
    )


def test_the_environment_table_covers_every_setting() -> None:
    fields = {field.name for field in dataclasses.fields(Settings)}
    assert set(config_docs.ENVIRONMENT) == fields
    read = set(re.findall(r'"(ATALAIA_[A-Z_]+)"', (REPO / "atalaia" / "settings.py").read_text()))
    assert {variable for variable, _, _ in config_docs.ENVIRONMENT.values()} == read


def test_docs_configuration_md_is_the_generated_text() -> None:
    written = (REPO / "docs" / "configuration.md").read_text()
    assert written == config_docs.render(), (
        "docs/configuration.md differs from the settings in the code; regenerate it with "
        f"`{config_docs.COMMAND}` and commit the result"
    )


def test_the_command_prints_what_it_writes(capsys) -> None:
    assert config_docs.main([]) == 0
    assert capsys.readouterr().out == config_docs.render()
