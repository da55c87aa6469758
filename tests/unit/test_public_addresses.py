"""Only public internet addresses, with every IPv4 address carried in IPv6 unwrapped."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.errors import PrivateAddressError
from gateway.public_addresses import is_public, refuse_private_literal

NOT_PUBLIC = [
    "127.0.0.1",
    "10.1.2.3",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 - an address under test, not one bound
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "::127.0.0.1",  # IPv4-compatible
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 well-known prefix, 127.0.0.1
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::a9fe:a9fe",  # the local-use NAT64 prefix
    "64:ff9b:1::7f00:1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",
    "fec0::1",  # site-local
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "2001:db8::1",
    "2001::1",  # Teredo
    "100::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_addresses_that_are_not_globally_routable_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/",
        "http://[::a9fe:a9fe]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://[64:ff9b:1::7f00:1]/",
        "http://[fec0::1]/",
        "http://[fe80::1%25eth0]:8080/x",
        "https://169.254.169.254/latest/meta-data",
    ],
)
def test_literal_urls_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(PrivateAddressError):
        refuse_private_literal(url)


def test_names_are_left_to_the_resolver() -> None:
    refuse_private_literal("https://example.com/hook")
