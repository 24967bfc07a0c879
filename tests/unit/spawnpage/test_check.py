"""Launch-link and form validation (HTTP 400 with field and reason), sizes, params."""

from __future__ import annotations

import pytest
from form_data import check as check_params
from tornado.web import HTTPError

from tkhub.catalog.schemas import Resources
from tkhub.quantity import cpu_cores, memory_bytes
from tkhub.selection import normalize_params
from tkhub.selection.sizes import scaled_resources
from tkhub.spawnpage.http_errors import BadSelection


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"image": ["nope"]}, "image", "there is no environment named 'nope'"),
        ({"image": ["secret"]}, "image", "there is no environment named 'secret'"),
        ({"image": ["team"]}, "image", "Team only is not available to your groups"),
        ({"image": ["plain"], "gpu": ["auto"]}, "gpu", "Plain CPU runs on CPU only"),
        ({"image": ["torch"], "gpu": ["none"]}, "gpu", "PyTorch <CUDA> needs a GPU"),
        (
            {"image": ["torch"], "gpu": ["auto"], "count": ["two"]},
            "count",
            "'two' is not a whole number",
        ),
        ({"image": ["torch"], "gpu": ["auto"], "count": ["0"]}, "count", "must be at least 1"),
        (
            {"image": ["torch"], "gpu": ["auto"], "count": ["2"]},
            "count",
            "at most 1 GPU(s) are free",
        ),
        ({"image": ["torch"], "gpu": ["device:1"]}, "gpu", "GPU 1 is in use by bob/"),
        (
            {"image": ["torch"], "gpu": ["A100"]},
            "gpu",
            "there is no GPU, model or node named 'A100'",
        ),
        ({"image": ["base"], "size": ["huge"]}, "size", "'huge' is not one of full, half, quarter"),
        ({"image": ["base"], "size": ["half", "full"]}, "size", "give one value, not 2"),
    ],
)
def test_bad_params_are_a_400_with_field_and_reason(entries, local_inv, params, field, reason):
    with pytest.raises(BadSelection) as info:
        check_params(params, entries=entries, inventory=local_inv, link=True)
    err = info.value
    assert isinstance(err, HTTPError)
    assert err.status_code == (403 if params["image"] == ["team"] else 400)
    assert err.field == field and reason in err.reason_text
    assert err.jupyterhub_message.startswith(f"This launch link cannot start a server: {field}: ")
    assert "ask whoever sent the link" in err.jupyterhub_message


def test_form_message_does_not_mention_a_link(entries, local_inv):
    with pytest.raises(BadSelection) as info:
        check_params({"image": ["nope"]}, entries=entries, inventory=local_inv)
    assert info.value.jupyterhub_message.startswith("Cannot start: image: ")


def test_good_params_give_a_selection(entries, local_inv, cluster_inv):
    sel = check_params({"image": ["torch"], "gpu": ["auto"]}, entries=entries, inventory=local_inv)
    assert sel.image.name == "torch" and sel.placement.key == "auto"
    sel = check_params(
        {"image": ["base"], "gpu": ["node-c"], "count": ["3"], "size": ["quarter"]},
        entries=entries,
        inventory=cluster_inv,
    )
    assert sel.placement.key == "node:node-c" and sel.placement.count == 3
    sel = check_params({}, entries=entries, inventory=local_inv)
    assert sel.image.name == "base" and sel.placement.key == "none"


def test_group_member_may_use_group_entry(entries, local_inv):
    sel = check_params(
        {"image": ["team"]}, entries=entries, inventory=local_inv, user_groups=["ml"]
    )
    assert sel.image.name == "team"


def test_scaled_resources_keep_guarantees_under_limits():
    res = Resources(cpu_limit="8", cpu_guarantee="6", mem_limit="32Gi", mem_guarantee="1Gi")
    assert scaled_resources(res, "full") is res
    half = scaled_resources(res, "half")
    assert cpu_cores(half.cpu_limit) == 4 and cpu_cores(half.cpu_guarantee) == 4
    assert memory_bytes(half.mem_limit) == 16 * 2**30 and half.mem_guarantee == "1Gi"
    assert scaled_resources(Resources(), "quarter") == Resources()


def test_normalize_params_keeps_our_names_as_lists_of_strings():
    raw = {"image": "torch", "gpu": [b"auto"], "count": ["2"], "_xsrf": ["x"], "other": ["y"]}
    assert normalize_params(raw) == {"image": ["torch"], "gpu": ["auto"], "count": ["2"]}
