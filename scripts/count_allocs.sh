#!/usr/bin/env bash
# How many heap allocations scoring one row makes, libtorch's included: counts every malloc,
# calloc, realloc, posix_memalign and aligned_alloc of a fixed program (models/examples/row_allocs.rs)
# through an LD_PRELOAD counter, at two row counts; the difference per row is the answer.
#   bash scripts/count_allocs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/count.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
static atomic_long n;
static __thread int resolving;
static char early[8192];
static size_t early_used;
__attribute__((destructor)) static void report(void) { fprintf(stderr, "allocations %ld\n", atomic_load(&n)); }
#define REAL(ret, name, args) static ret(*real_##name) args; if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)
void *malloc(size_t s) { REAL(void *, malloc, (size_t)); atomic_fetch_add(&n, 1); return real_malloc(s); }
void *calloc(size_t a, size_t b) {
  static void *(*real_calloc)(size_t, size_t);
  if (!real_calloc) {
    if (resolving) { void *p = early + early_used; early_used += (a * b + 15) & ~(size_t)15; return p; }
    resolving = 1; real_calloc = dlsym(RTLD_NEXT, "calloc"); resolving = 0;
  }
  atomic_fetch_add(&n, 1); return real_calloc(a, b);
}
void *realloc(void *p, size_t s) { REAL(void *, realloc, (void *, size_t)); atomic_fetch_add(&n, 1); return real_realloc(p, s); }
int posix_memalign(void **p, size_t a, size_t s) { REAL(int, posix_memalign, (void **, size_t, size_t)); atomic_fetch_add(&n, 1); return real_posix_memalign(p, a, s); }
void *aligned_alloc(size_t a, size_t s) { REAL(void *, aligned_alloc, (size_t, size_t)); atomic_fetch_add(&n, 1); return real_aligned_alloc(a, s); }
C
cc -O2 -shared -fPIC -o "$TMP/count.so" "$TMP/count.c" -ldl
cargo build --release --quiet -p argus-models --example row_allocs
LIB=$(ls -d .venv/lib/python3*/site-packages/torch/lib)
for mode in alpha pair; do
  counts=()
  for rows in 1000 11000; do
    counts+=("$(LD_LIBRARY_PATH="$LIB" LD_PRELOAD="$TMP/count.so" target/release/examples/row_allocs "$mode" "$rows" 2>&1 >/dev/null | awk '/^allocations/ {print $2}')")
  done
  awk -v m="$mode" -v a="${counts[0]}" -v b="${counts[1]}" 'BEGIN { printf "%s: %.2f allocations per row (%d at 1,000 rows, %d at 11,000)\n", m, (b - a) / 10000, a, b }'
done
