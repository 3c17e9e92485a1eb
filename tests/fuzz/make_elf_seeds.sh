#!/usr/bin/env bash
# Rebuilds the ELF seeds in corpus/elf_fuzz/: tiny (~1.5 KiB) shared objects,
# each with one trait the plugin ELF check looks at (DT_NEEDED, DT_RPATH,
# DT_RUNPATH, an executable stack, PT_INTERP). Small page sizes keep them
# well under elf_fuzz's max_len. Needs gcc and binutils.
#   tests/fuzz/make_elf_seeds.sh [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/corpus/elf_fuzz}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo 'int f(int x) { return x + 1; } void _start(void) {}' >"$tmp/t.c"
small=(-fPIC -nostdlib -O2 -Wl,-z,max-page-size=16 -Wl,-z,common-page-size=16
       -Wl,-z,noseparate-code -Wl,--build-id=none -Wl,--hash-style=gnu -Wl,--no-as-needed)
build() {  # build NAME [gcc flags...]
  local name=$1; shift
  gcc "${small[@]}" "$@" -o "$tmp/$name" "$tmp/t.c"
  strip --strip-all -R .comment "$tmp/$name"
  install -m 0644 "$tmp/$name" "$out/$name"
}
mkdir -p "$out"
build tiny_plain.so -shared -Wl,-soname,libtiny_plain.so.1
build tiny_needed.so -shared -Wl,-soname,libtiny_needed.so.1 -lm
build tiny_rpath.so -shared -Wl,--disable-new-dtags,-rpath,/tmp/x:/opt/y
build tiny_runpath.so -shared -Wl,--enable-new-dtags,-rpath,/opt/y -lm
build tiny_execstack.so -shared -Wl,-z,execstack
build tiny_pie_interp -pie -Wl,-e,_start
ls -l "$out"
