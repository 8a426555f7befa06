"""Refresh the onnxruntime-web runtime files shipped with the web page (specforge/export/web/ort/).

    python tools/refresh_onnxruntime_web.py            # the pinned version
    python tools/refresh_onnxruntime_web.py 1.30.0

Takes the files from the npm package itself (``npm pack onnxruntime-web@VERSION``): the
WebAssembly-only ES module build with the Emscripten glue bundled in, its WebAssembly binary, and the
MIT licence the package declares (the tarball carries no licence file, so its text is written here
with the copyright notice from the files' headers).  Prints each file's size.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "specforge" / "export" / "web" / "ort"
VERSION = "1.30.0"
FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
LICENSE = """MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def main() -> None:
    version = sys.argv[1] if len(sys.argv) > 1 else VERSION
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            ["npm", "pack", f"onnxruntime-web@{version}", "--silent"],
            cwd=scratch,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with tarfile.open(next(Path(scratch).glob("onnxruntime-web-*.tgz"))) as archive:
            archive.extractall(scratch, filter="data")
        package = Path(scratch) / "package"
        manifest = json.loads((package / "package.json").read_text())
        if manifest["license"] != "MIT":
            sys.exit(f"onnxruntime-web {version} is licensed {manifest['license']}, not MIT: update LICENSE here")
        if TARGET.exists():
            shutil.rmtree(TARGET)
        TARGET.mkdir(parents=True)
        for name in FILES:
            shutil.copyfile(package / "dist" / name, TARGET / name)
        (TARGET / "LICENSE").write_text(LICENSE)
        (TARGET / "VERSION").write_text(manifest["version"] + "\n")
    for path in sorted(TARGET.iterdir()):
        print(f"{path.stat().st_size:>12,}  {path.relative_to(TARGET.parents[3])}")


if __name__ == "__main__":
    main()
