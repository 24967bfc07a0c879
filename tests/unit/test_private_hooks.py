"""The private parts of JupyterHub and KubeSpawner that tkhub relies on, checked against
the installed releases.

Each is used only where no public API does the job. ``pyproject.toml`` caps each
library at the minor release these tests passed on; when a new release moves a hook,
a test here fails naming it (and what tkhub uses it for) before a user's spawn does.
"""

from __future__ import annotations

import inspect
import re
import types

import jupyterhub.handlers.base
from jupyterhub.spawner import Spawner
from kubespawner import KubeSpawner

from tkhub.kube.spawner import TkKubeSpawner


def _methods_using(cls: type, name: str) -> dict[str, list[str]]:
    """``{method: [source lines]}`` of ``cls`` that mention ``self.<name>``."""
    found: dict[str, list[str]] = {}
    method = ""
    for line in inspect.getsource(cls).splitlines():
        if match := re.match(r"    (?:async )?def (\w+)\(", line):
            method = match.group(1)
        if f"self.{name}" in line:
            found.setdefault(method, []).append(line.strip())
    return found


async def test_kubespawner_start_runs_the_private__start_that_tkkubespawner_wraps():
    """TkKubeSpawner races ``KubeSpawner._start`` against its fail-fast watcher; that
    holds only while ``start`` is the thin wrapper that awaits ``self._start()``."""
    hook = "KubeSpawner._start"
    assert "_start" in vars(KubeSpawner), f"{hook} is gone: TkKubeSpawner._start wraps it"
    assert inspect.iscoroutinefunction(KubeSpawner._start), f"{hook} is no longer async"
    assert list(inspect.signature(KubeSpawner._start).parameters) == ["self"], (
        f"{hook} takes other arguments now: TkKubeSpawner._start passes none"
    )
    assert "_start" in vars(TkKubeSpawner)
    sentinel = ("10.0.0.7", 8888)

    async def _start() -> tuple[str, int]:
        return sentinel

    probe = types.SimpleNamespace(_start=_start)
    assert await KubeSpawner.start(probe) == sentinel, (  # type: ignore[arg-type]
        f"KubeSpawner.start no longer returns what {hook} returns: a server started "
        "through it would skip TkKubeSpawner's fail-fast watcher"
    )


def test_jupyterhub_still_reads__token_authenticated_only_as_the_spawner_expects():
    """``TkSpawner.refresh_sign_in`` calls the public ``BaseHandler.refresh_auth`` from a
    page request; JupyterHub reads ``_token_authenticated`` there but sets it only on
    token-authenticated requests, so tkhub sets it to False when it is missing."""
    hook = "BaseHandler._token_authenticated"
    uses = _methods_using(jupyterhub.handlers.base.BaseHandler, "_token_authenticated")
    assert "refresh_auth" in uses, (
        f"JupyterHub's refresh_auth no longer reads {hook}: drop the default tkhub sets "
        "in TkSpawner.refresh_sign_in"
    )
    setters = {m for m, lines in uses.items() if any(re.search(r"= *(True|False)", s)
                                                     for s in lines)}  # fmt: skip
    assert setters == {"get_current_user_token"}, (
        f"JupyterHub now sets {hook} in {sorted(setters)}: check whether "
        "TkSpawner.refresh_sign_in still needs to set it"
    )


def test_spawner__log_name_is_still_a_property_naming_the_server():
    """tkhub's spawners log as JupyterHub's do, with ``Spawner._log_name``."""
    hook = vars(Spawner).get("_log_name")
    assert isinstance(hook, property), "Spawner._log_name is gone: tkhub's spawners log with it"
    named = types.SimpleNamespace(user=types.SimpleNamespace(name="alice"), name="gpu")
    assert "alice" in hook.fget(named), "Spawner._log_name no longer names the user"  # type: ignore[misc]
