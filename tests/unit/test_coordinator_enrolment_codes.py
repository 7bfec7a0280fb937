"""One-time enrolment codes are easy to read out and can never be mistaken for a command-line option."""

from __future__ import annotations

from pneumodesk.coordinator.service import new_enrolment_code


def test_codes_are_grouped_unambiguous_symbols_that_never_start_with_a_dash():
    codes = {new_enrolment_code() for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [5] * 5
        assert not set("".join(groups)) & set("01OIL-")
        assert code[0] != "-"
