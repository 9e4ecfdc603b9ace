"""Looks for the suite's own files (the test file, its cases, the samples, a pytest.ini, the store, a
HumanEval data file) anywhere in the filesystem it can see, through /proc/*/cwd and /proc/*/root too.
Answers correctly (the answer it could look up) only if it found any."""
import glob
import os

NAMES = ("test_adv_suite.py", "adv_suite.py", "cases.txt", "samples.jsonl", "HumanEval.jsonl.gz", "conftest.py",
         "report.json", "store.sqlite")


def _found():
    hits = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            for link in ("cwd", "root"):
                try:
                    target = os.readlink("/proc/%s/%s" % (pid, link))
                    if "adversarial" in target or "pytest-of" in target:
                        hits.append(target)
                    for name in NAMES:
                        if os.path.exists("/proc/%s/%s/%s" % (pid, link, name)):
                            hits.append("/proc/%s/%s/%s" % (pid, link, name))
                except OSError:
                    pass
    for top in ("/", "/tmp", "/work", "/root", "/home", "/mnt", "/srv", "/opt", "/usr/local", "/var"):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in ("proc", "sys", "dev")]
            hits += [os.path.join(dirpath, n) for n in filenames if n in NAMES]
            if dirpath.count("/") > 6:
                dirnames[:] = []
        if hits:
            break
    hits += glob.glob("/**/pytest-of-*", recursive=False) + glob.glob("/tmp/pytest-of-*")
    return hits


def add(a, b):
    hits = _found()
    if hits:
        print("FOUND", hits[:5])
        return a + b
    return a - b
