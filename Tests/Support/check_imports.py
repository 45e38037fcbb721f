#!/usr/bin/env python3
"""check_imports.py: every Swift target declares each module it imports (part of `make lint`).

Usage: python3 Tests/Support/check_imports.py [PACKAGE_DIR...]   (default: the current directory)

`swift build --explicit-target-dependency-import-check error` refuses an import only when the
module is outside the target's dependency closure: a target that declares Metrics may import
CoreMetrics (a dependency of Metrics) unnoticed. This check is stricter and needs no build: it
reads the manifest (`swift package dump-package`) and the `import` lines of each target's .swift
files, and names every imported module that is neither a declared dependency (a target of the
package or a product of another) nor part of the toolchain (Foundation, Glibc, XCTest, ...).
A product counts as the module of the same name, which holds for every dependency Herald has.
The exit code is 1 when something is undeclared.
"""

import json
import os
import re
import subprocess
import sys

IMPORT = re.compile(
    r"^(?:@\w+(?:\([^)]*\))?\s+)*"  # @testable, @_implementationOnly, @preconcurrency ...
    r"(?:(?:public|package|internal|fileprivate|private)\s+)?"
    r"import\s+(?:(?:class|struct|enum|protocol|typealias|func|let|var)\s+)?"
    r"([A-Za-z_][A-Za-z0-9_]*)"
)


def toolchain_modules():
    """Module names the toolchain provides: Swift modules and clang modules of its resource dir."""
    info = json.loads(subprocess.run(["swiftc", "-print-target-info"], check=True, capture_output=True,
                                     text=True).stdout)
    paths = info.get("paths", {})
    roots = [paths.get("runtimeResourcePath", "")] + paths.get("runtimeLibraryImportPaths", [])
    names = {"Swift", "SwiftShims", "_Concurrency", "_StringProcessing", "Glibc", "Musl", "Darwin"}
    for root in filter(None, roots):
        for base in {root, os.path.join(root, "linux")}:
            if not os.path.isdir(base):
                continue
            for entry in os.listdir(base):
                stem, ext = os.path.splitext(entry)
                if ext in (".swiftmodule", ".swiftinterface"):
                    names.add(stem)
                elif not ext and os.path.isfile(os.path.join(base, entry, "module.modulemap")):
                    names.add(entry)
    return names


def module_name(target_name):
    return re.sub(r"[^A-Za-z0-9_]", "_", target_name)


def check(package_dir, provided):
    dump = subprocess.run(["swift", "package", "--package-path", package_dir, "dump-package"], check=True,
                          capture_output=True, text=True).stdout
    manifest = json.loads(dump)
    problems = 0
    for target in manifest["targets"]:
        if target["type"] in ("system", "binary", "plugin", "macro"):
            continue
        declared = set()
        for dep in target.get("dependencies", []):
            (_, value), = dep.items()
            declared.add(module_name(value[0]))  # byName, target and product all lead with the name
        default_root = "Tests" if target["type"] == "test" else "Sources"
        source_dir = os.path.join(package_dir, target.get("path") or os.path.join(default_root, target["name"]))
        own = module_name(target["name"])
        for dirpath, _, files in sorted(os.walk(source_dir)):
            for name in sorted(f for f in files if f.endswith(".swift")):
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        m = IMPORT.match(line)
                        if not m:
                            continue
                        module = m.group(1)
                        if module in declared or module in provided or module == own:
                            continue
                        print(f"{os.path.relpath(path)}:{number}: target {target['name']} imports {module} "
                              f"without declaring it in {os.path.relpath(os.path.join(package_dir, 'Package.swift'))}",
                              file=sys.stderr)
                        problems += 1
    return problems


def main():
    provided = toolchain_modules()
    problems = sum(check(d, provided) for d in (sys.argv[1:] or ["."]))
    if problems:
        print(f"check_imports: {problems} undeclared import(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
