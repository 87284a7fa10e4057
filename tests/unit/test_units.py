from ragdesk.core.units import format_bytes


def test_sizes_read_as_people_read_them() -> None:
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(277 * 1024**2) == "277.0 MiB"
    assert format_bytes(3 * 1024**4) == "3.0 TiB"
