"""The deployment's state as Prometheus gauges, for the alert rules in installer/monitoring/:
readiness (the same checks as /ready), free disk of the data folder, the TLS certificate's
expiry, the last verified backup, and the process's own memory and descriptors.

Why gauges read at scrape time: these are states, not events. /metrics refreshes them just
before it renders (`observe`), so an alert sees what /ready would answer now; the process
figures come from prometheus_client's ProcessCollector (/proc), as every exporter names them.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC
from pathlib import Path
from typing import Any

from cryptography import x509
from prometheus_client import CollectorRegistry, Gauge, Info, ProcessCollector

from ragdesk import __version__
from ragdesk.core.store.sqlite.backup import last_backup

log = logging.getLogger("ragdesk.server.health")

READY_CHECKS = ("vault", "ollama", "disk", "memory")


class HealthGauges:
    """Gauges over `registry` for the server whose data folder is `home`."""

    def __init__(self, registry: CollectorRegistry, home: Path) -> None:
        self.home = home
        r = registry
        Info("ragdesk_build", "The RagDesk release serving", registry=r).info({"version": __version__})
        ProcessCollector(registry=r)
        self.ready = Gauge("ragdesk_ready", "1 when /ready would answer 200 (vault, disk, memory)",
                           registry=r)
        self.check = Gauge("ragdesk_ready_check", "Each readiness check: 1 passes, 0 fails (ollama "
                           "0 means answers are extractive)", ["check"], registry=r)
        self.disk_free = Gauge("ragdesk_disk_free_bytes", "Free bytes on the data folder's disk",
                               registry=r)
        self.disk_size = Gauge("ragdesk_disk_size_bytes", "Size of the data folder's disk", registry=r)
        self.backup_at = Gauge("ragdesk_backup_last_success_timestamp_seconds",
                               "When the last verified `ragdesk backup` of this vault finished "
                               "(Unix time; 0: none recorded)", registry=r)
        self.backup_bytes = Gauge("ragdesk_backup_last_size_bytes", "Size of the last verified backup",
                                  registry=r)
        self._registry = r
        self.cert_expiry: Gauge | None = None  # only while this process serves TLS itself

    def set_certificate(self, cert_pem: str) -> None:
        """Export the served certificate's end of validity (the first certificate of the chain).
        Without TLS (behind nginx) the gauge does not exist: nginx's certificate is not ours."""
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        if self.cert_expiry is None:
            self.cert_expiry = Gauge("ragdesk_tls_certificate_expiry_timestamp_seconds",
                                     "When the certificate this server presents stops being valid "
                                     "(Unix time)", registry=self._registry)
        self.cert_expiry.set(cert.not_valid_after_utc.replace(tzinfo=UTC).timestamp())

    def observe(self, ok: bool, checks: dict[str, Any]) -> None:
        """Refresh the gauges from a readiness result (ServerContext.readiness) and the disk."""
        self.ready.set(1 if ok else 0)
        for name in READY_CHECKS:
            self.check.labels(name).set(1 if checks.get(name, {}).get("ok") else 0)
        where = self.home if self.home.exists() else Path.cwd()
        try:
            usage = shutil.disk_usage(where)
            self.disk_free.set(usage.free)
            self.disk_size.set(usage.total)
        except OSError as exc:  # reported by /ready's disk check as well
            log.warning("cannot read the disk usage of %s: %s", where, exc.strerror)
        record = last_backup(self.home)
        self.backup_at.set(record["at"] if record else 0)
        self.backup_bytes.set(record["bytes"] if record else 0)
