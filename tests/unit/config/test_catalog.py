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
            "key 'services.checkout': key 'name' is missing: the workload's name",
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


def test_a_key_given_twice_is_refused_not_replaced(tmp_path: Path) -> None:
    # The second entry would silently drop the first one's restriction.
    path = write(
        tmp_path,
        """
services:
  checkout: {namespace: shop, deployment: checkout, allowed_users: [U0ALICE1]}
  checkout: {namespace: shop, deployment: checkout}
""",
    )
    with pytest.raises(ConfigError, match=r"key 'checkout' appears twice.*line 4"):
        Catalog.load(path)


def test_two_names_for_one_deployment_must_agree_on_who_may_roll_back(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
services:
  checkout: {namespace: shop, deployment: checkout, allowed_groups: [S0ONCALL1]}
  shop-checkout: {namespace: shop, deployment: checkout}
""",
    )
    with pytest.raises(ConfigError, match="'checkout', 'shop-checkout' are all shop/checkout"):
        Catalog.load(path)
    same = write(
        tmp_path,
        """
services:
  checkout: {namespace: shop, deployment: checkout, allowed_groups: [S0ONCALL1]}
  shop-checkout: {namespace: shop, deployment: checkout, allowed_groups: [S0ONCALL1]}
""",
    )
    assert Catalog.load(same).resolve("shop/checkout").name == "checkout"


def test_uncataloged_deployments_have_no_policy_unless_the_catalog_gives_one(
    tmp_path: Path,
) -> None:
    plain = Catalog.load(write(tmp_path, "services: {}\n"))
    assert plain.uncataloged is None
    given = Catalog.load(
        write(tmp_path, "uncataloged: {allowed_users: [U0ADMIN1], allowed_groups: [S0SRE001]}\n")
    )
    assert given.uncataloged is not None
    assert given.uncataloged.allowed_users == ("U0ADMIN1",)
    assert given.uncataloged.allowed_groups == ("S0SRE001",)


def test_unrestricted_services_are_named(tmp_path: Path) -> None:
    catalog = Catalog.load(
        write(
            tmp_path,
            """
services:
  cart: {namespace: shop, deployment: cart}
  checkout: {namespace: shop, deployment: checkout, allowed_users: [U0ALICE1]}
  search: {namespace: search, deployment: api}
""",
        )
    )
    assert catalog.unrestricted == ("cart", "search")
