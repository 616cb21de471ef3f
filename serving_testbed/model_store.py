"""The versions of one model under its base path, as TF Serving's file-system source sees them.

`--model_base_path=BASE/NAME` holds numeric version directories. A child is a version only if
its name is a plain non-negative integer (hidden temp dirs such as `.export-*` are not) and it
holds a complete SavedModel (`saved_model.pb` or `.pbtxt`; a half-written version without it is
skipped). The highest version is served (TF Serving's default policy, `latest {1}`): it is
loaded through the session path, its warm-up records are replayed, and only then does it replace
the previous one, which keeps answering meanwhile and also when the new one fails to load.
"""

import logging
import os
import re
import threading

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

    def __init__(self, name, base_path, warmup=True):
        self.name = name
        self.base_path = os.path.abspath(base_path)
        self.warmup = warmup
        self.current = None                 # the AVAILABLE SessionServable
        self.failed = {}                    # version -> ServingError of its failed load
        self._lock = threading.Lock()
        self._poller = None
        self.poll()

    # ---- loading --------------------------------------------------------------------
    def poll(self):
        """Loads the highest complete version if it is new; returns the served version."""
        versions = complete_versions(self.base_path)
        if not versions:
            if self.current is None:
                log.warning("No versions of servable %s found under base path %s",
                            self.name, self.base_path)
            return self.current and self.current.version
        latest = versions[-1]
        if (self.current and self.current.version == latest) or latest in self.failed:
            return self.current and self.current.version
        try:
            servable = SessionServable(os.path.join(self.base_path, str(latest)), latest)
            try:
                replayed = servable.replay_warmup() if self.warmup else 0
            except ServingError:
                servable.close()
                raise
        except ServingError as e:
            log.error("Loading servable %s version %d failed: %s", self.name, latest, e)
            self.failed[latest] = e
            return self.current and self.current.version
        with self._lock:
            old, self.current = self.current, servable
        if old is not None:
            old.close()
        log.info("Successfully loaded servable version {name: %s version: %d} "
                 "(%d warm-up records replayed)", self.name, latest, replayed)
        return latest

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
    def servable(self, name, version=None):
        """The servable answering (name, version); version None = latest."""
        with self._lock:
            current = self.current
        if version is None:
            if name != self.name or current is None:
                raise ServingError("NOT_FOUND",
                                   f"Servable not found for request: Latest({name})")
            return current
        if name != self.name or current is None or current.version != int(version):
            raise ServingError("NOT_FOUND", f"Servable not found for request: "
                               f"Specific({name}, {version})")
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
                raise ServingError("NOT_FOUND", f"Could not find version {version} of "
                                   f"model {name}")
        return [{"version": str(v), "state": state,
                 "status": {"error_code": code, "error_message": message}}
                for v, state, code, message in sorted(rows, reverse=True)]
