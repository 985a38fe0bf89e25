"""How people name a version: the version label, else the main container's image tag or digest."""

from __future__ import annotations

from typing import Any

from bot.domain.rollback.models import DEFAULT_CONTAINER_ANNOTATION, VERSION_LABEL, Container

SHORT_DIGEST_HEX = 12


def image_reference_version(image: str) -> str:
    """The tag of an image reference, else its short digest, else "latest" (Docker's default).

    Pure. A registry port ("registry:5000/app") is not a tag: only a colon after the last
    slash is.
    """
    name, _, digest = image.partition("@")
    last_segment = name.rsplit("/", 1)[-1]
    if ":" in last_segment:
        return last_segment.rsplit(":", 1)[1]
    if digest:
        algorithm, _, hex_digits = digest.partition(":")
        return f"{algorithm}:{hex_digits[:SHORT_DIGEST_HEX]}" if hex_digits else digest
    return "latest"


def _map(value: Any) -> dict[str, Any]:
    # Templates come from the cluster (a ControllerRevision's data may hold anything): a part of
    # the wrong shape reads as absent, never as an exception.
    return value if isinstance(value, dict) else {}


def containers_of(template: dict[str, Any]) -> tuple[Container, ...]:
    """The pod template's containers (not init containers), in order; anything that is not a
    container object is left out. Pure."""
    containers = _map(_map(template).get("spec")).get("containers")
    return tuple(
        Container(name=str(c.get("name", ""))[:253], image=str(c.get("image", ""))[:1000])
        for c in (containers if isinstance(containers, list) else [])
        if isinstance(c, dict)
    )


def main_container(template: dict[str, Any]) -> Container | None:
    """kubectl's default container when annotated, else the first one. Pure."""
    containers = containers_of(template)
    if not containers:
        return None
    preferred = _map(_map(template.get("metadata")).get("annotations")).get(
        DEFAULT_CONTAINER_ANNOTATION
    )
    return next((c for c in containers if c.name == preferred), containers[0])


def image_tag(image: str) -> str | None:
    """The tag an image reference names explicitly, if any (not a digest, not Docker's implicit
    "latest"). Pure."""
    name = image.partition("@")[0]
    last_segment = name.rsplit("/", 1)[-1]
    return last_segment.rsplit(":", 1)[1] if ":" in last_segment else None


def _agree(label: str, tag: str) -> bool:
    """A tag says the same version as the label: equal but for a leading "v", or the label
    with a suffix ("2.13.0-alpine", "2.13.0+build.7")."""
    label, tag = label.removeprefix("v"), tag.removeprefix("v")
    return tag == label or (tag.startswith(label) and tag[len(label)] in "-+_.")


def version_of(template: dict[str, Any]) -> str:
    """The name people use for the version a pod template runs: the version label, else the
    main container's tag. When the label says one version and the image's tag another (a
    `kubectl set image` that left the label behind), both are shown: the label alone would
    name what no longer runs. Pure."""
    labels = _map(_map(_map(template).get("metadata")).get("labels"))
    label = str(labels.get(VERSION_LABEL) or "")[:253]
    container = main_container(template)
    if not label:
        return image_reference_version(container.image) if container else "unknown"
    tag = image_tag(container.image) if container else None
    if tag is None or _agree(label, tag):
        return label
    return f"{label} (image {tag})"
