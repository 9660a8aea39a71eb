// The GEMM micro-kernel and its B packer, shared by the matmul ladder (v3, v4) and flash attention.
// B is packed into panels of kPanelWidth columns: panel j0/16 holds alpha · B(p, j0 + jj) at
// dst[j0·k + p·16 + jj], zero-padded past n, so each step of the micro-kernel reads one contiguous 64-byte
// row and never needs a mask. The micro-kernel keeps an MR×16 tile of C (MR <= kMicroRows = 6) in registers
// for the whole k loop (AVX2: 12 ymm accumulators; one broadcast of A and two loads of B per row step).
// AVX-512 reads two neighbouring panels at once: an MR×32 tile in 12 zmm accumulators, one broadcast of A and
// two loads of B per 2 FMAs, twice the work of an AVX2 step in the same instructions (one panel layout for
// every ISA; micro_tile_columns() says how many columns a call may take).
// A is read through strides, element (i, p) at a[i·rsa + p·csa]: a packed A panel (rsa = 1, csa = 6) and a
// transposed tile (rsa = 1) need no copy.
// Reference: minitx/backends/numpy_ref.py::matmul
#pragma once
#include "common.h"

namespace minitx {

inline constexpr Index kMicroRows = 6;
inline constexpr Index kPanelWidth = 16;

// Floats in the panels of a k × n matrix.
inline Index panel_floats(Index k, Index n) { return k * ((n + kPanelWidth - 1) / kPanelWidth * kPanelWidth); }

// B (k×n), element (p, j) at b[p·rsb + j·csb] (csb = 1: row-major; rsb = 1: transposed), times alpha, into
// panels at dst (panel_floats(k, n) floats).
void pack_b_panels(Index k, Index n, const float* b, Index rsb, Index csb, float alpha, float* dst);

// Columns of C one micro_kernel call may cover under the current ISA: 2·kPanelWidth on AVX-512 (two panels),
// else kPanelWidth. Loops over the tiles of C step by this.
Index micro_tile_columns();

// One tile: C (mr×nr, row stride ldc) = [C +] A (mr×k) · panel(s), mr <= kMicroRows, nr <= micro_tile_columns();
// columns past kPanelWidth come from the next panel, at panel + k·kPanelWidth.
void micro_kernel(Index mr, Index nr, Index k, const float* a, Index rsa, Index csa, const float* panel, float* c,
                  Index ldc, bool accumulate);

// C (m×n) = [C +] A (m×k) · B (k×n), B packed by pack_b_panels (same k and n): micro_kernel over the tiles.
void gemm_tile_packed_b(Index m, Index n, Index k, const float* a, Index rsa, Index csa, const float* bp, float* c,
                        Index ldc, bool accumulate);

}  // namespace minitx
