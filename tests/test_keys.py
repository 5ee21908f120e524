"""API key format, hashing and the in-memory cache's rules."""

import uuid

from promptlogic.tenancy import keys
from promptlogic.tenancy.key_cache import ApiKeyCache, CachedKey
from promptlogic.tenancy.roles import Scope, grants


def test_generated_key_has_documented_format_and_parses_back():
    new = keys.generate()
    presented = keys.parse(new.plaintext)
    assert presented is not None
    assert new.plaintext == f"pl_{presented.prefix}_{presented.secret}"
    assert presented.prefix == new.prefix
    assert len(presented.secret) == 48


def test_stored_hash_is_not_the_secret_and_matches_only_the_right_secret():
    new = keys.generate()
    presented = keys.parse(new.plaintext)
    assert presented is not None
    assert presented.secret not in new.secret_hash
    assert keys.secret_matches(presented, new.secret_hash)
    other = keys.parse(keys.generate().plaintext)
    assert other is not None
    assert not keys.secret_matches(other, new.secret_hash)


def test_keys_are_unique():
    assert len({keys.generate().plaintext for _ in range(200)}) == 200


def test_parse_rejects_anything_not_in_our_format():
    good = keys.generate().plaintext
    for token in ["", "pl_", good.upper(), good + "a", good[:-1], "sk-" + good[3:], " " + good]:
        assert keys.parse(token) is None, token


def test_admin_scope_grants_everything_and_write_grants_read():
    assert all(grants(frozenset({Scope.ADMIN}), scope) for scope in Scope)
    assert grants(frozenset({Scope.WRITE}), Scope.READ)
    assert not grants(frozenset({Scope.WRITE}), Scope.RUN)
    assert not grants(frozenset({Scope.READ}), Scope.WRITE)
    assert not grants(frozenset({Scope.RUN}), Scope.READ)
    assert not grants(frozenset({Scope.RUN, Scope.READ, Scope.WRITE}), Scope.ADMIN)


def _entry() -> CachedKey:
    return CachedKey(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        tenant_slug="t",
        tenant_name="T",
        name="k",
        scopes=frozenset({Scope.RUN}),
        secret_hash="0" * 64,
        expires_at=None,
        revoked=False,
    )


def test_cache_does_not_store_a_load_that_raced_with_an_invalidation():
    cache = ApiKeyCache(max_size=10)
    generation = cache.generation
    cache.drop("abc")  # a revocation arrives while the key was being read
    cache.put("abc", _entry(), loaded_at_generation=generation)
    assert cache.get("abc") is None


def test_cache_evicts_least_recently_used_beyond_its_size():
    cache = ApiKeyCache(max_size=2)
    for prefix in ["a", "b"]:
        cache.put(prefix, _entry(), loaded_at_generation=cache.generation)
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", _entry(), loaded_at_generation=cache.generation)
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None


def test_cache_stores_nothing_while_invalidations_cannot_arrive():
    live = False
    cache = ApiKeyCache(max_size=10, is_live=lambda: live)
    cache.put("abc", _entry(), loaded_at_generation=cache.generation)
    assert cache.get("abc") is None
    live = True
    cache.put("abc", _entry(), loaded_at_generation=cache.generation)
    assert cache.get("abc") is not None
