"""`Release`: one release request, from queued to a verified bundle and its synthetic data."""

from __future__ import annotations

import io
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.bundle_verify import BundleCheck, verify_bundle
from synthgate_client.errors import BundleInvalid, WaitTimeout

if TYPE_CHECKING:
    from synthgate_client.client import Client

__all__ = ["RUNNING", "Progress", "Release"]

RUNNING = ("queued", "running")
DATA_FILE = "data.parquet"


@dataclass(frozen=True)
class Progress:
    """One step of a running release as `Release.wait` saw it: its status, stage, fraction done (0 to 1),
    the service's message, the seconds since `wait` began, and the running stage's estimated seconds
    left (None for a short or young stage; whole minutes for analysts)."""

    release_id: int
    status: str
    stage: str | None
    fraction: float
    message: str | None
    elapsed: float
    eta_seconds: int | None = None

    def line(self) -> str:
        pct = round(100 * self.fraction)
        bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
        eta = ""
        if self.eta_seconds is not None:
            secs = max(1, int(self.eta_seconds))
            eta = f"  ~{secs} s left" if secs < 60 else f"  ~{-(-secs // 60)} min left"
        return f"release {self.release_id} [{bar}] {pct:3d}%  {self.status:<17} {(self.stage or '')[:40]}{eta}"


class _PrintedProgress:
    """progress=True: one line on stderr, redrawn in place while the release runs."""

    def __init__(self) -> None:
        self.width = 0

    def __call__(self, p: Progress) -> None:
        text = p.line()
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()
        self.width = len(text)

    def close(self) -> None:
        if self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()


class Release:
    """A release as the client's account may see it; `view` is the API's dict, refreshed by each call."""

    def __init__(self, client: Client, view: dict[str, Any]) -> None:
        self.client = client
        self.view = view
        self.bundle_path: Path | None = None

    def __repr__(self) -> str:
        return f"<Release {self.id} {self.method} on {self.dataset}: {self.status}>"

    # ----- what the API says ----------------------------------------------------------------------------
    @property
    def id(self) -> int:
        return int(self.view["id"])

    @property
    def status(self) -> str:
        """queued, running, awaiting_approval, approved, rejected or failed (a cancelled release is failed)."""
        return str(self.view["status"])

    @property
    def stage(self) -> str | None:
        return self.view.get("stage")

    @property
    def progress(self) -> float:
        return float(self.view.get("progress") or 0.0)

    @property
    def message(self) -> str | None:
        return self.view.get("message")

    @property
    def dataset(self) -> str | None:
        return (self.view.get("dataset") or {}).get("name")

    @property
    def method(self) -> str:
        return str(self.view["method"])

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def cancelled(self) -> bool:
        return self.status == "failed" and self.view.get("error_code") == "cancelled"

    def refresh(self) -> Release:
        self.view = self.client.get(f"/releases/{self.id}")["release"]
        return self

    # ----- following it ---------------------------------------------------------------------------------
    def wait(
        self,
        progress: Callable[[Progress], object] | bool | None = None,
        timeout: float | None = 1800.0,
        interval: float = 0.5,
    ) -> Release:
        """Poll the release until it stops running: awaiting approval, approved, rejected, failed or cancelled.

        `progress` is called with a `Progress` each time the status, stage, fraction or message changes
        (`True` prints a progress line on stderr). Raises `WaitTimeout` after `timeout` seconds (None:
        no limit); the release keeps running on the service.
        """
        printer = _PrintedProgress() if progress is True else None
        report = printer if printer is not None else (progress if callable(progress) else None)
        start = time.monotonic()
        last: tuple[Any, ...] | None = None
        try:
            while True:
                self.refresh()
                elapsed = time.monotonic() - start
                eta = self.view.get("eta_seconds")
                now = (self.status, self.stage, round(self.progress, 4), self.message, eta)
                if report is not None and now != last:
                    report(Progress(self.id, self.status, self.stage, self.progress, self.message, elapsed, eta))
                    last = now
                if not self.running:
                    return self
                if timeout is not None and elapsed >= timeout:
                    raise WaitTimeout(
                        "wait_timeout",
                        f"release {self.id} is still {self.status} after {timeout:g} s; "
                        "it keeps running: call wait() again, or cancel() it",
                    )
                time.sleep(interval)
        finally:
            if printer is not None:
                printer.close()

    # ----- deciding -------------------------------------------------------------------------------------
    def approve(
        self,
        comment: str | None = None,
        override: str | None = None,
        include_internal: bool = False,
        candidate: int | None = None,
    ) -> Release:
        """Approve the release (a steward other than its requester). A failed gate needs `override`, a written
        reason; `include_internal` puts the internal report sections in the bundle."""
        body: dict[str, Any] = {"comment": comment, "override": override, "include_internal": include_internal}
        if candidate is not None:
            body["candidate"] = candidate
        self.view = self.client.post(f"/releases/{self.id}/approve", body)["release"]
        return self

    def reject(self, comment: str) -> Release:
        """Reject the release (stewards); its privacy cost stays charged."""
        self.view = self.client.post(f"/releases/{self.id}/reject", {"comment": comment})["release"]
        return self

    def cancel(self, reason: str | None = None) -> dict[str, Any]:
        """Cancel a queued or running release (its requester or a steward). Returns what the service did:
        {"was", "data_read", "reservation_released", ...}."""
        out = self.client.post(f"/releases/{self.id}/cancel", {"reason": reason})
        self.view = out["release"]
        return dict(out["cancelled"])

    # ----- the result -----------------------------------------------------------------------------------
    def download(self, path: str | Path | None = None) -> Path:
        """Save the approved bundle (a signed zip) to `path` (a file, or a directory for the default name
        synthgate-release-<id>.zip; default: the current directory). Returns the file's path."""
        target = Path(path) if path is not None else Path.cwd()
        if target.is_dir():
            target = target / f"synthgate-release-{self.id}.zip"
        partial = target.with_name(target.name + ".part")
        resp = self.client.call("GET", f"/releases/{self.id}/bundle", stream=True)
        try:
            with open(partial, "wb") as fh:
                for chunk in resp.iter_content(1 << 16):
                    fh.write(chunk)
            partial.replace(target)
        finally:
            resp.close()
            partial.unlink(missing_ok=True)
        self.bundle_path = target
        return target

    def verify(self, path: str | Path | None = None, public_key: str | None = None) -> BundleCheck:
        """Check a downloaded bundle as `synthgate bundle verify` does: the service's signature over its
        manifest, every file's SHA-256, no file added or removed, a zip every unzip reads alike.

        The key is `public_key` (PEM) if given, else the service's from the API. Returns the check (its
        `manifest` says what was released); raises `BundleInvalid`, listing the problems, if it fails.
        """
        bundle = self._bundle(path)
        check = verify_bundle(bundle, public_key if public_key is not None else self.client.public_key())
        if not check.ok:
            raise BundleInvalid(str(bundle), check.problems)
        return check

    def synthetic(self, path: str | Path | None = None, verify: bool = True) -> pd.DataFrame:
        """The released data as a DataFrame, read from the bundle's data.parquet (typed as released).

        Reads `path`, else the bundle `download()` saved, else downloads it to the current directory;
        the bundle is verified first unless `verify=False`.
        """
        if path is None and self.bundle_path is None:
            self.download()
        bundle = self._bundle(path)
        if verify:
            self.verify(bundle)
        with zipfile.ZipFile(bundle) as zf:
            return pd.read_parquet(io.BytesIO(zf.read(DATA_FILE)))

    def report(self) -> dict[str, Any]:
        """The release's report as a dict: its public sections for the requester once approved; stewards
        see the internal sections as well."""
        return dict(self.client.call("GET", f"/releases/{self.id}/report", params={"format": "json"}).json())

    def _bundle(self, path: str | Path | None) -> Path:
        if path is not None:
            return Path(path)
        if self.bundle_path is None:
            raise FileNotFoundError(f"release {self.id}: no bundle downloaded yet; call download() first")
        return self.bundle_path
