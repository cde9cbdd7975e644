"""Whether the Kafka servers of a bootstrap list answer: a TCP connection, no Kafka request, so a broker that is
down is told in a second instead of after a client's retries."""
from __future__ import annotations

import socket


def accepts(server: str, timeout_s: float = 1.0) -> bool:
    """Whether `server` (host:port; localhost and 9092 where left out) accepts a TCP connection."""
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host or "localhost", int(port or 9092)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def reachable(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """Whether any server of the comma-separated bootstrap list accepts a TCP connection."""
    return any(accepts(server, timeout_s) for server in bootstrap.split(","))


def answering(bootstrap: str, timeout_s: float = 2.0) -> list[str]:
    """The servers of the bootstrap list that accept a TCP connection."""
    return [server.strip() for server in bootstrap.split(",") if accepts(server, timeout_s)]


def main(argv: list[str] | None = None) -> int:
    """`python -m pinpipe.common.brokers LIST`: the servers of LIST that answer, one a line; exit 1 when none does."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pinpipe.common.brokers", description=main.__doc__)
    parser.add_argument("bootstrap", help="host:port[,host:port...], as KAFKA_BOOTSTRAP_SERVERS")
    up = answering(parser.parse_args(argv).bootstrap)
    print("\n".join(up))
    return 0 if up else 1


if __name__ == "__main__":
    raise SystemExit(main())
