#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Copies deploy/configs/*.yaml into the ConfigMaps of deploy/kubernetes/*.yaml.
# A ConfigMap names its source in the annotation
#   kansatsu.io/config-source: deploy/configs/<file>.yaml
# and carries it under `data: config.yaml: |` (indented four spaces). The
# text is replaced in place, so comments and layout elsewhere stay as they
# are; in a new manifest the block may be a placeholder line `@@x@@`.
# Standard library only. Usage: deploy/kubernetes/sync-configmaps.py [--check]
# (--check changes nothing and exits 1 when a ConfigMap differs).
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SOURCE = re.compile(r"^\s+kansatsu\.io/config-source:\s*(\S+)\s*$")
INDENT = "    "


def block(path):
    text = (ROOT / path).read_text()
    return [(INDENT + line if line else "") for line in text.splitlines()]


def sync(lines):
    out, i, source = [], 0, None
    while i < len(lines):
        line = lines[i]
        m = SOURCE.match(line)
        if m:
            source = m.group(1)
        out.append(line)
        i += 1
        if line == "---":
            source = None
        if source and line == "  config.yaml: |":
            # skip the old block: blank lines, lines indented by >= 4, a placeholder
            while i < len(lines) and (lines[i] == "" or lines[i].startswith(INDENT)
                                      or re.fullmatch(r"@@\S+@@", lines[i])):
                i += 1
            out += block(source)
            source = None
    return out


def main():
    check = "--check" in sys.argv[1:]
    differ = []
    for f in sorted(HERE.glob("*.yaml")):
        old = f.read_text().splitlines()
        new = sync(old)
        if new != old:
            differ.append(f.name)
            if not check:
                f.write_text("\n".join(new) + "\n")
    for name in differ:
        print(("differs: " if check else "updated: ") + name)
    return 1 if check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
