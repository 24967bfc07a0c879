"""What both tkhub spawners share: the catalog, the spawn page and the selection.

``TkSpawnerMixin`` goes before the JupyterHub spawner class it extends::

    class LocalSpawner(TkSpawnerMixin, LocalProcessSpawner): ...
    class TkKubeSpawner(TkSpawnerMixin, KubeSpawner): ...

One request, one parse. The spawn page reads the catalog and the inventory once
(``spawn_choices``) and renders them. A form submit or a launch link reads them once
more, parses the request into a ``Selection`` and keeps it in ``self.selection`` for
the start that follows; the start only re-checks its placement against availability
as it is then. A REST body (or a restart after the hub restarted) reaches ``start``
with no selection kept, and is parsed there, by the same function. Each spawner
implements ``apply_selection(selection, inventory)``.

A catalog that does not answer within ``catalog_timeout`` ends the spawn (and the
page) at once with a message: there is no fallback list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.orm import object_session
from tornado.httputil import url_concat
from tornado.web import Finish
from traitlets import Dict, Float, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from tkhub.catalog.client import CatalogClient
from tkhub.errors import TkhubError
from tkhub.gpu.model import Inventory
from tkhub.selection import (
    Selection,
    SelectionError,
    SpawnChoices,
    normalize_params,
    parse_selection,
    recheck_placement,
    spawn_choices,
)
from tkhub.services import services_for
from tkhub.settings import ServiceBase, services_problem
from tkhub.spawnpage.http_errors import SpawnPageUnavailable, checked_selection, refusal
from tkhub.spawnpage.render import render_options_form, render_unavailable


def user_access(user: Any) -> tuple[set[str], bool]:
    """The user's group names and whether they are an admin."""
    groups = {str(getattr(g, "name", g)) for g in (getattr(user, "groups", None) or [])}
    return groups, bool(getattr(user, "admin", False))


def catalog_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the catalog's base URL, or None."""
    if not url:
        return "not set; give the URL of the tkhub catalog service"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{url!r} is not an http(s) URL of the tkhub catalog service"
    return None


class TkSpawnerMixin(LoggingConfigurable):
    """Catalog-backed environments and GPU placement for a JupyterHub spawner."""

    # Provided by the JupyterHub Spawner this mixin is combined with.
    user: Any
    user_options: dict[str, Any]
    orm_spawner: Any
    _log_name: str

    catalog_url = Unicode(
        config=True,
        help="""
        Base URL of the tkhub image catalog service (without ``/api/v1``).

            c.LocalSpawner.catalog_url = "http://127.0.0.1:8011"
        """,
    )

    catalog_token = Unicode(
        config=True,
        help="""
        A JupyterHub API token the spawner presents to the catalog (any valid hub
        token may read it; the catalog service's own token is the usual choice).
        """,
    )

    catalog_timeout = Float(
        5.0,
        config=True,
        help="""
        Seconds to wait for the catalog. When it does not answer in time, the spawn
        page and the spawn fail at once with a message that says so.
        """,
    )

    platform_services = List(
        Dict(),
        config=True,
        help="""
        Platform services every server of a user in the service's groups is told about,
        through environment variables (kernels and terminals see them)::

            c.LocalSpawner.platform_services = [{
                "name": "MLflow",
                "url": "http://127.0.0.1:5000",
                "env": {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"},
                "secrets": {"MLFLOW_TRACKING_TOKEN": "/etc/tkhub/mlflow-token"},
                "groups": [],
            }]

        ``secrets`` maps a variable to where its value is: a 0600 file on one machine,
        ``{"name": SECRET, "key": KEY}`` of a Kubernetes Secret in a cluster. tkhub's
        settings (``services:``) and cluster file fill this in.
        """,
    )

    jobs_url = Unicode(
        "",
        config=True,
        help="""
        The jobs service as servers reach it, given to them as ``TKHUB_JOBS_URL`` so
        that ``tkhub jobs`` works in a terminal with the server's own token.
        """,
    )

    #: How this spawner's ``platform_services`` say where secrets are.
    service_model: type[ServiceBase] = ServiceBase

    @validate("platform_services")
    def _valid_platform_services(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        parsed = []
        for index, item in enumerate(proposal["value"]):
            try:
                parsed.append(self.service_model.model_validate(item))
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise TraitError(
                    f"{self._config_name()}.platform_services[{index}]"
                    f"{'.' + where if where else ''}: {first['msg']}"
                ) from None
        problem = services_problem(parsed)
        if problem:
            raise TraitError(f"{self._config_name()}.platform_services: {problem}")
        return [service.model_dump(mode="json") for service in parsed]

    @validate("catalog_url")
    def _valid_catalog_url(self, proposal: dict[str, Any]) -> str:
        url = str(proposal["value"]).strip()
        problem = catalog_url_problem(url)
        if problem:
            raise TraitError(f"{self._config_name()}.catalog_url: {problem}")
        return url.rstrip("/")

    @validate("catalog_timeout")
    def _valid_catalog_timeout(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] <= 0:
            raise TraitError(f"{self._config_name()}.catalog_timeout: must be more than 0")
        return float(proposal["value"])

    def check_config(self) -> None:
        """Refuse, naming the trait, configuration no spawn could work with.

        Traits are validated as they are set; this also catches a required one left
        at its empty default. tkhub's hub configuration runs it when the hub starts.
        """
        problem = catalog_url_problem(self.catalog_url)
        if problem:
            raise TraitError(f"{self._config_name()}.catalog_url: {problem}")

    def _config_name(self) -> str:
        """The tkhub spawner class a site configures (``LocalSpawner``, ``TkKubeSpawner``)."""
        ours = (c for c in type(self).__mro__ if c.__module__.startswith("tkhub."))
        return next((c.__name__ for c in ours if c is not TkSpawnerMixin), type(self).__name__)

    @default("options_form")
    def _options_form_default(self) -> Any:
        return TkSpawnerMixin.render_spawn_page

    #: The selection the last form or link submit made, and the options it was parsed
    #: from (what JupyterHub then passes to the start as ``user_options``).
    selection: Selection | None = None
    selection_options: dict[str, list[str]] | None = None
    #: A refused submission's params, preselected once when the form is shown again.
    refused_options: dict[str, list[str]] | None = None

    # --- data the page and the spawn are built from ------------------------------

    async def fetch_catalog(self) -> list[Any]:
        """Every catalog entry; ``CatalogUnavailable`` if the catalog does not answer."""
        async with CatalogClient(
            self.catalog_url, self.catalog_token, timeout=self.catalog_timeout
        ) as client:
            return await client.list_images()

    async def fetch_inventory(self) -> Inventory:
        """GPUs and what is free; each spawner reads its own (NVML or the cluster)."""
        raise NotImplementedError

    async def inventory_for_start(self) -> Inventory:
        """The inventory a start is checked against (by default, fresh availability).

        A spawner whose ``apply_selection`` books GPUs atomically overrides this to
        leave availability to that booking, which says exactly what was taken.
        """
        return await self.fetch_inventory()

    async def apply_selection(self, selection: Selection, inventory: Inventory) -> None:
        """Set this spawner up (command or image, resources, GPUs) for ``selection``."""
        raise NotImplementedError

    async def spawn_choices(self, inventory: Inventory | None = None) -> SpawnChoices:
        """What this user may pick now: one catalog read, one inventory read."""
        entries = await self.fetch_catalog()
        if inventory is None:
            inventory = await self.fetch_inventory()
        groups, admin = user_access(self.user)
        return spawn_choices(entries, inventory, user_groups=groups, admin=admin)

    # --- the spawn page: form and launch links -------------------------------------

    def last_options(self) -> dict[str, Any]:
        """The user's last selection: JupyterHub stores ``user_options`` in its database."""
        saved = getattr(self.orm_spawner, "user_options", None) or self.user_options
        return dict(saved or {})

    async def refresh_sign_in(self) -> None:
        """With a provider's sign-in (its tokens kept as auth state), read the user's
        tokens and groups again before the page is built: a group changed at the
        provider decides this page's cards, without signing out and in."""
        handler = getattr(self, "handler", None)
        authenticator = getattr(self, "authenticator", None)
        if handler is None or not getattr(authenticator, "enable_auth_state", False):
            return
        # JupyterHub sets this only on token-authenticated requests, yet reads it when a
        # refresh fails; a page request is cookie-authenticated
        if not hasattr(handler, "_token_authenticated"):
            handler._token_authenticated = False
        refreshed = await handler.refresh_auth(self.user, force=True)
        if refreshed is None:  # the provider's session ended: sign in again, then back
            self.log.info("sign-in of %s expired at the provider; signing in again",
                          self._log_name)  # fmt: skip
            handler.clear_login_cookie()
            handler.redirect(url_concat(handler.get_login_url(), {"next": handler.request.uri}))
            raise Finish()

    async def render_spawn_page(self) -> str:
        """The spawn form for this user now (JupyterHub calls it as ``options_form``)."""
        await self.refresh_sign_in()
        previous, self.refused_options = self.refused_options, None
        try:
            choices = await self.spawn_choices()
        except TkhubError as e:
            self.log.warning("spawn form for %s: %s", self._log_name, e)
            return render_unavailable(e.user_message)
        return render_options_form(
            choices,
            previous or self.last_options(),
            user_name=str(self.user.name),
            admin_hint=self.admin_hint(choices) if user_access(self.user)[1] else "",
            services=[service.name for service in self.user_services()],
        )

    # --- platform services ---------------------------------------------------------------

    def user_services(self) -> list[ServiceBase]:
        """The platform services this user's servers get (by the services' groups)."""
        configured = [self.service_model.model_validate(s) for s in self.platform_services]
        return services_for(configured, user_access(self.user)[0])

    def secret_environment(self, service: ServiceBase) -> dict[str, Any]:
        """The service's secret variables as this spawner passes them on."""
        raise NotImplementedError

    def service_environment(self) -> dict[str, Any]:
        """Every variable of this user's services, secrets as ``secret_environment`` gives them."""
        env: dict[str, Any] = {"TKHUB_JOBS_URL": self.jobs_url} if self.jobs_url else {}
        for service in self.user_services():
            env.update(service.env)
            env.update(self.secret_environment(service))
        return env

    def admin_hint(self, choices: SpawnChoices) -> str:
        """A line for admins under the cards (how to add environments); none by default."""
        return ""

    async def select(self, raw: dict[str, Any], *, link: bool) -> dict[str, list[str]]:
        """Parse a form submit or launch link into ``self.selection``; return the options.

        Raises ``BadSelection`` (400/403) or ``SpawnPageUnavailable`` (503) before
        anything spawns; refused params are preselected when the form is shown again.
        """
        params = normalize_params(raw)
        self.selection, self.selection_options = None, None
        self.refused_options = params
        try:
            choices = await self.spawn_choices()
        except TkhubError as e:
            raise SpawnPageUnavailable(e.user_message) from e
        self.selection = checked_selection(params, choices, link=link)
        self.selection_options, self.refused_options = params, None
        return params

    async def options_from_form(self, formdata: dict[str, Any]) -> dict[str, Any]:
        return await self.select(formdata, link=False)

    async def options_from_query(self, query: dict[str, Any]) -> dict[str, Any]:
        return await self.select(query, link=True)

    # --- start ------------------------------------------------------------------------

    async def selection_for_start(self, inventory: Inventory) -> Selection:
        """The selection to start, checked against availability as it is now.

        Kept from this request's submit: only its placement is checked again (a GPU
        may have been taken since). Otherwise (a REST body, or ``user_options`` saved
        before a hub restart) it is parsed here, strictly: unknown keys are refused.
        """
        kept, kept_options = self.selection, self.selection_options
        self.selection = self.selection_options = None
        try:
            if kept is not None and kept_options == self.user_options:
                selection = recheck_placement(kept, inventory)
            else:
                params = normalize_params(self.user_options or {}, strict=True)
                selection = parse_selection(params, await self.spawn_choices(inventory))
        except SelectionError as e:
            self._forget_refused_options()
            raise refusal(e) from e
        self._accepted_options = dict(self.user_options or {})
        return selection

    _accepted_options: dict[str, Any] | None = None  # of the last start whose selection held

    def _forget_refused_options(self) -> None:
        """JupyterHub saves a start's options as the user's defaults before the start
        runs; a refused selection must not become them, or every later start without
        options (an empty REST body, the admin panel's start button) is refused too.
        The last accepted options come back, or none after a hub restart."""
        refused = dict(self.user_options or {})
        restored = dict(self._accepted_options or {})
        if restored == refused:  # accepted once, refused now (e.g. an image since removed)
            restored = {}
        self.user_options = restored
        orm = getattr(self, "orm_spawner", None)
        if orm is not None:
            orm.user_options = restored
            session = object_session(orm)
            if session is not None:
                session.commit()

    async def start(self) -> Any:
        inventory = await self.inventory_for_start()
        selection = await self.selection_for_start(inventory)
        await self.apply_selection(selection, inventory)
        return await super().start()  # type: ignore[misc]
