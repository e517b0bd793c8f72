#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# YAML -> JSON for deploy_manifests.test.mjs: node has no YAML parser and the
# tests add no npm dependency, so this reads each argument (a file, or "-" for
# stdin) with PyYAML's safe loader (Debian package python3-yaml) and prints
# one JSON array: per argument, the list of its documents. Values JSON has no
# type for (dates) become strings. Exit 3 with a message when PyYAML is
# missing, 2 when a file is not YAML (the message names file and line).
import json
import sys

try:
    import yaml
except ImportError:
    sys.stderr.write("deploy_yaml.py: PyYAML is missing: apt-get install python3-yaml\n")
    sys.exit(3)


def main(args):
    out = []
    for name in args:
        try:
            text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
            out.append(list(yaml.safe_load_all(text)))
        except (OSError, yaml.YAMLError) as e:
            sys.stderr.write("deploy_yaml.py: %s: %s\n" % (name, e))
            return 2
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
