from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.catalog import Catalog
from bot.domain.errors import ConfigError, UnknownService


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_names_and_namespace_slash_deployment_resolve(tmp_path: Path) -> None:
    catalog = Catalog.load(
        write(
            tmp_path,
            """
services:
  checkout: {namespace: shop, deployment: checkout-web, context: prod-eu}
""",
        )
    )
    ref = catalog.resolve("checkout")
    assert (ref.namespace, ref.deployment, ref.context) == ("shop", "checkout-web", "prod-eu")
    assert catalog.resolve("shop/checkout-web").name == "checkout"
    assert catalog.resolve("pay/ledger").qualified == "pay/ledger"


def test_unknown_service_suggests_close_names(tmp_path: Path) -> None:
    catalog = Catalog.load(
        write(tmp_path, "services:\n  checkout: {namespace: shop, deployment: c}\n")
    )
    with pytest.raises(UnknownService, match=r"did you mean 'checkout'\?"):
        catalog.resolve("chekout")
    with pytest.raises(UnknownService, match="known services: checkout"):
        catalog.resolve("zzz")


def test_without_catalog_a_bare_name_explains_the_two_ways() -> None:
    with pytest.raises(UnknownService, match="no service catalog is configured"):
        Catalog.empty().resolve("checkout")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "services:\n  checkout: {namespace: shop}\n",
            "key 'services.checkout.deployment' is missing",
        ),
        (
            "services:\n  checkout: {namespace: Shop_1, deployment: c}\n",
            "key 'services.checkout.namespace': 'Shop_1' is not a valid Kubernetes name",
        ),
        (
            "services:\n  checkout: {namespace: shop, deployment: c, chanel: x}\n",
            "key 'services.checkout.chanel' is not known",
        ),
        ("services: [\n", "at line"),
        ("services: 3\n", "key 'services'"),
    ],
)
def test_a_bad_catalog_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Catalog.load(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_a_missing_catalog_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        Catalog.load(tmp_path / "nope.yaml")
