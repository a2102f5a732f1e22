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
