"""Which servers of a bootstrap list answer: a listening socket does, a closed port and a malformed entry do not."""
from __future__ import annotations

import socket

from pinpipe.common.brokers import accepts, answering, main, reachable


def test_a_listening_server_answers_and_a_closed_port_or_a_malformed_entry_does_not():
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        up, down = (f"127.0.0.1:{s.getsockname()[1]}" for s in (listening, closed))
        assert accepts(up) and not accepts(down) and not accepts("127.0.0.1:not-a-port")
        assert answering(f"{down}, {up},127.0.0.1:x") == [up]
        assert reachable(f"{down},{up}") and not reachable(down)


def test_the_command_prints_those_that_answer_and_fails_when_none_does(capsys):
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = f"127.0.0.1:{listening.getsockname()[1]}"
        assert main([f"127.0.0.1:1,{up}"]) == 0 and capsys.readouterr().out.split() == [up]
        assert main(["127.0.0.1:1"]) == 1
