"""What the emulator keeps of an error answer for its give-up message: the poster's `detail`, on one line."""
from pinpipe.source.emulator import answer_detail


def test_the_detail_of_a_json_answer():
    body = '{"detail": "not produced: KafkaTimeoutError: Timeout expired; retry later"}'
    assert answer_detail(body) == "not produced: KafkaTimeoutError: Timeout expired; retry later"


def test_a_text_answer_as_it_is_on_one_line():
    assert answer_detail("<html>\n  Bad   Gateway\n</html>") == "<html> Bad Gateway </html>"


def test_json_without_a_detail_or_not_an_object_is_shown_as_text():
    assert answer_detail('{"error": "busy"}') == '{"error": "busy"}'
    assert answer_detail('["busy"]') == '["busy"]'


def test_nothing_for_an_empty_answer_and_a_long_one_cut():
    assert answer_detail("") == ""
    assert answer_detail('{"detail": "' + "x" * 500 + '"}', limit=10) == "x" * 10
