"""A provider's health window (`domain/provider_health.py`)."""

from __future__ import annotations

from domain.provider_health import HealthWindow


def test_provider_health_needs_enough_recent_failures_to_be_unhealthy() -> None:
    window = HealthWindow()
    for i in range(4):
        window.record(False, 1000.0 + i, "provider_error")
    assert window.healthy("closed", 1010.0)  # four outcomes say too little
    for i in range(8):
        window.record(i % 4 == 0, 1010.0 + i, "provider_timeout")
    assert window.error_rate(1020.0) == 0.8333 and not window.healthy("closed", 1020.0)
    assert window.error_rate(1020.0 + 400) == 0.0 and window.healthy("closed", 1420.0)
    assert not window.healthy("open", 1420.0) and window.last_error == "provider_timeout"
