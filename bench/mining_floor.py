"""The C counting floor of bench/mining.py: the bound a compiled exact pair counter sets.

A small kernel (``FLOOR_C``) compiled at run time with the system C compiler (``cc -O3 -shared
-fPIC``, plus ``-fopenmp`` when that works) into a temp folder and called through ctypes. Input:
the baskets as int32 product codes in CSR form (:func:`basket_csr`). See bench/mining.py."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mining_peers import tmp_dir

# The C counting floor (see the module docstring).
FLOOR_C = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#define THREAD omp_get_thread_num()
#else
#define THREAD 0
#endif

/* Co-basket pair counts of baskets in CSR form: basket k holds items[indptr[k] .. indptr[k+1]),
   int32 product codes < n_items, sorted and distinct within the basket. Every (a, b, n_ab) with
   a < b and n_ab >= min_count goes to *out_a, *out_b, *out_n (malloc'ed here, freed with
   floor_free; in no particular order). Returns the number of pairs, -1 when out of memory. */
int64_t floor_pairs(int64_t n_baskets, const int64_t *indptr, const int32_t *items,
                    int32_t n_items, int32_t min_count, int32_t threads, int32_t **out_a,
                    int32_t **out_b, int32_t **out_n) {
    int64_t n_lines = indptr[n_baskets], total = -1;
    size_t ni = (size_t)(n_items > 0 ? n_items : 1), nl = (size_t)(n_lines > 0 ? n_lines : 1);
    int64_t *head = calloc(ni + 1, sizeof(int64_t)), *inst = calloc(ni, sizeof(int64_t));
    int64_t *fill = malloc(ni * sizeof(int64_t)), *off = malloc((ni + 1) * sizeof(int64_t));
    int64_t *found = calloc(ni, sizeof(int64_t));
    int64_t *from = malloc(nl * sizeof(int64_t)), *to = malloc(nl * sizeof(int64_t));
    int32_t *pa_ = NULL, *pb = NULL, *pn = NULL, *rows = NULL, *seen = NULL;
    if (threads < 1) threads = 1;
    if (!head || !inst || !fill || !off || !found || !from || !to) goto done;
    /* inverted index: product -> (first partner after it, basket end), a counting sort */
    for (int64_t k = 0; k < n_baskets; k++)
        for (int64_t j = indptr[k]; j < indptr[k + 1]; j++) {
            head[items[j] + 1]++;
            inst[items[j]] += indptr[k + 1] - j - 1;
        }
    for (int32_t a = 0; a < n_items; a++) head[a + 1] += head[a];
    memcpy(fill, head, ni * sizeof(int64_t));
    for (int64_t k = 0; k < n_baskets; k++)
        for (int64_t j = indptr[k]; j < indptr[k + 1]; j++) {
            int64_t s = fill[items[j]]++;
            from[s] = j + 1;
            to[s] = indptr[k + 1];
        }
    /* room for the pairs of a: at most min(n_items - 1 - a, instances of a / min_count) */
    off[0] = 0;
    for (int32_t a = 0; a < n_items; a++) {
        int64_t cap = inst[a] / min_count, left = (int64_t)n_items - 1 - a;
        off[a + 1] = off[a] + (cap < left ? cap : left);
    }
    {
        size_t room = (size_t)(off[n_items] > 0 ? off[n_items] : 1);
        pa_ = malloc(room * sizeof(int32_t));
        pb = malloc(room * sizeof(int32_t));
        pn = malloc(room * sizeof(int32_t));
    }
    rows = calloc((size_t)threads * ni, sizeof(int32_t));
    seen = malloc((size_t)threads * ni * sizeof(int32_t));
    if (!pa_ || !pb || !pn || !rows || !seen) goto done;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
    for (int32_t a = 0; a < n_items; a++) {
        if (off[a + 1] == off[a]) continue; /* no pair of a can reach min_count */
        int32_t *row = rows + (size_t)THREAD * ni, *touched = seen + (size_t)THREAD * ni;
        int64_t nt = 0, w = off[a];
        for (int64_t s = head[a]; s < head[a + 1]; s++) {
            const int32_t *p = items + from[s], *e = items + to[s];
            for (; p < e; p++)
                if (row[*p]++ == 0) touched[nt++] = *p;
        }
        for (int64_t t = 0; t < nt; t++) {
            int32_t b = touched[t], c = row[b];
            row[b] = 0;
            if (c >= min_count) {
                pa_[w] = a;
                pb[w] = b;
                pn[w] = c;
                w++;
            }
        }
        found[a] = w - off[a];
    }
    /* close the gaps between the products' slots */
    total = 0;
    for (int32_t a = 0; a < n_items; a++) {
        if (found[a] && total != off[a]) {
            memmove(pa_ + total, pa_ + off[a], (size_t)found[a] * sizeof(int32_t));
            memmove(pb + total, pb + off[a], (size_t)found[a] * sizeof(int32_t));
            memmove(pn + total, pn + off[a], (size_t)found[a] * sizeof(int32_t));
        }
        total += found[a];
    }
    *out_a = pa_;
    *out_b = pb;
    *out_n = pn;
    pa_ = pb = pn = NULL;
done:
    free(head); free(inst); free(fill); free(off); free(found); free(from); free(to);
    free(pa_); free(pb); free(pn); free(rows); free(seen);
    return total;
}

void floor_free(void *p) { free(p); }
"""


@dataclass
class Csr:
    """Baskets as int32 product codes (codes follow the ids' order; ``names[code]`` is the id),
    distinct and sorted within a basket, giant baskets dropped: basket k is
    ``items[indptr[k]:indptr[k + 1]]``. Plus the counts that size the engines' memory."""

    indptr: np.ndarray
    items: np.ndarray
    names: pa.Array
    lines: int
    baskets: int
    giant: int

    @property
    def instances(self) -> int:
        """Pair instances: sum of s(s-1)/2 over the kept baskets."""
        s = np.diff(self.indptr)
        return int((s * (s - 1) // 2).sum())


def basket_csr(t: pa.Table, max_basket: int) -> Csr:
    """Encode ``t``'s ids with pyarrow dictionary encoding, drop repeated lines (numpy sort of
    packed (basket, product) keys) and giant baskets: the floor's input."""
    pe = pc.dictionary_encode(t["product_id"]).combine_chunks()
    order = pc.sort_indices(pe.dictionary).to_numpy()
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size, dtype=np.int64)
    oe = pc.dictionary_encode(t["order_id"]).combine_chunks()
    bits = max(order.size - 1, 1).bit_length()
    key = oe.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    key <<= bits
    key |= rank[pe.indices.to_numpy(zero_copy_only=False)]
    key.sort()
    if key.size:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    basket = key >> bits
    sizes = np.bincount(basket, minlength=len(oe.dictionary))
    ok = sizes <= max_basket
    keep = ok[basket]
    items = (key[keep] & ((1 << bits) - 1)).astype(np.int32)
    kept = sizes[ok & (sizes > 0)]
    indptr = np.zeros(kept.size + 1, np.int64)
    np.cumsum(kept, out=indptr[1:])
    return Csr(
        indptr, items, pe.dictionary.take(pa.array(order)), t.num_rows, len(oe.dictionary), int((~ok).sum())
    )


_FLOOR: list[tuple[Any, str]] = []


def floor_library() -> tuple[Any, str]:
    """The compiled floor kernel (ctypes library, how it was built), or (None, why not)."""
    if _FLOOR:
        return _FLOOR[0]
    cc = next((c for c in (os.environ.get("CC"), "cc", "gcc", "clang") if c and shutil.which(c)), None)
    got: tuple[Any, str] = (None, "no C compiler found (cc, gcc, clang; or $CC)")
    if cc is not None:
        src = Path(tmp_dir()) / "floor.c"
        src.write_text(FLOOR_C)
        errors = ""
        for extra in (["-fopenmp"], []):
            lib_path = Path(tmp_dir()) / f"floor{len(extra)}.so"
            cmd = [cc, "-O3", "-shared", "-fPIC", *extra, str(src), "-o", str(lib_path)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                errors = (proc.stderr.strip().splitlines() or ["no message"])[-1]
                continue
            try:
                lib = ctypes.CDLL(str(lib_path))
            except OSError as e:
                errors = str(e)
                continue
            p32 = ctypes.POINTER(ctypes.c_int32)
            lib.floor_pairs.restype = ctypes.c_int64
            lib.floor_pairs.argtypes = [
                ctypes.c_int64,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_int32,
                ctypes.c_int32,
                ctypes.c_int32,
                ctypes.POINTER(p32),
                ctypes.POINTER(p32),
                ctypes.POINTER(p32),
            ]
            lib.floor_free.restype = None
            lib.floor_free.argtypes = [ctypes.c_void_p]
            got = (lib, " ".join([Path(cc).name, "-O3", "-shared", "-fPIC", *extra]))
            # a first call starts the OpenMP threads (not to be timed)
            tiny = Csr(np.array([0, 2], np.int64), np.array([0, 1], np.int32), pa.array(["x", "y"]), 2, 1, 0)
            floor_count(lib, tiny, 1, os.cpu_count() or 1)
            break
        else:
            got = (None, f"compilation failed ({' '.join([cc, '-O3', '-shared', '-fPIC'])}): {errors}")
    _FLOOR.append(got)
    return got


def floor_threads(how: str) -> int:
    """Threads the floor uses: one per CPU when built with OpenMP, else one."""
    return (os.cpu_count() or 1) if "-fopenmp" in how else 1


def floor_count(
    lib: Any, csr: Csr, min_count: int, threads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, n_ab) codes of the pairs with n_ab >= min_count, from the C kernel."""
    p32 = ctypes.POINTER(ctypes.c_int32)
    a, b, n = p32(), p32(), p32()
    indptr = np.ascontiguousarray(csr.indptr, np.int64)
    items = np.ascontiguousarray(csr.items, np.int32)
    k = lib.floor_pairs(
        indptr.size - 1,
        indptr.ctypes.data,
        items.ctypes.data,
        len(csr.names),
        min_count,
        threads,
        ctypes.byref(a),
        ctypes.byref(b),
        ctypes.byref(n),
    )
    if k < 0:
        raise MemoryError("floor kernel: out of memory")
    out = tuple(np.ctypeslib.as_array(p, (k,)).copy() if k else np.zeros(0, np.int32) for p in (a, b, n))
    for p in (a, b, n):
        lib.floor_free(p)
    return out  # type: ignore[return-value]


def floor_table(csr: Csr, a: np.ndarray, b: np.ndarray, n_ab: np.ndarray) -> pa.Table:
    return pa.table(
        {"a": csr.names.take(pa.array(a)), "b": csr.names.take(pa.array(b)), "n_ab": n_ab.astype(np.int64)}
    )


def run_floor(lib: Any, t: pa.Table, min_count: int, max_basket: int, threads: int) -> pa.Table:
    """The floor with its encoding: ids -> CSR codes -> C counting -> (a, b, n_ab) with names."""
    csr = basket_csr(t, max_basket)
    return floor_table(csr, *floor_count(lib, csr, min_count, threads))
