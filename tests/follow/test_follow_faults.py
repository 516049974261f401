"""Follow mode never goes deaf (issue 23): a LISTEN connection that went silent without an error, and a
Khanza that was away for a moment, are each recovered by the follow loop itself, long before its 60-second
safety poll and without waiting out the rows' backoff, with nothing lost or made twice and no traceback in
the output. How fast is a benchmark figure (bench/faults.py); these tests wait on conditions."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest
from sqlalchemy.engine import make_url

from bench.faultproxy import FaultProxy
from khanza_sync import follow
from khanza_sync.error_codes import ErrorCode
from tests.faults.helpers import registrations
from tests.follow.conftest import FollowEnv, LogRecords, configure, following

# Generous bounds for conditions, all below follow.SAFETY_SECONDS: a recovery that only the safety poll
# brought would fail them.
RECOVERY_TIMEOUT = 40.0


@pytest.fixture
def website_proxy(follow_env: FollowEnv):
    url = make_url(follow_env.website_url)
    with FaultProxy((url.host, url.port), max_lifetime=300) as proxy:
        yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)


@pytest.mark.parametrize("follow_store", ["postgresql"], indirect=True)
def test_silent_listen_connection_is_noticed_and_nothing_is_lost(follow_env: FollowEnv, website_proxy, monkeypatch):
    """Every website connection goes half-open (a NAT that forgot them: open, acknowledged by the kernel,
    keepalives answered, nothing forwarded). The LISTEN connection's timed ping notices, LISTEN is
    re-established, the pool's connections are replaced, and the registrations that arrived meanwhile (their
    notifications went into the void) are synced."""
    proxy, proxied_url = website_proxy
    # The pipeline goes through the proxy (the test's checks do not). A statement already under way when its
    # connection goes silent is bounded by the website timeouts: short here, as in the fault suite.
    configure(monkeypatch, proxied_url, WEBSITE_STATEMENT_TIMEOUT_SECONDS="3", WEBSITE_CONNECT_TIMEOUT="2")
    assert follow.SAFETY_SECONDS > RECOVERY_TIMEOUT
    bursts: list[int] = []
    with LogRecords() as log, following(max_seconds=120, on_burst=lambda st: bursts.append(st.bursts)) as out:
        first = follow_env.insert(registrations(1, prefix="before"))
        follow_env.wait_synced(first, timeout=30)
        # Idle connections are the ones a NAT forgets: the loop is waiting on LISTEN when they go silent.
        follow_env.wait_for(lambda: bursts, timeout=30, what="the first burst over")
        assert proxy.live >= 1
        assert proxy.half_open() >= 1  # the LISTEN connection and the pool's: silent for good
        deaf = follow_env.insert(registrations(3, start=10, prefix="deaf"))  # their NOTIFY goes nowhere
        follow_env.wait_synced(deaf, timeout=RECOVERY_TIMEOUT)
        follow_env.wait_for(lambda: log.has("website.notify", "LISTEN online_registrations re-established"),
                            timeout=RECOVERY_TIMEOUT, what="LISTEN re-established after its ping went unanswered")
        late = follow_env.insert(registrations(1, start=20, prefix="late"))  # woken by LISTEN again
        follow_env.wait_synced(late, timeout=RECOVERY_TIMEOUT)
    stats = out["stats"]
    assert stats.mode == "listen" and stats.reconnects >= 1 and not stats.errors, stats.line()
    assert log.has("website.notify", "LISTEN connection went silent")
    assert not log.tracebacks(), log.tracebacks()
    ids = first + deaf + late
    report = follow_env.audit(ids)
    assert report.synced == 5 and not report.problems, report.summary()


@pytest.mark.parametrize("follow_store", ["mariadb"], indirect=True)
def test_silent_website_connections_on_the_polling_path(follow_env: FollowEnv, website_proxy, monkeypatch):
    """MySQL/MariaDB website (polling, no LISTEN): its pooled connections go half-open between polls. The next
    poll's pre-ping gets a short deadline, the connection is replaced, and the registrations are synced."""
    proxy, proxied_url = website_proxy
    configure(monkeypatch, proxied_url, WEBSITE_STATEMENT_TIMEOUT_SECONDS="3", WEBSITE_CONNECT_TIMEOUT="2")
    bursts: list[int] = []
    with LogRecords() as log, following(max_seconds=120, on_burst=lambda st: bursts.append(st.bursts)) as out:
        first = follow_env.insert(registrations(1, prefix="before"))
        follow_env.wait_synced(first, timeout=30)
        follow_env.wait_for(lambda: bursts, timeout=30, what="the first burst over")
        assert proxy.half_open() >= 1
        later = follow_env.insert(registrations(3, start=10, prefix="silent"))
        follow_env.wait_synced(later, timeout=RECOVERY_TIMEOUT)
    stats = out["stats"]
    assert stats.mode == "poll" and not stats.errors, stats.line()
    assert proxy.connections >= 2  # a new connection replaced the silent one(s)
    report = follow_env.audit(first + later)
    assert report.synced == 4 and not report.problems, report.summary()
    assert not log.tracebacks(), log.tracebacks()


@pytest.fixture
def khanza_proxy(khanza):
    url = khanza.url
    with FaultProxy((url.host, url.port), max_lifetime=300) as proxy:
        yield proxy


@pytest.mark.parametrize("follow_store", ["postgresql", "sqlite"], indirect=True)
def test_khanza_blip_resumes_at_once_not_after_the_backoff(follow_env: FollowEnv, khanza_proxy, monkeypatch):
    """Khanza's connections are cut and it refuses new ones for a moment (an admin's restart): the rows that
    arrive meanwhile wait (KHANZA_UNREACHABLE, with a long backoff here), the loop asks Khanza every few
    seconds whether it answers, and once it does syncs them at once: before their backoff ends."""
    proxy = khanza_proxy
    # Backoff base 60 s: a row deferred now would wait at least 45 s if nothing resumed it.
    configure(monkeypatch, follow_env.website_url, khanza_port=proxy.port, KHANZA_RETRY_DELAY_SECONDS="60")
    bursts: list[int] = []
    with LogRecords() as log, following(max_seconds=120, on_burst=lambda st: bursts.append(st.bursts)) as out:
        first = follow_env.insert(registrations(1, prefix="before"))
        follow_env.wait_synced(first, timeout=30)
        follow_env.wait_for(lambda: bursts, timeout=30, what="the first burst over")  # Khanza goes while idle
        proxy.refuse()
        away = follow_env.insert(registrations(3, start=10, prefix="away"))

        def deferred(ids):
            rows = follow_env.rows(ids)
            return (rows["error_code"] == ErrorCode.KHANZA_UNREACHABLE.value).all()
        follow_env.wait_for(lambda: deferred(away), timeout=30, what="the registrations deferred KHANZA_UNREACHABLE")
        more = follow_env.insert(registrations(2, start=20, prefix="away"))  # while the loop probes
        follow_env.wait_for(lambda: deferred(more), timeout=30, what="later arrivals deferred without a batch")
        waiting_until = pd.to_datetime(follow_env.rows(away + more)["next_attempt_at"])
        proxy.accept()
        back = datetime.now(timezone.utc).replace(tzinfo=None)
        assert (waiting_until > back).all()  # their backoff has not ended when Khanza is back
        follow_env.wait_synced(away + more, timeout=RECOVERY_TIMEOUT)
        after = follow_env.insert(registrations(1, start=30, prefix="after"))
        follow_env.wait_synced(after, timeout=RECOVERY_TIMEOUT)
    rows = follow_env.rows(away + more)
    assert (pd.to_datetime(rows["synced_at"]) < waiting_until).all(), "synced only after their backoff: not resumed"
    assert rows["error_code"].isna().all()
    stats = out["stats"]
    assert stats.offline_episodes == 1 and not stats.khanza_offline and stats.probes >= 1, stats.line()
    assert stats.resumed >= 3 and not stats.errors, stats
    ids = first + away + more + after
    report = follow_env.audit(ids)
    assert report.synced == 7 and not report.problems, report.summary()
    assert log.has("khanza_sync.follow", "Khanza answers again")
    assert not log.tracebacks(), log.tracebacks()
