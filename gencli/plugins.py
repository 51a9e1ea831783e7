"""Plugin discovery: the ``gencli`` entry-point group, loaded with pluggy.

A plugin that fails to import (even by calling ``sys.exit``), declares an API version this core
does not speak, implements an unknown hook, or raises in a hook is recorded as broken with its
error; everything else keeps working. Hooks are called through pluggy, one plugin at a time, so
each contribution is credited to its plugin. ``GENCLI_LOAD_PLUGINS=name,name`` loads only those
plugins (entry-point or distribution names; empty: none but the core's). No torch here.

Name clashes: when two plugins register the same model (or dataset, or metric) name, the one
from the ``gencli`` distribution itself keeps the plain name, otherwise the plugin whose
entry-point name sorts first. The other stays reachable as ``plugin:name`` and ``gencli
plugins`` says which one was shadowed.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import os
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
    commands: list[str] = field(default_factory=list)
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
        if name not in self.models:
            broken = self.broken_note()
            if broken:
                plain = [k for k in self.models if ":" not in k]
                raise UserError(f"unknown model {name!r}{did_you_mean(name, plain)}; {broken}")
        return _lookup(self.models, name, "model", "gencli models")

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)

    def broken_note(self) -> str:
        """Return a clause naming the plugins that failed to load ('' when none did)."""
        broken = [p for p in self.plugins if p.error]
        return "; ".join(f"plugin {p.name!r} ({p.distribution or 'no distribution'}) failed to load: {p.error}"
                         for p in broken)

    def model_class(self, name: str, run=None) -> type:
        """Return the Model subclass registered as ``name``; one line naming the plugin when it cannot load.

        With ``run`` (a ``gencli.runs.Run``), a model whose plugin is not installed, not selected
        or broken is reported with the plugin and distribution the run was trained with.
        """
        spec = self.models.get(name)
        if spec is None:
            if run is None:
                self.model(name)  # raises, with suggestions
            plugin, dist = run.info.get("plugin") or "?", run.info.get("plugin_distribution") or run.info.get("plugin") or "?"
            version = run.info.get("plugin_version") or ""
            where = f"run {str(run.dir)!r} was trained with model {name!r} of plugin {plugin!r} ({dist}{' ' + version if version else ''})"
            info = self.plugin(plugin)
            if info is not None and info.error:
                raise UserError(f"{where}, which failed to load: {info.error}")
            chosen = selected_names()
            if info is None and chosen is not None and not ({plugin, dist} & chosen):
                raise UserError(f"{where}, which {ENV_SELECT} leaves out; add {plugin!r} to it")
            raise UserError(f"{where}, which is not installed; install {dist} to use this run")
        try:
            cls = spec.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a model module that fails to import is the plugin's error
            info = self.plugin(spec.plugin)
            dist = f" ({info.distribution})" if info is not None and info.distribution else ""
            raise UserError(f"model {name!r} of plugin {spec.plugin!r}{dist} failed to load: {describe_error(exc)}") from None
        _fill_from_spec(cls, spec)
        return cls

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


ENV_SELECT = "GENCLI_LOAD_PLUGINS"
CORE_PLUGIN = "core"


def selected_names() -> set[str] | None:
    """Return the plugins ``GENCLI_LOAD_PLUGINS`` selects (entry-point or distribution names), or None for all.

    An empty value selects none but the core's own (built-in datasets and metrics).
    """
    raw = os.environ.get(ENV_SELECT)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _entry_points():
    eps = metadata.entry_points(group=GROUP)
    # The same distribution can be visible twice (e.g. an editable install and a build dir).
    seen, unique = set(), []
    for ep in sorted(eps, key=lambda e: e.name):
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            unique.append(ep)
    return unique


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}) while loading"
    return str(exc) if isinstance(exc, RuntimeError) and str(exc) else f"{type(exc).__name__}: {exc}"


def _call_hook(pm: pluggy.PluginManager, info: PluginInfo, hook: str, *args) -> list:
    """Call one plugin's implementation of ``hook`` through pluggy; a failure breaks only that plugin."""
    caller = getattr(pm.hook, hook)
    results = []
    for impl in caller.get_hookimpls():
        if impl.plugin_name != info.name:
            continue
        try:
            results += list(impl.function(*args) or [])
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a plugin's sys.exit() must not end gencli
            info.error = f"{hook} raised {describe_error(exc)}"
            return []
    return results


def _order(info: PluginInfo) -> tuple[int, str]:
    return (0 if info.builtin else 1, info.name)


def load_registry(extra: list[tuple[str, ModuleType]] | None = None) -> Registry:
    """Discover plugins and collect their contributions. ``extra`` adds in-process plugins."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    loaded: list[PluginInfo] = []
    plugins: list[PluginInfo] = []
    chosen = selected_names()
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist.metadata["Name"] if dist else "",
            version=dist.version if dist else "",
        )
        # the core's own plugin (built-in datasets and metrics) always loads
        is_core = info.name == CORE_PLUGIN and info.distribution == CORE_DISTRIBUTION
        if chosen is not None and not is_core and not ({info.name, info.distribution} & chosen):
            continue
        plugins.append(info)
        try:
            module = ep.load()
            check_api(module)
            pm.register(module, name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - isolate SystemExit and friends too
            info.error = describe_error(exc)
            continue
        loaded.append(info)
    for name, module in extra or []:
        info = PluginInfo(name=name, module=module.__name__)
        plugins.append(info)
        try:
            check_api(module)
            pm.register(module, name=name)
        except Exception as exc:
            info.error = str(exc)
            continue
        loaded.append(info)
    try:
        pm.check_pending()  # a misspelt hook name is an error of that plugin, not silence
    except pluggy.PluginValidationError as exc:
        bad = next((p for p in loaded if p.name == getattr(exc, "plugin_name", None)), None)
        for info in [bad] if bad else loaded:
            info.error = f"implements an unknown hook: {exc}"

    tables: dict[str, dict] = {"models": {}, "datasets": {}, "metrics": {}}
    hooks = {
        "models": ("gencli_register_models", ModelSpec),
        "datasets": ("gencli_register_datasets", DatasetSpec),
        "metrics": ("gencli_register_metrics", MetricSpec),
    }
    for info in sorted(loaded, key=_order):
        if info.error:
            continue
        for table, (hook, spec_type) in hooks.items():
            for spec in _call_hook(pm, info, hook):
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


def _fill_from_spec(cls: type, spec: ModelSpec) -> None:
    """Give a model class the summary and data kind its spec declares, so an author writes them once."""
    for attr in ("summary", "data"):
        if attr not in vars(cls):
            setattr(cls, attr, getattr(spec, attr))


def _with_plugin(spec, plugin: str):
    from dataclasses import replace

    return replace(spec, plugin=plugin)


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    """The process-wide registry, discovered once."""
    return load_registry()
