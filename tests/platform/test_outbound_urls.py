"""perly.outbound.checked_url: the one check every outbound URL goes through."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from perly.outbound import OutboundUrlError, checked_url
from tests.support.hostile_urls import HOST, SYNTAX, hostile_urls


@pytest.mark.parametrize(("url", "kind"), hostile_urls("login.salesforce.com", 18951))
def test_every_ambiguous_form_is_refused_and_a_well_formed_one_is_judged_by_its_host(url, kind):
    if kind == SYNTAX:
        with pytest.raises(OutboundUrlError):
            checked_url(url, schemes=("https", "http"))
    else:
        assert kind == HOST
        checked = checked_url(url, schemes=("https", "http"))
        assert checked.host != "login.salesforce.com"  # the host the client will really reach
        with pytest.raises(OutboundUrlError) as refused:
            checked_url(url, trusted_domains=("salesforce.com", "force.com"))
        assert refused.value.rule == "domain"


def test_the_finding_is_read_as_the_client_reads_it():
    # urlsplit saw login.salesforce.com here; urllib3 (and so requests) connects to 127.0.0.1.
    url = "https://127.0.0.1:18951\\@login.salesforce.com"
    assert urlsplit(url).hostname == "login.salesforce.com"
    assert parse_url(url).host == "127.0.0.1"
    with pytest.raises(OutboundUrlError, match="backslashes") as refused:
        checked_url(url, trusted_domains=("salesforce.com",))
    assert refused.value.rule == "characters"


@pytest.mark.parametrize(
    ("url", "rebuilt"),
    [
        ("https://Acme.My.Salesforce.com", "https://acme.my.salesforce.com"),
        ("HTTPS://login.salesforce.com:443/", "https://login.salesforce.com:443/"),
        ("https://hooks.example.com/a b", None),  # whitespace is refused, not quoted
        ("https://hooks.example.com/p?q=1#frag", "https://hooks.example.com/p?q=1"),  # never sent
        ("https://münchen.example/x", "https://xn--mnchen-3ya.example/x"),
        ("https://[2606:4700:0::1111]:8443/x", "https://[2606:4700::1111]:8443/x"),
        ("https://hooks.example.com/%7euser/%0d%0a", "https://hooks.example.com/%7Euser/%0D%0A"),
    ],
)
def test_the_url_is_rebuilt_from_its_checked_parts(url, rebuilt):
    if rebuilt is None:
        with pytest.raises(OutboundUrlError):
            checked_url(url)
    else:
        assert checked_url(url).url == rebuilt


def test_trusted_domains_match_whole_labels_only():
    trusted = ("salesforce.com", "force.com")
    for good in ("https://salesforce.com", "https://acme.my.salesforce.com", "https://na1.force.com"):
        checked_url(good, trusted_domains=trusted)
    for bad in ("https://evilsalesforce.com", "https://salesforce.com.evil.io", "https://force.com.x"):
        with pytest.raises(OutboundUrlError):
            checked_url(bad, trusted_domains=trusted)


def test_origin_only_refuses_paths_queries_and_fragments():
    assert (
        checked_url("https://acme.my.salesforce.com/", origin_only=True).url
        == "https://acme.my.salesforce.com"
    )
    for url in ("https://a.salesforce.com/x", "https://a.salesforce.com?x", "https://a.salesforce.com#x"):
        with pytest.raises(OutboundUrlError) as refused:
            checked_url(url, origin_only=True)
        assert refused.value.rule == "origin"


_URL_CHARS = st.sampled_from(
    list("ab1.:/@\\?#%[]-_ \t\x00\u200b\uff0e\u3002") + ["127.0.0.1", "x.com", "::1"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_URL_CHARS, max_size=12).map("".join))
def test_whatever_is_accepted_both_parsers_read_the_same_host(tail):
    """The class of the finding: for any URL the gate lets through, the rebuilt URL names the
    same host to urllib3 (what connects) and to urlsplit (what other code may read)."""
    try:
        checked = checked_url("https://" + tail, schemes=("https",))
    except OutboundUrlError:
        return
    assert parse_url(checked.url).host.strip("[]") == checked.host
    assert urlsplit(checked.url).hostname == checked.host
    assert parse_url(checked.url).auth is None and urlsplit(checked.url).username is None
