"""The Python config dataclasses and the core's one field list agree, and a misspelt
field is refused instead of being silently ignored."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from llmbridge import OllamaConfig, OpenAIConfig, VLLMConfig, _native

CONFIGS = [("vllm", VLLMConfig), ("openai", OpenAIConfig), ("ollama", OllamaConfig)]


@pytest.mark.parametrize(("provider", "cls"), CONFIGS)
def test_dataclass_fields_are_the_core_fields(provider: str, cls: type) -> None:
    core = list(_native.config_defaults(provider))
    ours = [f.name for f in dataclasses.fields(cls)]
    assert sorted(ours) == sorted(core)


@pytest.mark.parametrize(("provider", "cls"), CONFIGS)
def test_defaults_come_from_the_core(provider: str, cls: type) -> None:
    core = _native.config_defaults(provider)
    cfg = cls()
    for name, value in core.items():
        assert getattr(cfg, name) == value, name


@pytest.mark.parametrize(("provider", "cls"), CONFIGS)
def test_a_misspelt_field_is_refused(provider: str, cls: type) -> None:
    cfg = cls(model="m")
    with pytest.raises(AttributeError, match="has no field 'modle'"):
        cfg.modle = "x"
    with pytest.raises(TypeError):
        cls(modle="x")
    cfg.model = "n"  # a real field still works
    assert cfg.model == "n"


@pytest.mark.parametrize(("provider", "cls"), CONFIGS)
def test_every_field_reaches_the_core(provider: str, cls: type) -> None:
    # Each field set on the dataclass is read by the core: a value the core refuses
    # makes validate_config name exactly that field.
    cfg = cls(model="m")
    object.__setattr__(cfg, "timeout", -1.0)
    problems = _native.validate_config(provider, cfg)
    assert [p[0] for p in problems] == ["timeout"]


@pytest.mark.parametrize(("provider", "cls"), CONFIGS)
def test_pickle_and_replace_still_work(provider: str, cls: type) -> None:
    cfg = cls(model="m", api_key="sk-secret")
    again = pickle.loads(pickle.dumps(cfg))
    assert again == cfg
    assert cfg.replace(max_tokens=7).max_tokens == 7
    assert "sk-secret" not in repr(cfg)


@pytest.mark.parametrize(("provider", "cls"), CONFIGS)
def test_a_bool_field_takes_only_a_bool(provider: str, cls: type) -> None:
    # A str such as "no" must not silently become True.
    assert cls(model="m").validate_schema is True
    assert cls(model="m", schema_retry=False).schema_retry is False
    for bad in ("no", 0, None.__class__):
        with pytest.raises(TypeError, match="config field 'validate_schema' must be True or False"):
            cls(model="m", validate_schema=bad)
