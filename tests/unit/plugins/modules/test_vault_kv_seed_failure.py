"""vault_kv_seed's failure message never claims "Nothing was changed" when writes happened or may still land."""

from ansible_collections.heracles.secrets.plugins.module_utils import errors
from ansible_collections.heracles.secrets.plugins.modules import vault_kv_seed as seed


def test_quorum_hint_claim_is_found_and_dropped():
    # The shared hint ends with the claim; fail_partial drops it when a write happened or got no answer.
    assert "Nothing was changed" in errors.QUORUM_HINT
    dropped = seed.NOTHING_CHANGED.sub("", errors.QUORUM_HINT)
    assert "Nothing was changed" not in dropped and "unseal-recovery.yml" in dropped


def test_other_text_is_kept():
    assert seed.NOTHING_CHANGED.sub("", "Check the token. Nothing was changed.") == "Check the token."
    assert seed.NOTHING_CHANGED.sub("", "Nothing was changed, except X") == "Nothing was changed, except X"
