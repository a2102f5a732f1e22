import pytest
import redis


def test_embedded_servers_start_side_by_side_and_serve_redis_clients(redis_server):
    from bot.redis_embedded import EmbeddedRedis

    with EmbeddedRedis() as other:
        a = redis.Redis.from_url(redis_server.url)
        b = redis.Redis.from_url(other.url)
        assert redis_server.port != other.port
        assert a.set("k", "1", nx=True, ex=10)
        assert not a.set("k", "2", nx=True, ex=10)
        assert b.get("k") is None


def test_the_embedded_server_requires_its_random_password(redis_server):
    from bot.redis_embedded import EmbeddedRedis

    with EmbeddedRedis() as other:
        assert other.password != redis_server.password and len(other.password) >= 24
        anonymous = redis.Redis(host="127.0.0.1", port=other.port)
        with pytest.raises(redis.AuthenticationError):
            anonymous.set("k", "1")
        with pytest.raises(redis.AuthenticationError):  # a wrong password is refused too
            redis.Redis(host="127.0.0.1", port=other.port, password="FAKE-wrong").get("k")
        assert redis.Redis.from_url(other.url).set("k", "1")
