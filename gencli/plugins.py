"""Plugin discovery: the ``gencli`` entry-point group, loaded with pluggy.

A plugin that fails to import, declares an API version this core does not speak, or raises in a
hook is recorded as broken with its error; everything else keeps working. No torch here.

Name clashes: when two plugins register the same model (or dataset, or metric) name, the one
from the ``gencli`` distribution itself keeps the plain name, otherwise the plugin whose
entry-point name sorts first. The other stays reachable as ``plugin:name`` and ``gencli
plugins`` says which one was shadowed.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
from dataclasses import dataclass, field
from types import ModuleType

import pluggy

from gencli import API_VERSION, hookspecs
from gencli.errors import UserError, did_you_mean
from gencli.registry import DatasetSpec, MetricSpec, ModelSpec

GROUP = "gencli"
CORE_DISTRIBUTION = "gencli"


@dataclass
class PluginInfo:
    """One entry point of the ``gencli`` group and what it contributed."""

    name: str
    module: str
    distribution: str = ""
    version: str = ""
    error: str | None = None
    models: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    shadowed: list[str] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.distribution == CORE_DISTRIBUTION


@dataclass
class Registry:
    plugins: list[PluginInfo]
    models: dict[str, ModelSpec]
    datasets: dict[str, DatasetSpec]
    metrics: dict[str, MetricSpec]
    manager: pluggy.PluginManager

    def model(self, name: str) -> ModelSpec:
        return _lookup(self.models, name, "model", "gencli models")

    def dataset(self, name: str) -> DatasetSpec:
        return _lookup(self.datasets, name, "dataset", "gencli datasets")

    def metric(self, name: str) -> MetricSpec:
        return _lookup(self.metrics, name, "metric", "gencli eval --help")


def _lookup(table: dict, name: str, what: str, listing: str):
    if name in table:
        return table[name]
    plain = [k for k in table if ":" not in k]
    raise UserError(f"unknown {what} {name!r}{did_you_mean(name, plain)}; `{listing}` lists them")


def check_api(module: ModuleType) -> None:
    """Raise ``RuntimeError`` when the plugin module does not speak this core's API version."""
    declared = getattr(module, "GENCLI_API", None)
    if declared is None:
        raise RuntimeError(f"declares no GENCLI_API; this gencli speaks API {API_VERSION}")
    versions = tuple(declared) if isinstance(declared, (tuple, list, set)) else (declared,)
    if API_VERSION in versions:
        return
    if all(isinstance(v, int) for v in versions) and max(versions) < API_VERSION:
        raise RuntimeError(
            f"plugin speaks API {versions} but this gencli speaks {API_VERSION}: upgrade the plugin"
        )
    raise RuntimeError(
        f"plugin speaks API {versions} but this gencli speaks {API_VERSION}: upgrade gencli"
    )


def _entry_points():
    eps = metadata.entry_points(group=GROUP)
    # The same distribution can be visible twice (e.g. an editable install and a build dir).
    seen, unique = set(), []
    for ep in sorted(eps, key=lambda e: e.name):
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            unique.append(ep)
    return unique


def _call_hook(info: PluginInfo, module: ModuleType, hook: str, *args):
    fn = getattr(module, hook, None)
    if fn is None:
        return []
    try:
        return list(fn(*args) or [])
    except Exception as exc:  # a broken hook breaks only its plugin
        info.error = f"{hook} raised {type(exc).__name__}: {exc}"
        return []


def _order(info: PluginInfo) -> tuple[int, str]:
    return (0 if info.builtin else 1, info.name)


def load_registry(extra: list[tuple[str, ModuleType]] | None = None) -> Registry:
    """Discover plugins and collect their contributions. ``extra`` adds in-process plugins."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    loaded: list[tuple[PluginInfo, ModuleType]] = []
    plugins: list[PluginInfo] = []
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist.metadata["Name"] if dist else "",
            version=dist.version if dist else "",
        )
        plugins.append(info)
        try:
            module = ep.load()
            check_api(module)
            pm.register(module, name=ep.name)
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, RuntimeError) else str(exc)
            continue
        loaded.append((info, module))
    for name, module in extra or []:
        info = PluginInfo(name=name, module=module.__name__)
        plugins.append(info)
        try:
            check_api(module)
            pm.register(module, name=name)
        except Exception as exc:
            info.error = str(exc)
            continue
        loaded.append((info, module))

    tables: dict[str, dict] = {"models": {}, "datasets": {}, "metrics": {}}
    hooks = {
        "models": ("gencli_register_models", ModelSpec),
        "datasets": ("gencli_register_datasets", DatasetSpec),
        "metrics": ("gencli_register_metrics", MetricSpec),
    }
    for info, module in sorted(loaded, key=lambda pair: _order(pair[0])):
        for table, (hook, spec_type) in hooks.items():
            for spec in _call_hook(info, module, hook):
                if not isinstance(spec, spec_type):
                    info.error = f"{hook} returned {type(spec).__name__}, expected {spec_type.__name__}"
                    continue
                spec = _with_plugin(spec, info.name)
                target = tables[table]
                target[f"{info.name}:{spec.name}"] = spec
                if spec.name in target:
                    info.shadowed.append(f"{table[:-1]} {spec.name!r} (kept from plugin {target[spec.name].plugin!r})")
                else:
                    target[spec.name] = spec
                    getattr(info, table).append(spec.name)
    return Registry(plugins, tables["models"], tables["datasets"], tables["metrics"], pm)


def _with_plugin(spec, plugin: str):
    from dataclasses import replace

    return replace(spec, plugin=plugin)


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    """The process-wide registry, discovered once."""
    return load_registry()
