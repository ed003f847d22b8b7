import hmac

from hypothesis import given
from hypothesis import strategies as st

from chatbridge.plugin.signing import hmac_digest


@given(
    key=st.text(max_size=50),
    messages=st.lists(st.binary(max_size=200), min_size=1, max_size=3),
    algorithm=st.sampled_from(["sha1", "sha256"]),
)
def test_a_reused_key_signs_like_a_fresh_hmac(
    key: str, messages: list[bytes], algorithm: str
) -> None:
    for message in messages:  # the cached keyed state must not carry one message into the next
        assert hmac_digest(key, message, algorithm) == hmac.digest(key.encode(), message, algorithm)
