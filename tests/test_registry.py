"""Lazy registries: names and listing info without importing, import on first use, entry-point plugins, "did you
mean", and what the built-in registrations declare agreeing with the classes they name."""

from __future__ import annotations

import dataclasses
import importlib
import sys

import pytest
from plugin_package import DISTRIBUTION, MODULE, write_plugin

from fusekit.errors import FusekitError
from fusekit.registry import LazyObject, Registry, resolved


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    """A module that records being imported: `probe_mod.VALUE` and a config dataclass."""
    (tmp_path / "probe_mod.py").write_text(
        "import dataclasses\nVALUE = object()\n\n@dataclasses.dataclass\nclass Config:\n    width: int = 8\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "probe_mod", raising=False)
    yield "probe_mod"
    sys.modules.pop("probe_mod", None)


def test_lazy_entry_is_listed_without_import_and_imported_on_first_get(probe_module):
    registry = Registry("probe")
    registry.add_lazy("thing", f"{probe_module}:VALUE", aliases=("alias",), summary="a thing", model="m/1")
    assert registry.names() == ["thing"] and "alias" in registry
    assert registry.info("ALIAS") == {"summary": "a thing", "model": "m/1"}
    assert registry.listing() == [{"name": "thing", "aliases": ["alias"], "summary": "a thing", "model": "m/1", "plugin": ""}]
    assert probe_module not in sys.modules
    value = registry.get("thing")
    assert value is sys.modules[probe_module].VALUE and registry.get("alias") is value


def test_lazy_object_stands_in_for_a_class(probe_module):
    config = LazyObject(f"{probe_module}:Config")
    assert probe_module not in sys.modules
    assert [field.name for field in dataclasses.fields(config)] == ["width"]
    assert config(width=3).width == 3 and config.__name__ == "Config"


def test_unknown_names_get_a_suggestion_and_the_generated_list():
    registry = Registry("describer backend", "known: {known} (fusekit describe --list)")
    registry.add("stats", object(), aliases=("offline",))
    registry.add("florence2", object(), aliases=("grit",))
    with pytest.raises(FusekitError) as error:
        registry.canonical("florense2")
    assert error.value.message == "unknown describer backend 'florense2'"
    assert error.value.hint == "did you mean 'florence2'? known: stats, florence2 (fusekit describe --list)"
    with pytest.raises(FusekitError, match="did you mean 'stats'"):
        registry.canonical("ofline")  # the alias is close; the suggestion is the registered name
    with pytest.raises(ValueError, match="registered twice"):
        registry.add_lazy("GRIT", "x:y")


def test_entry_point_plugins_are_listed_lazily_and_load_on_use(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path)))
    importlib.invalidate_caches()
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    models = Registry("fusion model", group="fusekit.models")
    models.add("gff", object())
    assert "demo-mean" in models and models.names() == ["gff", "demo-mean"]
    assert models.names(plugins=False) == ["gff"] and models.plugin_of("demo-mean") == DISTRIBUTION
    assert MODULE not in sys.modules
    spec = models.get("demo-mean")
    assert spec.name == "demo-mean" and spec.kind == "training-free"
    describers = Registry("describer backend", group="fusekit.describers")
    [row] = describers.listing()
    assert row == {"name": "demo-words", "aliases": [], "summary": "A fixed caption and the mean grey level (demo plugin).",
                   "model": "demo/words-1", "plugin": DISTRIBUTION}
    sys.modules.pop(MODULE, None)


def test_a_broken_plugin_is_one_clear_error_and_cannot_replace_a_builtin(tmp_path, monkeypatch, capsys):
    extra = f"\n[fusekit.test_broken]\nbroken = {MODULE}_missing:THING\ngff = {MODULE}:SPEC\n"
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path, extra)))
    importlib.invalidate_caches()
    registry = Registry("fusion model", group="fusekit.test_broken")
    builtin = registry.add("gff", object())
    assert registry.names() == ["gff", "broken"] and registry.get("gff") is builtin
    assert f"{DISTRIBUTION} registers fusion model 'gff', which fusekit already has; ignored" in capsys.readouterr().err
    with pytest.raises(FusekitError) as error:
        registry.get("broken")
    assert f"from {DISTRIBUTION} ({MODULE}_missing:THING) failed to load: ModuleNotFoundError" in error.value.message
    assert error.value.hint == f"fix or uninstall {DISTRIBUTION}"


def test_builtin_registrations_match_the_classes_they_name():
    """`describe --list` and the help read `model` from the registration; it must be the class's default."""
    from fusekit.guidance.describe import DESCRIBERS, DescribeOptions
    from fusekit.guidance.text import TEXT_ENCODERS, TextOptions
    from fusekit.guidance.vision import IMAGE_ENCODERS, ImageOptions

    for registry, options in ((DESCRIBERS, DescribeOptions()), (TEXT_ENCODERS, TextOptions()), (IMAGE_ENCODERS, ImageOptions())):
        for name in registry.names(plugins=False):
            backend = registry.get(name)(options)
            assert backend.name == name
            expected = registry.info(name)["model"]
            assert (backend.default_model if expected else "") == expected, name


def test_fusion_specs_name_importable_code():
    from fusekit.models import FUSION_MODELS

    for name in FUSION_MODELS.names(plugins=False):
        spec = FUSION_MODELS.get(name)
        if spec.kind == "learned":
            assert dataclasses.is_dataclass(resolved(spec.config)) and callable(resolved(spec.build)), name
        else:
            assert callable(resolved(spec.fuse_arrays)), name
