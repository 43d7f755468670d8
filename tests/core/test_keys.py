"""Conversation keys: every key round-trips, every malformed key is refused with InvalidKey."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidKey
from core.keys import ThreadKey

slack_ids = st.from_regex(r"[A-Z0-9]{1,32}", fullmatch=True)
slack_ts = st.from_regex(r"\d{1,12}\.\d{1,9}", fullmatch=True)
snowflakes = st.integers(min_value=0, max_value=2**64 - 1)
names = st.from_regex(r"[A-Za-z0-9_.\-]{1,128}", fullmatch=True)

keys = st.one_of(
    st.builds(ThreadKey.slack, slack_ids, slack_ids, st.none() | slack_ts),
    st.builds(ThreadKey.discord, st.none() | snowflakes, snowflakes),
    st.builds(ThreadKey.console, names),
    st.builds(ThreadKey.api, names),
)


@given(keys)
def test_encode_decode_round_trip(key: ThreadKey) -> None:
    encoded = key.encode()
    assert ThreadKey.decode(encoded) == key
    assert ThreadKey.decode(encoded).encode() == encoded
    assert encoded.startswith(f"{key.platform}:")


@given(st.text(max_size=600))
def test_arbitrary_text_decodes_to_a_valid_key_or_invalid_key(text: str) -> None:
    try:
        key = ThreadKey.decode(text)
    except InvalidKey as exc:
        assert exc.code == "invalid_key" and exc.message
    else:
        assert key.encode() == text


@given(keys, st.sampled_from([":", " ", "\x00", "/", "'", "\n"]))
def test_a_stray_character_is_refused(key: ThreadKey, bad: str) -> None:
    with pytest.raises(InvalidKey):
        ThreadKey.decode(key.encode() + bad + "x")


@pytest.mark.parametrize(
    ("encoded", "mentions"),
    [
        ("", "no platform"),
        ("slack", "no platform"),
        ("teams:abc", "unknown platform"),
        ("slack:T1:C1", "3 parts"),
        ("slack:t1:C1:1.2", "team"),
        ("slack:T1:C1:yesterday", "thread"),
        ("discord:guild:123", "guild"),
        ("discord:dm:abc", "channel"),
        ("api:" + "x" * 129, "thread"),
        ("api:' OR 1=1 --", "thread"),
        ("x" * 600, "512"),
    ],
)
def test_malformed_keys_say_what_is_wrong(encoded: str, mentions: str) -> None:
    with pytest.raises(InvalidKey, match=mentions):
        ThreadKey.decode(encoded)


def test_place_is_the_key_without_its_thread() -> None:
    assert ThreadKey.slack("T1", "C1", "1.2").place == "slack:T1:C1"
    assert ThreadKey.discord(5, 6).place == "discord:5"
    assert ThreadKey.console("x").place == "console"


@given(keys, st.integers(min_value=0, max_value=999_999))
def test_a_new_conversation_in_place_round_trips_and_stays_in_its_place(key: ThreadKey, n: int) -> None:
    if not key.renewable:
        with pytest.raises(InvalidKey, match="cannot start a new conversation"):
            key.nth(max(n, 1))
        return
    nth = key.nth(n)
    assert ThreadKey.decode(nth.encode()) == nth and nth.generation == n
    assert nth.place == key.place and nth.nth(0) == key and (nth == key) == (n == 0)


def test_only_a_dm_top_level_or_a_discord_channel_is_renewed() -> None:
    assert ThreadKey.slack("T1", "D1", None).nth(2).encode() == "slack:T1:D1:dm-2"
    assert ThreadKey.discord(5, 6).nth(3).encode() == "discord:5:6-3"
    assert not ThreadKey.slack("T1", "C1", "1.2").renewable and not ThreadKey.console("a-1").renewable
    with pytest.raises(InvalidKey):
        ThreadKey.decode("slack:T1:C1:1.2-3")
