"""The versions of one model under its base path, as TF Serving's file-system source sees them.

`--model_base_path=BASE/NAME` holds numeric version directories. A child is a version only if
its name is a plain non-negative integer (hidden temp dirs such as `.export-*` are not) and it
holds a complete SavedModel (`saved_model.pb` or `.pbtxt`; a half-written version without it is
skipped). The highest version is served (TF Serving's default policy, `latest {1}`): it is
loaded through the session path, its warm-up records are replayed, and only then does it replace
the previous one, which keeps answering meanwhile and also when the new one fails to load.
The previous version is closed once the requests using it are answered (`use`).

A version that fails to load (e.g. `saved_model.pb` written before `variables/`) is retried on
later polls with back-off, as TF Serving retries loads (--max_num_load_retries, default 5;
--load_retry_interval_micros, default 1 min, doubled after each failure here), so it is served
once it is complete; after the last retry it stays END with its error.
"""

import contextlib
import logging
import os
import re
import threading
import time

from serving_testbed.servable import ServingError, SessionServable

log = logging.getLogger(__name__)

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def complete_versions(base_path):
    """Ascending version numbers under `base_path` that hold a complete SavedModel."""
    if not os.path.isdir(base_path):
        return []
    versions = []
    for name in os.listdir(base_path):
        path = os.path.join(base_path, name)
        if not re.fullmatch(r"\d+", name) or not os.path.isdir(path):
            continue
        if any(os.path.isfile(os.path.join(path, f)) for f in SAVED_MODEL_FILES):
            versions.append(int(name))
    return sorted(versions)


class ModelStore:
    """Serves the latest complete version of model `name` from `base_path`."""

    def __init__(
        self,
        name,
        base_path,
        warmup=True,
        max_load_retries=5,
        retry_interval=60.0,
        clock=time.monotonic,
    ):
        self.name = name
        self.base_path = os.path.abspath(base_path)
        self.warmup = warmup
        self.current = None  # the AVAILABLE SessionServable
        self.failed = {}  # version -> ServingError of its last failed load
        self.max_load_retries = int(max_load_retries)
        self.retry_interval = float(retry_interval)
        self._retries = {}  # version -> (failed attempts, next try at)
        self._clock = clock
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._poller = None
        self.poll()

    # ---- loading --------------------------------------------------------------------
    def poll(self):
        """Loads the highest complete version if it is new (or a failed one due for a retry);
        returns the served version."""
        with self._poll_lock:
            versions = complete_versions(self.base_path)
            if not versions:
                if self.current is None:
                    log.warning(
                        "No versions of servable %s found under base path %s",
                        self.name,
                        self.base_path,
                    )
                return self.current and self.current.version
            latest = versions[-1]
            if (self.current and self.current.version == latest) or not self._due(latest):
                return self.current and self.current.version
            return self._load(latest)

    def _due(self, version):
        """Not failed before, or failed with retries left and its back-off over."""
        if version not in self.failed:
            return True
        attempts, next_try = self._retries[version]
        return attempts <= self.max_load_retries and self._clock() >= next_try

    def _load(self, version):
        try:
            servable = SessionServable(os.path.join(self.base_path, str(version)), version)
            try:
                replayed = servable.replay_warmup() if self.warmup else 0
            except ServingError:
                servable.close()
                raise
        except ServingError as e:
            attempts = self._retries.get(version, (0, 0))[0] + 1
            delay = self.retry_interval * 2 ** (attempts - 1)
            self.failed[version] = e
            self._retries[version] = (attempts, self._clock() + delay)
            left = self.max_load_retries - attempts + 1
            log.error(
                "Loading servable %s version %d failed: %s (%s)",
                self.name,
                version,
                e,
                f"retrying in {delay:g} s, {left} retries left" if left > 0 else "no retries left",
            )
            return self.current and self.current.version
        self.failed.pop(version, None)
        self._retries.pop(version, None)
        with self._lock:
            old, self.current = self.current, servable
        if old is not None:
            old.close()  # waits for the requests that use it
        log.info(
            "Successfully loaded servable version {name: %s version: %d} "
            "(%d warm-up records replayed)",
            self.name,
            version,
            replayed,
        )
        return version

    def start_polling(self, seconds):
        """Polls the base path every `seconds` in a daemon thread (TF Serving's
        --file_system_poll_wait_seconds)."""
        stop = threading.Event()

        def loop():
            while not stop.wait(seconds):
                self.poll()

        self._poller = stop
        threading.Thread(target=loop, daemon=True).start()

    def close(self):
        if self._poller is not None:
            self._poller.set()
        if self.current is not None:
            self.current.close()

    # ---- lookup ---------------------------------------------------------------------
    @contextlib.contextmanager
    def use(self, name, version=None):
        """The servable answering (name, version), held open (not closed by a reload) until
        the block ends."""
        with self._lock:
            servable = self._lookup(name, version, self.current)
            servable.acquire()
        try:
            yield servable
        finally:
            servable.release()

    def servable(self, name, version=None):
        """The servable answering (name, version); version None = latest. Its signature_def
        stays readable after a reload; to run it, use `use`."""
        with self._lock:
            current = self.current
        return self._lookup(name, version, current)

    def _lookup(self, name, version, current):
        if version is None:
            if name != self.name or current is None:
                raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
            return current
        if name != self.name or current is None or current.version != int(version):
            raise ServingError(
                "NOT_FOUND", f"Servable not found for request: Specific({name}, {version})"
            )
        return current

    def status(self, name, version=None):
        """TF Serving's GetModelStatus view: [{"version", "state", "status"}]."""
        if name != self.name:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
        rows = []
        if self.current is not None:
            rows.append((self.current.version, "AVAILABLE", "OK", ""))
        for v, error in sorted(self.failed.items()):
            rows.append((v, "END", error.code, str(error)))
        if version is not None:
            rows = [r for r in rows if r[0] == int(version)]
            if not rows:
                raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
        return [
            {
                "version": str(v),
                "state": state,
                "status": {"error_code": code, "error_message": message},
            }
            for v, state, code, message in sorted(rows, reverse=True)
        ]
