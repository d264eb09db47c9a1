"""A CSV request record with fewer fields than the first is refused with its index (pandas would
fill it with NaN and the model would score a row the client never sent); an empty field is a
missing value the client did send, and stays NaN."""

from __future__ import annotations

import http.client

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.models.wire import MSG_CSV_WIDTH, RequestError, parse_request


def test_short_record_is_named():
    with pytest.raises(RequestError, match="^" + MSG_CSV_WIDTH.format(record=1, got=2, want=3) + "$"):
        parse_request(b"1,2,3\n4,5\n7,8,9\n", "text/csv")


def test_empty_field_is_a_missing_value():
    X = parse_request(b"1,2,3\n4,,6\n", "text/csv")
    np.testing.assert_array_equal(np.isnan(X), [[False, False, False], [False, True, False]])


@given(
    st.lists(st.lists(st.integers(-99, 99), min_size=3, max_size=3), min_size=2, max_size=8),
    st.data(),
)
def test_first_short_record_wins(rows, data):
    cut = data.draw(st.integers(1, len(rows) - 1))
    keep = data.draw(st.integers(1, 2))
    lines = [",".join(map(str, r)) for r in rows]
    lines[cut] = ",".join(map(str, rows[cut][:keep]))
    with pytest.raises(RequestError) as exc:
        parse_request(("\n".join(lines) + "\n").encode(), "text/csv")
    assert str(exc.value) == MSG_CSV_WIDTH.format(record=cut, got=keep, want=3)


def test_server_answers_400_naming_the_record():
    pytest.importorskip("uvicorn")
    from clarion.serve import ModelServer

    with ModelServer(lambda X: np.asarray(X, dtype=float).sum(axis=1)) as url:
        host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", "/invocations", body=b"1,2,3\n4,5\n", headers={"Content-Type": "text/csv"})
            r = conn.getresponse()
            status, body = r.status, r.read().decode()
        finally:
            conn.close()
    assert status == 400 and MSG_CSV_WIDTH.format(record=1, got=2, want=3) in body
