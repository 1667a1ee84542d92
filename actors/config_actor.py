"""ConfigActor: the one authority over the effective configuration of a deployment.

It reads the file (`CB_CONFIG`), lays the operators' recorded changes over it, and hands
out versioned snapshots. Ingress replicas poll it about every second or two, tenant actors
every few seconds; running tenant actors are told of a change at once (they then ask), and
provider actors are told of their own changes. A change or reload that would
leave the configuration invalid is refused with every problem and its path; the running
configuration stays as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import ray
import yaml
from eventsourcing.application import AggregateNotFoundError

from actors import metrics, names
from actors.event_store import AsyncEventStore
from actors.log_setup import configure_logging
from actors.replies import replies, unwrap
from actors.settings import Settings
from domain.config import endpoint_data, parse_config
from domain.config_check import config_problems
from domain.errors import InvalidRequest, NotFound
from domain.platform_config import PlatformConfig, config_id, overlay

log = logging.getLogger(__name__)


@ray.remote
class ConfigActor:
    def __init__(self, settings: Settings) -> None:
        configure_logging(settings, "config")
        self.settings = settings
        self.store = AsyncEventStore(settings, threads=1)
        self.epoch = secrets.token_hex(4)  # versions of an earlier incarnation never match
        self.serial = 0
        self.base: dict[str, Any] = {}
        self.digest = ""
        self.recorded: PlatformConfig | None = None  # the operators' recorded overrides
        self.data: dict[str, Any] = {}
        self.lock = asyncio.Lock()
        self.telling: asyncio.Task[None] | None = None  # tenant actors hear of a change
        metrics.start(settings, "config")

    @property
    def version(self) -> str:
        return f"{self.epoch}:{self.serial}"

    async def _load(self) -> PlatformConfig:
        """The recorded overrides, and the effective configuration laid from them."""
        if self.recorded is not None:
            return self.recorded
        self.base, self.digest = _read(self.settings.config_path)
        try:
            recorded = await self.store.run(
                self.store.app.repository.get, config_id(self.settings.instance)
            )
        except AggregateNotFoundError:
            recorded = PlatformConfig(id=config_id(self.settings.instance))
        data = overlay(self.base, recorded.virtual_models, recorded.providers, recorded.ingress)
        # overrides that no longer fit the file are left out rather than refusing to serve
        self.data = data if not config_problems(data) else self.base
        self.recorded = recorded
        self.serial += 1
        return recorded

    async def _change(
        self,
        record: Callable[[PlatformConfig], None],
        *,
        base: dict[str, Any] | None = None,
        virtual_models: dict[str, Any] | None = None,
        providers: dict[str, Any] | None = None,
        ingress: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Lay the changed overrides over the file; if the result is valid, record the
        change and serve the result (else refuse with every problem, changing nothing).
        Called under the lock, after `_load`."""
        recorded = self.recorded
        assert recorded is not None
        candidate = _checked(
            overlay(
                self.base if base is None else base,
                recorded.virtual_models if virtual_models is None else virtual_models,
                recorded.providers if providers is None else providers,
                recorded.ingress if ingress is None else ingress,
            )
        )
        record(recorded)
        await self.store.save(recorded)
        self.data = candidate
        self.serial += 1
        self.telling = asyncio.get_running_loop().create_task(asyncio.to_thread(self._tell_tenants))
        self.telling.add_done_callback(_log_failure)
        return candidate

    def _tell_tenants(self) -> None:
        """Tell the running tenant actors that a newer configuration exists (on a thread:
        finding each actor is a call to Ray's control store)."""
        prefix = names.tenant_actor_name(self.settings, "")
        for name in names.instance_actor_names(self.settings):
            tenant = names.existing(name) if name.startswith(prefix) else None
            if tenant is not None:
                tenant.config_changed.remote()

    @replies
    async def snapshot(self, known: str | None = None) -> dict[str, Any] | None:
        """The effective configuration, or None when the caller's `known` version is current."""
        await self._load()
        if known == self.version:
            return None
        return {"version": self.version, "data": self.data}

    @replies
    async def describe(self) -> dict[str, Any]:
        """Version, file digest and the operators' overrides (for GET /api/v1/admin/config)."""
        recorded = await self._load()
        return {
            "version": self.version,
            "file": self.settings.config_path,
            "file_sha256": self.digest,
            "virtual_model_overrides": recorded.virtual_models,
            "provider_overrides": recorded.providers,
            "ingress_overrides": recorded.ingress,
            "ingress": self.data.get("ingress", {}),
            "virtual_models": self.data.get("virtual_models", {}),
        }

    @replies
    async def set_virtual_model(
        self, name: str, definition: dict[str, Any], by: str
    ) -> dict[str, Any]:
        async with self.lock:
            recorded = await self._load()
            await self._change(
                lambda r: r.set_virtual_model(name, definition, by),
                virtual_models={**recorded.virtual_models, name: definition},
            )
            return {"name": name, **definition, "version": self.version}

    @replies
    async def remove_virtual_model(self, name: str, by: str) -> dict[str, Any]:
        async with self.lock:
            recorded = await self._load()
            if name not in self.data.get("virtual_models", {}):
                raise NotFound(f"virtual model {name!r} does not exist")
            await self._change(
                lambda r: r.remove_virtual_model(name, by),
                virtual_models={**recorded.virtual_models, name: None},
            )
            return {"name": name, "removed": True, "version": self.version}

    @replies
    async def set_provider(self, name: str, changes: dict[str, Any], by: str) -> dict[str, Any]:
        async with self.lock:
            recorded = await self._load()
            if name not in self.base.get("providers", {}):
                raise NotFound(f"provider {name!r} is not in the configuration file")
            if "type" in changes:
                raise InvalidRequest(f"providers.{name}.type: cannot change at runtime")
            own = {**recorded.providers.get(name, {}), **changes}
            await self._change(
                lambda r: r.set_provider_settings(name, changes, by),
                providers={**recorded.providers, name: own},
            )
            self._push_provider(name)
            return {"name": name, **self.data["providers"][name], "version": self.version}

    @replies
    async def set_ingress(self, changes: dict[str, Any], by: str) -> dict[str, Any]:
        """Change every ingress replica's overload limits (they poll within seconds)."""
        async with self.lock:
            recorded = await self._load()
            candidate = await self._change(
                lambda r: r.set_ingress(changes, by), ingress={**recorded.ingress, **changes}
            )
            return {**parse_config(candidate).ingress.model_dump(), "version": self.version}

    @replies
    async def reload(self, by: str) -> dict[str, Any]:
        """Read the file again; a file that fails validation changes nothing."""
        async with self.lock:
            await self._load()
            try:
                base, digest = _read(self.settings.config_path)
            except (OSError, yaml.YAMLError) as exc:
                raise InvalidRequest(f"cannot read {self.settings.config_path}: {exc}") from None
            changed = digest != self.digest
            await self._change(lambda r: r.file_reloaded(digest, by), base=base)
            self.base, self.digest = base, digest
            for provider in self.data.get("providers", {}):
                self._push_provider(provider)
            return {"version": self.version, "file_sha256": digest, "changed": changed}

    def _push_provider(self, name: str) -> None:
        """Tell the provider's running actors (one per endpoint) of their new settings; one
        not running reads them at start."""
        providers = self.data["providers"]
        shared = providers.get(name) or {}
        keys = [name] + [f"{name}:{e.get('name')}" for e in shared.get("endpoints") or ()]
        for key in keys:
            provider = names.existing(names.provider_actor_name(self.settings, key))
            found = endpoint_data(providers, key)
            if provider is not None and found is not None:
                provider.reconfigure.remote(found)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("telling tenant actors of a configuration change failed: %r", task.exception())


def current_config(settings: Settings) -> dict[str, Any]:
    """The effective configuration now, blocking (for constructors, which cannot await)."""
    return unwrap(ray.get(handle(settings).snapshot.remote(None)))


def handle(settings: Settings) -> Any:
    """The deployment's config actor, started if none runs."""
    return names.get_or_create(names.config_actor_name(settings), ConfigActor, settings)


def _checked(candidate: dict[str, Any]) -> dict[str, Any]:
    """`candidate` if it is a valid configuration, else a refusal listing every problem."""
    problems = config_problems(candidate)
    if problems:
        raise InvalidRequest(
            f"the configuration would be invalid: {problems[0]}",
            details={"problems": problems},
        )
    parse_config(candidate)  # a guard: config_problems found nothing, so this passes
    return candidate


def _read(path: str) -> tuple[dict[str, Any], str]:
    with open(path, "rb") as fh:
        raw = fh.read()
    data = yaml.safe_load(raw) or {}
    if not isinstance(data, dict):
        raise yaml.YAMLError("the top level must be a mapping")
    return data, hashlib.sha256(raw).hexdigest()
