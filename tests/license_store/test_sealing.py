"""Credentials are sealed a batch at a time: the tokens are the ones FieldCipher.encrypt makes."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_schemas.cipher import DecryptionError, FieldCipher, generate_key

_TOKEN = re.compile(r"k1\.[A-Za-z0-9_-]+")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=12))
def test_batch_tokens_decrypt_and_look_like_single_ones(values: list[bytes]) -> None:
    cipher = FieldCipher({"k1": generate_key()}, "k1")
    aads = [f"license-{n}" for n in range(len(values))]
    tokens = cipher.encrypt_batch(values, aads)
    for value, aad, token in zip(values, aads, tokens, strict=True):
        text = token.decode("ascii")
        single = cipher.encrypt(value, aad=aad)
        # Same shape: key id, then unpadded base64url of nonce + ciphertext + tag.
        assert _TOKEN.fullmatch(text) and len(text) == len(single)
        payload = text.partition(".")[2]
        assert (
            base64.urlsafe_b64encode(
                base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            ).rstrip(b"=")
            == payload.encode()
        )
        assert cipher.decrypt(text, aad=aad) == value


def test_each_token_is_bound_to_its_own_aad_and_nonce() -> None:
    cipher = FieldCipher({"k1": generate_key()}, "k1")
    first, second = cipher.encrypt_batch([b"same", b"same"], ["a", "b"])
    assert first != second  # a nonce of its own each
    with pytest.raises(DecryptionError):
        cipher.decrypt(first.decode(), aad="b")
    with pytest.raises(ValueError):
        cipher.encrypt_batch([b"x"], ["a", "b"])
    with pytest.raises(ValueError):
        cipher.encrypt_batch([b"x"], [""])
