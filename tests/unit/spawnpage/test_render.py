"""Server-side rendering of the spawn form, read back with an HTML parser."""

from __future__ import annotations

import json

from form_data import User, many_entries, many_nodes, render
from form_data import check as check_params

from tkhub.spawnpage.render import render_unavailable


def checked(soup, name):
    box = soup.select_one(f'input[name="{name}"][checked]')
    return box["value"] if box else None


def submitted(soup) -> dict[str, list[str]]:
    """What a browser submits for the form as rendered (no JavaScript)."""
    params = {name: [checked(soup, name)] for name in ("image", "gpu", "size")}
    params["count"] = [soup.select_one("#tk-count")["value"]]
    return {k: v for k, v in params.items() if v != [None]}


def test_cards_show_visible_entries_with_badges_and_packages(entries, local_inv, parse):
    soup = parse(render(entries, local_inv))
    names = [i["value"] for i in soup.select('input[name="image"]')]
    assert names == ["base", "torch", "plain"]  # hidden and other groups' not shown
    torch = soup.select_one('label[for="tk-image-torch"]')
    assert torch.select_one(".card-title").get_text() == "PyTorch <CUDA>"
    assert "GPU required" in torch.get_text()
    pkgs = [b.get_text() for b in torch.select(".tk-pkg")]
    assert pkgs == ["torch", "cuda", "numpy", "pandas", "jupyterlab", "triton", "+1"]
    assert "CPU only" in soup.select_one('label[for="tk-image-plain"]').get_text()


def test_markup_is_escaped(entries, local_inv):
    html = render(entries, local_inv)
    assert "PyTorch &lt;CUDA&gt;" in html and "PyTorch <CUDA>" not in html


def test_group_members_and_admins_see_group_entries(entries, local_inv, parse):
    from form_data import Group

    member = parse(render(entries, local_inv, user=User(groups=[Group("ml")])))
    admin = parse(render(entries, local_inv, user=User(admin=True)))
    for soup in (member, admin):
        names = [i["value"] for i in soup.select('input[name="image"]')]
        assert "team" in names and "secret" not in names


def test_default_is_preselected_and_a_free_gpu_suggested(entries, local_inv, parse):
    soup = parse(render(entries, local_inv))
    assert checked(soup, "image") == "base"
    assert checked(soup, "gpu") == "auto"
    assert checked(soup, "size") == "full"


def test_last_selection_is_preselected(entries, local_inv, parse):
    last = {"image": ["torch"], "gpu": ["device:0"], "count": ["1"], "size": ["half"]}
    soup = parse(render(entries, local_inv, selected=last))
    assert checked(soup, "image") == "torch"
    assert checked(soup, "gpu") == "device:0"
    assert checked(soup, "size") == "half"
    assert soup.select_one("#tk-notice") is None


def test_remembered_placement_in_use_falls_back_with_a_note(entries, local_inv, parse):
    soup = parse(render(entries, local_inv, selected={"image": "torch", "gpu": "device:1"}))
    assert checked(soup, "gpu") == "auto"
    notice = soup.select_one("#tk-notice").get_text()
    assert "GPU 1" in notice and "in use by bob/" in notice


def test_local_placements_show_free_total_and_reasons(entries, local_inv, parse):
    soup = parse(render(entries, local_inv))
    rows = {i["value"]: i for i in soup.select('input[name="gpu"]')}
    assert list(rows) == ["none", "auto", "model:NVIDIA H100 80GB HBM3", "device:0", "device:1"]
    busy = rows["device:1"]
    assert busy.has_attr("disabled")
    why = soup.select_one("#" + busy["aria-describedby"])
    assert why.get_text() == "GPU 1 is in use by bob/"
    auto_label = soup.select_one(f'label[for="{rows["auto"]["id"]}"]').get_text(" ", strip=True)
    assert "Any free GPU" in auto_label and "1/2 free" in auto_label
    assert not rows["device:0"].has_attr("disabled")


def test_cluster_placements_by_model_and_node(entries, cluster_inv, parse):
    soup = parse(render(entries, cluster_inv))
    rows = {i["value"]: i for i in soup.select('input[name="gpu"]')}
    assert {"node:node-b", "node:node-c", "node:node-d", "model:NVIDIA-A100"} <= set(rows)
    reason = soup.select_one("#" + rows["node:node-b"]["aria-describedby"]).get_text()
    assert reason == "all 2 NVIDIA-H100 on node-b are in use"
    reason = soup.select_one("#" + rows["node:node-d"]["aria-describedby"]).get_text()
    assert reason == "node-d is cordoned"
    assert rows["node:node-c"]["data-max"] == "3"
    headings = [h.get_text() for h in soup.select("h3.tk-group")]
    assert headings == ["By GPU model", "On a node"]


def test_offers_tell_the_script_what_each_environment_can_use(entries, cluster_inv, parse):
    soup = parse(render(entries, cluster_inv))
    offers = json.loads(soup.select_one("#tk-spawn")["data-offers"])
    by_card = {i["value"]: offers[i["data-offers"]] for i in soup.select('input[name="image"]')}
    assert by_card["plain"] == ["none"]
    assert "none" not in by_card["torch"] and "auto" in by_card["torch"]
    assert by_card["base"][0] == "none"


def test_sizes_follow_the_entry_limits(entries, local_inv, parse):
    soup = parse(render(entries, local_inv))
    torch = soup.select_one("#tk-image-torch")
    assert json.loads(torch["data-sizes"]) == {
        "full": "8 CPU · 32 GiB",
        "half": "4 CPU · 16 GiB",
        "quarter": "2 CPU · 8 GiB",
    }
    assert json.loads(soup.select_one("#tk-image-base")["data-sizes"]) == {}


def test_every_control_is_labelled_and_grouped(many, parse):
    entries, inventory = many
    soup = parse(render(entries, inventory))
    inputs = soup.select("input")
    ids = [i["id"] for i in inputs]
    assert len(ids) == len(set(ids))
    for box in inputs:
        if box.get("type") == "search":
            assert box.has_attr("aria-label")
        else:
            assert soup.select_one(f'label[for="{box["id"]}"]') is not None, box["id"]
    legends = [f.select_one("legend").get_text() for f in soup.select("fieldset")]
    assert legends == ["Environment", "Where to run", "CPU and memory"]


def test_many_environments_and_nodes_stay_one_placement_list(many, parse):
    entries, inventory = many
    soup = parse(render(entries, inventory))
    assert len(soup.select('input[name="image"]')) == 200
    # CPU, any GPU, 4 models, 50 nodes: listed once, not once per environment
    assert len(soup.select('input[name="gpu"]')) == 56
    assert len(json.loads(soup.select_one("#tk-spawn")["data-offers"])) == 3
    assert int(soup.select_one("#tk-count")["max"]) == 8
    cordoned = soup.select_one('input[value="node:gpu-node-07"]')
    assert cordoned.has_attr("disabled")


def test_what_the_form_preselects_is_accepted(entries, local_inv, cluster_inv, parse):
    for inventory in (local_inv, cluster_inv, many_nodes()):
        for selected in (None, {"image": "torch"}, {"image": "plain"}):
            soup = parse(render(entries, inventory, selected=selected))
            params = submitted(soup)
            selection = check_params(params, entries=entries, inventory=inventory)
            assert selection.image.name == params["image"][0]
    big = many_entries()
    soup = parse(render(big, many_nodes(), selected={"image": "env-001"}))
    assert check_params(submitted(soup), entries=big, inventory=many_nodes())


def test_errors_are_shown_in_plain_words(entries, local_inv, parse):
    soup = parse(render(entries, local_inv, error="No GPU is free right now."))
    assert soup.select_one("#tk-error").get_text() == "No GPU is free right now."
    assert soup.select_one("#tk-error")["role"] == "alert"


def test_catalog_unavailable_shows_only_the_reason(parse):
    message = "The image catalog at http://127.0.0.1:9 cannot be reached; ask your administrator."
    soup = parse(render_unavailable(message))
    assert soup.select_one("#tk-error").get_text() == message
    assert soup.select("input") == []


def test_no_visible_environment(local_inv, parse):
    from form_data import entry

    soup = parse(render([entry("x", hidden=True)], local_inv))
    assert soup.select('input[name="image"]') == []


def test_no_visible_environment_says_what_to_do(local_inv, parse):
    from form_data import entry

    soup = parse(render([entry("x", hidden=True)], local_inv))
    assert "No environment is available to you" in soup.select_one("#tk-error").get_text()


def test_no_gpu_free_for_a_gpu_environment(entries, parse):
    from form_data import H100

    from tkhub.gpu.model import GpuDevice, Inventory
    from tkhub.local.inventory import local_node

    busy = Inventory(
        mode="local", nodes=(local_node([GpuDevice("0", "GPU-0", H100, 1, holders=("bob/",))]),)
    )
    soup = parse(render(entries, busy, selected={"image": "torch"}))
    text = soup.select_one("#tk-error").get_text()
    assert text.startswith("No GPU is free for PyTorch <CUDA> right now: all 1 GPUs are in use")
    assert checked(soup, "gpu") is None
