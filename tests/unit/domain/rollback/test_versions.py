from __future__ import annotations

import pytest

from bot.domain.rollback.versions import image_reference_version, main_container, version_of
from tests.builders import template


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("registry.example.com/shop/checkout:2.13.0", "2.13.0"),
        ("registry:5000/checkout", "latest"),
        ("registry:5000/checkout:v1", "v1"),
        ("nginx", "latest"),
        ("checkout@sha256:4f3c2a1b9e8d7c6b5a4f3c2a1b9e8d7c6b5a", "sha256:4f3c2a1b9e8d"),
        ("checkout:1.2@sha256:4f3c2a1b9e8d7c6b5a", "1.2"),
    ],
)
def test_image_reference_version(image: str, version: str) -> None:
    assert image_reference_version(image) == version


def test_a_label_the_image_disagrees_with_is_shown_with_the_image_tag() -> None:
    # `kubectl set image …:2.15.0` leaves the label at 2.13.0: both are said, never the label
    # alone, which names what no longer runs.
    tpl = template("2.13.0", image="registry.example.com/shop/checkout:2.15.0")
    assert version_of(tpl) == "2.13.0 (image 2.15.0)"


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.com/shop/checkout:2.13.0",
        "registry.example.com/shop/checkout:v2.13.0",
        "registry.example.com/shop/checkout:2.13.0-alpine",
        "registry.example.com/shop/checkout:2.13.0+build.7",
        "registry.example.com/shop/checkout@sha256:4f3c2a1b9e8d7c6b5a",  # pinned: no tag
        "registry:5000/checkout",  # no tag at all
    ],
)
def test_a_label_the_image_agrees_with_is_the_version(image: str) -> None:
    assert version_of(template("2.13.0", image=image)) == "2.13.0"


def test_a_tag_that_only_starts_like_the_label_disagrees() -> None:
    tpl = template("2.1", image="registry.example.com/shop/checkout:2.13.0")
    assert version_of(tpl) == "2.1 (image 2.13.0)"


def test_without_label_the_main_container_tag_names_the_version() -> None:
    tpl = template("x", image="registry.example.com/shop/checkout:abc123")
    del tpl["metadata"]["labels"]["app.kubernetes.io/version"]
    assert version_of(tpl) == "abc123"


def test_default_container_annotation_picks_the_main_container() -> None:
    tpl = template("x", sidecar="envoy:1.30")
    tpl["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "proxy"}
    main = main_container(tpl)
    assert main is not None
    assert main.name == "proxy"


def test_a_template_without_containers_has_an_unknown_version() -> None:
    assert version_of({"metadata": {}, "spec": {"containers": []}}) == "unknown"
