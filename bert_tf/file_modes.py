"""File modes of published outputs: readable by other users, as the umask allows.

Outputs are built in private temp directories (`tempfile.mkdtemp` makes them 0700, `mkstemp`
files 0600) and renamed into place, so without a fix-up a TF Serving process running as another
user could not read an export. `apply_default_modes(root)` gives the tree the modes plain
`os.makedirs`/`open` would have given it: directories 0777 & ~umask, files 0666 & ~umask
(0755 / 0644 with the usual umask 022; 0750 / 0640 with 027).
"""

import os
import threading

_UMASK_LOCK = threading.Lock()


def current_umask():
    """The process umask (read from /proc where possible: setting it to probe is racy)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def apply_default_modes(root):
    """chmod `root` and everything under it (symlinks are left alone); returns `root`."""
    mask = current_umask()
    dir_mode, file_mode = 0o777 & ~mask, 0o666 & ~mask
    os.chmod(root, dir_mode)
    for parent, dirs, files in os.walk(root):
        for name in dirs:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                os.chmod(path, dir_mode)
        for name in files:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                os.chmod(path, file_mode)
    return root
