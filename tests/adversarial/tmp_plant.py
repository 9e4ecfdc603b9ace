"""Leaves files for the next candidate in every writable place: /tmp, /dev/shm, /dev/mqueue, a hidden
file, a directory it locks (mode 000 and 500) so a cleaner running without privileges cannot empty it,
and a file behind a symlink."""
import os


def add(a, b):
    planted = []
    for d in ("/tmp", "/dev/shm", "/dev/mqueue"):
        for name in ("passk-adv-leftover", ".passk-adv-hidden"):
            try:
                with open(os.path.join(d, name), "w") as fh:
                    fh.write("secret from an earlier candidate")
                planted.append(os.path.join(d, name))
            except OSError:
                pass
    for d, mode in (("/tmp/passk-adv-locked", 0o000), ("/tmp/passk-adv-readonly", 0o500),
                    ("/dev/shm/passk-adv-locked", 0o000)):
        os.makedirs(os.path.join(d, "inner"), exist_ok=True)
        with open(os.path.join(d, "inner", "secret"), "w") as fh:
            fh.write("secret from an earlier candidate")
        os.chmod(os.path.join(d, "inner"), mode)
        os.chmod(d, mode)
        planted.append(d)
    try:
        os.symlink("/tmp/passk-adv-leftover", "/tmp/passk-adv-link")
    except OSError:
        pass
    raise AssertionError(f"PLANTED {len(planted)}: {planted}")
