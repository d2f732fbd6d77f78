#!/usr/bin/env python3
"""check_dockerfile.py - static checks of the Dockerfile, where no container
engine (and no hadolint) is at hand.

  check_dockerfile.py [DOCKERFILE] [--context DIR] [--shellcheck]

Checks that:
  * it is multi-stage and every stage starts FROM debian:12-slim;
  * nothing is fetched with ADD (no ADD at all: COPY says what it does);
  * the final stage runs as a non-root user (USER, not root / 0);
  * the final stage has the binaries (/out/bin -> /usr/local/bin), the
    drivers (-> /usr/lib/iotlat) with ENV IOTLAT_PLUGIN_DIR=/usr/lib/iotlat,
    and compose/entrypoint.sh as its ENTRYPOINT;
  * every COPY source that comes from the build context exists there;
  * with --shellcheck, the shell of every RUN instruction passes
    `shellcheck -s sh` (what hadolint would run on it).
Prints one line per finding; exits 1 if any.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile


def instructions(text):
    """(line number, INSTRUCTION, arguments) with continuations joined and
    comment lines inside a continuation dropped, as Docker reads them."""
    out, buf, start = [], [], None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if start is None:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = " ".join(part.strip() for part in buf)
        word, _, rest = joined.partition(" ")
        out.append((start, word.upper(), rest.strip()))
        buf, start = [], None
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dockerfile", nargs="?", default="Dockerfile")
    ap.add_argument("--context", help="build context (default: the Dockerfile's directory)")
    ap.add_argument("--shellcheck", action="store_true")
    a = ap.parse_args()
    context = a.context or os.path.dirname(os.path.abspath(a.dockerfile))
    ins = instructions(open(a.dockerfile).read())
    bad = []

    froms = [(n, args) for n, w, args in ins if w == "FROM"]
    if len(froms) < 2:
        bad.append(f"not multi-stage: {len(froms)} FROM")
    for n, args in froms:
        image = args.split()[0] if args else ""
        if image.startswith("--platform"):
            image = args.split()[1]
        if image != "debian:12-slim":
            bad.append(f"line {n}: FROM {image}: every stage must start FROM debian:12-slim")
    for n, w, args in ins:
        if w == "ADD":
            what = "fetches a URL" if re.search(r"\b(https?|git)://|git@", args) else "is an ADD"
            bad.append(f"line {n}: ADD {args}: {what}; use COPY (and no downloads)")
    last = max(i for i, (n, w, _) in enumerate(ins) if w == "FROM")
    final = ins[last:]
    users = [args for n, w, args in final if w == "USER"]
    if not users:
        bad.append("the final stage sets no USER: it would run as root")
    else:
        user = users[-1].split(":")[0]
        if user in ("root", "0", ""):
            bad.append(f"the final stage runs as USER {users[-1]}")
    copies = [args for n, w, args in final if w == "COPY"]
    if not any(re.search(r"/out/bin/?\s+/usr/local/bin/?$", c) for c in copies):
        bad.append("the final stage does not copy the binaries (/out/bin) to /usr/local/bin")
    if not any(re.search(r"/out/lib/?\s+/usr/lib/iotlat/?$", c) for c in copies):
        bad.append("the final stage does not copy the drivers (/out/lib) to /usr/lib/iotlat")
    envs = " ".join(args for n, w, args in final if w == "ENV")
    if not re.search(r"\bIOTLAT_PLUGIN_DIR[= ]/usr/lib/iotlat\b", envs):
        bad.append("the final stage does not set IOTLAT_PLUGIN_DIR=/usr/lib/iotlat")
    eps = [args for n, w, args in final if w == "ENTRYPOINT"]
    ep_copy = [c for c in copies if c.split()[0] == "compose/entrypoint.sh"]
    if not eps or not ep_copy or ep_copy[0].split()[-1] not in eps[-1]:
        bad.append("the final stage's ENTRYPOINT is not compose/entrypoint.sh as copied")
    for n, w, args in ins:
        if w != "COPY" or "--from=" in args:
            continue
        srcs = [s for s in shlex.split(args) if not s.startswith("--")][:-1]
        for s in srcs:
            if not os.path.exists(os.path.join(context, s)):
                bad.append(f"line {n}: COPY {s}: not in the build context {context}")
    if a.shellcheck:
        for n, w, args in ins:
            if w != "RUN" or args.startswith("["):
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
                f.write("#!/bin/sh\n" + args + "\n")
            try:
                r = subprocess.run(["shellcheck", "-s", "sh", "-f", "gcc", f.name],
                                   capture_output=True, text=True)
            finally:
                os.unlink(f.name)
            if r.returncode != 0:
                bad.append(f"line {n}: RUN: shellcheck: " +
                           "; ".join(l.split(": ", 1)[-1] for l in r.stdout.splitlines()))
    for b in bad:
        print(f"FAIL {a.dockerfile}: {b}")
    if not bad:
        print(f"ok   {a.dockerfile}: {len(froms)} stages FROM debian:12-slim, USER {users[-1]}, "
              f"no ADD, binaries, drivers and entrypoint in place"
              + (", RUN lines pass shellcheck" if a.shellcheck else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
