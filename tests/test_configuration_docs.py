"""The documented settings match `Settings`, and the validation users rely on holds."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from promptlogic.settings import MIN_SECRET_KEY_LENGTH, Settings

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"
FIELDS = sorted(Settings.model_fields)
TEST_ONLY_VARIABLES = {"PROMPTLOGIC_TEST_DATABASE_URL"}
SECRET = "s" * MIN_SECRET_KEY_LENGTH
EXTERNAL_URL = "postgresql+asyncpg://promptlogic:pw@db.example.com:5432/promptlogic"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PROMPTLOGIC_ or OPENAI_ variable, nor the `.env` of the machine running the tests,
    leaks in."""
    for name in [n for n in os.environ if n.upper().startswith(("PROMPTLOGIC_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def variable(field: str) -> str:
    """The variable a setting is read from: `PROMPTLOGIC_<FIELD>`, or its un-prefixed alias."""
    alias = Settings.model_fields[field].validation_alias
    return alias.upper() if isinstance(alias, str) else f"PROMPTLOGIC_{field.upper()}"


def env_example_values() -> dict[str, str]:
    """`PROMPTLOGIC_X=value` lines of .env.example, commented out or not."""
    pattern = re.compile(r"^#?\s*((?:PROMPTLOGIC|OPENAI)_[A-Z0-9_]+)=(.*)$", re.MULTILINE)
    return {name: value.strip() for name, value in pattern.findall(ENV_EXAMPLE.read_text())}


def doc_table_defaults() -> dict[str, str]:
    """Variable -> default column of the settings table in docs/configuration.md."""
    pattern = re.compile(
        r"^\|\s*`((?:PROMPTLOGIC|OPENAI)_[A-Z0-9_]+)`\s*\|\s*([^|]*?)\s*\|", re.MULTILINE
    )
    return {
        name: default.strip("`") for name, default in pattern.findall(CONFIGURATION_DOC.read_text())
    }


@pytest.mark.parametrize("field", FIELDS)
def test_every_setting_is_in_env_example(field: str) -> None:
    assert variable(field) in env_example_values(), f"{variable(field)} missing in .env.example"


@pytest.mark.parametrize("field", FIELDS)
def test_every_setting_is_in_the_configuration_table(field: str) -> None:
    assert variable(field) in doc_table_defaults(), (
        f"{variable(field)} missing in the table of docs/configuration.md"
    )


def test_no_stale_variables_are_documented() -> None:
    known = {variable(field) for field in FIELDS} | TEST_ONLY_VARIABLES
    assert set(env_example_values()) <= known
    assert set(doc_table_defaults()) <= known
    assert "PROMPTLOGIC_TEST_DATABASE_URL" in env_example_values()


@pytest.mark.parametrize("field", FIELDS)
def test_documented_defaults_are_the_real_defaults(field: str) -> None:
    default = Settings.model_fields[field].default
    documented = doc_table_defaults()[variable(field)]
    if default is None:
        assert documented == "unset"
        return
    assert Settings(**{field: documented}).model_dump()[field] == default
    assert Settings(**{field: env_example_values()[variable(field)]}).model_dump()[field] == default


def test_database_url_requires_a_secret_key() -> None:
    with pytest.raises(ValidationError, match="PROMPTLOGIC_SECRET_KEY"):
        Settings(database_url=EXTERNAL_URL)


def test_database_url_with_a_secret_key_is_external() -> None:
    settings = Settings(database_url=EXTERNAL_URL, secret_key=SECRET)
    assert not settings.embedded
    assert settings.resolved_secret_key() == SECRET


def test_short_secret_key_is_refused() -> None:
    with pytest.raises(ValidationError, match=f"at least {MIN_SECRET_KEY_LENGTH} characters"):
        Settings(database_url=EXTERNAL_URL, secret_key=SECRET[:-1])
    with pytest.raises(ValidationError, match=f"at least {MIN_SECRET_KEY_LENGTH} characters"):
        Settings(secret_key="short")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://promptlogic:pw@db.example.com:5432/promptlogic",
        "postgres://promptlogic:pw@db.example.com:5432/promptlogic",
    ],
)
def test_plain_postgres_url_is_converted_to_asyncpg(url: str) -> None:
    assert Settings(database_url=url, secret_key=SECRET).database_url == EXTERNAL_URL


@pytest.mark.parametrize(
    "url", ["mysql://promptlogic:pw@db.example.com/promptlogic", "sqlite+aiosqlite:///x.db"]
)
def test_other_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match=r"postgresql\+asyncpg://") as caught:
        Settings(database_url=url, secret_key=SECRET)
    assert caught.value.errors()[0]["loc"] == ("database_url",)


def test_empty_database_url_means_embedded() -> None:
    assert Settings(database_url="").embedded


def test_environment_is_read_and_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("PROMPTLOGIC_PORT=9001\nPROMPTLOGIC_LOG_LEVEL=debug\n")
    monkeypatch.setenv("PROMPTLOGIC_PORT", "9002")
    monkeypatch.setenv("PROMPTLOGIC_DATABASE_URL", "postgresql://u:p@h/d")
    monkeypatch.setenv("PROMPTLOGIC_SECRET_KEY", SECRET)
    settings = Settings()
    assert (settings.port, settings.log_level) == (9002, "debug")
    assert settings.database_url == "postgresql+asyncpg://u:p@h/d"
