"""Plugin discovery: the ``gencli`` entry-point group, loaded with pluggy.

A plugin's failure stays with it, whatever the failure: it fails to import (even by calling
``sys.exit``), declares an API version this core does not speak, implements a hook that does not
exist or with arguments its spec does not give, raises in a hook, or returns something other than
a list of specs. That plugin is recorded as broken with a one-line error, contributes nothing,
and every other plugin and the core keep working. Hooks are called through pluggy, one plugin at
a time, so each contribution is credited to its plugin. ``GENCLI_LOAD_PLUGINS=name,name`` loads
only those plugins (entry-point or distribution names; empty: none but the core's). No torch here.

While plugin code runs (importing a plugin, calling its hooks), whatever it prints goes to
stderr, so ``--json`` output stays clean; a plugin that takes more than ``SLOW_SECONDS`` to load
is named on stderr, so the user knows which one to leave out with ``GENCLI_LOAD_PLUGINS``.

Name clashes: when two plugins register the same model (or dataset, or metric) name, the one
from the ``gencli`` distribution itself keeps the plain name, otherwise the plugin whose
entry-point name sorts first. Every name is also registered as ``plugin:name``, which always
resolves to that plugin's; a command that lists the clashing kind, or resolves the plain name,
warns naming both plugins and the qualified name of the other.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.metadata as metadata
import os
import sys
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterator

import pluggy

from gencli import API_VERSION, hookspecs
from gencli.errors import UserError, did_you_mean
from gencli.registry import DatasetSpec, LoggerSpec, MetricSpec, ModelSpec

GROUP = "gencli"
CORE_DISTRIBUTION = "gencli"
# A plugin still loading after this many seconds is named on stderr (it may be blocked).
SLOW_SECONDS = 3.0
# Longest error kept for one plugin: `gencli plugins` and one-line errors show it whole.
ERROR_CHARS = 300


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
    loggers: list[str] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.distribution == CORE_DISTRIBUTION


@dataclass(frozen=True)
class Clash:
    """Two plugins registered the same name: ``kept`` has the plain name, ``other`` only ``other:name``."""

    kind: str  # "model", "dataset", "metric", "logger" or "command"
    name: str
    kept: str
    other: str

    def line(self) -> str:
        return (f"{self.kind} {self.name!r} is registered by plugins {self.kept!r} and {self.other!r}; "
                f"{self.name!r} means plugin {self.kept!r}'s, use '{self.other}:{self.name}' for the other")


_warned: set[Clash] = set()


@dataclass
class Registry:
    plugins: list[PluginInfo]
    models: dict[str, ModelSpec]
    datasets: dict[str, DatasetSpec]
    metrics: dict[str, MetricSpec]
    manager: pluggy.PluginManager
    clashes: list[Clash] = field(default_factory=list)
    loggers: dict[str, LoggerSpec] = field(default_factory=dict)

    def warn_clashes(self, kind: str | None = None, name: str | None = None) -> None:
        """Warn, once per process, about the clashes of ``kind`` (all kinds: None), or of the plain ``name`` only."""
        if not self.clashes:
            return  # the usual case: no clash, and no console (rich) to import for a listing or a completion
        from gencli.ui.console import warn

        for clash in self.clashes:
            if (kind is None or clash.kind == kind) and (name is None or clash.name == name) and clash not in _warned:
                _warned.add(clash)
                warn(clash.line())

    def model(self, name: str) -> ModelSpec:
        self.warn_clashes("model", name)
        if name not in self.models:
            broken = self.broken_note()
            if broken:
                plain = [k for k in self.models if ":" not in k]
                raise UserError(f"unknown model {name!r}{did_you_mean(name, plain)}; {broken}")
        return _lookup(self.models, name, "model", "gencli models")

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)

    def broken_note(self) -> str:
        """Return a one-line clause naming the plugins that failed to load ('' when none did)."""
        broken = [p for p in self.plugins if p.error]
        if len(broken) > 2:
            names = ", ".join(f"{p.name!r} ({p.distribution or 'no distribution'})" for p in broken)
            return f"plugins {names} failed to load; `gencli plugins` shows why"
        return "; ".join(f"plugin {p.name!r} ({p.distribution or 'no distribution'}) failed to load: {p.error}"
                         for p in broken)

    def model_class(self, name: str, run=None) -> type:
        """Return the Model subclass registered as ``name``; one line naming the plugin when it cannot load.

        With ``run`` (a ``gencli.runs.Run``), a model whose plugin is not installed, not selected
        or broken is reported with the plugin and distribution the run was trained with.
        """
        self.warn_clashes("model", name)
        spec = self.models.get(name)
        if spec is None:
            if run is None:
                self.model(name)  # raises, with suggestions
            plugin, dist = run.plugin or "?", run.plugin_distribution or run.plugin or "?"
            version = run.plugin_version or ""
            where = f"run {str(run.dir)!r} was trained with model {name!r} of plugin {plugin!r} ({dist}{' ' + version if version else ''})"
            info = self.plugin(plugin)
            if info is not None and info.error:
                raise UserError(f"{where}, which failed to load: {info.error}")
            chosen = selected_names()
            if info is None and chosen is not None and not ({plugin, dist} & chosen):
                raise UserError(f"{where}, which {ENV_SELECT} leaves out; add {plugin!r} to it")
            raise UserError(f"{where}, which is not installed; install {dist} to use this run")
        try:
            with contextlib.redirect_stdout(sys.stderr):  # a model module's prints never reach --json output
                cls = spec.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a model module that fails to import is the plugin's error
            info = self.plugin(spec.plugin)
            dist = f" ({info.distribution})" if info is not None and info.distribution else ""
            raise UserError(f"model {name!r} of plugin {spec.plugin!r}{dist} failed to load: {describe_error(exc)}") from None
        _fill_from_spec(cls, spec)
        return cls

    def model_declarations(self, name: str) -> type:
        """Return what model ``name`` declares (hyperparameters, options, figures, defaults, capabilities).

        From its spec's light ``declarations`` class when it names one (no torch, no networks), else
        from the model class itself (a plugin that declares everything beside its networks: slower).
        """
        spec = self.model(name)
        if not spec.declarations:
            return self.model_class(name)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                declared = spec.load_declarations()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - as for the model class: the plugin's error
            info = self.plugin(spec.plugin)
            dist = f" ({info.distribution})" if info is not None and info.distribution else ""
            raise UserError(f"the declarations of model {name!r} of plugin {spec.plugin!r}{dist} failed to load: "
                            f"{describe_error(exc)}") from None
        return declared

    def dataset(self, name: str) -> DatasetSpec:
        self.warn_clashes("dataset", name)
        return _lookup(self.datasets, name, "dataset", "gencli datasets")

    def metric(self, name: str) -> MetricSpec:
        self.warn_clashes("metric", name)
        return _lookup(self.metrics, name, "metric", "gencli eval --help")

    def logger(self, name: str) -> LoggerSpec:
        """Return the logger (experiment tracker) registered as ``name``; one line listing the known ones if none is."""
        self.warn_clashes("logger", name)
        if name not in self.loggers:
            plain = [k for k in self.loggers if ":" not in k]
            raise UserError(f"unknown logger {name!r}{did_you_mean(name, plain)}; the loggers are: {', '.join(plain) or 'none'}")
        return self.loggers[name]


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


def one_line(text: str) -> str:
    """Return ``text`` on one line, cut to ``ERROR_CHARS``: a plugin's error never spreads over the terminal."""
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 3] + "..."


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}) while loading"
    return one_line(str(exc) if isinstance(exc, RuntimeError) and str(exc) else f"{type(exc).__name__}: {exc}")


class PluginFault(Exception):
    """What is wrong with one plugin; it marks that plugin broken and no other."""


@contextlib.contextmanager
def running_plugin(info: PluginInfo, doing: str) -> Iterator[None]:
    """Run plugin code with its prints sent to stderr, naming the plugin on stderr if it takes long."""
    def slow() -> None:
        dist = f" ({info.distribution})" if info.distribution else ""
        sys.stderr.write(f"warning: still {doing} plugin {info.name!r}{dist} after {SLOW_SECONDS:g} s; if it hangs, "
                             f"leave it out: {ENV_SELECT}=NAME,NAME lists the plugins to load (`gencli plugins` names them)\n")
        sys.stderr.flush()

    timer = threading.Timer(SLOW_SECONDS, slow)
    timer.daemon = True
    timer.start()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        timer.cancel()


HOOKS = {  # the registering hooks: table -> (hook, spec type, kind)
    "models": ("gencli_register_models", ModelSpec, "model"),
    "datasets": ("gencli_register_datasets", DatasetSpec, "dataset"),
    "metrics": ("gencli_register_metrics", MetricSpec, "metric"),
    "loggers": ("gencli_register_loggers", LoggerSpec, "logger"),
}


def hook_names() -> list[str]:
    return sorted(n for n in vars(hookspecs) if n.startswith("gencli_") and callable(getattr(hookspecs, n)))


def register(pm: pluggy.PluginManager, module: ModuleType, name: str) -> None:
    """Register a plugin module with ``pm``, or raise ``PluginFault`` saying what is wrong (leaving ``pm`` as it was).

    The module must declare an API version this core speaks, mark its hooks with ``@hookimpl``,
    implement only hooks that exist, and take only the arguments their specs give.
    """
    try:
        check_api(module)
    except RuntimeError as exc:
        raise PluginFault(str(exc)) from None
    known = hook_names()
    for attr in known:
        value = getattr(module, attr, None)
        if callable(value) and pm.parse_hookimpl_opts(module, attr) is None:
            raise PluginFault(f"{attr} is not marked as a hook implementation: decorate it with @hookimpl "
                              "(from gencli import hookimpl)")
    try:
        pm.register(module, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginFault(_validation_message(exc)) from None
    except ValueError as exc:  # the same module under two entry points
        raise PluginFault(one_line(str(exc)).split(":")[0]) from None
    for caller in pm.get_hookcallers(module) or []:
        if not caller.has_spec():
            pm.unregister(module)
            close = difflib.get_close_matches(caller.name, known, n=1, cutoff=0.6)
            raise PluginFault(f"implements {caller.name}, which is no gencli hook; "
                              + (f"did you mean {close[0]!r}?" if close else f"the hooks are {', '.join(known)}"))


def _validation_message(exc: pluggy.PluginValidationError) -> str:
    """pluggy's error about a hook implementation, said in one line with the spec's arguments."""
    text = " ".join(str(exc).split())
    for hook in hook_names():
        if hook in text:
            import inspect

            wanted = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters) or "no arguments"
            return one_line(f"{hook} takes arguments its spec does not give (the spec gives: {wanted}): {text}")
    return one_line(text)


def _call_hook(pm: pluggy.PluginManager, info: PluginInfo, hook: str, spec_type: type | None = None, *args) -> list:
    """Call one plugin's implementation of ``hook`` through pluggy; raise ``PluginFault`` on any failure.

    With ``spec_type``, the hook must return a list (or tuple, or None) of that type's specs
    with distinct names that are command-line words.
    """
    caller = getattr(pm.hook, hook)
    results: list = []
    for impl in caller.get_hookimpls():
        if impl.plugin_name != info.name:
            continue
        try:
            with running_plugin(info, f"calling {hook} of"):
                returned = impl.function(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a plugin's sys.exit() must not end gencli
            if isinstance(exc, SystemExit):
                raise PluginFault(f"{hook} called sys.exit({exc.code!r})") from None
            raise PluginFault(f"{hook} raised {describe_error(exc)}") from None
        if spec_type is None:
            continue
        expected = f"a list of {spec_type.__name__}"
        if returned is None:
            continue
        if not isinstance(returned, (list, tuple)):
            raise PluginFault(f"{hook} returned {type(returned).__name__}, expected {expected}")
        for spec in returned:
            if not isinstance(spec, spec_type):
                raise PluginFault(f"{hook} returned a list holding {type(spec).__name__}, expected {expected}")
            if not isinstance(spec.name, str) or not spec.name or spec.name != "".join(spec.name.split()) or ":" in spec.name:
                raise PluginFault(f"{hook} returned the name {spec.name!r}; a name is one word without spaces or ':'")
            if any(spec.name == other.name for other in results):
                raise PluginFault(f"{hook} returned the name {spec.name!r} twice")
            results.append(spec)
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
    candidates: list[tuple[PluginInfo, object]] = []
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
        candidates.append((info, ep))
    for name, module in extra or []:
        candidates.append((PluginInfo(name=name, module=module.__name__), module))
    for info, source in candidates:
        plugins.append(info)
        try:
            if isinstance(source, ModuleType):
                module = source
            else:
                with running_plugin(info, "importing"):
                    module = source.load()
                if not isinstance(module, ModuleType):
                    raise PluginFault(f"the entry point names {type(module).__name__}, not a module")
            register(pm, module, info.name)
        except KeyboardInterrupt:
            raise
        except PluginFault as exc:
            info.error = one_line(str(exc))
            continue
        except BaseException as exc:  # noqa: BLE001 - isolate SystemExit and friends too
            info.error = describe_error(exc)
            continue
        loaded.append(info)

    tables: dict[str, dict] = {table: {} for table in HOOKS}
    clashes: list[Clash] = []
    for info in sorted(loaded, key=_order):
        try:
            found = {table: _call_hook(pm, info, hook, spec_type) for table, (hook, spec_type, _) in HOOKS.items()}
        except PluginFault as exc:  # a plugin contributes all its specs or none
            info.error = one_line(str(exc))
            continue
        for table, specs in found.items():
            kind = HOOKS[table][2]
            target = tables[table]
            for spec in specs:
                spec = _with_plugin(spec, info.name)
                target[f"{info.name}:{spec.name}"] = spec
                if spec.name in target:
                    kept = target[spec.name].plugin
                    info.shadowed.append(f"{kind} {spec.name!r} (kept from plugin {kept!r}; use '{info.name}:{spec.name}')")
                    clashes.append(Clash(kind, spec.name, kept, info.name))
                else:
                    target[spec.name] = spec
                    getattr(info, table).append(spec.name)
    return Registry(plugins, tables["models"], tables["datasets"], tables["metrics"], pm, clashes,
                    loggers=tables["loggers"])


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
